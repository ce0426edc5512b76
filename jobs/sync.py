"""The sync job: ``jobs.sync.run(run_id)`` (ARCHITECTURE section 6).

One run syncs one dossier link:

1. skip runs that are no longer queued/deferred (a duplicate job) or were cancelled;
2. take the **dossier lock** (one sync per dossier at a time; a run finding it taken stays
   queued and is retried a little later); a heartbeat thread keeps the lock and the run's
   heartbeat fresh while it works;
3. open the link's connector (:func:`app.services.connectors.open_link_connector`:
   decrypted credentials, the rate limited HTTP client, refreshed tokens committed in their
   own transaction under the per-connection lock);
4. read every stream from its bookmark into the :class:`app.services.bookkeeping.SyncWriter` and commit
   **once** (pages are fetched a few chunks ahead of the writer by :mod:`jobs.read_ahead`); only then persist the new bookmarks, the counts and the run's outcome;
5. on any error roll back (the dossier keeps its previous data exactly) and end the run:
   ``AuthError`` -> ``needs_reconnect`` (run and connection, never retried);
   ``RateLimited`` -> ``deferred`` until ``resume_at`` (the job is scheduled again, and
   resumes from the committed bookmarks); ``TransientError`` -> retried after
   ``SYNC_RETRY_BACKOFF`` (30 s, 2 min, 8 min) then ``failed``; other connector errors ->
   ``failed`` with the connector's message; anything else -> ``failed`` with
   :data:`INTERNAL_ERROR` (the scrubbed traceback goes to the log).

A job that must run again later returns :class:`rq.Retry`: RQ schedules the same job id
(``sync-run-<run_id>``) again, so the worker must run with ``--with-scheduler``.
"""
import logging
import traceback
import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from rq import Retry, get_current_job

from app import locks
from app.extensions import db
from app.models import ConnectionStatus, DossierLink, RunStatus, SyncRun
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.secret_scrubbing import scrub_text
from app.services.connectors import SYNC, connection_secrets, open_link_connector
from connectors.base import (AuthError, BalanceRecord, CompanyProfileRecord, ConnectorError, LedgerLineRecord,
                             RateLimited, StreamState, SyncWindow, TransientError)
from jobs.profiles import write_profile
from jobs.progress import Heartbeat, Progress, SyncCancelled
from jobs.read_ahead import read_ahead

log = logging.getLogger("firmsync.jobs")

INTERNAL_ERROR = ("Firmsync hit an internal error while syncing; the previous data is unchanged. "
                  "Support has the details.")
CANCELLED = "The sync was cancelled; the dossier's data is unchanged."
WAITING_FOR_LOCK = "Waiting for another sync of this dossier to finish."
DEFAULT_BACKOFF = (30, 120, 480)


@dataclass
class Outcome:
    """What a finished (or interrupted) attempt tells the run row."""

    status: str
    category: str | None = None
    message: str | None = None
    retry_in: float | None = None


def run(run_id):
    """RQ entry point: sync run ``run_id``. Returns an :class:`rq.Retry` when it must run again."""
    sync_run = db.session.get(SyncRun, run_id)
    if sync_run is None:
        log.warning("run %s: no such run, job ignored", run_id)
        return None
    if sync_run.status not in (RunStatus.QUEUED, RunStatus.DEFERRED):
        log.info("run %s is %s: nothing to do", run_id, sync_run.status)
        return None
    if sync_run.cancel_requested or locks.cancel_flagged(run_id):
        return _finish(run_id, Outcome(RunStatus.CANCELLED, "cancelled", CANCELLED))
    refusal = _refusal(sync_run)
    if refusal is not None:
        return _finish(run_id, refusal)

    lock = locks.dossier_lock(sync_run.dossier_id)
    if not lock.acquire(blocking=False, token=locks.run_token(run_id)):
        sync_run.message = WAITING_FOR_LOCK
        db.session.commit()
        return _again(run_id, _setting("SYNC_LOCK_RETRY_SECONDS", 10))
    try:
        return _run_locked(run_id, lock)
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile (the heartbeat could not extend it)
            pass
        locks.forget_beat(run_id)


