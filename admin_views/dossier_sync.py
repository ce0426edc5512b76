"""The dossier's "Sync" tab: ``/admin/dossier-sync/?id=<dossier id>``.

Shows the file's accounting and administration links (current and ended), and offers:

* **Set up sync** (no active accounting link; scenarios A keep / B replace) or **Switch
  sync** (scenarios 1 switch, 2 revert to a manual file, 3 re-establish), through
  :mod:`app.services.links`, with the firm's active connections (and the ones this file owns),
  the company picked from the connection's cached list ("Refresh list" queues a job that asks
  the package again; the tab polls ``/admin/dossier-sync/references-task`` and fills the list
  in when the job is done), and the transfer date chosen among the first days of the file's
  fiscal years;
* for dossier-level packages (Xero, QuickBooks...) a form that POSTs to
  ``/oauth/re-establish/<id>`` (a fresh grant, :mod:`app.oauth_flow`);
* the administration sync (company master data): set up or **Stop administration sync**;
* the **manual upload** of a trial balance or ledger lines (:mod:`app.services.uploads`),
  or of a standard audit file (XAF, FEC, SAF-T: :mod:`app.services.audit_file_import`, with
  a "check only" preview), while the file has no active accounting link or is linked to a
  package built from public information (the file route; the link's transfer date holds).

Admin and staff use it on the files they may access (``setup_sync`` / ``upload_data``);
external, pulse and support users get 403 (base view); a file outside the actor's scope
answers 404, for the page and for every POST. Refusals (:class:`~app.services.links.SetupError`,
:class:`~app.services.uploads.UploadRejected`) are flashed and nothing is written; so is an
upload larger than ``MAX_CONTENT_LENGTH`` (:meth:`DossierSyncView.upload_too_large`).
"""
from datetime import date
from urllib.parse import parse_qs, urlsplit

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select
from werkzeug.exceptions import Forbidden, HTTPException, RequestEntityTooLarge

from admin_views.base import SecureBaseView, row_id
from admin_views.connections import task_answer, task_cell
from app.services import connections as connection_service
from app.services.connections import REFERENCES
from admin_views.formatting import timestamp
from app import company_profile, oauth_flow
from app.services import account_mapping, audit_file_import, setup_preview, uploads
from app.access import can, can_see_dossier
from app.extensions import db
from app.i18n import N_
from app.services.uploads import LEDGER_LINES, TRIAL_BALANCE, UploadRejected
from app.models import Connection, ConnectionStatus, Role, Scenario
from app.models.dossier import History
from app.services.links import (
    SCENARIO_LABELS,
    SETUP_SCENARIOS,
    SWITCH_SCENARIOS,
    SetupError,
    check_transfer_date,
    companies_already_linked,
    record_duplicate_confirmed,
    remove_administration_link,
    revert_to_manual,
    set_up_sync,
    switch_sync,
    valid_transfer_dates,
)
from app.services.typed_references import confirm_typed_reference
from connectors import registry
from connectors.base import ACCOUNTING, ADMINISTRATION

#: one plain sentence per scenario, under its label (translated where shown)
SCENARIO_SENTENCES = {
    Scenario.KEEP: N_("Figures before the transfer date stay as they are; from that date on they come from the package."),
    Scenario.REPLACE: N_("Every bookkeeping figure of this file is deleted and taken again from the package."),
    Scenario.SWITCH: N_("Figures before the transfer date keep their source; from that date on they come from the new one."),
    Scenario.MANUAL: N_("The sync stops and nothing is deleted; later periods are added by upload."),
    Scenario.RE_ESTABLISH: N_("All bookkeeping figures, manual uploads included, are replaced by the new link's."),
}
#: the history choices of a set-up (:mod:`app.services.sync_windows`), the default first
HISTORY_LABELS = {
    History.PREVIOUS_YEAR: N_("Previous year: the current year and at least the previous full year (comparatives)"),
    History.TRANSFER_DATE: N_("From the transfer date only (without one: the current year)"),
    History.ALL: N_("All the package has (up to 10 years)"),
}
#: the reference charts offered to classify a file's accounts (:mod:`app.services.account_mapping`)
REFERENCE_CHART_NAMES = {"be": N_("Belgium (PCMN)"), "fr": N_("France (PCG)"), "nl": N_("Netherlands"),
                         "uk": N_("United Kingdom")}
