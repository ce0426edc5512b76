"""``python -m benchmarks.worker_process --report FILE [--keep-budgets | --xero-budget N,S]
[--with-scheduler] [--forever]``:
a real Firmsync worker (:class:`jobs.worker.FirmsyncWorker`, forking a work horse per job)
in burst mode, that writes its peak memory and its start-up's CPU seconds (before the first
job) to ``FILE`` (JSON) when the queues are empty.

The application comes from the environment (``FIRMSYNC_ENV``, ``DATABASE_URL``,
``REDIS_URL``, ``FIRMSYNC_INSTANCE_PATH``), as for ``flask worker``.

Unless ``--keep-budgets``, Xero's client-side API budget (60 calls a minute per
organisation) is lifted in this process: the throughput measures want Firmsync's own speed,
not Xero's budget. The pacing measure gives scaled-down ones (``--xero-budget 6,6,60``: 6 calls
per organisation and 60 per connection in any 6 seconds).

``--sleep-log FILE`` appends one line per sleep of the HTTP client (``connectors/http.py``)
to ``FILE``: ``budget SECONDS`` for a wait on an API budget, ``retry SECONDS`` for a
Retry-After or backoff wait. The work horses are forked from this process and inherit the
counting; ``O_APPEND`` writes of one short line are atomic, so every process appends to the
same file and a horse killed mid-job loses nothing written before.
"""
import argparse
import dataclasses
import json
import os
import resource
import sys
import time

#: the real sleep, before :func:`count_client_sleeps` replaces ``time.sleep``
_real_sleep = time.sleep


def count_client_sleeps(path):
    """Replace ``time.sleep`` in this process (and the horses it forks) by one that logs the
    sleeps called from ``connectors/http.py``; must run before ``connectors.http`` is imported
    (its clients take ``sleep=time.sleep`` as a default argument)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def sleep(seconds):
        caller = sys._getframe(1)
        if caller.f_code.co_filename.endswith(os.path.join("connectors", "http.py")):
            kind = "budget" if caller.f_code.co_name == "_wait_for_budget" else "retry"
            os.write(fd, f"{kind} {float(seconds):.6f}\n".encode())
        _real_sleep(seconds)

    time.sleep = sleep


def read_sleep_log(path):
    """``{"budget": seconds, "retry": seconds, "budget_sleeps": count}`` from a ``--sleep-log`` file."""
    totals = {"budget": 0.0, "retry": 0.0, "budget_sleeps": 0}
    try:
        text = open(path).read()
    except FileNotFoundError:
        return totals
    for line in text.splitlines():
        kind, seconds = line.split()
        totals[kind] += float(seconds)
        totals["budget_sleeps"] += kind == "budget"
    return totals


def set_xero_budget(*budgets):
    """Replace Xero's client-side budgets in this process (the worker's connectors read them)."""
    from connectors.xero import Xero

    Xero.spec = dataclasses.replace(Xero.spec, rate_budgets=budgets)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--keep-budgets", action="store_true")
    parser.add_argument("--with-scheduler", action="store_true")
    parser.add_argument("--xero-budget", default=None, help="CALLS,SECONDS[,CONNECTION_CALLS]: scaled-down Xero budgets "
                                                                  "per organisation (and per connection)")
    parser.add_argument("--forever", action="store_true", help="not burst: run until stopped (SIGTERM)")
    parser.add_argument("--sleep-log", default=None, help="append the HTTP client's sleeps to this file")
    args = parser.parse_args(argv)
    if args.sleep_log:  # before anything imports connectors.http (see count_client_sleeps)
        count_client_sleeps(args.sleep_log)
    from connectors.base import RateBudget

    if args.xero_budget:
        calls, seconds, *connection = (int(n) for n in args.xero_budget.split(","))
        budgets = [RateBudget(per_minute=calls, window_seconds=seconds, per="tenant")]
        if connection:
            budgets.append(RateBudget(per_minute=connection[0], window_seconds=seconds, per="connection"))
        set_xero_budget(*budgets)
    elif not args.keep_budgets:
        set_xero_budget(RateBudget(per="tenant"))
    from app import create_app
    from jobs.worker import make_worker

    app = create_app()
    started = resource.getrusage(resource.RUSAGE_SELF)  # the start-up's CPU (imports, app), before any job
    with app.app_context():
        make_worker().work(burst=not args.forever, with_scheduler=args.with_scheduler, logging_level="WARNING")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    with open(args.report, "w") as out:
        json.dump({"horse_peak_rss_kb": children.ru_maxrss, "worker_peak_rss_kb": own.ru_maxrss,
                   "startup_cpu_seconds": started.ru_utime + started.ru_stime}, out)


if __name__ == "__main__":
    main()
