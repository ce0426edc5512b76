"""The "Add new client" wizard: a client file and, when asked, its sync, in one go.

Step 1 takes the client's details and where the data comes from: *Directly from the
accounting* or *Manual*. Direct offers, grouped, the firm's connections to firm-level
packages (step 2 then picks the company from the connection's list) and the dossier-level
packages (Xero, QuickBooks...: "Save and continue" goes to the package's consent page
through :mod:`app.oauth_flow`, which creates the file when the consent comes back).
Administrators and staff who may create files use it; everything is checked on the server.

Step 2's "Refresh list" queues a job that asks the package again and shows step 2 at once;
its poller (``/admin/new-client/references-task?connection_id=``) fills the list in when the
job is done. Without JavaScript, "Show the list" shows step 2 again with what the job stored.
"""
from flask import abort, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from admin_views.base import SecureBaseView, row_id
from admin_views.connections import task_answer, task_cell
from admin_views.country_currency import CountryField, CurrencyField
from admin_views.dossier_sync import duplicate_warning
from admin_views.dossiers import FREQUENCY_LABELS
from app import oauth_flow
from app.access import can
from app.extensions import db
from app.models import Connection, ConnectionStatus, Role
from app.services import connections as connection_service
from app.services.connections import REFERENCES
from app.services.dossiers import create_dossier
from app.services.links import files_linked_to_company, record_duplicate_confirmed
from connectors import registry
from connectors.base import ACCOUNTING, FIRM

DIRECT, MANUAL = "direct", "manual"
DETAIL_FIELDS = ("name", "number", "country", "currency", "frequency")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ClientForm(FlaskForm):
    """Step 1: the client's details and the source of its data."""

    name = StringField(_l("Client name"), validators=[DataRequired(), Length(max=200)], filters=[_strip])
    number = StringField(_l("Client number"), validators=[Optional(), Length(max=50)], filters=[_strip])
    country = CountryField(_l("Country"), default="BE", validators=[DataRequired()])
    currency = CurrencyField(_l("Currency"), default="EUR", validators=[DataRequired()])
    frequency = SelectField(_l("Reporting"), choices=list(FREQUENCY_LABELS.items()), default="month")
    source = RadioField(_l("Where do you want to get the data from?"), default=DIRECT,
                        choices=[(DIRECT, _l("Directly from the accounting")), (MANUAL, _l("Manual"))])
    package = SelectField(_l("Accounting package"), validate_choice=False, validators=[Optional()])
    connection_id = HiddenField()
    reference = HiddenField()

    def details(self):
        return {name: self[name].data or None for name in DETAIL_FIELDS}


def source_choices(actor):
    """Grouped choices: ``connection:<id>`` (firm-level, the firm's active connections) and
    ``package:<key>`` (dossier-level packages whose app is configured)."""
    connections = db.session.scalars(
        db.select(Connection).where(Connection.firm_id == actor.firm_id, Connection.level == FIRM,
                                    Connection.kind == ACCOUNTING, Connection.status == ConnectionStatus.ACTIVE)
        .order_by(Connection.name)
    ).all()
    groups = {}
    if connections:
        groups[gettext("Through one of your firm's connections")] = [
            (f"connection:{c.id}", f"{c.name} ({_package_name(c.package)})") for c in connections]
    packages = [spec for spec in oauth_flow.dossier_packages() if spec.kind == ACCOUNTING]
    if packages:
        groups[gettext("Sign in at the client's package")] = [(f"package:{s.key}", s.display_name) for s in packages]
    return groups


def _package_name(key):
    try:
        return registry.get_connector(key).spec.display_name
    except KeyError:
        return key


