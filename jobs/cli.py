"""Commands of the job pipeline.

* ``flask worker [--burst] [--with-scheduler/--without-scheduler] [QUEUE...]`` runs a
  Firmsync RQ worker (queues from ``RQ_QUEUES``: ``people sync default backfill``, in that order);
* ``flask sync now --dossier ID`` queues a sync of one dossier (operators; no role check);
* ``flask sync nightly`` queues tonight's runs (idempotent);
* ``flask sync reap`` marks interrupted runs failed and queues them again;
* ``flask sync cancel --run ID`` cancels a run;
* ``flask sync cron`` loops: nightly fan-out and reaper every minute, each in its own thread
  (neither can delay the other), until Ctrl-C or SIGTERM.

Flask finds these commands through the ``flask.commands`` entry points of ``pyproject.toml``.
"""
import logging
import signal
import threading
import time

import click
from flask.cli import AppGroup, with_appcontext

sync_cli = AppGroup("sync", help="Sync runs: queue, schedule, reap.")
log = logging.getLogger("firmsync.jobs")


@click.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
              help="Also move scheduled jobs (deferred runs, retries) back to their queue.")
@click.option("--name", default=None, help="Worker name (default: random).")
@click.option("--max-jobs", type=int, default=None, help="Quit after this many jobs.")
@click.option("--logging-level", default="INFO", show_default=True)
@with_appcontext
def worker_command(queues, burst, with_scheduler, name, max_jobs, logging_level):
    """Run a sync worker (jobs run inside this application).

    QUEUES, highest priority first, default: people sync default backfill.
    """
    from jobs.worker import make_worker

    worker = make_worker(list(queues) or None, name=name)
    worker.work(burst=burst, with_scheduler=with_scheduler, max_jobs=max_jobs, logging_level=logging_level)


@sync_cli.command("now")
@click.option("--dossier", "dossier_id", type=int, required=True, help="Dossier id.")
def sync_now(dossier_id):
    """Queue a sync of one dossier now (no role check: operators only)."""
    from app.services.syncs import request_sync

    run = request_sync(dossier_id, "manual")
    if run is None:
        raise click.ClickException(f"dossier {dossier_id} has no active sync link")
    click.echo(f"run {run.id} is {run.status}")


@sync_cli.command("nightly")
def sync_nightly():
    """Queue tonight's nightly runs (running it again the same night queues nothing)."""
    from jobs.nightly import fan_out

    click.echo(f"{len(fan_out())} nightly run(s) queued")


@sync_cli.command("reap")
def sync_reap():
    """Mark interrupted runs failed and queue them again."""
    from jobs.reaper import reap

    result = reap()
    click.echo(f"{len(result['reaped'])} interrupted run(s) reaped, {len(result['retries'])} queued again, "
               f"{len(result['requeued'])} lost job(s) re-enqueued")


@sync_cli.command("cancel")
@click.option("--run", "run_id", type=int, required=True)
def sync_cancel(run_id):
    """Cancel a queued, deferred or running run."""
    from app.services.syncs import cancel_run

    run = cancel_run(run_id)
    if run is None:
        raise click.ClickException(f"no run {run_id}")
    click.echo(f"run {run.id} is {run.status}" + (" (cancellation requested)" if run.cancel_requested else ""))


@sync_cli.command("cron")
@click.option("--interval", type=int, default=60, show_default=True, help="Seconds between two rounds.")
@click.option("--rounds", type=int, default=None,
              help="Stop after this many rounds of each task (default: until Ctrl-C).")
def sync_cron(interval, rounds):
    """Run the nightly fan-out and the reaper every INTERVAL seconds until stopped.

    Each task has its own loop in its own thread, with its own application context and
    database session, so a round stuck on a lock (or a slow fan-out) never delays the
    other's rounds. SIGTERM or Ctrl-C stops both: each finishes the round at hand, for at
    most ``CRON_STOP_GRACE_SECONDS`` (a task stuck longer is left behind as the process ends).
    """
    from flask import current_app

    from app import locks
    from jobs.nightly import fan_out
    from jobs.reaper import reap

    app = current_app._get_current_object()
    stopping = threading.Event()
    loops = [CronLoop(app, name, task, interval, rounds, stopping) for name, task in (("nightly", fan_out),
                                                                                        ("reap", reap))]
    # the handlers only note the signal: setting the event inside a handler could deadlock on
    # the lock the interrupted code holds, and a KeyboardInterrupt could land inside one
    signalled = []
    previous = {number: signal.signal(number, lambda *_: signalled.append(True))
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        for loop in loops:
            loop.start()
        while not signalled and any(loop.is_alive() for loop in loops):
            time.sleep(0.2)
    finally:
        stopping.set()
        for number, handler in previous.items():
            signal.signal(number, handler)
        grace = time.monotonic() + locks.setting("CRON_STOP_GRACE_SECONDS", 10.0)
        for loop in loops:
            loop.join(max(0.0, grace - time.monotonic()))
            if loop.is_alive():
                log.warning("cron: the %s round did not end in time; stopping without it", loop.task_name)
    click.echo("cron stopped")


class CronLoop(threading.Thread):
    """One task of ``flask sync cron`` (the nightly fan-out or the reaper) in its own loop.

    It runs ``task()`` every ``interval`` seconds (``rounds`` times, or until ``stopping`` is
    set) inside its own application context, so it has its own database session: the other
    task's rounds go on whatever this one waits for. A failing round is logged and rolled
    back; the next round runs as usual. A daemon thread: a round stuck past the stop grace
    does not keep the process alive.
    """

    def __init__(self, app, task_name, task, interval, rounds, stopping):
        super().__init__(name=f"cron-{task_name}", daemon=True)
        self.app, self.task_name, self.task = app, task_name, task
        self.interval, self.rounds, self.stopping = interval, rounds, stopping
        #: rounds completed so far (for logs and tests)
        self.done = 0

    def run(self):
        from app.extensions import db

        while not self.stopping.is_set() and (self.rounds is None or self.done < self.rounds):
            with self.app.app_context():
                try:
                    self.task()
                except Exception:  # one bad round must not stop the loop
                    db.session.rollback()
                    log.exception("cron: %s failed", self.task_name)
                finally:
                    db.session.remove()
            self.done += 1
            if self.rounds is not None and self.done >= self.rounds:
                break
            self.stopping.wait(self.interval)
