"""Webhooks: the address policy, signatures, and delivery with retries through a real worker."""
import hashlib
import hmac
import json
import threading

import pytest
from sqlalchemy import select, text

from app.access import actor_for
from app.extensions import db
from app.models import AuditEvent, RunStatus, SyncRun, User, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.services import webhooks
from app.services.outbound import url_refusal
from tests.console_world import build_world
from tests.threaded_server import ThreadedServer


class Receiver:
    """A local HTTP receiver: ``/flaky`` answers 500 once then 200, ``/down`` always 503."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        path = environ["PATH_INFO"]
        with self.lock:
            self.received.append({"path": path, "body": body, "signature": environ.get("HTTP_FIRMSYNC_SIGNATURE"),
                                  "event": environ.get("HTTP_FIRMSYNC_EVENT")})
            flaky_calls = sum(1 for r in self.received if r["path"] == "/flaky")
        status = "200 OK" if path == "/flaky" and flaky_calls > 1 else (
            "500 Internal Server Error" if path == "/flaky" else "503 Service Unavailable")
        start_response(status, [("Content-Type", "text/plain")])
        return [b"thanks" if status.startswith("200") else b"not now"]


def verify(secret, header, body, now, tolerance=300):
    """The check docs/api.md shows a receiver: HMAC-SHA256 of "<t>.<body>", timestamp in the window."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(now - int(parts["t"])) <= tolerance


def test_webhook_addresses_follow_the_outbound_policy(app):
    app.config["ALLOW_PRIVATE_CONNECTOR_HOSTS"] = False
    assert url_refusal("http://127.0.0.1:8000/hook")
    assert url_refusal("https://10.0.0.5/hook")
    assert url_refusal("https://[::1]/hook")
    assert url_refusal("http://93.184.216.34/hook")  # plain http to a public host: refused too
    assert url_refusal("ftp://93.184.216.34/hook")
    assert url_refusal("https://user:pw@93.184.216.34/hook")
    assert url_refusal("https://93.184.216.34/hook") is None


def test_only_an_administrator_adds_endpoints_and_a_refused_address_is_not_saved(app):
    world = build_world()
    staff = actor_for(db.session.get(User, world.user_staff), world.alpha)
    with pytest.raises(webhooks.WebhookError):
        webhooks.create_endpoint(staff, "https://93.184.216.34/hook", ["sync.failed"])
    app.config["ALLOW_PRIVATE_CONNECTOR_HOSTS"] = False
    admin = actor_for(db.session.get(User, world.user_admin), world.alpha)
    with pytest.raises(webhooks.WebhookError):
        webhooks.create_endpoint(admin, "https://127.0.0.1/hook", ["sync.failed"])
    with pytest.raises(webhooks.WebhookError):
        webhooks.create_endpoint(admin, "https://93.184.216.34/hook", ["no.such.event"])
    assert db.session.scalar(select(WebhookEndpoint.id)) is None
    endpoint, secret = webhooks.create_endpoint(admin, "https://93.184.216.34/hook", ["sync.failed"])
    assert secret.startswith("whsec_")
    stored = db.session.execute(text("SELECT secret FROM webhook_endpoint")).scalar_one()
    assert secret not in str(stored) and len(str(stored)) > len(secret)  # encrypted at rest


@pytest.mark.slow
def test_deliveries_are_signed_retried_then_the_endpoint_is_disabled(app, workers):
    world = build_world()
    receiver = Receiver()
    server = ThreadedServer(receiver, "webhook-receiver").start()
    try:
        admin = actor_for(db.session.get(User, world.user_admin), world.alpha)
        flaky, secret = webhooks.create_endpoint(admin, server.url + "/flaky", ["sync.succeeded"])
        down, _ = webhooks.create_endpoint(admin, server.url + "/down", ["sync.succeeded", "sync.failed"])
        not_subscribed, _ = webhooks.create_endpoint(admin, server.url + "/other", ["sync.failed"])
        run = SyncRun(firm_id=world.alpha, dossier_id=world.a_public, link_id=world.a_link,
                      status=RunStatus.SUCCEEDED, finished_at=utcnow())
        db.session.add(run)
        db.session.commit()
        delivery_ids = webhooks.sync_finished(run.id)
        assert len(delivery_ids) == 2  # the endpoint not subscribed to sync.succeeded gets nothing

        workers.start(WEBHOOK_RETRY_SECONDS="1")

        def settled():
            db.session.expire_all()
            rows = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids))).all()
            return all(row.status != "pending" for row in rows) and rows

        rows = {row.endpoint_id: row for row in workers.wait_for(settled, timeout=60, what="both deliveries")}
        assert rows[flaky.id].status == "delivered" and rows[flaky.id].attempts == 2
        assert rows[flaky.id].last_status_code == 200 and rows[flaky.id].last_response == "thanks"
        assert rows[down.id].status == "failed" and rows[down.id].attempts == 2
        assert rows[down.id].last_status_code == 503
        db.session.expire_all()
        assert db.session.get(WebhookEndpoint, down.id).active is False
        assert db.session.get(WebhookEndpoint, flaky.id).active is True
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook.disabled",
                                                          AuditEvent.firm_id == world.alpha)) is not None

        flaky_requests = [r for r in receiver.received if r["path"] == "/flaky"]
        assert len(flaky_requests) == 2 and not any(r["path"] == "/other" for r in receiver.received)
        last = flaky_requests[-1]
        payload = json.loads(last["body"])
        assert last["event"] == "sync.succeeded" and payload["data"]["sync_run_id"] == run.id
        now = int(last["signature"].split(",")[0][2:])
        assert verify(secret, last["signature"], last["body"], now)
        assert not verify(secret, last["signature"], last["body"] + b" ", now)  # a changed body fails
        assert not verify(secret, last["signature"], last["body"], now + 3600)  # outside the replay window
    finally:
        server.stop()
