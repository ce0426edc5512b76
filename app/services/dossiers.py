"""Client files (dossiers): creating one."""
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.models import Dossier, Role, User


def create_dossier(actor, details):
    """Add a client file from ``details`` (name, number, country, currency, frequency); not committed.

    The actor must be allowed to create files; a staff creator is granted the new file so
    they keep access to it. Audited with the values given.
    """
    if not can(actor, "create_dossiers"):
        raise Forbidden("You may not create client files.")
    dossier = Dossier(firm_id=actor.firm_id, name=details["name"], number=details.get("number") or None,
                      country=details.get("country") or "BE", currency=details.get("currency") or "EUR",
                      frequency=details.get("frequency") or "month")
    db.session.add(dossier)
    if actor.role == Role.STAFF:
        dossier.users.append(db.session.get(User, actor.user_id))
    db.session.flush()
    audit.record(actor, "create", dossier, summary=f"Created file {dossier} with the new-client wizard",
                 changes={k: [None, v] for k, v in details.items() if v})
    return dossier
