"""The one secure base view of the Firmsync console.

Every console screen derives from :class:`SecureModelView` (model screens) or
:class:`SecureBaseView` (custom screens). They enforce, on the server and for every
request:

* authentication (anonymous users go to the login page) and console access (pulse users
  get 403: they only have the portal);
* the role of the current :class:`~app.access.Actor` against a per-view permission table
  for each operation: ``list`` (also detail), ``create``, ``edit``, ``delete``, ``export``
  and each named action; a forbidden operation answers 403;
* firm and dossier scoping of every query: list, count, detail/edit/delete by id (an id
  outside the scope answers 404), action ids and exports all go through :meth:`get_query`;
* server-side checks that related rows chosen in a form belong to the actor's firm;
* an :class:`~app.models.AuditEvent` for every create, update and delete, with secret
  values masked;
* CSRF on every form and action (forms derive from Flask-WTF's ``FlaskForm``, and
  ``CSRFProtect`` guards every POST of the application);
* plain answers to bad input, never a database error: an id that cannot be a row's
  (:func:`row_id`: not a whole number, or beyond :data:`MAX_ID`) answers 404 (400 among an
  action's ids), a list page no list can have 400, a NUL character in any parameter 400.

Permission tables name roles from :class:`app.models.Role` plus :data:`SUPPORT` for
platform support staff, who are read-only unless a view grants them more.
"""
import logging

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import inspect as sa_inspect
from wtforms.validators import ValidationError

from app import audit
from app.access import can, current_actor, dossier_visibility, visible_dossier_ids
from app.crypto import EncryptedJSON
from app.extensions import db
from app.models import Dossier, Membership, Role, User

log = logging.getLogger("firmsync.console")

SUPPORT = "support"
#: the largest id a row can have: ids are ``Integer`` columns, 32 bits on PostgreSQL (a larger
#: number in a query makes the database fail instead of finding nothing)
MAX_ID = 2**31 - 1
OPERATIONS = ("list", "create", "edit", "delete", "export")

#: Flask-Admin view method name -> our operation name
_VIEW_OPERATIONS = {
    "index_view": "list",
    "details_view": "list",
    "ajax_lookup": "list",
    "create_view": "create",
    "edit_view": "edit",
    "ajax_update": "edit",
    "delete_view": "delete",
    "export": "export",
    "action_view": None,  # checked per action in is_action_allowed / action_view
}


def effective_role(actor):
    """The key used in permission tables: ``"support"`` for support staff, else the role."""
    if actor is None:
        return None
    return SUPPORT if actor.is_support else actor.role


#: first characters that make a spreadsheet read a cell as a formula or a command
#: (https://owasp.org/www-community/attacks/CSV_Injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """``value`` for a CSV cell: text starting like a formula gets a leading apostrophe, so a
    spreadsheet shows it as text (numbers, dates and other values are left as they are)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def row_id(value):
    """``value`` (text or a number) as a row id, or None when it cannot be one: not a whole
    number, or outside 1..:data:`MAX_ID`."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= MAX_ID else None


#: console error pages: status code -> (heading, explanation)
ERROR_PAGES = {
    403: (_l("Not allowed"), _l("Your role does not allow this page or this operation. "
                                "Ask an administrator of your firm if you need it.")),
    404: (_l("Not found"), _l("This page does not exist, or it is not one you may see.")),
}


class AccessMixin:
    """Authentication, console access and role checks shared by all console views."""

    #: operation -> roles allowed (Role.* values and SUPPORT)
    permissions = {}

    @property
    def actor(self):
        return current_actor()

    def allowed(self, operation):
        """May the current actor do ``operation`` in this view?"""
        actor = self.actor
        if actor is None or not actor.uses_console:
            return False
        return effective_role(actor) in self.permissions.get(operation, ())

    def is_accessible(self):
        return self.allowed("list")

    def is_visible(self):
        return self.allowed("list")

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    def create_blueprint(self, admin):
        """Flask-Admin's blueprint for this screen, answering 403 and 404 with :meth:`error_page`."""
        blueprint = super().create_blueprint(admin)
        for code in ERROR_PAGES:
            blueprint.register_error_handler(code, self.error_page)
        return blueprint

    def error_page(self, error):
        """A 403 or 404 raised by this screen, shown in the console's layout and language."""
        heading, text = ERROR_PAGES[error.code]
        return self.render("admin/error.html", code=error.code, heading=heading, text=text), error.code


class SecureBaseView(AccessMixin, BaseView):
    """Base of custom (non-model) console screens."""

    def _handle_view(self, name, **kwargs):
        if not current_user.is_authenticated or not self.is_accessible():
            return self.inaccessible_callback(name, **kwargs)
        return None

    def dossier_or_404(self, value, capability=None):
        """The dossier with id ``value`` if the actor may see it (else 404) and, when
        ``capability`` is given, may do it there (else 403)."""
        dossier_id = row_id(value)
        if dossier_id is None:
            abort(404)
        dossier = db.session.scalar(db.select(Dossier).where(Dossier.id == dossier_id, dossier_visibility(self.actor)))
        if dossier is None:
            abort(404)
        if capability is not None and not can(self.actor, capability, dossier.id):
            abort(403)
        return dossier


