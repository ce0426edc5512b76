"""The report: ``benchmarks.json`` (every figure) and ``benchmarks.md`` (the same, for people).

Measures run separately (``--only``) are merged into the existing JSON, so the Markdown
always shows the latest result of every measure. Hand-written analysis lives in
``docs/benchmarks.md`` below the generated part (after :data:`ANALYSIS_MARKER`) and is kept.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ANALYSIS_MARKER = "<!-- analysis: written by hand, kept when the report is regenerated -->"
TITLES = {
    "1": "Full sync of a large Xero dossier vs the pre-rendered floor (and the sandbox floor)",
    "2": "Peak memory of the worker",
    "3": "No-change resync",
    "4": "Console at scale (PostgreSQL)",
    "5": "Fan-out: nightly and \"Resync selected\"",
    "6": "Pacing under API budgets",
    "7": "Peers: Singer tap-xero and Airbyte's airbyte-source-xero",
    "8": "Public API: ledger-line pages and the no-change updated_since pull",
    "9": "Webhook fan-out to a local receiver",
    "10": "Audit files: reading a FEC and an XAF",
}


def machine():
    """What the figures were measured on (and how busy it was)."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        info["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    except (OSError, IndexError):
        pass
    return info


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"measures": {}}


def write(out_dir, results, size, runs):
    """Merge ``results`` (``{measure: {...}}``) into ``benchmarks.json`` and regenerate ``benchmarks.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "benchmarks.json", out_dir / "benchmarks.md"
    data = load(json_path)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for key, result in results.items():
        data["measures"][key] = {"title": TITLES[key], "date": stamp, "size": size, "runs_asked": runs,
                                 "machine": machine(), **result}
    data["generated"] = stamp
    return render(json_path, md_path, data)


def merge(out_dir, other_json_paths):
    """Copy every measure of other runs' ``benchmarks.json`` (run with another ``--out``, as they
    were: date, size, machine) into ``out_dir``'s reports: ``python -m benchmarks.report DIR JSON...``."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "benchmarks.json", out_dir / "benchmarks.md"
    data = load(json_path)
    for other in other_json_paths:
        data["measures"].update(load(other)["measures"])
    data["generated"] = max(m["date"] for m in data["measures"].values())
    return render(json_path, md_path, data)


def render(json_path, md_path, data):
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    analysis = ""
    if md_path.exists() and ANALYSIS_MARKER in md_path.read_text():
        analysis = md_path.read_text().split(ANALYSIS_MARKER, 1)[1]
    md_path.write_text(markdown(data) + "\n" + ANALYSIS_MARKER + (analysis or "\n"))
    return json_path, md_path


def _fmt(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


#: the full-size runs (issue #21's targets), one command per measure, from the repository root
FULL_RUNS = [
    ("1, 3", ".venv/bin/python -m benchmarks --only 1,3 --runs 3",
     "SQLite and PostgreSQL, 300,000 lines: sandbox floor, sync, resync, pre-rendered floor and sync (~25 min)"),
    ("2", ".venv/bin/python -m benchmarks --only 2 --runs 1",
     "peak RSS at 100,000 and 1,000,000 lines (~8 min)"),
    ("4", ".venv/bin/python -m benchmarks --only 4 --runs 1",
     "250,000 files, 5,000,000 runs, 100 firms on PostgreSQL, 20 requests per page (~15 min)"),
    ("5", ".venv/bin/python -m benchmarks --only 5 --runs 3", "nightly fan-out of 100,000 files (~5 min)"),
    ("6", ".venv/bin/python -m benchmarks --only 6 --runs 1",
     "2,000 files, 50 connections, 200 organisations, 4 workers (~20 min: the budgets' bound is ~14 min)"),
    ("7", ".venv/bin/python -m benchmarks --only 7 --runs 3",
     "tap-xero and airbyte-source-xero (installed from PyPI into virtualenvs in the run's temp dir; "
     "`--peer-venv DIR` / `--airbyte-venv DIR` reuse existing ones) vs Firmsync storing into SQLite and into "
     "PostgreSQL, 100,000 lines"),
]


def markdown(data):
    lines = ["# Benchmarks", "",
             "Generated by `make bench` (`python -m benchmarks`); every figure is the median over the runs "
             "of one invocation, floors and ratios measured in the same run. Raw figures: "
             "`docs/benchmarks.json`.", "",
             "Full-size runs of issue #21's targets (a quiet machine; each merges its measures into this report):",
             ""]
    lines += [f"- measure {measure}: `{command}`: {what}" for measure, command, what in FULL_RUNS]
    lines += ["", "All of them at once: `make bench` (several hours). `--size tiny` runs every measure in a few "
              "minutes (`tests/test_benchmarks_tiny.py`).", ""]
    for key in sorted(data["measures"], key=int):
        m = data["measures"][key]
        mach = m.get("machine", {})
        lines += [f"## {key}. {m['title']}", "",
                  f"{m['date']}, size `{m['size']}`, {mach.get('cpus')} CPU ({mach.get('cpu', '?')}), "
                  f"{mach.get('memory_gb', '?')} GB, load average at the end {mach.get('load_average')}.", ""]
        if m.get("status") == "not measured":
            lines += [f"**Not measured.** {m.get('note', '')}", ""]
            continue
        lines += ["| target | figure | result |", "|---|---|---|"]
        for check in m.get("checks", []):
            verdict = "pass" if check["pass"] else "**MISS**"
            lines.append(f"| {check['target']} | {_fmt(check['value'])} | {verdict} |")
        lines.append("")
        for label, figures in m.get("figures", {}).items():
            lines += [f"**{label}** (medians)", "", "| figure | value |", "|---|---|"]
            lines += [f"| {name} | {_fmt(value)} |" for name, value in figures.items()]
            lines.append("")
        if m.get("note"):
            lines += [m["note"], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(*merge(sys.argv[1], sys.argv[2:]))
