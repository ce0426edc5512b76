"""Sage Business Cloud Accounting through real workers and the sandbox's emulator: first syncs on both balance
paths, no-change resyncs, an incremental night, an unreadable answer, tokens rotating under two concurrent
workers, a 429, a spent day (deferred, then resumed) and a revoked grant."""
from datetime import date

import pytest

from app.models import Connection, ConnectionStatus, Dossier, DossierLink, PeriodBalance, RunStatus, Trigger
from app.redis_connection import redis_connection
from app.services.syncs import enqueue_run, request_sync
from connectors.sage_bca import emulator
from tests.connectors.test_sage_bca import connect, sandbox_config
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count, settled

pytestmark = pytest.mark.slow

GB, BE = "c-1003", "c-1001"  # /trial_balance, and balances derived from the chart's balance details
ENTRIES = "/sage/v3.1/ledger_entries"


def rows(db, model, dossier_id):
    db.session.expire_all()
    return db.session.query(model).filter_by(dossier_id=dossier_id).count()


@pytest.fixture
def sage_files(db, firm, sandbox, workers):
    """``make(*companies)``: one firm connection (one consent) and a dossier per company linked to its business."""
    def make(*companies, credentials=None):
        credentials = credentials or connect(sandbox)
        connection = Connection(firm_id=firm.id, package="sage_bca", kind="accounting", name="Sage office",
                                config=sandbox_config(sandbox), credentials=credentials)
        db.session.add(connection)
        dossiers = []
        for company in companies:
            dossier = Dossier(firm_id=firm.id, name=sandbox.state.books[company].spec.name, frequency="month")
            db.session.add(dossier)
            db.session.flush()
            db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                                       reference=emulator.business_id(company), scenario="replace",
                                       valid_from=date(2023, 1, 1)))
            dossiers.append(dossier)
        db.session.commit()
        make.connection_id, make.credentials = connection.id, credentials
        return dossiers

    return make


def a_minute_later(sandbox):
    """Sage's minute and Firmsync's count of it start afresh (a first sync of two years spends half the minute)."""
    sandbox.budgets(sage_bca={"per_minute": emulator.PER_MINUTE})
    redis = redis_connection()
    for key in redis.scan_iter("firmsync:rate:sage_bca:*:window"):
        redis.delete(key)


def sync(db, workers, dossier_id, what, trigger=Trigger.MANUAL):
    queued = request_sync(dossier_id, trigger)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)


