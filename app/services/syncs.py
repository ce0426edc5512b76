"""Starting syncs: every trigger (sync now, bulk resync, setup, nightly, retry) comes here.

:func:`request_sync` checks the actor's right, **commits** a :class:`SyncRun` and then
enqueues ``jobs.sync.run(run_id)`` with the job id ``sync-run-<run_id>``. A dossier whose
link already has a queued, running or deferred run gets that run back instead of a new one;
a short Redis lock per dossier around check-and-create makes two simultaneous clicks give
one run. :func:`cancel_run` stops a run.
"""
import logging
from contextlib import ExitStack, contextmanager

from rq import Queue
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can, dossier_visibility
from app.extensions import db
from app.models import Dossier, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app import locks
from app.redis_connection import OUTAGE_ERRORS
from app.services.queues import sync_job_id, sync_queue

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
    with _trigger_lock(dossier_id):
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
        if existing is None:
            link_id = link.id
            db.session.commit()  # the caller's changes; the link lock starts a fresh transaction
            lock_links([link_id])
            existing = active_run(link_id)  # created by a batch or another process meanwhile
            dossier, link = db.session.get(Dossier, dossier_id), db.session.get(DossierLink, link_id)
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
        if sets_file_status(link):
            dossier.sync_status = RunStatus.QUEUED
        try:
            db.session.commit()
        except IntegrityError:  # another process created this night's run first
            db.session.rollback()
            return db.session.scalar(select(SyncRun).where(SyncRun.nightly_key == nightly_key))
        enqueue_or_leave_queued([run])
    return run


def request_syncs(dossier_ids, trigger, actor=None):
    """Queue syncs of several dossiers (bulk action). Returns ``(runs, skipped_ids)``.

    A dossier the actor may not sync raises :class:`Forbidden` before anything is queued;
    dossiers without a sync set up are skipped. Works in a fixed number of queries and one
    commit (see :func:`queue_runs`).
    """
    dossier_ids = list(dict.fromkeys(int(i) for i in dossier_ids))
    if actor is not None:
        allowed = set(db.session.scalars(
            select(Dossier.id).where(Dossier.id.in_(dossier_ids), dossier_visibility(actor))
        )) if can(actor, "sync_now") else set()
        if len(allowed) != len(dossier_ids):
            raise Forbidden(NOT_ALLOWED)
    links = _links_to_sync(dossier_ids)
    runs = queue_runs([(dossier_id, links[dossier_id]) for dossier_id in dossier_ids if dossier_id in links],
                      trigger, actor)
    return runs, [dossier_id for dossier_id in dossier_ids if dossier_id not in links]


def queue_runs(targets, trigger, actor=None):
    """Queue many runs at once, the batch form of :func:`request_sync` (bulk actions).

    ``targets`` are ``(dossier_id, link_id)`` pairs; the caller has checked the rights.
    Returns the runs, reused or new, loaded. A link with a queued, running or deferred run
    gets that run back. New runs are inserted together (``INSERT ... RETURNING``) and
    committed, then enqueued (:func:`enqueue_runs`). The per-dossier Redis trigger lock is not
    taken here.
    (The nightly fan-out works in SQL instead, see :mod:`jobs.nightly`.)

    One run per link also holds against simultaneous batches and "sync now" clicks: links
    that need a new run are locked in the database (:func:`lock_links`) and checked again
    before the insert.
    """
    if not targets:
        return []
    active = _active_runs({link_id for _, link_id in targets})
    missing = {link_id for _, link_id in targets if link_id not in active}
    if missing:
        db.session.commit()  # the caller's changes; the link lock starts a fresh transaction
        lock_links(missing)
        active.update(_active_runs(missing))
    firm_of = dict(db.session.execute(select(Dossier.id, Dossier.firm_id).where(
        Dossier.id.in_({dossier_id for dossier_id, _ in targets}))).all())
    rows = []
    for dossier_id, link_id in targets:
        if link_id not in active:
            active[link_id] = None  # one new run per link
            rows.append({"firm_id": firm_of[dossier_id], "dossier_id": dossier_id, "link_id": link_id,
                         "trigger": trigger, "triggered_by_id": actor.user_id if actor else None,
                         "status": RunStatus.QUEUED})
    new_ids = []
    if rows:
        new_ids = list(db.session.scalars(insert(SyncRun).returning(SyncRun.id, sort_by_parameter_order=True), rows))
        links = db.session.scalars(select(DossierLink).where(DossierLink.id.in_({row["link_id"] for row in rows})))
        db.session.execute(update(Dossier).where(Dossier.id.in_({link.dossier_id for link in links
                                                                 if sets_file_status(link)}))
                           .values(sync_status=RunStatus.QUEUED), execution_options={"synchronize_session": False})
        db.session.commit()
    for row, run_id in zip(rows, new_ids):
        active[row["link_id"]] = run_id
    wanted = list(dict.fromkeys(active[link_id] for _, link_id in targets))
    loaded = {run.id: run for run in db.session.scalars(select(SyncRun).where(SyncRun.id.in_(wanted)))}
    enqueue_or_leave_queued([loaded[run_id] for run_id in new_ids], batch=True)
    return [loaded[run_id] for run_id in wanted]


