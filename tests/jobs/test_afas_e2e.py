"""AFAS end to end: real ``flask worker`` processes, the sandbox's AFAS emulator (the small company c-1003, AFAS
administration 1003) and the writer. A first sync, a no-change resync, an incremental night with added, corrected
and deleted entries, a token revoked in Profit, a 429 and AFAS's 503 maintenance (each deferring the run, which
resumes), and a malformed answer (a clear error, nothing written)."""
from datetime import timedelta

import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.services.syncs import enqueue_run, request_sync
from connectors.afas import Afas
from connectors.afas import emulator
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count, settled

pytestmark = pytest.mark.slow

COMPANY, ADMINISTRATION = "c-1003", "1003"
TRANSACTIONS = "/afas/12345/ProfitRestServices/connectors/Profit_Transactions"


@pytest.fixture
def afas_file(db, sandbox, workers, linked_dossier):
    """``sync(what, trigger)`` runs one sync of a dossier linked to administration 1003 and answers the finished run."""
    settings = Afas.spec.sandbox_settings(sandbox.url)
    token = settings.pop("token")
    dossier = linked_dossier(package="afas", reference=ADMINISTRATION, config=settings, credentials={"token": token},
                             name="Northwind Trading")

    def sync(what="the AFAS sync", trigger=Trigger.MANUAL):
        run = request_sync(dossier.id, trigger)
        return work(lambda: finished(db, run.id), what)

    def work(predicate, what):
        """A burst worker runs what is queued, then stops (no idle worker left to stop after the test)."""
        workers.start(burst=True)
        try:
            return workers.wait_for(predicate, timeout=180, what=what)
        except AssertionError:  # the worker may stop between a poll and the check that it still runs
            return predicate() or pytest.fail(f"timed out waiting for {what}\n{workers.logs()}")

    sync.dossier, sync.book, sync.token = dossier, sandbox.state.books[COMPANY], token
    sync.work, sync.logs = work, workers.logs
    return sync


def test_a_first_sync_a_no_change_night_then_an_incremental_night(db, sandbox, afas_file):
    first = afas_file("the first sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{afas_file.logs()}"
    assert first.lines_inserted == line_count(db, afas_file.dossier.id) == afas_file.book.line_count
    snapshot = bookkeeping_snapshot(db, afas_file.dossier.id)
    assert snapshot["PeriodBalance"] and snapshot["FiscalYear"] and snapshot["Account"]
    calls = sandbox.calls("/afas")

    night = afas_file("the no-change night", Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, night.message
    spent = sandbox.calls("/afas") - calls
    assert night.api_calls == spent <= 8, spent  # one page per GetConnector
    assert night.changed is False and night.lines_inserted == night.lines_updated == night.lines_deleted == 0
    assert bookkeeping_snapshot(db, afas_file.dossier.id) == snapshot

    changes = sandbox.mutate(COMPANY, add=2, change=1, delete=1)
    incremental = afas_file("the incremental night", Trigger.NIGHTLY)
    assert incremental.status == RunStatus.SUCCEEDED, f"{incremental.message}\n{afas_file.logs()}"
    assert incremental.lines_inserted == len(changes["added"]) > 0
    assert incremental.lines_updated == len(changes["changed"]) > 0
    assert incremental.lines_deleted == len(changes["deleted"]) > 0
    assert line_count(db, afas_file.dossier.id) == \
        afas_file.book.line_count + len(changes["added"]) - len(changes["deleted"])
    # every night asked Profit_Transactions once: only what changed since the bookmark
    assert sandbox.calls(TRANSACTIONS) == 3


def test_a_malformed_answer_then_a_healing_rerun_then_a_token_revoked_in_profit(db, sandbox, afas_file):
    sandbox.fault("malformed", path=TRANSACTIONS, count=2)  # asked again once
    done = afas_file("the sync meeting a broken answer")
    assert done.status == RunStatus.FAILED, f"{done.message}\n{afas_file.logs()}"
    assert done.error_category == "data" and "AFAS sent an answer Firmsync could not read." in done.message
    assert "Traceback" not in done.message
    assert not any(bookkeeping_snapshot(db, afas_file.dossier.id).values())  # not a row written

    healed = afas_file("the re-run")
    assert healed.status == RunStatus.SUCCEEDED, healed.message
    assert line_count(db, afas_file.dossier.id) == afas_file.book.line_count
    before = bookkeeping_snapshot(db, afas_file.dossier.id)

    sandbox.fault("revoke", path="/afas")  # the App connector's token is revoked in Profit
    calls = sandbox.calls("/afas")
    revoked = afas_file("the sync after the revocation")
    assert revoked.status == RunStatus.NEEDS_RECONNECT, f"{revoked.message}\n{afas_file.logs()}"
    assert sandbox.calls("/afas") - calls == 1, "a refused token is not tried again"
    link = db.session.query(DossierLink).filter_by(dossier_id=afas_file.dossier.id).one()
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, afas_file.dossier.id) == before
    message = revoked.message
    assert "AFAS" in message and "reconnect" in message.lower()
    assert afas_file.token not in message and "AfasToken" not in message and "Traceback" not in message


SLOW_DOWNS = {  # how AFAS asks Firmsync to wait, and for how long
    "429": (lambda sandbox: sandbox.fault("429", path=TRANSACTIONS, retry_after=600), 600),
    "503 maintenance": (lambda sandbox: sandbox.modes(afas=["maintenance"]), emulator.MAINTENANCE_SECONDS),
}


@pytest.mark.parametrize("slow_down", list(SLOW_DOWNS))
def test_a_slow_down_defers_the_run_until_then_and_it_resumes(db, sandbox, afas_file, slow_down):
    first = afas_file("the first sync")
    assert first.status == RunStatus.SUCCEEDED, first.message
    before = bookkeeping_snapshot(db, afas_file.dossier.id)
    added = sandbox.mutate(COMPANY, add=3)["added"]

    ask, seconds = SLOW_DOWNS[slow_down]
    ask(sandbox)
    started = utcnow()
    queued = request_sync(afas_file.dossier.id, Trigger.NIGHTLY)
    deferred = afas_file.work(lambda: settled(db, queued.id), "the run to stop")
    assert deferred.status == RunStatus.DEFERRED, f"{deferred.message}\n{afas_file.logs()}"
    assert deferred.error_category == "rate_limited" and deferred.finished_at is None
    assert started + timedelta(seconds=seconds - 60) <= deferred.resume_at <= utcnow() + timedelta(seconds=seconds + 5)
    assert bookkeeping_snapshot(db, afas_file.dossier.id) == before  # the partial read wrote nothing
    blocks = list(redis_connection().scan_iter("firmsync:rate:afas:*:blocked"))
    assert len(blocks) == 1  # every worker holds its AFAS calls back until then

    # the time has come: AFAS answers again, the block has run out, and the run resumes (its scheduled job)
    sandbox.modes(afas=[])
    redis_connection().delete(*blocks)
    enqueue_run(deferred.id)
    done = afas_file.work(lambda: finished(db, deferred.id), "the resumed run")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{afas_file.logs()}"
    assert line_count(db, afas_file.dossier.id) == afas_file.book.line_count + len(added)
