"""The nightly fan-out: one nightly run per active link, once per firm-local night.

For every firm whose local ``nightly_time`` (in the firm's ``timezone``) has passed today,
every active link whose connection is active gets a run with trigger ``nightly`` and
``nightly_key = "<link_id>:<local date>"``. The key is unique in the database and links
whose key is already used tonight are left out, so running the fan-out twice (two cron
processes, a restart, every minute) queues each link once per night. A link that already
has a queued, running or deferred run gets no new run: that run takes tonight's key, it
covers tonight. So does a run that succeeded after tonight's nightly moment (a file set up
or synced by hand this afternoon needs no "nightly" run a minute later; it gets the next
night's). Links whose connection needs reconnecting or is disabled are skipped: their
dossiers already show why.

The work is done in the database, a fixed number of statements per firm-local date whatever
the number of links (``INSERT ... SELECT ... RETURNING``), then the new runs are committed
and only then enqueued (:func:`app.services.syncs.enqueue_runs`, one Redis pipeline).

Queues (docs/sync-engine.md, "Queues and fairness"): the night's runs go to the ``sync``
queue with the firms taking turns, also with the runs an earlier round (another firm's
earlier night) left in the queue (:func:`enqueue_night`); a nightly run of a link that has
never synced successfully is a first sync and waits for its firm's turn in the backfill queue.

Run it every few minutes: ``flask sync nightly`` (or ``flask sync cron``, or ``rq cron``).
It never waits long on a row lock (``NIGHTLY_LOCK_TIMEOUT_MS``, PostgreSQL): a group of firms
whose statements meet a row held by a frozen process is skipped for this round (logged), so
the reaper (a separate job) and the other firms' nights go on.
"""
import logging
from collections import defaultdict
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import String, cast, exists, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import aliased

from app.extensions import db
from app.redis_connection import redis_connection
from app.models import Connection, ConnectionStatus, Dossier, DossierLink, Firm, RunStatus, SyncRun, Trigger
from app.models.base import utcnow

log = logging.getLogger("firmsync.jobs")

#: how often a night's batch is tried again when another fan-out committed the same keys first
ATTEMPTS = 3


def firm_local_now(firm, now):
    """``now`` (naive UTC) in the firm's timezone (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(firm.timezone or "UTC")
    except ZoneInfoNotFoundError:
        zone = timezone.utc
    return now.replace(tzinfo=timezone.utc).astimezone(zone)


def nightly_time_of(firm, default="02:00"):
    """The firm's ``nightly_time`` as a :class:`datetime.time` (``default`` when unreadable)."""
    try:
        hours, minutes = (int(p) for p in (firm.nightly_time or default).split(":"))
        return time(hours, minutes)
    except ValueError:
        hours, minutes = (int(p) for p in default.split(":"))
        return time(hours, minutes)


def due_firms(now):
    """``{(local date, nightly moment as naive UTC): [firm ids]}`` of the firms whose nightly time has
    passed at ``now`` (naive UTC)."""
    due = defaultdict(list)
    for firm in db.session.scalars(select(Firm).order_by(Firm.id)):
        local = firm_local_now(firm, now)
        if local.time() >= nightly_time_of(firm):
            moment = datetime.combine(local.date(), nightly_time_of(firm), tzinfo=local.tzinfo)
            due[(local.date(), moment.astimezone(timezone.utc).replace(tzinfo=None))].append(firm.id)
    return due


def fan_out(now=None):
    """Queue tonight's runs. ``now`` is naive UTC (tests pass one). Returns the new run ids.

    Firms sharing a local date are queued together: the new runs are committed, then
    enqueued. Links whose night is covered by a run already active are not in the result.
    """
    from app import locks

    created = []
    with locks.bounded_lock_wait(db.session, locks.setting("NIGHTLY_LOCK_TIMEOUT_MS", 5000)):
        for (local_date, moment), firm_ids in sorted(due_firms(now or utcnow()).items()):
            try:
                run_ids = _queue_night(firm_ids, f":{local_date.isoformat()}", moment)
            except OperationalError as exc:  # a row held by a frozen process: this group waits a round
                db.session.rollback()
                log.warning("nightly fan-out: firms %s skipped this round (%s)", firm_ids, str(exc.orig).strip()[:200])
                continue
            enqueue_night(run_ids)
            created += run_ids
    if created:
        log.info("nightly fan-out queued %d run(s)", len(created))
    return created


