"""End to end: real ``flask worker`` processes, the sandbox, the demo connector and the writer."""
import time
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.services.queues import PEOPLE_QUEUE, sync_job_id, sync_queue
from jobs.reaper import INTERRUPTED, reap
from app.services.syncs import request_sync
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count, run_row

pytestmark = pytest.mark.slow

BIG = "c-1002"  # 2,000 lines
SMALL = "c-1003"  # 40 lines


@pytest.fixture
def demo_dossier(linked_dossier, sandbox):
    def _make(company=SMALL, name="Northwind Trading"):
        return linked_dossier(package="demo", reference=company, name=name,
                              config={"base_url": f"{sandbox.url}/demo"},
                              credentials={"api_key": "demo-key"})
    return _make


def test_a_sync_end_to_end_through_a_real_worker(db, workers, demo_dossier, sandbox):
    dossier = demo_dossier()
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert done.lines_inserted == line_count(db, dossier.id) > 0
    assert done.accounts_count > 0 and done.changed is True
    assert done.api_calls >= 4  # fiscal years, accounts, balances, ledger lines, deleted
    assert done.rq_job_id == sync_job_id(run.id)
    link = db.session.get(DossierLink, done.link_id)
    assert "ledger_lines" in link.bookmarks

    # syncing twice: nothing changes, no row is touched
    before = bookkeeping_snapshot(db, dossier.id)
    again = request_sync(dossier.id, Trigger.MANUAL)
    second = workers.wait_for(lambda: finished(db, again.id), what="the second sync")
    assert second.status == RunStatus.SUCCEEDED
    assert second.changed is False and second.lines_inserted == second.lines_updated == second.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_kill_9_mid_sync_leaves_data_unchanged_and_the_rerun_matches_a_clean_sync(
        db, workers, demo_dossier, sandbox, linked_dossier):
    dossier = demo_dossier(BIG, "Janssens Architecten")
    before = bookkeeping_snapshot(db, dossier.id)
    sandbox.fault("slow", path=f"/demo/api/v1/companies/{BIG}/ledger-lines", count=20, delay=2.0)
    run = request_sync(dossier.id, Trigger.MANUAL)
    worker = workers.start(SYNC_HEARTBEAT_SECONDS=1, SYNC_PROGRESS_EVERY_SECONDS=0.2)
    workers.wait_for(lambda: (r := run_row(db, run.id)).status == RunStatus.RUNNING and r.progress_stream,
                     what="the sync to be running")
    time.sleep(1.5)  # well inside the slowed ledger pages
    workers.kill(worker)
    assert run_row(db, run.id).status == RunStatus.RUNNING
    assert bookkeeping_snapshot(db, dossier.id) == before  # the open transaction died with the worker

    result = reap(now=run_row(db, run.id).started_at + timedelta(minutes=30))
    assert result["reaped"] == [run.id]
    interrupted = run_row(db, run.id)
    assert interrupted.status == RunStatus.FAILED and interrupted.message == INTERRUPTED
    retry = run_row(db, result["retries"][0])
    assert retry.trigger == Trigger.RETRY

    sandbox.reset()
    workers.start()
    rerun = workers.wait_for(lambda: finished(db, retry.id), timeout=120, what="the re-run")
    assert rerun.status == RunStatus.SUCCEEDED, rerun.message

    clean = demo_dossier(BIG, "Clean copy")
    clean_run = request_sync(clean.id, Trigger.MANUAL)
    assert workers.wait_for(lambda: finished(db, clean_run.id), timeout=120).status == RunStatus.SUCCEEDED

    got, expected = bookkeeping_snapshot(db, dossier.id), bookkeeping_snapshot(db, clean.id)
    assert len(got["LedgerLine"]) == len(expected["LedgerLine"]) == 2000
    # ids, dossier ids and origin links differ between the two dossiers: compare the business values
    accounts = lambda rows: sorted(r[2:5] for r in rows)  # number, name, kind
    years = lambda rows: sorted(r[2:] for r in rows)  # start, end, origin, locked
    strip = lambda rows: sorted((r[3], r[6], r[7]) for r in rows)  # source id, booking date, amount
    assert accounts(got["Account"]) == accounts(expected["Account"])
    assert years(got["FiscalYear"]) == years(expected["FiscalYear"])
    assert len(got["PeriodBalance"]) == len(expected["PeriodBalance"])
    assert strip(got["LedgerLine"]) == strip(expected["LedgerLine"])