#: the upload kind of a standard audit file (:mod:`app.services.audit_file_import`)
AUDIT_FILE = "audit_file"
UPLOAD_KINDS = {TRIAL_BALANCE: N_("Trial balance (year-to-date, one line per account)"),
                LEDGER_LINES: N_("Ledger lines (one line per booking)"),
                AUDIT_FILE: N_("Audit file of a fiscal year (XAF, FEC or SAF-T): chart, opening balance and every "
                               "line")}
#: the scenario labels of :data:`app.services.links.SCENARIO_LABELS` (unmarked there), listed so
#: ``pybabel extract`` keeps them in the catalogs; the template translates them where shown
SCENARIO_LABELS_FOR_CATALOGS = (
    N_("Keep the existing data and sync from a transfer date"), N_("Replace all bookkeeping data with the sync"),
    N_("Switch to a new source from a transfer date"), N_("Revert to a manual file"),
    N_("Completely re-establish the sync (replaces manual uploads)"),
)


class DossierSyncView(SecureBaseView):
    """The Sync tab of one file (hidden from the menu; linked from the dossier page)."""

    permissions = {"list": {Role.ADMIN, Role.STAFF}}

    def __init__(self):
        super().__init__(name=_l("File sync"), endpoint="dossier_sync", url="/admin/dossier-sync")

    def is_visible(self):
        return False

    # -- helpers -------------------------------------------------------------------
    def dossier_or_404(self, value, capability="setup_sync"):
        """The dossier if the actor may see it (404) and set up its sync (403)."""
        return super().dossier_or_404(value, capability)

    def connection_or_404(self, dossier, value):
        """A connection of the file's firm usable by this file (firm-level or owned by it), else 404."""
        connection_id = row_id(value)
        if connection_id is None:
            abort(404)
        connection = db.session.get(Connection, connection_id)
        if connection is None or connection.firm_id != dossier.firm_id or (
                connection.level != "firm" and connection.owner_dossier_id != dossier.id):
            abort(404)
        return connection

    def back(self, dossier):
        return redirect(url_for(".index", id=dossier.id))

    # -- page ----------------------------------------------------------------------
    @expose("/")
    def index(self):
        """The tab itself."""
        dossier = self.dossier_or_404(request.args.get("id"))
        accounting = dossier.active_link(ACCOUNTING)
        scenarios = SWITCH_SCENARIOS if accounting else SETUP_SCENARIOS
        history = sorted(dossier.links, key=lambda link: (link.created_at or link.ended_at, link.id), reverse=True)
        packages = [spec for spec in oauth_flow.dossier_packages() if spec.kind == ACCOUNTING]
        connections = usable_connections(dossier, ACCOUNTING)
        may_upload = can(self.actor, "upload_data", dossier.id) and (
            accounting is None or uploads.file_route_package(dossier) is not None)
        return self.render(
            "admin/dossier_sync/index.html",
            dossier=dossier,
            accounting=accounting,
            administration=dossier.active_link(ADMINISTRATION),
            history=history,
            scenarios=[(s, SCENARIO_LABELS[s], SCENARIO_SENTENCES[s]) for s in scenarios],
            connections=connections,
            reference_tasks=connection_service.task_states(REFERENCES, [c.id for c in connections]),
            task_cell=task_cell,
            admin_connections=usable_connections(dossier, ADMINISTRATION),
            transfer_dates=valid_transfer_dates(dossier),
            dossier_packages=packages,
            may_upload=may_upload,
            upload_kinds=UPLOAD_KINDS,
            **_file_route(dossier),
            **_register_route(self.actor, dossier),
            reference_charts=REFERENCE_CHART_NAMES,
            audit_file_task=audit_file_import.import_state(dossier.id) if may_upload else None,
            period_ends=uploads.upload_period_ends(dossier),
            scenario_labels=SCENARIO_LABELS, package_name=package_name, timestamp=timestamp,
            history_labels=HISTORY_LABELS, uploads_left_empty=_uploads_left_empty(accounting),
        )

    # -- actions -------------------------------------------------------------------
    @expose("/setup", methods=["POST"])
    def setup(self):
        """Set up or switch the accounting sync, or set up the administration sync."""
        actor = self.actor
        dossier = self.dossier_or_404(request.form.get("id"))
        scenario = request.form.get("scenario", "")
        try:
            if scenario == Scenario.MANUAL:
                revert_to_manual(actor, dossier)
                flash(gettext("The sync has stopped. Nothing was deleted; add later periods by upload."), "success")
                return self.back(dossier)
            connection = self.connection_or_404(dossier, request.form.get("connection_id"))
            reference, unverified = _chosen_reference(connection, request.form.get("reference", "").strip())
            transfer_date = _date(request.form.get("transfer_date"))
            others = companies_already_linked(dossier, connection, reference)
            if others and request.form.get("duplicate_confirmed") != "1":
                return self.confirm_duplicate(dossier, connection, reference, others)
            history = request.form.get("history") or History.PREVIOUS_YEAR
            confirmed = request.form.get("replace_uploads") == "1"
            if connection.kind == ACCOUNTING and request.form.get("preview_seen") != "1":
                preview = self.setup_preview(dossier, scenario, transfer_date)
                if preview is not None and preview.replaces_anything:
                    return self.confirm_setup(dossier, preview)
            if connection.kind == ADMINISTRATION:
                link = set_up_sync(actor, dossier, connection, reference)
                flash(gettext("The administration sync with %(name)s is set up; its first sync is queued.",
                              name=connection.name), "success")
            elif dossier.active_link(ACCOUNTING) is None:
                link = set_up_sync(actor, dossier, connection, reference, scenario, transfer_date,
                                   history=history, confirmed=confirmed)
                flash(gettext("The sync with %(name)s is set up; its first sync is queued.", name=connection.name),
                      "success")
            else:
                link = switch_sync(actor, dossier, scenario, connection, reference, transfer_date,
                                   history=history, confirmed=confirmed)
                flash(gettext("The sync now comes from %(name)s; its first sync is queued.", name=connection.name),
                      "success")
            if others and link is not None:
                record_duplicate_confirmed(actor, dossier, link, others)
            if unverified:
                flash(unverified, "warning")
        except SetupError as error:
            db.session.rollback()
            flash(str(error), "error")
        return self.back(dossier)

    def setup_preview(self, dossier, scenario, transfer_date):
        """What the set-up or switch posted would keep and replace (:mod:`app.services.setup_preview`),
        or None when the scenario does not fit the file (the service then says why). A wrong
        transfer date raises :class:`SetupError` here, before any preview."""
        switching = dossier.active_link(ACCOUNTING) is not None
        if scenario not in ((Scenario.SWITCH, Scenario.RE_ESTABLISH) if switching else SETUP_SCENARIOS):
            return None
        if scenario in setup_preview.FROM_TRANSFER_DATE:
            current = dossier.active_link(ACCOUNTING)
            check_transfer_date(dossier, transfer_date, after=current.valid_from if switching else None)
        return setup_preview.preview(dossier, scenario, transfer_date)

    def confirm_setup(self, dossier, preview):
        """The preview step: what the set-up keeps and replaces, before anything is deleted. The
        same form's values are posted again with ``preview_seen=1``; when uploaded figures would be
        replaced the user must also tick ``replace_uploads`` (the service refuses otherwise)."""
        fields = [(key, value) for key, value in request.form.items(multi=True)
                  if key not in ("csrf_token", "preview_seen", "replace_uploads")]
        uploaded = setup_preview.span_text(preview.uploaded_replaced) if preview.uploaded_replaced else None
        return self.render("admin/dossier_sync/confirm_setup.html", dossier=dossier, preview=preview,
                           sentences=preview.sentences(), uploaded=uploaded, fields=fields)

    def confirm_duplicate(self, dossier, connection, reference, others):
        """The warning before linking ``dossier`` to a company other active files of the firm
        already use ("Acme NV is already linked to file 'Acme 2025'"): the same form's values,
        posted again with ``duplicate_confirmed=1`` by "Link anyway", or back to the tab."""
        warning, seen = duplicate_warning(self.actor, connection, reference, others)
        fields = [(key, value) for key, value in request.form.items(multi=True)
                  if key not in ("csrf_token", "duplicate_confirmed")]
        return self.render("admin/dossier_sync/confirm_duplicate.html", dossier=dossier, warning=warning,
                           others=seen, fields=fields)

    @expose("/refresh", methods=["POST"])
    def refresh(self):
        """"Refresh list": queue a job that asks the package again which companies the connection
        reaches, and come back at once (the tab shows the list when the job is done)."""
        dossier = self.dossier_or_404(request.form.get("id"))
        connection = self.connection_or_404(dossier, request.form.get("connection_id"))
        state = connection_service.request_references(self.actor, connection, dossier)
        if state.new:
            flash(gettext("Asking %(package)s for the companies of %(name)s; the list is filled in when the answer "
                          "comes.", package=package_name(connection.package), name=connection.name), "info")
        else:
            flash(gettext("The companies of %(name)s are already being asked for.", name=connection.name), "info")
        return self.back(dossier)

    @expose("/references-task")
    def references_task(self):
        """JSON: how the refresh of a connection's companies stands (the tab's poller)."""
        dossier = self.dossier_or_404(request.args.get("id"))
        connection = self.connection_or_404(dossier, request.args.get("connection_id"))
        if not connection_service.may_refresh_references(self.actor, connection, dossier):
            raise Forbidden()
        state = connection_service.task_state(REFERENCES, connection.id)
        return jsonify(task_answer(state, connection))

    @expose("/stop-administration", methods=["POST"])
    def stop_administration(self):
        """"Stop administration sync": the link ends; its snapshots stay as history."""
        dossier = self.dossier_or_404(request.form.get("id"))
        try:
            remove_administration_link(self.actor, dossier)
            flash(gettext("The administration sync has stopped."), "success")
        except SetupError as error:
            flash(str(error), "error")
        return self.back(dossier)

    @expose("/upload", methods=["POST"])
    def upload(self):
        """Upload a trial balance, ledger lines or an audit file (manual files only); an audit
        file with "check only" ticked is read and checked, and nothing is written."""
        actor = self.actor
        dossier = self.dossier_or_404(request.form.get("id"), "upload_data")
        kind = request.form.get("kind")
        upload = request.files.get("file")
        if kind not in UPLOAD_KINDS:
            flash(gettext("Choose what the file holds: a trial balance or ledger lines."), "error")
            return self.back(dossier)
        if upload is None or not upload.filename:
            flash(gettext("Choose the file to upload."), "error")
            return self.back(dossier)
        try:
            if kind == AUDIT_FILE and request.form.get("background") and not request.form.get("preview"):
                audit_file_import.queue_import(actor, dossier, upload.stream, upload.filename)
                flash(gettext("The audit file is being imported in the background; this page shows how far it "
                              "is."), "info")
                return self.back(dossier)
            if kind == AUDIT_FILE:
                result = audit_file_import.import_audit_file(
                    actor, dossier, upload.stream, upload.filename, preview=bool(request.form.get("preview")))
            elif kind == TRIAL_BALANCE:
                result = uploads.import_trial_balance(
                    actor, dossier, upload.stream, upload.filename, _date(request.form.get("period_end")),
                    package=_export_package(request.form.get("package")))
            else:
                result = uploads.import_ledger_lines(actor, dossier, upload.stream, upload.filename,
                                                     package=_export_package(request.form.get("package")))
        except UploadRejected as error:
            db.session.rollback()
            flash(gettext("Nothing was uploaded:") + " " + " ".join(_sentence(e) for e in error.errors), "error")
            return self.back(dossier)
        flash(result.message, "info" if getattr(result, "preview", False) else "success")
        return self.back(dossier)

    @expose("/audit-file-task")
    def audit_file_task(self):
        """JSON: how the background import of an audit file into this file stands (the tab's
        progress bar polls it): ``{"state", "phase", "done", "total", "ok", "message"}``."""
        dossier = self.dossier_or_404(request.args.get("id"), "upload_data")
        return jsonify(audit_file_import.import_state(dossier.id) or {"state": "none"})

    @expose("/classify", methods=["POST"])
    def classify(self):
        """Classify the file's accounts by a reference chart (Belgian, French, Dutch or UK):
        the Figures tab then groups its trial balance by kind. Accounts the firm classified
        itself keep their kind."""
        dossier = self.dossier_or_404(request.form.get("id"), "upload_data")
        try:
            changed = account_mapping.classify_with_reference(self.actor, dossier, request.form.get("country", ""))
        except account_mapping.MappingError as error:
            db.session.rollback()
            flash(str(error), "error")
            return self.back(dossier)
        flash(gettext("Accounts classified by the reference chart: %(count)s changed kind.", count=changed),
              "success")
        return self.back(dossier)

    @expose("/upload-mapping", methods=["POST"])
    def upload_mapping(self):
        """Save the firm's column mapping of one package's trial balance or ledger exports (the
        file route); the next uploads of that package's exports apply it."""
        dossier = self.dossier_or_404(request.form.get("id"), "upload_data")
        package = _export_package(request.form.get("package"))
        columns = {column: request.form.get(f"column_{column}", "") for column in uploads.MAPPED_COLUMNS}
        try:
            saved = uploads.save_column_mapping(self.actor, dossier, package, request.form.get("kind"), columns)
        except UploadRejected as error:
            db.session.rollback()
            flash(gettext("The column mapping was not saved:") + " " + " ".join(_sentence(e) for e in error.errors),
                  "error")
            return self.back(dossier)
        flash(gettext("Column mapping saved: %(count)s column(s); the next uploads of these exports use it.",
                      count=len(saved)), "success")
        return self.back(dossier)

    @expose("/register-upload", methods=["POST"])
    def register_upload(self):
        """Upload the company register export of the file's Corporify or FID-Manager link (the file route of
        administration packages built from public information): a new company snapshot, which the File
        page's change banner then offers. Refusals are flashed and nothing is written."""
        dossier = self.dossier_or_404(request.form.get("id"), "upload_data")
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(gettext("Choose the file to upload."), "error")
            return self.back(dossier)
        try:
            written = company_profile.import_register_export(self.actor, dossier, upload.stream, upload.filename)
        except UploadRejected as error:
            db.session.rollback()
            flash(gettext("Nothing was uploaded:") + " " + " ".join(_sentence(e) for e in error.errors), "error")
            return self.back(dossier)
        flash(gettext("Company register export uploaded: the File page shows what it would change.") if written
              else gettext("Company register export uploaded: it holds the same data as the latest snapshot."),
              "success")
        return self.back(dossier)

    @expose("/register-mapping", methods=["POST"])
    def register_mapping(self):
        """Save the firm's column mapping of the company register exports of the package this file's
        administration link names; the next register uploads of that package apply it."""
        dossier = self.dossier_or_404(request.form.get("id"), "upload_data")
        package = uploads.register_route_package(dossier)
        columns = {column: request.form.get(f"column_{column}", "") for column in uploads.REGISTER_MAPPED_COLUMNS}
        try:
            if package is None:
                raise UploadRejected([gettext("A company register export can only be uploaded into a file whose "
                                              "administration sync is Corporify or FID-Manager.")])
            saved = uploads.save_column_mapping(self.actor, dossier, package, uploads.COMPANY_REGISTER, columns)
        except UploadRejected as error:
            db.session.rollback()
            flash(gettext("The column mapping was not saved:") + " " + " ".join(_sentence(e) for e in error.errors),
                  "error")
            return self.back(dossier)
        flash(gettext("Column mapping saved: %(count)s column(s); the next uploads of these exports use it.",
                      count=len(saved)), "success")
        return self.back(dossier)

    def create_blueprint(self, admin):
        """Flask-Admin's blueprint for this view, with :meth:`upload_too_large` answering 413s."""
        blueprint = super().create_blueprint(admin)
        blueprint.register_error_handler(RequestEntityTooLarge, self.upload_too_large)
        return blueprint

    def upload_too_large(self, error):
        """An upload over ``MAX_CONTENT_LENGTH``: back to the tab with a message, nothing read.

        Werkzeug refuses such a request before reading its form (CSRF protection is the first
        to ask), so the file's id comes from the query string or the tab that posted the form;
        failing both, the user lands on the console's home page with the message. Any other
        request of this view keeps the plain 413 answer.
        """
        if not (request.endpoint in (f"{self.endpoint}.upload", f"{self.endpoint}.register_upload")
                and current_user.is_authenticated
                and self.is_accessible()):
            return error
        limit = uploads.megabytes(current_app.config["MAX_CONTENT_LENGTH"])
        flash(gettext("Nothing was uploaded: the file is larger than %(megabytes)s MB, the most an upload may "
                      "be. Split it into smaller files.", megabytes=limit), "error")
        try:
            dossier = self.dossier_or_404(request.args.get("id") or _id_in(request.referrer), "upload_data")
        except HTTPException:
            return redirect(url_for("admin.index"))
        return self.back(dossier)


