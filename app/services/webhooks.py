"""Webhooks: a firm's endpoints hear about sync outcomes and other events (docs/api.md).

* :func:`create_endpoint` (administrators) stores the URL (checked by
  :func:`app.services.outbound.url_refusal`), the events and a random signing secret
  (encrypted at rest, shown once).
* :func:`emit` records one :class:`WebhookDelivery` per subscribed, active endpoint of the
  firm, commits, and asks for a drain of each endpoint (:func:`kick`); :func:`sync_finished`
  is the sync job's one call.
* :func:`drain` (the job ``jobs.webhooks.drain(endpoint_id)``) sends an endpoint's due
  deliveries in batches over one keep-alive ``requests.Session``, a few at a time
  (``WEBHOOK_CONCURRENCY``). Each delivery is a JSON POST signed on its own with
  ``Firmsync-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` and keeps its own
  log (status, attempts, last answer). A 2xx answer delivers it; anything else schedules that
  delivery alone again after :func:`retry_schedule` (about a day in all) while the others go
  on; after the last retry the delivery fails, the endpoint is disabled and the firm's audit
  trail says so.

Drain jobs are deduplicated per endpoint: a Redis marker ("a drain of this endpoint is
queued") lets a burst of events enqueue one job, and a per-endpoint Redis lock keeps two
drains of one endpoint from sending at the same time. The promise to receivers is
at-least-once, in no particular order (docs/api.md, "Webhooks").
"""
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from flask import current_app
from redis.lock import Lock
from sqlalchemy import func, or_, select

from app import audit
from app.extensions import db
from app.models import CompanyProfile, DossierLink, Role, RunStatus, SyncRun, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.services.outbound import url_refusal
from app.redis_connection import redis_connection
from app.services.queues import MAINTENANCE_QUEUE, get_queue

log = logging.getLogger("firmsync.webhooks")

EVENTS = ("sync.succeeded", "sync.failed", "sync.deferred", "connection.needs_reconnect", "dossier.linked",
          "company_profile.changed", "test")
#: run status -> event
RUN_EVENTS = {RunStatus.SUCCEEDED: "sync.succeeded", RunStatus.FAILED: "sync.failed",
              RunStatus.DEFERRED: "sync.deferred", RunStatus.NEEDS_RECONNECT: "connection.needs_reconnect"}
#: seconds before each retry: 10 s, 1 min, 5 min, 30 min, 2 h, 6 h, 15 h (about a day in all)
DEFAULT_RETRY_SECONDS = (10, 60, 300, 1800, 7200, 21600, 54000)
DRAIN_JOB = "jobs.webhooks.drain"
TIMEOUT_SECONDS = 10
#: deliveries per sending thread in one batch (read, sent and committed together): a batch to an
#: endpoint that never answers lasts at most this many timeouts
BATCH_PER_SENDER = 5
#: POSTs in flight at once to one endpoint (setting ``WEBHOOK_CONCURRENCY``)
DEFAULT_CONCURRENCY = 4
#: a drain hands its worker back after about this long and queues a follow-up (``WEBHOOK_DRAIN_SECONDS``)
DEFAULT_DRAIN_SECONDS = 30
#: Redis keys: "a drain of endpoint N is queued" (the dedup marker), the drain lock, the next wake-up
REDIS_PREFIX = "firmsync:webhooks"
MARKER_SECONDS = 300
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
    for endpoint_id in sorted({delivery.endpoint_id for delivery in deliveries}):
        kick(endpoint_id)
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
    kick(new.endpoint_id)
    return new.id


def setting(name, default):
    """A webhook setting from the app config (a number; text from the environment is read as one)."""
    return type(default)(current_app.config.get(name, default))


def marker_key(endpoint_id):
    """The Redis key saying a drain of the endpoint is queued (its value is that job's id)."""
    return f"{REDIS_PREFIX}:queued:{int(endpoint_id)}"


