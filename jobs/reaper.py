"""The reaper: nothing waits for a person. Runs whose worker died, whose job was lost or
failed, or whose next try vanished are put back on their way from the database.

Every minute (``flask sync reap``, ``flask sync cron`` or ``rq cron jobs/cron.py``):

* **running** runs: a run is **dead** when its RQ job failed or stopped (RQ saw the work
  horse die), when its Redis heartbeat (every ``SYNC_HEARTBEAT_SECONDS``) has been silent
  for ``SYNC_DEAD_AFTER_SECONDS`` (default 30 s; a killed whole worker is noticed at the next
  reaper round), when its job ended without the run recording how, or, without any Redis
  heartbeat (Redis lost its data), when its job is gone and the row's own heartbeat is older
  than that, or when nothing showed it alive for ``SYNC_STALE_AFTER_SECONDS`` (120 s). A
  dead run whose data commit happened (``data_committed_at``, written in the data's own
  transaction) is marked ``succeeded``; any other is marked ``failed`` (category
  ``interrupted``, saying why only as far as it is known), its dossier lock is released when
  it still holds it, and a new run with trigger ``retry`` is queued. Its transaction died
  with the worker, so the dossier's data is as it was before that run. The API calls its
  heartbeat last recorded for the dead attempt are added to its ``api_calls``; when RQ saw
  the attempt's process end, the concurrency slots it held in the rate limiter are freed
  (the retry need not wait out their lease; see docs/sync-engine.md "Recovery").
* **queued** runs whose job is missing (a crash between commit and enqueue, a flushed Redis:
  after ``SYNC_STALE_AFTER_SECONDS``) or failed/ended (the job failed before the run could be
  touched) are enqueued again, to their own queue; a first sync waiting for its turn (no queue
  yet) is not: each firm with such runs is topped up to its quota of first syncs instead
  (:func:`app.services.syncs.release_backfills`, docs/sync-engine.md "Queues and fairness").
* **deferred** runs whose next try is not scheduled any more (Redis restarted without its
  data, or Redis was away when the try was to be scheduled) are scheduled again at their
  ``resume_at`` (at once when it has passed).
* the answers kept for parked runs (:mod:`app.services.response_stages`) of runs that are no
  longer active are deleted.

The reaper never waits long on a row lock (``REAPER_LOCK_TIMEOUT_MS``, PostgreSQL): a run
whose row is held by a frozen process is skipped (logged) and looked at again next round.
"""
import logging
from datetime import datetime, timedelta, timezone

from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.models import Dossier, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app import locks
from app.services.queues import fetch_job, sync_job_id
from connectors.rate_limit import RateLimiter
from jobs.progress import attempt_calls_key, lease_holder, recorded_attempt_calls

log = logging.getLogger("firmsync.jobs")

INTERRUPTED = "The sync was interrupted (the worker stopped). It has been queued again."
#: the job ended (or Firmsync lost track of it) without the run recording its outcome
UNRECORDED = ("The sync stopped before it could record how it ended (Firmsync's own services were briefly "
              "unavailable); the previous data is unchanged. It has been queued again.")
#: the data commit happened; the worker stopped before the run's own last write
COMMITTED = "The sync finished; its worker stopped just after saving the data."
#: job states in which a queued or deferred run will still be run by RQ
_ON_ITS_WAY = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)
_HORSE_DIED = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
#: job states in which the attempt's process no longer runs it (a cancelled job may still be)
_ATTEMPT_ENDED = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.FINISHED)


def reap(now=None):
    """Heal interrupted runs (see the module docstring).

    ``now`` (naive UTC) lets tests look into the future. Returns ``{"reaped": [run ids],
    "retries": [new run ids], "requeued": [run ids], "succeeded": [run ids], "skipped": [run
    ids], "released": [run ids]}`` (``succeeded``: dead runs whose data was committed; ``skipped``:
    rows locked by another process, looked at next round; ``released``: first syncs whose turn came).
    """
    now = now or utcnow()
    redis = redis_connection()
    result = {"reaped": [], "retries": [], "requeued": [], "succeeded": [], "skipped": [], "released": []}
    limits = _Limits.read()
    with locks.bounded_lock_wait(db.session, locks.setting("REAPER_LOCK_TIMEOUT_MS", 2000)):
        for run in db.session.scalars(select(SyncRun).where(SyncRun.status == RunStatus.RUNNING)).all():
            _guarded(run.id, result, lambda r=run: _reap_running(r, now, limits, redis, result))
        for run in db.session.scalars(select(SyncRun).where(SyncRun.status == RunStatus.QUEUED)).all():
            _guarded(run.id, result, lambda r=run: _requeue_queued(r, now, limits, redis, result))
        for run in db.session.scalars(select(SyncRun).where(SyncRun.status == RunStatus.DEFERRED)).all():
            _guarded(run.id, result, lambda r=run: _reschedule_deferred(r, now, redis, result))
        _release_waiting_backfills(result)
    _sweep_response_stages()
    return result


