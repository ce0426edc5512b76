"""Connections: test one, refresh the companies it reaches, and ask for either through a job.

Two halves:

* :func:`request_check` and :func:`request_references` are what the console, the API and
  the CLI call: they check the actor's right, audit, commit and **queue a short job**
  (``jobs.connection_tasks.check`` / ``.references``, job ids ``connection-check-<id>`` and
  ``connection-references-<id>``) and answer at once; no web request waits on a vendor.
  :func:`task_state` tells a page how that job stands (queued, running, done, failed).
* :func:`check_connection` and :func:`refresh_references` do the work, inside that job
  (purpose ``job``: a few seconds' wait on a budget at most). Each answers a message for an
  accountant and never raises for a vendor's refusal: the outcome is recorded on the
  connection (not committed; the caller commits).
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.models import ConnectionStatus
from app.models.base import utcnow
from app.redis_connection import redis_connection
from app.secret_scrubbing import scrub_text
from app.services.connectors import JOB, connection_secrets, open_connector
from app.services.queues import PEOPLE_QUEUE, fetch_job, fetch_jobs, get_queue
from connectors.base import DOSSIER, FIRM, AuthError, ConnectorError

log = logging.getLogger("firmsync.connections")

UNSUPPORTED = "Firmsync cannot do this for this package yet."
UNEXPECTED = "Something went wrong while contacting the package; the details are in the server log."


def call_connector(connection, what, *, purpose=JOB):
    """Run ``what(connector)`` on a connector of ``connection``; answer ``(result, error message)``.

    An :class:`AuthError` marks the connection ``needs_reconnect``. The message is scrubbed
    of the connection's secrets; a connector bug is logged and answered in plain words.
    """
    secrets = connection_secrets(connection) + [
        str(v) for v in (connection.credentials or {}).values() if isinstance(v, (str, int))
    ]
    try:
        return what(open_connector(connection, purpose=purpose)), None
    except AuthError as error:
        connection.status = ConnectionStatus.NEEDS_RECONNECT
        return None, scrub_text(error.message, secrets)
    except ConnectorError as error:
        return None, scrub_text(error.message, secrets)
    except NotImplementedError:
        return None, UNSUPPORTED
    except Exception:  # noqa: BLE001 - a connector bug must not break the caller
        log.exception("connector call failed for connection %s", connection.id)
        return None, UNEXPECTED


def check_connection(connection, actor=None, *, purpose=JOB):
    """Call the connector's ``check()`` and record the outcome on ``connection``; answer ``(ok, message)``."""
    result, error = call_connector(connection, lambda connector: connector.check(), purpose=purpose)
    connection.last_check_at = utcnow()
    connection.last_check_ok = bool(result and result.ok)
    connection.last_check_message = (error or (result.message if result else ""))[:500]
    if connection.last_check_ok and connection.status == ConnectionStatus.NEEDS_RECONNECT:
        connection.status = ConnectionStatus.ACTIVE
    audit.record(actor, "connection.check", connection,
                 summary=f"Tested connection {connection.name}: {'OK' if connection.last_check_ok else 'failed'}")
    return connection.last_check_ok, connection.last_check_message


def refresh_references(connection, actor=None, *, purpose=JOB):
    """Cache the companies the connection can reach; answer ``(count or None, error message)``."""
    refs, error = call_connector(connection, listed_references, purpose=purpose)
    if error is not None:
        return None, error
    connection.references = [{"reference": ref.reference, "name": ref.name} for ref in refs]
    connection.references_refreshed_at = utcnow()
    audit.record(actor, "connection.references", connection,
                 summary=f"Refreshed the companies of {connection.name}: {len(refs)} found")
    return len(refs), None


def listed_references(connector):
    """``connector.list_references()``, trusted only once the credentials are known to work.

    An empty list proves nothing (Companies House lists nothing at all: its numbers are
    typed), so a list with no company is followed by ``connector.check()``: refused
    credentials then raise :class:`AuthError` and the refresh reports the refusal instead of
    "0 companies found".
    """
    refs = connector.list_references()
    if not refs:
        connector.check()
    return refs


# --------------------------------------------------------------------------------------
# The console, the API and the CLI ask for these through short jobs (never inline)
# --------------------------------------------------------------------------------------

