"""Dossiers (client files): who sees them is decided by :func:`app.access.dossier_visibility`.

Administrators and staff edit the files they can see; administrators and staff with
"may create files" create them; only administrators delete them. "Resync selected"
queues a sync for every chosen file that has a sync set up.

The list shows, per file, its status badge, its last sync ("3 h ago", exact time in the
title), the package and the company reference of its accounting link, and the sync-now
arrows (a POST to the dossier page's sync route) for the roles that may sync. It filters by
sync state, staleness (:func:`stale_condition`), package and connection; every filter has a
stable URL argument (:func:`files_url` builds them, the dashboard links to them). The links
and their connections are eager-loaded: the number of SQL statements of a page does not
depend on its size. Support staff also get a Firm column, a Firm filter and the firm picker
(:func:`picked_firm_id`); the Edit page has a Sync tab (:meth:`DossierView.sync_tab_url`).
"""
from datetime import timedelta

from flask import current_app, flash, has_app_context, has_request_context, request, session, url_for
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.babel import gettext as admin_gettext
from flask_babel import force_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import selectinload
from wtforms import SelectField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from admin_views.base import SUPPORT, SecureModelView, effective_role
from admin_views.choices import ScopedMultipleField, firm_groups, firm_members
from admin_views.country_currency import CountryField, CurrencyField
from admin_views.formatting import badge, status_badge, timestamp, uploaded_badge, when, yes_no
from app.access import SESSION_FIRM_KEY, can, current_actor
from app.extensions import db
from app.models import Connection, Dossier, DossierLink, Firm, Frequency, Role, RunStatus
from app.models.base import utcnow
from app.services.dossiers import delete_dossier_rows, keep_creators_access
from app.services.manual_files import last_uploads
from app.time_zones import SUPPORT_PICKED_FIRM_KEY

EVERYONE = {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT}
CONTRIBUTORS = {Role.ADMIN, Role.STAFF}
#: the fields of a file that say who may see it: administrators only change them
ACCESS_FIELDS = ("private", "users", "groups")
FREQUENCY_LABELS = {Frequency.MONTH: _l("Monthly"), Frequency.QUARTER: _l("Quarterly"), Frequency.YEAR: _l("Yearly")}
#: roles whose sync-now arrows show (``can(actor, "sync_now", id)`` holds for every file they see)
SYNCERS = {Role.ADMIN, Role.STAFF}
DEFAULT_STALE_AFTER_HOURS = 36
#: session key of the firm support staff picked (the firm picker of the dashboard and the Files list)
PICKED_FIRM_KEY = SUPPORT_PICKED_FIRM_KEY  # app.time_zones shows that firm's times


def picked_firm_id(actor):
    """The firm support staff picked to look at (dashboard tiles, Files list), or None: every
    firm. Only support staff have one; anyone else's session value is ignored (they see their
    own firm, whatever the session says)."""
    if actor is None or not actor.is_support or not has_request_context():
        return None
    value = session.get(PICKED_FIRM_KEY)
    return value if isinstance(value, int) else None


def firm_options():
    """``[(id, name)]`` of every firm, by name: the choices of support's firm picker and Firm
    filter (no one else is offered them)."""
    actor = current_actor() if has_request_context() else None
    if actor is None or not actor.is_support:
        return []
    return [(str(row.id), row.name) for row in db.session.execute(select(Firm.id, Firm.name).order_by(Firm.name))]

# -- staleness and sync states ------------------------------------------------------------


def stale_after_hours():
    """``STALE_AFTER_HOURS`` (36 unless configured)."""
    if not has_app_context():
        return DEFAULT_STALE_AFTER_HOURS
    return current_app.config.get("STALE_AFTER_HOURS", DEFAULT_STALE_AFTER_HOURS)


def stale_condition(now=None, firm_id=None):
    """SQL condition on :class:`Dossier`: a file with an active link whose last successful sync
    is more than ``STALE_AFTER_HOURS`` old. Files never synced are not stale (their status says
    why: queued, failed...); files without an active link (manual files) are never stale.

    The active links are an uncorrelated ``IN`` (hashed once by PostgreSQL, not probed per
    file); ``firm_id`` limits them to one firm's links when the caller looks at one firm.
    """
    cutoff = (now or utcnow()) - timedelta(hours=stale_after_hours())
    active = select(DossierLink.dossier_id).where(DossierLink.ended_at.is_(None))
    if firm_id is not None:
        active = active.where(DossierLink.firm_id == firm_id)
    return and_(Dossier.last_synced_at.is_not(None), Dossier.last_synced_at < cutoff, Dossier.id.in_(active))


