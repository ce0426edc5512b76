"""``python -m benchmarks [--size tiny|full] [--only 1,3] [--runs N] [--out DIR]`` (``make bench``).

Starts its own Redis, a throwaway PostgreSQL cluster and the sandbox (in its own
process), runs the chosen measures with real worker processes, and writes
``benchmarks.json`` and ``benchmarks.md`` into ``--out`` (default ``docs/``). Nothing here is
part of ``make test``; ``tests/test_benchmarks_tiny.py`` runs it at the tiny size.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks import api, audit_files, console, fanout, full_sync, pacing, peer, report, webhook_fanout
from benchmarks.services import ROOT, PostgresCluster, Redis, SandboxProcess, schema
from benchmarks.world import Bench

#: the sizes of each measure; "console": ((files, runs) per scale, totals over "console_firms"
#: firms); "pacing": (files, connections, organisations, lines each, calls per organisation,
#: calls per connection, window seconds)
SIZES = {
    "tiny": {"sync_lines": 2_000, "accounts": 40, "memory_lines": (1_000, 4_000), "nightly": 200, "bulk": 50,
             "console": ((50, 500), (300, 6_000)), "console_repeats": 3, "console_firms": 2,
             "pacing": (8, 2, 4, 300, 6, 12, 3), "peer_lines": 2_000,
             "api": (12_000, 4, 10), "webhook_events": (100, 2), "audit_file_lines": 3_000},
    "full": {"sync_lines": 300_000, "accounts": 1_500, "memory_lines": (100_000, 1_000_000), "nightly": 100_000,
             "bulk": 1_000, "console": ((1_000, 20_000), (250_000, 5_000_000)), "console_repeats": 20,
             "console_firms": 100,
             "pacing": (2_000, 50, 200, 300, 3, 12, 60), "peer_lines": 100_000,
             "api": (1_000_000, 20, 20), "webhook_events": (10_000, 4), "audit_file_lines": 1_000_000},
}
#: how measure 7's peers were pointed at the sandbox (the report's note; details in benchmarks/peer.py)
PEER_NOTE = (
    "How the peers were pointed at the sandbox: **tap-xero** (PyPI, own virtualenv): `tap_xero.client.BASE_URL` "
    "set to `<sandbox>/xero/api.xro/2.0` and its token POST to `https://identity.xero.com/connect/token` "
    "redirected to `<sandbox>/xero/connect/token` (refresh token of a sandbox grant); catalog selects `accounts` "
    "and `journals`. **airbyte-source-xero** 2.0.1 (PyPI, own virtualenv, airbyte-cdk 1.x): the package's "
    "`manifest.yaml` loaded with its requester's `url_base` set to `<sandbox>/xero/api.xro/2.0/`, bearer "
    "authentication (`credentials.auth_type = oauth2_access_token`, the access token of a sandbox grant), "
    "`tenant_id` of the organisation; two patches: the package has no journals stream, so one is added to the "
    "manifest from the package's own definitions (requester, selector, error handler) with Xero's `offset` "
    "paging on `JournalNumber`; and `JsonDecoder.__hash__` is set so the package's `CustomExtractor` (a "
    "dataclass with a `JsonDecoder` default) loads on Python 3.11. Streams read: `organisations`, `accounts`, "
    "`journals`, full refresh, output to /dev/null.")
MEASURES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", default=",".join(MEASURES), help="comma separated measure numbers (1-10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measure (medians are reported)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where benchmarks.md/json are written")
    parser.add_argument("--databases", default="sqlite,postgresql", help="for measures 1 and 3")
    parser.add_argument("--peer-venv", default=None, help="reuse a virtualenv that has tap-xero (measure 7)")
    parser.add_argument("--airbyte-venv", default=None,
                        help="reuse a virtualenv that has airbyte-source-xero (measure 7)")
    parser.add_argument("--memory-lines", default=None, help="ledger sizes of measure 2, e.g. 100000,1000000")
    parser.add_argument("--sync-lines", type=int, default=None, help="ledger size of measures 1 and 3 (profiling)")
    args = parser.parse_args(argv)
    if args.memory_lines:
        args.memory_lines = tuple(int(n) for n in args.memory_lines.split(","))
    args.only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(args.only) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measure(s): {', '.join(sorted(unknown))}")
    return args


def say(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(argv=None):
    """Run the harness; answers the paths of the JSON and Markdown reports."""
    args = parse(argv)
    size = dict(SIZES[args.size])
    if args.sync_lines:
        size["sync_lines"] = args.sync_lines
    logging.basicConfig(level=logging.WARNING)
    results = {}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="firmsync-bench-")))
        redis = stack.enter_context(Redis())
        postgres = None
        needs_pg = ({"1", "3"} & set(args.only) and "postgresql" in args.databases) or {"4", "5", "6", "7", "9"} & set(args.only)
        if needs_pg:
            postgres = stack.enter_context(PostgresCluster())
        databases = {"sqlite": f"sqlite:///{work}/bench.db", "postgresql": postgres.url if postgres else None}
        installs = {}
        if "7" in args.only:  # pip runs while the other measures do
            installs = {name: peer.PeerInstall(work / "peer", name, existing).start()
                        for name, existing in (("tap", args.peer_venv), ("airbyte", args.airbyte_venv))}
            for install in installs.values():
                stack.callback(install.stop)

        if {"1", "3"} & set(args.only):
            sync_results = {}
            with SandboxProcess([full_sync.company(size["sync_lines"], size["accounts"])], {"xero": {"per_minute": 0}},
                                log_path=work / "sandbox-1.log") as sandbox:
                for label in [d.strip() for d in args.databases.split(",") if d.strip()]:
                    say(f"measure 1/3 on {label}: {size['sync_lines']:,} lines x {args.runs} run(s)")
                    schema(databases[label], redis.url, work)
                    bench = Bench(databases[label], redis.url, sandbox, work / label)
                    sync_results[label] = full_sync.measure(bench, label, size["sync_lines"], args.runs)
            results.update(sync_checks(sync_results, args.only))

        if "2" in args.only:
            memory = {}
            for lines in args.memory_lines or size["memory_lines"]:
                say(f"measure 2: peak memory at {lines:,} lines")
                with SandboxProcess([full_sync.company(lines, size["accounts"])], {"xero": {"per_minute": 0}},
                                    log_path=work / f"sandbox-2-{lines}.log") as sandbox:
                    schema(databases["sqlite"], redis.url, work)
                    bench = Bench(databases["sqlite"], redis.url, sandbox, work / f"memory-{lines}")
                    memory[lines] = full_sync.measure(bench, "sqlite", lines, 1, with_floor=False, with_resync=False)
            results["2"] = memory_checks(memory)

        if "5" in args.only:
            say(f"measure 5: fan-out of {size['nightly']:,} and bulk resync of {size['bulk']:,}")
            schema(postgres.url, redis.url, work)
            bench = Bench(postgres.url, redis.url, None, work / "fanout")
            try:
                results["5"] = fanout_checks(fanout.measure(bench, size["nightly"], size["bulk"], args.runs),
                                             size["nightly"], size["bulk"])
            except Exception as exc:  # noqa: BLE001 (reported as the measure's result; the other measures go on)
                results["5"] = failed(f"nightly fan-out of {size['nightly']:,} files < 30 s", exc)

        if "4" in args.only:
            say(f"measure 4: console at {size['console'][-1][0]:,} files and {size['console'][-1][1]:,} runs "
                f"over {size['console_firms']} firms")
            schema(postgres.url, redis.url, work)
            bench = Bench(postgres.url, redis.url, None, work / "console")
            results["4"] = console_checks(console.measure(bench, size["console"], size["console_repeats"],
                                                          firms=size["console_firms"]))

        if "6" in args.only:
            files, connections, organisations, lines, tenant_calls, connection_calls, seconds = size["pacing"]
            say(f"measure 6: {files:,} files over {connections} connections and {organisations} organisations, "
                f"{tenant_calls} calls per organisation and {connection_calls} per connection per {seconds} s, "
                f"{pacing.WORKERS} workers")
            budgets = {"xero": {"per_minute": tenant_calls, "per_connection": connection_calls,
                                "window_seconds": seconds}}
            with SandboxProcess(pacing.companies(organisations, lines), budgets,
                                log_path=work / "sandbox-6.log") as sandbox:
                # PostgreSQL: many workers write at once (SQLite answers "database is locked")
                schema(postgres.url, redis.url, work)
                bench = Bench(postgres.url, redis.url, sandbox, work / "pacing")
                figures = pacing.measure(bench, files, connections, organisations, lines, tenant_calls,
                                         connection_calls, seconds)
            results["6"] = pacing_checks(figures)

        if "7" in args.only:
            lines = size["peer_lines"]
            say(f"measure 7: tap-xero and airbyte-source-xero vs Firmsync at {lines:,} lines")
            with SandboxProcess([full_sync.company(lines, size["accounts"])], {"xero": {"per_minute": 0}},
                                log_path=work / "sandbox-7.log") as sandbox:
                benches = {}
                for label, key in (("SQLite", "sqlite"), ("PostgreSQL", "postgresql")):
                    schema(databases[key], redis.url, work)
                    benches[label] = Bench(databases[key], redis.url, sandbox, work / f"peer-{key}")
                figures = peer.measure(benches, lines, args.runs, installs)
            results["7"] = {"status": "measured", "raw": {label: f["raw"] for label, f in figures.items()},
                            "figures": {label: f["median"] for label, f in figures.items()},
                            "checks": [check(f"{label}: Firmsync records/s (storing) >= 2 x {name} (to /dev/null)",
                                             f["median"][f"firmsync_over_{key}"], f["median"][f"firmsync_over_{key}"] >= 2)
                                       for label, f in figures.items()
                                       for key, name in (("tap", "tap-xero"), ("airbyte", "airbyte-source-xero"))],
                            "note": PEER_NOTE}

        if "8" in args.only:
            lines, dossiers, pages = size["api"]
            say(f"measure 8: API listing over {lines:,} ledger lines, {pages} pages per cursor depth")
            results["8"] = api_checks(api.measure(f"sqlite:///{work}/api.db", redis.url, lines, dossiers, pages))

        if "9" in args.only:
            events, workers = size["webhook_events"]
            say(f"measure 9: webhook fan-out of {events:,} events with {workers} workers")
            schema(postgres.url, redis.url, work)
            bench = Bench(postgres.url, redis.url, None, work / "webhooks")
            figures = webhook_fanout.measure(bench, events, workers)
            seconds = figures["delivery_seconds"]
            results["9"] = {"status": "measured", "figures": {"PostgreSQL": figures}, "checks": [
                check(f"{events:,} events delivered, each once, signature valid",
                      f"{figures['delivered']:,} ({figures['bad_signatures']} bad signatures)",
                      figures["delivered"] == figures["recorded_delivered"] == events
                      and figures["bad_signatures"] == 0),
                check(f"all {events:,} delivered within 60 s", seconds if seconds else "not all delivered",
                      figures["delivered"] == events and seconds <= 60)]}

        if "10" in args.only:
            lines = size["audit_file_lines"]
            say(f"measure 10: reading a FEC and an XAF of {lines:,} lines")
            results["10"] = audit_file_checks(audit_files.run(lines))
    return report.write(args.out, results, args.size, args.runs)


def check(target, value, passed):
    return {"target": target, "value": value, "pass": bool(passed)}


def failed(target, exc):
    """A measure that raised: its target missed, with the error's first line (no SQL dump)."""
    message = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
    say(f"{target}: failed with {exc.__class__.__name__}: {message}")
    return {"status": "failed", "note": f"The measure failed: {exc.__class__.__name__}: {message}",
            "checks": [check(target, f"failed ({exc.__class__.__name__})", False)]}


