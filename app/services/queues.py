"""The RQ queues Firmsync uses and the deterministic ids of its jobs.

Sync runs go to the ``sync`` queue; maintenance jobs (nightly fan-out, reaper) started by
``rq cron`` go to ``default``. Every queue is bound to the application's Redis connection
(:func:`app.redis_connection.redis_connection`) and to :class:`jobs.worker.AppJob`, so a
job runs inside an application context whichever worker picks it up.

Jobs are stored as JSON (:data:`JOB_SERIALIZER`), never as pickles: they carry ids and plain
values only, and a pickle read back from Redis could run any code put there. Every queue,
fetch and worker here uses it: fetch jobs with :func:`fetch_job` / :func:`fetch_jobs`.
"""
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from app.redis_connection import redis_connection

SYNC_QUEUE = "sync"
MAINTENANCE_QUEUE = "default"
#: the job class that runs each job inside an application context
APP_JOB = "jobs.worker.AppJob"
#: how jobs, their arguments and results are written to Redis
JOB_SERIALIZER = JSONSerializer


def sync_job_id(run_id):
    """The RQ job id of a sync run: ``sync-run-<run_id>`` (one job per run, ever)."""
    return f"sync-run-{int(run_id)}"


def run_id_from_job_id(job_id):
    """The run id encoded in a sync job id, or None for other jobs."""
    prefix = "sync-run-"
    if job_id and job_id.startswith(prefix) and job_id[len(prefix):].isdigit():
        return int(job_id[len(prefix):])
    return None


def get_queue(name=SYNC_QUEUE, connection=None):
    """The RQ queue ``name`` on the application's Redis (or ``connection``)."""
    # named, not imported: the services sit below the jobs that run them
    return Queue(name, connection=connection or redis_connection(), job_class=APP_JOB, serializer=JOB_SERIALIZER)


def fetch_job(job_id, connection=None):
    """The RQ job ``job_id`` (``NoSuchJobError`` when it is gone)."""
    return Job.fetch(job_id, connection=connection or redis_connection(), serializer=JOB_SERIALIZER)


def fetch_jobs(job_ids, connection=None):
    """The RQ jobs ``job_ids``, None for each one that is gone."""
    return Job.fetch_many(job_ids, connection=connection or redis_connection(), serializer=JOB_SERIALIZER)


def sync_queue():
    """The queue of sync runs."""
    return get_queue(SYNC_QUEUE)
