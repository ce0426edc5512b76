"""Measure 5: the nightly fan-out over many dossiers and "Resync selected" of many.

Dossiers are bulk-inserted (one firm-level connection, one active accounting link each);
the fan-out and the bulk trigger then run exactly as in production (``jobs.nightly.fan_out``,
``app.services.syncs.request_syncs``): a committed run and an RQ job per dossier. The fan-out is
then fired again a minute later, as the cron does (it must queue nothing). No worker runs.
"""
from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select

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


def clear_runs(firm_id):
    from app.extensions import db
    from app.models import Dossier, SyncRun
    from app.redis_connection import redis_connection

    db.session.execute(delete(SyncRun).where(SyncRun.firm_id == firm_id))
    db.session.execute(Dossier.__table__.update().where(Dossier.firm_id == firm_id).values(sync_status=None))
    db.session.commit()
    redis_connection().flushdb()


def measure(bench, nightly_count, bulk_count, runs):
    """Median seconds of ``fan_out`` over ``nightly_count`` dossiers (and of its next cron fire)
    and of ``request_syncs`` of ``bulk_count``."""
    from app.extensions import db
    from app.models import SyncRun
    from jobs.nightly import fan_out
    from app.services.syncs import request_syncs

    raw = []
    with bench.app.app_context():
        firm_id, ids = seed_dossiers(nightly_count, f"{nightly_count}-{time.time_ns()}")
        for _ in range(runs):
            clear_runs(firm_id)
            tonight = datetime.utcnow().replace(hour=3, minute=0, second=0, microsecond=0) + timedelta(days=1)
            started = time.perf_counter()
            created = fan_out(now=tonight)
            nightly_seconds = time.perf_counter() - started
            queued = db.session.scalar(select(db.func.count()).select_from(SyncRun).where(SyncRun.firm_id == firm_id))
            started = time.perf_counter()
            refired = fan_out(now=tonight + timedelta(minutes=1))  # the cron's next minute: nothing new
            refire_seconds = time.perf_counter() - started
            clear_runs(firm_id)
            started = time.perf_counter()
            runs_made, skipped = request_syncs(ids[:bulk_count], "bulk")
            bulk_seconds = time.perf_counter() - started
            raw.append({"nightly_seconds": nightly_seconds, "nightly_runs": len(created), "nightly_rows": queued,
                        "nightly_refire_seconds": refire_seconds, "nightly_refire_runs": len(refired),
                        "bulk_seconds": bulk_seconds, "bulk_runs": len(runs_made), "bulk_skipped": len(skipped)})
        clear_runs(firm_id)
    keys = raw[0].keys()
    return {"runs": len(raw), "raw": raw, "median": {k: statistics.median(r[k] for r in raw) for k in keys}}