#: measure 1's figures in the report (medians), the pre-rendered floor's and sync's first
SYNC_FIGURES = (
    "lines", "accounts", "api_calls",
    "prerendered_floor_seconds", "prerendered_sync_seconds", "sync_over_prerendered_floor",
    "prerendered_records_per_second", "prerendered_floor_records_per_second", "prerendered_floor_pages",
    "prerendered_misses", "prerendered_worker_cpu_us_per_line", "prerendered_cpu_worker_seconds",
    "prerendered_cpu_worker_startup_seconds",
    "prerendered_cpu_server_seconds", "prerendered_cpu_postgres_seconds", "prerendered_floor_cpu_server_seconds",
    "prerendered_floor_cpu_client_seconds", "prerendered_sandbox_calls",
    "sync_seconds", "floor_seconds", "sync_over_floor", "records_per_second", "floor_records_per_second",
    "floor_pages", "worker_wall_seconds", "worker_cpu_us_per_line", "cpu_worker_seconds", "cpu_sandbox_seconds",
    "cpu_postgres_seconds", "floor_cpu_sandbox_seconds", "floor_cpu_client_seconds")


def sync_checks(sync_results, only):
    results = {}
    labels = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    if "1" in only:
        checks = []
        for k, v in sync_results.items():
            median = v["median"]
            if k == "postgresql":
                checks.append(check(f"{labels[k]}: sync time <= 2.0 x the pre-rendered floor",
                                    median["sync_over_prerendered_floor"], median["sync_over_prerendered_floor"] <= 2.0))
            else:  # issue #21 sets the ratio's target on PostgreSQL; SQLite's is reported
                checks.append(check(f"{labels[k]}: sync time / pre-rendered floor (reported; target on PostgreSQL)",
                                    median["sync_over_prerendered_floor"], True))
            checks.append(check(f"{labels[k]}: worker CPU per stored line <= 40 µs (pre-rendered sync)",
                                median["prerendered_worker_cpu_us_per_line"],
                                median["prerendered_worker_cpu_us_per_line"] <= 40))
            checks.append(check(f"{labels[k]}: the pre-rendered server answered every page from its record",
                                f"{median['prerendered_misses']:g} pages fetched from the sandbox",
                                median["prerendered_misses"] == 0))
            checks.append(check(f"{labels[k]}: reference: sync time <= 1.5 x the sandbox floor (target before #21)",
                                median["sync_over_floor"], median["sync_over_floor"] <= 1.5))
        results["1"] = {"status": "measured", "raw": {k: v["raw"] for k, v in sync_results.items()},
                        "figures": {labels[k]: {n: v["median"][n] for n in SYNC_FIGURES} for k, v in sync_results.items()},
                        "checks": checks}
    if "3" in only:
        results["3"] = {"status": "measured",
                        "figures": {labels[k]: {n: v["median"][n] for n in (
                            "resync_seconds", "sync_seconds", "resync_over_full", "resync_api_calls")}
                            for k, v in sync_results.items()},
                        "checks": [check(f"{labels[k]}: resync <= 5% of the full sync", v["median"]["resync_over_full"],
                                         v["median"]["resync_over_full"] <= 0.05 and not v["resync_changed"])
                                   for k, v in sync_results.items()]}
    return results


