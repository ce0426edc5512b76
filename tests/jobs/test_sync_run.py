"""The sync job run in-process: outcomes, rollback on every failure, idempotence, cancellation."""
import logging
import time
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry

from app.models import Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from connectors.base import AuthError, DataError, NotFoundError, RateLimited, TransientError
from app import locks
from app.services.queues import PEOPLE_QUEUE, sync_job_id, sync_queue
from jobs.sync import CANCELLED, INTERNAL_ERROR, WAITING_FOR_LOCK, run
from app.services.syncs import cancel_run, request_sync
from tests.jobs.conftest import bookkeeping_snapshot, line_count


def fresh(db, model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def sync_once(db, dossier_id, trigger=Trigger.MANUAL):
    queued = request_sync(dossier_id, trigger)
    run(queued.id)
    return fresh(db, SyncRun, queued.id)


def test_a_sync_writes_the_data_and_records_the_run(db, scripted, linked_dossier):
    dossier = linked_dossier()
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert done.lines_inserted == 30 and done.accounts_count == 3 and done.changed is True
    assert done.started_at and done.finished_at and done.duration_seconds is not None
    assert done.progress_records == 0 or done.progress_percent == 100
    assert line_count(db, dossier.id) == 30
    link = fresh(db, DossierLink, done.link_id)
    assert link.bookmarks == {"ledger_lines": "cursor-30"}
    d = fresh(db, Dossier, dossier.id)
    assert d.sync_status == RunStatus.SUCCEEDED and d.last_synced_at is not None


def test_second_sync_changes_nothing_and_reads_from_the_bookmark(db, scripted, linked_dossier):
    dossier = linked_dossier()
    sync_once(db, dossier.id)
    before = bookkeeping_snapshot(db, dossier.id)
    second = sync_once(db, dossier.id)
    assert second.status == RunStatus.SUCCEEDED
    assert second.changed is False and second.lines_inserted == second.lines_updated == 0
    assert bookkeeping_snapshot(db, dossier.id) == before
    assert ("ledger_lines", "cursor-30") in scripted.seen_bookmarks


@pytest.mark.parametrize("error, status, category", [
    (DataError("Demo Books sent an amount 'abc' that is not a number."), RunStatus.FAILED, "data"),
    (NotFoundError("Demo Books no longer shares company C1."), RunStatus.FAILED, "not_found"),
    (AuthError("The connection to Demo Books was revoked. An administrator must reconnect it."),
     RunStatus.NEEDS_RECONNECT, "auth"),
])
def test_connector_errors_fail_the_run_and_write_nothing(db, scripted, linked_dossier, error, status, category):
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 25, error)
    done = sync_once(db, dossier.id)
    assert done.status == status and done.error_category == category
    assert done.message == error.message
    assert line_count(db, dossier.id) == 0
    assert bookkeeping_snapshot(db, dossier.id)["Account"] == []  # accounts were rolled back too
    assert fresh(db, DossierLink, done.link_id).bookmarks == {}
    assert fresh(db, Dossier, dossier.id).last_synced_at is None


def test_a_failure_leaves_the_previous_data_exactly_as_it_was(db, scripted, linked_dossier):
    dossier = linked_dossier()
    sync_once(db, dossier.id)
    before = bookkeeping_snapshot(db, dossier.id)
    scripted.lines = 40  # new lines arrive, then the payload breaks
    scripted.fail_at = ("ledger_lines", 35, DataError("Demo Books sent a line without an account."))
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.FAILED
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_auth_error_marks_the_connection_for_reconnection_and_is_not_retried(db, scripted, linked_dossier):
    dossier = linked_dossier()
    scripted.fail_at = ("accounts", 0, AuthError("The connection to Scripted Books was revoked."))
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.NEEDS_RECONNECT
    link = fresh(db, DossierLink, done.link_id)
    assert fresh(db, Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE)).get_job_ids() == []
    # the next trigger does not even call the package
    scripted.seen_bookmarks.clear()
    nxt = sync_once(db, dossier.id)
    assert nxt.status == RunStatus.NEEDS_RECONNECT and scripted.seen_bookmarks == []


