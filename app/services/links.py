"""Setting up and switching a dossier's sync: the scenarios of ARCHITECTURE section 7.

Setting up (no active accounting link):

* ``keep`` (A): keep the existing data and sync from a transfer date;
* ``replace`` (B): replace all bookkeeping data with the sync.

Switching (an active accounting link exists):

* ``switch`` (1): a new source from a transfer date (data before it keeps its origin);
* ``manual`` (2): revert to a manual file (the sync stops, nothing is deleted);
* ``re_establish`` (3): completely re-establish (new package, Xero <-> XeroTB, a fresh
  grant): synced and manual data are replaced by the new link's.

A transfer date must be the first day of one of the dossier's fiscal years. Every service
checks role and firm on the server, writes an :class:`~app.models.AuditEvent` with the
counts it touched, commits, and queues the set-up run. Administration links (company
master data) are set up and removed independently of the accounting link.
"""
from datetime import timedelta

from flask_babel import gettext
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.services.fiscal_years import delete_bookkeeping
from app.models import Connection, ConnectionStatus, DossierLink, FiscalYear, Scenario
from app.models.base import utcnow
from app.models.dossier import History
from app.services import setup_preview

SETUP_SCENARIOS = (Scenario.KEEP, Scenario.REPLACE)
SWITCH_SCENARIOS = (Scenario.SWITCH, Scenario.MANUAL, Scenario.RE_ESTABLISH)
SCENARIO_LABELS = {
    Scenario.KEEP: "Keep the existing data and sync from a transfer date",
    Scenario.REPLACE: "Replace all bookkeeping data with the sync",
    Scenario.SWITCH: "Switch to a new source from a transfer date",
    Scenario.MANUAL: "Revert to a manual file",
    Scenario.RE_ESTABLISH: "Completely re-establish the sync (replaces manual uploads)",
}


class SetupError(ValueError):
    """A set-up or switch that cannot be done, with a message for the user."""


class ConfirmationNeeded(SetupError):
    """The set-up would replace uploaded figures and was not confirmed; ``preview`` says which."""

    def __init__(self, message, preview):
        super().__init__(message)
        self.preview = preview


def valid_transfer_dates(dossier):
    """The first days of the dossier's fiscal years, oldest first."""
    return list(db.session.scalars(
        select(FiscalYear.start).where(FiscalYear.dossier_id == dossier.id).order_by(FiscalYear.start)
    ))


def check_transfer_date(dossier, transfer_date, *, after=None):
    """Refuse a transfer date that is not the first day of one of the dossier's fiscal years."""
    valid = [d for d in valid_transfer_dates(dossier) if after is None or d > after]
    if transfer_date is None:
        raise SetupError(gettext("Choose a transfer date.") + " " + _dates_sentence(valid))
    if transfer_date not in valid:
        raise SetupError(
            gettext("%(date)s is not the first day of one of this file's fiscal years "
                    "(a sync cannot switch in the middle of a year).", date=transfer_date.isoformat())
            + " " + _dates_sentence(valid)
        )


def _dates_sentence(valid):
    if not valid:
        return gettext("This file has no fiscal years yet, so no transfer date is possible: "
                       "choose to replace all data instead.")
    return gettext("Valid transfer dates: %(dates)s.", dates=", ".join(d.isoformat() for d in valid))


def set_up_sync(actor, dossier, connection, reference, scenario=Scenario.REPLACE, transfer_date=None,
                reference_name=None, options=None, *, queue=True, history=History.PREVIOUS_YEAR, confirmed=None):
    """Link ``dossier`` to ``reference`` through ``connection``; return the new link.

    For an accounting connection the dossier must have no active accounting link and
    ``scenario`` is ``keep`` (needs ``transfer_date``) or ``replace``. For an
    administration connection an existing administration link is replaced.

    ``history`` (:class:`~app.models.dossier.History`) is how much history the sync reads.
    ``confirmed``: ``False`` refuses (:class:`ConfirmationNeeded`) a set-up that would replace
    uploaded figures (the console's preview step passes the user's answer); ``None`` (callers
    that warned otherwise, such as the OAuth re-establish page) does not ask. Either way the
    audit event keeps what was kept and replaced (:mod:`app.services.setup_preview`).
    """
    _check_may_set_up(actor, dossier)
    _check_connection(dossier, connection)
    if connection.kind == "administration":
        return _set_up_administration(actor, dossier, connection, reference, reference_name, options, queue)
    if dossier.active_link("accounting") is not None:
        raise SetupError(gettext("This file already has a sync. Use \"Switch sync\" to change it."))
    if scenario not in SETUP_SCENARIOS:
        raise SetupError(gettext("Choose how to set up the sync: keep the existing data, or replace it."))
    _check_history(history)
    deleted = {}
    if scenario == Scenario.KEEP:
        check_transfer_date(dossier, transfer_date)
    else:
        transfer_date = None
    preview = _checked_preview(dossier, scenario, transfer_date, confirmed)
    if scenario == Scenario.KEEP:
        # data before the transfer date keeps its origin; from it on, the sync provides it
        deleted = delete_bookkeeping(db.session, dossier.id, from_date=transfer_date)
    else:
        deleted = delete_bookkeeping(db.session, dossier.id)
    link = _new_link(actor, dossier, connection, reference, reference_name, scenario, transfer_date, options, history)
    audit.record(actor, "sync.setup", link, dossier_id=dossier.id,
                 summary=f"Set up sync with {connection.name} ({SCENARIO_LABELS[scenario]})",
                 changes={"deleted": deleted, "transfer_date": transfer_date, "history": history,
                          "preview": preview.audit_counts(), "confirmed": confirmed})
    return _commit_and_queue(actor, dossier, link, queue)


