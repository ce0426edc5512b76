"""Audit-file reading benchmark: ``python -m benchmarks.audit_files [--lines 1000000]``.

Writes a FEC and an XAF 3.2 of ``--lines`` ledger lines (:mod:`benchmarks.audit_file_samples`,
streamed to a temporary folder), then reads each one in a fresh process, as the upload's
check does (the reader of :mod:`app.audit_files`, every booking balanced, the sums per
account; for the XAF, the libxml2 schema check first), and reports lines per second and
the process's peak memory (``VmHWM``). A bounded reader keeps the same peak memory
whatever the file's size. The floor, in another fresh process: the same file only parsed
(``csv`` for the FEC, ``lxml.iterparse`` without the schema for the XAF), nothing checked.
``make bench`` runs this as measure 10 (docs/benchmarks.md); run alone, it prints JSON.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

SPECS = Path(__file__).resolve().parents[2] / "shared/specs/audit-files"


def write(path, chunks):
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return path.stat().st_size


def peak_rss_mb():
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inherited
    from the parent that forked it before ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def read(path, schema=None):
    """Read one file as the upload's check does; answers what it measured."""
    from app.audit_files import read_audit_file
    from app.audit_files.common import Line

    started = time.perf_counter()
    if schema:
        from lxml import etree

        from app.audit_files.common import release

        xsd = etree.XMLSchema(etree.parse(schema))
        with open(path, "rb") as stream:
            for _, element in etree.iterparse(stream, events=("end",), schema=xsd, resolve_entities=False,
                                              no_network=True):
                if len(element) and element.getparent() is not None and element.getparent().getparent() is not None:
                    release(element)
    schema_seconds = time.perf_counter() - started
    lines, open_entries, per_account = 0, {}, defaultdict(Decimal)
    with open(path, "rb") as stream:
        for item in read_audit_file(stream, path.name):
            if isinstance(item, Line):
                lines += 1
                per_account[item.account] += item.amount
                total = open_entries.pop(item.entry, Decimal(0)) + item.amount
                if total:
                    open_entries[item.entry] = total
    seconds = time.perf_counter() - started
    assert not open_entries, "the sample does not balance"
    return {"lines": lines, "seconds": round(seconds, 3), "schema_seconds": round(schema_seconds, 3),
            "lines_per_second": round(lines / seconds), "peak_rss_mb": peak_rss_mb()}


def read_floor(path):
    """The floor of reading ``path``: every line (FEC) or element (XAF) parsed, nothing checked or kept."""
    import csv

    from lxml import etree

    from app.audit_files.common import release

    started = time.perf_counter()
    units = 0
    if path.suffix.lower() == ".xaf":
        with open(path, "rb") as stream:
            for _, element in etree.iterparse(stream, events=("end",), resolve_entities=False, no_network=True):
                units += 1
                if len(element) and element.getparent() is not None and element.getparent().getparent() is not None:
                    release(element)
    else:
        with open(path, encoding="utf-8", errors="replace", newline="") as stream:
            for _ in csv.reader(stream, delimiter="|" if "|" in stream.readline() else "\t"):
                units += 1
    seconds = time.perf_counter() - started
    return {"floor_seconds": round(seconds, 3), "floor_units": units, "floor_peak_rss_mb": peak_rss_mb()}


def run(lines):
    from benchmarks.audit_file_samples import fec, fec_name, large_books, xaf

    results = {"lines": lines}
    with tempfile.TemporaryDirectory(prefix="firmsync-audit-bench-") as folder:
        books = large_books(lines)
        files = {"fec": (Path(folder) / fec_name(books), fec(books), None),
                 "xaf": (Path(folder) / "books.xaf", xaf(books), SPECS / "xaf/XmlAuditfileFinancieel3.2.xsd")}
        for key, (path, chunks, schema) in files.items():
            size = write(path, chunks)
            command = [sys.executable, "-m", "benchmarks.audit_files", "--read", str(path)]
            if schema is not None and schema.is_file():
                command += ["--schema", str(schema)]
            answer = subprocess.run(command, check=True, capture_output=True, text=True)
            figures = {"megabytes": round(size / 1024 / 1024, 1), **json.loads(answer.stdout)}
            answer = subprocess.run([sys.executable, "-m", "benchmarks.audit_files", "--floor", str(path)],
                                    check=True, capture_output=True, text=True)
            figures.update(json.loads(answer.stdout))
            figures["floor_lines_per_second"] = round(figures["lines"] / max(figures["floor_seconds"], 0.001))
            figures["seconds_over_floor"] = round(figures["seconds"] / max(figures["floor_seconds"], 0.001), 2)
            results[key] = figures
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit_files", description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--floor", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--read", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--schema", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        print(json.dumps(read_floor(Path(args.floor))))
        return
    if args.read:
        print(json.dumps(read(Path(args.read), args.schema)))
        return
    print(json.dumps(run(args.lines), indent=2))


if __name__ == "__main__":
    main()
