"""Yuki end to end: real ``flask worker`` processes, the sandbox's SOAP emulator and the writer.

A session expiring mid-sync, a refused access key, the day's call budget running out mid-sync and a
no-change night, each through the engine as the nightly run would meet them.
"""
import re
from datetime import date, timedelta

import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.services.syncs import enqueue_run, request_sync
from connectors.yuki import Yuki, emulator
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count, settled

pytestmark = pytest.mark.slow

COMPANY = "c-1001"


def yuki_config(sandbox):
    """The spec's sandbox config pointed at this sandbox, the access key apart (a secret: credentials)."""
    config = Yuki.spec.sandbox_settings(sandbox.url)
    return {k: v for k, v in config.items() if k != "api_key"}, {"api_key": config["api_key"]}


@pytest.fixture
def yuki_dossier(linked_dossier, sandbox):
    def _make(name="Bakkerij Janssens", credentials=None):
        config, key = yuki_config(sandbox)
        return linked_dossier(package="yuki", reference=emulator.administration_id(COMPANY), name=name,
                              config=config, credentials=credentials or key)
    return _make


def sync(db, workers, dossier_id, what, trigger=Trigger.MANUAL):
    queued = request_sync(dossier_id, trigger)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)


@pytest.fixture
def auth_counter(monkeypatch):
    """Counts the emulator's Authenticate calls and the session faults it answers."""
    counts = {"authenticate": 0, "session_faults": 0}
    authenticate, fault = emulator.op_authenticate, emulator.fault

    def counting_authenticate(params, region):
        counts["authenticate"] += 1
        return authenticate(params, region)

    def counting_fault(kind, code="soap:Server"):
        if kind == "session":
            counts["session_faults"] += 1
        return fault(kind, code)

    monkeypatch.setattr(emulator, "op_authenticate", counting_authenticate)
    monkeypatch.setattr(emulator, "fault", counting_fault)
    return counts


def test_a_session_expiring_mid_sync_is_renewed_once_per_expiry_and_the_sync_completes(
        db, sandbox, workers, yuki_dossier, auth_counter):
    workers.start()
    clean = yuki_dossier("Clean reference")
    first = sync(db, workers, clean.id, "the clean Yuki sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    clean_lines = line_count(db, clean.id)
    assert clean_lines > 0

    sandbox.modes(yuki=["session_expires_mid_sync"])
    auth_counter.update(authenticate=0, session_faults=0)
    dossier = yuki_dossier("Expiring sessions")
    done = sync(db, workers, dossier.id, "the Yuki sync with expiring sessions")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == clean_lines
    assert auth_counter["session_faults"] >= 1
    # one login, then exactly one Authenticate per expired session: never two in a row
    assert auth_counter["authenticate"] == auth_counter["session_faults"] + 1, auth_counter
    assert bookkeeping_snapshot(db, dossier.id)["PeriodBalance"]


def test_an_invalid_access_key_needs_a_reconnect_and_leaves_the_data(db, sandbox, workers, yuki_dossier,
                                                                      auth_counter):
    dossier = yuki_dossier()
    workers.start()
    first = sync(db, workers, dossier.id, "the first Yuki sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    before = bookkeeping_snapshot(db, dossier.id)

    bad_key = "yuki-wrong-key-7f3a9b21"
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    link.connection.credentials = {"api_key": bad_key}
    db.session.commit()
    auth_counter.update(authenticate=0)
    done = sync(db, workers, dossier.id, "the Yuki sync with a wrong key")
    assert done.status == RunStatus.NEEDS_RECONNECT, f"{done.message}\n{workers.logs()}"
    assert "access key" in done.message and bad_key not in done.message and "demo-key" not in done.message
    assert auth_counter["authenticate"] == 1, "a refused key is not tried twice"
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_a_daily_budget_spent_mid_sync_defers_the_run_until_it_is_back(db, sandbox, workers, yuki_dossier,
                                                                         monkeypatch):
    dossier = yuki_dossier()
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    link.valid_from = date(2023, 1, 1)  # both of the book's years (2023, 2024) in the window
    db.session.commit()
    workers.start()
    first = sync(db, workers, dossier.id, "the first Yuki sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    first_lines = line_count(db, dossier.id)
    before = bookkeeping_snapshot(db, dossier.id)

    added = sandbox.mutate(COMPANY, add=7)["added"]  # new entries at the start of 2023: that year is re-read
    assert all(line["date"] >= "2023-01-01" for line in sandbox.state.books[COMPANY].all_lines()
               if line["id"] in added)
    # the day's budget runs out a few calls into the next sync (inside the changed year's monthly balances)
    monkeypatch.setattr(emulator, "DAILY_CALLS", sandbox.calls("/yuki") + 14)
    started = utcnow()
    queued = request_sync(dossier.id, Trigger.NIGHTLY)
    deferred = workers.wait_for(lambda: settled(db, queued.id), timeout=180, what="the Yuki sync to stop")
    assert deferred.status == RunStatus.DEFERRED, f"{deferred.message}\n{workers.logs()}"
    assert deferred.error_category == "rate_limited" and deferred.finished_at is None
    assert "try again at" in deferred.message and deferred.resume_at.strftime("%H:%M UTC") in deferred.message
    # how much of its own daily budget Firmsync used: Yuki refused first (the key's day is shared)
    used = int(re.search(r"Continues tomorrow: ([\d,]+) of 1,000 calls used today\.", deferred.message)
               .group(1).replace(",", ""))
    assert 0 < used < 1000
    # until the vendor's midnight (Amsterdam): within a day, never an immediate retry
    assert started + timedelta(seconds=50) <= deferred.resume_at <= started + timedelta(hours=25)
    assert bookkeeping_snapshot(db, dossier.id) == before  # the partial read wrote nothing

    # Firmsync holds every call of this key back until then, too (the kit's block in Redis)
    blocks = list(redis_connection().scan_iter("firmsync:rate:yuki:*:blocked"))
    assert len(blocks) == 1

    # a new day: Yuki's budget is back, the kit's block has run out, and the deferred run resumes (what its
    # scheduled job does at resume_at)
    monkeypatch.setattr(emulator, "DAILY_CALLS", 1000)
    redis_connection().delete(*blocks)
    assert request_sync(dossier.id, Trigger.MANUAL).id == deferred.id  # a click meanwhile is the same run
    enqueue_run(deferred.id)
    done = workers.wait_for(lambda: finished(db, deferred.id), timeout=180, what="the resumed Yuki sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == first_lines + len(added)


def test_a_no_change_night_costs_a_handful_of_calls_and_writes_nothing(db, sandbox, workers, yuki_dossier):
    dossier = yuki_dossier()
    workers.start()
    first = sync(db, workers, dossier.id, "the first Yuki sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    assert first.lines_inserted == line_count(db, dossier.id) > 0
    before, calls = bookkeeping_snapshot(db, dossier.id), sandbox.calls("/yuki")

    night = sync(db, workers, dossier.id, "the no-change night", trigger=Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, night.message
    spent = sandbox.calls("/yuki") - calls
    assert spent <= 10 and night.api_calls == spent, (spent, night.api_calls)
    assert night.changed is False
    assert night.lines_inserted == night.lines_updated == night.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before
