"""Starting syncs: every trigger (sync now, bulk resync, setup, nightly, retry) comes here.

:func:`request_sync` checks the actor's right, **commits** a :class:`SyncRun` and then
enqueues ``jobs.sync.run(run_id)`` with the job id ``sync-run-<run_id>``. A dossier whose
link already has a queued, running or deferred run gets that run back instead of a new one;
a short Redis lock per dossier around check-and-create makes two simultaneous clicks give
one run. :func:`cancel_run` stops a run.

Queues and fairness (docs/sync-engine.md): a run goes to the ``people`` queue when a person
asked for it (:data:`PEOPLE_FIRST`), to ``backfill`` when it is a first sync
(:func:`backfill_condition`), else to ``sync`` (:func:`initial_queues`). A first sync waits in
the database (``SyncRun.queue`` is None) until its firm has fewer than
``SYNC_BACKFILL_JOBS_PER_FIRM`` first syncs in the backfill queue: :func:`release_backfills`
tops each firm up, after a run is created, when one of its first syncs ends or is deferred, and
from the reaper. "Sync now" of a queued run moves it to the front of the people queue
(:func:`hurry`).
"""
import logging
from contextlib import ExitStack, contextmanager

from rq import Queue
from sqlalchemy import and_, case, exists, false, func, insert, literal, null, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can, dossier_visibility
from app.extensions import db
from app.models import Dossier, DossierLink, Firm, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app import locks
from app.redis_connection import OUTAGE_ERRORS
from app.services.queues import BACKFILL_QUEUE, NIGHTLY_QUEUE, PEOPLE_QUEUE, get_queue, sync_job_id, sync_queue

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
            if trigger in PEOPLE_FIRST:
                hurry(existing)
            return existing
        run = SyncRun(
            firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=link.id, trigger=trigger,
            triggered_by_id=actor.user_id if actor else None, nightly_key=nightly_key,
            status=RunStatus.QUEUED, queue=initial_queues(trigger, [link.id])[link.id],
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
        if run.queue is None:
            release_backfills([run.firm_id])
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
    gets that run back (with ``trigger`` manual, the API's sync of one file, a queued one is
    moved to the front of the people queue: :func:`hurry`; a bulk resync moves nothing, or a
    selection of hundreds of first syncs would skip their firm's turn). New runs are inserted
    together (``INSERT ... RETURNING``) and committed, then enqueued (:func:`enqueue_runs`);
    new first syncs are released by their firm's turn (:func:`release_backfills`). The
    per-dossier Redis trigger lock is not taken here.
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
    new_links = [link_id for _, link_id in targets if link_id not in active]
    queues = initial_queues(trigger, new_links) if new_links else {}
    for dossier_id, link_id in targets:
        if link_id not in active:
            active[link_id] = None  # one new run per link
            rows.append({"firm_id": firm_of[dossier_id], "dossier_id": dossier_id, "link_id": link_id,
                         "trigger": trigger, "triggered_by_id": actor.user_id if actor else None,
                         "status": RunStatus.QUEUED, "queue": queues[link_id]})
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
    new_runs = [loaded[run_id] for run_id in new_ids]
    enqueue_or_leave_queued(new_runs, batch=True)
    release_backfills({run.firm_id for run in new_runs if run.queue is None})
    if trigger == Trigger.MANUAL:
        for run_id in wanted:
            if run_id not in new_ids:
                hurry(loaded[run_id])
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


#: runs a person asked for ("sync now", "Resync selected", the API's trigger) go to the people
#: queue, before the night's runs and the first syncs (docs/sync-engine.md, "Queues and fairness")
PEOPLE_FIRST = (Trigger.MANUAL, Trigger.BULK)


def backfill_condition(trigger, link_id):
    """Whether a run is a **backfill** (a first sync), as SQL: the one definition.

    A run with ``trigger`` of link ``link_id`` is one when the set-up scenario created it
    (trigger ``setup``) or when its link has never synced successfully (a nightly run or a
    retry of a link whose first sync failed), unless a person asked for it
    (:data:`PEOPLE_FIRST`: "sync now" goes to the people queue, whatever the link's past).
    ``trigger`` and ``link_id`` are values or SQL columns (the nightly fan-out's
    ``INSERT ... SELECT`` applies it to the links).
    """
    succeeded = aliased(SyncRun)
    never_synced = ~exists().where(succeeded.link_id == link_id, succeeded.status == RunStatus.SUCCEEDED)
    if isinstance(trigger, str):
        if trigger in PEOPLE_FIRST:
            return false()
        return true() if trigger == Trigger.SETUP else never_synced
    return and_(trigger.not_in(PEOPLE_FIRST), or_(trigger == Trigger.SETUP, never_synced))


def is_backfill(trigger, link_id):
    """Whether a run with ``trigger`` of link ``link_id`` is a first sync (:func:`backfill_condition`)."""
    return bool(db.session.scalar(select(backfill_condition(trigger, link_id))))


def initial_queue_column(trigger, link_id):
    """SQL for the queue a new run starts in (``SyncRun.queue``; NULL: a first sync waiting for
    its turn), from :func:`backfill_condition`."""
    if isinstance(trigger, str) and trigger in PEOPLE_FIRST:
        return literal(PEOPLE_QUEUE)
    return case((backfill_condition(trigger, link_id), null()), else_=literal(NIGHTLY_QUEUE))


def initial_queues(trigger, link_ids):
    """``{link_id: queue}`` of new runs with ``trigger``: :data:`PEOPLE_QUEUE`, :data:`NIGHTLY_QUEUE`,
    or None for a first sync, which waits for its turn (:func:`release_backfills`)."""
    if trigger in PEOPLE_FIRST:
        return {link_id: PEOPLE_QUEUE for link_id in link_ids}
    return dict(db.session.execute(select(DossierLink.id, initial_queue_column(trigger, DossierLink.id))
                                   .where(DossierLink.id.in_(set(link_ids)))).all())


def waiting_for_turn(firm_id=None):
    """SQL: the run is a first sync waiting for its turn (of firm ``firm_id`` when given)."""
    condition = and_(SyncRun.status == RunStatus.QUEUED, SyncRun.queue.is_(None))
    return condition if firm_id is None else and_(SyncRun.firm_id == firm_id, condition)


def _in_backfill_queue(firm_id):
    """SQL: the firm's first syncs that hold one of its turns (in the backfill queue or running)."""
    return and_(SyncRun.firm_id == firm_id, SyncRun.queue == BACKFILL_QUEUE,
                SyncRun.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))


def release_backfills(firm_ids):
    """Top each firm of ``firm_ids`` up to ``SYNC_BACKFILL_JOBS_PER_FIRM`` first syncs in the
    backfill queue (or running), its oldest waiting ones first; returns the ids released.

    A deferred first sync gives its turn back until it runs again. Each firm is decided in its
    own transaction under a lock of the firm's row (this commits the session first), so two
    workers ending two first syncs of a firm at once release one each, never past the quota.
    The released runs are committed with ``queue = "backfill"`` and then enqueued; while Redis
    is away the reaper enqueues them (a queued run whose job is missing).
    """
    quota = max(1, int(locks.setting("SYNC_BACKFILL_JOBS_PER_FIRM", 2)))
    released = []
    for firm_id in sorted(set(firm_ids)):
        db.session.commit()
        _lock_firm(firm_id)
        free = quota - db.session.scalar(select(func.count()).select_from(SyncRun).where(_in_backfill_queue(firm_id)))
        ids = list(db.session.scalars(select(SyncRun.id).where(waiting_for_turn(firm_id))
                                      .order_by(SyncRun.id).limit(free))) if free > 0 else []
        if ids:
            db.session.execute(update(SyncRun).where(SyncRun.id.in_(ids), waiting_for_turn())
                               .values(queue=BACKFILL_QUEUE), execution_options={"synchronize_session": False})
        db.session.commit()
        released += ids
    if released:
        try:
            enqueue_runs(released, queue=BACKFILL_QUEUE)
        except OUTAGE_ERRORS as exc:
            log.warning("first syncs %s released but not enqueued: Redis unavailable (%s); the reaper enqueues them",
                        ", ".join(map(str, released)), type(exc).__name__)
    return released


def release_next_backfills(run_id):
    """After run ``run_id`` ended or was deferred: when it was a first sync in the backfill
    queue its turn is free, so its firm's next waiting first sync is released."""
    row = db.session.execute(select(SyncRun.firm_id, SyncRun.queue).where(SyncRun.id == run_id)).first()
    if row is None or row.queue != BACKFILL_QUEUE:
        return []
    return release_backfills([row.firm_id])


def backfills_ahead(run):
    """How many first syncs of the run's firm are ahead of ``run`` while it waits for its turn
    (those in the backfill queue or running, and the older ones waiting); None when ``run`` is
    not waiting for its turn."""
    if run is None or run.status != RunStatus.QUEUED or run.queue is not None:
        return None
    return db.session.scalar(select(func.count()).select_from(SyncRun).where(or_(
        _in_backfill_queue(run.firm_id), and_(waiting_for_turn(run.firm_id), SyncRun.id < run.id))))


def hurry(run):
    """Move the queued ``run`` to the front of the people queue (a person pressed "sync now" on a
    file whose run is queued): a first sync waiting for its turn at once, a run in the nightly or
    backfill queue when its job is still in that queue (not taken by a worker, not scheduled for
    a later try). Returns whether it moved. A first sync leaving the backfill queue gives its
    firm's turn to the next one."""
    if run.status != RunStatus.QUEUED or run.queue == PEOPLE_QUEUE:
        return False
    was = run.queue
    if was is not None:
        try:
            if not sync_queue(was).remove(sync_job_id(run.id)):
                return False  # a worker took it, or its next try is scheduled
        except OUTAGE_ERRORS:
            return False
    moved = db.session.execute(
        update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == RunStatus.QUEUED,
                              SyncRun.queue.is_(None) if was is None else SyncRun.queue == was)
        .values(queue=PEOPLE_QUEUE), execution_options={"synchronize_session": False}).rowcount
    db.session.commit()
    db.session.refresh(run)
    if not moved:
        return False
    enqueue_or_leave_queued([run])
    if was == BACKFILL_QUEUE:
        release_backfills([run.firm_id])
    return True


