"""Public API benchmark: ``python -m benchmarks.api [--lines 1000000] [--out docs]``.

Builds a throwaway SQLite database (or ``--database-url``) holding one firm with ``--lines``
ledger lines spread over ``--dossiers`` files (the largest file holds half of them), then,
through the real API (Flask test client, a firm token, Redis for the rate limit):

1. pages of 500 ledger lines of the largest file at cursor depths 0, 10 %, 50 % and 90 %:
   p50 and p95 per page (target p95 < 100 ms at any depth);
2. an ``updated_since`` pull after a night whose sync changed nothing: the number of SQL
   statements and the lines it returns (target: nothing, in one query for the data);
3. fan-out: ``webhooks.emit`` of ``--events`` events to one endpoint (deliveries recorded and
   queued; the delivery itself is measured by the worker tests, not here).

Results print as JSON and, with ``--out``, go to ``<out>/api-bench.json``. Not part of ``make test``.
"""
from __future__ import annotations

import argparse
import json
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--dossiers", type=int, default=20)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=20, help="pages timed at each depth")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url", help="default: a private redis-server for the run")
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    from sqlalchemy import event

    from app import create_app
    from app.access import actor_for
    from app.extensions import db
    from app.models import User
    from app.models.base import utcnow
    from app.services import webhooks
    from app.services.api_tokens import create_token

    if not args.redis_url:
        from benchmarks.services import Redis

        with Redis() as redis:
            return main([*(argv or []), "--redis-url", redis.url] if argv is not None else
                        [*__import__("sys").argv[1:], "--redis-url", redis.url])
    url = args.database_url or "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="api-bench-"), "bench.db")
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url, REDIS_URL=args.redis_url, API_RATE_LIMIT=10**9)
    results = {"lines": args.lines, "database": url.split(":")[0], "when": utcnow().isoformat() + "Z"}
    with app.app_context():
        db.drop_all()
        db.create_all()
        started = time.perf_counter()
        firm_id, admin_id, (dossier_id, *_rest, share) = build(db, args.lines, args.dossiers)
        results["build_seconds"] = round(time.perf_counter() - started, 1)
        actor = actor_for(db.session.get(User, admin_id), firm_id)
        _, token = create_token(actor, "bench", ["read"])
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        ids = [row[0] for row in db.session.execute(db.text(
            "SELECT id FROM ledger_line WHERE dossier_id = :d ORDER BY id"), {"d": dossier_id})]
        from app.api.pagination import encode_cursor

        depths = {}
        for fraction in (0, 0.1, 0.5, 0.9):
            at = int(len(ids) * fraction)
            cursor = f"&cursor={encode_cursor(ids[at - 1])}" if at else ""
            timings = []
            for _ in range(args.pages):
                t = time.perf_counter()
                answer = client.get(f"/api/v1/dossiers/{dossier_id}/ledger-lines?limit=500{cursor}", headers=headers)
                timings.append((time.perf_counter() - t) * 1000)
                assert answer.status_code == 200 and len(answer.get_json()["data"]) == 500
            timings.sort()
            depths[f"{int(fraction * 100)}%"] = {"p50_ms": round(statistics.median(timings), 1),
                                                 "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1)}
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

        endpoint, _ = webhooks.create_endpoint(actor, "https://hooks.example.test/bench", ["sync.succeeded"])
        t = time.perf_counter()
        for n in range(0, args.events, 500):
            for i in range(n, min(args.events, n + 500)):
                webhooks.emit(firm_id, "sync.succeeded", {"n": i})
        results["fanout"] = {"events": args.events, "emit_seconds": round(time.perf_counter() - t, 1)}
        from app.redis_connection import redis_connection

        redis_connection().flushdb()
    print(json.dumps(results, indent=2))
    if args.out:
        with open(os.path.join(args.out, "api-bench.json"), "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