def usable_connections(dossier, kind):
    """The firm's active connections of ``kind`` this file may use: firm-level ones and its own."""
    return db.session.scalars(
        select(Connection).where(
            Connection.firm_id == dossier.firm_id, Connection.kind == kind,
            Connection.status == ConnectionStatus.ACTIVE,
            or_(Connection.level == "firm", Connection.owner_dossier_id == dossier.id),
        ).order_by(Connection.name)
    ).all()


def package_name(key):
    """The display name of a package key (the key itself when it is not registered)."""
    try:
        return registry.get_connector(key).spec.display_name
    except KeyError:
        return key


def _chosen_reference(connection, reference):
    """``(reference, warning)``: the reference checked against the connection's list, or by the
    register for packages that take typed ones (``warning``: the register could not be reached,
    so the number is saved unchecked; else None)."""
    if not reference:
        raise SetupError("Choose the company to sync.")
    try:
        typed = registry.get_connector(connection.package).spec.reference_typed
    except KeyError:
        typed = False
    if typed:  # no list to choose from: the register checks the typed number before the link is saved
        company = confirm_typed_reference(connection, reference)
        return company.reference, (company.details or {}).get("unverified")
    known = {str(r.get("reference")) for r in (connection.references or [])}
    if reference not in known:
        raise SetupError(f"That company is not in the list of {connection.name}. Refresh the list and choose again.")
    return reference, None


