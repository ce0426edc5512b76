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
   **once** (pages are fetched a few chunks ahead of the writer by :mod:`jobs.read_ahead`; on
   SQLite everything is fetched into a spool first and written after, :mod:`jobs.staging`); only then persist the new bookmarks, the counts and the run's outcome;
5. on any error roll back (the dossier keeps its previous data exactly) and end the run:
   ``AuthError`` -> ``needs_reconnect`` (run and connection, never retried);
   ``RateLimited`` -> ``deferred`` until ``resume_at`` (the job is scheduled again, and
   resumes from the committed bookmarks); ``TransientError`` -> retried after
   ``SYNC_RETRY_BACKOFF`` (30 s, 2 min, 8 min) then ``failed``; other connector errors ->
   ``failed`` with the connector's message; anything else -> ``failed`` with
   :data:`INTERNAL_ERROR` (the scrubbed traceback goes to the log).

A job that must run again later returns :class:`rq.Retry`: RQ schedules the same job id
(``sync-run-<run_id>``) again, so the worker must run with ``--with-scheduler``.

Recovery (docs/sync-engine.md "Recovery"): a fault of Firmsync's own services (Redis, the
database: :func:`infrastructure_fault`) anywhere in the job, its very start included, ends the
attempt ``deferred`` with category ``infrastructure`` and the same backoff as a vendor's 5xx;
the outcome is written on a fresh session with a few retries; the data commit carries
``SyncRun.data_committed_at``; a run whose dossier lock was lost rolls back; rate-limited
deferrals are capped by ``SYNC_MAX_DEFERRALS``.
"""
import logging
import math
import re
import time
import traceback
import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from redis import exceptions as redis_errors
from rq import Retry, get_current_job
from sqlalchemy import exc as sql_errors
from sqlalchemy import update

from app import locks
from app.extensions import db
from app.models import ConnectionStatus, DossierLink, RunStatus, SyncRun
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.secret_scrubbing import scrub_text
from app.services import data_checks
from app.services import response_stages
from app.services.connectors import SYNC, connection_secrets, open_link_connector
from app.services.queues import queue_rank
from app.services.sync_windows import sync_window
from app.services.syncs import release_next_backfills, sets_file_status
from connectors.base import (AuthError, BalanceRecord, CompanyProfileRecord, ConnectorError, LedgerLineRecord,
                             RateLimited, StreamState, TransientError)
from jobs.profiles import write_profile
from jobs.progress import Heartbeat, Progress, SyncCancelled, hold_leases
from jobs import staging
from jobs.read_ahead import read_ahead

log = logging.getLogger("firmsync.jobs")

INTERNAL_ERROR = ("Firmsync hit an internal error while syncing; the previous data is unchanged. "
                  "Support has the details.")
CANCELLED = "The sync was cancelled; the dossier's data is unchanged."
WAITING_FOR_LOCK = "Waiting for another sync of this dossier to finish."
DEFAULT_BACKOFF = (30, 120, 480)
#: category of a fault of Firmsync's own services (Redis, the database)
INFRASTRUCTURE = "infrastructure"
INFRASTRUCTURE_ERROR = "Firmsync's own services were briefly unavailable; the previous data is unchanged."
INFRASTRUCTURE_GAVE_UP = ("Firmsync's own services were unavailable at each of its {tries} tries; the previous data "
                          "is unchanged. The next nightly sync or a new \u201cSync now\u201d starts again.")
#: a transient vendor error after the last retry (the vendor's own sentence comes first)
GAVE_UP = "Firmsync tried {tries} times and stopped; the previous data is unchanged."
LOST_LOCK = "lost_lock"
LOST_LOCK_MESSAGE = ("This sync lost its claim on the dossier while it ran (Firmsync's own services were "
                     "interrupted), so it wrote nothing; the previous data is unchanged.")
TOO_MANY_DEFERRALS = ("{message} The sync was paused {count} times because the API budget ran out before it "
                      "could finish, so Firmsync stopped trying; the previous data is unchanged. Support can "
                      "check whether {package} allows a larger budget.")
DEFAULT_MAX_DEFERRALS = 5
#: pauses before each new try of writing a run's outcome after an infrastructure fault
OUTCOME_RETRY_SECONDS = (0.5, 1, 2, 4, 8)
#: the HTTP client's promises of another try: never part of a final message
_RETRY_PROMISE = re.compile(r"\s*The sync will (?:try again|continue later|continue tomorrow)[^.]*\.")


class LostLock(Exception):
    """Raised before the commit of a sync whose dossier lock was lost (another run may hold it)."""


@dataclass
class Outcome:
    """What a finished (or interrupted) attempt tells the run row."""

    status: str
    category: str | None = None
    message: str | None = None
    retry_in: float | None = None
    #: retry after ``SYNC_RETRY_BACKOFF[attempt - 1]``, fail once those are used up
    backoff: bool = False
    #: a rate-limited deferral: the package's display name when it waits for a budget that
    #: reopens within the day (the run's message then says when it resumes), else None
    waiting_for: str | None = None
    #: a parked attempt that fetched (and kept) new answers: not a fruitless deferral
    progressed: bool = False
    #: a deferral that only waits its turn in Firmsync's own budget of a minute (or so): other
    #: runs of the same organisation or connection spent it, which is queueing, not a failure
    #: of this run; never counted against ``SYNC_MAX_DEFERRALS`` (a day's budget is)
    waiting_turn: bool = False


def run(run_id):
    """RQ entry point: sync run ``run_id``. Returns an :class:`rq.Retry` when it must run again.

    Nothing escapes unclassified: a fault raised before the attempt's own error handling
    (reading the run, taking the dossier lock, marking it running) ends like any other
    (:func:`_failed_at_start`), so a run is never left ``queued`` behind a failed job.
    """
    try:
        return _start(run_id)
    except Exception as exc:  # noqa: BLE001 - classified, recorded, retried when transient
        return _failed_at_start(run_id, exc)


def _start(run_id):
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
        except Exception:  # expired meanwhile (the heartbeat could not extend it), or Redis is away
            pass
        try:
            locks.forget_beat(run_id)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            pass  # the reaper tells a stale beat from a live one


def _failed_at_start(run_id, exc):
    """End an attempt whose fault came before (or after) :func:`_run_locked`'s own handling.

    The outcome is written like any other; when even that is impossible (the database is
    still away), the job is scheduled again with the run left as it was, and when Redis is
    away too the job fails and the reaper re-queues the run from the database.
    """
    _rollback_quietly()
    outcome = _classify(run_id, exc, None)
    try:
        return _finish(run_id, outcome)
    except Exception as second:
        if not infrastructure_fault(second):
            raise
        backoff = tuple(_setting("SYNC_RETRY_BACKOFF", DEFAULT_BACKOFF))
        log.warning("run %s: could not record its outcome (%s); its job runs again in %s s",
                    run_id, second.__class__.__name__, backoff[0])
        return _again(run_id, backoff[0])


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
    sync_run.attempt_api_calls = 0
    sync_run.progress_percent = None
    sync_run.data_committed_at = None
    if sets_file_status(sync_run.link):
        sync_run.dossier.sync_status = RunStatus.RUNNING
    link_id, attempt, rank = sync_run.link_id, sync_run.attempt, queue_rank(sync_run.queue)
    db.session.commit()

    redis = redis_connection()
    engine = db.engine
    locks.beat(run_id, redis)
    http_holder = {}
    heartbeat = Heartbeat(run_id, lock, redis=redis, engine=engine, calls=lambda: _calls(http_holder),
                          interval=_setting("SYNC_HEARTBEAT_SECONDS", 10), lock_seconds=_setting("SYNC_LOCK_SECONDS", 60))
    heartbeat.start()
    progress = Progress(engine, run_id, job, redis=redis, every_records=_setting("SYNC_PROGRESS_EVERY_RECORDS", 10_000),
                        every_seconds=_setting("SYNC_PROGRESS_EVERY_SECONDS", 2.0))
    try:
        link = db.session.get(DossierLink, link_id)
        connector = open_link_connector(link, purpose=SYNC)
        http_holder["http"] = connector.http
        _attach_journal(run_id, http_holder)
        hold_leases(connector.http, run_id, rank)
        result, bookmarks = _read_into_writer(connector, link, run_id, progress)
        if heartbeat.lost_lock:
            raise LostLock()
        _mark_committed(run_id, link, result, bookmarks, _calls(http_holder))
        db.session.commit()  # the one commit of the dossier's data, with the run's counts and bookmarks
    except BaseException as exc:  # noqa: BLE001 - every failure rolls back, then is classified
        _rollback_quietly()
        heartbeat.stop()
        if not isinstance(exc, Exception):
            raise
        outcome = _classify(run_id, exc, attempt)
        if isinstance(exc, RateLimited):
            outcome = _parked(run_id, outcome, http_holder)
            outcome = dataclasses.replace(outcome, waiting_turn=exc.own_budget and not exc.daily)
        if isinstance(exc, RateLimited) and exc.daily:
            outcome = _with_day_usage(outcome, http_holder.get("http"))
        _keep_diagnostic_quietly(run_id, http_holder, outcome)  # before the outcome: a finished run has it
        return _finish(run_id, outcome, api_calls=_calls(http_holder))
    heartbeat.stop()
    _keep_diagnostic_quietly(run_id, http_holder, Outcome(RunStatus.SUCCEEDED))
    again = _succeed(run_id)
    data_checks.enqueue_check_quietly(run_id)
    return again


def _read_into_writer(connector, link, run_id, progress):
    """Read every stream of ``connector`` from the link's bookmarks into a
    :class:`~app.services.bookkeeping.SyncWriter`; answer its result and the new bookmarks.

    Nothing is committed here. On SQLite (``SYNC_STAGE_BEFORE_WRITE``, :mod:`jobs.staging`)
    every stream is first read into a spool with no transaction open, then the spool is
    written: the database's write lock is held only while writing. Elsewhere the records go
    into the writer as they come, the next pages fetched meanwhile (:mod:`jobs.read_ahead`).
    """
    from app.services.bookkeeping import SyncWriter

    streams = connector.streams
    kinds = {stream.record_type for stream in streams}
    link_id, dossier_id, saved = link.id, link.dossier_id, dict(link.bookmarks or {})
    window = _run_window(link, run_id)
    app = current_app._get_current_object()
    depth = _setting("SYNC_READ_AHEAD_CHUNKS", 8)
    bookmarks = {}

    def fetch(receive):
        for stream in streams:
            progress.start_stream(stream.name)
            state = StreamState(bookmark=saved.get(stream.name) if stream.incremental else None)
            for record in read_ahead(lambda: connector.read(stream.name, state, window), app=app, depth=depth):
                receive(record)
                progress.tick(state.total)
            if stream.incremental and state.new_bookmark is not None:
                bookmarks[stream.name] = state.new_bookmark

    def make_writer():
        return SyncWriter(db.session, link_id, run_id,
                          balances_from_lines=LedgerLineRecord in kinds and BalanceRecord not in kinds)

    profiles_changed = False

    def write(writer, record):
        nonlocal profiles_changed
        if isinstance(record, CompanyProfileRecord):
            profiles_changed = write_profile(db.session, link_id, record) or profiles_changed
        else:
            writer.write(record)

    if staging.stage_before_write(db.engine):
        folder = staging.spool_folder()
        staging.sweep(folder, dossier_id)
        db.session.commit()  # nothing pending: ends the session's transaction, the fetch holds none
        progress.staged()
        with staging.Spool(folder, dossier_id, run_id) as spool:
            fetch(spool.add)
            progress.start_writing(spool.count)
            writer = make_writer()
            for record in spool.replay():
                write(writer, record)
                progress.tick(spool.count)
            progress.publish()  # a last cancellation check before the commit
            result = writer.finish()
    else:
        writer = make_writer()
        fetch(lambda record: write(writer, record))
        progress.publish()  # a last cancellation check before the commit
        result = writer.finish()
    if profiles_changed:
        result.changed = True
    return result, bookmarks


def _mark_committed(run_id, link, result, bookmarks, api_calls):
    """In the data's own transaction: the new bookmarks, the run's counts and
    ``data_committed_at``. A worker dying after this commit leaves a run the reaper reports as
    succeeded (its data is in); dying before it leaves nothing of the run's work."""
    if bookmarks:
        link.bookmarks = {**(link.bookmarks or {}), **bookmarks}
    db.session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
        accounts_count=getattr(result, "accounts", 0) or 0,
        balances_count=getattr(result, "balances", 0) or 0,
        lines_inserted=getattr(result, "lines_inserted", 0) or 0,
        lines_updated=getattr(result, "lines_updated", 0) or 0,
        lines_deleted=getattr(result, "lines_deleted", 0) or 0,
        changed=bool(getattr(result, "changed", False)),
        progress_percent=100,
        data_committed_at=utcnow(),
        api_calls=SyncRun.api_calls + api_calls,
    ), execution_options={"synchronize_session": False})


