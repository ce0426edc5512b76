"""Firm connections: test one, refresh the companies it reaches.

Used by the console's actions (through short jobs), the set-up wizard and the CLI alike.
Each answers a message for an accountant and never raises for a vendor's refusal: the
outcome is recorded on the connection (not committed; the caller commits).
"""
import logging

from app import audit
from app.models import ConnectionStatus
from app.models.base import utcnow
from app.secret_scrubbing import scrub_text
from app.services.connectors import JOB, connection_secrets, open_connector
from connectors.base import AuthError, ConnectorError

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
    refs, error = call_connector(connection, lambda connector: connector.list_references(), purpose=purpose)
    if error is not None:
        return None, error
    connection.references = [{"reference": ref.reference, "name": ref.name} for ref in refs]
    connection.references_refreshed_at = utcnow()
    audit.record(actor, "connection.references", connection,
                 summary=f"Refreshed the companies of {connection.name}: {len(refs)} found")
    return len(refs), None
