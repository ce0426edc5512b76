"""Firm-level connections: an administrator adds, edits, tests and deletes them; support lists them.

The form of a connection is built from its connector's schema
(:mod:`admin_views.connection_forms`); secret values go to ``Connection.credentials``
(encrypted by the column type) and never come back into a page, a list, an export, a log
or the audit trail.

*Test connection* and *Refresh companies* only queue a short job
(:func:`app.services.connections.request_check` / ``request_references``) and come back at
once; ``/admin/connections/task/?id=<id>&kind=check|references`` answers the job's state as
JSON for the page's small poller (:func:`task_answer`, shared with the Sync tab and the
new-client wizard), and the outcome stored on the connection shows after a reload without
JavaScript.
"""
import logging

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.helpers import get_form_data
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape
from redis.exceptions import RedisError
from sqlalchemy import func, select

from admin_views.base import SUPPORT, SecureModelView
from admin_views.connection_forms import ConnectionForm, connection_form_class, settings_rows
from admin_views.formatting import STATUS_LABELS, badge, status_badge, timestamp, when
from app import audit, oauth_flow
from app.services import connections as connection_service
from app.services.connections import CHECK, FAILED, IDLE, REFERENCES
from app.extensions import db
from app.models import Connection, ConnectionStatus, Dossier, DossierLink, Role
from connectors import registry
from connectors.base import FIRM

log = logging.getLogger("firmsync.console")
ADMIN_ONLY = {Role.ADMIN}
#: a connection's kind -> words for an accountant
KIND_LABELS = {"accounting": _l("Accounting"), "administration": _l("Administration")}


def package_spec(key):
    """The spec of a registered firm-level package, or None."""
    return next((spec for spec in registry.specs(level=FIRM) if spec.key == key), None)


def package_display_name(key):
    """The display name of any registered package (firm or dossier level), else the key itself."""
    try:
        return registry.get_connector(key).spec.display_name
    except KeyError:  # an unknown package still gets a name in lists
        return key


def _package_name(view, context, model, name):
    spec = package_spec(model.package)
    return spec.display_name if spec else model.package


def _kind(view, context, model, name):
    return KIND_LABELS.get(model.kind, model.kind)


def _settings(view, context, model, name):
    """The stored settings as the form labels them (never the raw JSON, never a secret)."""
    rows = settings_rows(package_spec(model.package), model.config)
    return Markup("".join(f'<div><span class="text-muted">{escape(label)}:</span> {escape(value)}</div>'
                          for label, value in rows)) or "—"


def _package_options():
    return [(spec.key, spec.display_name) for spec in sorted(registry.specs(level=FIRM), key=lambda s: s.display_name)]


def _running_task(context, kind, connection_id):
    """The list page's queued or running task of ``kind`` on a connection, else None."""
    state = ((context.get("connection_tasks") if context is not None else None) or {}).get((kind, connection_id))
    return state if state is not None and state.active else None


def _last_check(view, context, model, name):
    state = _running_task(context, CHECK, model.id)
    if state is not None:
        return task_cell(state, model)
    if model.last_check_at is None:
        return gettext("never")
    mark = "✓" if model.last_check_ok else "✗"
    return Markup(f'<span title="{escape(model.last_check_message or "")}">{mark} {escape(timestamp(model.last_check_at))}</span>')


def _reference_count(view, context, model, name):
    state = _running_task(context, REFERENCES, model.id)
    if state is not None:
        return task_cell(state, model)
    return len(model.references or [])


# -- console tasks (test, refresh companies): what the pages and the poller show ----------

def task_url(state, connection):
    """Where the poller asks how the task stands (the Connections screen's JSON endpoint)."""
    return url_for("connections.task", id=connection.id, kind=state.kind)