def firms_in_turn(run_ids, firm_of=None):
    """``run_ids`` ordered so the firms take turns (the first run of each firm, then the second
    of each...): a firm with a thousand files never makes another firm's night wait behind it.
    ``firm_of`` (``{run id: firm id}``) saves reading the runs' firms."""
    if firm_of is None:
        firm_of = {row.id: row.firm_id for row in _runs(run_ids, SyncRun.firm_id)}
    per_firm = defaultdict(list)
    for run_id in sorted(run_ids):
        per_firm[firm_of[run_id]].append(run_id)
    turns = [(rank, firm_id, run_id) for firm_id, ids in per_firm.items() for rank, run_id in enumerate(ids)]
    return [run_id for _, _, run_id in sorted(turns)]


def enqueue_night(run_ids):
    """Enqueue the night's new, committed runs: those of the nightly queue with the firms taking
    turns (:func:`firms_in_turn`), also with the jobs earlier rounds left in the queue
    (:func:`take_turns_in_queue`); first syncs are released by their firm's turn
    (:func:`app.services.syncs.release_backfills`)."""
    from app.services.queues import NIGHTLY_QUEUE, sync_queue
    from app.services.syncs import enqueue_runs, release_backfills

    if not run_ids:
        return
    rows = _runs(run_ids, SyncRun.firm_id, SyncRun.queue)
    nightly = firms_in_turn([row.id for row in rows if row.queue == NIGHTLY_QUEUE], {row.id: row.firm_id for row in rows})
    queue = sync_queue(NIGHTLY_QUEUE)
    left_by_earlier_rounds = queue.count
    enqueue_runs(nightly)
    if left_by_earlier_rounds and nightly:
        take_turns_in_queue(queue, nightly)
    release_backfills({row.firm_id for row in rows if row.queue is None})


#: tries of :func:`take_turns_in_queue` when workers take jobs from the queue meanwhile
REORDER_ATTEMPTS = 5
#: run ids per query when reading runs by id (PostgreSQL takes at most 65,535 parameters)
_RUN_LOOKUP_CHUNK = 5000


def take_turns_in_queue(queue, new_run_ids):
    """Move the jobs of ``new_run_ids`` (just pushed to the end of ``queue``, in turn order)
    among the jobs already waiting there, so firms keep taking turns: a firm's k-th job in the
    queue goes right after the last waiting job that is the k-th (or earlier) of its own firm.
    The waiting jobs keep their order. The list is rewritten in one Redis transaction that
    fails when a worker took a job meanwhile (``WATCH``); it is then tried again, up to
    :data:`REORDER_ATTEMPTS` times, and after that the jobs simply stay at the end. Returns
    whether the queue was reordered."""
    from redis.exceptions import WatchError

    from app.services.queues import run_id_from_job_id, sync_job_id

    key = queue.key
    connection = redis_connection() if queue.connection is None else queue.connection
    new_jobs = [sync_job_id(run_id) for run_id in new_run_ids]
    firm_of = _firms_of_jobs(_text(connection.lrange(key, 0, -1)), run_id_from_job_id)
    for _ in range(REORDER_ATTEMPTS):
        with connection.pipeline() as pipe:
            try:
                pipe.watch(key)
                order = jobs_in_turn(_text(pipe.lrange(key, 0, -1)), set(new_jobs), firm_of)
                pipe.multi()
                pipe.delete(key)
                if order:
                    pipe.rpush(key, *order)
                pipe.execute()
                return True
            except WatchError:
                continue
    log.info("nightly fan-out: the queue kept changing; %d new run(s) stay at its end", len(new_jobs))
    return False