def _uploads_left_empty(link):
    """``Jan–Feb 2026`` when the set-up of ``link`` replaced uploaded periods the package then had
    no figures for (:func:`app.services.setup_preview.uploads_left_empty`), else None."""
    empty = setup_preview.uploads_left_empty(link)
    return setup_preview.span_text(empty) if empty else None


def duplicate_warning(actor, connection, reference, others):
    """The sentence warning that company ``reference`` already feeds the files ``others``, and
    the ones of them ``actor`` may see (a private file's name stays hidden: it is only counted).
    Used by the Sync tab and the new-client wizard."""
    company = _company_name(connection, reference)
    seen = [other for other in others if can_see_dossier(actor, other.id)]
    hidden = len(others) - len(seen)
    if seen:
        warning = ngettext("%(company)s is already linked to file %(files)s.",
                           "%(company)s is already linked to files %(files)s.", len(seen),
                           company=company, files=", ".join(f"‘{other.name}’" for other in seen))
        if hidden:
            warning += " " + ngettext("It is also linked to %(num)d file you do not have access to.",
                                      "It is also linked to %(num)d files you do not have access to.", hidden)
    else:
        warning = ngettext("%(company)s is already linked to %(num)d file you do not have access to.",
                           "%(company)s is already linked to %(num)d files you do not have access to.", hidden,
                           company=company)
    return warning, seen


