"""Client files (dossiers): creating one, and removing everything that belongs to one."""
from sqlalchemy import delete, update
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.models import (Account, AuditEvent, CompanyProfile, Connection, Dossier, FiscalYear, LedgerLine,
                        OpeningBalance, Period, PeriodBalance, Role, SyncRun, User)


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
    keep_creators_access(actor, dossier)
    db.session.flush()
    audit.record(actor, "create", dossier, summary=f"Created file {dossier} with the new-client wizard",
                 changes={k: [None, v] for k, v in details.items() if v})
    return dossier


def keep_creators_access(actor, dossier):
    """A staff creator is granted the file they create, so they keep access even when it is private."""
    if actor.role == Role.STAFF:
        me = db.session.get(User, actor.user_id)
        if me not in dossier.users:
            dossier.users.append(me)


def delete_dossier_rows(dossier):
    """Delete everything that belongs to ``dossier`` (children first), not the dossier row itself.

    Done explicitly rather than through ``ON DELETE CASCADE`` so SQLite (foreign keys off)
    and PostgreSQL end in the same state.
    """
    by_dossier = lambda model: delete(model).where(model.dossier_id == dossier.id)  # noqa: E731
    for model in (SyncRun, LedgerLine, PeriodBalance, OpeningBalance, Period, FiscalYear, Account, CompanyProfile):
        db.session.execute(by_dossier(model))
    db.session.execute(update(AuditEvent).where(AuditEvent.dossier_id == dossier.id).values(dossier_id=None))
    for link in list(dossier.links):
        db.session.delete(link)
    db.session.flush()
    db.session.execute(delete(Connection).where(Connection.owner_dossier_id == dossier.id))
    dossier.users.clear()
    dossier.groups.clear()
