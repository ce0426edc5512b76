"""Is Firmsync healthy? ``/healthz`` for machines and the console's "System health" screen for
people (docs/operations.md, "Health"), so an operator sees a stuck system before the
accountants do.

* :func:`liveness`: can this web process reach the database and Redis right now? Names no
  host, user or error text (the answer is public).
* :func:`system_health`: the workers RQ knows (alive = registered and beating), the depth
  of each queue and of its scheduled (retries, deferrals) and failed registries, whether a
  scheduler holds the lock that moves scheduled jobs back onto the queues, the oldest queued
  run and the deferred runs with their reason. Runs are limited to the actor's firm (support:
  every firm); workers and queues are the installation's, shown as counts.
"""
from datetime import datetime, timezone

from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Dossier, RunStatus, SyncRun
from app.models.base import utcnow
from app.redis_connection import OUTAGE_ERRORS, redis_connection
from app.services.queues import JOB_SERIALIZER, WORKER_QUEUES, get_queue

OK, UNAVAILABLE = "ok", "unavailable"
#: deferred runs listed by name (the rest are counted)
DEFERRED_LISTED = 20
#: the Redis key RQ's scheduler holds while it serves a queue
SCHEDULER_LOCK_KEY = "rq:scheduler-lock:{}"


def database_reachable():
    """Does ``SELECT 1`` answer? Leaves the session clean either way."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return True
    except Exception:  # any failure means "not reachable now"; the reason is logged by the caller
        db.session.rollback()
        return False


def redis_reachable():
    """Does Redis answer ``PING`` (with the caller's client timeouts)?"""
    try:
        return bool(redis_connection().ping())
    except OUTAGE_ERRORS:
        return False


def liveness():
    """``{"status", "database", "redis", "checked_at"}``: each ``"ok"`` or ``"unavailable"``;
    ``status`` is ``"ok"`` only when both are."""
    database = OK if database_reachable() else UNAVAILABLE
    redis = OK if redis_reachable() else UNAVAILABLE
    return {"status": OK if database == redis == OK else UNAVAILABLE, "database": database, "redis": redis,
            "checked_at": utcnow().replace(tzinfo=timezone.utc).isoformat(timespec="seconds")}


def system_health(actor):
    """What the System health screen shows (see the module docstring), for ``actor``."""
    runs = _runs(actor)
    try:
        queues = _queues()
        workers = _workers()
        redis = OK
    except OUTAGE_ERRORS:
        queues, workers, redis = [], [], UNAVAILABLE
    return {"redis": redis, "workers": workers, "queues": queues, **runs}


def _workers():
    connection = redis_connection()
    found = []
    for worker in Worker.all(connection=connection, serializer=JOB_SERIALIZER):
        heartbeat = worker.last_heartbeat
        found.append({
            "name": worker.name, "state": worker.get_state(), "queues": worker.queue_names(),
            "current_job": worker.get_current_job_id(), "hostname": worker.hostname, "pid": worker.pid,
            "last_heartbeat": heartbeat.replace(tzinfo=None) if isinstance(heartbeat, datetime) else None,
        })
    return sorted(found, key=lambda w: w["name"])


def _queues():
    connection = redis_connection()
    answer = []
    for name in WORKER_QUEUES:
        queue = get_queue(name, connection=connection)
        answer.append({
            "name": name, "waiting": queue.count,
            "running": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,
            "failed": FailedJobRegistry(queue=queue).count,
            "scheduler": bool(connection.exists(SCHEDULER_LOCK_KEY.format(name))),
        })
    return answer


def _runs(actor):
    scope = [] if actor.is_support else [SyncRun.firm_id == actor.firm_id]
    oldest = db.session.execute(
        select(SyncRun.id, SyncRun.queued_at, Dossier.name, Dossier.firm_id)
        .join(Dossier, Dossier.id == SyncRun.dossier_id)
        .where(SyncRun.status == RunStatus.QUEUED, *scope)
        .order_by(SyncRun.queued_at, SyncRun.id).limit(1)
    ).first()
    queued = db.session.scalar(select(func.count()).select_from(SyncRun).where(
        SyncRun.status == RunStatus.QUEUED, *scope))
    deferred_count = db.session.scalar(select(func.count()).select_from(SyncRun).where(
        SyncRun.status == RunStatus.DEFERRED, *scope))
    deferred = db.session.execute(
        select(SyncRun.id, SyncRun.resume_at, SyncRun.error_category, SyncRun.message, Dossier.id, Dossier.name)
        .join(Dossier, Dossier.id == SyncRun.dossier_id)
        .where(SyncRun.status == RunStatus.DEFERRED, *scope)
        .order_by(SyncRun.resume_at.is_(None), SyncRun.resume_at, SyncRun.id).limit(DEFERRED_LISTED)
    ).all()
    return {
        "queued_runs": queued,
        "oldest_queued": None if oldest is None else {
            "run_id": oldest[0], "queued_at": oldest[1], "dossier": oldest[2], "waiting_seconds":
            max(0, int((utcnow() - oldest[1]).total_seconds())) if oldest[1] else None},
        "deferred_runs": deferred_count,
        "deferred": [{"run_id": r[0], "resume_at": r[1], "category": r[2], "message": r[3], "dossier_id": r[4],
                      "dossier": r[5]} for r in deferred],
    }