def lock_key(endpoint_id):
    """The Redis key of the lock a running drain of the endpoint holds."""
    return f"{REDIS_PREFIX}:lock:{int(endpoint_id)}"


def wake_key(endpoint_id):
    """The Redis key holding when the next retry drain of the endpoint is scheduled (unix seconds)."""
    return f"{REDIS_PREFIX}:wake:{int(endpoint_id)}"


def queued_drain(endpoint_id):
    """The id of the drain job queued for the endpoint and not yet started, or None."""
    value = redis_connection().get(marker_key(endpoint_id))
    return value.decode() if isinstance(value, bytes) else value


def kick(endpoint_id, delay=None):
    """Make sure a drain of the endpoint runs after now (after ``delay`` seconds); the new job id or None.

    Deduplicated: when a drain is already queued and has not started, nothing is added (that
    drain will read every delivery committed before this call, see :func:`drain`).
    """
    redis = redis_connection()
    job_id = f"webhook-drain-{int(endpoint_id)}-{secrets.token_hex(4)}"
    if not redis.set(marker_key(endpoint_id), job_id, nx=True, ex=MARKER_SECONDS + int(delay or 0)):
        return None
    queue = get_queue(MAINTENANCE_QUEUE)
    if delay:
        queue.enqueue_in(timedelta(seconds=delay), DRAIN_JOB, int(endpoint_id), job_id=job_id,
                         job_timeout=drain_job_timeout())
    else:
        queue.enqueue(DRAIN_JOB, int(endpoint_id), job_id=job_id, job_timeout=drain_job_timeout())
    return job_id


def batch_seconds():
    """The longest one batch can take: every POST of every sender waiting out its timeout."""
    return BATCH_PER_SENDER * TIMEOUT_SECONDS + 30


