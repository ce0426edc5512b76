"""The console screens of the API: tokens (shown once, revocable) and webhooks (administrators only)."""
import re

from sqlalchemy import select

from app.extensions import db
from app.models import ApiToken, AuditEvent, WebhookDelivery, WebhookEndpoint
from app.services import webhooks
from app.services.queues import MAINTENANCE_QUEUE, get_queue
from tests.api.api_world import token_for
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)


def test_an_administrator_creates_a_token_shown_once_and_revokes_it(app, client):
    world = build_world()
    token_for(world.beta, ("read",), admin_id=world.user_admin_b)  # firm B's token: never listed in A
    log_in(client, "admin")
    answer = client.post("/admin/api-tokens/new/", data={
        "name": "BI tool", "scopes": ["read", "sync"], "group_id": "0", "user_id": "0",
        "csrf_token": csrf_token(client)}, follow_redirects=True)
    page = answer.get_data(as_text=True)
    text = re.search(r"(fsk_[A-Za-z0-9_-]{40,})", page).group(1)
    assert client.get("/api/v1/dossiers").status_code == 401  # the console's cookie is no API credential
    assert client.get("/api/v1/dossiers", headers={"Authorization": f"Bearer {text}"}).status_code == 200
    listing = client.get("/admin/api-tokens/").get_data(as_text=True)
    assert text not in listing and text[:10] in listing and "BI tool" in listing
    token = db.session.scalar(select(ApiToken).where(ApiToken.firm_id == world.alpha))
    assert token.scopes == "read sync" and token.created_by_id == world.user_admin
    assert db.session.scalar(select(ApiToken).where(ApiToken.firm_id == world.beta)).prefix not in listing
    response = client.post("/admin/api-tokens/action/", data={"action": "revoke", "rowid": str(token.id),
                                                               "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert client.get("/api/v1/dossiers", headers={"Authorization": f"Bearer {text}"}).status_code == 401
    actions = set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.firm_id == world.alpha)))
    assert {"api_token.create", "api_token.revoke"} <= actions


def test_a_token_of_another_firm_cannot_be_revoked_from_here(app, client):
    world = build_world()
    token_for(world.beta, ("read",), admin_id=world.user_admin_b)
    b_token = db.session.scalar(select(ApiToken).where(ApiToken.firm_id == world.beta))
    log_in(client, "admin")
    client.post("/admin/api-tokens/action/", data={"action": "revoke", "rowid": str(b_token.id),
                                                   "csrf_token": csrf_token(client)})
    db.session.expire_all()
    assert db.session.get(ApiToken, b_token.id).revoked_at is None


def test_only_administrators_reach_the_api_screens(app, client):
    build_world()
    for role in ("staff", "external"):
        browser = log_in(app.test_client(), role)
        for url in ("/admin/api-tokens/", "/admin/api-tokens/new/", "/admin/webhooks/", "/admin/webhook-deliveries/"):
            assert browser.get(url).status_code == 403, (role, url)


def test_webhook_endpoint_created_in_the_console_and_a_test_event_queued(app, client):
    world = build_world()
    log_in(client, "admin")
    page = client.post("/admin/webhooks/new/", data={
        "url": "https://hooks.example.test/firmsync", "events": ["sync.failed"], "csrf_token": csrf_token(client)},
        follow_redirects=True).get_data(as_text=True)
    secret = re.search(r"(whsec_[A-Za-z0-9_-]{40,})", page).group(1)
    endpoint = db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.firm_id == world.alpha))
    assert endpoint.secret == secret and secret not in client.get("/admin/webhooks/").get_data(as_text=True)
    client.post("/admin/webhooks/action/", data={"action": "send_test", "rowid": str(endpoint.id),
                                                 "csrf_token": csrf_token(client)})
    delivery = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    assert delivery.event == "test" and delivery.status == "pending"
    assert webhooks.queued_drain(endpoint.id) in get_queue(MAINTENANCE_QUEUE).job_ids
    client.post("/admin/webhook-deliveries/action/", data={"action": "redeliver", "rowid": str(delivery.id),
                                                           "csrf_token": csrf_token(client)})
    assert len(db.session.scalars(select(WebhookDelivery)).all()) == 2