def switch_sync(actor, dossier, scenario, connection=None, reference=None, transfer_date=None,
                reference_name=None, options=None, *, queue=True, history=History.PREVIOUS_YEAR, confirmed=None):
    """Change the active accounting sync of ``dossier`` (scenarios 1, 2 and 3); ``history`` and
    ``confirmed`` as for :func:`set_up_sync`."""
    _check_may_set_up(actor, dossier)
    current = dossier.active_link("accounting")
    if current is None:
        raise SetupError(gettext("This file has no sync to switch. Use \"Set up sync\"."))
    if scenario == Scenario.MANUAL:
        return revert_to_manual(actor, dossier)
    if scenario not in (Scenario.SWITCH, Scenario.RE_ESTABLISH):
        raise SetupError(gettext("Choose how to switch the sync."))
    if connection is None or not reference:
        raise SetupError(gettext("Choose the connection and the company to sync from."))
    _check_connection(dossier, connection)
    if connection.kind != "accounting":
        raise SetupError(gettext("Choose a bookkeeping connection."))
    _check_history(history)
    if scenario == Scenario.SWITCH:
        check_transfer_date(dossier, transfer_date, after=current.valid_from)
    preview = _checked_preview(dossier, scenario, transfer_date if scenario == Scenario.SWITCH else None, confirmed)
    if scenario == Scenario.SWITCH:
        _end(current, valid_to=transfer_date - timedelta(days=1))
        deleted = delete_bookkeeping(db.session, dossier.id, from_date=transfer_date)
    else:
        transfer_date = None
        _end(current)
        deleted = delete_bookkeeping(db.session, dossier.id)
    link = _new_link(actor, dossier, connection, reference, reference_name, scenario, transfer_date, options, history)
    audit.record(actor, f"sync.{scenario}", link, dossier_id=dossier.id,
                 summary=f"{SCENARIO_LABELS[scenario]}: {current.connection.name} -> {connection.name}",
                 changes={"deleted": deleted, "transfer_date": transfer_date, "previous_link": current.id,
                          "history": history, "preview": preview.audit_counts(), "confirmed": confirmed})
    return _commit_and_queue(actor, dossier, link, queue)


def revert_to_manual(actor, dossier):
    """Scenario (2): stop the accounting sync; nothing is deleted. Returns the ended link."""
    _check_may_set_up(actor, dossier)
    current = dossier.active_link("accounting")
    if current is None:
        raise SetupError(gettext("This file has no sync to stop."))
    _end(current, valid_to=utcnow().date())
    dossier.sync_status = None
    audit.record(actor, "sync.manual", current, dossier_id=dossier.id,
                 summary=f"Reverted to a manual file (sync with {current.connection.name} stopped; no data deleted)")
    db.session.commit()
    return current


def remove_administration_link(actor, dossier):
    """Stop the administration sync (company master data); snapshots stay as history."""
    _check_may_set_up(actor, dossier)
    current = dossier.active_link("administration")
    if current is None:
        raise SetupError(gettext("This file has no administration sync."))
    _end(current, valid_to=utcnow().date())
    audit.record(actor, "sync.admin_removed", current, dossier_id=dossier.id,
                 summary=f"Removed the administration sync with {current.connection.name}")
    db.session.commit()
    return current


def companies_already_linked(dossier, connection, reference):
    """The other files of ``dossier``'s firm whose active link of the same kind reaches the same
    company (same package and same reference, through any of the firm's connections), by name.

    Two files fed by one company usually mean a duplicate file; the Sync tab warns before the
    link is made and the user may go on (:func:`record_duplicate_confirmed`).
    """
    return files_linked_to_company(dossier.firm_id, connection, reference, except_dossier_id=dossier.id)


