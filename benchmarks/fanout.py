"""Measure 5: the nightly fan-out over many dossiers and "Resync selected" of many.

Dossiers are bulk-inserted (one firm-level connection, one active accounting link each),
with last night's succeeded nightly run of every link (the steady state of a firm: the runs
table is not empty, and the statistics PostgreSQL plans with are taken after the load, as
autovacuum would); the fan-out and the bulk trigger then run exactly as in production (``jobs.nightly.fan_out``,
``app.services.syncs.request_syncs``): a committed run and an RQ job per dossier. The fan-out is
then fired again a minute later, as the cron does (it must queue nothing). No worker runs.
Before last night's runs are seeded, the first night after the import is measured once (no run
in the table yet, the new links not yet analysed: the case whose plan once was quadratic).

The nightly fan-out's time is split in two (issue #21: does the enqueue path scale?):
``nightly_enqueue_seconds`` is spent in ``jobs.nightly.enqueue_night`` (the RQ jobs, the
firms' turns in the queue: Redis), the rest (``nightly_database_seconds``) in the database.
:func:`timed` wraps the module attribute in this process only, for the measure.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import String, cast, delete, insert, literal, select

BATCH = 2000


def seed_dossiers(count, label):
    """``count`` dossiers of a new firm, each linked through one shared connection; their ids."""
    from app.extensions import db
    from app.models import Connection, Dossier, DossierLink, Firm

    firm = Firm(name=f"Fan-out firm {label}", country="BE", timezone="UTC", nightly_time="02:00")
    db.session.add(firm)
    db.session.flush()
    connection = Connection(firm_id=firm.id, package="exact_online_be", kind="accounting", level="firm",
                            name="Exact Online", config={}, credentials={"access_token": "bench"})
    db.session.add(connection)
    db.session.flush()
    ids = []
    for start in range(0, count, BATCH):
        rows = [{"firm_id": firm.id, "name": f"Client {label} {n:05d}", "country": "BE", "currency": "EUR",
                 "frequency": "month", "private": False, "adopted_profile": {}, "created_at": datetime.utcnow()}
                for n in range(start, min(count, start + BATCH))]
        ids += list(db.session.scalars(insert(Dossier).returning(Dossier.id), rows))
    for start in range(0, count, BATCH):
        db.session.execute(insert(DossierLink), [
            {"firm_id": firm.id, "dossier_id": dossier_id, "connection_id": connection.id, "kind": "accounting",
             "reference": f"div-{dossier_id}", "scenario": "replace", "options": {}, "bookmarks": {},
             "created_at": datetime.utcnow()} for dossier_id in ids[start:start + BATCH]])
    db.session.commit()
    return firm.id, ids


def tonight():
    """The night the measure fans out: tomorrow 03:00 UTC (the firm's nightly time is 02:00 UTC)."""
    return datetime.utcnow().replace(hour=3, minute=0, second=0, microsecond=0) + timedelta(days=1)


def seed_last_night(firm_id, night):
    """Last night's succeeded nightly run for every link of the firm (finished ~25 hours before
    ``night``: too old to count as a fresh run); the largest run id afterwards."""
    from app.extensions import db
    from app.models import DossierLink, SyncRun

    queued = night - timedelta(days=1, hours=1)
    suffix = f":{(night - timedelta(days=1)).date().isoformat()}"
    db.session.execute(insert(SyncRun).from_select(
        ["firm_id", "dossier_id", "link_id", "trigger", "nightly_key", "status", "queued_at", "started_at",
         "finished_at"],
        select(DossierLink.firm_id, DossierLink.dossier_id, DossierLink.id, literal("nightly"),
               cast(DossierLink.id, String) + literal(suffix, String), literal("succeeded"), literal(queued),
               literal(queued), literal(queued + timedelta(seconds=30))).where(DossierLink.firm_id == firm_id)))
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        from benchmarks.console import vacuum

        vacuum()
    return db.session.scalar(select(db.func.max(SyncRun.id)).where(SyncRun.firm_id == firm_id))


def clear_runs(firm_id, after_id):
    """Forget the runs the measure made (those after ``after_id``) and their RQ jobs."""
    from app.extensions import db
    from app.models import Dossier, SyncRun
    from app.redis_connection import redis_connection

    db.session.execute(delete(SyncRun).where(SyncRun.firm_id == firm_id, SyncRun.id > after_id))
    db.session.execute(Dossier.__table__.update().where(Dossier.firm_id == firm_id).values(sync_status=None))
    db.session.commit()
    redis_connection().flushdb()


@contextmanager
def timed(module, name, totals):
    """Add the seconds spent in ``module.name`` (called through the module) to ``totals[name]``."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - started

    setattr(module, name, wrapper)
    try:
        yield totals
    finally:
        setattr(module, name, original)


def measure(bench, nightly_count, bulk_count, runs):
    """Median seconds of ``fan_out`` over ``nightly_count`` dossiers (and of its next cron fire)
    and of ``request_syncs`` of ``bulk_count``."""
    from app.extensions import db
    from app.models import SyncRun
    import jobs.nightly
    from jobs.nightly import fan_out
    from app.services.syncs import request_syncs

    raw = []
    night = tonight()
    with bench.app.app_context():
        firm_id, ids = seed_dossiers(nightly_count, f"{nightly_count}-{time.time_ns()}")
        # the first night after an import: no run yet, the new links not yet analysed
        started = time.perf_counter()
        first_night = len(fan_out(now=night - timedelta(days=1)))
        first_night_seconds = time.perf_counter() - started
        clear_runs(firm_id, 0)
        history = seed_last_night(firm_id, night)
        for _ in range(runs):
            clear_runs(firm_id, history)
            started = time.perf_counter()
            with timed(jobs.nightly, "enqueue_night", {}) as spent:
                created = fan_out(now=night)
            nightly_seconds = time.perf_counter() - started
            enqueue_seconds = spent.get("enqueue_night", 0.0)
            queued = db.session.scalar(select(db.func.count()).select_from(SyncRun).where(
                SyncRun.firm_id == firm_id, SyncRun.id > history))
            started = time.perf_counter()
            refired = fan_out(now=night + timedelta(minutes=1))  # the cron's next minute: nothing new
            refire_seconds = time.perf_counter() - started
            clear_runs(firm_id, history)
            started = time.perf_counter()
            runs_made, skipped = request_syncs(ids[:bulk_count], "bulk")
            bulk_seconds = time.perf_counter() - started
            raw.append({"nightly_seconds": nightly_seconds, "nightly_enqueue_seconds": enqueue_seconds,
                        "nightly_database_seconds": nightly_seconds - enqueue_seconds,
                        "nightly_runs": len(created), "nightly_rows": queued,
                        "nightly_refire_seconds": refire_seconds, "nightly_refire_runs": len(refired),
                        "bulk_seconds": bulk_seconds, "bulk_runs": len(runs_made), "bulk_skipped": len(skipped)})
        clear_runs(firm_id, history)
    keys = raw[0].keys()
    return {"runs": len(raw), "raw": raw, "median": {k: statistics.median(r[k] for r in raw) for k in keys},
            "first_night": {"seconds": first_night_seconds, "runs": first_night}}
