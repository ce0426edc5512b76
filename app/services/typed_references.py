"""Typed references (a company number, a CVR number) checked with the register before a file is linked.

A package with ``ConnectorSpec.reference_typed`` has no list to choose from: the user types
the number. :func:`confirm_typed_reference` asks the package's ``lookup_reference`` (format
first, then existence) so that a mistyped or unknown number is refused when linking, with the
register's own words, instead of failing the first sync later. It runs inside the web request
that links the file (purpose ``web``: one short call, no waiting on a spent budget).
"""
from app.services.connections import call_connector
from app.services.connectors import WEB
from app.services.links import SetupError


def confirm_typed_reference(connection, reference):
    """The :class:`connectors.base.CompanyRef` the register knows for ``reference`` (normalised).

    Raises :class:`SetupError` with the package's message for a malformed or unknown number,
    refused credentials (the connection is then marked ``needs_reconnect``; the caller's
    rollback keeps it as it was) or an unreachable register. Nothing is committed here.
    """
    found, error = call_connector(connection, lambda connector: connector.lookup_reference(reference), purpose=WEB)
    if error is not None:
        raise SetupError(error)
    return found