def _run_locked(run_id, lock):
    sync_run = db.session.get(SyncRun, run_id)
    job = get_current_job()
    now = utcnow()
    sync_run.status = RunStatus.RUNNING
    sync_run.started_at = now
    sync_run.heartbeat_at = now
    sync_run.resume_at = None
    sync_run.rq_job_id = job.id if job is not None else sync_run.rq_job_id
    sync_run.message = None
    sync_run.error_category = None
    sync_run.progress_records = 0
    sync_run.progress_percent = None
    sync_run.dossier.sync_status = RunStatus.RUNNING
    link_id, attempt = sync_run.link_id, sync_run.attempt
    db.session.commit()

    redis = redis_connection()
    engine = db.engine
    locks.beat(run_id, redis)
    heartbeat = Heartbeat(run_id, lock, redis=redis, engine=engine,
                          interval=_setting("SYNC_HEARTBEAT_SECONDS", 10), lock_seconds=_setting("SYNC_LOCK_SECONDS", 60))
    heartbeat.start()
    progress = Progress(engine, run_id, job, redis=redis, every_records=_setting("SYNC_PROGRESS_EVERY_RECORDS", 10_000),
                        every_seconds=_setting("SYNC_PROGRESS_EVERY_SECONDS", 2.0))
    http_holder = {}
    try:
        link = db.session.get(DossierLink, link_id)
        connector = open_link_connector(link, purpose=SYNC)
        http_holder["http"] = connector.http
        result, bookmarks = _read_into_writer(connector, link, run_id, progress)
        db.session.commit()  # the one commit of the dossier's data
    except BaseException as exc:  # noqa: BLE001 - every failure rolls back, then is classified
        db.session.rollback()
        heartbeat.stop()
        if not isinstance(exc, Exception):
            raise
        outcome = _classify(run_id, exc, attempt)
        if isinstance(exc, RateLimited) and exc.daily:
            outcome = _with_day_usage(outcome, http_holder.get("http"))
        again = _finish(run_id, outcome, api_calls=_calls(http_holder))
        _keep_diagnostic(run_id, http_holder)
        return again
    heartbeat.stop()
    again = _succeed(run_id, link_id, result, bookmarks, _calls(http_holder))
    _keep_diagnostic(run_id, http_holder)
    return again


def _read_into_writer(connector, link, run_id, progress):
    from app.services.bookkeeping import SyncWriter

    streams = connector.streams
    kinds = {stream.record_type for stream in streams}
    writer = SyncWriter(db.session, link.id, run_id,
                        balances_from_lines=LedgerLineRecord in kinds and BalanceRecord not in kinds)
    window = sync_window(link)
    app = current_app._get_current_object()
    bookmarks, profiles_changed = {}, False
    for stream in streams:
        progress.start_stream(stream.name)
        state = StreamState(bookmark=(link.bookmarks or {}).get(stream.name) if stream.incremental else None)
        records = read_ahead(lambda: connector.read(stream.name, state, window), app=app,
                             depth=_setting("SYNC_READ_AHEAD_CHUNKS", 8))
        for record in records:
            if isinstance(record, CompanyProfileRecord):
                profiles_changed = write_profile(db.session, link.id, record) or profiles_changed
            else:
                writer.write(record)
            progress.tick(state.total)
        if stream.incremental and state.new_bookmark is not None:
            bookmarks[stream.name] = state.new_bookmark
    progress.publish()  # a last cancellation check before the commit
    result = writer.finish()
    if profiles_changed:
        result.changed = True
    return result, bookmarks


def _succeed(run_id, link_id, result, bookmarks, api_calls):
    """Second transaction, after the data commit: bookmarks, counts, outcome."""
    link = db.session.get(DossierLink, link_id)
    if bookmarks:
        link.bookmarks = {**(link.bookmarks or {}), **bookmarks}
    sync_run = db.session.get(SyncRun, run_id)
    sync_run.accounts_count = getattr(result, "accounts", 0) or 0
    sync_run.balances_count = getattr(result, "balances", 0) or 0
    sync_run.lines_inserted = getattr(result, "lines_inserted", 0) or 0
    sync_run.lines_updated = getattr(result, "lines_updated", 0) or 0
    sync_run.lines_deleted = getattr(result, "lines_deleted", 0) or 0
    sync_run.changed = bool(getattr(result, "changed", False))
    sync_run.progress_percent = 100
    db.session.commit()
    _finish(run_id, Outcome(RunStatus.SUCCEEDED), api_calls=api_calls)
    return None


def _classify(run_id, exc, attempt):
    """Turn an exception into the run's :class:`Outcome` (logging what support needs)."""
    sync_run = db.session.get(SyncRun, run_id)
    secrets = connection_secrets(sync_run.link.connection) if sync_run else []
    if isinstance(exc, SyncCancelled):
        return Outcome(RunStatus.CANCELLED, "cancelled", CANCELLED)
    if isinstance(exc, AuthError):
        connection = sync_run.link.connection
        connection.status = ConnectionStatus.NEEDS_RECONNECT
        return Outcome(RunStatus.NEEDS_RECONNECT, exc.category, scrub_text(exc.message, secrets))
    if isinstance(exc, RateLimited):
        wait = max(1.0, float(exc.retry_after))
        return Outcome(RunStatus.DEFERRED, exc.category, scrub_text(exc.message, secrets), retry_in=wait)
    if isinstance(exc, TransientError):
        backoff = tuple(_setting("SYNC_RETRY_BACKOFF", DEFAULT_BACKOFF))
        message = scrub_text(exc.message, secrets)
        if attempt <= len(backoff):
            return Outcome(RunStatus.DEFERRED, exc.category, message, retry_in=backoff[attempt - 1])
        return Outcome(RunStatus.FAILED, exc.category, message)
    if isinstance(exc, ConnectorError):
        return Outcome(RunStatus.FAILED, exc.category, scrub_text(exc.message, secrets))
    log.error("run %s: internal error\n%s", run_id, scrub_text("".join(traceback.format_exception(exc)), secrets))
    return Outcome(RunStatus.FAILED, "internal", INTERNAL_ERROR)