def files_linked_to_company(firm_id, connection, reference, *, except_dossier_id=None):
    """The files of firm ``firm_id`` (but ``except_dossier_id``) whose active link of
    ``connection``'s kind reaches company ``reference`` of ``connection``'s package, by name.
    The new-client wizard asks it before the file exists."""
    from app.models import Dossier

    if connection is None or not reference:
        return []
    # ids first: PostgreSQL cannot DISTINCT whole rows that hold JSON columns
    linked = (select(DossierLink.dossier_id).join(Connection, Connection.id == DossierLink.connection_id)
              .where(DossierLink.firm_id == firm_id, DossierLink.ended_at.is_(None),
                     DossierLink.kind == connection.kind, Connection.package == connection.package,
                     DossierLink.reference == str(reference)))
    if except_dossier_id is not None:
        linked = linked.where(DossierLink.dossier_id != except_dossier_id)
    return db.session.scalars(
        select(Dossier).where(Dossier.firm_id == firm_id, Dossier.id.in_(linked)).order_by(Dossier.name)
    ).all()


def record_duplicate_confirmed(actor, dossier, link, others):
    """Audit that ``actor`` linked ``dossier`` (``link``) to a company the files ``others``
    already use, after the warning; commits."""
    audit.record(actor, "sync.duplicate_company_confirmed", link, dossier_id=dossier.id,
                 summary=f"Linked to {link.reference_name or link.reference}, which "
                         f"{', '.join(repr(other.name) for other in others)} already use(s)",
                 changes={"reference": link.reference, "package": link.connection.package,
                          "other_files": [other.id for other in others]})
    db.session.commit()


# -- internals -----------------------------------------------------------------------


def _check_may_set_up(actor, dossier):
    if not can(actor, "setup_sync", dossier.id):
        raise Forbidden("You may not set up the sync of this file.")


def _check_connection(dossier, connection):
    if not isinstance(connection, Connection) or connection.firm_id != dossier.firm_id:
        raise SetupError(gettext("Choose one of your firm's connections."))
    if connection.level == "dossier" and connection.owner_dossier_id not in (None, dossier.id):
        raise SetupError(gettext("That connection belongs to another file."))
    if connection.status == ConnectionStatus.NEEDS_RECONNECT:
        raise SetupError(gettext("The connection %(name)s must be reconnected by an administrator first.",
                                 name=connection.name))
    if connection.status != ConnectionStatus.ACTIVE:
        raise SetupError(gettext("The connection %(name)s is disabled.", name=connection.name))


def _set_up_administration(actor, dossier, connection, reference, reference_name, options, queue):
    current = dossier.active_link("administration")
    if current is not None:
        _end(current, valid_to=utcnow().date())
    link = _new_link(actor, dossier, connection, reference, reference_name, Scenario.REPLACE, None, options)
    audit.record(actor, "sync.admin_setup", link, dossier_id=dossier.id,
                 summary=f"Set up the administration sync with {connection.name}",
                 changes={"previous_link": current.id if current else None})
    return _commit_and_queue(actor, dossier, link, queue)


def _check_history(history):
    if history not in History.CHOICES:
        raise SetupError(gettext("Choose how much history to import: from the transfer date, the previous year, "
                                 "or all the package has."))


def _checked_preview(dossier, scenario, transfer_date, confirmed):
    """What the set-up keeps and replaces; refuses to replace uploaded figures when ``confirmed`` is False."""
    preview = setup_preview.preview(dossier, scenario, transfer_date)
    if confirmed is False and preview.needs_confirmation:
        raise ConfirmationNeeded(gettext("This set-up replaces uploaded figures: %(what)s Confirm to go on.",
                                         what=" ".join(preview.sentences())), preview)
    return preview


def _new_link(actor, dossier, connection, reference, reference_name, scenario, transfer_date, options,
              history=History.PREVIOUS_YEAR):
    if not reference:
        raise SetupError(gettext("Choose the company to sync."))
    known = {str(r.get("reference")): r.get("name") for r in (connection.references or [])}
    link = DossierLink(
        firm_id=dossier.firm_id, dossier=dossier, connection=connection, kind=connection.kind,
        reference=str(reference), reference_name=reference_name or known.get(str(reference)),
        scenario=scenario, valid_from=transfer_date, options=options or {}, history=history,
        created_by_id=actor.user_id if actor else None,
    )
    db.session.add(link)
    db.session.flush()
    return link


def _end(link, valid_to=None):
    link.ended_at = utcnow()
    if valid_to is not None:
        link.valid_to = valid_to


def _commit_and_queue(actor, dossier, link, queue):
    db.session.commit()
    from app.services.webhooks import dossier_linked  # the firm's webhook endpoints hear of the new link

    dossier_linked(link.id)
    if queue:
        from app.services.syncs import request_sync

        request_sync(dossier.id, "setup", actor, link_id=link.id)
    return link
