"""Webhook drains, run in-process against a local receiver: a burst of events queues one job per
endpoint, one drain sends every due delivery (each signed and logged on its own), a failing
delivery waits alone for its retry, and two drains of one endpoint never send at once.
(The retry through a real worker and its scheduler: tests/api/test_webhooks.py.)"""
import json
import threading
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from app.access import actor_for
from app.extensions import db
from app.models import User, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.services import webhooks
from app.services.queues import MAINTENANCE_QUEUE, get_queue
from tests.api.test_webhooks import verify
from tests.console_world import build_world
from tests.threaded_server import ThreadedServer


class Receiver:
    """Answers 204, except 503 for the event numbers in ``.refuse``; records every request."""

    def __init__(self):
        self.received, self.refuse, self.lock = [], set(), threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        n = json.loads(body)["data"].get("n")
        with self.lock:
            self.received.append({"body": body, "signature": environ.get("HTTP_FIRMSYNC_SIGNATURE"),
                                  "delivery": environ.get("HTTP_FIRMSYNC_DELIVERY"), "n": n})
        start_response("503 Service Unavailable" if n in self.refuse else "204 No Content", [])
        return [b""]


@pytest.fixture
def hook(app):
    """``(endpoint, secret, receiver)``: an endpoint of firm Alpha at a local receiver."""
    world = build_world()
    receiver = Receiver()
    server = ThreadedServer(receiver, "webhook-drain-receiver").start()
    admin = actor_for(db.session.get(User, world.user_admin), world.alpha)
    endpoint, secret = webhooks.create_endpoint(admin, server.url + "/in", ["sync.succeeded"])
    yield endpoint, secret, receiver
    server.stop()


def emit(endpoint, count):
    return [webhooks.emit(endpoint.firm_id, "sync.succeeded", {"n": n})[0] for n in range(count)]


def rows(ids):
    db.session.expire_all()
    return {row.payload["data"]["n"]: row for row in db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))}


def test_a_burst_queues_one_drain_which_sends_each_delivery_signed_and_logged(hook):
    endpoint, secret, receiver = hook
    ids = emit(endpoint, 40)
    queued = [job_id for job_id in get_queue(MAINTENANCE_QUEUE).job_ids
              if job_id.startswith(f"webhook-drain-{endpoint.id}-")]
    assert queued == [webhooks.queued_drain(endpoint.id)]  # 40 events, one job

    assert webhooks.drain(endpoint.id) == 40
    assert webhooks.queued_drain(endpoint.id) is None
    by_n = rows(ids)
    assert all(row.status == "delivered" and row.attempts == 1 and row.last_status_code == 204
               for row in by_n.values())
    assert sorted(int(r["delivery"]) for r in receiver.received) == sorted(ids)  # each once
    for request in receiver.received:
        now = int(request["signature"].split(",")[0][2:])
        assert verify(secret, request["signature"], request["body"], now)
        assert json.loads(request["body"])["id"] == by_n[request["n"]].payload["id"]


def test_a_failing_delivery_waits_alone_for_its_retry(hook):
    endpoint, _, receiver = hook
    receiver.refuse = {2}
    ids = emit(endpoint, 5)
    webhooks.drain(endpoint.id)
    by_n = rows(ids)
    assert [n for n, row in by_n.items() if row.status == "delivered"] == [0, 1, 3, 4]
    failing = by_n[2]
    assert failing.status == "pending" and failing.attempts == 1 and failing.last_status_code == 503
    assert failing.next_attempt_at > utcnow() + timedelta(seconds=5)  # the first retry waits 10 s
    scheduled = ScheduledJobRegistry(queue=get_queue(MAINTENANCE_QUEUE)).get_job_ids()
    assert any(job_id.startswith(f"webhook-retry-{endpoint.id}-") for job_id in scheduled)

    assert webhooks.drain(endpoint.id) == 0  # not due yet: nothing sent again
    assert len(receiver.received) == 5
    receiver.refuse = set()
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == failing.id)
                       .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert webhooks.drain(endpoint.id) == 1
    again = rows([failing.id])[2]
    assert again.status == "delivered" and again.attempts == 2


def test_a_drain_sends_nothing_while_another_drain_of_the_endpoint_runs(hook):
    endpoint, _, receiver = hook
    ids = emit(endpoint, 3)
    redis_connection().set(webhooks.lock_key(endpoint.id), "another drain", ex=30)
    assert webhooks.drain(endpoint.id) == 0
    assert receiver.received == [] and all(row.status == "pending" for row in rows(ids).values())
    follow_up = webhooks.queued_drain(endpoint.id)  # it comes back a second later
    assert follow_up in ScheduledJobRegistry(queue=get_queue(MAINTENANCE_QUEUE)).get_job_ids()
    redis_connection().delete(webhooks.lock_key(endpoint.id))
    assert webhooks.drain(endpoint.id) == 3


def test_a_disabled_endpoint_gets_nothing_and_its_deliveries_fail(hook):
    endpoint, _, receiver = hook
    ids = emit(endpoint, 3)
    db.session.get(WebhookEndpoint, endpoint.id).active = False
    db.session.commit()
    assert webhooks.drain(endpoint.id) == 0
    assert receiver.received == []
    assert {(row.status, row.last_response) for row in rows(ids).values()} == {("failed", "The endpoint is disabled.")}


def test_a_refused_address_counts_as_a_failed_attempt_for_each_delivery(hook, app):
    endpoint, _, receiver = hook
    ids = emit(endpoint, 2)
    app.config["ALLOW_PRIVATE_CONNECTOR_HOSTS"] = False  # the loopback receiver is now refused
    assert webhooks.drain(endpoint.id) == 0
    assert receiver.received == []
    assert all(row.status == "pending" and row.attempts == 1 and row.last_status_code is None
               and row.last_response for row in rows(ids).values())