def test_rate_limited_defers_the_run_until_resume_at(db, scripted, linked_dossier):
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 3, RateLimited("Scripted Books asks us to slow down.", retry_after=3600))
    started = utcnow()
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.DEFERRED and done.error_category == "rate_limited"
    assert started + timedelta(seconds=3590) <= done.resume_at <= utcnow() + timedelta(seconds=3610)
    assert done.finished_at is None and line_count(db, dossier.id) == 0
    registry = ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE))
    assert sync_job_id(done.id) in registry.get_job_ids()
    scheduled_at = registry.get_scheduled_time(sync_job_id(done.id)).replace(tzinfo=None)
    assert abs((scheduled_at - done.resume_at).total_seconds()) < 5
    # a click meanwhile returns the deferred run; resuming later completes it
    assert request_sync(dossier.id, Trigger.MANUAL).id == done.id
    scripted.fail_at = None
    run(done.id)
    assert fresh(db, SyncRun, done.id).status == RunStatus.SUCCEEDED
    assert line_count(db, dossier.id) == 30


def test_transient_errors_are_retried_with_backoff_then_fail(app, db, scripted, linked_dossier):
    app.config["SYNC_RETRY_BACKOFF"] = (30, 120, 480)
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 0, TransientError("Scripted Books did not answer in time (3 tries)."))
    queued = request_sync(dossier.id, Trigger.MANUAL)
    waits = []
    for _ in range(3):
        before = utcnow()
        run(queued.id)
        current = fresh(db, SyncRun, queued.id)
        assert current.status == RunStatus.DEFERRED
        waits.append(round((current.resume_at - before).total_seconds() / 10) * 10)
    run(queued.id)
    final = fresh(db, SyncRun, queued.id)
    assert waits == [30, 120, 480]
    assert final.status == RunStatus.FAILED and final.attempt == 4
    assert "did not answer" in final.message


def test_an_unexpected_error_gives_a_readable_message_and_a_scrubbed_log(db, scripted, linked_dossier, caplog):
    dossier = linked_dossier(credentials={"api_key": "sk-live-4242-secret"})
    scripted.fail_at = ("ledger_lines", 2, ZeroDivisionError("boom with sk-live-4242-secret inside"))
    with caplog.at_level(logging.ERROR, logger="firmsync.jobs"):
        done = sync_once(db, dossier.id)
    assert done.status == RunStatus.FAILED and done.message == INTERNAL_ERROR
    assert "ZeroDivisionError" in caplog.text
    assert "sk-live-4242-secret" not in caplog.text
    assert line_count(db, dossier.id) == 0


def test_cancelling_a_running_sync_rolls_back(db, scripted, linked_dossier, app):
    app.config["SYNC_PROGRESS_EVERY_RECORDS"] = 5
    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)

    def cancel_midway(index):
        if index == 12:
            locks.flag_cancel(queued.id)  # what cancel_run does for a running run

    scripted.on_record = cancel_midway
    run(queued.id)
    done = fresh(db, SyncRun, queued.id)
    assert done.status == RunStatus.CANCELLED and done.message == CANCELLED
    assert line_count(db, dossier.id) == 0


def test_cancel_run_on_a_running_run_requests_cancellation(db, scripted, linked_dossier):
    queued = request_sync(linked_dossier().id, Trigger.MANUAL)
    queued.status = RunStatus.RUNNING
    db.session.commit()
    result = cancel_run(queued.id)
    assert result.status == RunStatus.RUNNING and result.cancel_requested is True
    assert locks.cancel_flagged(queued.id)


def test_a_second_job_for_the_same_dossier_waits_for_the_lock(db, scripted, linked_dossier):
    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    held = locks.dossier_lock(dossier.id)
    assert held.acquire(blocking=False, token=locks.run_token(999))
    try:
        run(queued.id)
    finally:
        held.release()
    waiting = fresh(db, SyncRun, queued.id)
    assert waiting.status == RunStatus.QUEUED and waiting.message == WAITING_FOR_LOCK
    assert line_count(db, dossier.id) == 0
    assert sync_job_id(queued.id) in ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE)).get_job_ids()
    run(queued.id)
    assert fresh(db, SyncRun, queued.id).status == RunStatus.SUCCEEDED