def _active_runs(link_ids):
    """``{link_id: newest queued, running or deferred run id}`` of ``link_ids``."""
    active = {}
    for run_id, link_id in db.session.execute(
        select(SyncRun.id, SyncRun.link_id)
        .where(SyncRun.link_id.in_(link_ids), SyncRun.status.in_(RunStatus.ACTIVE))
        .order_by(SyncRun.id)
    ):
        active[link_id] = run_id  # the newest wins
    return active


def lock_links(link_ids):
    """Lock the rows of ``link_ids`` until the session's transaction ends, so that "is there an
    active run? else create one" cannot interleave between processes.

    PostgreSQL: ``SELECT ... FOR NO KEY UPDATE`` (a running sync, which only references the
    link, does not block it). SQLite: a no-op ``UPDATE`` of the links, which takes the
    database's single write lock; call it first in its transaction (a transaction that read
    before may not upgrade to a write once another process has written).
    """
    link_ids = sorted(set(link_ids))
    if not link_ids:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(DossierLink.id).where(DossierLink.id.in_(link_ids))
                           .order_by(DossierLink.id).with_for_update(key_share=True))  # FOR NO KEY UPDATE
    else:
        db.session.execute(update(DossierLink).where(DossierLink.id.in_(link_ids))
                           .values(ended_at=DossierLink.ended_at), execution_options={"synchronize_session": False})


#: jobs per Redis round trip in :func:`enqueue_runs`
ENQUEUE_CHUNK = 1000


#: runs a person asked for ("sync now", "Resync selected") go to the front of the queue, before
#: the night's runs and the first syncs already waiting (docs/sync-engine.md, "Queue order")
PEOPLE_FIRST = (Trigger.MANUAL, Trigger.BULK)


def enqueue_runs(run_ids, *, front=False):
    """Enqueue several committed runs (same job options as :func:`enqueue_run`; ``front``: at
    the front of the queue), a thousand jobs per Redis pipeline. Returns how many jobs were
    enqueued."""
    if not run_ids:
        return 0
    queue = sync_queue()
    for start in range(0, len(run_ids), ENQUEUE_CHUNK):
        with queue.connection.pipeline(transaction=False) as pipe:
            queue.enqueue_many([Queue.prepare_data("jobs.sync.run", (run_id,), at_front=front, **_job_options(run_id))
                                for run_id in run_ids[start:start + ENQUEUE_CHUNK]], pipeline=pipe)
            pipe.execute()
    return len(run_ids)


@contextmanager
def _trigger_lock(dossier_id):
    """The dossier's Redis trigger lock, or nothing while Redis is away: the link rows locked
    in the database (:func:`lock_links`) still give one run per link."""
    with ExitStack() as stack:
        try:
            stack.enter_context(locks.trigger_lock(dossier_id))
        except OUTAGE_ERRORS as exc:
            log.warning("dossier %s: trigger lock skipped, Redis unavailable (%s)", dossier_id, type(exc).__name__)
        yield


