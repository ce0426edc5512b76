"""Fixtures of the fault tests (general: any fault test may use them).

* ``private_redis``: a redis-server of the test's own (never the suite's shared one), which
  the test may stop and start again with or without its data (``.stop(keep_data=...)``,
  ``.start()``, ``.url``).
* ``linked_dossier``: the job tests' linked dossier (``tests/jobs/conftest.py``).
* ``gate``: ``gate(path, nth)`` holds the sandbox's ``nth`` request to ``path`` until the test
  opens it, so a sync stops exactly where the test wants it (no timing).
* ``clean_sync_snapshot``: ``clean_sync_snapshot(package, company, config=..., credentials=...)``
  syncs the company in-process into a new dossier and returns its :func:`business_values`;
  compare a healed dossier's :func:`business_values` with it.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest
from redis import Redis
from sqlalchemy import create_engine, text

from app.models import RunStatus, Trigger
from tests.conftest import free_port
from tests.jobs.conftest import bookkeeping_snapshot
from tests.jobs.conftest import linked_dossier  # noqa: F401 - the dossier fixture of the job tests, shared here


def business_values(db, dossier_id):
    """A dossier's bookkeeping without ids, dossier ids or origin links: accounts (number, name,
    kind), fiscal years (start, end, origin, locked), period balances (count), ledger lines
    (source id, booking date, amount)."""
    rows = bookkeeping_snapshot(db, dossier_id)
    return {
        "accounts": sorted(r[2:5] for r in rows["Account"]),
        "fiscal_years": sorted(r[2:] for r in rows["FiscalYear"]),
        "balances": len(rows["PeriodBalance"]),
        "lines": sorted((r[3], r[6], r[7]) for r in rows["LedgerLine"]),
    }


class PrivateRedis:
    """A redis-server on a free port, saving to its own folder only when asked (SHUTDOWN SAVE)."""

    def __init__(self):
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="firmsync-private-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir, "--dbfilename", "dump.rdb"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return self
            except Exception:  # noqa: BLE001 - still loading or not listening yet
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def stop(self, keep_data=True):
        """Stop the server: with its data written to disk (a restart finds it) or without."""
        try:
            Redis.from_url(self.url, socket_timeout=2).shutdown(save=keep_data, nosave=not keep_data)
        except Exception:  # noqa: BLE001 - SHUTDOWN closes the connection
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        if not keep_data and os.path.exists(os.path.join(self.workdir, "dump.rdb")):
            os.remove(os.path.join(self.workdir, "dump.rdb"))

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def private_redis():
    """A private redis-server for one test (stopped and removed afterwards)."""
    server = PrivateRedis().start()
    yield server
    server.close()


@pytest.fixture
def clean_sync_snapshot(db, linked_dossier):
    """``clean_sync_snapshot(package, company, config=..., credentials=...)`` -> the business
    values of a clean, in-process sync of ``company`` into a new dossier."""
    from app.models import SyncRun
    from jobs.sync import run

    def _snapshot(package, company, *, config, credentials):
        dossier = linked_dossier(package=package, reference=company, name=f"Clean copy of {company}",
                                 config=config, credentials=credentials)
        # a run row only, never enqueued: the test's workers, still alive, must not take it
        queued = SyncRun(firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=dossier.active_link().id,
                         trigger=Trigger.MANUAL, status=RunStatus.QUEUED)
        db.session.add(queued)
        db.session.commit()
        run_id, dossier_id = queued.id, dossier.id
        run(run_id)
        db.session.expire_all()

        done = db.session.get(SyncRun, run_id)
        assert done.status == RunStatus.SUCCEEDED, done.message
        return business_values(db, dossier_id)

    return _snapshot


class Gate:
    """WSGI middleware holding the ``nth`` request to ``path`` until :meth:`open` (or 30 s)."""

    def __init__(self, wrapped, path, nth):
        self.wrapped, self.path, self.nth = wrapped, path, nth
        self.seen = 0
        self.reached = threading.Event()
        self._open = threading.Event()
        self._count = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(self.path):
            with self._count:
                self.seen += 1
                held = self.seen == self.nth
            if held:
                self.reached.set()
                self._open.wait(30)
        return self.wrapped(environ, start_response)

    def open(self):
        self._open.set()


@pytest.fixture
def gate(sandbox, monkeypatch):
    """``gate(path, nth=2)``: hold the in-process sandbox's ``nth`` request to ``path`` until the
    test calls ``.open()`` (``.reached`` is set once it holds it); opened after the test."""
    gates = []

    def _gate(path, nth=2):
        made = Gate(sandbox.app.wsgi_app, path, nth)
        monkeypatch.setattr(sandbox.app, "wsgi_app", made)
        gates.append(made)
        return made

    yield _gate
    for made in gates:
        made.open()


def hold_row(db, table, row_id, lock="FOR UPDATE"):
    """Another process's lock on row ``row_id`` of ``table`` (SQLite: the whole database's write
    lock). Returns a function releasing it."""
    if db.engine.dialect.name == "sqlite":
        other = sqlite3.connect(db.engine.url.database, timeout=1)
        other.execute("BEGIN IMMEDIATE")
        return lambda: (other.rollback(), other.close())
    engine = create_engine(db.engine.url)
    conn = engine.connect()
    conn.execute(text(f"SELECT id FROM {table} WHERE id = :id {lock}"), {"id": row_id})
    return lambda: (conn.rollback(), conn.close(), engine.dispose())


def hold_the_writing(db, link_id):
    """Make a sync's writing wait (a staged sync's fetch before it does not): SQLite, another
    process takes the write lock, which a fetching staged sync does not hold; PostgreSQL, the
    link's row, whose bookmarks the sync writes before its commit. Returns a function releasing it."""
    return hold_row(db, "dossier_link", link_id, "FOR NO KEY UPDATE")