def test_a_run_of_an_ended_link_is_cancelled_without_calling_the_package(db, scripted, linked_dossier):
    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    link = fresh(db, DossierLink, queued.link_id)
    link.ended_at = utcnow()
    db.session.commit()
    run(queued.id)
    assert fresh(db, SyncRun, queued.id).status == RunStatus.CANCELLED
    assert scripted.seen_bookmarks == []


def test_a_duplicate_job_of_a_finished_run_does_nothing(db, scripted, linked_dossier):
    done = sync_once(db, linked_dossier().id)
    scripted.seen_bookmarks.clear()
    assert run(done.id) is None
    assert scripted.seen_bookmarks == []


def test_the_connector_gets_its_secret_config_and_saved_tokens_survive_a_rollback(db, linked_dossier):
    from app.models import Account
    from app.redis_connection import redis_connection
    from app.services.connectors import open_link_connector

    dossier = linked_dossier(package="demo", reference="c-1003", config={"base_url": "http://books.invalid/demo"},
                             credentials={"api_key": "demo-key"})
    link = dossier.links[0]
    connector = open_link_connector(link)
    assert connector.config["api_key"] == "demo-key"  # the secret field comes back from the encrypted column
    assert connector.reference == "c-1003" and connector.http is not None
    context = connector.context
    db.session.add(Account(dossier_id=dossier.id, number="999", name="pending in the sync's transaction"))
    with context.lock():
        assert redis_connection().exists(f"firmsync:sync:connection-lock:{link.connection_id}")
        context.save_credentials({"api_key": "demo-key", "refresh_token": "rotated-once"})  # re-entrant lock
    db.session.rollback()  # the sync fails afterwards
    assert context.load_credentials()["refresh_token"] == "rotated-once"
    assert fresh(db, Connection, link.connection_id).credentials["refresh_token"] == "rotated-once"


# --------------------------------------------------------------------------------------
# Recovery (docs/sync-engine.md "Recovery")
# --------------------------------------------------------------------------------------

def _locked_database():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE sync_run ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_deferred_run_is_never_queued_again_before_its_wait_is_over(db, scripted, linked_dossier):
    # RQ's scheduler keeps whole seconds (a job due at 12.7 s is queued at 12 s): the delay is
    # rounded up, so a parked run never comes back early to sleep the rest in its worker
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 3, RateLimited("Scripted Books asks us to slow down.", retry_after=2.3))
    started = time.time()
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.DEFERRED
    registry = ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE))
    queued_at = registry.connection.zscore(registry.key, sync_job_id(done.id))
    assert started + 2.3 <= queued_at <= time.time() + 3.3


@pytest.mark.parametrize("own_budget, front", [(True, True), (False, False)],
                         ids=["waiting its turn in our budget", "the package's 429"])
def test_a_run_waiting_its_turn_comes_back_at_the_front_of_its_queue(db, scripted, linked_dossier, monkeypatch,
                                                                     own_budget, front):
    # a run that has started and waits for its organisation's next slot goes before the runs
    # that have not started yet (a vendor's 429 or a 5xx goes to the back, as any retry)
    import types

    import jobs.sync as sync_job

    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 3, RateLimited("Firmsync is waiting for Scripted Books's API budget.",
                                                       retry_after=30, own_budget=own_budget))
    queued = request_sync(dossier.id, Trigger.MANUAL)
    job = types.SimpleNamespace(id=sync_job_id(queued.id), number_of_retries=0, meta={}, save_meta=lambda: None)
    monkeypatch.setattr(sync_job, "get_current_job", lambda: job)
    retry = run(queued.id)
    assert fresh(db, SyncRun, queued.id).status == RunStatus.DEFERRED
    assert retry.enqueue_at_front is front and min(retry.intervals) >= 30


