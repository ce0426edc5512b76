"""How long a first sync holds SQLite's write lock, streamed and staged (issue #23).

``python -m benchmarks.sqlite_staging [--lines 10000,50000,150000]`` (not part of
``make bench`` nor ``make test``; run by hand, the results go into ``docs/operations.md``,
"When to move to PostgreSQL").

For each size a new demo company is synced once into a new dossier on a new SQLite file,
in this process, twice: streamed (``SYNC_STAGE_BEFORE_WRITE = False``) and staged (``True``).
Meanwhile a **prober** process does what a console request does: every few milliseconds it
tries ``BEGIN IMMEDIATE`` on its own connection without waiting. The longest stretch during
which every try was refused is the longest a web request would have waited for the lock
(the web gives up after ``WEB_SQLITE_BUSY_TIMEOUT_SECONDS``, 5 s, with its "try again" page).
The sandbox runs in its own process (:class:`benchmarks.services.SandboxProcess`); each of
its ledger pages (500 lines) is answered after ``--page-delay`` seconds (0.2: a vendor's API
over the internet; the sandbox alone answers in milliseconds, which no package does).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.services import Redis, SandboxProcess, schema
from benchmarks.world import make_app

PROBE_EVERY_SECONDS = 0.005


def probe(database, stop, answer):
    """In its own process: try to take the write lock until ``stop``; send ``(longest refused
    stretch, total refused seconds, tries)`` through ``answer``."""
    connection = sqlite3.connect(database, timeout=0, isolation_level=None)
    longest = refused_total = 0.0
    refused_since, tries = None, 0
    while not stop.is_set():
        tries += 1
        now = time.perf_counter()
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            if refused_since is not None:
                longest = max(longest, now - refused_since)
                refused_total += now - refused_since
                refused_since = None
        except sqlite3.OperationalError:  # "database is locked": a writer holds it
            refused_since = now if refused_since is None else refused_since
        time.sleep(PROBE_EVERY_SECONDS)
    if refused_since is not None:
        longest = max(longest, time.perf_counter() - refused_since)
        refused_total += time.perf_counter() - refused_since
    connection.close()
    answer.send((longest, refused_total, tries))


def add_demo_dossier(sandbox_url, company_id):
    """A dossier linked to the sandbox's demo company ``company_id``; its id."""
    from app.extensions import db
    from app.models import Connection, Dossier, DossierLink, Firm

    firm = Firm(name=f"Firm of {company_id}")
    db.session.add(firm)
    db.session.flush()
    dossier = Dossier(firm_id=firm.id, name=f"Dossier {company_id}", frequency="month")
    connection = Connection(firm_id=firm.id, package="demo", kind="accounting", name=f"Demo {company_id}",
                            config={"base_url": f"{sandbox_url}/demo"}, credentials={"api_key": "demo-key"})
    db.session.add_all([dossier, connection])
    db.session.flush()
    db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                               reference=company_id, scenario="replace"))
    db.session.commit()
    return dossier.id


def measure(app, sandbox, database, company_id, staged, page_delay):
    """One first sync of ``company_id``; its figures."""
    from app.extensions import db
    from app.models import SyncRun, Trigger
    from app.services.syncs import request_sync
    from jobs.sync import run

    with app.app_context():
        app.config["SYNC_STAGE_BEFORE_WRITE"] = staged
        run_id = request_sync(add_demo_dossier(sandbox.url, company_id), Trigger.MANUAL).id
        if page_delay:
            sandbox.reset()
            requests.post(f"{sandbox.url}/_sandbox/faults", timeout=30, json={
                "kind": "slow", "path": f"/demo/api/v1/companies/{company_id}/ledger-lines", "count": 100_000,
                "delay": page_delay}).raise_for_status()
        stop, (receive, send) = multiprocessing.Event(), multiprocessing.Pipe(duplex=False)
        prober = multiprocessing.Process(target=probe, args=(database, stop, send), daemon=True)
        prober.start()
        started = time.perf_counter()
        run(run_id)
        seconds = time.perf_counter() - started
        stop.set()
        longest, refused, tries = receive.recv()
        prober.join(10)
        db.session.expire_all()
        done = db.session.get(SyncRun, run_id)
        assert done.status == "succeeded", done.message
        return {"lines": done.lines_inserted, "staged": staged, "sync_seconds": round(seconds, 1),
                "longest_lock_seconds": round(longest, 2), "locked_seconds": round(refused, 1), "probes": tries}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sqlite_staging", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", default="10000,50000,150000", help="first-sync sizes, comma-separated")
    parser.add_argument("--page-delay", type=float, default=0.2, help="seconds before each ledger page's answer")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.lines.split(",")]
    companies = [{"id": f"stage-{size}", "name": f"Staging {size}", "accounts": 300, "lines": size, "years": 3}
                 for size in sizes]
    rows = []
    with tempfile.TemporaryDirectory(prefix="firmsync-bench-staging-") as workdir, Redis() as redis, \
            SandboxProcess(companies, log_path=Path(workdir) / "sandbox.log") as sandbox:
        database = str(Path(workdir) / "firmsync.db")
        url = f"sqlite:///{database}"
        os.environ["FIRMSYNC_INSTANCE_PATH"] = str(Path(workdir) / "instance")
        schema(url, redis.url, os.environ["FIRMSYNC_INSTANCE_PATH"])
        app = make_app(url, redis.url)
        for size in sizes:
            for staged in (False, True):
                row = measure(app, sandbox, database, f"stage-{size}", staged, args.page_delay)
                rows.append(row)
                print(row, flush=True)
    print("\n| first sync (lines) | mode | sync (s) | longest write-lock hold (s) | lock held in total (s) |")
    print("|---:|---|---:|---:|---:|")
    for row in rows:
        mode = "staged" if row["staged"] else "streamed"
        print(f"| {row['lines']:,} | {mode} | {row['sync_seconds']} | {row['longest_lock_seconds']} | "
              f"{row['locked_seconds']} |")
    return rows


if __name__ == "__main__":
    main()
