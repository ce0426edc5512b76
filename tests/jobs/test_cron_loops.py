"""``flask sync cron`` as a real process: the nightly fan-out and the reaper each run in their
own loop, so a reaper stuck on a lock never delays the fan-out's rounds, and SIGTERM or
Ctrl-C stops the process even then (docs/operations.md "The cron process").

The test process plays the operator: it starts the cron process, watches the database
(nightly runs queued for a due firm) and signals it. The reaper is held inside the cron
process by a stand-in that waits for a file the test never creates (the stand-in of a
round blocked on a row lock).
"""
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from app.models import SyncRun, Trigger
from tests.fixtures_worker import ROOT

pytestmark = pytest.mark.slow

#: the cron process, with the reaper replaced by one that blocks until ``<dir>/release`` exists
STUCK_REAPER_CRON = """
import sys, time
from pathlib import Path
import jobs.reaper

here = Path(sys.argv[1])

def stuck_reap(now=None):
    (here / "reaper-entered").touch()
    deadline = time.monotonic() + 120  # bounded: the test never waits that long
    while not (here / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"reaped": [], "retries": [], "requeued": [], "succeeded": [], "skipped": []}

jobs.reaper.reap = stuck_reap
from flask.cli import main
sys.argv = ["flask", "--app", "app:create_app", "sync", "cron", "--interval", "1"]
main()
"""


@pytest.fixture
def due_firm(db, firm):
    """The test firm, whose night has begun (its nightly moment is midnight UTC)."""
    firm.timezone, firm.nightly_time = "UTC", "00:00"
    db.session.commit()
    return firm


@pytest.fixture
def cron_process(workers, tmp_path):
    """``cron_process(script=None)`` starts a cron process (``flask sync cron --interval 1``, or
    ``script`` run with ``tmp_path`` as its argument) on the test's database and Redis; it is
    killed after the test if still running."""
    started = []

    def _start(script=None):
        env = workers.env()
        env["FIRMSYNC_CRON_STOP_GRACE_SECONDS"] = "1"
        args = ([sys.executable, "-c", script, str(tmp_path)] if script else
                [sys.executable, "-m", "flask", "--app", "app:create_app", "sync", "cron", "--interval", "1"])
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def nightly_run_of(db, dossier_id):
    db.session.expire_all()
    return db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id,
                                                    SyncRun.trigger == Trigger.NIGHTLY)).first()


def wait_for(predicate, proc, what, timeout=30):
    """Poll ``predicate`` while the cron process lives (its output in the failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}\n" + proc.communicate(timeout=10)[0].decode(errors="replace"))


def test_a_stuck_reaper_does_not_stop_the_nightly_rounds_and_sigterm_still_stops_cron(
        db, due_firm, linked_dossier, cron_process, tmp_path):
    first = linked_dossier(name="Bakkerij Peeters")
    proc = cron_process(STUCK_REAPER_CRON)
    wait_for(lambda: (tmp_path / "reaper-entered").exists(), proc, "the reaper's first round")
    wait_for(lambda: nightly_run_of(db, first.id), proc, "the fan-out to queue tonight's run")
    # a file linked after the first fan-out round: only a later round (the reaper still stuck) queues it
    second = linked_dossier(name="Garage Claes", reference="C2")
    wait_for(lambda: nightly_run_of(db, second.id), proc, "a later fan-out round")
    assert not (tmp_path / "release").exists()  # the reaper has been stuck all along

    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert proc.returncode == 0, output
    assert "the reap round did not end in time" in output and "cron stopped" in output


def test_ctrl_c_stops_both_loops(db, due_firm, linked_dossier, cron_process):
    dossier = linked_dossier()
    proc = cron_process()
    wait_for(lambda: nightly_run_of(db, dossier.id), proc, "the fan-out's first round")
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert proc.returncode == 0, output
    assert "cron stopped" in output and "did not end in time" not in output
