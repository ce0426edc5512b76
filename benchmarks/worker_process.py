"""``python -m benchmarks.worker_process --report FILE [--keep-budgets | --xero-budget N,S]
[--with-scheduler] [--forever]``:
a real Firmsync worker (:class:`jobs.worker.FirmsyncWorker`, forking a work horse per job)
in burst mode, that writes its peak memory to ``FILE`` (JSON) when the queues are empty.

The application comes from the environment (``FIRMSYNC_ENV``, ``DATABASE_URL``,
``REDIS_URL``, ``FIRMSYNC_INSTANCE_PATH``), as for ``flask worker``.

Unless ``--keep-budgets``, Xero's client-side API budget (60 calls a minute per
organisation) is lifted in this process: the throughput measures want Firmsync's own speed,
not Xero's budget. The pacing measure gives scaled-down ones (``--xero-budget 6,6,60``: 6 calls
per organisation and 60 per connection in any 6 seconds).
"""
import argparse
import dataclasses
import json
import resource

from connectors.base import RateBudget


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
    args = parser.parse_args(argv)
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
    with app.app_context():
        make_worker().work(burst=not args.forever, with_scheduler=args.with_scheduler, logging_level="WARNING")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    with open(args.report, "w") as out:
        json.dump({"horse_peak_rss_kb": children.ru_maxrss, "worker_peak_rss_kb": own.ru_maxrss}, out)


if __name__ == "__main__":
    main()
