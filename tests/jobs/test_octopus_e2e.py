"""Octopus end to end: real ``flask worker`` processes, the sandbox's Octopus emulator and the writer.

The first sync and a no-change resync, an incremental night, tokens dying mid-sync, a revoked access,
429 answers (short and long), an endpoint's daily budget spent (deferred until the time the message
names, then resumed), and a malformed answer, each through the engine as the nightly run would meet them.
"""
from datetime import date, timedelta

import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.services.syncs import enqueue_run, request_sync
from connectors.octopus import BUDGETS, Octopus, emulator
from connectors.rate_limit import RateLimiter
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count, settled

pytestmark = pytest.mark.slow

COMPANY = "c-1003"  # 20 accounts, about 40 lines, book years 2023 and 2024
DOSSIER = str(emulator.dossier_id(COMPANY))
API = "/octopus/octopus-rest-api/v1"
SECRETS = ("password", "software_house_uuid")


@pytest.fixture
def octopus_dossier(linked_dossier, sandbox, db):
    def _make(name="Northwind Trading"):
        settings = Octopus.spec.sandbox_settings(sandbox.url)
        dossier = linked_dossier(package="octopus", reference=DOSSIER, name=name,
                                 config={k: v for k, v in settings.items() if k not in SECRETS},
                                 credentials={k: settings[k] for k in SECRETS})
        link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
        link.valid_from = date(2023, 1, 1)  # both book years in the window
        db.session.commit()
        return dossier
    return _make


def sync(db, workers, dossier_id, what, trigger=Trigger.MANUAL):
    queued = request_sync(dossier_id, trigger)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)


def book_lines(sandbox):
    return sum(1 for _ in sandbox.state.books[COMPANY].all_lines())


