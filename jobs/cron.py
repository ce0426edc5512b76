"""``rq cron`` configuration file: the nightly fan-out and the reaper, every minute.

Run exactly one cron process::

    rq cron --url "$REDIS_URL" jobs/cron.py

This file is a configuration, loaded only by ``rq cron`` (registering is its purpose; the
application never imports it). It enqueues :func:`jobs.nightly.nightly_job` and
:func:`jobs.reaper.reap_job` on the ``default`` queue; a Firmsync worker
(``flask worker``, or ``rq worker -w jobs.worker.FirmsyncWorker sync default``) runs them
inside the application. Both are idempotent, so an extra run is harmless. They are two
separate jobs, each with its own timeout, and neither waits long on a database row lock, so
one stuck round cannot stop the other. Without
``rq cron``: ``flask sync cron`` does the same in one process, or system cron calls
``flask sync nightly`` and ``flask sync reap``.
"""
from rq import cron

from jobs.nightly import nightly_job
from app.services.queues import MAINTENANCE_QUEUE
from jobs.reaper import reap_job

cron.register(nightly_job, MAINTENANCE_QUEUE, interval=60, job_timeout=600, result_ttl=3600)
cron.register(reap_job, MAINTENANCE_QUEUE, interval=60, job_timeout=120, result_ttl=3600)
