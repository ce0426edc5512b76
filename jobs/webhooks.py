"""The webhook delivery job: ``jobs.webhooks.deliver(delivery_id)`` (queue ``default``).

It sends one attempt through :func:`app.services.webhooks.attempt`; when that asks for a
retry, the job returns :class:`rq.Retry` so RQ runs the same job id again after the wait
(the worker must run with ``--with-scheduler``, as every Firmsync worker does).
"""
from rq import Retry, get_current_job

from app.services.webhooks import attempt


def deliver(delivery_id):
    """Attempt delivery ``delivery_id``; schedule the next attempt when it was not accepted."""
    wait = attempt(delivery_id)
    if wait is None:
        return None
    job = get_current_job()
    return Retry(max=(job.number_of_retries or 0) + 1 if job else 1, interval=max(1, int(wait)))
