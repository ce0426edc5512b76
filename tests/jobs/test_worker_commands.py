"""A worker's command channel (RQ's stop and kill-horse commands) never holds up its shutdown; its work
horses tune their garbage collector."""
import gc
import os
import threading
import time

from redis import Redis
from rq.job import Job

from app.services.queues import JOB_SERIALIZER, get_queue
from jobs.worker import HORSE_GC_THRESHOLDS, FirmsyncWorker, make_worker


def test_a_quitting_worker_is_not_held_by_its_command_listener(app, redis_url):
    worker = make_worker(connection=Redis.from_url(redis_url))
    assert isinstance(worker, FirmsyncWorker)
    worker.subscribe()
    # the moment that held workers for a minute: the listener has read the channel's
    # unsubscription and waits for a subscription that will not come
    worker.pubsub.unsubscribe()
    deadline = time.monotonic() + 10
    while worker.pubsub.subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not worker.pubsub.subscribed

    quitting = threading.Thread(target=worker.unsubscribe)  # what RQ's teardown does
    quitting.start()
    quitting.join(timeout=10)  # RQ's own listener would wait 60 s here
    assert not quitting.is_alive()
    assert not worker.pubsub_thread.is_alive()


def horse_gc_state():
    """A job: the garbage collector's state in the process that runs it."""
    return {"frozen": gc.get_freeze_count(), "thresholds": list(gc.get_threshold()), "pid": os.getpid()}


def test_a_work_horse_freezes_what_it_inherited_and_collects_rarely(app, redis_url):
    connection = Redis.from_url(redis_url)
    queue = get_queue("default", connection=connection)
    job = queue.enqueue(horse_gc_state)
    before = (gc.get_freeze_count(), gc.get_threshold())

    make_worker(["default"], connection=connection).work(burst=True)  # forks a work horse for the job

    state = Job.fetch(job.id, connection=connection, serializer=JOB_SERIALIZER).return_value()
    assert state["pid"] != os.getpid()  # it ran in a forked horse
    assert state["frozen"] > 10_000  # the application and the modules it imported
    assert state["thresholds"] == list(HORSE_GC_THRESHOLDS)
    assert (gc.get_freeze_count(), gc.get_threshold()) == before  # the worker's own collector is untouched
