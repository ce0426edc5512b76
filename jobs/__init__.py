"""Firmsync's job pipeline (ARCHITECTURE sections 1 and 6).

* :mod:`jobs.sync` is the job itself (``jobs.sync.run(run_id)``), queued by
  :mod:`app.services.syncs` (which commits a :class:`app.models.SyncRun` first) on the
  queues of :mod:`app.services.queues`, writing through :mod:`app.services.bookkeeping`
  under the Redis locks of :mod:`app.locks`;
* :mod:`jobs.worker` runs jobs inside a Flask application context;
* :mod:`jobs.reaper` and :mod:`jobs.nightly` are the maintenance and scheduling jobs,
  :mod:`jobs.cron` their ``rq cron`` configuration, :mod:`jobs.cli` the ``flask`` commands.

Jobs take ids, never objects. Nothing here runs at import time.
"""