def _finish(run_id, outcome, api_calls=0):
    """Write the outcome on the run and its dossier; schedule the job again when asked."""
    sync_run = db.session.get(SyncRun, run_id)
    now = utcnow()
    sync_run.status = outcome.status
    sync_run.error_category = outcome.category
    sync_run.message = (outcome.message or None) and outcome.message[:1000]
    sync_run.api_calls = (sync_run.api_calls or 0) + api_calls
    sync_run.heartbeat_at = now
    dossier = sync_run.dossier
    dossier.sync_status = outcome.status
    if outcome.retry_in is not None:
        sync_run.resume_at = now + timedelta(seconds=outcome.retry_in)
        if outcome.category != "rate_limited":
            sync_run.attempt = (sync_run.attempt or 1) + 1
        when = sync_run.resume_at.strftime("%H:%M UTC")
        sync_run.message = f"{sync_run.message} Firmsync will try again at {when}."[:1000]
    else:
        sync_run.finished_at = now
        if outcome.status == RunStatus.SUCCEEDED:
            dossier.last_synced_at = now
    db.session.commit()
    if outcome.status in RunStatus.FINISHED:
        locks.clear_cancel_flag(run_id)
    log.info("run %s: %s%s", run_id, outcome.status, f" ({outcome.category})" if outcome.category else "")
    from app.services.webhooks import sync_finished  # the firm's webhook endpoints hear how it ended

    sync_finished(run_id)
    if outcome.retry_in is not None:
        return _again(run_id, outcome.retry_in)
    return None


def _again(run_id, seconds):
    """Run this run's job again in ``seconds`` (same job id)."""
    seconds = max(1, int(round(seconds)))
    job = get_current_job()
    if job is not None and job.id.startswith("sync-run-"):
        return Retry(max=(job.number_of_retries or 0) + 1, interval=seconds)
    from app.services.syncs import enqueue_run

    enqueue_run(run_id, at=utcnow() + timedelta(seconds=seconds))
    return None


def _refusal(sync_run):
    """Why a run cannot start at all (its link ended, its connection is not usable), or None."""
    link = sync_run.link
    if link is None or link.ended_at is not None:
        return Outcome(RunStatus.CANCELLED, "link_ended",
                       "The sync of this dossier was changed before this run started; nothing was synced.")
    connection = link.connection
    if connection.status == ConnectionStatus.NEEDS_RECONNECT:
        return Outcome(RunStatus.NEEDS_RECONNECT, "auth",
                       f"The connection {connection.name} must be reconnected by an administrator before it can sync.")
    if connection.status == ConnectionStatus.DISABLED:
        return Outcome(RunStatus.FAILED, "config", f"The connection {connection.name} is disabled.")
    return None


# --------------------------------------------------------------------------------------
# Building the connector
# --------------------------------------------------------------------------------------


def sync_window(link, today=None):
    """The date range a run asks for: from the link's transfer date (else the first day of the
    year two years back) to today, with every month end in it (a superset of any reporting
    frequency's period ends)."""
    today = today or utcnow().date()
    start = link.valid_from or date(today.year - 2, 1, 1)
    period_ends, year, month = [], start.year, start.month
    while True:
        first_next = date(year + month // 12, month % 12 + 1, 1)
        end = first_next - timedelta(days=1)
        if end > today:
            break
        period_ends.append(end)
        year, month = first_next.year, first_next.month
    return SyncWindow(start=start, end=today, period_ends=tuple(period_ends))


def _with_day_usage(outcome, http):
    """A daily-budget deferral that also says how much of today's budget Firmsync has used
    ("Continues tomorrow: 640 of 1,000 calls used today."; fewer than the budget when other
    tools share the vendor's key)."""
    usage = http.daily_usage() if http is not None and hasattr(http, "daily_usage") else None
    if not usage:
        return outcome
    used, allowed = usage
    return dataclasses.replace(outcome, message=f"{outcome.message} Continues tomorrow: {min(used, allowed):,} of "
                                                f"{allowed:,} calls used today.")


def _keep_diagnostic(run_id, http_holder):
    """The run's recorded request shapes as its connection's last diagnostic (packages built
    from public information only; :mod:`app.services.diagnostics`)."""
    from app.services import diagnostics

    http = http_holder.get("http")
    if getattr(http, "recorder", None) is None:
        return
    sync_run = db.session.get(SyncRun, run_id)
    diagnostics.keep(sync_run.link.connection if sync_run and sync_run.link else None, sync_run, http)


def _calls(http_holder):
    http = http_holder.get("http")
    return int(getattr(http, "api_calls", 0) or 0)


def _setting(name, default):
    return locks.setting(name, default)
