"""Measure 6: pacing under API budgets per organisation AND per connection.

Xero dossiers in the sandbox, each on its own organisation, all on ONE connection (one
grant of the firm's Xero app, as in practice). The sandbox enforces scaled-down budgets
(``tenant_calls`` per organisation and ``connection_calls`` per grant in any ``seconds``,
answering 429 beyond them) and the workers' client-side budgets are scaled down the same
way (``benchmarks.worker_process --xero-budget``). Real workers (with the scheduler, so
deferred runs come back) run until every run finished or a deadline passed.

Reported: the makespan against the lower bound the budgets imply, the runs that finished,
and the 429s the sandbox answered (pacing should cause none). The lower bound is the larger
of the per-organisation bound (the busiest organisation's calls / ``tenant_calls`` windows)
and the connection bound (all calls / ``connection_calls`` windows), with the calls the
runs actually made.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from benchmarks.services import ROOT
from benchmarks.world import XERO_CLIENT, connect_xero, firm_id, xero_config

#: worker processes: enough that runs sleeping out their organisation's window never leave
#: the connection's budget unused (a run makes a burst, then waits for its organisation)
WORKERS = 10


def companies(count, lines):
    return [{"id": f"pace-{n:03d}", "name": f"Paced Client {n:03d} Ltd", "accounts": 30, "lines": lines,
             "first_year": 2024, "years": 1, "currency": "GBP", "country": "GB"} for n in range(count)]


def add_dossiers_on_one_connection(sandbox_url, company_list, credentials):
    """A dossier per company, all linked to one Xero connection; the dossier ids."""
    from app.extensions import db
    from app.models import Connection, Dossier, DossierLink
    from connectors.xero.emulator import tenant_id

    firm = firm_id()
    dossiers = [Dossier(firm_id=firm, name=c["name"], country="GB", currency="GBP") for c in company_list]
    db.session.add_all(dossiers)
    db.session.flush()
    connection = Connection(firm_id=firm, package="xero", kind="accounting", level="dossier",
                            name="Xero (all paced clients)", config=xero_config(sandbox_url),
                            owner_dossier_id=dossiers[0].id,
                            credentials={**credentials, "client_secret": XERO_CLIENT[1]})
    db.session.add(connection)
    db.session.flush()
    db.session.add_all(DossierLink(firm_id=firm, dossier_id=d.id, connection_id=connection.id, kind="accounting",
                                   reference=tenant_id(c["id"]), reference_name=c["name"])
                       for d, c in zip(dossiers, company_list))
    db.session.commit()
    return [d.id for d in dossiers]


def lower_bound(calls_per_run, tenant_calls, connection_calls, seconds):
    """Seconds the budgets force: max(busiest organisation, whole connection) in windows."""
    if not calls_per_run:
        return 0.0
    per_tenant = max(calls_per_run) / tenant_calls * seconds
    per_connection = sum(calls_per_run) / connection_calls * seconds
    return max(per_tenant, per_connection)


def measure(bench, count, lines, tenant_calls, connection_calls, seconds, workers=WORKERS, slack=3.0):
    """Sync ``count`` dossiers on one connection under the scaled budgets; figures for the report."""
    from app.extensions import db
    from app.models import RunStatus, SyncRun
    from app.services.syncs import request_sync

    company_list = companies(count, lines)
    with bench.app.app_context():
        bench.sandbox.reset()
        credentials = connect_xero(bench.sandbox.url)
        dossier_ids = add_dossiers_on_one_connection(bench.sandbox.url, company_list, credentials)
        run_ids = [request_sync(dossier_id, "manual").id for dossier_id in dossier_ids]
    # the deadline only stops a stuck measure: estimated from the journal pages, generously
    estimate = lower_bound([3 + -(-lines // 300)] * count, tenant_calls, connection_calls, seconds)
    deadline = slack * estimate + 60
    procs = []
    started = time.perf_counter()
    for n in range(workers):
        log = open(bench.workdir / f"pacing-worker-{n}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker_process", "--report", str(bench.workdir / f"pacing-{n}.json"),
             "--xero-budget", f"{tenant_calls},{seconds},{connection_calls}", "--with-scheduler", "--forever"],
            cwd=ROOT, env=bench.env(), stdout=log, stderr=subprocess.STDOUT))
    makespan = None
    try:
        with bench.app.app_context():
            while time.perf_counter() - started < deadline:
                db.session.expire_all()
                runs = db.session.query(SyncRun).filter(SyncRun.id.in_(run_ids)).all()
                if all(r.status in RunStatus.FINISHED for r in runs):
                    makespan = time.perf_counter() - started
                    break
                time.sleep(0.25)
            db.session.expire_all()
            runs = db.session.query(SyncRun).filter(SyncRun.id.in_(run_ids)).all()
            statuses = [r.status for r in runs]
            calls = [r.api_calls or 0 for r in runs]
            others = Counter(f"{r.status}: {r.error_category or ''} {(r.message or '')[:120]}".strip()
                             for r in runs if r.status != "succeeded")
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    stats = bench.sandbox.stats()
    bound = lower_bound(calls, tenant_calls, connection_calls, seconds)
    return {"dossiers": count, "connections": 1, "lines_each": lines, "workers": workers,
            "budgets": f"{tenant_calls} per organisation and {connection_calls} per connection, per {seconds} s",
            "api_calls_spent": sum(calls), "most_calls_one_run": max(calls, default=0),
            "lower_bound_seconds": round(bound, 2), "deadline_seconds": round(deadline, 1),
            "makespan_seconds": round(makespan, 2) if makespan else None,
            "succeeded": statuses.count("succeeded"), "other_outcomes": dict(others),
            "unfinished": sum(1 for s in statuses if s not in RunStatus.FINISHED),
            "sandbox_429": stats["rejected"].get("xero", 0),
            "sandbox_429_by_limit": stats.get("rejected_by", {}),
            "makespan_over_bound": round(makespan / bound, 3) if makespan and bound else None}
