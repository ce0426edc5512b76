"""Measure 4: the console at scale on PostgreSQL.

Dossiers ("files"), their links and sync runs are generated in SQL (``generate_series``, one
``INSERT ... SELECT`` per firm and table: 5,000,000 runs load in minutes), spread evenly over
``firms`` firms (issue #21: 100), first at a small scale then at the full one, so the SQL
queries per request can be compared across row counts and page sizes. The pages are those of
one firm's administrator (the first firm; its share of the rows), with every other firm's
rows in the same tables. Requests go through Flask's test client, logged in as an
administrator through the real login form; the time is the request's time in the server
process (no network), the queries are counted on the engine.
"""
from __future__ import annotations

import re
import statistics
import time

from sqlalchemy import event, text

PAGES = {"Files list": "/admin/dossiers/?page_size={size}", "dashboard": "/admin/",
         "file page": "/admin/dossier/?id={dossier}"}
PASSWORD = "bench-password-123"


def seed_base(firms=1):
    """The firms, the first one's administrator and one firm-level connection per firm;
    ``([(firm_id, connection_id)], email)``, the administrator's firm first."""
    from app.extensions import db
    from app.models import Connection, Firm, Membership, Role, User

    rows = [Firm(name=f"Console firm {n:03d}", country="BE", timezone="UTC") for n in range(firms)]
    user = User(email="admin@console.bench", name="Admin")
    user.set_password(PASSWORD)
    db.session.add_all([*rows, user])
    db.session.flush()
    db.session.add(Membership(user_id=user.id, firm_id=rows[0].id, role=Role.ADMIN))
    connections = [Connection(firm_id=firm.id, package="exact_online_be", kind="accounting", level="firm",
                              name="Exact Online", config={}, credentials={"access_token": "bench"}) for firm in rows]
    db.session.add_all(connections)
    db.session.commit()
    return [(firm.id, connection.id) for firm, connection in zip(rows, connections)], user.email


