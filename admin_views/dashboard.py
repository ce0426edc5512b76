"""The console's home page (``/admin/``): the firm dashboard.

What it shows, always limited to the files the actor may see (:func:`app.access.dossier_visibility`):

* counts of files whose sync failed, needs a reconnect, is stale (no successful sync for more
  than ``STALE_AFTER_HOURS``), is running, or is queued (or waiting for the package), each a
  link to the Files list filtered the same way (:func:`admin_views.dossiers.files_url`);
* the latest failures with their messages;
* the connections needing a reconnect (firm-level ones for administrators and support, the
  file-owned grants of visible files for everyone), with a Reconnect button for who may;
* the last nightly run: when it started and finished and how many files succeeded, were
  deferred, failed, or are still under way.

The page costs a fixed number of SQL statements whatever the number of files: every figure
is an aggregate (:func:`dashboard_data`).
"""
from dataclasses import dataclass

from flask_admin import expose
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import aliased

from admin_views.base import ConsoleIndexView
from admin_views.dossiers import SYNC_STATES, ago, files_url, stale_after_hours, stale_condition
from admin_views.formatting import badge, timestamp
from app.access import dossier_visibility, visible_dossier_ids
from app.extensions import db
from app.i18n import N_
from app.models import Connection, ConnectionStatus, Dossier, Role, RunStatus, SyncRun, Trigger

LATEST_FAILURES = 10
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


def tile_counts(actor, now=None):
    """``{tile key: number of visible files}`` for :data:`TILES`, in one aggregate statement."""
    def counted(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        select(
            counted(SYNC_STATES["failed"][1]), counted(SYNC_STATES["needs_reconnect"][1]),
            counted(stale_condition(now)), counted(SYNC_STATES["running"][1]), counted(SYNC_STATES["queued"][1]),
        ).select_from(Dossier).where(dossier_visibility(actor))
    ).one()
    return {key: int(value) for (key, _, _), value in zip(TILES, row)}


def latest_failures(actor, limit=LATEST_FAILURES):
    """The visible files whose sync failed or needs a reconnect, with their latest run's message.

    ``[(dossier id, name, number, status, message, finished_at)]``, newest first (one statement).
    """
    other = aliased(SyncRun)
    newest_run = (select(func.max(other.id)).where(other.dossier_id == Dossier.id)
                  .correlate(Dossier).scalar_subquery())
    return db.session.execute(
        select(Dossier.id, Dossier.name, Dossier.number, Dossier.sync_status, SyncRun.message, SyncRun.finished_at)
        .join(SyncRun, SyncRun.id == newest_run)
        .where(dossier_visibility(actor),
               Dossier.sync_status.in_((RunStatus.FAILED, RunStatus.NEEDS_RECONNECT)))
        .order_by(SyncRun.finished_at.desc().nulls_last(), Dossier.id.desc())
        .limit(limit)
    ).all()


def connections_to_reconnect(actor):
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
        select(Connection).where(Connection.status == ConnectionStatus.NEEDS_RECONNECT, or_(*conditions))
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


def last_nightly_run(actor):
    """The last nightly run over the files ``actor`` sees, or None (two statements).

    A night is identified by the date suffix of ``SyncRun.nightly_key`` (``<link>:<local date>``).
    """
    visible = SyncRun.dossier_id.in_(visible_dossier_ids(actor))
    key = db.session.scalar(
        select(SyncRun.nightly_key)
        .where(visible, SyncRun.trigger == Trigger.NIGHTLY, SyncRun.nightly_key.is_not(None))
        .order_by(SyncRun.queued_at.desc(), SyncRun.id.desc()).limit(1)
    )
    if key is None:
        return None
    night = key.rsplit(":", 1)[-1]
    rows = db.session.execute(
        select(SyncRun.status, func.count(SyncRun.id), func.min(SyncRun.queued_at), func.max(SyncRun.finished_at))
        .where(visible, SyncRun.nightly_key.like(f"%:{night}"))
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
    rows = db.session.execute(
        select(Dossier.sync_status, func.count(Dossier.id)).where(dossier_visibility(actor)).group_by(Dossier.sync_status)
    ).all()
    return sorted(((status, count) for status, count in rows), key=lambda row: (-row[1], row[0] or ""))


def dashboard_data(actor, now=None):
    """Everything the dashboard shows for ``actor`` (a fixed number of SQL statements)."""
    counts = tile_counts(actor, now)
    return {
        "tiles": [(key, label, counts[key], files_url(**filters)) for key, label, filters in TILES],
        "failures": latest_failures(actor),
        "reconnect": connections_to_reconnect(actor),
        "nightly": last_nightly_run(actor),
        "status_counts": status_counts(actor),
        "stale_hours": stale_after_hours(),
    }


class DashboardView(ConsoleIndexView):
    """``/admin/``: the firm dashboard (see the module docstring)."""

    @expose("/")
    def index(self):
        from admin_views.connections import reconnect_button

        actor = self.actor
        return self.render(self._template, badge=badge, timestamp=timestamp, ago=ago,
                           reconnect_button=reconnect_button, may_reconnect=lambda c: may_reconnect(actor, c),
                           **dashboard_data(actor))