class NewClientView(SecureBaseView):
    """``/admin/new-client/``: the wizard (admin, and staff who may create files)."""

    permissions = {"list": {Role.ADMIN, Role.STAFF}}

    def __init__(self):
        super().__init__(name=_l("Add new client"), endpoint="new_client", url="/admin/new-client")

    def allowed(self, operation):
        return super().allowed(operation) and can(self.actor, "create_dossiers")

    def _connection(self, value):
        """The firm-level connection named by ``connection:<id>`` (404 outside the actor's firm)."""
        connection_id = row_id(str(value).partition(":")[2])
        if connection_id is None:
            abort(404)
        connection = db.session.get(Connection, connection_id)
        if connection is None or connection.firm_id != self.actor.firm_id or connection.level != FIRM:
            abort(404)
        return connection

    @expose("/", methods=("GET", "POST"))
    def index(self):
        actor = self.actor
        form = ClientForm()
        groups = source_choices(actor)
        form.package.choices = groups
        if request.method == "POST" and form.validate():
            if form.source.data == MANUAL:
                dossier = create_dossier(actor, form.details())
                db.session.commit()
                flash(gettext("The file %(file)s was created. Its data comes by upload.", file=dossier), "success")
                return redirect(url_for("dossier.index", id=dossier.id))
            choice = form.package.data or ""
            if choice.startswith("package:"):
                key = choice.split(":", 1)[1]
                if key not in {spec.key for spec in oauth_flow.dossier_packages()}:
                    abort(404)
                return oauth_flow.start(oauth_flow.NEW_CLIENT, key, details=form.details())
            if choice.startswith("connection:"):
                return self._pick_reference(form, self._connection(choice))
            form.package.errors = [gettext("Choose the accounting package.")]
        return self.render("admin/new_client/details.html", form=form, has_sources=bool(groups))

    @expose("/reference/", methods=("POST",))
    def reference(self):
        """Step 2 for firm-level packages: pick the company; "Refresh list" asks the package again."""
        actor = self.actor
        form = ClientForm()
        form.package.choices = source_choices(actor)
        if not form.validate():
            return self.render("admin/new_client/details.html", form=form, has_sources=True)
        connection = self._connection(form.package.data)
        if request.form.get("refresh"):
            state = connection_service.request_references(actor, connection)
            if not state.new:
                flash(gettext("The companies of %(name)s are already being asked for.", name=connection.name), "info")
            return self._pick_reference(form, connection, state)
        if request.form.get("reload"):  # "Show the list" (without JavaScript): step 2 again, as stored now
            return self._pick_reference(form, connection)
        chosen = next((r for r in connection.references or [] if str(r.get("reference")) == form.reference.data), None)
        if chosen is None:
            flash(gettext("Choose the %(what)s of this client.",
                          what=gettext(registry.get_connector(connection.package).spec.reference_label)), "error")
            return self._pick_reference(form, connection)
        if connection.status != ConnectionStatus.ACTIVE:
            flash(gettext("%(name)s must be reconnected before a file can sync through it.", name=connection.name), "error")
            return self._pick_reference(form, connection)
        others = files_linked_to_company(actor.firm_id, connection, chosen["reference"])
        if others and request.form.get("duplicate_confirmed") != "1":
            return self._confirm_duplicate(form, connection, chosen, others)
        dossier = create_dossier(actor, form.details())
        run = oauth_flow.link_and_queue(actor, dossier, connection, chosen)
        if others and run is not None:
            record_duplicate_confirmed(actor, dossier, run.link, others)
        flash(gettext("The file %(file)s was created and linked to %(company)s; the first sync is queued.",
                      file=dossier, company=chosen.get("name")), "success")
        return redirect(url_for("dossier.index", id=dossier.id))  # the file page follows the set-up run

    @expose("/references-task")
    def references_task(self):
        """JSON: how the refresh of a firm connection's companies stands (step 2's poller)."""
        connection = self._connection(f"connection:{request.args.get('connection_id', '')}")
        if not connection_service.may_refresh_references(self.actor, connection):
            abort(403)
        return jsonify(task_answer(connection_service.task_state(REFERENCES, connection.id), connection))

    def _confirm_duplicate(self, form, connection, chosen, others):
        """The warning before a new file is linked to a company other files of the firm already
        use: "Create anyway" posts the same step again with ``duplicate_confirmed=1``."""
        warning, seen = duplicate_warning(self.actor, connection, chosen["reference"], others)
        fields = [(key, value) for key, value in request.form.items(multi=True)
                  if key not in ("csrf_token", "duplicate_confirmed", "refresh", "reload")]
        return self.render("admin/new_client/confirm_duplicate.html", form=form, warning=warning, others=seen,
                           fields=fields)

    def _pick_reference(self, form, connection, state=None):
        spec = registry.get_connector(connection.package).spec
        state = state or connection_service.task_state(REFERENCES, connection.id)
        cell = task_cell(state, connection, url=url_for(".references_task", connection_id=connection.id))
        return self.render("admin/new_client/reference.html", form=form, connection=connection, spec=spec,
                           references=connection.references or [], task=state, task_cell=cell)