def enqueue_or_leave_queued(runs, batch=False):
    """Enqueue the jobs of committed, queued ``runs``; while Redis is away leave them queued in
    the database, where the reaper finds a queued run without a job and enqueues it (a legal
    state, docs/operations.md). Each run gets ``waits_for_queue`` (True: not enqueued yet), so
    the page that asked can say the sync starts when the queue is back. ``batch``: one Redis
    pipeline per thousand jobs (:func:`enqueue_runs`), else :func:`enqueue_run` per run."""
    for run in runs:
        run.waits_for_queue = False
    if not runs:
        return
    try:
        if batch:
            enqueue_runs([run.id for run in runs], front=all(run.trigger in PEOPLE_FIRST for run in runs))
        else:
            for run in runs:
                enqueue_run(run.id, front=run.trigger in PEOPLE_FIRST)
    except OUTAGE_ERRORS as exc:
        log.warning("runs %s stay queued in the database: Redis unavailable (%s)",
                    ", ".join(str(run.id) for run in runs), type(exc).__name__)
        for run in runs:
            run.waits_for_queue = True


def active_run(link_id):
    """The queued, running or deferred run of a link, or None."""
    return db.session.scalar(
        select(SyncRun)
        .where(SyncRun.link_id == link_id, SyncRun.status.in_(RunStatus.ACTIVE))
        .order_by(SyncRun.id.desc())
        .limit(1)
    )


def enqueue_run(run_id, *, at=None, front=False):
    """Put run ``run_id`` on the sync queue (now, at its front with ``front``, or at the
    datetime ``at``, UTC).

    The job id is deterministic: enqueueing a run twice replaces its job, never doubles it.
    """
    queue = sync_queue()
    options = _job_options(run_id)
    options["job_timeout"] = options.pop("timeout")
    if at is not None:
        from datetime import timezone

        return queue.enqueue_at(at.replace(tzinfo=timezone.utc), "jobs.sync.run", run_id, **options)
    return queue.enqueue("jobs.sync.run", run_id, at_front=front, **options)


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

    from app.services.queues import get_queue

    queue = get_queue()
    try:
        job = queue.fetch_job(sync_job_id(run_id))
        if job is not None:
            job.cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass


def _job_options(run_id):
    from flask import current_app

    return dict(
        job_id=sync_job_id(run_id),
        timeout=current_app.config.get("SYNC_JOB_TIMEOUT", 6 * 3600),
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"sync run {run_id}",
    )


def _links_to_sync(dossier_ids):
    """``{dossier_id: link_id}``: the active accounting link, else the administration link."""
    chosen = {}
    for dossier_id, link_id, kind in db.session.execute(
        select(DossierLink.dossier_id, DossierLink.id, DossierLink.kind)
        .where(DossierLink.dossier_id.in_(dossier_ids), DossierLink.ended_at.is_(None))
        .order_by(DossierLink.id)
    ):
        if kind == "accounting" or dossier_id not in chosen:
            chosen[dossier_id] = link_id
    return chosen


def _link_to_sync(dossier, link_id):
    links = db.session.scalars(
        select(DossierLink).where(DossierLink.dossier_id == dossier.id, DossierLink.ended_at.is_(None))
    ).all()
    if link_id is not None:
        return next((l for l in links if l.id == link_id), None)
    by_kind = {l.kind: l for l in links}
    return by_kind.get("accounting") or by_kind.get("administration")


def sets_file_status(link):
    """Whether runs of ``link`` set the file's own status (``Dossier.sync_status``).

    Bookkeeping runs do. A company-data (administration) run does only on a file with no
    active accounting link: an unknown register number must not mark the books Failed. Both
    statuses are shown side by side from :func:`app.company_profile.sync_statuses`."""
    if link.kind != "administration":
        return True
    return db.session.scalar(select(DossierLink.id).where(
        DossierLink.dossier_id == link.dossier_id, DossierLink.kind == "accounting",
        DossierLink.ended_at.is_(None)).limit(1)) is None


def _commit_or_rollback():
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