def task_text(state, connection):
    """``(mark, sentence, message)`` for a task: what the page shows in its place.

    Queued or running: "Testing connection…" / "Asking <package> for its companies…"; done:
    ✓ or ✗, a sentence and the package's message; a broken job: ✗ and "try again". A test
    with no job known shows the connection's last stored outcome; a refresh shows nothing.
    """
    if state.active:
        if state.kind == CHECK:
            return "", gettext("Testing connection…"), ""
        return "", gettext("Asking %(package)s for its companies…", package=package_display_name(connection.package)), ""
    if state.state == FAILED:
        return "✗", gettext("The job stopped before it finished; please try again."), ""
    if state.kind == CHECK:
        if state.state == IDLE:
            if connection.last_check_at is None:
                return "", "", ""
            ok, message = connection.last_check_ok, connection.last_check_message or ""
        else:
            ok, message = state.ok, state.message
        return ("✓", gettext("Connection works."), message) if ok else ("✗", gettext("Test failed."), message)
    if state.state == IDLE:
        return "", "", ""
    if state.ok:
        count = state.count or 0
        return "✓", ngettext("%(num)d company found.", "%(num)d companies found.", count), ""
    return "✗", gettext("The list could not be refreshed."), state.message


def check_time(state, connection):
    """When the outcome a test cell shows was found ("tested at …"); empty while a test runs or before any."""
    if state.kind != CHECK or state.active or connection.last_check_at is None:
        return ""
    return gettext("tested at %(when)s", when=timestamp(connection.last_check_at))


def task_answer(state, connection):
    """The poller's JSON for a task on ``connection`` (after the job, what the connection stores)."""
    mark, text, message = task_text(state, connection)
    answer = {"kind": state.kind, "connection_id": connection.id, "state": state.state, "active": state.active,
              "ok": state.ok, "message": message, "mark": mark, "text": text, "count": state.count,
              "status": connection.status}
    if state.kind == CHECK:
        answer.update(last_check_at=timestamp(connection.last_check_at, gettext("never")),
                      last_check_ok=connection.last_check_ok, time=check_time(state, connection))
    else:
        answer.update(references=[{"reference": str(ref.get("reference")), "name": ref.get("name") or ""}
                                  for ref in connection.references or []],
                      refreshed_at=timestamp(connection.references_refreshed_at, gettext("never")))
    return answer


def task_cell(state, connection, url=None):
    """A task's place in a page: a spinner and the text while it runs, then the outcome.

    The element carries the poll URL (``data-url``) and whether it is still running
    (``data-active``); the script of ``admin/connection_task.html`` takes it from there.
    """
    mark, text, message = task_text(state, connection)
    active = state.active
    return Markup(
        f'<span class="fs-connection-task" data-kind="{escape(state.kind)}" data-connection="{connection.id}" '
        f'data-url="{escape(url or task_url(state, connection))}" data-active="{"yes" if active else "no"}" '
        f'data-state="{escape(state.state)}" role="status">'
        f'<span class="fs-task-spinner spinner-border spinner-border-sm text-secondary{"" if active else " d-none"}"></span> '
        f'<span class="fs-task-mark">{escape(mark)}</span> <span class="fs-task-text">{escape(text)}</span> '
        f'<span class="fs-task-message text-muted">{escape(message)}</span> '
        f'<span class="fs-task-time text-muted small">{escape(check_time(state, connection))}</span></span>'
    )


def _linked_dossiers(view, context, model, name):
    return db.session.scalar(
        select(func.count(func.distinct(DossierLink.dossier_id)))
        .where(DossierLink.connection_id == model.id, DossierLink.ended_at.is_(None))
    )


def linked_files(connection, actor):
    """``[(Dossier, DossierLink)]``: the files the actor sees that are linked to ``connection``
    through an active link, by file name (one statement)."""
    from app.access import dossier_visibility

    return db.session.execute(
        select(Dossier, DossierLink).join(DossierLink, DossierLink.dossier_id == Dossier.id)
        .where(DossierLink.connection_id == connection.id, DossierLink.ended_at.is_(None), dossier_visibility(actor))
        .order_by(Dossier.name, DossierLink.kind)
    ).all()


