"""The services a benchmark run needs, started by the harness and stopped after it.

* :class:`Redis`: a private ``redis-server`` on a free loopback port (no persistence);
* :class:`PostgresCluster`: a throwaway cluster in a temp dir, like ``scripts/test.sh``
  (root runs it as the ``postgres`` user; durability off, it is thrown away);
* :class:`SandboxProcess`: the sandbox (``benchmarks.sandbox_process``) in its own process
  with the benchmark's companies and budgets;
* :func:`schema`: ``create_all`` on a database URL.

Every class is a context manager; nothing starts at import.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} after {timeout} s")


class Redis:
    """A private Redis server; ``.url`` once started (with ``password``, as production asks)."""

    def __init__(self, password=None):
        self.password = password

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="firmsync-bench-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir, "--save", "",
             "--appendonly", "no", *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.url = f"redis://{':' + self.password + '@' if self.password else ''}127.0.0.1:{self.port}/0"
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresCluster:
    """A throwaway PostgreSQL cluster; ``.url`` (psycopg 3 driver) once started."""

    def __enter__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (make test installs it)")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="firmsync-bench-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        data = f"{self.dir}/data"
        self._pg("initdb", "-D", data, "-U", "firmsync", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        self._pg("pg_ctl", "-D", data, "-l", f"{self.dir}/server.log", "-w", "-t", "60",
                 "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='{self.dir}'",
                 "-o", "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                 "start")
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "firmsync", "firmsync_bench")
        self.url = f"postgresql+psycopg://firmsync@127.0.0.1:{self.port}/firmsync_bench"
        return self

    def _pg(self, program, *args):
        command = [f"{self.bin}/{program}", *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __exit__(self, *exc):
        try:
            self._pg("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SandboxProcess:
    """The sandbox in its own process (so its work does not share our interpreter's GIL).

    :param companies: dicts of :class:`connectors.emulation.books.CompanySpec` fields.
    :param budgets: the sandbox's ``budgets`` (``{"xero": {"per_minute": 0}}`` lifts Xero's).
    """

    def __init__(self, companies, budgets=None, log_path=None):
        self.companies = companies
        self.budgets = budgets or {}
        self.log_path = log_path

    def __enter__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.companies_file = tempfile.NamedTemporaryFile("w", prefix="firmsync-sandbox-", suffix=".json")
        json.dump(self.companies, self.companies_file)
        self.companies_file.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sandbox_process", "--port", str(self.port),
             "--companies", self.companies_file.name, "--budgets", json.dumps(self.budgets)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wait_for_port(self.port, timeout=120)
        return self

    def reset(self):
        requests.post(self.url + "/_sandbox/reset", timeout=30).raise_for_status()

    def stats(self):
        return requests.get(self.url + "/_sandbox/stats", timeout=30).json()

    def budgets_set(self, budgets):
        requests.post(self.url + "/_sandbox/budgets", json=budgets, timeout=30).raise_for_status()

    def mutate(self, company, **changes):
        response = requests.post(f"{self.url}/_sandbox/companies/{company}/mutate", json=changes, timeout=30)
        response.raise_for_status()
        return response.json()

    def __exit__(self, *exc):
        stop_process(self.proc)
        self.companies_file.close()


def stop_process(proc, grace=10):
    """SIGTERM ``proc``, SIGKILL it if it is still there after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def schema(database_url, redis_url, instance):
    """Create every table on ``database_url`` (dropping what was there)."""
    from app.extensions import db
    from benchmarks.world import make_app

    app = make_app(database_url, redis_url)
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.engine.dispose()
