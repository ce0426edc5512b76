"""API tokens of the firm (administrators only): create one (its text is shown once), revoke.

Tokens are created and revoked by :mod:`app.services.api_tokens`; this screen never shows a
token's text again, only its first characters, scopes, restriction, expiry and last use.
"""
from datetime import datetime, time

from flask import flash
from flask_admin.actions import action
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional

from admin_views.base import SecureModelView
from admin_views.choices import firm_groups, firm_members
from admin_views.formatting import when
from app.models import ApiToken, Role, Scope
from app.services import api_tokens

ADMIN_ONLY = {Role.ADMIN}
SCOPE_CHOICES = [(Scope.READ, _l("Read the firm's data")), (Scope.SYNC, _l("Start syncs")),
                 (Scope.ADMIN, _l("Everything (read and sync)"))]


class ApiTokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    scopes = SelectMultipleField(_l("Scopes"), choices=SCOPE_CHOICES, validators=[DataRequired()],
                                 default=[Scope.READ])
    expires_on = DateField(_l("Expires on (optional)"), validators=[Optional()])
    group_id = SelectField(_l("Only the files of the group (optional)"), coerce=int, default=0)
    user_id = SelectField(_l("Personal token of (optional: acts with that person's role and files)"),
                          coerce=int, default=0)


class ApiTokenView(SecureModelView):
    model_class = ApiToken
    menu_name = _l("API tokens")
    screen_endpoint = "api-tokens"
    permissions = {"list": ADMIN_ONLY, "create": ADMIN_ONLY}
    action_permissions = {"revoke": ADMIN_ONLY}

    column_list = ("name", "prefix", "scopes", "group", "user", "expires_at", "last_used_at", "revoked_at",
                   "created_at")
    column_labels = {"name": _l("Name"), "scopes": _l("Scopes"), "prefix": _l("Starts with"), "group": _l("Group"),
                     "user": _l("Person"),
                     "expires_at": _l("Expires"), "last_used_at": _l("Last used"), "revoked_at": _l("Revoked"),
                     "created_at": _l("Created")}
    column_formatters = {"expires_at": when, "last_used_at": when, "revoked_at": when, "created_at": when,
                         "prefix": lambda v, c, m, n: f"{m.prefix}…"}
    column_default_sort = ("id", True)
    can_view_details = False

    def create_form(self, obj=None):
        form = ApiTokenForm()
        form.group_id.choices = [(0, "—")] + [(g.id, g.name) for g in firm_groups()]
        form.user_id.choices = [(0, "—")] + [(u.id, str(u)) for u in firm_members()]
        return form

    def create_model(self, form):
        """Create the token through the service and show its text once."""
        expires = datetime.combine(form.expires_on.data, time.min) if form.expires_on.data else None
        try:
            token, text = api_tokens.create_token(self.actor, form.name.data, form.scopes.data, expires_at=expires,
                                                  group_id=form.group_id.data or None,
                                                  user_id=form.user_id.data or None)
        except api_tokens.TokenError as error:
            flash(gettext(str(error)), "error")
            return False
        flash(gettext("API token %(name)s: copy it now, it will not be shown again: %(token)s",
                      name=token.name, token=text), "info")
        return token

    @action("revoke", _l("Revoke"), _l("Revoke the selected tokens? Programs using them stop at once."))
    def action_revoke(self, ids):
        """Revoke the selected tokens of the firm (scoped ids)."""
        count = sum(1 for token in self.scoped(ids) if api_tokens.revoke_token(self.actor, token.id))
        flash(gettext("%(count)d token(s) revoked.", count=count), "success")
