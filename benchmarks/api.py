"""Public API benchmark: ``python -m benchmarks.api [--lines 1000000] [--database-url URL]``.

Builds a throwaway SQLite database (or ``--database-url``) holding one firm with ``--lines``
ledger lines spread over ``--dossiers`` files (the largest file holds half of them), then,
through the real API (Flask test client, a firm token, Redis for the rate limit):

1. pages of 500 ledger lines of the largest file at cursor depths 0, 10 %, 50 % and 90 %:
   p50 and p95 per page (target p95 < 100 ms at any depth);
2. an ``updated_since`` pull after a night whose sync changed nothing: the number of SQL
   statements and the lines it returns (target: nothing, in one query for the data).

Each page is compared with its floor: the bare keyset query of the same 500 rows, timed alike.
``make bench`` runs this as measure 8 (``python -m benchmarks --only 8``: docs/benchmarks.md);
run alone, it prints its figures as JSON. The webhook fan-out is measure 9
(:mod:`benchmarks.webhook_fanout`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal


def build(db, lines, dossiers):
    from app.models import (Account, Connection, Dossier, DossierLink, FiscalYear, Firm, LedgerLine, Period,
                            RunStatus, SyncRun, User, Membership, Role)
    from app.services.bookkeeping import insert_rows
    from app.models.base import utcnow

    firm = Firm(name="Bench Firm")
    admin = User(email="admin@bench.test", name="Admin")
    db.session.add_all([firm, admin])
    db.session.flush()
    db.session.add(Membership(user_id=admin.id, firm_id=firm.id, role=Role.ADMIN))
    connection = Connection(firm_id=firm.id, package="demo", name="Bench", config={}, credentials={"k": "v"})
    db.session.add(connection)
    db.session.flush()
    targets = []
    for n in range(dossiers):
        d = Dossier(firm_id=firm.id, name=f"File {n}")
        db.session.add(d)
        db.session.flush()
        link = DossierLink(firm_id=firm.id, dossier_id=d.id, connection_id=connection.id, reference=f"C{n}")
        year = FiscalYear(dossier_id=d.id, start=date(2024, 1, 1), end=date(2024, 12, 31))
        db.session.add_all([link, year])
        db.session.flush()
        period = Period(dossier_id=d.id, fiscal_year_id=year.id, start=date(2024, 1, 1), end=date(2024, 12, 31))
        account = Account(dossier_id=d.id, number="550000", name="Bank", kind="asset")
        db.session.add_all([period, account])
        db.session.flush()
        share = lines // 2 if n == 0 else (lines - lines // 2) // max(1, dossiers - 1)
        targets.append((d.id, link.id, period.id, account.id, share))
        db.session.add(SyncRun(firm_id=firm.id, dossier_id=d.id, link_id=link.id, status=RunStatus.SUCCEEDED,
                               changed=False, finished_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    table = LedgerLine.__table__
    for dossier_id, link_id, period_id, account_id, share in targets:
        for start in range(0, share, 50_000):
            rows = [{"dossier_id": dossier_id, "link_id": link_id, "source_id": f"S{i}", "account_id": account_id,
                     "period_id": period_id, "booking_date": date(2024, 1, 1) + timedelta(days=i % 365),
                     "amount": Decimal("12.34"), "description": f"line {i}", "reference": "", "journal": "BANK",
                     "dimensions": {}, "modified_at": None} for i in range(start, min(share, start + 50_000))]
            insert_rows(db.session, table, rows)
            db.session.commit()
    return firm.id, admin.id, targets[0]


def floor_page(db, dossier_id, after, pages):
    """p50/p95 (ms) of the bare keyset query of one page (500 rows, every column), no API around it."""
    query = db.text("SELECT * FROM ledger_line WHERE dossier_id = :d AND id > :after ORDER BY id LIMIT 500")
    timings = []
    for _ in range(pages):
        t = time.perf_counter()
        rows = db.session.execute(query, {"d": dossier_id, "after": after}).all()
        timings.append((time.perf_counter() - t) * 1000)
        assert len(rows) == 500
    return percentiles(timings)


def percentiles(timings):
    timings = sorted(timings)
    return {"p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[max(0, -(-len(timings) * 95 // 100) - 1)], 1)}


def measure(database_url, redis_url, lines, dossiers, pages):
    """Build the firm on ``database_url`` and time the listing and the no-change pull; the figures."""
    from sqlalchemy import event

    from app import create_app
    from app.access import actor_for
    from app.api.pagination import encode_cursor
    from app.extensions import db
    from app.models import User
    from app.models.base import utcnow
    from app.redis_connection import redis_connection
    from app.services.api_tokens import create_token

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url, API_RATE_LIMIT=10**9)
    logging.getLogger("firmsync.api").setLevel(logging.WARNING)  # one line per call otherwise
    results = {"lines": lines, "database": database_url.split(":")[0]}
    with app.app_context():
        db.drop_all()
        db.create_all()
        started = time.perf_counter()
        firm_id, admin_id, (dossier_id, *_rest, share) = build(db, lines, dossiers)
        results["build_seconds"] = round(time.perf_counter() - started, 1)
        actor = actor_for(db.session.get(User, admin_id), firm_id)
        _, token = create_token(actor, "bench", ["read"])
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        ids = [row[0] for row in db.session.execute(db.text(
            "SELECT id FROM ledger_line WHERE dossier_id = :d ORDER BY id"), {"d": dossier_id})]
        depths = {}
        for fraction in (0, 0.1, 0.5, 0.9):
            at = int(len(ids) * fraction)
            cursor = f"&cursor={encode_cursor(ids[at - 1])}" if at else ""
            timings = []
            for _ in range(pages):
                t = time.perf_counter()
                answer = client.get(f"/api/v1/dossiers/{dossier_id}/ledger-lines?limit=500{cursor}", headers=headers)
                timings.append((time.perf_counter() - t) * 1000)
                assert answer.status_code == 200 and len(answer.get_json()["data"]) == 500
            floor = floor_page(db, dossier_id, ids[at - 1] if at else 0, pages)
            api = percentiles(timings)
            depths[f"{int(fraction * 100)}%"] = {**api, "floor_p50_ms": floor["p50_ms"], "floor_p95_ms": floor["p95_ms"],
                                                 "p95_over_floor": round(api["p95_ms"] / max(floor["p95_ms"], 0.1), 1)}
        results["ledger_page_500"] = depths

        since = (utcnow() - timedelta(minutes=5)).isoformat() + "Z"
        seen = []
        listener = lambda conn, cursor, statement, *a: seen.append(statement)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        answer = client.get(f"/api/v1/dossiers/{dossier_id}/ledger-lines?limit=500&updated_since={since}",
                            headers=headers)
        event.remove(db.engine, "before_cursor_execute", listener)
        results["no_change_pull"] = {"lines": len(answer.get_json()["data"]), "statements": len(seen),
                                     "statements_on_ledger_line": sum("ledger_line" in s for s in seen)}
        redis_connection().flushdb()
    return results


def emit_events(database_url, redis_url, events):
    """Seconds to record and queue ``events`` webhook events to one endpoint (``webhooks.emit``);
    the delivery itself is measure 9 (:mod:`benchmarks.webhook_fanout`)."""
    from app import create_app
    from app.access import actor_for
    from app.extensions import db
    from app.models import Membership, Role, User
    from app.redis_connection import redis_connection
    from app.services import webhooks

    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url)
    with app.app_context():
        admin = db.session.query(User).filter_by(email="admin@bench.test").one()
        firm_id = db.session.query(Membership).filter_by(user_id=admin.id, role=Role.ADMIN).first().firm_id
        webhooks.create_endpoint(actor_for(admin, firm_id), "https://hooks.example.test/bench", ["sync.succeeded"])
        started = time.perf_counter()
        for n in range(events):
            webhooks.emit(firm_id, "sync.succeeded", {"n": n})
        seconds = time.perf_counter() - started
        redis_connection().flushdb()
    return {"events": events, "emit_seconds": round(seconds, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--dossiers", type=int, default=20)
    parser.add_argument("--pages", type=int, default=20, help="pages timed at each depth")
    parser.add_argument("--events", type=int, default=0, help="also time recording and queueing N webhook events")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", help="default: a private redis-server for the run")
    args = parser.parse_args(argv)
    from contextlib import nullcontext

    from benchmarks.services import Redis

    url = args.database_url or "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="api-bench-"), "bench.db")
    with (nullcontext() if args.redis_url else Redis()) as redis:
        redis_url = args.redis_url or redis.url
        results = measure(url, redis_url, args.lines, args.dossiers, args.pages)
        if args.events:
            results["fanout"] = emit_events(url, redis_url, args.events)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