def drain_job_timeout():
    """RQ's timeout of a drain job: its time budget plus one whole batch (it stops between batches)."""
    return setting("WEBHOOK_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS) + batch_seconds() + 60


def drain(endpoint_id):
    """Send the endpoint's due pending deliveries (the drain job's work); the number sent.

    The queued-marker is removed before the first read, so an event committed while this runs
    either is read by it or queues a new drain. If another drain of the endpoint holds the lock,
    this one sends nothing and queues a follow-up a second later. A drain stops after about
    ``WEBHOOK_DRAIN_SECONDS`` (queuing a follow-up) so other endpoints get workers too, and
    schedules a wake-up for the earliest retry still pending.
    """
    redis = redis_connection()
    redis.delete(marker_key(endpoint_id))
    lock = Lock(redis, lock_key(endpoint_id), timeout=batch_seconds(), thread_local=False)
    if not lock.acquire(blocking=False):
        kick(endpoint_id, delay=1)
        return 0
    sent = 0
    try:
        budget = time.monotonic() + setting("WEBHOOK_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS)
        concurrency = max(1, setting("WEBHOOK_CONCURRENCY", DEFAULT_CONCURRENCY))
        with requests.Session() as session, ThreadPoolExecutor(concurrency) as pool:
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            while True:
                endpoint = db.session.get(WebhookEndpoint, endpoint_id)
                if endpoint is None:
                    return sent
                batch = db.session.scalars(_due(endpoint_id).limit(concurrency * BATCH_PER_SENDER)).all()
                if not batch:
                    break
                sent += _send(endpoint, batch, session, pool)
                lock.extend(batch_seconds(), replace_ttl=True)  # held for the next batch
                if time.monotonic() > budget:
                    kick(endpoint_id)
                    return sent
        _schedule_retry(endpoint_id)
        return sent
    finally:
        db.session.rollback()
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - the lock expired: nothing left to release
            pass


def attempt(delivery_id):
    """Send delivery ``delivery_id`` once, now; return the seconds to wait before retrying, or None."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != "pending":
        return None
    with requests.Session() as session, ThreadPoolExecutor(1) as pool:
        _send(delivery.endpoint, [delivery], session, pool)
    return None if delivery.status != "pending" else retry_schedule()[delivery.attempts - 1]


def _due(endpoint_id):
    return (select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending",
                   or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= utcnow()))
            .order_by(WebhookDelivery.id))


def _send(endpoint, batch, session, pool):
    """POST each delivery of ``batch`` (signed one by one), record every answer, commit once; the count sent."""
    if not endpoint.active:
        for delivery in batch:
            delivery.status = "failed"
            delivery.next_attempt_at = None
            delivery.last_response = "The endpoint is disabled."
        db.session.commit()
        return 0
    url, secret = endpoint.url, endpoint.secret
    refusal = url_refusal(url)  # checked again for every batch: an address can start resolving elsewhere
    bodies = [json.dumps(d.payload, separators=(",", ":"), sort_keys=True).encode() for d in batch]
    if refusal:
        answers = [(None, refusal)] * len(batch)
    else:
        answers = list(pool.map(lambda pair: _post(session, url, secret, pair[0], pair[1]),
                                [((d.id, d.event), body) for d, body in zip(batch, bodies)]))
    schedule = retry_schedule()
    for delivery, (code, text) in zip(batch, answers):
        _record(endpoint, delivery, code, text, schedule)
    db.session.commit()
    return len(batch) if not refusal else 0


def _post(session, url, secret, delivery, body):
    """One signed POST (in a sending thread: no database here); ``(status code or None, text)``."""
    delivery_id, event = delivery
    try:
        answer = session.post(url, data=body, timeout=TIMEOUT_SECONDS, allow_redirects=False, headers={
            "Content-Type": "application/json", "User-Agent": "Firmsync-Webhooks/1",
            "Firmsync-Event": event, "Firmsync-Delivery": str(delivery_id),
            SIGNATURE_HEADER: sign(secret, time.time(), body)})
        return answer.status_code, answer.text[:500]
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: the endpoint could not be reached."


def _record(endpoint, delivery, code, text, schedule):
    """Write one attempt's answer into the delivery's log; schedule its retry or give up."""
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    delivery.last_status_code = code
    delivery.last_response = text
    if code is not None and 200 <= code < 300:
        delivery.status = "delivered"
        delivery.next_attempt_at = None
        return
    if delivery.attempts <= len(schedule):
        delivery.next_attempt_at = utcnow() + timedelta(seconds=schedule[delivery.attempts - 1])
        return
    delivery.status = "failed"
    delivery.next_attempt_at = None
    if endpoint.active:
        endpoint.active = False
        endpoint.disabled_reason = f"Disabled after {delivery.attempts} failed attempts of delivery #{delivery.id}."
        audit.record(None, "webhook.disabled", endpoint, firm_id=endpoint.firm_id,
                     summary=f"Webhook endpoint {endpoint.url} disabled: it did not accept delivery "
                             f"#{delivery.id} for a day (last answer: {code or (text or '')[:80]})")


def _schedule_retry(endpoint_id):
    """Queue a drain for when the endpoint's earliest pending retry is due (unless one comes sooner)."""
    due = db.session.scalar(select(func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending"))
    if due is None:
        return
    wait = max(1, int((due - utcnow()).total_seconds() + 0.999))
    at = int(time.time()) + wait
    redis = redis_connection()
    planned = redis.get(wake_key(endpoint_id))
    if planned is not None and time.time() <= int(planned) <= at:
        return  # a drain already comes by then
    redis.set(wake_key(endpoint_id), at, ex=wait + 60)
    get_queue(MAINTENANCE_QUEUE).enqueue_in(timedelta(seconds=wait), DRAIN_JOB, int(endpoint_id),
                                            job_id=f"webhook-retry-{int(endpoint_id)}-{at}",
                                            job_timeout=drain_job_timeout())


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