def jobs_in_turn(job_ids, new_jobs, firm_of):
    """``job_ids`` (a queue, in order) with the ``new_jobs`` among them moved so firms take turns
    (see :func:`take_turns_in_queue`); ``firm_of`` maps job ids to firms (other jobs keep their
    place and take no turn)."""
    waiting = [job_id for job_id in job_ids if job_id not in new_jobs]
    seen = defaultdict(int)
    last_of_turn = {}  # turn -> index in ``waiting`` of its last job
    for index, job_id in enumerate(waiting):
        firm = firm_of.get(job_id)
        if firm is not None:
            last_of_turn[seen[firm]] = index
            seen[firm] += 1
    after, latest = [], -1  # after[turn]: the last waiting job of that turn or an earlier one
    for turn in range(max(last_of_turn, default=-1) + 1):
        latest = max(latest, last_of_turn.get(turn, -1))
        after.append(latest)
    behind = defaultdict(list)
    for job_id in (job_id for job_id in job_ids if job_id in new_jobs):
        firm = firm_of.get(job_id)
        turn = seen[firm]
        seen[firm] += 1
        behind[after[turn] if turn < len(after) else len(waiting) - 1].append(job_id)
    order = list(behind[-1])
    for index, job_id in enumerate(waiting):
        order.append(job_id)
        order += behind[index]
    return order


def _firms_of_jobs(job_ids, run_id_of):
    """``{job id: firm id}`` of the sync-run jobs among ``job_ids``."""
    runs = {run_id_of(job_id): job_id for job_id in job_ids if run_id_of(job_id) is not None}
    return {runs[row.id]: row.firm_id for row in _runs(runs, SyncRun.firm_id)}


def _runs(run_ids, *columns):
    """Rows ``(id, *columns)`` of the runs ``run_ids``, read in chunks (a night of 100,000 files
    would pass PostgreSQL's limit of 65,535 parameters in one query)."""
    run_ids = sorted(run_ids)
    rows = []
    for start in range(0, len(run_ids), _RUN_LOOKUP_CHUNK):
        chunk = run_ids[start:start + _RUN_LOOKUP_CHUNK]
        rows += db.session.execute(select(SyncRun.id, *columns).where(SyncRun.id.in_(chunk))).all()
    return rows


def _text(values):
    return [value.decode() if isinstance(value, bytes) else value for value in values]


def _queue_night(firm_ids, suffix, moment):
    """Insert and commit the runs of one local night (key suffix ``":<date>"``, nightly ``moment``
    in naive UTC); their ids."""
    from app.services.syncs import initial_queue_column

    for attempt in range(1, ATTEMPTS + 1):
        try:
            _lock_links(firm_ids)
            _cover_with_active_runs(firm_ids, suffix)
            _cover_with_fresh_runs(firm_ids, suffix, moment)
            # ordered by the key (an expression no index gives): the sort reads every chosen link before the
            # first run is inserted, so the look-up of tonight's key never reads the runs this statement adds
            # (planned without statistics, a first night, it was a scan of sync_run per link: quadratic)
            run_ids = sorted(db.session.scalars(insert(SyncRun).from_select(
                ["firm_id", "dossier_id", "link_id", "trigger", "nightly_key", "status", "queue"],
                _links_without_a_run(firm_ids, suffix).with_only_columns(
                    DossierLink.firm_id, DossierLink.dossier_id, DossierLink.id, literal(Trigger.NIGHTLY),
                    _key_of(DossierLink.id, suffix), literal(RunStatus.QUEUED),
                    initial_queue_column(Trigger.NIGHTLY, DossierLink.id)).order_by(_key_of(DossierLink.id, suffix)),
            ).returning(SyncRun.id)))
            if run_ids:
                _mark_dossiers_queued(firm_ids, suffix, run_ids[0], run_ids[-1])
            db.session.commit()
            return run_ids
        except IntegrityError:  # another fan-out committed some of tonight's keys first
            db.session.rollback()
            if attempt == ATTEMPTS:
                raise
            log.info("nightly fan-out met a concurrent fan-out; trying again")