def _succeed(run_id):
    """After the data commit (which carried the counts and bookmarks): the outcome."""
    db.session.expire_all()
    return _finish(run_id, Outcome(RunStatus.SUCCEEDED))


def infrastructure_fault(exc):
    """Whether ``exc`` (or an exception it was raised from) is a fault of Firmsync's own
    services rather than of the package or of Firmsync's code: Redis unreachable or timing
    out, a lost or refused database connection (PostgreSQL shut down or the backend
    terminated, the pool exhausted), SQLite still locked after its busy timeout."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _own_service_fault(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "disk i/o error", "unable to open database")


def _own_service_fault(exc):
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return True
    if isinstance(exc, (sql_errors.DisconnectionError, sql_errors.TimeoutError)):
        return True
    if isinstance(exc, sql_errors.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sql_errors.OperationalError):
            return _driver_fault(exc.orig)
        return False
    return _driver_fault(exc)


def _driver_fault(exc):
    """A driver's own exception (also raised unwrapped, e.g. by PostgreSQL's COPY)."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in _SQLITE_TRANSIENT)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return False
    # psycopg's OperationalError covers lost connections and AdminShutdown, not SQL mistakes
    return isinstance(exc, (psycopg.OperationalError, psycopg.errors.AdminShutdown))


def _classify(run_id, exc, attempt):
    """Turn an exception into the run's :class:`Outcome` (logging what support needs).

    Infrastructure faults are recognised before anything is read from the database (it may
    be the thing that is down); ``attempt`` is unused (the run row's ``attempt`` decides the
    backoff when the outcome is written)."""
    if isinstance(exc, SyncCancelled):
        return Outcome(RunStatus.CANCELLED, "cancelled", CANCELLED)
    if isinstance(exc, LostLock):
        log.warning("run %s: lost its dossier lock before the commit; rolled back", run_id)
        return Outcome(RunStatus.DEFERRED, LOST_LOCK, LOST_LOCK_MESSAGE, backoff=True)
    if not isinstance(exc, ConnectorError) and infrastructure_fault(exc):
        log.warning("run %s: Firmsync's own services failed (%s: %s)", run_id, exc.__class__.__name__,
                    scrub_text(str(exc)[:300], []))
        return Outcome(RunStatus.DEFERRED, INFRASTRUCTURE, INFRASTRUCTURE_ERROR, backoff=True)
    try:
        sync_run = db.session.get(SyncRun, run_id)
        secrets = connection_secrets(sync_run.link.connection) if sync_run else []
    except Exception:  # noqa: BLE001 - the generic scrubbing still applies
        _rollback_quietly()
        sync_run, secrets = None, []
    if isinstance(exc, AuthError):
        if sync_run is not None:
            sync_run.link.connection.status = ConnectionStatus.NEEDS_RECONNECT
        return Outcome(RunStatus.NEEDS_RECONNECT, exc.category, scrub_text(exc.message, secrets))
    if isinstance(exc, RateLimited):
        wait = max(1.0, float(exc.retry_after))
        return Outcome(RunStatus.DEFERRED, exc.category, scrub_text(exc.message, secrets), retry_in=wait,
                       waiting_for=None if exc.daily else _package_name(sync_run))
    if isinstance(exc, TransientError):
        return Outcome(RunStatus.DEFERRED, exc.category, scrub_text(exc.message, secrets), backoff=True)
    if isinstance(exc, ConnectorError):
        return Outcome(RunStatus.FAILED, exc.category, scrub_text(exc.message, secrets))
    log.error("run %s: internal error\n%s", run_id, scrub_text("".join(traceback.format_exception(exc)), secrets))
    return Outcome(RunStatus.FAILED, "internal", INTERNAL_ERROR)