def test_a_redis_outage_mid_sync_defers_as_infrastructure_then_gives_up_honestly(app, db, scripted, linked_dossier):
    import redis

    from jobs.sync import INFRASTRUCTURE_ERROR

    app.config["SYNC_RETRY_BACKOFF"] = (30, 120)
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 10, redis.exceptions.ConnectionError("Connection refused"))
    first = sync_once(db, dossier.id)
    assert first.status == RunStatus.DEFERRED and first.error_category == "infrastructure"
    assert first.message.startswith(INFRASTRUCTURE_ERROR) and "will try again at" in first.message
    assert line_count(db, dossier.id) == 0 and first.attempt == 2
    run(first.id)
    run(first.id)
    final = fresh(db, SyncRun, first.id)
    assert final.status == RunStatus.FAILED and final.error_category == "infrastructure"
    assert "try again" not in final.message and "3 tries" in final.message
    scripted.fail_at = None
    assert sync_once(db, dossier.id).status == RunStatus.SUCCEEDED


def test_a_database_fault_at_the_very_start_defers_the_run_instead_of_failing_its_job(db, scripted, linked_dossier,
                                                                                     monkeypatch):
    import jobs.sync as sync_job

    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    real = sync_job._refusal
    monkeypatch.setattr(sync_job, "_refusal", lambda sync_run: (_ for _ in ()).throw(_locked_database()))
    assert run(queued.id) is None  # no exception reaches RQ: the job does not fail
    deferred = fresh(db, SyncRun, queued.id)
    assert deferred.status == RunStatus.DEFERRED and deferred.error_category == "infrastructure"
    assert sync_job_id(queued.id) in ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE)).get_job_ids()
    monkeypatch.setattr(sync_job, "_refusal", real)
    run(queued.id)
    assert fresh(db, SyncRun, queued.id).status == RunStatus.SUCCEEDED and line_count(db, dossier.id) == 30


def test_when_even_the_outcome_cannot_be_written_the_job_is_scheduled_again(app, db, scripted, linked_dossier,
                                                                          monkeypatch):
    import jobs.sync as sync_job

    app.config["SYNC_OUTCOME_RETRY_SECONDS"] = (0,)
    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    writes = []

    def database_down(*args):
        writes.append(args)
        raise _locked_database()

    monkeypatch.setattr(sync_job, "_refusal", lambda sync_run: (_ for _ in ()).throw(_locked_database()))
    monkeypatch.setattr(sync_job, "_write_outcome", database_down)
    run_id = queued.id
    run(run_id)
    assert len(writes) == 2  # tried on a fresh session, then given up for now
    assert fresh(db, SyncRun, run_id).status == RunStatus.QUEUED
    assert sync_job_id(run_id) in ScheduledJobRegistry(queue=sync_queue(PEOPLE_QUEUE)).get_job_ids()


def test_a_final_transient_failure_never_promises_another_try(app, db, scripted, linked_dossier):
    app.config["SYNC_RETRY_BACKOFF"] = (30,)
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 0, TransientError(
        "Scripted Books had a problem on its side (HTTP 503, 4 tries). The sync will try again."))
    first = sync_once(db, dossier.id)
    assert first.status == RunStatus.DEFERRED and "try again at" in first.message
    run(first.id)
    final = fresh(db, SyncRun, first.id)
    assert final.status == RunStatus.FAILED
    assert "will try again" not in final.message and "HTTP 503" in final.message
    assert "stopped" in final.message


def test_waiting_for_a_turn_in_our_own_minute_budget_is_never_capped(app, db, scripted, linked_dossier):
    """Other runs of the organisation spent the minute's budget: queueing, not a failure (a day's
    budget still counts: the next test's cap applies to it)."""
    app.config["SYNC_MAX_DEFERRALS"] = 2
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 5, RateLimited("Firmsync is waiting for Scripted Books's API budget.",
                                                       retry_after=40, own_budget=True))
    queued = request_sync(dossier.id, Trigger.MANUAL)
    for _ in range(4):
        run(queued.id)
        current = fresh(db, SyncRun, queued.id)
        assert current.status == RunStatus.DEFERRED and current.deferrals == 0
    scripted.fail_at = ("ledger_lines", 5, RateLimited("Scripted Books's budget for today is used up.",
                                                       retry_after=3600, daily=True, own_budget=True))
    for expected in (1, 2):
        run(queued.id)
        assert fresh(db, SyncRun, queued.id).deferrals == expected
    run(queued.id)
    assert fresh(db, SyncRun, queued.id).status == RunStatus.FAILED


