"""RQ workers that run Firmsync jobs inside a Flask application context.

Two ways to start one. Without queue names a worker listens to ``people``, ``sync``,
``default`` and ``backfill``, in that order (``RQ_QUEUES``; docs/deployment.md tells how to
dedicate workers to one queue):

* ``flask worker [--burst] [--with-scheduler]`` (:mod:`jobs.cli`): the application is the
  one the ``flask`` command loaded;
* plain RQ: ``rq worker --url $REDIS_URL --with-scheduler -w jobs.worker.FirmsyncWorker
  people sync default backfill`` (or ``--job-class jobs.worker.AppJob``): the application is created once per
  process from the environment (``FIRMSYNC_ENV``, ``DATABASE_URL``, ``REDIS_URL``...).

The scheduler (``--with-scheduler``) is needed for deferred runs and retries: they are
scheduled jobs that RQ moves back to the queue when their time comes.
"""
import gc
import os

from flask import current_app, has_app_context
from rq import Worker
from rq.job import Job

_process_app = None
_engine_pid = None

#: the garbage collector's thresholds in a work horse (Python's are 700, 10, 10): a young
#: collection after 50,000 more container objects than were freed (see
#: :meth:`FirmsyncWorker.main_work_horse`)
HORSE_GC_THRESHOLDS = (50_000, 20, 20)


def job_app():
    """The Flask app jobs run in: the current one if a context is active, else one per process."""
    global _process_app
    if has_app_context():
        return current_app._get_current_object()
    if _process_app is None:
        from app import create_app

        _process_app = create_app()
    return _process_app


class AppJob(Job):
    """An RQ job that performs inside an application context.

    In a forked work horse, the database engine's pooled connections were opened by the
    parent process: they are dropped (not closed, the parent still owns them) before the
    first job of the process, as SQLAlchemy recommends for ``fork``.
    """

    def perform(self):
        app = job_app()
        with app.app_context():
            _drop_inherited_connections()
            return super().perform()


def _drop_inherited_connections():
    global _engine_pid
    if _engine_pid != os.getpid():
        from app.extensions import db

        db.engine.dispose(close=False)
        _engine_pid = os.getpid()


class FirmsyncWorker(Worker):
    """RQ's forking worker with :class:`AppJob` as its job class and JSON jobs
    (:data:`app.services.queues.JOB_SERIALIZER`), also when started by plain ``rq worker -w``."""

    job_class = AppJob
    #: seconds the command listener (RQ's stop and kill-horse commands) waits for Redis before
    #: it looks again whether the worker is quitting
    COMMAND_POLL_SECONDS = 1

    def __init__(self, *args, **kwargs):
        from app.services.queues import JOB_SERIALIZER

        kwargs.setdefault("serializer", JOB_SERIALIZER)
        super().__init__(*args, **kwargs)

    def work(self, *args, **kwargs):
        """Create (or take) the application once in the parent so work horses inherit it."""
        job_app()
        return super().work(*args, **kwargs)

    def main_work_horse(self, job, queue):
        """The forked work horse, before its one job: what it inherited from the worker (the
        application and every imported module, about 190,000 objects) is frozen out of the
        garbage collector, and the collector waits for :data:`HORSE_GC_THRESHOLDS`.

        A sync allocates and frees objects by the million (pages, records, rows), with few
        reference cycles: Python's default thresholds ran 850 young, 77 middle and 5 full
        collections in a 100,000-line Xero sync, 0.8 s of the work horse's CPU (about a
        sixth), every full one walking the inherited objects too; with these, 3 young ones
        and 0.02 s (``docs/benchmarks.md``, issue #21, fifth session). The horse ends with its
        job, so nothing it froze needs collecting; the worker's own collector is untouched.
        """
        gc.freeze()
        gc.set_threshold(*HORSE_GC_THRESHOLDS)
        return super().main_work_horse(job, queue)

    def subscribe(self):
        """RQ's command channel, with a listener that wakes every :attr:`COMMAND_POLL_SECONDS`.

        RQ's own listener waits up to 60 s at a time, and redis-py (from 8) joins it when the
        worker quits: when the listener had already read the channel's unsubscription, the
        worker took a whole minute to stop (seen on burst workers and on every SIGTERM that hit
        that moment; rq 3.0, redis-py 8.2).
        """
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=self.COMMAND_POLL_SECONDS, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)


def make_worker(queue_names=None, connection=None, name=None):
    """A :class:`FirmsyncWorker` on ``queue_names`` (default ``RQ_QUEUES``: every queue, highest
    priority first) and the app's Redis. RQ takes the next job from the first of its queues
    that has one."""
    from app.redis_connection import redis_connection
    from app.services.queues import WORKER_QUEUES, get_queue

    connection = connection or redis_connection()
    names = queue_names or current_app.config.get("RQ_QUEUES") or list(WORKER_QUEUES)
    if isinstance(names, str):  # FIRMSYNC_RQ_QUEUES="people sync" from the environment
        names = names.replace(",", " ").split()
    queues = [get_queue(n, connection=connection) for n in names]
    return FirmsyncWorker(queues, connection=connection, name=name, job_class=AppJob)
