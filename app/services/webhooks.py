"""Webhooks: a firm's endpoints hear about sync outcomes and other events (docs/api.md).

* :func:`create_endpoint` (administrators) stores the URL (checked by
  :func:`app.services.outbound.url_refusal`), the events and a random signing secret
  (encrypted at rest, shown once).
* :func:`emit` records one :class:`WebhookDelivery` per subscribed, active endpoint of the
  firm, commits, and enqueues ``jobs.webhooks.deliver(delivery_id)`` for each;
  :func:`sync_finished` is the sync job's one call.
* :func:`attempt` sends one delivery: a JSON POST signed with
  ``Firmsync-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. A 2xx answer
  delivers it; anything else is retried after :func:`retry_schedule` (about a day in all),
  after which the delivery fails, the endpoint is disabled and the firm's audit trail says so.
"""
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta

import requests
from flask import current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import CompanyProfile, DossierLink, Role, RunStatus, SyncRun, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.services.outbound import url_refusal
from app.services.queues import MAINTENANCE_QUEUE, get_queue

log = logging.getLogger("firmsync.webhooks")

EVENTS = ("sync.succeeded", "sync.failed", "sync.deferred", "connection.needs_reconnect", "dossier.linked",
          "company_profile.changed", "test")
#: run status -> event
RUN_EVENTS = {RunStatus.SUCCEEDED: "sync.succeeded", RunStatus.FAILED: "sync.failed",
              RunStatus.DEFERRED: "sync.deferred", RunStatus.NEEDS_RECONNECT: "connection.needs_reconnect"}
#: seconds before each retry: 10 s, 1 min, 5 min, 30 min, 2 h, 6 h, 15 h (about a day in all)
DEFAULT_RETRY_SECONDS = (10, 60, 300, 1800, 7200, 21600, 54000)
DELIVER_JOB = "jobs.webhooks.deliver"
TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "Firmsync-Signature"


class WebhookError(ValueError):
    """An endpoint cannot be saved as asked (message for the administrator)."""


def retry_schedule():
    """Seconds before each retry (setting ``WEBHOOK_RETRY_SECONDS``, a list or "10,60,...")."""
    value = current_app.config.get("WEBHOOK_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)
    if isinstance(value, str):
        value = [int(part) for part in value.split(",") if part.strip()]
    return [int(seconds) for seconds in value]


def sign(secret, timestamp, body):
    """The ``Firmsync-Signature`` value of ``body`` (bytes) sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={digest}"


def create_endpoint(actor, url, events):
    """Add an endpoint to ``actor``'s firm; return ``(endpoint, secret)`` after committing."""
    if actor is None or actor.role != Role.ADMIN:
        raise WebhookError("Only an administrator of the firm may add webhook endpoints.")
    events = sorted(set(events))
    if not events or not set(events) <= set(EVENTS):
        raise WebhookError("Choose at least one event.")
    url = (url or "").strip()
    refusal = url_refusal(url) if len(url) <= 500 else "The address is longer than 500 characters."
    if refusal:
        raise WebhookError(refusal)
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(firm_id=actor.firm_id, url=url, events=" ".join(events), secret=secret)
    db.session.add(endpoint)
    db.session.flush()
    audit.record(actor, "webhook.create", endpoint, summary=f"Webhook endpoint {url} ({', '.join(events)})")
    db.session.commit()
    return endpoint, secret


def emit(firm_id, event, data, *, endpoint_ids=None):
    """Record and enqueue a delivery of ``event`` to every active endpoint of the firm subscribed to it.

    Commits; returns the delivery ids. ``endpoint_ids`` limits it (a test event).
    """
    query = select(WebhookEndpoint).where(WebhookEndpoint.firm_id == firm_id, WebhookEndpoint.active.is_(True))
    if endpoint_ids is not None:
        query = query.where(WebhookEndpoint.id.in_(endpoint_ids))
    deliveries = []
    for endpoint in db.session.scalars(query):
        if endpoint_ids is None and event not in endpoint.event_set:
            continue
        payload = {"id": str(uuid.uuid4()), "event": event, "created_at": utcnow().isoformat() + "Z", "data": data}
        deliveries.append(WebhookDelivery(firm_id=firm_id, endpoint_id=endpoint.id, event=event, payload=payload))
    if not deliveries:
        return []
    db.session.add_all(deliveries)
    db.session.commit()
    for delivery in deliveries:
        _enqueue(delivery.id)
    return [delivery.id for delivery in deliveries]


def sync_finished(run_id):
    """Tell the firm's endpoints how a sync run ended (called by the sync job after committing).

    Never raises: a webhook problem must not change a sync's outcome.
    """
    try:
        run = db.session.get(SyncRun, run_id)
        event = RUN_EVENTS.get(run.status) if run is not None else None
        if event is None:
            return []
        data = {"sync_run_id": run.id, "dossier_id": run.dossier_id, "link_id": run.link_id, "status": run.status,
                "error_category": run.error_category, "message": run.message,
                "finished_at": run.finished_at.isoformat() + "Z" if run.finished_at else None}
        ids = emit(run.firm_id, event, data)
        if run.status == RunStatus.SUCCEEDED and run.started_at is not None:
            for profile in db.session.scalars(select(CompanyProfile).where(
                    CompanyProfile.dossier_id == run.dossier_id, CompanyProfile.fetched_at >= run.started_at)):
                ids += emit(run.firm_id, "company_profile.changed", {
                    "dossier_id": profile.dossier_id, "company_profile_id": profile.id, "version": profile.version,
                    "sync_run_id": run.id})
        return ids
    except Exception:  # noqa: BLE001 - logged; the sync's own outcome is already committed
        db.session.rollback()
        log.exception("webhooks for run %s could not be queued", run_id)
        return []


def dossier_linked(link_id):
    """Tell the firm's endpoints a file was linked to a company (called after the link is committed).

    Never raises: a webhook problem must not undo the link.
    """
    try:
        link = db.session.get(DossierLink, link_id)
        if link is None:
            return []
        return emit(link.firm_id, "dossier.linked", {
            "dossier_id": link.dossier_id, "link_id": link.id, "kind": link.kind, "connection_id": link.connection_id,
            "reference": link.reference, "reference_name": link.reference_name, "scenario": link.scenario,
            "valid_from": link.valid_from.isoformat() if link.valid_from else None})
    except Exception:  # noqa: BLE001 - logged; the link is already committed
        db.session.rollback()
        log.exception("webhooks for link %s could not be queued", link_id)
        return []


def redeliver(actor, delivery_id):
    """Send a delivery of ``actor``'s firm again (a new delivery of the same payload); its id or None."""
    if actor is None or actor.role != Role.ADMIN:
        raise WebhookError("Only an administrator of the firm may redeliver webhooks.")
    old = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                          WebhookDelivery.firm_id == actor.firm_id))
    if old is None:
        return None
    new = WebhookDelivery(firm_id=old.firm_id, endpoint_id=old.endpoint_id, event=old.event, payload=old.payload)
    db.session.add(new)
    audit.record(actor, "webhook.redeliver", old, summary=f"Redelivered webhook {old.event} #{old.id}")
    db.session.commit()
    _enqueue(new.id)
    return new.id