def _finish(run_id, outcome, api_calls=0):
    """Write the outcome on the run and its dossier; schedule the job again when asked.

    The write is retried on a fresh session when Firmsync's own services fail
    (``SYNC_OUTCOME_RETRY_SECONDS``); what follows it (cancel flag, webhooks) is best effort.
    """
    outcome = _record_outcome(run_id, outcome, api_calls)
    if outcome.status in RunStatus.FINISHED:
        try:
            locks.clear_cancel_flag(run_id)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            log.warning("run %s: cancel flag not cleared (Redis unavailable); it expires by itself", run_id)
    log.info("run %s: %s%s", run_id, outcome.status, f" ({outcome.category})" if outcome.category else "")
    from app.services.webhooks import sync_finished  # the firm's webhook endpoints hear how it ended

    try:
        sync_finished(run_id)
    except Exception:  # noqa: BLE001 - a webhook never changes how a sync ended
        _rollback_quietly()
        log.exception("run %s: webhook deliveries not queued", run_id)
    try:  # a first sync ended or paused: its firm's next one takes the turn (docs/sync-engine.md)
        release_next_backfills(run_id)
    except Exception:  # noqa: BLE001 - the reaper releases it next round
        _rollback_quietly()
        log.warning("run %s: the firm's next first sync not released; the reaper will", run_id, exc_info=True)
    if outcome.retry_in is not None:
        return _again(run_id, outcome.retry_in, front=outcome.waiting_turn)
    return None


