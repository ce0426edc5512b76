"""What PostgreSQL spends on a COPY of ledger lines: foreign keys and indexes (issue #21).

``python -m benchmarks.copy_costs [--rows 300000]`` (not part of ``make bench`` nor ``make
test``; run by hand, the result is quoted in ``docs/benchmarks.md``, "Issue #21 at full size").

On a throwaway cluster, ``--rows`` rows shaped like ``ledger_line`` (its columns and types)
are copied, binary, in one transaction, as :func:`app.services.bookkeeping.insert_rows` does,
into a scratch table four times: with ``ledger_line``'s four foreign keys (dossier, link,
account, period) and its three indexes, with the indexes only, with the keys only, with
neither. Reported: the server backend's CPU seconds (``/proc/<pid>/stat``) and the wall time.
"""
from __future__ import annotations

import argparse
import os
import time
from datetime import date, datetime
from decimal import Decimal

import psycopg

from benchmarks.services import PostgresCluster

COLUMNS = ("dossier_id", "link_id", "source_id", "account_id", "period_id", "booking_date", "amount", "description",
           "reference", "journal", "dimensions", "modified_at", "updated_at")
#: the COPY's types (int4, varchar, date, numeric, text for the json column, timestamp)
TYPES = (23, 23, 1043, 23, 23, 1082, 1700, 1043, 1043, 1043, 25, 1114, 1114)
TABLE = ("CREATE TABLE lines (id serial PRIMARY KEY, dossier_id int NOT NULL {dossier}, link_id int {link}, "
         "source_id varchar(120) NOT NULL, account_id int NOT NULL {account}, period_id int NOT NULL {period}, "
         "booking_date date NOT NULL, amount numeric(18, 2) NOT NULL, description varchar(500), "
         "reference varchar(120), journal varchar(60), dimensions json, modified_at timestamp, updated_at timestamp)")
KEYS = {"dossier": "REFERENCES dossier (id) ON DELETE CASCADE", "link": "REFERENCES link (id) ON DELETE SET NULL",
        "account": "REFERENCES account (id) ON DELETE CASCADE", "period": "REFERENCES period (id) ON DELETE CASCADE"}
INDEXES = ("CREATE UNIQUE INDEX ON lines (link_id, source_id)",
           "CREATE INDEX ON lines (dossier_id, period_id, account_id)",
           "CREATE INDEX ON lines (dossier_id, updated_at)")


def backend_cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` (a PostgreSQL backend on this machine)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(rows_count):
    """``{label: (backend CPU seconds, wall seconds)}`` of the four COPYs."""
    now = datetime(2024, 1, 1, 12)
    rows = [(1, 1, f"{index // 3:08x}-journal:{index:08x}-line", 1 + index % 1500, 1 + index % 60, date(2024, 1, 1),
             Decimal("123.45"), "Sales invoice", "INV-001", "ACCREC", "{}", now, now) for index in range(rows_count)]
    results = {}
    with PostgresCluster() as cluster, psycopg.connect(cluster.url.replace("postgresql+psycopg", "postgresql")) as conn:
        for parent in ("dossier", "link", "account", "period"):
            conn.execute(f"CREATE TABLE {parent} (id serial PRIMARY KEY)")
        conn.execute("INSERT INTO dossier DEFAULT VALUES; INSERT INTO link DEFAULT VALUES")
        conn.execute("INSERT INTO account SELECT FROM generate_series(1, 1500)")
        conn.execute("INSERT INTO period SELECT FROM generate_series(1, 60)")
        conn.commit()
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        for label, keys, indexes in (("foreign keys and indexes", True, True), ("indexes only", False, True),
                                     ("foreign keys only", True, False), ("neither", False, False)):
            conn.execute("DROP TABLE IF EXISTS lines")
            conn.execute(TABLE.format(**(KEYS if keys else dict.fromkeys(KEYS, ""))))
            for statement in INDEXES if indexes else ():
                conn.execute(statement)
            conn.commit()
            cpu, wall = backend_cpu_seconds(pid), time.perf_counter()
            with conn.cursor() as cursor, cursor.copy(
                    f"COPY lines ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(TYPES)
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            results[label] = (backend_cpu_seconds(pid) - cpu, time.perf_counter() - wall)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.copy_costs", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    args = parser.parse_args(argv)
    print(f"COPY of {args.rows:,} ledger-line rows, one transaction")
    for label, (cpu, wall) in measure(args.rows).items():
        print(f"  {label:26s} PostgreSQL backend CPU {cpu:6.2f} s   wall {wall:6.2f} s")


if __name__ == "__main__":
    main()
