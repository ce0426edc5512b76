"""The console's home page (``/admin/``): the firm dashboard.

What it shows, always limited to the files the actor may see (:func:`app.access.dossier_visibility`):

* counts of files whose sync failed, needs a reconnect, is stale (no successful sync for more
  than ``STALE_AFTER_HOURS``), is running, or is queued (or waiting for the package), each a
  link to the Files list filtered the same way (:func:`admin_views.dossiers.files_url`);
* how many files' newest data check found differences (:func:`files_with_data_differences`);
* the latest failures with their messages;
* the connections needing a reconnect (firm-level ones for administrators and support, the
  file-owned grants of visible files for everyone), with a Reconnect button for who may;
* the last nightly run: when it started and finished and how many files succeeded, were
  deferred, failed, or are still under way.

Support staff see every firm, with a Firm column in the latest failures, and may pick one firm
(:meth:`DashboardView.pick_firm`, kept in the session): every tile, list and count is then that
firm's, and so is the Files list the tiles link to.

The page costs a fixed number of SQL statements whatever the number of files: every figure
is an aggregate (:func:`dashboard_data`).
"""
from dataclasses import dataclass
from datetime import timedelta

from flask import abort, redirect, request, session, url_for
from flask_admin import expose
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import aliased

from admin_views.base import ConsoleIndexView
from admin_views.base import row_id
from admin_views.dossiers import (
    PICKED_FIRM_KEY,
    SYNC_STATES,
    ago,
    files_url,
    firm_options,
    picked_firm_id,
    stale_after_hours,
    stale_condition,
)
from admin_views.formatting import badge, timestamp
from admin_views.sync_runs import runs_with_differences_url
from app.access import dossier_visibility, visible_dossier_ids
from app.extensions import db
from app.i18n import N_
from app.models import Connection, ConnectionStatus, Dossier, Firm, Role, RunStatus, SyncRun, Trigger
from app.services.data_checks import DIFFERENCES

LATEST_FAILURES = 10
#: how far before the newest nightly run the runs of the same night are looked for: one firm
#: fans out its night at once (minutes; 6 h leaves room for late cron ticks); over every firm (support) local nights span the
#: world's time zones (UTC-12 to UTC+14)
NIGHT_WINDOW = timedelta(hours=6)
NIGHT_WINDOW_ALL_FIRMS = timedelta(hours=27)
#: dashboard tile -> (label, translated where shown; Files list filter)
TILES = (
    ("failed", N_("Syncs failing"), {"status": "failed"}),
    ("needs_reconnect", N_("Needing reconnect"), {"status": "needs_reconnect"}),
    ("stale", N_("Stale"), {"stale": "yes"}),
    ("running", N_("Running"), {"status": "running"}),
    ("queued", N_("Queued"), {"status": "queued"}),
)


@dataclass
class NightlyRun:
    """The last nightly run over the actor's files (the runs sharing the newest night's key)."""

    night: str
    started_at: object
    finished_at: object  # None while runs are still under way
    succeeded: int
    deferred: int
    failed: int
    in_progress: int

    @property
    def total(self):
        return self.succeeded + self.deferred + self.failed + self.in_progress


def tile_counts(actor, now=None, statuses=None, stale=None, firm_id=None):
    """``{tile key: number of visible files}`` for :data:`TILES`.

    The sync-state tiles add up :func:`status_counts` and the stale tile counts
    :func:`admin_views.dossiers.stale_condition`: one scan of the visible files
    (:func:`status_and_stale_counts`), unless both are given.
    """
    if statuses is None or stale is None:
        statuses, stale = status_and_stale_counts(actor, now, firm_id)
    by_status = dict(statuses)
    return {
        "failed": by_status.get(RunStatus.FAILED, 0),
        "needs_reconnect": by_status.get(RunStatus.NEEDS_RECONNECT, 0),
        "stale": int(stale or 0),
        "running": by_status.get(RunStatus.RUNNING, 0),
        "queued": by_status.get(RunStatus.QUEUED, 0) + by_status.get(RunStatus.DEFERRED, 0),
    }


def latest_failures(actor, limit=LATEST_FAILURES, firm_id=None):
    """The visible files whose sync failed or needs a reconnect, with their latest run's message.

    ``[(dossier id, name, number, status, message, finished_at)]``, newest run first (one
    statement). The runs are walked newest first (primary key backwards) and the walk stops at
    the ``limit``-th failing file whose newest run it is (one ``ix_sync_run_dossier_id_id``
    probe per run looked at): with a million runs and thousands of failing files it reads a few
    dozen rows, never the whole history nor every failing file. ``firm_id`` (support's picked
    firm) keeps one firm's files.
    """
    other = aliased(SyncRun)
    newest_run = (select(func.max(other.id)).where(other.dossier_id == SyncRun.dossier_id)
                  .correlate(SyncRun).scalar_subquery())
    return db.session.execute(
        select(Dossier.id, Dossier.name, Dossier.number, Dossier.sync_status, SyncRun.message, SyncRun.finished_at)
        .select_from(SyncRun)
        .join(Dossier, Dossier.id == SyncRun.dossier_id)
        .where(dossier_visibility(actor), Dossier.sync_status.in_((RunStatus.FAILED, RunStatus.NEEDS_RECONNECT)),
               SyncRun.id == newest_run, *_in_firm(Dossier.firm_id, firm_id))
        .order_by(SyncRun.id.desc())
        .limit(limit)
    ).all()