def _record_outcome(run_id, outcome, api_calls):
    """:func:`_write_outcome`, tried again on a fresh session after an infrastructure fault."""
    delays = tuple(_setting("SYNC_OUTCOME_RETRY_SECONDS", OUTCOME_RETRY_SECONDS))
    for pause in (*delays, None):
        try:
            return _write_outcome(run_id, outcome, api_calls)
        except Exception as exc:
            _fresh_session()
            if pause is None or not infrastructure_fault(exc):
                raise
            log.warning("run %s: outcome not recorded (%s); trying again in %s s", run_id,
                        exc.__class__.__name__, pause)
            time.sleep(pause)


def _write_outcome(run_id, outcome, api_calls):
    """One transaction: the run's status, category, message, next try; returns the outcome
    as written (backoff resolved, deferral cap applied)."""
    sync_run = db.session.get(SyncRun, run_id)
    now = utcnow()
    outcome = _resolved(sync_run, outcome)
    sync_run.status = outcome.status
    sync_run.error_category = outcome.category
    sync_run.message = (outcome.message or None) and outcome.message[:1000]
    sync_run.api_calls = (sync_run.api_calls or 0) + api_calls
    sync_run.heartbeat_at = now
    dossier = sync_run.dossier
    if sets_file_status(sync_run.link):
        dossier.sync_status = outcome.status
    if outcome.retry_in is not None:
        sync_run.resume_at = now + timedelta(seconds=outcome.retry_in)
        if outcome.category == "rate_limited":
            if outcome.progressed:
                sync_run.deferrals = 0
            elif not outcome.waiting_turn:
                sync_run.deferrals = (sync_run.deferrals or 0) + 1
        else:
            sync_run.attempt = (sync_run.attempt or 1) + 1
        when = sync_run.resume_at.strftime("%H:%M UTC")
        if outcome.waiting_for:
            sync_run.message = response_stages.waiting_message(outcome.waiting_for, sync_run.resume_at)[:1000]
        else:
            sync_run.message = f"{sync_run.message} Firmsync will try again at {when}."[:1000]
    else:
        sync_run.finished_at = now
        if outcome.status == RunStatus.SUCCEEDED:
            dossier.last_synced_at = now
    if outcome.status in RunStatus.FINISHED:
        response_stages.drop(db.session, run_id)  # a parked run's kept answers end with it
    db.session.commit()
    return outcome


