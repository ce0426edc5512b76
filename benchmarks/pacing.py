"""Measure 6: pacing under API budgets per organisation AND per connection.

``files`` Xero dossiers ("files") over ``organisations`` sandbox organisations (several files
may read the same organisation, as when a firm keeps a file per entity or per engagement) and
``connections`` grants of the firm's Xero app (each connection is one OAuth grant and holds
``organisations / connections`` organisations; each organisation's files are on its one
connection). The sandbox enforces scaled-down budgets (``tenant_calls`` per organisation and
``connection_calls`` per grant in any ``seconds``, answering 429 beyond them) and the workers'
client-side budgets are scaled down the same way (``benchmarks.worker_process --xero-budget``).
``workers`` real workers (with the scheduler, so deferred or parked runs come back) run
until every run finished or a deadline passed.

Reported: the makespan against the lower bound the budgets imply, the runs that finished,
the 429s the sandbox answered (pacing should cause none) and the share of the workers' time
spent sleeping on a budget inside a job (``--sleep-log`` of :mod:`benchmarks.worker_process`:
the HTTP client's budget sleeps, counted in the work horses; a run that parks instead of
sleeping spends none). The lower bound is the largest of the per-organisation bounds (an
organisation's calls, all its files together, / ``tenant_calls`` windows) and the
per-connection bounds (a connection's calls / ``connection_calls`` windows), with the calls
the runs actually made.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

from benchmarks.services import ROOT
from benchmarks.world import XERO_CLIENT, connect_xero, firm_id, xero_config
from benchmarks.worker_process import read_sleep_log

#: worker processes of the measure (issue #21: 4)
WORKERS = 4


def companies(organisations, lines):
    """The sandbox organisations of the measure (small books: the budgets are the subject)."""
    return [{"id": f"pace-{n:03d}", "name": f"Paced Client {n:03d} Ltd", "accounts": 30, "lines": lines,
             "first_year": 2024, "years": 1, "currency": "GBP", "country": "GB"} for n in range(organisations)]


def add_files(sandbox_url, company_list, files, connections):
    """``files`` dossiers spread round-robin over the organisations, each organisation on one
    of ``connections`` Xero connections (each its own OAuth grant); ``[(dossier id,
    organisation id, connection index)]``."""
    from app.extensions import db
    from app.models import Connection, Dossier, DossierLink
    from connectors.xero.emulator import tenant_id

    firm = firm_id()
    plan = [(n, company_list[n % len(company_list)]) for n in range(files)]
    dossiers = [Dossier(firm_id=firm, name=f"{c['name']} file {n:04d}", country="GB", currency="GBP")
                for n, c in plan]
    db.session.add_all(dossiers)
    db.session.flush()
    grants = []
    for index in range(connections):
        credentials = connect_xero(sandbox_url)
        grants.append(Connection(firm_id=firm, package="xero", kind="accounting", level="firm",
                                 name=f"Xero grant {index:02d}", config=xero_config(sandbox_url),
                                 credentials={**credentials, "client_secret": XERO_CLIENT[1]}))
    db.session.add_all(grants)
    db.session.flush()
    organisation_index = {c["id"]: i for i, c in enumerate(company_list)}
    out = []
    for dossier, (_n, company) in zip(dossiers, plan):
        index = organisation_index[company["id"]] % connections
        db.session.add(DossierLink(firm_id=firm, dossier_id=dossier.id, connection_id=grants[index].id,
                                   kind="accounting", reference=tenant_id(company["id"]),
                                   reference_name=company["name"]))
        out.append((dossier.id, company["id"], index))
    db.session.commit()
    return out


def lower_bound(calls, tenant_calls, connection_calls, seconds):
    """Seconds the budgets force: the busiest organisation's or connection's calls in windows.

    :param calls: ``[(organisation id, connection index, API calls of one run)]``.
    """
    per_organisation, per_connection = defaultdict(int), defaultdict(int)
    for organisation, connection, spent in calls:
        per_organisation[organisation] += spent
        per_connection[connection] += spent
    if not per_organisation:
        return 0.0
    return max(max(per_organisation.values()) / tenant_calls * seconds,
               max(per_connection.values()) / connection_calls * seconds)


def start_workers(bench, workers, budget, sleep_log):
    """``workers`` forever-running benchmark workers (with the scheduler) under ``budget``."""
    procs = []
    for n in range(workers):
        log = open(bench.workdir / f"pacing-worker-{n}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker_process", "--report", str(bench.workdir / f"pacing-{n}.json"),
             "--xero-budget", budget, "--sleep-log", str(sleep_log), "--with-scheduler", "--forever"],
            cwd=ROOT, env=bench.env(), stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs, grace=5):
    """SIGTERM (RQ's warm shutdown), then SIGKILL after ``grace`` seconds: every run has
    finished by then, so nothing is lost; the scheduler's sleep would only delay the measure."""
    for proc in procs:
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def measure(bench, files, connections, organisations, lines, tenant_calls, connection_calls, seconds,
            workers=WORKERS, slack=3.0):
    """Sync ``files`` dossiers over ``connections`` grants and ``organisations`` organisations
    under the scaled budgets, with ``workers`` workers; figures for the report."""
    from app.extensions import db
    from app.models import RunStatus, SyncRun
    from app.services.syncs import request_syncs

    company_list = companies(organisations, lines)
    with bench.app.app_context():
        bench.sandbox.reset()
        plan = add_files(bench.sandbox.url, company_list, files, connections)
        made, skipped = request_syncs([dossier_id for dossier_id, _, _ in plan], "manual")
        if skipped:
            raise RuntimeError(f"{len(skipped)} paced files had no sync set up")
        run_ids = [run.id for run in made]
    # the deadline only stops a stuck measure: estimated from the journal pages, generously
    estimate = lower_bound([(organisation, connection, 3 + -(-lines // 300)) for _, organisation, connection in plan],
                           tenant_calls, connection_calls, seconds)
    deadline = slack * estimate + 60
    sleep_log = bench.workdir / "pacing-sleeps.log"
    sleep_log.unlink(missing_ok=True)
    started = time.perf_counter()
    procs = start_workers(bench, workers, f"{tenant_calls},{seconds},{connection_calls}", sleep_log)
    makespan = None
    try:
        with bench.app.app_context():
            while time.perf_counter() - started < deadline:
                db.session.expire_all()
                unfinished = db.session.query(SyncRun.id).filter(
                    SyncRun.id.in_(run_ids), SyncRun.status.notin_(RunStatus.FINISHED)).count()
                if not unfinished:
                    makespan = time.perf_counter() - started
                    break
                time.sleep(0.25)
            db.session.expire_all()
            runs = {r.id: r for r in db.session.query(SyncRun).filter(SyncRun.id.in_(run_ids))}
            by_dossier = {r.dossier_id: r for r in runs.values()}
            statuses = [r.status for r in runs.values()]
            calls = [(organisation, connection, by_dossier[dossier_id].api_calls or 0)
                     for dossier_id, organisation, connection in plan]
            others = Counter(f"{r.status}: {r.error_category or ''} {(r.message or '')[:120]}".strip()
                             for r in runs.values() if r.status != "succeeded")
    finally:
        stop_workers(procs)
    stats = bench.sandbox.stats()
    sleeps = read_sleep_log(sleep_log)
    bound = lower_bound(calls, tenant_calls, connection_calls, seconds)
    worker_seconds = workers * (makespan or deadline)
    spent = [c for _, _, c in calls]
    return {"files": files, "connections": connections, "organisations": organisations, "lines_each": lines,
            "workers": workers,
            "budgets": f"{tenant_calls} per organisation and {connection_calls} per connection, per {seconds} s",
            "api_calls_spent": sum(spent), "most_calls_one_run": max(spent, default=0),
            "lower_bound_seconds": round(bound, 2), "deadline_seconds": round(deadline, 1),
            "makespan_seconds": round(makespan, 2) if makespan else None,
            "succeeded": statuses.count("succeeded"), "other_outcomes": dict(others),
            "unfinished": sum(1 for s in statuses if s not in RunStatus.FINISHED),
            "sandbox_429": stats["rejected"].get("xero", 0),
            "sandbox_429_by_limit": stats.get("rejected_by", {}),
            "budget_sleep_seconds": round(sleeps["budget"], 2), "budget_sleeps": sleeps["budget_sleeps"],
            "retry_sleep_seconds": round(sleeps["retry"], 2),
            "budget_sleep_share": round(sleeps["budget"] / worker_seconds, 4),
            "makespan_over_bound": round(makespan / bound, 3) if makespan and bound else None}
