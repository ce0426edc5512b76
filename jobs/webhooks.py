"""The webhook jobs (queue ``default``).

* ``jobs.webhooks.drain(endpoint_id)`` sends one endpoint's due deliveries in batches over one
  keep-alive session (:func:`app.services.webhooks.drain`); retries are later drains the
  service schedules itself (the worker must run with ``--with-scheduler``, as every Firmsync
  worker does).
* ``jobs.webhooks.deliver(delivery_id)`` is kept for jobs queued before an upgrade: it asks
  for a drain of that delivery's endpoint.
"""
from app.extensions import db
from app.models import WebhookDelivery
from app.services import webhooks


def drain(endpoint_id):
    """Send endpoint ``endpoint_id``'s due pending deliveries; the number sent."""
    return webhooks.drain(endpoint_id)


def deliver(delivery_id):
    """A job from before drains existed: queue a drain of the delivery's endpoint instead."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is not None and delivery.status == "pending":
        webhooks.kick(delivery.endpoint_id)