def _resolved(sync_run, outcome):
    """The outcome with its backoff decided by the run's attempt, and the cap on fruitless
    rate-limited deferrals applied (a final failure never promises another try)."""
    if outcome.backoff:
        backoff = tuple(_setting("SYNC_RETRY_BACKOFF", DEFAULT_BACKOFF))
        attempt = sync_run.attempt or 1
        if attempt <= len(backoff):
            return dataclasses.replace(outcome, status=RunStatus.DEFERRED, retry_in=backoff[attempt - 1],
                                       backoff=False)
        if outcome.category == INFRASTRUCTURE:
            message = INFRASTRUCTURE_GAVE_UP.format(tries=attempt)
        else:
            message = f"{final_message(outcome.message)} {GAVE_UP.format(tries=attempt)}".strip()
        return dataclasses.replace(outcome, status=RunStatus.FAILED, message=message, retry_in=None, backoff=False)
    if (outcome.category == "rate_limited" and outcome.retry_in is not None and not outcome.progressed
            and not outcome.waiting_turn):
        cap = int(_setting("SYNC_MAX_DEFERRALS", DEFAULT_MAX_DEFERRALS))
        if (sync_run.deferrals or 0) >= cap:
            package = sync_run.link.connection.name if sync_run.link is not None else "the package"
            message = TOO_MANY_DEFERRALS.format(message=final_message(outcome.message), count=cap + 1,
                                                package=package).strip()
            return dataclasses.replace(outcome, status=RunStatus.FAILED, message=message, retry_in=None)
    return outcome