def _lock_firm(firm_id):
    """Lock the firm's row until the transaction ends (PostgreSQL: ``FOR NO KEY UPDATE``;
    SQLite: a no-op ``UPDATE`` taking the single write lock first, as :func:`lock_links`)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Firm.id).where(Firm.id == firm_id).with_for_update(key_share=True))
    else:
        db.session.execute(update(Firm).where(Firm.id == firm_id).values(name=Firm.name),
                           execution_options={"synchronize_session": False})


def enqueue_runs(run_ids, *, queue=NIGHTLY_QUEUE, front=False):
    """Enqueue several committed runs on the sync queue ``queue`` (same job options as
    :func:`enqueue_run`; ``front``: at its front), a thousand jobs per Redis pipeline. Returns
    how many jobs were enqueued."""
    if not run_ids:
        return 0
    queue = sync_queue(queue)
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
    pipeline per thousand jobs (:func:`enqueue_runs`), else :func:`enqueue_run` per run.
    Each run goes to its own queue (``run.queue``; a first sync waiting for its turn is left to
    :func:`release_backfills`), people's runs at the front of theirs."""
    for run in runs:
        run.waits_for_queue = False
    runs = [run for run in runs if run.queue is not None]
    if not runs:
        return
    try:
        if batch:
            for queue in dict.fromkeys(run.queue for run in runs):
                enqueue_runs([run.id for run in runs if run.queue == queue], queue=queue,
                             front=queue == PEOPLE_QUEUE)
        else:
            for run in runs:
                enqueue_run(run.id, front=run.queue == PEOPLE_QUEUE, queue=run.queue)
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


def enqueue_run(run_id, *, at=None, front=False, queue=None):
    """Put run ``run_id`` on its sync queue (now, at its front with ``front``, or at the
    datetime ``at``, UTC). ``queue`` defaults to the run's own (``SyncRun.queue``; the nightly
    queue for a run that has none), so a run tried again returns to the queue it came from.

    The job id is deterministic: enqueueing a run twice replaces its job, never doubles it.
    """
    queue = sync_queue(queue or db.session.scalar(select(SyncRun.queue).where(SyncRun.id == run_id))
                       or NIGHTLY_QUEUE)
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
    if run.status == RunStatus.CANCELLED and run.queue == BACKFILL_QUEUE:
        release_backfills([run.firm_id])  # its turn is free
    return run


def _remove_job(run_id):
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    queue = get_queue(db.session.scalar(select(SyncRun.queue).where(SyncRun.id == run_id)) or NIGHTLY_QUEUE)
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