def test_a_gb_business_first_sync_no_change_resync_incremental_night_and_an_unreadable_answer(
        db, sandbox, workers, sage_files):
    dossier, = sage_files(GB)
    book = sandbox.state.books[GB]
    workers.start()
    first = sync(db, workers, dossier.id, "the first Sage sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == first.lines_inserted == book.line_count
    assert rows(db, PeriodBalance, dossier.id) > 0 and sandbox.calls("/sage/v3.1/trial_balance") > 0
    before, calls = bookkeeping_snapshot(db, dossier.id), sandbox.calls("/sage/v3.1")

    # a no-change night: nothing written, a handful of calls (no trial balance is read again)
    quiet = sync(db, workers, dossier.id, "the no-change resync", trigger=Trigger.NIGHTLY)
    assert quiet.status == RunStatus.SUCCEEDED, quiet.message
    assert quiet.changed is False and quiet.lines_inserted == quiet.lines_updated == quiet.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before
    assert quiet.api_calls == sandbox.calls("/sage/v3.1") - calls <= 4

    # an incremental night: exactly the changes
    entries_read = sandbox.calls(ENTRIES)
    changes = sandbox.mutate(GB, add=3, change=1, delete=1)
    a_minute_later(sandbox)
    night = sync(db, workers, dossier.id, "the incremental night", trigger=Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, f"{night.message}\n{workers.logs()}"
    assert night.lines_inserted == len(changes["added"]) > 0
    assert night.lines_updated == len(changes["changed"]) > 0
    assert night.lines_deleted == len(changes["deleted"]) > 0
    assert line_count(db, dossier.id) == book.line_count + len(changes["added"]) - len(changes["deleted"])
    assert sandbox.calls(ENTRIES) - entries_read == 1  # one page of changes; deleted and balances reuse it

    # an unreadable answer: a clear failure, nothing written; the next run heals
    after_night = bookkeeping_snapshot(db, dossier.id)
    sandbox.mutate(GB, add=1)
    a_minute_later(sandbox)
    sandbox.fault("malformed", path=ENTRIES, count=2)  # asked again once
    failed = sync(db, workers, dossier.id, "the failing Sage sync")
    assert failed.status == RunStatus.FAILED, f"{failed.message}\n{workers.logs()}"
    assert failed.error_category == "data"
    assert "Sage Accounting sent an answer Firmsync could not read" in failed.message
    assert "Traceback" not in failed.message
    assert bookkeeping_snapshot(db, dossier.id) == after_night
    healed = sync(db, workers, dossier.id, "the re-run")
    assert healed.status == RunStatus.SUCCEEDED and healed.lines_inserted > 0, healed.message


def test_a_business_outside_ca_gb_ie_syncs_balances_from_the_chart_then_rests(db, sandbox, workers, sage_files):
    dossier, = sage_files(BE)
    workers.start()
    first = sync(db, workers, dossier.id, "the first Sage sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == sandbox.state.books[BE].line_count
    assert rows(db, PeriodBalance, dossier.id) > 0
    assert sandbox.calls("/sage/v3.1/trial_balance") == 0
    before = bookkeeping_snapshot(db, dossier.id)
    again = sync(db, workers, dossier.id, "the no-change resync", trigger=Trigger.NIGHTLY)
    assert again.status == RunStatus.SUCCEEDED and again.changed is False, again.message
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_tokens_expiring_mid_sync_rotate_under_two_concurrent_workers(db, sandbox, workers, sage_files):
    sandbox.modes(sage_bca=["tokens_die_early"])  # every access token dies a second after it was issued
    # both workers start on an expired token: one refreshes under the connection's lock, the other takes its result
    gb, be = sage_files(GB, BE, credentials={**connect(sandbox), "expires_at": 1})
    workers.start(2)
    runs = [request_sync(gb.id, Trigger.MANUAL), request_sync(be.id, Trigger.MANUAL)]
    done = [workers.wait_for(lambda run=run: finished(db, run.id), timeout=180, what="a concurrent Sage sync")
            for run in runs]
    assert all(run.status == RunStatus.SUCCEEDED for run in done), f"{[r.message for r in done]}\n{workers.logs()}"
    assert line_count(db, gb.id) == sandbox.state.books[GB].line_count
    assert line_count(db, be.id) == sandbox.state.books[BE].line_count
    db.session.expire_all()
    connection = db.session.get(Connection, sage_files.connection_id)
    assert connection.status == ConnectionStatus.ACTIVE
    provider = sandbox.state.oauth["sage_bca"]
    refreshes = sandbox.stats()["token_refreshes"]["sage_bca"]
    # many renewals, none of them a reuse of a spent refresh token (each would have been refused), and the
    # stored refresh token is the latest one, still unused
    assert refreshes >= 1
    assert sum(1 for grant in provider.refresh_tokens.values() if grant["used"]) == refreshes
    assert provider.refresh_tokens[connection.credentials["refresh_token"]]["used"] is False


def test_a_429_is_waited_out_a_spent_day_defers_then_resumes_and_a_revoked_grant_needs_reconnect(
        db, sandbox, workers, sage_files, monkeypatch):
    dossier, = sage_files(GB)
    workers.start()
    sandbox.fault("429", path=ENTRIES, count=1, retry_after=1)
    first = sync(db, workers, dossier.id, "the first Sage sync, with one 429")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == sandbox.state.books[GB].line_count
    before = bookkeeping_snapshot(db, dossier.id)

    added = sandbox.mutate(GB, add=2)["added"]
    a_minute_later(sandbox)
    provider, business = sandbox.state.oauth["sage_bca"], emulator.business_id(GB)
    monkeypatch.setattr(emulator, "DAILY_CALLS", provider.day_calls[business] + 2)  # the day runs out mid-sync
    queued = request_sync(dossier.id, Trigger.NIGHTLY)
    deferred = workers.wait_for(lambda: settled(db, queued.id), timeout=180, what="the Sage sync to stop")
    assert deferred.status == RunStatus.DEFERRED, f"{deferred.message}\n{workers.logs()}"
    assert deferred.error_category == "rate_limited" and deferred.resume_at is not None
    assert bookkeeping_snapshot(db, dossier.id) == before  # the partial read wrote nothing

    # a new day: Sage's count is back, the kit's block has run out; the deferred run resumes
    monkeypatch.setattr(emulator, "DAILY_CALLS", 2500)
    a_minute_later(sandbox)
    blocks = list(redis_connection().scan_iter("firmsync:rate:sage_bca:*:blocked"))
    assert blocks
    redis_connection().delete(*blocks)
    enqueue_run(deferred.id)
    done = workers.wait_for(lambda: finished(db, deferred.id), timeout=180, what="the resumed Sage sync")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert line_count(db, dossier.id) == sandbox.state.books[GB].line_count + len(added)

    # the user disconnects Firmsync in Sage: a reconnect is needed, the data stays, no secret is shown
    before = bookkeeping_snapshot(db, dossier.id)
    sandbox.state.oauth["sage_bca"].revoke_all()
    revoked = sync(db, workers, dossier.id, "the sync after the revocation")
    assert revoked.status == RunStatus.NEEDS_RECONNECT, f"{revoked.message}\n{workers.logs()}"
    db.session.expire_all()
    assert db.session.get(Connection, sage_files.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before
    message = revoked.message or ""
    assert "Sage Accounting" in message and "reconnect" in message.lower() and "invalid_grant" not in message
    stored = db.session.get(Connection, sage_files.connection_id).credentials
    for secret in (stored["access_token"], stored["refresh_token"], sandbox_config(sandbox)["client_secret"]):
        assert secret not in message