def final_message(message):
    """``message`` without the HTTP client's promise of another try (for a final failure)."""
    return _RETRY_PROMISE.sub("", message or "").strip()


def _again(run_id, seconds, front=False):
    """Run this run's job again in ``seconds`` (same job id), never sooner: RQ's scheduler
    keeps whole seconds, dropping the fraction (a job due at 12.7 s would be queued at 12 s
    and sleep the rest in its worker), so the delay is rounded up from the current second's
    fraction. ``front``: back at the front of its queue (a run waiting its turn in our own
    budget). Without Redis nothing can be scheduled: the run keeps its ``resume_at`` and the
    reaper re-queues it from the database."""
    seconds = max(1, math.ceil(time.time() % 1 + seconds))
    job = get_current_job()
    if job is not None and job.id.startswith("sync-run-"):
        return Retry(max=(job.number_of_retries or 0) + 1, interval=seconds, enqueue_at_front=front)
    from app.services.syncs import enqueue_run

    try:
        enqueue_run(run_id, at=utcnow() + timedelta(seconds=seconds))
    except (redis_errors.ConnectionError, redis_errors.TimeoutError):
        log.warning("run %s: next try not scheduled (Redis unavailable); the reaper will queue it", run_id)
    return None


def _rollback_quietly():
    """Roll the session back; a session whose connection is gone is replaced by a fresh one."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection died with the fault
        _fresh_session()


def _fresh_session():
    """Drop the session (and its connection, discarded by the pool if it is broken)."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001
        pass
    try:
        db.session.close()
    except Exception:  # noqa: BLE001
        pass