def _sweep_response_stages():
    """Delete the kept answers of parked runs that ended without their job (docs/sync-engine.md "Parking")."""
    from app.services import response_stages

    try:
        swept = response_stages.sweep()
    except OperationalError as exc:
        db.session.rollback()
        log.warning("reaper: kept answers of ended runs not swept this round (%s)", str(exc.orig).strip()[:200])
        return
    if swept:
        log.info("reaper: swept %s kept answers of ended runs", swept)


class _Limits:
    def __init__(self, stale_after, dead_after):
        self.stale_after, self.dead_after = stale_after, dead_after

    @classmethod
    def read(cls):
        heartbeat = locks.setting("SYNC_HEARTBEAT_SECONDS", 10)
        dead = max(locks.setting("SYNC_DEAD_AFTER_SECONDS", 30), 3 * heartbeat)
        return cls(timedelta(seconds=locks.setting("SYNC_STALE_AFTER_SECONDS", 120)), timedelta(seconds=dead))


def _guarded(run_id, result, step):
    """One run's step; a row another process holds locked is skipped (its lock wait is bounded)."""
    try:
        step()
    except OperationalError as exc:
        db.session.rollback()
        result["skipped"].append(run_id)
        log.warning("reaper: run %s skipped this round (%s)", run_id, str(exc.orig).strip()[:200])


def _reap_running(run, now, limits, redis, result):
    from app.services.syncs import request_sync

    why = _dead(run, now, limits, redis)
    if why is None:
        return
    if run.data_committed_at is not None:
        _mark_succeeded(run, now, redis, result)
        return
    calls = recorded_attempt_calls(run, redis)  # the dead attempt's: it could not add them itself
    # conditional update: a run that finished (or committed) meanwhile is left alone
    done = db.session.execute(
        update(SyncRun)
        .where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING, SyncRun.data_committed_at.is_(None))
        .values(status=RunStatus.FAILED, error_category="interrupted", message=why, finished_at=now,
                api_calls=SyncRun.api_calls + calls, attempt_api_calls=0)
    ).rowcount
    db.session.commit()
    if not done:
        return
    result["reaped"].append(run.id)
    locks.release_dossier_lock_of(run.dossier_id, run.id, redis)
    locks.forget_beat(run.id, redis)
    _free_attempt(run, redis)
    retry = request_sync(run.dossier_id, Trigger.RETRY, link_id=run.link_id)
    if retry is not None:
        result["retries"].append(retry.id)
    log.warning("run %s was interrupted; queued again as run %s", run.id, retry.id if retry else None)


def _mark_succeeded(run, now, redis, result):
    """A dead run whose data (and counts, bookmarks) were committed: it succeeded."""
    committed = run.data_committed_at
    done = db.session.execute(
        update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING)
        .values(status=RunStatus.SUCCEEDED, error_category=None, message=COMMITTED, finished_at=committed)
    ).rowcount
    if done:
        db.session.execute(update(Dossier).where(Dossier.id == run.dossier_id).values(
            sync_status=RunStatus.SUCCEEDED, last_synced_at=committed), execution_options={"synchronize_session": False})
    db.session.commit()
    if done:
        result["succeeded"].append(run.id)
        locks.release_dossier_lock_of(run.dossier_id, run.id, redis)
        locks.forget_beat(run.id, redis)
        _free_attempt(run, redis)  # its calls were counted with its data
        log.warning("run %s: its worker stopped after the data commit; recorded as succeeded", run.id)