def console_checks(scales):
    labels = list(scales)
    largest = scales[labels[-1]]
    checks = [check(f"{page} at {labels[-1]}: p95 < 150 ms", figures["p95_ms"], figures["p95_ms"] < 150)
              for page, figures in largest.items()]
    for page in largest:
        counts = [scales[label][page]["queries"] for label in labels]
        checks.append(check(f"{page}: same SQL queries at every scale", counts, len(set(counts)) == 1))
    lists = [page for page in largest if page.startswith("Files list")]
    counts = [largest[page]["queries"] for page in lists]
    checks.append(check("Files list: same SQL queries at every page size", counts, len(set(counts)) == 1))
    return {"status": "measured",
            "figures": {f"{page}, {label}": figures for label in labels for page, figures in scales[label].items()},
            "checks": checks}


def fanout_checks(figures, nightly, bulk):
    median, first = figures["median"], figures["first_night"]
    return {"status": "measured", "runs": figures["runs"], "raw": figures["raw"],
            "figures": {"PostgreSQL": median, "PostgreSQL, first night after the import": first},
            "checks": [check(f"nightly fan-out of {nightly:,} files < 30 s", median["nightly_seconds"],
                             median["nightly_seconds"] < 30),
                       check(f"first night (no run yet) of {nightly:,} files < 30 s", first["seconds"],
                             first["seconds"] < 30),
                       check(f"Resync selected of {bulk:,} < 2 s", median["bulk_seconds"], median["bulk_seconds"] < 2)]}