def test_429_with_retry_after_is_honoured_and_the_budget_holds(db, workers, demo_dossier, sandbox):
    seen = []
    inner = sandbox.server.app

    def recorder(environ, start_response):
        seen.append((time.monotonic(), environ.get("PATH_INFO", "")))
        return inner(environ, start_response)

    sandbox.budgets(demo={"per_minute": 600})
    path = f"/demo/api/v1/companies/{SMALL}/accounts"
    sandbox.fault("429", path=path, count=1, retry_after=2)
    sandbox.server.app = recorder
    try:
        dossier = demo_dossier()
        run = request_sync(dossier.id, Trigger.MANUAL)
        workers.start()
        done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    finally:
        sandbox.server.app = inner
    assert done.status == RunStatus.SUCCEEDED, done.message
    calls = [t for t, p in seen if p == path]
    assert len(calls) == 2  # the refused call and the one after the wait
    assert calls[1] - calls[0] >= 2.0  # no call before Retry-After
    stats = sandbox.stats()
    assert not any(stats.get("rejected", {}).values())  # the sandbox's own budget was never exceeded


def test_a_long_retry_after_defers_the_run(db, workers, demo_dossier, sandbox):
    sandbox.fault("429", path=f"/demo/api/v1/companies/{SMALL}/ledger-lines", count=1, retry_after=3600)
    dossier = demo_dossier()
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    scheduled = ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE))
    # the run's row says "deferred" as the job ends; RQ schedules the job's return just after
    deferred = workers.wait_for(lambda: (r := run_row(db, run.id)).status == RunStatus.DEFERRED
                                and sync_job_id(run.id) in scheduled.get_job_ids() and r,
                                what="the deferral and its scheduled job")
    assert deferred.resume_at is not None and deferred.error_category == "rate_limited"
    assert (deferred.resume_at - deferred.started_at).total_seconds() > 3000
    assert line_count(db, dossier.id) == 0


def test_a_malformed_payload_fails_with_a_readable_message_and_writes_nothing(db, workers, demo_dossier, sandbox):
    sandbox.fault("malformed", path=f"/demo/api/v1/companies/{SMALL}/ledger-lines", count=2)  # asked again once
    dossier = demo_dossier()
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.FAILED and done.error_category == "data"
    assert "Demo Books" in done.message and "Traceback" not in done.message
    assert bookkeeping_snapshot(db, dossier.id)["Account"] == [] and line_count(db, dossier.id) == 0


def test_one_unreadable_page_is_asked_again_and_the_sync_succeeds(db, workers, demo_dossier, sandbox):
    sandbox.fault("malformed", path=f"/demo/api/v1/companies/{SMALL}/ledger-lines", count=1)
    dossier = demo_dossier()
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert line_count(db, dossier.id) > 0 and [f["count"] for f in sandbox.stats()["faults"]] == [0]  # it was met


def test_a_revoked_key_marks_needs_reconnect(db, workers, linked_dossier, sandbox):
    dossier = linked_dossier(package="demo", reference=SMALL, config={"base_url": f"{sandbox.url}/demo"},
                             credentials={"api_key": "not-a-valid-key"})
    run = request_sync(dossier.id, Trigger.MANUAL)
    workers.start()
    done = workers.wait_for(lambda: finished(db, run.id), what="the sync")
    assert done.status == RunStatus.NEEDS_RECONNECT
    link = db.session.get(DossierLink, done.link_id)
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert "not-a-valid-key" not in (done.message or "")