#: sync state filter value -> (label, SQL condition on Dossier.sync_status)
SYNC_STATES = {
    "failed": (_l("Failed"), Dossier.sync_status == RunStatus.FAILED),
    "needs_reconnect": (_l("Needs reconnect"), Dossier.sync_status == RunStatus.NEEDS_RECONNECT),
    "running": (_l("Syncing"), Dossier.sync_status == RunStatus.RUNNING),
    "queued": (_l("Queued or waiting"), Dossier.sync_status.in_((RunStatus.QUEUED, RunStatus.DEFERRED))),
    "succeeded": (_l("Synced"), Dossier.sync_status == RunStatus.SUCCEEDED),
    "cancelled": (_l("Cancelled"), Dossier.sync_status == RunStatus.CANCELLED),
    "never": (_l("Never synced"), Dossier.sync_status.is_(None)),
}


def _active_link_through(condition):
    """EXISTS an active accounting link of the file whose connection matches ``condition``."""
    return exists().where(
        DossierLink.dossier_id == Dossier.id, DossierLink.ended_at.is_(None), DossierLink.kind == "accounting",
        DossierLink.connection_id == Connection.id, condition,
    )


class SyncStateFilter(BaseSQLAFilter):
    """Status: failed, needs reconnect, syncing, queued or waiting, synced, cancelled, never synced."""

    def __init__(self):
        super().__init__(Dossier.sync_status, _l("Status"), options=[(k, v[0]) for k, v in SYNC_STATES.items()])

    def validate(self, value):
        return value in SYNC_STATES

    def apply(self, query, value, alias=None):
        return query.filter(SYNC_STATES[value][1])

    def operation(self):
        return _l("is")


class StaleFilter(BaseSQLAFilter):
    """"Stale": no successful sync for more than ``STALE_AFTER_HOURS`` (see :func:`stale_condition`)."""

    def __init__(self):
        super().__init__(Dossier.last_synced_at, _l("Stale"),
                         options=lambda: [("yes", _l("No successful sync for more than %(hours)s h",
                                                     hours=stale_after_hours())),
                                          ("no", _l("Synced recently, or no sync set up"))])

    def validate(self, value):
        return value in ("yes", "no")

    def apply(self, query, value, alias=None):
        condition = stale_condition()
        return query.filter(condition if value == "yes" else ~condition)

    def operation(self):
        return _l("is")


def _package_options():
    from connectors import registry

    return sorted(((spec.key, spec.display_name) for spec in registry.specs()), key=lambda option: option[1])


class PackageFilter(BaseSQLAFilter):
    """The package of the file's active accounting link."""

    def __init__(self):
        super().__init__(Dossier.id, _l("Package"), options=_package_options)

    def validate(self, value):
        return value in dict(_package_options())

    def apply(self, query, value, alias=None):
        return query.filter(_active_link_through(Connection.package == value))

    def operation(self):
        return _l("is")


def _connection_options():
    """The connections the actor may know of, by name: support every firm's, an administrator
    their firm's, anyone else only those linked to a file they may see (a connection's name
    often names another client)."""
    from app.access import current_actor, visible_dossier_ids

    actor = current_actor() if has_request_context() else None
    if actor is None:
        return []
    query = select(Connection.id, Connection.name).order_by(Connection.name)
    if not actor.is_support:
        query = query.where(Connection.firm_id == actor.firm_id)
        if effective_role(actor) != Role.ADMIN:
            query = query.where(exists().where(
                DossierLink.connection_id == Connection.id, DossierLink.ended_at.is_(None),
                DossierLink.dossier_id.in_(visible_dossier_ids(actor))))
    return [(str(row.id), row.name) for row in db.session.execute(query)]


class ConnectionFilter(BaseSQLAFilter):
    """The connection of the file's active accounting link (the choices are the actor's firm's)."""

    def __init__(self):
        super().__init__(Dossier.id, _l("Connection"), options=_connection_options)

    def validate(self, value):
        return str(value).isdigit()

    def apply(self, query, value, alias=None):
        return query.filter(_active_link_through(Connection.id == int(value)))

    def operation(self):
        return _l("is")