CHECK = "check"
REFERENCES = "references"
#: task kind -> the job that does it (named, not imported: the services sit below the jobs)
TASK_FUNCTIONS = {CHECK: "jobs.connection_tasks.check", REFERENCES: "jobs.connection_tasks.references"}
#: a console job waits at most this long for a worker, then it is dropped (the user may ask again)
TASK_QUEUED_TTL = 15 * 60
#: the longest a console job may run (a job-purpose connector waits a few seconds on a budget, never minutes)
TASK_TIMEOUT = 5 * 60
#: how long the outcome of a finished console job is kept for the page that asked for it
TASK_RESULT_TTL = 24 * 3600

#: the task states a page shows (``idle``: no job known, the connection's stored outcome stands)
IDLE, QUEUED, RUNNING, DONE, FAILED = "idle", "queued", "running", "done", "failed"
_ACTIVE_JOB_STATUSES = {"created", "queued", "deferred", "scheduled", "started", "ready_to_enqueue", "rate_limited"}

NOT_ALLOWED_CHECK = "You may not test this connection."
NOT_ALLOWED_REFERENCES = "You may not refresh the companies of this connection."
#: the outcome of a job that broke (a bug, a time-out, a killed worker): the page asks to try again
TASK_BROKE = "The job stopped before it finished; please try again. The details are in the server log."


def task_job_id(kind, connection_id):
    """The RQ job id of a console task: ``connection-check-<id>`` or ``connection-references-<id>``."""
    if kind not in TASK_FUNCTIONS:
        raise ValueError(f"unknown connection task {kind!r}")
    return f"connection-{kind}-{int(connection_id)}"


@dataclass(frozen=True)
class TaskState:
    """Where a console task on a connection stands.

    ``state`` is one of :data:`IDLE`, :data:`QUEUED`, :data:`RUNNING`, :data:`DONE`,
    :data:`FAILED` (the job itself broke: a crash, a time-out); for :data:`DONE`, ``ok``,
    ``message`` and (references) ``count`` are the job's outcome. ``new`` tells
    :func:`request_check` / :func:`request_references` callers whether their request
    queued a job or found one already under way.
    """

    kind: str
    connection_id: int
    state: str
    ok: bool | None = None
    message: str = ""
    count: int | None = None
    new: bool = False

    @property
    def active(self):
        return self.state in (QUEUED, RUNNING)

    @property
    def job_id(self):
        return task_job_id(self.kind, self.connection_id)


def may_check(actor, connection):
    """May ``actor`` test ``connection`` (and see how the test went)?

    A firm-level connection: an administrator of its firm. A dossier-level connection (a
    client's own grant): whoever may set up the sync of the file that owns it. Support staff
    are read-only.
    """
    if actor is None or actor.is_support or connection is None or connection.firm_id != actor.firm_id:
        return False
    if actor.is_admin:
        return True
    return connection.level == DOSSIER and connection.owner_dossier_id is not None and can(
        actor, "setup_sync", connection.owner_dossier_id)


def may_refresh_references(actor, connection, dossier=None):
    """May ``actor`` ask ``connection`` again which companies it reaches?

    Everyone who may test it (:func:`may_check`), and, for a firm-level connection, the
    people who pick a company from its list: from a file's Sync tab (``dossier``) whoever may
    set up that file's sync; from the new-client wizard (no ``dossier``) whoever may create
    files. The list is a cache of what the package shows: refreshing it changes no data.
    """
    if may_check(actor, connection):
        return True
    if actor is None or actor.is_support or connection is None or connection.firm_id != actor.firm_id:
        return False
    if connection.level != FIRM:
        return False
    if dossier is not None:
        return dossier.firm_id == connection.firm_id and can(actor, "setup_sync", dossier.id)
    return can(actor, "create_dossiers")


