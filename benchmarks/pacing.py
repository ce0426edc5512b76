"""Measure 6: pacing under API budgets.

Xero dossiers in the sandbox, each on its own organisation, each needing several budget
windows of calls; the sandbox enforces a scaled-down Xero budget (``calls`` per ``seconds``
per organisation, answering 429 beyond it) and the workers' client-side budget is scaled
down the same way (``benchmarks.worker_process --xero-budget``). Real workers (with the
scheduler, so deferred runs come back) run until every run finished or a deadline passed.

Reported: the makespan against the lower bound the budgets imply (each organisation's calls
need ``ceil(calls / budget)`` windows, organisations run in parallel), the runs that
finished, the deferrals, and the 429s the sandbox answered (pacing should cause none).
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

from benchmarks.services import ROOT
from benchmarks.world import add_xero_dossier, connect_xero


def companies(count, lines):
    return [{"id": f"pace-{n:03d}", "name": f"Paced Client {n:03d} Ltd", "accounts": 30, "lines": lines,
             "first_year": 2024, "years": 1, "currency": "GBP", "country": "GB"} for n in range(count)]


def measure(bench, count, lines, budget_calls, budget_seconds, workers=2, slack=3.0):
    """Sync ``count`` dossiers under the scaled budget; figures for the report."""
    from app.extensions import db
    from app.models import RunStatus, SyncRun
    from jobs.triggers import request_sync

    with bench.app.app_context():
        bench.sandbox.reset()
        credentials = connect_xero(bench.sandbox.url)
        run_ids = []
        for company in companies(count, lines):
            dossier_id = add_xero_dossier(bench.sandbox.url, company["id"], credentials, company["name"])
            run_ids.append(request_sync(dossier_id, "manual").id)
    calls_each = 3 + math.ceil(lines / 3 / 100)  # Organisation, Accounts, Journals pages (+ the last, short one)
    lower_bound = math.ceil(calls_each / budget_calls) * budget_seconds
    deadline = slack * lower_bound + 60
    procs = []
    started = time.perf_counter()
    for n in range(workers):
        log = open(bench.workdir / f"pacing-worker-{n}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker_process", "--report", str(bench.workdir / f"pacing-{n}.json"),
             "--xero-budget", f"{budget_calls},{budget_seconds}", "--with-scheduler", "--forever"],
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
                time.sleep(0.5)
            db.session.expire_all()
            runs = db.session.query(SyncRun).filter(SyncRun.id.in_(run_ids)).all()
            statuses = [r.status for r in runs]
            calls = sum(r.api_calls for r in runs)
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    stats = bench.sandbox.stats()
    return {"dossiers": count, "lines_each": lines, "budget": f"{budget_calls} calls per {budget_seconds} s",
            "calls_needed_each": calls_each, "lower_bound_seconds": lower_bound, "deadline_seconds": deadline,
            "makespan_seconds": makespan, "succeeded": statuses.count("succeeded"),
            "unfinished": sum(1 for s in statuses if s not in RunStatus.FINISHED),
            "api_calls_spent": calls, "sandbox_429": stats["rejected"].get("xero", 0),
            "makespan_over_bound": (makespan / lower_bound) if makespan else None}
