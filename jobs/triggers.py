"""Starting syncs: every trigger (sync now, bulk resync, setup, nightly, retry) comes here.

:func:`request_sync` checks the actor's right, **commits** a :class:`SyncRun` and then
enqueues ``jobs.sync.run(run_id)`` with the job id ``sync-run-<run_id>``. A dossier whose
link already has a queued, running or deferred run gets that run back instead of a new one;
a short Redis lock per dossier around check-and-create makes two simultaneous clicks give
one run. :func:`cancel_run` stops a run.
"""
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.models import Dossier, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from jobs import locks
from jobs.queues import sync_job_id, sync_queue

log = logging.getLogger("firmsync.jobs")

NOT_ALLOWED = "You may not start a sync of this dossier."


def request_sync(dossier_id, trigger, actor=None, *, nightly_key=None, link_id=None):
    """Queue a sync of one dossier and return its :class:`SyncRun` (or None).

    ``trigger`` is one of :class:`app.models.Trigger`. With an ``actor`` (a user's action),
    ``can(actor, "sync_now", dossier_id)`` must hold, else :class:`werkzeug.exceptions.Forbidden`;
    system triggers (nightly, retry) pass no actor. The run syncs ``link_id`` when given,
    else the dossier's active accounting link, else its active administration link; None
    when there is none. If that link already has a queued, running or deferred run, that run
    is returned and nothing new is created. Otherwise a run is committed (this commits the
    session, including the caller's pending changes) and then enqueued.
    ``nightly_key`` (``"<link_id>:<local date>"``) makes the nightly run unique per night.
    """
    if trigger not in Trigger.ALL:
        raise ValueError(f"unknown trigger {trigger!r}")
    if actor is not None and not can(actor, "sync_now", dossier_id):
        raise Forbidden(NOT_ALLOWED)
    with locks.trigger_lock(dossier_id):
        db.session.expire_all()
        dossier = db.session.get(Dossier, dossier_id)
        if dossier is None:
            return None
        link = _link_to_sync(dossier, link_id)
        if link is None:
            return None
        if nightly_key:
            done = db.session.scalar(select(SyncRun).where(SyncRun.nightly_key == nightly_key))
            if done is not None:
                return done
        existing = active_run(link.id)
        if existing is not None:
            if nightly_key and existing.nightly_key is None:
                existing.nightly_key = nightly_key  # this night's sync is covered by that run
                _commit_or_rollback()
            return existing
        run = SyncRun(
            firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=link.id, trigger=trigger,
            triggered_by_id=actor.user_id if actor else None, nightly_key=nightly_key,
            status=RunStatus.QUEUED,
        )
        db.session.add(run)
        dossier.sync_status = RunStatus.QUEUED
        try:
            db.session.commit()
        except IntegrityError:  # another process created this night's run first
            db.session.rollback()
            return db.session.scalar(select(SyncRun).where(SyncRun.nightly_key == nightly_key))
        enqueue_run(run.id)
    return run


def request_syncs(dossier_ids, trigger, actor=None):
    """Queue syncs of several dossiers (bulk action). Returns ``(runs, skipped_ids)``.

    A dossier the actor may not sync raises :class:`Forbidden` before anything is queued;
    dossiers without a sync set up are skipped.
    """
    dossier_ids = list(dict.fromkeys(int(i) for i in dossier_ids))
    if actor is not None:
        refused = [i for i in dossier_ids if not can(actor, "sync_now", i)]
        if refused:
            raise Forbidden(NOT_ALLOWED)
    runs, skipped = [], []
    for dossier_id in dossier_ids:
        run = request_sync(dossier_id, trigger, actor)
        (runs.append(run) if run is not None else skipped.append(dossier_id))
    return runs, skipped


def active_run(link_id):
    """The queued, running or deferred run of a link, or None."""
    return db.session.scalar(
        select(SyncRun)
        .where(SyncRun.link_id == link_id, SyncRun.status.in_(RunStatus.ACTIVE))
        .order_by(SyncRun.id.desc())
        .limit(1)
    )


def enqueue_run(run_id, *, at=None):
    """Put run ``run_id`` on the sync queue (now, or at the datetime ``at``, UTC).

    The job id is deterministic: enqueueing a run twice replaces its job, never doubles it.
    """
    from flask import current_app

    queue = sync_queue()
    options = dict(
        job_id=sync_job_id(run_id),
        job_timeout=current_app.config.get("SYNC_JOB_TIMEOUT", 6 * 3600),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"sync run {run_id}",
    )
    if at is not None:
        from datetime import timezone

        return queue.enqueue_at(at.replace(tzinfo=timezone.utc), "jobs.sync.run", run_id, **options)
    return queue.enqueue("jobs.sync.run", run_id, **options)


def cancel_run(run_id, actor=None):
    """Cancel a run: a queued or deferred one at once, a running one between two batches.

    The actor needs ``sync_now`` on the run's dossier (else :class:`Forbidden`). A running
    job notices the request, rolls back and ends ``cancelled``: the dossier keeps its
    previous data. Returns the run (unchanged when it had already finished).
    """
    run = db.session.get(SyncRun, run_id)
    if run is None:
        return None
    if actor is not None and not can(actor, "sync_now", run.dossier_id):
        raise Forbidden("You may not cancel a sync of this dossier.")
    if run.status in RunStatus.FINISHED:
        return run
    run.cancel_requested = True
    locks.flag_cancel(run.id)
    if run.status in (RunStatus.QUEUED, RunStatus.DEFERRED):
        _remove_job(run.id)
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
        run.message = "The sync was cancelled before it started."
        run.dossier.sync_status = RunStatus.CANCELLED
    audit.record(actor, "sync.cancelled", run, summary=f"Sync run #{run.id} cancelled")
    db.session.commit()
    return run


def _remove_job(run_id):
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    from jobs.queues import get_queue

    queue = get_queue()
    try:
        job = queue.fetch_job(sync_job_id(run_id))
        if job is not None:
            job.cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass


def _link_to_sync(dossier, link_id):
    links = db.session.scalars(
        select(DossierLink).where(DossierLink.dossier_id == dossier.id, DossierLink.ended_at.is_(None))
    ).all()
    if link_id is not None:
        return next((l for l in links if l.id == link_id), None)
    by_kind = {l.kind: l for l in links}
    return by_kind.get("accounting") or by_kind.get("administration")


def _commit_or_rollback():
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
