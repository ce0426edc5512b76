"""Firmsync's job pipeline (ARCHITECTURE sections 1 and 6).

* :mod:`jobs.triggers` commits a :class:`app.models.SyncRun` and enqueues it;
* :mod:`jobs.sync` is the job itself (``jobs.sync.run(run_id)``);
* :mod:`jobs.queues` names the RQ queues and the deterministic job ids;
* :mod:`jobs.locks` holds the Redis locks (one sync per dossier, one token refresh per
  connection) and the run heartbeats;
* :mod:`jobs.worker` runs jobs inside a Flask application context;
* :mod:`jobs.reaper` and :mod:`jobs.nightly` are the maintenance and scheduling jobs,
  :mod:`jobs.cron` their ``rq cron`` configuration, :mod:`jobs.cli` the ``flask`` commands.

Jobs take ids, never objects. Nothing here runs at import time.
"""
