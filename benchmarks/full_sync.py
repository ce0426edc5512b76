"""Measures 1 and 3: a full sync of a large Xero dossier through a real worker, its floor,
and the no-change resync that follows it (same run, same sandbox, same database).

The **floor** fetches exactly the pages the sync fetches (Organisation, Accounts, every
Journals page by offset) over one HTTP session and decodes them as the connector does
(JSON, amounts as Decimal), storing nothing. The sync's time is the run's own
``started_at`` .. ``finished_at`` (the worker's start-up is reported apart). CPU seconds of
the worker, the sandbox and PostgreSQL during the sync (:mod:`benchmarks.cpu`) show which
process the wall time waits for on a small machine.
"""
from __future__ import annotations

import json
import statistics
import time
from decimal import Decimal

import requests

from benchmarks.cpu import CpuMeter, own_seconds
from benchmarks.world import add_xero_dossier, connect_xero, run_seconds, sync_and_wait

COMPANY = "bench-xero"


def company(lines, accounts=1500):
    """The sandbox company of the measure: Xero shape, 36 monthly periods (3 fiscal years)."""
    return {"id": COMPANY, "name": "Benchmark Holdings Ltd", "accounts": accounts, "lines": lines,
            "first_year": 2023, "years": 3, "currency": "GBP", "country": "GB", "vat_number": "GB999999973"}


def floor(sandbox_url, credentials, company_id=COMPANY):
    """Fetch and decode every page a full sync reads; ``(seconds, pages, journal lines)``."""
    from connectors.xero.emulator import tenant_id

    base = f"{sandbox_url}/xero/api.xro/2.0"
    headers = {"Authorization": f"Bearer {credentials['access_token']}", "Accept": "application/json",
               "xero-tenant-id": tenant_id(company_id)}
    session = requests.Session()

    def get(path, **params):
        response = session.get(f"{base}/{path}", params=params, headers=headers, timeout=60)
        response.raise_for_status()
        return json.loads(response.content, parse_float=Decimal)

    started = time.perf_counter()
    get("Organisation")
    get("Accounts")
    pages, lines, offset = 2, 0, 0
    while True:
        journals = get("Journals", offset=offset)["Journals"]
        pages += 1
        lines += sum(len(j["JournalLines"]) for j in journals)
        if journals:
            offset = journals[-1]["JournalNumber"]
        if len(journals) < 100:
            break
    return time.perf_counter() - started, pages, lines


def measure(bench, database_label, lines, runs, with_floor=True, with_resync=True):
    """Full sync (+ floor, + resync) ``runs`` times on a fresh dossier each; medians and raw figures."""
    raw = []
    with bench.app.app_context():
        for index in range(runs):
            bench.sandbox.reset()  # clears the sandbox's daily call counts (and its tokens)
            credentials = connect_xero(bench.sandbox.url)
            figures = {}
            if with_floor:
                meter, client = CpuMeter(bench.sandbox.proc.pid), own_seconds()
                figures["floor_seconds"], figures["floor_pages"], figures["floor_lines"] = floor(
                    bench.sandbox.url, credentials)
                figures["floor_cpu_sandbox_seconds"] = meter.seconds()["cpu_sandbox_seconds"]
                figures["floor_cpu_client_seconds"] = round(own_seconds() - client, 2)
            dossier_id = add_xero_dossier(bench.sandbox.url, COMPANY, credentials,
                                          f"{database_label} {lines} run {index + 1}")
            calls_before = bench.sandbox.stats()["total_calls"]
            meter = CpuMeter(bench.sandbox.proc.pid)
            run, rss, wall = sync_and_wait(bench, dossier_id)
            figures.update(meter.seconds())
            if run.status != "succeeded":
                raise RuntimeError(f"the full sync ended {run.status}: {run.message}")
            figures.update(sync_seconds=run_seconds(run), worker_wall_seconds=wall, lines=run.lines_inserted,
                           accounts=run.accounts_count, api_calls=run.api_calls,
                           sandbox_calls=bench.sandbox.stats()["total_calls"] - calls_before,
                           horse_peak_rss_mb=rss["horse_peak_rss_kb"] / 1024,
                           worker_peak_rss_mb=rss["worker_peak_rss_kb"] / 1024)
            if with_resync:
                again, _, _ = sync_and_wait(bench, dossier_id)
                if again.status != "succeeded":
                    raise RuntimeError(f"the resync ended {again.status}: {again.message}")
                figures.update(resync_seconds=run_seconds(again), resync_api_calls=again.api_calls,
                               resync_changed=bool(again.changed))
            raw.append(figures)
    return summarise(raw)


def summarise(raw):
    """Medians of every numeric figure, plus the ratios computed per run then medianed."""
    keys = [k for k, v in raw[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    result = {"runs": len(raw), "raw": raw, "median": {k: statistics.median(r[k] for r in raw) for k in keys}}
    median = result["median"]
    median["records_per_second"] = statistics.median(r["lines"] / r["sync_seconds"] for r in raw)
    if "floor_seconds" in raw[0]:
        median["floor_records_per_second"] = statistics.median(r["floor_lines"] / r["floor_seconds"] for r in raw)
        median["sync_over_floor"] = statistics.median(r["sync_seconds"] / r["floor_seconds"] for r in raw)
    if "resync_seconds" in raw[0]:
        median["resync_over_full"] = statistics.median(r["resync_seconds"] / r["sync_seconds"] for r in raw)
        result["resync_changed"] = any(r["resync_changed"] for r in raw)
    return result