def pacing_checks(figures):
    ratio = figures["makespan_over_bound"]
    return {"status": "measured", "figures": {"PostgreSQL": figures}, "checks": [
        check("every run finished before the deadline", figures["unfinished"] == 0, figures["unfinished"] == 0),
        check("makespan <= 1.10 x the budgets' lower bound", ratio if ratio else "did not finish",
              bool(ratio) and ratio <= 1.10),
        check("zero 429s caused by our pacing", figures["sandbox_429"], figures["sandbox_429"] == 0),
        check("worker time spent sleeping on budgets < 5 %", figures["budget_sleep_share"],
              figures["budget_sleep_share"] < 0.05)]}


def api_checks(figures):
    depths = figures["ledger_page_500"]
    pull = figures["no_change_pull"]
    checks = [check(f"page of 500 at cursor {depth}: p95 < 100 ms", d["p95_ms"], d["p95_ms"] < 100)
              for depth, d in depths.items()]
    checks.append(check("no-change updated_since pull: nothing, at most one statement on ledger_line",
                        f"{pull['lines']} lines, {pull['statements']} statements "
                        f"({pull['statements_on_ledger_line']} on ledger_line)",
                        pull["lines"] == 0 and pull["statements_on_ledger_line"] <= 1))
    return {"status": "measured", "raw": figures,
            "figures": {**{f"page of 500 at cursor {depth} (SQLite, {figures['lines']:,} lines)": d
                           for depth, d in depths.items()}, "no-change pull": pull},
            "checks": checks}


