"""Dossiers (client files): who sees them is decided by :func:`app.access.dossier_visibility`.

Administrators and staff edit the files they can see; administrators and staff with
"may create files" create them; only administrators delete them. "Resync selected"
queues a sync for every chosen file that has a sync set up.
"""
from flask import flash, url_for
from flask_admin.actions import action
from markupsafe import Markup, escape
from sqlalchemy import delete, update
from wtforms import SelectField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from admin_views.base import SUPPORT, SecureModelView
from admin_views.choices import ScopedMultipleField, firm_groups, firm_members
from admin_views.formatting import status_badge, when, yes_no
from app.access import can
from app.extensions import db
from app.models import (
    Account, AuditEvent, CompanyProfile, Connection, Dossier, FiscalYear, Frequency, LedgerLine,
    OpeningBalance, Period, PeriodBalance, Role, SyncRun, User,
)

EVERYONE = {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT}
CONTRIBUTORS = {Role.ADMIN, Role.STAFF}
FREQUENCY_LABELS = {Frequency.MONTH: "Monthly", Frequency.QUARTER: "Quarterly", Frequency.YEAR: "Yearly"}


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _blank_to_none(value):
    return (value.strip() or None) if isinstance(value, str) else value


def _name(view, context, model, name):
    number = f'<span class="text-muted">{escape(model.number)}</span> ' if model.number else ""
    page = escape(url_for("dossier.index", id=model.id))  # the dossier page (admin_views/dossier_page.py)
    return Markup(f'{number}<a href="{page}" class="fs-dossier-link">{escape(model.name)}</a>')


def _accounting_link(view, context, model, name):
    link = model.active_link("accounting")
    if link is None:
        return Markup('<span class="text-muted">no sync</span>')
    connection = db.session.get(Connection, link.connection_id)
    cell = escape(f"{connection.name if connection else '?'} → {link.reference_name or link.reference}")
    if connection is not None and connection.status == "needs_reconnect" and _may_reconnect(view.actor, connection):
        from admin_views.connections import reconnect_button

        cell += reconnect_button(connection)
    return Markup(cell)


def _may_reconnect(actor, connection):
    """Admins reconnect firm-level connections; admin/staff with access reconnect a file's own grant."""
    if connection.level == "firm":
        return actor is not None and actor.role == Role.ADMIN
    return can(actor, "setup_sync", connection.owner_dossier_id)


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


class DossierView(SecureModelView):
    model_class = Dossier
    menu_name = "Files"
    screen_endpoint = "dossiers"
    scope = "dossier_self"
    permissions = {
        "list": EVERYONE,
        "create": CONTRIBUTORS,  # staff only with "may create files", see allowed()
        "edit": CONTRIBUTORS,
        "delete": {Role.ADMIN},
        "export": CONTRIBUTORS,
    }
    action_permissions = {"resync": CONTRIBUTORS}

    column_list = ("name", "sync_status", "last_synced_at", "accounting_link", "country", "private")
    column_details_list = (
        "name", "accounting_link", "number", "company_number", "vat_number", "country", "currency", "frequency",
        "first_fiscal_year_end", "private", "users", "groups", "sync_status", "last_synced_at", "created_at",
    )
    column_export_list = (
        "number", "name", "company_number", "vat_number", "country", "currency", "frequency",
        "first_fiscal_year_end", "private", "sync_status", "last_synced_at",
    )
    column_sortable_list = ("name", "sync_status", "last_synced_at", "country", "private")
    column_searchable_list = ("name", "number", "company_number", "vat_number")
    column_filters = ("sync_status", "country", "private")
    column_default_sort = "name"
    column_labels = {
        "name": "File", "number": "Number", "company_number": "Company number", "vat_number": "VAT number",
        "sync_status": "Status", "last_synced_at": "Last sync", "accounting_link": "Accounting source",
        "private": "Private", "users": "People with access", "groups": "Groups with access",
        "first_fiscal_year_end": "End of first fiscal year", "frequency": "Reporting",
    }
    column_formatters = {
        "name": _name,
        "sync_status": status_badge,
        "last_synced_at": when,
        "accounting_link": _accounting_link,
        "private": yes_no,
        "frequency": lambda v, c, m, n: FREQUENCY_LABELS.get(m.frequency, m.frequency),
    }
    column_formatters_export = {"last_synced_at": lambda v, c, m, n: m.last_synced_at.isoformat() if m.last_synced_at else ""}

    form_columns = (
        "name", "number", "company_number", "vat_number", "country", "currency", "frequency",
        "first_fiscal_year_end", "private", "users", "groups",
    )
    form_overrides = {"frequency": SelectField, "users": ScopedMultipleField, "groups": ScopedMultipleField}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "number": {"validators": [Optional(), Length(max=50)], "filters": [_blank_to_none]},
        "company_number": {"validators": [Optional(), Length(max=50)], "filters": [_blank_to_none]},
        "vat_number": {"validators": [Optional(), Length(max=50)], "filters": [_blank_to_none, _upper]},
        "country": {"validators": [DataRequired(), Regexp(r"^[A-Z]{2}$", message="Use the two-letter country code, e.g. BE.")],
                    "filters": [_upper]},
        "currency": {"validators": [DataRequired(), Regexp(r"^[A-Z]{3}$", message="Use the three-letter currency code, e.g. EUR.")],
                     "filters": [_upper]},
        "frequency": {"choices": list(FREQUENCY_LABELS.items()), "label": "Reporting"},
        "private": {"description": "Private files are hidden from staff unless granted to them."},
        "users": {"query_factory": firm_members, "label": "People with access"},
        "groups": {"query_factory": firm_groups, "label": "Groups with access"},
    }

    def allowed(self, operation):
        """Creating files also needs :func:`app.access.can` ``create_dossiers`` (staff flag)."""
        if operation == "create":
            return super().allowed("create") and can(self.actor, "create_dossiers")
        return super().allowed(operation)

    def on_model_change(self, form, model, is_created):
        actor = self.actor
        if is_created and actor.role == Role.STAFF:
            # staff keep access to the file they create, even when it is private
            me = db.session.get(User, actor.user_id)
            if me not in model.users:
                model.users.append(me)
        super().on_model_change(form, model, is_created)

    def on_model_delete(self, model):
        super().on_model_delete(model)
        delete_dossier_rows(model)

    @action("resync", "Resync selected", "Queue a sync for every selected file?")
    def action_resync(self, ids):
        """Queue a bulk sync for each chosen file the actor may sync; files without a sync are skipped."""
        from jobs.triggers import request_sync

        actor = self.actor
        queued = skipped = 0
        for dossier in self.scoped(ids):
            if not can(actor, "sync_now", dossier.id):
                skipped += 1
                continue
            if request_sync(dossier.id, trigger="bulk", actor=actor) is None:
                skipped += 1
            else:
                queued += 1
        flash(f"{queued} syncs queued, {skipped} skipped (no sync set up).", "success" if queued else "info")