def files_with_data_differences(actor, firm_id=None):
    """How many visible files' newest data check found differences between the package's
    balances and its ledger lines (:mod:`app.services.data_checks`; one statement).

    A file's newest check is its newest run that has one (the ``(dossier_id, id)`` index);
    ``firm_id`` (support's picked firm) keeps one firm's files."""
    other = aliased(SyncRun)
    newest_check = (select(func.max(other.id)).where(other.dossier_id == Dossier.id,
                                                     other.data_check_status.is_not(None))
                    .correlate(Dossier).scalar_subquery())
    return db.session.scalar(
        select(func.count()).select_from(Dossier)
        .join(SyncRun, SyncRun.id == newest_check)
        .where(dossier_visibility(actor), SyncRun.data_check_status == DIFFERENCES,
               *_in_firm(Dossier.firm_id, firm_id))
    ) or 0


def connections_to_reconnect(actor, firm_id=None):
    """Connections needing a reconnect that ``actor`` should hear about (one statement).

    Firm-level connections for administrators (their firm) and support (every firm);
    connections owned by a file (Xero, QuickBooks...) when the actor sees that file.
    """
    if actor is None:
        return []
    owned = Connection.owner_dossier_id.in_(visible_dossier_ids(actor))
    conditions = [owned]
    if actor.is_support:
        conditions.append(Connection.level == "firm")
    elif actor.role == Role.ADMIN:
        conditions.append((Connection.level == "firm") & (Connection.firm_id == actor.firm_id))
    return db.session.scalars(
        select(Connection).where(Connection.status == ConnectionStatus.NEEDS_RECONNECT, or_(*conditions),
                                 *_in_firm(Connection.firm_id, firm_id))
        .order_by(Connection.name)
    ).all()


def may_reconnect(actor, connection):
    """Admins reconnect firm-level connections; admins and staff the grants of files they see
    (only such connections are listed, so the role decides without a query)."""
    if actor is None or actor.is_support:
        return False
    if connection.level == "firm":
        return actor.role == Role.ADMIN
    return actor.role in (Role.ADMIN, Role.STAFF)


def last_nightly_run(actor, firm_id=None):
    """The last nightly run over the files ``actor`` sees, or None (two statements).

    A night is identified by the date suffix of ``SyncRun.nightly_key`` (``<link>:<local date>``).
    Both statements read only recent nightly runs (index on firm, trigger, queued at): the
    newest one, then those queued within :data:`NIGHT_WINDOW` before it (one firm's night;
    :data:`NIGHT_WINDOW_ALL_FIRMS` for support), never the whole history.
    """
    if actor is None:
        return None
    nightly = [SyncRun.trigger == Trigger.NIGHTLY]
    if not actor.is_support:
        nightly.append(SyncRun.firm_id == actor.firm_id)  # lets the index (firm, trigger, queued at) serve
    elif firm_id is not None:
        nightly.append(SyncRun.firm_id == firm_id)  # support looking at one firm: that firm's night
    if actor.is_support or actor.role != Role.ADMIN:  # an administrator sees every file of the firm
        nightly.append(SyncRun.dossier_id.in_(visible_dossier_ids(actor)))
    window = NIGHT_WINDOW_ALL_FIRMS if actor.is_support and firm_id is None else NIGHT_WINDOW
    newest = db.session.execute(
        select(SyncRun.nightly_key, SyncRun.queued_at)
        .where(*nightly, SyncRun.nightly_key.is_not(None))
        .order_by(SyncRun.queued_at.desc(), SyncRun.id.desc()).limit(1)
    ).first()
    if newest is None:
        return None
    night = newest.nightly_key.rsplit(":", 1)[-1]
    rows = db.session.execute(
        select(SyncRun.status, func.count(), func.min(SyncRun.queued_at), func.max(SyncRun.finished_at))
        .where(*nightly, SyncRun.queued_at >= newest.queued_at - window,
               SyncRun.nightly_key.like(f"%:{night}"))
        .group_by(SyncRun.status)
    ).all()
    counts = {status: count for status, count, _, _ in rows}
    in_progress = sum(counts.get(s, 0) for s in (RunStatus.QUEUED, RunStatus.RUNNING))
    return NightlyRun(
        night=night,
        started_at=min(row[2] for row in rows),
        finished_at=None if in_progress or counts.get(RunStatus.DEFERRED) else max(
            (row[3] for row in rows if row[3] is not None), default=None),
        succeeded=counts.get(RunStatus.SUCCEEDED, 0),
        deferred=counts.get(RunStatus.DEFERRED, 0),
        failed=sum(counts.get(s, 0) for s in (RunStatus.FAILED, RunStatus.NEEDS_RECONNECT, RunStatus.CANCELLED)),
        in_progress=in_progress,
    )