class SecureModelView(AccessMixin, ModelView):
    """Base of every model screen: role permissions, firm/dossier scoping, audit.

    Subclasses set :attr:`permissions`, :attr:`action_permissions` and :attr:`scope`:

    * ``"firm"``: the model has ``firm_id``; rows of the actor's firm (support: all);
    * ``"dossier"``: the model has ``dossier_id``; rows of dossiers the actor may see;
    * ``"dossier_self"``: the model is :class:`Dossier`;
    * ``"none"``: the subclass overrides :meth:`scope_query`.

    A screen is instantiated without arguments (see ``admin_views.screens.SCREENS``): it
    names its model in :attr:`model_class`, its menu entry in :attr:`menu_name` and its
    endpoint (also its URL under ``/admin/``) in :attr:`screen_endpoint`.
    """

    model_class = None
    menu_name = None
    screen_endpoint = None

    form_base_class = FlaskForm
    scope = "firm"
    action_permissions = {}
    #: attribute names whose values never appear in the audit trail
    secret_fields = ()
    can_view_details = True
    can_set_page_size = True
    page_size = 50
    list_template = "admin/firmsync_list.html"

    def __init__(self, model=None, session=None, name=None, endpoint=None, url=None, **kwargs):
        endpoint = endpoint or self.screen_endpoint
        super().__init__(
            model or self.model_class, session or db.session, name=name or self.menu_name,
            endpoint=endpoint, url=url or (f"/admin/{endpoint}" if endpoint else None), **kwargs,
        )

    # -- permissions ---------------------------------------------------------------
    @property
    def can_create(self):
        return self.allowed("create")

    @property
    def can_edit(self):
        return self.allowed("edit")

    @property
    def can_delete(self):
        return self.allowed("delete")

    @property
    def can_export(self):
        return self.allowed("export")

    def get_export_value(self, model, name):
        """The exported cell, neutralised when a spreadsheet would run it as a formula."""
        return spreadsheet_safe(super().get_export_value(model, name))

    def is_action_allowed(self, name):
        if name == "delete":
            return self.allowed("delete")
        actor = self.actor
        return actor is not None and effective_role(actor) in self.action_permissions.get(name, ())

    def _handle_view(self, name, **kwargs):
        if not current_user.is_authenticated or not self.is_accessible():
            return self.inaccessible_callback(name, **kwargs)
        operation = _VIEW_OPERATIONS.get(name, "list")
        if operation and not self.allowed(operation):
            abort(403)
        if name == "action_view":
            action = request.form.get("action", "")
            if not self.is_action_allowed(action):
                abort(403)
        return None

    # -- scoping -------------------------------------------------------------------
    def scope_query(self, query):
        """Restrict ``query`` (over :attr:`model`) to the rows the actor may see."""
        actor = self.actor
        if actor is None:
            return query.filter(db.false())
        if self.scope == "firm":
            return query if actor.is_support else query.filter(self.model.firm_id == actor.firm_id)
        if self.scope == "dossier":
            return query.filter(self.model.dossier_id.in_(visible_dossier_ids(actor)))
        if self.scope == "dossier_self":
            return query.filter(dossier_visibility(actor))
        raise NotImplementedError(f"{type(self).__name__} must override scope_query")

    def get_query(self):
        return self.scope_query(super().get_query())

    def get_count_query(self):
        return self.scope_query(super().get_count_query())

    def get_one(self, id):
        """The row with primary key ``id`` in the actor's scope; 404 when there is none (an id
        that cannot be a row's included)."""
        pk = sa_inspect(self.model).primary_key[0]
        value = self.primary_key_value(pk, id)
        if value is None:
            abort(404)
        row = self.get_query().filter(pk == value).one_or_none()
        if row is None:
            abort(404)
        return row

    def scoped(self, ids):
        """The rows among ``ids`` that the actor may see (for actions)."""
        pk = sa_inspect(self.model).primary_key[0]
        values = [self.primary_key_value(pk, i) for i in ids]
        if None in values:
            abort(400)
        return self.get_query().filter(pk.in_(values)).all()

    @staticmethod
    def primary_key_value(pk, value):
        """``value`` in the type of the primary key column ``pk`` (ids: :func:`row_id`), or None."""
        if pk.type.python_type is int:
            return row_id(value)
        try:
            return pk.type.python_type(value)
        except (TypeError, ValueError):
            return None

    def _get_list_extra_args(self):
        """Flask-Admin's list arguments; a page number no list can have answers 400."""
        args = super()._get_list_extra_args()
        if args.page is not None and not 0 <= args.page <= MAX_ID:
            abort(400)
        return args

    @action("delete", "Delete", "Delete the selected records?")
    def action_delete(self, ids):
        """Bulk delete through :meth:`scoped` (typed ids, scoped rows) and :meth:`delete_model`."""
        count = sum(1 for model in self.scoped(ids) if self.delete_model(model))
        if count:
            flash(ngettext("%(num)d record deleted.", "%(num)d records deleted.", count), "success")

    # -- writes --------------------------------------------------------------------
    def create_model(self, form):
        """Flask-Admin's create, with no flush before :meth:`on_model_change` has read the changes."""
        with self.session.no_autoflush:
            return super().create_model(form)

    def update_model(self, form, model):
        """Flask-Admin's update, with no flush before :meth:`on_model_change` has read the changes:
        a query while the form is applied (loading a collection, checking related rows) would
        otherwise flush them and leave nothing for the audit trail."""
        with self.session.no_autoflush:
            return super().update_model(form, model)

    def on_model_change(self, form, model, is_created):
        actor = self.actor
        if is_created and hasattr(model, "firm_id") and self.scope in ("firm", "dossier_self"):
            model.firm_id = actor.firm_id
        changes = self.changes_of(model)
        self.check_related_rows(model)
        if not is_created and not changes:
            return
        db.session.flush()
        audit.record(
            actor, "create" if is_created else "update", model, firm_id=firm_of(model),
            summary=f"{'Created' if is_created else 'Updated'} {self.name.lower()} {model}",
            changes=changes,
        )

    def on_model_delete(self, model):
        audit.record(self.actor, "delete", model, firm_id=firm_of(model),
                     summary=f"Deleted {self.name.lower()} {model}")

    def check_related_rows(self, model):
        """Refuse related rows (picked in a form) that belong to another firm."""
        actor = self.actor
        for rel in sa_inspect(type(model)).relationships:
            value = getattr(model, rel.key, None)
            for target in value if isinstance(value, (list, set, tuple)) else [value]:
                if target is None:
                    continue
                if isinstance(target, Dossier):
                    if not db.session.query(Dossier.id).filter(
                        Dossier.id == target.id, dossier_visibility(actor)
                    ).first():
                        raise ValidationError("One of the chosen files is not one of your files.")
                elif hasattr(target, "firm_id") and target.firm_id != actor.firm_id and not actor.is_support:
                    raise ValidationError("One of the chosen entries belongs to another firm.")
                elif isinstance(target, User) and not actor.is_support:
                    member = db.session.query(Membership.id).filter_by(user_id=target.id, firm_id=actor.firm_id).first()
                    if member is None:
                        raise ValidationError("One of the chosen people is not a member of this firm.")

    def changes_of(self, model):
        """``{field: [old, new]}`` of the pending changes, secrets masked."""
        state = sa_inspect(model)
        changes = {}
        for attr in state.mapper.column_attrs:
            hist = state.attrs[attr.key].history
            if not hist.has_changes():
                continue
            column = attr.columns[0]
            if attr.key in self.secret_fields or isinstance(column.type, EncryptedJSON) or attr.key == "password_hash":
                changes[attr.key] = [audit.SECRET_MARK, audit.SECRET_MARK]
                continue
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            if old != new:
                changes[attr.key] = [old, new]
        for rel in state.mapper.relationships:
            if not rel.uselist:
                continue  # a many-to-one is audited through its foreign key column
            hist = state.attrs[rel.key].history
            if hist.has_changes():
                kept = [str(row) for row in hist.unchanged]
                changes[rel.key] = [sorted(kept + [str(row) for row in hist.deleted]),
                                    sorted(kept + [str(row) for row in hist.added])]
        return changes

    def handle_view_exception(self, exc):
        """Show validation errors as they are; anything else gets a generic message.

        Flask-Admin would otherwise flash ``str(exc)``, which for a database error holds
        the statement's parameters (possibly encrypted credentials): never shown.
        """
        if isinstance(exc, ValidationError):
            flash(str(exc), "error")
            return True
        if current_app.config.get("FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION"):
            raise exc
        log.exception("console write failed in %s", type(self).__name__)
        flash(gettext("This could not be saved. Please check the form and try again."), "error")
        return True


def firm_of(model):
    """The firm a row belongs to: its ``firm_id``, or its dossier's (for the audit trail)."""
    firm_id = getattr(model, "firm_id", None)
    if firm_id is None and getattr(model, "dossier_id", None) is not None:
        firm_id = db.session.scalar(db.select(Dossier.firm_id).where(Dossier.id == model.dossier_id))
    return firm_id


class ConsoleIndexView(AccessMixin, AdminIndexView):
    """The console's home (the firm dashboard grows here)."""

    permissions = {"list": {Role.ADMIN, Role.STAFF, Role.EXTERNAL, SUPPORT}}

    def _handle_view(self, name, **kwargs):
        if not current_user.is_authenticated or not self.is_accessible():
            return self.inaccessible_callback(name, **kwargs)
        return None
