"""Pytest plugin: real ``flask worker`` processes for end-to-end job tests.

``workers.start(n=1, burst=False)`` starts ``n`` worker subprocesses (``--with-scheduler``)
on the session's database and Redis (``FIRMSYNC_ENV=testing``, ``DATABASE_URL``,
``REDIS_URL``, ``FIRMSYNC_INSTANCE_PATH``); ``workers.wait_for(predicate, timeout)`` polls
until the work is done; every worker still running is stopped after the test
(``kill(proc)`` sends SIGKILL to a worker and its work horse, for crash tests).

Tests using it are marked ``slow``: they stay in the suite (``-m "not slow"`` skips them
locally).
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests with real worker processes (kept in the suite)")


def children_of(pid):
    """Direct child pids of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class Workers:
    def __init__(self, schema, log_dir):
        self.schema = schema
        self.log_dir = Path(log_dir)
        self.procs = []

    def env(self):
        env = dict(os.environ)
        env.update(FIRMSYNC_ENV="testing", DATABASE_URL=self.schema["database_url"], REDIS_URL=self.schema["redis_url"],
                   FIRMSYNC_INSTANCE_PATH=self.schema["instance"], PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    extra_env = {}

    def start(self, n=1, burst=False, **settings):
        """Start ``n`` workers; ``settings`` become ``FIRMSYNC_<NAME>`` env values (e.g. SYNC_HEARTBEAT_SECONDS=1)."""
        self.extra_env = {f"FIRMSYNC_{k}": v for k, v in settings.items()}
        started = []
        for _ in range(n):
            log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")
            args = [sys.executable, "-m", "flask", "--app", "app:create_app", "worker", "--with-scheduler",
                    "--logging-level", "INFO"] + (["--burst"] if burst else [])
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
            proc.log_path = log.name
            self.procs.append(proc)
            started.append(proc)
        return started if n > 1 else started[0]

    def wait_for(self, predicate, timeout=60, interval=0.2, what="the work"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            if self.procs and all(p.poll() is not None for p in self.procs):
                break
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}\n" + self.logs())

    def kill(self, proc):
        """SIGKILL a worker and its work horse (no cleanup of any kind)."""
        for pid in children_of(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(10)

    def stop_all(self):
        """Stop every worker: a warm shutdown (RQ finishes the job at hand), then, for a worker
        still busy after a second, RQ's cold shutdown (a second SIGTERM stops its work horse):
        the test is over, its job need not finish; SIGKILL if even that does not end it."""
        running = [proc for proc in self.procs if proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(1)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def logs(self):
        out = []
        for proc in self.procs:
            try:
                out.append(f"--- {proc.log_path}\n" + Path(proc.log_path).read_text(errors="replace")[-4000:])
            except OSError:
                pass
        return "\n".join(out)


@pytest.fixture
def workers(app, _schema, tmp_path):
    """Start real worker processes in a test; they are stopped after it (a job still running is cut short)."""
    pool = Workers(_schema, tmp_path)
    yield pool
    pool.stop_all()
