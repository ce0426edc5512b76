"""Short console jobs on one connection: test it, refresh the companies it reaches.

Queued by :func:`app.services.connections.request_check` and
:func:`~app.services.connections.request_references` (job ids ``connection-check-<id>`` and
``connection-references-<id>``, at the front of the ``sync`` queue), so a console click never
waits on a vendor: the page polls the job's state and shows the outcome when it is done.

Each job takes ids, never objects: the connection, and the user and firm who asked (for
the audit trail). It builds the connector through the one builder, with the wait policy of a
short job (:data:`app.services.connectors.JOB`: a few seconds on a rate budget at most),
stores the outcome on the connection, commits, and returns a small dict
(``{"ok", "message"}``, plus ``"count"`` for references) that the polling page shows.
Vendor refusals are outcomes, not job failures; a job fails only on a bug or a time-out.
"""
import logging

from app.access import actor_for
from app.extensions import db
from app.models import Connection, User
from app.services.connections import check_connection, refresh_references
from app.services.connectors import JOB

log = logging.getLogger("firmsync.jobs")

GONE = "This connection no longer exists."


def check(connection_id, user_id=None, firm_id=None):
    """Test connection ``connection_id``; answer ``{"ok": bool, "message": str}``."""
    connection = _connection(connection_id, firm_id)
    if connection is None:
        return {"ok": False, "message": GONE}
    ok, message = check_connection(connection, _actor(user_id, firm_id), purpose=JOB)
    db.session.commit()
    return {"ok": ok, "message": message}


def references(connection_id, user_id=None, firm_id=None):
    """Refresh the companies connection ``connection_id`` reaches; answer
    ``{"ok": bool, "message": str, "count": int | None}``."""
    connection = _connection(connection_id, firm_id)
    if connection is None:
        return {"ok": False, "message": GONE, "count": None}
    count, error = refresh_references(connection, _actor(user_id, firm_id), purpose=JOB)
    db.session.commit()
    return {"ok": error is None, "message": error or "", "count": count}


def _connection(connection_id, firm_id):
    """The connection, if it still exists (and belongs to ``firm_id`` when one is given)."""
    connection = db.session.get(Connection, connection_id)
    if connection is None or (firm_id is not None and connection.firm_id != firm_id):
        log.warning("connection task: connection %s is gone or not of firm %s", connection_id, firm_id)
        return None
    return connection


def _actor(user_id, firm_id):
    """The actor who asked (for the audit trail), or None (the CLI, a removed user)."""
    user = db.session.get(User, user_id) if user_id is not None else None
    return actor_for(user, firm_id) if user is not None else None