def test_rate_limited_deferrals_are_capped(app, db, scripted, linked_dossier):
    app.config["SYNC_MAX_DEFERRALS"] = 2
    dossier = linked_dossier()
    scripted.fail_at = ("ledger_lines", 5, RateLimited("Scripted Books asked Firmsync to slow down. "
                                                       "The sync will continue later.", retry_after=60))
    queued = request_sync(dossier.id, Trigger.MANUAL)
    for expected in (1, 2):
        run(queued.id)
        current = fresh(db, SyncRun, queued.id)
        assert current.status == RunStatus.DEFERRED and current.deferrals == expected
    run(queued.id)
    final = fresh(db, SyncRun, queued.id)
    assert final.status == RunStatus.FAILED and final.error_category == "rate_limited"
    assert "paused 3 times" in final.message and "continue later" not in final.message
    assert final.finished_at is not None and line_count(db, dossier.id) == 0


class _Recorded:
    """Monkeypatches ``jobs.sync.Heartbeat`` so a test can make it beat at a chosen record."""

    def __init__(self, monkeypatch):
        import jobs.sync as sync_job
        from jobs.progress import Heartbeat

        self.beats = []
        recorded = self

        class RecordedHeartbeat(Heartbeat):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                recorded.beats.append(self)

        monkeypatch.setattr(sync_job, "Heartbeat", RecordedHeartbeat)


def test_a_sync_that_lost_its_dossier_lock_rolls_back(db, scripted, linked_dossier, monkeypatch):
    recorded = _Recorded(monkeypatch)
    dossier = linked_dossier()

    def another_run_takes_the_lock(index):
        if index == 10:
            redis = locks.redis_connection()
            redis.set(locks.dossier_lock_key(dossier.id), locks.run_token(999))  # ours expired, theirs now
            recorded.beats[0].beat()

    scripted.on_record = another_run_takes_the_lock
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.DEFERRED and done.error_category == "lost_lock"
    assert line_count(db, dossier.id) == 0 and done.data_committed_at is None
    assert locks.dossier_lock_holder(dossier.id) == 999  # the other run's lock is left alone


def test_a_lock_that_vanished_with_redis_is_taken_back_and_the_sync_commits(db, scripted, linked_dossier,
                                                                            monkeypatch):
    recorded = _Recorded(monkeypatch)
    dossier = linked_dossier()

    def redis_forgets_the_lock(index):
        if index == 10:
            locks.redis_connection().delete(locks.dossier_lock_key(dossier.id))
            recorded.beats[0].beat()
            assert locks.dossier_lock_holder(dossier.id) is not None

    scripted.on_record = redis_forgets_the_lock
    done = sync_once(db, dossier.id)
    assert done.status == RunStatus.SUCCEEDED and line_count(db, dossier.id) == 30


def test_a_redis_outage_during_progress_does_not_stop_the_sync(app, db, scripted, linked_dossier, monkeypatch):
    import redis

    app.config["SYNC_PROGRESS_EVERY_RECORDS"] = 5
    dossier = linked_dossier()
    calls = []

    def flag(run_id, redis_client=None):
        calls.append(run_id)
        if 2 <= len(calls) <= 4:  # the job's own start check passes, then progress meets the outage
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return False

    monkeypatch.setattr(locks, "cancel_flagged", flag)
    queued = request_sync(dossier.id, Trigger.MANUAL)
    run(queued.id)
    done = fresh(db, SyncRun, queued.id)
    assert len(calls) > 4 and done.status == RunStatus.SUCCEEDED, done.message
    assert line_count(db, dossier.id) == 30


def test_the_data_commit_carries_the_counts_bookmarks_and_commit_marker(db, scripted, linked_dossier, monkeypatch):
    import jobs.sync as sync_job

    dossier = linked_dossier()
    queued = request_sync(dossier.id, Trigger.MANUAL)
    monkeypatch.setattr(sync_job, "_succeed", lambda run_id: None)  # the worker dies right after the commit
    run(queued.id)
    row = fresh(db, SyncRun, queued.id)
    assert row.status == RunStatus.RUNNING and row.data_committed_at is not None
    assert row.lines_inserted == 30 and row.accounts_count == 3 and row.changed is True
    assert fresh(db, DossierLink, row.link_id).bookmarks == {"ledger_lines": "cursor-30"}
