"""Measures 1 and 3: a full sync of a large Xero dossier through a real worker, its floors,
and the no-change resync that follows it (same run, same sandbox, same database).

The **floor** fetches exactly the pages the sync fetches (Organisation, Accounts, every
Journals page by offset) over one HTTP session and decodes them as the connector does
(JSON, amounts as Decimal), storing nothing. Its first pass goes through the sandbox (the
reference row kept from before issue #21, ``floor_*``) and records every page's bytes; the
**pre-rendered floor** then does the same against :class:`benchmarks.prerendered.PrerenderedServer`,
which serves those bytes without generating anything, and a second real sync of the same
organisation (a new dossier whose connection's ``base_url`` is that server; OAuth stays on
the sandbox) is measured against it (``prerendered_*``): the target ratio of issue #21.

The sync's time is the run's own ``started_at`` .. ``finished_at`` (the worker's start-up is
reported apart). CPU seconds of the worker, the page server and PostgreSQL during each sync
(:mod:`benchmarks.cpu`) show which process the wall time waits for on a small machine;
``worker_cpu_us_per_line`` is the worker's CPU (work horse included, the worker process's
start-up before its first job excluded: ``cpu_worker_startup_seconds``) per stored line.
"""
from __future__ import annotations

import json
import statistics
import time
from decimal import Decimal

import requests

from benchmarks.cpu import CpuMeter, own_seconds
from benchmarks.prerendered import PrerenderedServer, page_key
from benchmarks.world import add_xero_dossier, connect_xero, run_seconds, sync_and_wait

#: the Xero API's path under a sandbox (or pre-rendered server) origin
API_PATH = "/xero/api.xro/2.0"

COMPANY = "bench-xero"


def company(lines, accounts=1500):
    """The sandbox company of the measure: Xero shape, 36 monthly periods (3 fiscal years)."""
    return {"id": COMPANY, "name": "Benchmark Holdings Ltd", "accounts": accounts, "lines": lines,
            "first_year": 2023, "years": 3, "currency": "GBP", "country": "GB", "vat_number": "GB999999973"}


def floor(origin, credentials, company_id=COMPANY, record=None):
    """Fetch and decode every page a full sync reads from ``origin`` (the sandbox or the
    pre-rendered server); ``(seconds, pages, journal lines)``. With ``record`` (a dict), every
    page's ``(content type, bytes)`` is stored in it under :func:`benchmarks.prerendered.page_key`."""
    from connectors.xero.emulator import tenant_id

    base = f"{origin}{API_PATH}"
    headers = {"Authorization": f"Bearer {credentials['access_token']}", "Accept": "application/json",
               "xero-tenant-id": tenant_id(company_id)}
    session = requests.Session()

    def get(path, **params):
        response = session.get(f"{base}/{path}", params=params, headers=headers, timeout=60)
        response.raise_for_status()
        if record is not None:
            record[page_key(response.url)] = (response.headers.get("Content-Type", "application/json"),
                                              response.content)
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


def timed_sync(bench, dossier_id, cpu_pid):
    """A full sync through a real worker; its figures (seconds, lines, CPU of each process)."""
    calls_before = bench.sandbox.stats()["total_calls"]
    meter = CpuMeter(cpu_pid)
    run, rss, wall = sync_and_wait(bench, dossier_id)
    figures = meter.seconds()
    if run.status != "succeeded":
        raise RuntimeError(f"the full sync ended {run.status}: {run.message}")
    figures.update(sync_seconds=run_seconds(run), worker_wall_seconds=wall, lines=run.lines_inserted,
                   accounts=run.accounts_count, api_calls=run.api_calls,
                   sandbox_calls=bench.sandbox.stats()["total_calls"] - calls_before,
                   horse_peak_rss_mb=rss["horse_peak_rss_kb"] / 1024,
                   worker_peak_rss_mb=rss["worker_peak_rss_kb"] / 1024,
                   cpu_worker_startup_seconds=round(rss["startup_cpu_seconds"], 2),
                   worker_cpu_us_per_line=(figures["cpu_worker_seconds"] - rss["startup_cpu_seconds"])
                   / max(1, run.lines_inserted) * 1e6)
    return figures


