"""The reaper: finds syncs whose worker died and queues them again.

A run is **stale** when it is ``running`` but nothing has shown it alive (Redis heartbeat,
the row's ``heartbeat_at``, its start) for ``SYNC_STALE_AFTER_SECONDS`` (default 120 s, the
heartbeat beats every 10 s), or when its RQ job is no longer started (the work horse was
killed and RQ already failed the job). A stale run is marked ``failed`` with
:data:`INTERRUPTED`, its dossier lock is released when it still holds it, and a new run with
trigger ``retry`` is queued. Its transaction died with the worker, so the dossier's data is
as it was before that run.

Queued runs whose job vanished from Redis (a crash between commit and enqueue, a flushed
Redis) are enqueued again.

Run it every minute: ``flask sync reap`` (or ``flask sync cron``, or ``rq cron jobs/cron.py``).
"""
import logging
from datetime import datetime, timedelta, timezone

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from app.extensions import db
from app.models import RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app import locks
from app.services.queues import fetch_job, sync_job_id

log = logging.getLogger("firmsync.jobs")

INTERRUPTED = "The sync was interrupted (the worker stopped). It has been queued again."


def reap(now=None):
    """Mark stale running runs failed, release their locks and queue retries.

    ``now`` (naive UTC) lets tests look into the future. Returns
    ``{"reaped": [run ids], "retries": [new run ids], "requeued": [run ids]}``.
    """
    from app.services.syncs import enqueue_run, request_sync

    now = now or utcnow()
    stale_after = timedelta(seconds=locks.setting("SYNC_STALE_AFTER_SECONDS", 120))
    redis = redis_connection()
    reaped, retries, requeued = [], [], []

    running = db.session.scalars(select(SyncRun).where(SyncRun.status == RunStatus.RUNNING)).all()
    for run in running:
        if not _is_stale(run, now, stale_after, redis):
            continue
        # conditional update: a run that finished meanwhile is left alone
        done = db.session.execute(
            update(SyncRun)
            .where(SyncRun.id == run.id, SyncRun.status == RunStatus.RUNNING)
            .values(status=RunStatus.FAILED, error_category="interrupted", message=INTERRUPTED, finished_at=now)
        ).rowcount
        db.session.commit()
        if not done:
            continue
        reaped.append(run.id)
        locks.release_dossier_lock_of(run.dossier_id, run.id, redis)
        locks.forget_beat(run.id, redis)
        retry = request_sync(run.dossier_id, Trigger.RETRY, link_id=run.link_id)
        if retry is not None:
            retries.append(retry.id)
        log.warning("run %s was interrupted; queued again as run %s", run.id, retry.id if retry else None)

    queued = db.session.scalars(
        select(SyncRun).where(SyncRun.status == RunStatus.QUEUED, SyncRun.queued_at < now - stale_after)
    ).all()
    for run in queued:
        if not Job.exists(sync_job_id(run.id), connection=redis):
            enqueue_run(run.id)
            requeued.append(run.id)
    return {"reaped": reaped, "retries": retries, "requeued": requeued}


def _is_stale(run, now, stale_after, redis):
    if _job_gone(run, redis):
        return True
    beats = [run.heartbeat_at, run.started_at]
    redis_beat = locks.last_beat(run.id, redis)
    if redis_beat is not None:
        beats.append(datetime.fromtimestamp(redis_beat, timezone.utc).replace(tzinfo=None))
    last = max((b for b in beats if b is not None), default=run.queued_at)
    return now - last > stale_after


def _job_gone(run, redis):
    """The run's RQ job no longer exists or is no longer started (RQ saw its horse die)."""
    try:
        job = fetch_job(run.rq_job_id or sync_job_id(run.id), connection=redis)
    except NoSuchJobError:
        return True
    return job.get_status(refresh=False) in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def reap_job():
    """RQ job wrapper of :func:`reap` (used by ``jobs/cron.py``); returns how many runs it reaped."""
    return len(reap()["reaped"])
