"""The sync job run in-process: outcomes, rollback on every failure, idempotence, cancellation."""
import logging
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry

from app.models import Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from connectors.base import AuthError, DataError, NotFoundError, RateLimited, TransientError
from app import locks
from app.services.queues import sync_job_id, sync_queue
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
    assert ScheduledJobRegistry(queue=sync_queue()).get_job_ids() == []
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
    registry = ScheduledJobRegistry(queue=sync_queue())
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
    assert sync_job_id(queued.id) in ScheduledJobRegistry(queue=sync_queue()).get_job_ids()
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