def _lock_links(firm_ids):
    """PostgreSQL: lock the firms' links as :func:`app.services.syncs.lock_links` does (same
    order, no deadlock), so a "Resync selected" or an API call at the same moment either sees
    tonight's runs or is seen by them: never two runs for one file. SQLite's single writer
    already serialises the two."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(DossierLink.id).where(DossierLink.id.in_(_active_links(firm_ids)))
                           .order_by(DossierLink.id).with_for_update(key_share=True))


def _key_of(link_id, suffix):
    """SQL for ``"<link_id><suffix>"``, the nightly key of a link."""
    return cast(link_id, String) + literal(suffix, String)


def _active_links(firm_ids):
    """The firms' links that tonight's fan-out concerns: not ended, connection active."""
    return (select(DossierLink.id)
            .join(Connection, Connection.id == DossierLink.connection_id)
            .join(Dossier, Dossier.id == DossierLink.dossier_id)
            .where(DossierLink.firm_id.in_(firm_ids), DossierLink.ended_at.is_(None),
                   Connection.status == ConnectionStatus.ACTIVE))


def _links_without_a_run(firm_ids, suffix):
    """Active links with no active run and no run with tonight's key (select the columns you need)."""
    busy = select(SyncRun.link_id).where(SyncRun.firm_id.in_(firm_ids), SyncRun.status.in_(RunStatus.ACTIVE))
    tonight = aliased(SyncRun)
    return _active_links(firm_ids).where(
        DossierLink.id.not_in(busy),
        ~exists().where(tonight.nightly_key == _key_of(DossierLink.id, suffix)),
    )


def _cover_with_active_runs(firm_ids, suffix):
    """Give tonight's key to the newest active run of each active link that has none yet."""
    newest_active = (select(func.max(SyncRun.id))
                     .where(SyncRun.firm_id.in_(firm_ids), SyncRun.status.in_(RunStatus.ACTIVE))
                     .group_by(SyncRun.link_id))
    tonight = aliased(SyncRun)
    db.session.execute(
        update(SyncRun)
        .where(SyncRun.id.in_(newest_active), SyncRun.nightly_key.is_(None),
               SyncRun.link_id.in_(_active_links(firm_ids)),
               ~exists().where(tonight.nightly_key == _key_of(SyncRun.link_id, suffix)))
        .values(nightly_key=_key_of(SyncRun.link_id, suffix)),
        execution_options={"synchronize_session": False},
    )


def _cover_with_fresh_runs(firm_ids, suffix, moment):
    """Give tonight's key to the newest run of each active link that succeeded after, or in
    the ``NIGHTLY_SKIP_RECENT_HOURS`` before, tonight's nightly ``moment``: the file is already
    as fresh as tonight's run would make it (a set-up run at 01:30 needs no nightly at 02:00)."""
    recent = timedelta(hours=float(current_app.config.get("NIGHTLY_SKIP_RECENT_HOURS", 6)))
    newest_fresh = (select(func.max(SyncRun.id))
                    .where(SyncRun.firm_id.in_(firm_ids), SyncRun.status == RunStatus.SUCCEEDED,
                           SyncRun.finished_at >= moment - recent)
                    .group_by(SyncRun.link_id))
    tonight = aliased(SyncRun)
    db.session.execute(
        update(SyncRun)
        .where(SyncRun.id.in_(newest_fresh), SyncRun.nightly_key.is_(None),
               SyncRun.link_id.in_(_active_links(firm_ids)),
               ~exists().where(tonight.nightly_key == _key_of(SyncRun.link_id, suffix)))
        .values(nightly_key=_key_of(SyncRun.link_id, suffix)),
        execution_options={"synchronize_session": False},
    )


def _mark_dossiers_queued(firm_ids, suffix, first_id, last_id):
    """Show "queued" on the dossiers of tonight's runs numbered ``first_id`` to ``last_id``."""
    books = aliased(DossierLink)
    new_runs = select(SyncRun.dossier_id).join(DossierLink, DossierLink.id == SyncRun.link_id).where(
        SyncRun.id.between(first_id, last_id), SyncRun.firm_id.in_(firm_ids),
        SyncRun.status == RunStatus.QUEUED, SyncRun.nightly_key.endswith(suffix, autoescape=True),
        # as app.services.syncs.sets_file_status: company-data runs leave a file with books alone
        (DossierLink.kind != "administration") | ~exists().where(
            books.dossier_id == SyncRun.dossier_id, books.kind == "accounting", books.ended_at.is_(None)))
    db.session.execute(update(Dossier).where(Dossier.id.in_(new_runs)).values(sync_status=RunStatus.QUEUED),
                       execution_options={"synchronize_session": False})


def nightly_job():
    """RQ job wrapper of :func:`fan_out` (used by ``jobs/cron.py``); returns how many runs it queued."""
    return len(fan_out())