def grow(firm_id, connection_id, dossiers, runs):
    """Add dossiers (with a link each) and sync runs spread over them, up to the given totals.

    Runs come one per link and night (the newest night is yesterday), a third of them nightly
    runs with their real ``nightly_key`` (``<link>:<date>``), a quarter failed with a message.
    """
    from app.extensions import db

    have = db.session.execute(text("SELECT count(*) FROM dossier WHERE firm_id = :f"), {"f": firm_id}).scalar()
    db.session.execute(text("""
        INSERT INTO dossier (firm_id, name, number, country, currency, frequency, private, adopted_profile,
                             created_at, last_synced_at, sync_status)
        SELECT :f, 'Client ' || lpad(g::text, 6, '0'), lpad(g::text, 6, '0'), 'BE', 'EUR', 'month', false, '{}',
               now(), now() - (g % 72) * interval '1 hour',
               (ARRAY['succeeded','failed','queued','running','needs_reconnect'])[1 + g % 5]
        FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g"""), {"f": firm_id, "first": have + 1, "last": dossiers})
    db.session.execute(text("""
        INSERT INTO dossier_link (firm_id, dossier_id, connection_id, kind, reference, scenario, options,
                                  bookmarks, created_at)
        SELECT d.firm_id, d.id, :c, 'accounting', 'div-' || d.id, 'replace', '{}', '{}', now()
        FROM dossier d LEFT JOIN dossier_link l ON l.dossier_id = d.id
        WHERE d.firm_id = :f AND l.id IS NULL"""), {"f": firm_id, "c": connection_id})
    have_runs = db.session.execute(text("SELECT count(*) FROM sync_run WHERE firm_id = :f"), {"f": firm_id}).scalar()
    links = db.session.execute(text("SELECT count(*) FROM dossier_link WHERE firm_id = :f"), {"f": firm_id}).scalar()
    nights = max(0, -(-(runs - have_runs) // links))  # one run per link and night, newest night yesterday
    # the runs already there move back by the nights added, so each link keeps one run a night
    db.session.execute(text("""
        UPDATE sync_run SET queued_at = queued_at - :n * interval '1 day', started_at = started_at - :n * interval '1 day',
                            finished_at = finished_at - :n * interval '1 day',
                            nightly_key = CASE WHEN nightly_key IS NULL THEN NULL
                                               ELSE link_id || ':' || to_char(queued_at - :n * interval '1 day', 'YYYY-MM-DD') END
        WHERE firm_id = :f"""), {"f": firm_id, "n": nights})
    db.session.execute(text("""
        WITH links AS (SELECT row_number() OVER (ORDER BY id) - 1 AS n, id, dossier_id
                       FROM dossier_link WHERE firm_id = :f),
             total AS (SELECT count(*) AS c FROM links),
             runs AS (SELECT g, l.id AS link_id, l.dossier_id, (ARRAY['nightly','manual','bulk'])[1 + g % 3] AS trigger,
                             date_trunc('day', now()) - (1 + (CAST(:last AS integer) - g) / total.c) * interval '1 day'
                                 + interval '2 hours' + (l.n % 1800) * interval '1 second' AS queued_at
                      FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g, total JOIN links l ON true
                      WHERE l.n = g % total.c)
        INSERT INTO sync_run (firm_id, dossier_id, link_id, trigger, nightly_key, status, attempt, cancel_requested,
                              accounts_count, balances_count, lines_inserted, lines_updated, lines_deleted,
                              api_calls, progress_records, queued_at, started_at, finished_at, changed, message)
        SELECT :f, dossier_id, link_id, trigger,
               CASE WHEN trigger = 'nightly' THEN link_id || ':' || to_char(queued_at, 'YYYY-MM-DD') END,
               (ARRAY['succeeded','succeeded','succeeded','failed'])[1 + g % 4], 1, false,
               100, 0, g % 500, 0, 0, 5, 0, queued_at, queued_at, queued_at + interval '30 seconds', (g % 2 = 0),
               CASE WHEN g % 4 = 3 THEN 'The package refused the request; Firmsync will try again tonight.' END
        FROM runs"""), {"f": firm_id, "first": have_runs + 1, "last": runs})
    db.session.commit()


def vacuum():
    """What autovacuum does to a table after a bulk load (statistics and the visibility map
    that index-only scans need); VACUUM cannot run inside a transaction."""
    from app.extensions import db

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def login(client, email):
    page = client.get("/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if response.status_code != 302:
        raise RuntimeError("the benchmark administrator could not log in")


def time_pages(app, client, dossier_id, repeats, sizes):
    """``{page label: {median_ms, p95_ms, queries}}`` over ``repeats`` requests per page."""
    from app.extensions import db

    counter = {"n": 0}

    def count(*_args, **_kwargs):
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    results = {}
    try:
        urls = {f"Files list ({size} a page)": PAGES["Files list"].format(size=size) for size in sizes}
        urls.update({"dashboard": PAGES["dashboard"], "file page": PAGES["file page"].format(dossier=dossier_id)})
        for label, url in urls.items():
            client.get(url)  # warm caches and templates
            timings, queries = [], []
            for _ in range(repeats):
                counter["n"] = 0
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
                queries.append(counter["n"])
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
            timings.sort()
            results[label] = {"median_ms": statistics.median(timings),
                              "p95_ms": timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))],
                              "queries": max(queries)}
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return results


def measure(bench, scales, repeats, sizes=(20, 100), firms=1):
    """Time the pages at each ``(files, runs)`` scale (totals over ``firms`` firms), growing
    the same database."""
    from app.extensions import db

    app = bench.app
    out = {}
    with app.app_context():
        tenants, email = seed_base(firms)
    firm_id = tenants[0][0]
    for dossiers, runs in scales:
        with app.app_context():
            for tenant, connection_id in tenants:
                grow(tenant, connection_id, dossiers // firms, runs // firms)
            vacuum()
            dossier_id = db.session.execute(text("SELECT max(id) FROM dossier WHERE firm_id = :f"),
                                            {"f": firm_id}).scalar()
            db.session.remove()
        client = app.test_client()
        login(client, email)
        out[f"{dossiers:,} files, {runs:,} runs, {firms} firms"] = time_pages(app, client, dossier_id, repeats, sizes)
    return out