def _free_attempt(run, redis):
    """What a dead attempt left in Redis: its recorded API calls (counted by now) and, when
    RQ saw its process end, the concurrency slots its leases still hold. A run only declared
    dead because its heartbeat went silent keeps its slots until their lease runs out: its
    process may merely be frozen, and could still have a request in flight."""
    redis.delete(attempt_calls_key(run.id))
    status, _ = _job_state(run, redis)
    if status in _ATTEMPT_ENDED:
        freed = RateLimiter(redis).release_holder(lease_holder(run.id))
        if freed:
            log.info("run %s: %s rate-limit slot(s) of its dead attempt freed", run.id, freed)


def _dead(run, now, limits, redis):
    """Why a running run is dead (the message it gets), or None while it may be alive."""
    status, failure = _job_state(run, redis)
    if status in _HORSE_DIED:
        return INTERRUPTED if _horse_died(failure) else UNRECORDED
    if status == JobStatus.FINISHED:
        return UNRECORDED
    beat = locks.last_beat(run.id, redis)
    if beat is not None:
        silent = now - datetime.fromtimestamp(beat, timezone.utc).replace(tzinfo=None)
        return INTERRUPTED if silent > limits.dead_after else None
    row_beats = [b for b in (run.heartbeat_at, run.started_at) if b is not None]
    last = max(row_beats, default=run.queued_at)
    if status is None and now - last > limits.dead_after:
        return INTERRUPTED  # neither a job nor any heartbeat in Redis: the worker is gone
    return INTERRUPTED if now - last > limits.stale_after else None


def _job_state(run, redis):
    """``(status, failure text)`` of the run's RQ job; ``(None, None)`` when it is gone."""
    try:
        job = fetch_job(run.rq_job_id or sync_job_id(run.id), connection=redis)
    except NoSuchJobError:
        return None, None
    status = job.get_status(refresh=False)
    failure = None
    if status in _HORSE_DIED:
        try:
            latest = job.latest_result()
            failure = getattr(latest, "exc_string", None) if latest is not None else None
        except Exception:  # noqa: BLE001 - an old or partial job hash
            failure = None
    return status, failure


def _horse_died(failure):
    """Whether RQ's failure text says the work horse process ended (killed, crashed)."""
    text = (failure or "").lower()
    return not text or "work-horse" in text or "terminated" in text or "killed" in text or "timeout" in text


def _requeue_queued(run, now, limits, redis, result):
    if run.queue is None:
        return  # a first sync waiting for its turn: released by _release_waiting_backfills
    status, _ = _job_state(run, redis)
    if status in _ON_ITS_WAY:
        return
    if status is None and run.queued_at >= now - limits.stale_after:
        return  # maybe being enqueued right now (commit, then enqueue)
    _requeue(run, None, redis)
    result["requeued"].append(run.id)
    log.warning("run %s: queued but its job was %s; enqueued again", run.id, status or "missing")


def _release_waiting_backfills(result):
    """Top up every firm that has first syncs waiting for their turn (a release missed when a
    worker died, or Redis was away, at the end of a first sync)."""
    from app.services.syncs import release_backfills, waiting_for_turn

    firm_ids = db.session.scalars(select(SyncRun.firm_id).where(waiting_for_turn()).distinct()).all()
    for firm_id in firm_ids:
        try:
            result["released"].extend(release_backfills([firm_id]))
        except OperationalError as exc:
            db.session.rollback()
            log.warning("reaper: first syncs of firm %s not released this round (%s)", firm_id,
                        str(exc.orig).strip()[:200])


def _reschedule_deferred(run, now, redis, result):
    status, _ = _job_state(run, redis)
    if status in _ON_ITS_WAY:
        return
    at = run.resume_at if run.resume_at is not None and run.resume_at > now else None
    _requeue(run, at, redis)
    result["requeued"].append(run.id)
    log.warning("run %s: deferred but its next try was %s; scheduled again", run.id, status or "missing")


def _requeue(run, at, redis):
    """Enqueue the run's job again (same id), the old failed or finished job removed first."""
    from app.services.syncs import enqueue_run

    try:
        fetch_job(sync_job_id(run.id), connection=redis).delete()
    except NoSuchJobError:
        pass
    enqueue_run(run.id, at=at)


def reap_job():
    """RQ job wrapper of :func:`reap` (used by ``jobs/cron.py``); returns how many runs it reaped."""
    return len(reap()["reaped"])
