"""The nightly fan-out: one nightly run per active link, once per firm-local night.

For every firm whose local ``nightly_time`` (in the firm's ``timezone``) has passed today,
every active link whose connection is active gets a run with trigger ``nightly`` and
``nightly_key = "<link_id>:<local date>"``. The key is unique in the database, and keys
already used tonight are skipped up front, so running the fan-out twice (two cron
processes, a restart, every minute) queues each link once per night. Links whose
connection needs reconnecting or is disabled are skipped: their dossiers already show why.

Run it every few minutes: ``flask sync nightly`` (or ``flask sync cron``, or ``rq cron``).
"""
import logging
from datetime import time, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from app.extensions import db
from app.models import Connection, ConnectionStatus, Dossier, DossierLink, Firm, SyncRun, Trigger
from app.models.base import utcnow

log = logging.getLogger("firmsync.jobs")


def firm_local_now(firm, now):
    """``now`` (naive UTC) in the firm's timezone (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(firm.timezone or "UTC")
    except ZoneInfoNotFoundError:
        zone = timezone.utc
    return now.replace(tzinfo=timezone.utc).astimezone(zone)


def nightly_time_of(firm, default="02:00"):
    try:
        hours, minutes = (int(p) for p in (firm.nightly_time or default).split(":"))
        return time(hours, minutes)
    except ValueError:
        hours, minutes = (int(p) for p in default.split(":"))
        return time(hours, minutes)


def fan_out(now=None):
    """Queue tonight's runs. ``now`` is naive UTC (tests pass one). Returns the new run ids."""
    from jobs.triggers import queue_runs

    now = now or utcnow()
    created = []
    for firm in db.session.scalars(select(Firm).order_by(Firm.id)).all():
        local = firm_local_now(firm, now)
        if local.time() < nightly_time_of(firm):
            continue
        suffix = f":{local.date().isoformat()}"
        done = set(db.session.scalars(
            select(SyncRun.nightly_key).where(SyncRun.firm_id == firm.id, SyncRun.nightly_key.like(f"%{suffix}"))
        ))
        links = db.session.execute(
            select(DossierLink.id, DossierLink.dossier_id)
            .join(Connection, Connection.id == DossierLink.connection_id)
            .join(Dossier, Dossier.id == DossierLink.dossier_id)
            .where(DossierLink.firm_id == firm.id, DossierLink.ended_at.is_(None),
                   Connection.status == ConnectionStatus.ACTIVE)
            .order_by(DossierLink.id)
        ).all()
        targets = [(dossier_id, link_id, f"{link_id}{suffix}") for link_id, dossier_id in links
                   if f"{link_id}{suffix}" not in done]
        runs = queue_runs(targets, Trigger.NIGHTLY)
        created += [run.id for run in runs if run.trigger == Trigger.NIGHTLY and run.nightly_key
                    and run.nightly_key.endswith(suffix)]
    if created:
        log.info("nightly fan-out queued %d run(s)", len(created))
    return created



def nightly_job():
    """RQ job wrapper of :func:`fan_out` (used by ``jobs/cron.py``); returns how many runs it queued."""
    return len(fan_out())
