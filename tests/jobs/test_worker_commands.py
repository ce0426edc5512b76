"""A worker's command channel (RQ's stop and kill-horse commands) never holds up its shutdown."""
import threading
import time

from redis import Redis

from jobs.worker import FirmsyncWorker, make_worker


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
