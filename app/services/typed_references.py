"""Typed references (a company number, a CVR number) checked with the register before a file is linked.

A package with ``ConnectorSpec.reference_typed`` has no list to choose from: the user types
the number. :func:`confirm_typed_reference` asks the package's ``lookup_reference`` (format
first, then existence) so that a mistyped or unknown number is refused when linking, with the
register's own words, instead of failing the first sync later. It runs inside the web request
that links the file (purpose ``web``: one short call, no waiting on a spent budget).

The rule when the register cannot be reached (a 5xx, a time-out, a spent rate budget): the
number is **not** refused, since the register said nothing against it; the link may be saved
and the answer carries :data:`UNVERIFIED` in ``details["unverified"]`` for the caller to show
as a warning (the first sync then checks the number). Refused credentials and an unknown or
malformed number always refuse the link.
"""
from flask_babel import lazy_gettext as _l

from app.services.connections import call_connector
from app.services.connectors import WEB
from app.services.links import SetupError
from connectors.base import CompanyRef
from connectors.errors import RateLimited, TransientError

#: the warning of a number saved while the register could not be asked
UNVERIFIED = _l("The register could not be reached, so this number was saved without being checked; "
                "the first sync will check it.")


def confirm_typed_reference(connection, reference):
    """The :class:`connectors.base.CompanyRef` the register knows for ``reference`` (normalised).

    Raises :class:`SetupError` with the package's message for a malformed or unknown number,
    or refused credentials (the connection is then marked ``needs_reconnect``; the caller's
    rollback keeps it as it was). An unreachable register answers a ``CompanyRef`` of the
    typed number (stripped) with ``details={"unverified": UNVERIFIED}``: the link may be saved
    with a warning. Nothing is committed here.
    """
    unreachable = []

    def lookup(connector):
        try:
            return connector.lookup_reference(reference)
        except (TransientError, RateLimited) as error:
            unreachable.append(error)
            return None

    found, error = call_connector(connection, lookup, purpose=WEB)
    if error is not None:
        raise SetupError(error)
    if unreachable:
        typed = str(reference).strip()
        return CompanyRef(typed, typed, {"unverified": str(UNVERIFIED)})
    return found