def request_check(actor, connection):
    """Queue a test of ``connection`` (job ``connection-check-<id>``); answer its :class:`TaskState`.

    Never contacts the package: the job does (:func:`check_connection`, purpose ``job``)
    and stores the outcome on the connection. With an ``actor`` (a user's click, an API
    call) :func:`may_check` must hold, else :class:`~werkzeug.exceptions.Forbidden`; an
    operator's command passes None (as :func:`app.services.syncs.request_sync`). A test
    already queued or running is answered instead of a new one (a double click queues one
    job). A new request is audited and committed (with the caller's pending changes) before
    the job is queued.
    """
    if actor is not None and not may_check(actor, connection):
        raise Forbidden(NOT_ALLOWED_CHECK)
    return _request(actor, connection, CHECK, f"Asked for a test of connection {connection.name}")


def request_references(actor, connection, dossier=None):
    """Queue a refresh of the companies ``connection`` reaches (job ``connection-references-<id>``).

    Like :func:`request_check`, with the right of :func:`may_refresh_references` (``dossier``:
    the file whose Sync tab asks). The job stores the list on the connection
    (``references``, ``references_refreshed_at``).
    """
    if actor is not None and not may_refresh_references(actor, connection, dossier):
        raise Forbidden(NOT_ALLOWED_REFERENCES)
    return _request(actor, connection, REFERENCES, f"Asked {connection.name} for its companies")


def task_state(kind, connection_id, redis=None):
    """The :class:`TaskState` of the latest ``kind`` task on a connection (one Redis round trip)."""
    return task_states(kind, [connection_id], redis=redis)[int(connection_id)]


def task_states(kind, connection_ids, redis=None):
    """``{connection id: TaskState}`` for several connections (a list page), in one Redis pipeline.

    Redis unreachable: every task is :data:`IDLE` (the page still shows the stored outcome).
    """
    ids = [int(i) for i in connection_ids]
    try:
        jobs = fetch_jobs([task_job_id(kind, i) for i in ids], connection=redis or redis_connection())
    except RedisError:
        log.warning("Redis is unreachable: connection tasks shown as idle")
        jobs = [None] * len(ids)
    return {connection_id: _state_of(kind, connection_id, job) for connection_id, job in zip(ids, jobs)}


def _state_of(kind, connection_id, job):
    if job is None:
        return TaskState(kind, connection_id, IDLE)
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    if status == "started":
        if _overdue(job.started_at):  # its worker died: RQ has not failed it yet, the user may ask again
            return TaskState(kind, connection_id, FAILED, ok=False, message=TASK_BROKE)
        return TaskState(kind, connection_id, RUNNING)
    if status in _ACTIVE_JOB_STATUSES:
        return TaskState(kind, connection_id, QUEUED)
    if status == "finished":
        outcome = job.return_value() or {}
        return TaskState(kind, connection_id, DONE, ok=bool(outcome.get("ok")), message=outcome.get("message") or "",
                         count=outcome.get("count"))
    return TaskState(kind, connection_id, FAILED, ok=False, message=TASK_BROKE)


def _overdue(started_at):
    """Started longer ago than a console job may run (plus a minute's grace)?"""
    if started_at is None:
        return False
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) - started_at > timedelta(seconds=TASK_TIMEOUT + 60)


def _request(actor, connection, kind, summary):
    redis = redis_connection()
    job_id = task_job_id(kind, connection.id)
    # two clicks at the same instant: the second waits for the first to queue, then finds its job
    with redis.lock(f"firmsync:connection-task-lock:{job_id}", timeout=10, blocking_timeout=10):
        current = task_state(kind, connection.id, redis=redis)
        if current.active:
            return current
        try:
            fetch_job(job_id, connection=redis).delete()  # the previous outcome, with its results
        except NoSuchJobError:
            pass
        audit.record(actor, f"connection.{kind}_requested", connection, summary=summary)
        db.session.commit()
        get_queue(PEOPLE_QUEUE).enqueue(
            TASK_FUNCTIONS[kind], connection.id, actor.user_id if actor else None,
            actor.firm_id if actor else connection.firm_id,
            job_id=job_id, job_timeout=TASK_TIMEOUT, ttl=TASK_QUEUED_TTL, result_ttl=TASK_RESULT_TTL,
            failure_ttl=TASK_RESULT_TTL, description=f"{kind} of connection {connection.id}",
            at_front=True,  # a short job the user is waiting for: before people's queued syncs
        )
    return TaskState(kind, connection.id, QUEUED, new=True)