def audit_file_checks(figures):
    labels = {"fec": "FEC", "xaf": "XAF 3.2"}
    checks = [check(f"{labels[k]}: peak memory < 100 MB", figures[k]["peak_rss_mb"], figures[k]["peak_rss_mb"] < 100)
              for k in labels]
    return {"status": "measured", "figures": {f"{labels[k]}, {figures['lines']:,} lines": figures[k] for k in labels},
            "checks": checks}


def memory_checks(memory):
    sizes = sorted(memory)
    peaks = {n: memory[n]["median"]["horse_peak_rss_mb"] for n in sizes}
    growth = peaks[sizes[-1]] / peaks[sizes[0]]
    return {"status": "measured", "raw": {str(n): memory[n]["raw"] for n in sizes},
            "figures": {f"{n:,} lines (SQLite)": {k: memory[n]["median"][k] for k in (
                "horse_peak_rss_mb", "worker_peak_rss_mb", "lines", "sync_seconds", "records_per_second")}
                for n in sizes},
            "checks": [check(f"peak RSS of the work horse at {sizes[-1]:,} lines < 200 MB", peaks[sizes[-1]],
                             peaks[sizes[-1]] < 200),
                       check(f"peak RSS of the work horse at {sizes[0]:,} lines < 200 MB", peaks[sizes[0]],
                             peaks[sizes[0]] < 200),
                       check(f"flat: peak at {sizes[-1]:,} lines within +25 % of {sizes[0]:,} lines (ratio)",
                             growth, growth <= 1.25)]}


def main(argv=None):
    # SIGTERM unwinds like Ctrl-C, so the Redis, PostgreSQL and sandbox processes are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    json_path, md_path = run(argv)
    say(f"done in {time.perf_counter() - started:.0f} s: {md_path} and {json_path}")


if __name__ == "__main__":
    main()