def status_counts(actor):
    """``[(status or None, count)]`` of the dossiers ``actor`` may see, largest first."""
    return status_and_stale_counts(actor)[0]


def status_and_stale_counts(actor, now=None, firm_id=None):
    """``(status_counts, stale)``: the visible files per sync status (largest first) and how
    many are stale, in one statement (one pass over the firm's files, not two); ``firm_id``
    (support's picked firm) keeps one firm's files."""
    one_firm = firm_id if actor.is_support else actor.firm_id
    rows = db.session.execute(
        select(Dossier.sync_status, func.count(), func.sum(case((stale_condition(now, one_firm), 1), else_=0)))
        .where(dossier_visibility(actor), *_in_firm(Dossier.firm_id, firm_id)).group_by(Dossier.sync_status)
    ).all()
    statuses = sorted(((status, count) for status, count, _ in rows), key=lambda row: (-row[1], row[0] or ""))
    return statuses, sum(int(stale or 0) for _, _, stale in rows)


def _in_firm(column, firm_id):
    """``[column == firm_id]``, or no condition when ``firm_id`` is None (every visible firm)."""
    return [] if firm_id is None else [column == firm_id]


def failure_firms(failures):
    """``{dossier id: firm name}`` of the latest failures (support's Firm column; one statement)."""
    if not failures:
        return {}
    return dict(db.session.execute(select(Dossier.id, Firm.name).join(Firm, Firm.id == Dossier.firm_id)
                                   .where(Dossier.id.in_([row[0] for row in failures]))).all())


def dashboard_data(actor, now=None, firm_id=None):
    """Everything the dashboard shows for ``actor`` (a fixed number of SQL statements).

    ``firm_id`` is the firm support staff picked (:func:`admin_views.dossiers.picked_firm_id`):
    every tile, list and count is then that firm's only. It narrows what the actor sees, never
    widens it (other roles see their own firm whatever is passed)."""
    if not actor.is_support:
        firm_id = None
    statuses, stale = status_and_stale_counts(actor, now, firm_id)
    counts = tile_counts(actor, now, statuses, stale)
    failures = latest_failures(actor, firm_id=firm_id)
    return {
        "tiles": [(key, label, counts[key], files_url(**filters)) for key, label, filters in TILES],
        "data_differences": (files_with_data_differences(actor, firm_id), runs_with_differences_url()),
        "failures": failures,
        "failure_firms": failure_firms(failures) if actor.is_support else None,
        "reconnect": connections_to_reconnect(actor, firm_id),
        "nightly": last_nightly_run(actor, firm_id),
        "status_counts": statuses,
        "stale_hours": stale_after_hours(),
    }


class DashboardView(ConsoleIndexView):
    """``/admin/``: the firm dashboard (see the module docstring)."""

    @expose("/")
    def index(self):
        from admin_views.connections import reconnect_button

        actor = self.actor
        firm_id = picked_firm_id(actor)
        picker = {"firms": firm_options(), "picked": firm_id} if actor.is_support else None
        return self.render(self._template, badge=badge, timestamp=timestamp, ago=ago,
                           reconnect_button=reconnect_button, may_reconnect=lambda c: may_reconnect(actor, c),
                           firm_picker=picker, **dashboard_data(actor, firm_id=firm_id))

    @expose("/pick-firm", methods=["POST"])
    def pick_firm(self):
        """Support staff's firm picker: keep ``firm_id`` (a firm's id; empty: every firm) in the
        session; the dashboard's tiles and lists and the Files list then show that firm's files
        only. Anyone else: 403. An unknown firm: 404. Back to ``next`` (a console path) or home."""
        actor = self.actor
        if actor is None or not actor.is_support:
            abort(403)
        chosen = request.form.get("firm_id") or ""
        if chosen:
            firm_id = row_id(chosen)
            if firm_id is None or db.session.get(Firm, firm_id) is None:
                abort(404)
            session[PICKED_FIRM_KEY] = firm_id
        else:
            session.pop(PICKED_FIRM_KEY, None)
        target = request.form.get("next") or ""
        if not target.startswith("/admin/") or target.startswith("//"):
            target = url_for("admin.index")
        return redirect(target)