class FirmFilter(BaseSQLAFilter):
    """The file's firm: offered to support staff only (:meth:`DossierView._get_filter_groups`);
    anyone else's files are their firm's already, so the condition never widens what they see."""

    def __init__(self):
        super().__init__(Dossier.firm_id, _l("Firm"), options=firm_options)

    def validate(self, value):
        return str(value).isdigit()

    def apply(self, query, value, alias=None):
        return query.filter(Dossier.firm_id == int(value))

    def operation(self):
        return _l("is")


#: URL argument (``named_filter_urls``) of each list filter, for :func:`files_url`
FILTER_ARGS = {"status": "status_is", "stale": "stale_is", "package": "package_is", "connection": "connection_is",
               "firm": "firm_is"}


def files_url(**filters):
    """The Files list filtered, e.g. ``files_url(status="failed")``, ``files_url(stale="yes")``."""
    args = {f"flt{index}_{FILTER_ARGS[name]}": value for index, (name, value) in enumerate(sorted(filters.items()))}
    return url_for("dossiers.index_view", **args)


# -- column formatters ----------------------------------------------------------------------


def ago(value, now=None):
    """"just now", "12 min ago", "3 h ago", "5 days ago"; "never" for None."""
    if value is None:
        return gettext("never")
    seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
    if seconds < 60:
        return gettext("just now")
    if seconds < 3600:
        return gettext("%(minutes)s min ago", minutes=seconds // 60)
    if seconds < 48 * 3600:
        return gettext("%(hours)s h ago", hours=seconds // 3600)
    return ngettext("%(num)s day ago", "%(num)s days ago", seconds // 86400)


class ListRequest:
    """What every row of one Files list request shares, computed once (see :func:`list_request`).

    A list of 100 files asks these per row; computed once they keep the page's time from
    growing with its size: the actor, the CSRF token, the URL prefixes of the dossier page,
    the sync route and the row actions, and the status badges.
    """

    def __init__(self, view):
        self.actor = view.actor
        self.csrf = generate_csrf()
        self.sync_url = url_for("dossier.sync")
        self.page_url = url_for("dossier.index") + "?id="
        self.may_sync = (self.actor is not None and not self.actor.is_support and self.actor.role in SYNCERS)
        #: Flask-Admin's own words for the row actions (its translations), escaped
        self.labels = {key: escape(admin_gettext(text)) for key, text in (
            ("view", "View Record"), ("edit", "Edit Record"), ("delete", "Delete Record"),
            ("confirm_delete", "Are you sure you want to delete this record?"))}
        self._badges = {}
        self._row_actions = {}
        self._company_data = None
        self._uploads = None

    def company_data_status(self, context, dossier):
        """The company-data (administration) sync status of ``dossier``, for the whole page in
        one statement (:func:`app.company_profile.sync_statuses`)."""
        if self._company_data is None:
            from app.company_profile import sync_statuses

            rows = context.get("data") or [dossier]
            self._company_data = {i: s["company_data"] for i, s in sync_statuses([m.id for m in rows]).items()}
        return self._company_data.get(dossier.id)

    def last_upload(self, context, dossier):
        """When ``dossier`` (a manual file) last got figures by upload, or None; for the whole
        page in one statement (:func:`app.services.manual_files.last_uploads`)."""
        if self._uploads is None:
            rows = context.get("data") or [dossier]
            self._uploads = last_uploads(m.id for m in rows if m.active_link("accounting") is None)
        return self._uploads.get(dossier.id)

    def badge(self, status):
        if status not in self._badges:
            self._badges[status] = badge(status)
        return self._badges[status]

    def row_action_urls(self, view, return_url):
        """``(details, edit or None, delete or None)`` URL prefixes for :meth:`DossierView.row_actions`."""
        if return_url not in self._row_actions:
            self._row_actions[return_url] = (
                view.get_url(".details_view", url=return_url) + "&id=" if view.can_view_details else None,
                view.get_url(".edit_view", url=return_url) + "&id=" if view.can_edit else None,
                view.get_url(".delete_view") if view.can_delete else None,
            )
        return self._row_actions[return_url]


def list_request(view):
    """The :class:`ListRequest` of the current request, kept in the request's WSGI environ
    (not on ``flask.g``, which outlives a request when an app context was already pushed)."""
    shared = request.environ.get("firmsync.files_list")
    if shared is None:
        shared = request.environ["firmsync.files_list"] = ListRequest(view)
    return shared


def _last_sync(view, context, model, name):
    if model.last_synced_at is None:
        return Markup(f'<span class="text-muted">{escape(gettext("never"))}</span>')
    return Markup(f'<span class="fs-ago" title="{escape(timestamp(model.last_synced_at))}">'
                  f'{escape(ago(model.last_synced_at))}</span>')


def _package(view, context, model, name):
    link = model.active_link("accounting")
    if link is None:
        return ""
    from admin_views.connections import package_display_name

    return package_display_name(link.connection.package)


def _reference(view, context, model, name):
    link = model.active_link("accounting")
    if link is None:
        return ""
    cell = escape(link.reference) if not link.reference_name else Markup(
        f'{escape(link.reference_name)} <span class="text-muted small">{escape(link.reference)}</span>')
    connection = link.connection
    if connection.status == "needs_reconnect" and _may_reconnect(view.actor, connection, model):
        from admin_views.connections import reconnect_button

        cell += reconnect_button(connection)
    return Markup(cell)


def sync_arrows(dossier, csrf=None, action=None):
    """The sync-now arrows: a POST (with CSRF) to the dossier page's sync route.

    ``csrf`` and ``action`` (the token and the route's URL) may be given when many rows share them.
    """
    return Markup(
        f'<form method="post" action="{escape(action or url_for("dossier.sync"))}" class="d-inline fs-sync-now">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf or generate_csrf())}">'
        f'<input type="hidden" name="id" value="{dossier.id}">'
        f'<button type="submit" class="btn btn-sm btn-link p-0" title="{escape(gettext("Sync now"))}" data-dossier="{dossier.id}">'
        f'&#8635;</button></form>'
    )


#: company-data sync outcomes the Files list shows beside a file's own (bookkeeping) status
COMPANY_DATA_SHOWN = (RunStatus.FAILED, RunStatus.NEEDS_RECONNECT)


def _status(view, context, model, name):
    shared = list_request(view)
    uploaded_at = shared.last_upload(context, model) if model.active_link("accounting") is None else None
    cell = uploaded_badge(uploaded_at) if uploaded_at else shared.badge(model.sync_status)
    if shared.may_sync and model.active_link("accounting") is not None:
        cell += Markup(" ") + sync_arrows(model, shared.csrf, shared.sync_url)
    if model.active_link("administration") is not None and model.active_link("accounting") is not None:
        company = shared.company_data_status(context, model)
        if company in COMPANY_DATA_SHOWN:  # the books are fine or not on their own; say the register's part
            cell += Markup('<div class="small text-muted fs-company-data">{} {}</div>').format(
                gettext("Company data:"), shared.badge(company))
    return cell


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _blank_to_none(value):
    return (value.strip() or None) if isinstance(value, str) else value


def _name(view, context, model, name):
    number = f'<span class="text-muted">{escape(model.number)}</span> ' if model.number else ""
    page = escape(list_request(view).page_url + str(model.id))  # the dossier page (admin_views/dossier_page.py)
    return Markup(f'{number}<a href="{page}" class="fs-dossier-link">{escape(model.name)}</a>')


def _accounting_link(view, context, model, name):
    link = model.active_link("accounting")
    if link is None:
        return Markup('<span class="text-muted">no sync</span>')
    connection = link.connection  # eager-loaded with the links (DossierView.get_query)
    cell = escape(f"{connection.name if connection else '?'} → {link.reference_name or link.reference}")
    if (connection is not None and connection.status == "needs_reconnect"
            and _may_reconnect(view.actor, connection, model)):
        from admin_views.connections import reconnect_button

        cell += reconnect_button(connection)
    return Markup(cell)


def _may_reconnect(actor, connection, dossier):
    """Admins reconnect firm-level connections; admin/staff with access reconnect a file's own grant.

    ``dossier`` is the row being shown (the actor sees it): when it owns the connection the
    role decides without a query, so a page of files needing a reconnect costs no SQL per row.
    """
    if actor is None or actor.is_support:
        return False
    if connection.level == "firm":
        return actor.role == Role.ADMIN
    if connection.owner_dossier_id == dossier.id:
        return actor.role in (Role.ADMIN, Role.STAFF)
    return can(actor, "setup_sync", connection.owner_dossier_id)


class DossierView(SecureModelView):
    model_class = Dossier
    menu_name = _l("Files")
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

    column_list = ("name", "sync_status", "last_synced_at", "package", "reference", "country", "private")
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
    column_filters = (SyncStateFilter(), StaleFilter(), PackageFilter(), ConnectionFilter(), "country", "private",
                      FirmFilter())
    named_filter_urls = True
    column_default_sort = "name"
    column_labels = {
        "name": _l("File"), "number": _l("Number"), "company_number": _l("Company number"),
        "vat_number": _l("VAT number"), "sync_status": _l("Status"), "last_synced_at": _l("Last sync"),
        "accounting_link": _l("Accounting source"), "private": _l("Private"), "users": _l("People with access"),
        "package": _l("Package"), "reference": _l("Company"), "groups": _l("Groups with access"),
        "first_fiscal_year_end": _l("End of first fiscal year"), "frequency": _l("Reporting"),
        "country": _l("Country"), "currency": _l("Currency"),
    }
    column_formatters = {
        "name": _name,
        "sync_status": _status,
        "last_synced_at": _last_sync,
        "package": _package,
        "reference": _reference,
        "accounting_link": _accounting_link,
        "firm": lambda v, c, m, n: m.firm.name if m.firm else "",
        "private": yes_no,
        "frequency": lambda v, c, m, n: FREQUENCY_LABELS.get(m.frequency, m.frequency),
    }
    column_formatters_export = {"last_synced_at": lambda v, c, m, n: m.last_synced_at.isoformat() if m.last_synced_at else ""}

    form_columns = (
        "name", "number", "company_number", "vat_number", "country", "currency", "frequency",
        "first_fiscal_year_end", "private", "users", "groups",
    )
    form_overrides = {"frequency": SelectField, "users": ScopedMultipleField, "groups": ScopedMultipleField,
                      "country": CountryField, "currency": CurrencyField}
    form_args = {
        "name": {"validators": [DataRequired(), Length(max=200)]},
        "number": {"validators": [Optional(), Length(max=50)], "filters": [_blank_to_none]},
        "company_number": {"validators": [Optional(), Length(max=50)], "filters": [_blank_to_none]},
        "vat_number": {"validators": [Optional(), Length(max=50)], "filters": [_blank_to_none, _upper]},
        "country": {"validators": [DataRequired()]},
        "currency": {"validators": [DataRequired()]},
        "frequency": {"choices": list(FREQUENCY_LABELS.items()), "label": _l("Reporting")},
        "private": {"description": _l("Private files are hidden from staff unless granted to them.")},
        "users": {"query_factory": firm_members, "label": _l("People with access")},
        "groups": {"query_factory": firm_groups, "label": _l("Groups with access")},
    }

    column_formatters_detail = {**column_formatters, "last_synced_at": when, "sync_status": status_badge,
                                "created_at": when}
    list_template = "admin/dossier_list.html"
    #: Flask-Admin's edit page plus a "Sync" tab (:meth:`sync_tab_url`)
    edit_template = "admin/dossier_edit.html"

    @property
    def actor(self):
        """The request's actor, built once per request and per (user, firm): the list asks for
        it in several columns of every row."""
        if not has_request_context():
            return current_actor()
        key = (current_user.get_id(), session.get(SESSION_FIRM_KEY))
        cached = request.environ.get("firmsync.files_actor")
        if cached is None or cached[0] != key:
            cached = request.environ["firmsync.files_actor"] = (key, current_actor())
        return cached[1]

    def row_actions(self, row, return_url):
        """The view, edit and delete icons of one row (what Flask-Admin's ``row_actions.html``
        macros render), from URL prefixes and a CSRF token computed once per request."""
        shared = list_request(self)
        details, edit, delete = shared.row_action_urls(self, return_url)
        html = []
        if details:
            html.append(f'<a class="icon" href="{escape(details)}{row.id}" title="{shared.labels["view"]}">'
                        f'<span class="fa fa-eye glyphicon glyphicon-eye-open"></span></a>')
        if edit:
            html.append(f'<a class="icon" href="{escape(edit)}{row.id}" title="{shared.labels["edit"]}">'
                        f'<span class="fa fa-pencil glyphicon glyphicon-pencil"></span></a>')
        if delete:
            html.append(
                f'<form class="icon" method="POST" action="{escape(delete)}">'
                f'<input id="id" name="id" type="hidden" value="{row.id}">'
                f'<input id="url" name="url" type="hidden" value="{escape(return_url)}">'
                f'<input id="csrf_token" name="csrf_token" type="hidden" value="{escape(shared.csrf)}">'
                f'<button data-confirm="{shared.labels["confirm_delete"]}" '
                f'title="{shared.labels["delete"]}"><span class="fa fa-trash glyphicon glyphicon-trash"></span>'
                f'</button></form>')
        return Markup("".join(html))

    def get_query(self):
        """The visible files with their links and the links' connections loaded up front
        (two extra statements whatever the page size, instead of two per row); for support
        staff, the firm they picked (:func:`picked_firm_id`) and the firms' names."""
        query = super().get_query().options(selectinload(Dossier.links).selectinload(DossierLink.connection))
        if self.actor is not None and self.actor.is_support:
            query = query.options(selectinload(Dossier.firm))
        return self._in_picked_firm(query)

    def get_count_query(self):
        """The count of the visible files (in support's picked firm)."""
        return self._in_picked_firm(super().get_count_query())

    def _in_picked_firm(self, query):
        firm_id = picked_firm_id(self.actor)
        return query if firm_id is None else query.filter(Dossier.firm_id == firm_id)

    def sync_tab_url(self, dossier):
        """The URL of the file's Sync tab (set-up and switch, :mod:`admin_views.dossier_sync`) for
        the Edit page's "Sync" tab, or None when the actor may not set up this file's sync (the
        tab's own checks answer 403 anyway)."""
        actor = self.actor
        if dossier is None or actor is None or actor.is_support or not can(actor, "setup_sync", dossier.id):
            return None
        return url_for("dossier_sync.index", id=dossier.id)

    def render(self, template, **kwargs):
        """Flask-Admin's render; support staff's list has a Firm column after the file's name."""
        columns = kwargs.get("list_columns")
        if columns is not None and self.actor is not None and self.actor.is_support:
            at = next((i + 1 for i, (name, _) in enumerate(columns) if name == "name"), 0)
            kwargs["list_columns"] = columns[:at] + [("firm", gettext("Firm"))] + columns[at:]
            kwargs["firm_picker"] = {"firms": firm_options(), "picked": picked_firm_id(self.actor)}
        return super().render(template, **kwargs)

    def _get_filter_groups(self):
        """The filters with their choices computed for this request (the connections of the
        actor's firm, the configured staleness); Flask-Admin would reuse those of start-up.
        The Firm filter is support staff's only."""
        self._refresh_filters_cache()
        groups = super()._get_filter_groups()
        if groups and (self.actor is None or not self.actor.is_support):
            groups.pop(str(FirmFilter().name), None)
        return groups

    def get_filter_arg(self, index, flt):
        """The filter's URL argument, always from its English name (``status_is``, ``stale_is``...):
        :func:`files_url` and bookmarked links keep working whatever the user's language."""
        with force_locale("en"):
            return super().get_filter_arg(index, flt)

    def allowed(self, operation):
        """Creating files also needs :func:`app.access.can` ``create_dossiers`` (staff flag)."""
        if operation == "create":
            return super().allowed("create") and can(self.actor, "create_dossiers")
        return super().allowed(operation)

    def create_form(self, obj=None):
        return self._without_access_fields(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._without_access_fields(super().edit_form(obj))

    def _without_access_fields(self, form):
        """Who may see a file (private flag, people and groups with access) is for administrators
        only: the other roles' forms do not have those fields."""
        if effective_role(self.actor) != Role.ADMIN:
            for name in ACCESS_FIELDS:
                if name in form:
                    delattr(form, name)
        return form

    def on_model_change(self, form, model, is_created):
        if is_created:
            keep_creators_access(self.actor, model)
        elif effective_role(self.actor) != Role.ADMIN and set(self.changes_of(model)) & set(ACCESS_FIELDS):
            raise ValidationError(gettext("Only an administrator can change who may see a file."))
        super().on_model_change(form, model, is_created)

    def on_model_delete(self, model):
        super().on_model_delete(model)
        delete_dossier_rows(model)

    @action("resync", _l("Resync selected"), _l("Queue a sync for every selected file?"))
    def action_resync(self, ids):
        """Queue a bulk sync for each chosen file the actor may sync; files without a sync are skipped."""
        from app.services.syncs import request_syncs

        actor = self.actor
        chosen = sorted(dossier.id for dossier in self.scoped(ids))  # scoped: only files the actor sees
        runs = request_syncs(chosen, trigger="bulk", actor=actor)[0] if chosen and can(actor, "sync_now") else []
        queued, skipped = len(runs), len(chosen) - len(runs)
        said = ngettext("%(num)d sync queued", "%(num)d syncs queued", queued)
        if skipped:
            said += ", " + ngettext("%(num)d file skipped (no sync set up)", "%(num)d files skipped (no sync set up)",
                                    skipped)
        flash(said + ".", "success" if queued else "info")