def attempt(delivery_id):
    """Send delivery ``delivery_id`` once; return the seconds to wait before retrying, or None."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != "pending":
        return None
    endpoint = delivery.endpoint
    if not endpoint.active:
        delivery.status = "failed"
        delivery.last_response = "The endpoint is disabled."
        db.session.commit()
        return None
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    now = time.time()
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    refusal = url_refusal(endpoint.url)
    if refusal:
        code, text = None, refusal
    else:
        try:
            answer = requests.post(endpoint.url, data=body, timeout=TIMEOUT_SECONDS, allow_redirects=False, headers={
                "Content-Type": "application/json", "User-Agent": "Firmsync-Webhooks/1",
                "Firmsync-Event": delivery.event, "Firmsync-Delivery": str(delivery.id),
                SIGNATURE_HEADER: sign(endpoint.secret, now, body)})
            code, text = answer.status_code, answer.text[:500]
        except requests.RequestException as error:
            code, text = None, f"{type(error).__name__}: the endpoint could not be reached."
    delivery.last_status_code = code
    delivery.last_response = text
    if code is not None and 200 <= code < 300:
        delivery.status = "delivered"
        delivery.next_attempt_at = None
        db.session.commit()
        return None
    schedule = retry_schedule()
    if delivery.attempts <= len(schedule):
        wait = schedule[delivery.attempts - 1]
        delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
        db.session.commit()
        return wait
    delivery.status = "failed"
    delivery.next_attempt_at = None
    endpoint.active = False
    endpoint.disabled_reason = f"Disabled after {delivery.attempts} failed attempts of delivery #{delivery.id}."
    audit.record(None, "webhook.disabled", endpoint, firm_id=endpoint.firm_id,
                 summary=f"Webhook endpoint {endpoint.url} disabled: it did not accept delivery "
                         f"#{delivery.id} for a day (last answer: {code or text[:80]})")
    db.session.commit()
    return None


def _enqueue(delivery_id):
    """Queue the first attempt; the job schedules its own retries (``rq.Retry``, same job id)."""
    get_queue(MAINTENANCE_QUEUE).enqueue(DELIVER_JOB, delivery_id, job_id=f"webhook-delivery-{int(delivery_id)}")


def send_test(actor, endpoint_id):
    """Queue a ``test`` event to one endpoint of ``actor``'s firm (administrators); the delivery id or None."""
    endpoint = _endpoint_of(actor, endpoint_id)
    if endpoint is None:
        return None
    audit.record(actor, "webhook.test", endpoint, summary=f"Sent a test event to {endpoint.url}")
    ids = emit(endpoint.firm_id, "test", {"message": "A test event from Firmsync."}, endpoint_ids=[endpoint.id])
    return ids[0] if ids else None


def enable(actor, endpoint_id):
    """Turn a disabled endpoint of ``actor``'s firm back on; True when it was off."""
    endpoint = _endpoint_of(actor, endpoint_id)
    if endpoint is None or endpoint.active:
        return False
    endpoint.active = True
    endpoint.disabled_reason = None
    audit.record(actor, "webhook.enable", endpoint, summary=f"Enabled webhook endpoint {endpoint.url}")
    db.session.commit()
    return True


def _endpoint_of(actor, endpoint_id):
    if actor is None or actor.role != Role.ADMIN:
        raise WebhookError("Only an administrator of the firm may manage webhook endpoints.")
    return db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id,
                                                           WebhookEndpoint.firm_id == actor.firm_id))
