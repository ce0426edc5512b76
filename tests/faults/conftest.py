"""Fixtures of the fault tests (general: any fault test may use them).

* ``private_redis``: a redis-server of the test's own (never the suite's shared one), which
  the test may stop and start again with or without its data (``.stop(keep_data=...)``,
  ``.start()``, ``.url``).
* ``linked_dossier``: the job tests' linked dossier (``tests/jobs/conftest.py``).
* ``clean_sync_snapshot``: ``clean_sync_snapshot(package, company, config=..., credentials=...)``
  syncs the company in-process into a new dossier and returns its :func:`business_values`;
  compare a healed dossier's :func:`business_values` with it.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from redis import Redis

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
    from app.services.syncs import request_sync
    from jobs.sync import run

    def _snapshot(package, company, *, config, credentials):
        dossier = linked_dossier(package=package, reference=company, name=f"Clean copy of {company}",
                                 config=config, credentials=credentials)
        queued = request_sync(dossier.id, Trigger.MANUAL)
        run_id, dossier_id = queued.id, dossier.id
        run(run_id)
        db.session.expire_all()
        from app.models import SyncRun

        done = db.session.get(SyncRun, run_id)
        assert done.status == RunStatus.SUCCEEDED, done.message
        return business_values(db, dossier_id)

    return _snapshot
