"""The RQ queues Firmsync uses and the deterministic ids of its jobs.

Sync runs go to one of three queues, by priority (docs/sync-engine.md, "Queues and fairness"):
``people`` (a person asked: sync now, Resync selected, the API), ``sync`` (the night's runs and
system retries; the name of the single queue before, so jobs queued before an upgrade still run)
and ``backfill`` (first syncs, a few per firm at a time). Maintenance jobs (nightly fan-out,
reaper, data checks, webhooks) go to ``default``. Workers listen to :data:`WORKER_QUEUES`, in
that order. Every queue is bound to the application's Redis connection
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
#: runs a person asked for: "sync now", "Resync selected", the API's trigger
PEOPLE_QUEUE = "people"
#: the night's runs and system retries (the name of the one sync queue before issue #21)
NIGHTLY_QUEUE = SYNC_QUEUE
#: first syncs (backfills), released a few per firm at a time (``SYNC_BACKFILL_JOBS_PER_FIRM``)
BACKFILL_QUEUE = "backfill"
#: the sync queues, highest priority first
SYNC_QUEUES = (PEOPLE_QUEUE, NIGHTLY_QUEUE, BACKFILL_QUEUE)
MAINTENANCE_QUEUE = "default"
#: what a worker started without queue names listens to, in this order: maintenance jobs are
#: short and some are due at a time (webhooks, the reaper), so they come before the backfills
WORKER_QUEUES = (PEOPLE_QUEUE, NIGHTLY_QUEUE, MAINTENANCE_QUEUE, BACKFILL_QUEUE)
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


def queue_rank(name):
    """The place of sync queue ``name`` in :data:`SYNC_QUEUES` (0: people first); the nightly
    queue's for a run without one. A run waits in its API budgets' lines at this rank."""
    return SYNC_QUEUES.index(name if name in SYNC_QUEUES else NIGHTLY_QUEUE)


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


def sync_queue(name=NIGHTLY_QUEUE):
    """A queue of sync runs: ``name`` is one of :data:`SYNC_QUEUES` (default: the nightly one)."""
    if name not in SYNC_QUEUES:
        raise ValueError(f"not a sync queue: {name!r}")
    return get_queue(name)