def _keep_diagnostic_quietly(run_id, http_holder, outcome):
    try:
        _keep_diagnostic(run_id, http_holder, outcome)
    except Exception:  # noqa: BLE001 - a diagnostic never changes how a sync ended
        _rollback_quietly()
        log.warning("run %s: diagnostic not kept", run_id, exc_info=True)


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


def _keep_diagnostic(run_id, http_holder, outcome):
    """The run's recorded request shapes, with the ``outcome`` about to be written, as its
    connection's last diagnostic (packages built from public information only;
    :mod:`app.services.diagnostics`). Kept before the outcome, so a finished run has it."""
    from types import SimpleNamespace

    from app.services import diagnostics

    http = http_holder.get("http")
    if getattr(http, "recorder", None) is None:
        return
    sync_run = db.session.get(SyncRun, run_id)
    if sync_run is None or sync_run.link is None:
        return
    run = SimpleNamespace(id=run_id, status=outcome.status, error_category=outcome.category)
    diagnostics.keep(sync_run.link.connection, run, http)


def _calls(http_holder):
    http = http_holder.get("http")
    return int(getattr(http, "api_calls", 0) or 0)


def _setting(name, default):
    return locks.setting(name, default)


# --------------------------------------------------------------------------------------
# Parking (docs/sync-engine.md "Parking")
# --------------------------------------------------------------------------------------

def _attach_journal(run_id, http_holder):
    """Give the attempt's HTTP client the run's response journal (filled with what its parked
    attempts kept) and make it park, rather than sleep, for a budget wait longer than
    ``SYNC_PARK_AFTER_SECONDS``. Notes the last day of the window the attempt asks for."""
    http = http_holder.get("http")
    if http is None or not hasattr(http, "journal"):
        return
    http.journal = response_stages.open_journal(run_id)
    http.park_after = float(_setting("SYNC_PARK_AFTER_SECONDS", 5.0))
    http_holder["window_day"] = response_stages.window_end(run_id) or utcnow().date()


def _run_window(link, run_id):
    """The run's sync window: frozen at the day of the attempt that first parked (a resume days
    later asks the same requests), else :func:`sync_window` of today."""
    return sync_window(link, today=response_stages.window_end(run_id))


def _parked(run_id, outcome, http_holder):
    """After a rate-limited attempt's rollback: keep the answers it fetched (a transaction of
    their own) for the next attempt; the outcome says whether it fetched any (a deferral that
    moved forward is not counted against ``SYNC_MAX_DEFERRALS``). Keeping them never changes
    how the attempt ends: a failure to save is logged, the next attempt asks live."""
    journal = getattr(http_holder.get("http"), "journal", None)
    if journal is None or not journal.recorded:
        return outcome
    try:
        kept = response_stages.save_new_answers(run_id, journal, http_holder.get("window_day") or utcnow().date())
    except Exception:  # noqa: BLE001 - the deferral stands; the resume fetches these answers again
        _rollback_quietly()
        log.warning("run %s: the answers of the parked attempt were not kept", run_id, exc_info=True)
        return outcome
    log.info("run %s: parked with %s new answers kept (%s answered from earlier attempts)", run_id, kept,
             journal.replayed)
    return dataclasses.replace(outcome, progressed=kept > 0)


def _package_name(sync_run):
    """The display name of the run's package (the connection's name for an unknown package)."""
    from connectors.registry import get_connector

    if sync_run is None or sync_run.link is None:
        return "the package"
    connection = sync_run.link.connection
    try:
        return get_connector(connection.package).spec.display_name
    except KeyError:
        return connection.name
