"""Commands of the job pipeline.

* ``flask worker [--burst] [--with-scheduler/--without-scheduler] [QUEUE...]`` runs a
  Firmsync RQ worker (queues from ``RQ_QUEUES``: ``sync default``);
* ``flask sync now --dossier ID`` queues a sync of one dossier (operators; no role check);
* ``flask sync nightly`` queues tonight's runs (idempotent);
* ``flask sync reap`` marks interrupted runs failed and queues them again;
* ``flask sync cancel --run ID`` cancels a run;
* ``flask sync cron`` loops: nightly fan-out and reaper every minute, until Ctrl-C.

Flask finds these commands through the ``flask.commands`` entry points of ``pyproject.toml``.
"""
import logging
import signal
import time

import click
from flask.cli import AppGroup, with_appcontext

sync_cli = AppGroup("sync", help="Sync runs: queue, schedule, reap.")


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
    """Run a sync worker (jobs run inside this application)."""
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
@click.option("--rounds", type=int, default=None, help="Stop after this many rounds (default: until Ctrl-C).")
def sync_cron(interval, rounds):
    """Run the nightly fan-out and the reaper every INTERVAL seconds until stopped."""
    from app.extensions import db
    from jobs.nightly import fan_out
    from jobs.reaper import reap

    stopping = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    done = 0
    try:
        while not stopping and (rounds is None or done < rounds):
            for name, task in (("nightly", fan_out), ("reap", reap)):
                try:
                    task()
                except Exception:  # one bad round must not stop the loop
                    db.session.rollback()
                    logging.getLogger("firmsync.jobs").exception("cron: %s failed", name)
            db.session.remove()
            done += 1
            deadline = time.monotonic() + interval
            while not stopping and (rounds is None or done < rounds) and time.monotonic() < deadline:
                time.sleep(min(1.0, interval))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("cron stopped")