def prerendered(bench, pages, credentials, name):
    """The pre-rendered floor and a real sync against the recorded ``pages``; ``prerendered_*`` figures."""
    with PrerenderedServer(pages, bench.sandbox.url, bench.workdir, bench.workdir / "prerendered.log") as server:
        meter, client = CpuMeter(server.proc.pid), own_seconds()
        seconds, pages_read, lines = floor(server.url, credentials)
        figures = {"prerendered_floor_seconds": seconds, "prerendered_floor_pages": pages_read,
                   "prerendered_floor_lines": lines,
                   "prerendered_floor_cpu_server_seconds": meter.seconds()["cpu_sandbox_seconds"],
                   "prerendered_floor_cpu_client_seconds": round(own_seconds() - client, 2)}
        dossier_id = add_xero_dossier(bench.sandbox.url, COMPANY, credentials, name, api_origin=server.url)
        sync = timed_sync(bench, dossier_id, server.proc.pid)
        stats = server.stats()
    figures.update({f"prerendered_{k}".replace("cpu_sandbox", "cpu_server"): v for k, v in sync.items()
                    if k not in ("horse_peak_rss_mb", "worker_peak_rss_mb")})
    figures["prerendered_misses"] = len(stats["misses"])
    return figures


def measure(bench, database_label, lines, runs, with_floor=True, with_resync=True):
    """Full sync (+ floors and the pre-rendered sync, + resync) ``runs`` times on a fresh
    dossier each; medians and raw figures."""
    raw = []
    with bench.app.app_context():
        for index in range(runs):
            bench.sandbox.reset()  # clears the sandbox's daily call counts (and its tokens)
            credentials = connect_xero(bench.sandbox.url)
            figures, pages = {}, {}
            if with_floor:
                meter, client = CpuMeter(bench.sandbox.proc.pid), own_seconds()
                figures["floor_seconds"], figures["floor_pages"], figures["floor_lines"] = floor(
                    bench.sandbox.url, credentials, record=pages)
                figures["floor_cpu_sandbox_seconds"] = meter.seconds()["cpu_sandbox_seconds"]
                figures["floor_cpu_client_seconds"] = round(own_seconds() - client, 2)
            dossier_id = add_xero_dossier(bench.sandbox.url, COMPANY, credentials,
                                          f"{database_label} {lines} run {index + 1}")
            figures.update(timed_sync(bench, dossier_id, bench.sandbox.proc.pid))
            if with_resync:
                again, _, _ = sync_and_wait(bench, dossier_id)
                if again.status != "succeeded":
                    raise RuntimeError(f"the resync ended {again.status}: {again.message}")
                figures.update(resync_seconds=run_seconds(again), resync_api_calls=again.api_calls,
                               resync_changed=bool(again.changed))
            if with_floor:
                figures.update(prerendered(bench, pages, credentials,
                                           f"{database_label} {lines} run {index + 1} (pre-rendered)"))
                del pages
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
        median["sync_over_prerendered_floor"] = statistics.median(
            r["prerendered_sync_seconds"] / r["prerendered_floor_seconds"] for r in raw)
        median["prerendered_records_per_second"] = statistics.median(
            r["prerendered_lines"] / r["prerendered_sync_seconds"] for r in raw)
        median["prerendered_floor_records_per_second"] = statistics.median(
            r["prerendered_floor_lines"] / r["prerendered_floor_seconds"] for r in raw)
    if "resync_seconds" in raw[0]:
        median["resync_over_full"] = statistics.median(r["resync_seconds"] / r["sync_seconds"] for r in raw)
        result["resync_changed"] = any(r["resync_changed"] for r in raw)
    return result