def test_first_sync_a_no_change_resync_then_an_incremental_night(db, sandbox, workers, octopus_dossier):
    dossier = octopus_dossier()
    workers.start()
    first = sync(db, workers, dossier.id, "the first Octopus sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    assert first.lines_inserted == line_count(db, dossier.id) == book_lines(sandbox)
    assert first.accounts_count > 0 and first.balances_count > 0
    # the vendor's first sync: the chart once (of 2 a day), each book year per journal type
    assert sandbox.calls(f"{API}/dossiers/{DOSSIER}/accounts") - sandbox.calls("/accounts/") == 1
    assert sandbox.calls("/bookings/modified") == 2 * 4
    before, calls = bookkeeping_snapshot(db, dossier.id), sandbox.stats()["total_calls"]

    night = sync(db, workers, dossier.id, "the no-change night", trigger=Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, night.message
    spent = sandbox.stats()["total_calls"] - calls
    # login, dossier token, book years, modified accounts, amounts, one incremental bookings call
    assert spent <= 6 and night.api_calls == spent, (spent, night.api_calls)
    assert sandbox.calls("/bookyears/-1/bookings/modified") == 1
    assert night.changed is False and night.lines_inserted == night.lines_updated == night.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before

    touched = sandbox.mutate(COMPANY, add=2, change=1, delete=1)
    night = sync(db, workers, dossier.id, "the incremental night", trigger=Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, f"{night.message}\n{workers.logs()}"
    assert night.lines_inserted == len(touched["added"])
    assert night.lines_updated == len(touched["changed"])
    assert night.lines_deleted == len(touched["deleted"])
    assert line_count(db, dossier.id) == book_lines(sandbox)
    assert bookkeeping_snapshot(db, dossier.id)["PeriodBalance"] != before["PeriodBalance"]
    assert sandbox.calls(f"{API}/dossiers/{DOSSIER}/accounts") - sandbox.calls("/accounts/") == 1, \
        "the chart is not read again"


def test_tokens_dying_mid_sync_are_renewed_and_a_revoked_access_needs_a_reconnect(db, sandbox, workers,
                                                                                   octopus_dossier):
    sandbox.modes(octopus=["tokens_expire_mid_sync"])
    dossier = octopus_dossier()
    workers.start()
    done = sync(db, workers, dossier.id, "the Octopus sync with dying tokens")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == book_lines(sandbox)
    assert sandbox.calls(f"{API}/authentication") >= 2  # logged in again after a refusal
    before = bookkeeping_snapshot(db, dossier.id)

    sandbox.fault("revoke")
    done = sync(db, workers, dossier.id, "the Octopus sync after the revoke")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{workers.logs()}"
    assert "must check them" in done.message and "demo-key" not in done.message
    assert emulator.SOFTWARE_HOUSE not in done.message
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_a_short_429_is_waited_out_and_a_long_one_defers_then_resumes(db, sandbox, workers, octopus_dossier):
    dossier = octopus_dossier()
    workers.start()
    sandbox.fault("429", path=f"{API}/dossiers/{DOSSIER}/accounts/amounts", retry_after=1)
    first = sync(db, workers, dossier.id, "the Octopus sync with a short 429")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    before = bookkeeping_snapshot(db, dossier.id)

    sandbox.mutate(COMPANY, add=1)
    sandbox.fault("429", path=f"{API}/dossiers/{DOSSIER}/bookyears/-1", retry_after=900)
    queued = request_sync(dossier.id, Trigger.NIGHTLY)
    deferred = workers.wait_for(lambda: settled(db, queued.id), timeout=180, what="the Octopus sync to stop")
    assert deferred.status == RunStatus.DEFERRED and deferred.error_category == "rate_limited", deferred.message
    assert bookkeeping_snapshot(db, dossier.id) == before  # the partial read wrote nothing
    redis_connection().delete(*redis_connection().scan_iter("firmsync:rate:octopus:*:blocked"))
    enqueue_run(deferred.id)
    done = workers.wait_for(lambda: finished(db, deferred.id), timeout=180, what="the resumed Octopus sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == book_lines(sandbox)


def test_a_spent_daily_endpoint_budget_defers_until_the_named_time_then_resumes(db, sandbox, workers,
                                                                                  octopus_dossier):
    dossier = octopus_dossier()
    chart = next(budget for budget in BUDGETS if budget.name == "accounts")
    limiter, scope = RateLimiter(redis_connection()), f"tenant-{DOSSIER}.accounts"
    for _ in range(chart.per_minute):  # earlier today: both reads of the chart were spent
        limiter.release(limiter.acquire("octopus", scope, chart))
    workers.start()
    started = utcnow()
    queued = request_sync(dossier.id, Trigger.SETUP)
    deferred = workers.wait_for(lambda: settled(db, queued.id), timeout=180, what="the Octopus sync to stop")
    assert deferred.status == RunStatus.DEFERRED, f"{deferred.message}\n{workers.logs()}"
    assert deferred.error_category == "rate_limited" and "2 times a day" in deferred.message
    assert "The next one is possible at" in deferred.message
    assert started + timedelta(hours=23) <= deferred.resume_at <= started + timedelta(hours=24, minutes=1)
    assert line_count(db, dossier.id) == 0 and sandbox.calls(f"{API}/dossiers/{DOSSIER}/accounts") == 0

    redis_connection().delete(f"firmsync:rate:octopus:{scope}:window")  # a day later
    enqueue_run(deferred.id)
    done = workers.wait_for(lambda: finished(db, deferred.id), timeout=180, what="the resumed Octopus sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == book_lines(sandbox)


def test_a_malformed_answer_fails_clearly_and_writes_nothing(db, sandbox, workers, octopus_dossier):
    dossier = octopus_dossier()
    workers.start()
    sandbox.fault("malformed", path=f"{API}/dossiers/{DOSSIER}/bookyears/2/bookings/modified")
    done = sync(db, workers, dossier.id, "the Octopus sync with a malformed answer")
    assert done.status == RunStatus.FAILED, f"{done.message}\n{workers.logs()}"
    assert done.message.startswith("Octopus sent an answer Firmsync could not read")
    assert line_count(db, dossier.id) == 0 and bookkeeping_snapshot(db, dossier.id)["Account"] == []
    again = sync(db, workers, dossier.id, "the Octopus sync after the malformed answer")
    assert again.status == RunStatus.SUCCEEDED and line_count(db, dossier.id) == book_lines(sandbox)