def reconnect_button(connection):
    """A "Reconnect" button (POST with CSRF) starting :mod:`app.oauth_flow` for ``connection``."""
    return Markup(
        f'<form method="post" action="{escape(url_for("oauth.reconnect", connection_id=connection.id))}" '
        f'class="d-inline fs-reconnect"><input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">'
        f'<button type="submit" class="btn btn-sm btn-warning ml-1" data-connection="{connection.id}">Reconnect</button></form>'
    )


def _status(view, context, model, name):
    cell = status_badge(view, context, model, name)
    if model.status == ConnectionStatus.NEEDS_RECONNECT and view.allowed("edit"):
        cell += reconnect_button(model)
    return cell


class ConnectionView(SecureModelView):
    model_class = Connection
    menu_name = _l("Connections")
    screen_endpoint = "connections"
    permissions = {
        "list": {Role.ADMIN, SUPPORT},
        "create": ADMIN_ONLY,
        "edit": ADMIN_ONLY,
        "delete": ADMIN_ONLY,
    }
    action_permissions = {"check": ADMIN_ONLY, "refresh_references": ADMIN_ONLY}
    create_template = "admin/connection_create.html"
    details_template = "admin/connection_details.html"
    edit_template = "admin/connection_edit.html"
    list_template = "admin/connection_list.html"

    column_list = ("name", "package", "kind", "status", "last_check_at", "references", "linked_dossiers")
    column_details_list = (
        "name", "package", "kind", "status", "config", "last_check_at", "last_check_message",
        "references", "references_refreshed_at", "created_at", "updated_at",
    )
    column_sortable_list = ("name", "package", "kind", "status", "last_check_at")
    column_searchable_list = ("name",)
    column_filters = (
        FilterEqual(Connection.status, _l("Status"), options=[(s, _l(STATUS_LABELS[s])) for s in ConnectionStatus.ALL]),
        FilterEqual(Connection.kind, _l("Kind"), options=list(KIND_LABELS.items())),
        FilterEqual(Connection.package, _l("Package"), options=_package_options),
    )
    column_default_sort = "name"
    column_labels = {
        "name": _l("Name"), "package": _l("Package"), "kind": _l("Kind"), "status": _l("Status"),
        "last_check_at": _l("Last check"), "last_check_message": _l("Last check result"),
        "references": _l("Companies"), "linked_dossiers": _l("Linked files"),
        "references_refreshed_at": _l("Companies refreshed"), "config": _l("Settings"),
        "created_at": _l("Created"), "updated_at": _l("Last changed"),
    }
    column_formatters = {
        "package": _package_name,
        "kind": _kind,
        "status": _status,
        "last_check_at": _last_check,
        "references": _reference_count,
        "linked_dossiers": _linked_dossiers,
        "references_refreshed_at": lambda v, c, m, n: timestamp(m.references_refreshed_at),
    }
    column_formatters_detail = {
        **column_formatters,
        "references": lambda v, c, m, n: len(m.references or []),
        "config": _settings,
        "created_at": when,
        "updated_at": when,
    }

    def scope_query(self, query):
        """Firm scope (support: all firms), firm-level connections only."""
        return super().scope_query(query).filter(Connection.level == FIRM)

    # -- forms ---------------------------------------------------------------------
    def get_create_form(self):
        return ConnectionForm

    def get_edit_form(self):
        return ConnectionForm

    def create_form(self, obj=None):
        spec = package_spec(request.args.get("package", ""))
        if spec is None:
            abort(404)
        return connection_form_class(spec)(get_form_data())

    def edit_form(self, obj=None):
        spec = package_spec(obj.package)
        if spec is None:
            abort(404)
        stored = {**(obj.config or {}), **(obj.credentials or {})}
        return connection_form_class(spec, editing=True)(
            get_form_data(), data={"name": obj.name, **(obj.config or {})}, stored=stored,
        )

    def get_save_return_url(self, model, is_created=False):
        """After a save, the connection's page: it shows the background test's outcome."""
        return self.get_url(".details_view", id=model.id)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """"Add new synchronisation": the kind, then the package (filtered by kind), then its form.

        OAuth packages (Exact Online, Demo Cloud) take the name and the app's settings here,
        then send the administrator to the package's consent page (:mod:`app.oauth_flow`);
        the connection is created only when the consent comes back.
        """
        spec = package_spec(request.args.get("package", ""))
        if spec is None:
            kind = request.args.get("kind")
            specs = [s for s in registry.specs(level=FIRM) if kind is None or s.kind == kind]
            grouped = {}
            for package in specs:
                grouped.setdefault(package.kind, []).append(package)
            return self.render("admin/connection_packages.html", grouped=grouped, kind=kind,
                               kinds=KIND_LABELS)
        if request.method == "POST" and oauth_flow.uses_consent(spec):
            form = self.create_form()
            if form.validate():
                return oauth_flow.start(oauth_flow.NEW_CONNECTION, spec.key, config={**form.config, **form.secrets},
                                        details={"name": form.name.data.strip()})
        return super().create_view()

    def render(self, template, **kwargs):
        kwargs.setdefault("reconnect_button", reconnect_button)
        kwargs.setdefault("task_cell", task_cell)
        if template == self.details_template and kwargs.get("model") is not None:
            model = kwargs["model"]
            kwargs["linked_files"] = linked_files(model, self.actor)
            kwargs["badge"] = badge
            kwargs["check_task"] = connection_service.task_state(CHECK, model.id)
            kwargs["references_task"] = connection_service.task_state(REFERENCES, model.id)
            kwargs["package"] = package_spec(model.package)
            kwargs["kind_labels"] = KIND_LABELS
        if template == self.list_template and kwargs.get("data"):
            ids = [row.id for row in kwargs["data"]]
            kwargs["connection_tasks"] = {
                (kind, connection_id): state for kind in (CHECK, REFERENCES)
                for connection_id, state in connection_service.task_states(kind, ids).items()}
        if template == self.create_template:
            spec = package_spec(request.args.get("package", ""))
            kwargs["uses_consent"] = bool(spec and oauth_flow.uses_consent(spec))
        return super().render(template, **kwargs)

    # -- writes --------------------------------------------------------------------
    def create_model(self, form):
        actor, spec = self.actor, form.spec
        connection = Connection(
            firm_id=actor.firm_id, package=spec.key, kind=spec.kind, level=spec.level,
            name=form.name.data.strip(), config=form.config, credentials=form.secrets or None,
            status=ConnectionStatus.ACTIVE,
        )
        db.session.add(connection)
        db.session.flush()
        changes = {"name": [None, connection.name], "package": [None, spec.key]}
        changes.update({k: [None, v] for k, v in form.config.items()})
        changes.update({k: [audit.SECRET_MARK, audit.SECRET_MARK] for k in form.secrets})
        audit.record(actor, "create", connection, summary=f"Added connection {connection.name} ({spec.display_name})",
                     changes=changes)
        db.session.commit()
        self.check_after_save(connection)
        return connection

    def update_model(self, form, model):
        changes = {}
        name = form.name.data.strip()
        if name != model.name:
            changes["name"] = [model.name, name]
            model.name = name
        old_config = model.config or {}
        for key in sorted(set(old_config) | set(form.config)):
            if old_config.get(key) != form.config.get(key):
                changes[key] = [old_config.get(key), form.config.get(key)]
        model.config = form.config
        credentials = dict(model.credentials or {})
        for key, value in form.secrets.items():
            if credentials.get(key) != value:
                changes[key] = [audit.SECRET_MARK, audit.SECRET_MARK]
                credentials[key] = value
        model.credentials = credentials or None
        if changes:
            audit.record(self.actor, "update", model, summary=f"Updated connection {model.name}", changes=changes)
        db.session.commit()
        if set(changes) - {"name"}:  # new settings or credentials: test them; a new name alone needs no test
            self.check_after_save(model)
        return True

    def check_after_save(self, connection):
        """Checks on save: queue a test of the saved settings (:func:`app.services.connections.request_check`).

        The save itself is already committed; the test runs in the background and its
        outcome ("Connection works." or the package's refusal, with the time) shows on the
        connection page, which polls it. A refused credential marks the connection
        ``needs_reconnect``. Redis unreachable: the save stands and the flash says to test later.
        """
        try:
            connection_service.request_check(self.actor, connection)
        except RedisError:
            log.warning("connection %s saved, but its test could not be queued", connection.id)
            flash(gettext("Saved, but the connection could not be tested now; use “Test connection” later."),
                  "warning")
            return
        flash(gettext("Testing the connection in the background; the result appears on the connection page."),
              "info")

    def delete_model(self, model):
        """Refused while a dossier link (active or ended) refers to the connection."""
        links = db.session.scalar(select(func.count(DossierLink.id)).where(DossierLink.connection_id == model.id))
        if links:
            flash(ngettext("“%(name)s” cannot be deleted: %(num)d file link uses it (including past links). Switch "
                           "that file to another source first.",
                           "“%(name)s” cannot be deleted: %(num)d file links use it (including past links). Switch "
                           "those files to another source first.", links, name=model.name), "error")
            return False
        return super().delete_model(model)

    # -- actions: they queue a job and come back at once ------------------------------
    @action("check", _l("Test connection"))
    def action_check(self, ids):
        """Queue a test of each selected connection; the page shows each outcome when it is ready."""
        for connection in self.scoped(ids):
            state = connection_service.request_check(self.actor, connection)
            if state.new:
                flash(gettext("%(name)s: testing the connection; the result appears on this page when it is ready.",
                              name=connection.name), "info")
            else:
                flash(gettext("%(name)s: a test is already under way.", name=connection.name), "info")

    @action("refresh_references", _l("Refresh companies"))
    def action_refresh_references(self, ids):
        """Queue a refresh of the companies of each selected connection."""
        for connection in self.scoped(ids):
            state = connection_service.request_references(self.actor, connection)
            if state.new:
                flash(gettext("%(name)s: asking %(package)s for its companies; the list appears on this page "
                              "when it is ready.", name=connection.name,
                              package=package_display_name(connection.package)), "info")
            else:
                flash(gettext("%(name)s: the companies are already being asked for.", name=connection.name), "info")

    @expose("/diagnostic/")
    def diagnostic(self):
        """"Download diagnostic": the last sync's request paths, status codes and response
        shapes (keys and types only) of a connection to a package built from public
        information, as a JSON attachment for a support ticket to the vendor.

        Scoped like the details page (404 outside the actor's firm), administrators only (403),
        audited; 404 when no run has left a diagnostic yet (or it expired).
        """
        from app.services import diagnostics

        connection = self.get_one(request.args.get("id"))
        if not self.allowed("edit"):
            abort(403)
        document = diagnostics.last(connection)
        if document is None:
            flash(gettext("No diagnostic yet: it is kept after each sync of a file linked to this connection."),
                  "info")
            return redirect(url_for(".details_view", id=connection.id))
        audit.record(self.actor, "download_diagnostic", connection,
                     summary=f"Downloaded the diagnostic of connection {connection.name} (run {document.get('run_id')})")
        db.session.commit()
        response = jsonify(document)
        response.headers["Content-Disposition"] = (
            f'attachment; filename="firmsync-diagnostic-{connection.package}-{connection.id}.json"')
        return response

    @expose("/task/")
    def task(self):
        """JSON: how the test (``kind=check``) or the refresh (``kind=references``) of one connection stands.

        Scoped like the details page (404 outside the actor's firm), and only for those who
        may ask for that task (403: support staff, who see the list but do not act).
        """
        kind = request.args.get("kind")
        if kind not in (CHECK, REFERENCES):
            abort(404)
        connection = self.get_one(request.args.get("id"))
        allowed = (connection_service.may_check(self.actor, connection) if kind == CHECK
                   else connection_service.may_refresh_references(self.actor, connection))
        if not allowed:
            abort(403)
        return jsonify(task_answer(connection_service.task_state(kind, connection.id), connection))