def _company_name(connection, reference):
    """The company's name in the connection's list ("Acme NV (123)"), else the reference itself."""
    names = {str(r.get("reference")): r.get("name") for r in (connection.references or [])}
    name = names.get(str(reference))
    return f"{name} ({reference})" if name else str(reference)


def _date(value):
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _id_in(url):
    """The ``id`` in the query string of ``url`` (None when there is none)."""
    values = parse_qs(urlsplit(url or "").query).get("id")
    return values[0] if values else None


def _sentence(text):
    return text if text.endswith((".", "!", "?")) else text + "."


def _export_package(value):
    """A registered accounting package's key named by a form (whose exports a file holds), else None."""
    key = str(value or "").strip()
    try:
        spec = registry.get_connector(key).spec
    except KeyError:
        return None
    return spec.key if spec.kind == ACCOUNTING else None


def _file_route(dossier):
    """What the Sync tab shows of the file route: the packages built from public information
    (whose exports may be uploaded with a saved column mapping), the one the file is linked to,
    and the firm's saved mappings ``{(package, kind): {column: header}}``."""
    packages = [spec for spec in registry.specs(kind=ACCOUNTING) if spec.built_from_public_information]
    saved = {(spec.key, kind): uploads.column_mapping(dossier.firm_id, spec.key, kind)
             for spec in packages for kind in (TRIAL_BALANCE, LEDGER_LINES)}
    return {"file_route": uploads.file_route_package(dossier), "export_packages": packages,
            "saved_mappings": {key: value for key, value in saved.items() if value},
            "mapped_columns": uploads.MAPPED_COLUMNS}


def _register_route(actor, dossier):
    """What the Sync tab shows of the administration file route: the package of the file's administration
    link when its company register export may be uploaded (and the actor may upload), and the firm's saved
    column mapping of that package's register exports."""
    package = uploads.register_route_package(dossier) if can(actor, "upload_data", dossier.id) else None
    return {"register_route": package, "register_columns": uploads.REGISTER_MAPPED_COLUMNS,
            "register_mapping": uploads.column_mapping(dossier.firm_id, package, uploads.COMPANY_REGISTER) or {}}
