"""Users of a firm: the firm's memberships and pending invitations (administrators only).

Adding someone records an invitation, whether their e-mail already has a Firmsync account or
not, and shows the administrator a link to send them (the answer is the same either way);
the person accepts it with their own account, or chooses a name and password
(``app.auth.invitation``). One person (one e-mail) can work in several firms: such a
person's name and password are theirs to change, and each firm sees only the logins to
itself. Changing someone's role or flags, resetting their password or removing them ends
their sessions. Removing someone removes their membership (and their groups and direct file
grants in this firm); the user row itself goes only when they belong to no other firm.
"""
from flask import current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.helpers import get_form_data
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from admin_views.base import SecureModelView, row_id
from admin_views.formatting import when, yes_no
from app import audit
from app.auth import StrongPassword, password_description
from app.extensions import db
from app.models import Dossier, Group, Membership, Role, dossier_users, group_members
from app.models.firm import Invitation
from app.services import accounts

ADMIN_ONLY = {Role.ADMIN}
#: deliberately simple: any domain a firm uses is fine, the login proves the address
EMAIL = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an e-mail address such as anna@firm.be.")
ROLE_CHOICES = [(role, _l(Role.LABELS[role])) for role in Role.ALL]  # labels: app/i18n.UNMARKED_ELSEWHERE


class MembershipCreateForm(FlaskForm):
    """Invite someone: the same form whether their e-mail has an account or not."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), EMAIL, Length(max=254)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    can_create_files = BooleanField(_l("May create files"))
    multi_file_access = BooleanField(_l("Sees every non-private file"), default=True)


class MembershipEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)],
                       description=_l("Only for people who work in this firm alone; others change their name themselves."))
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)
    can_create_files = BooleanField(_l("May create files"))
    multi_file_access = BooleanField(_l("Sees every non-private file"), default=True)
    password = PasswordField(
        _l("New password"), validators=[Optional(), StrongPassword()],
        description=_l("Leave blank to keep the current password. %(rules)s", rules=password_description()),
    )


def _role_label(role):
    return Role.LABELS.get(role, role)


class UserView(SecureModelView):
    model_class = Membership
    menu_name = _l("Users")
    screen_endpoint = "users"
    permissions = {op: ADMIN_ONLY for op in ("list", "create", "edit", "delete")}

    list_template = "admin/user_list.html"
    column_list = ("user.email", "user.name", "role", "can_create_files", "multi_file_access", "last_login_at")
    column_details_list = column_list + ("created_at",)
    column_labels = {
        "user.email": _l("E-mail"), "user.name": _l("Name"), "role": _l("Role"),
        "can_create_files": _l("May create files"), "multi_file_access": _l("Sees all files"),
        "last_login_at": _l("Last login"), "created_at": _l("Member since"),
    }
    column_sortable_list = (("user.email", "user.email"), ("user.name", "user.name"), "role")
    column_searchable_list = ("user.email", "user.name")
    column_filters = ("role", "can_create_files")
    column_default_sort = "id"
    column_formatters = {
        "role": lambda v, c, m, n: gettext(_role_label(m.role)),
        "can_create_files": yes_no,
        "multi_file_access": yes_no,
        "last_login_at": when,
    }
    column_formatters_export = {"role": lambda v, c, m, n: m.role}

    def get_create_form(self):
        return MembershipCreateForm

    def get_edit_form(self):
        return MembershipEditForm

    def edit_form(self, obj=None):
        data = {
            "name": obj.user.name, "role": obj.role,
            "can_create_files": obj.can_create_files, "multi_file_access": obj.multi_file_access,
        }
        form = MembershipEditForm(formdata=get_form_data(), data=data)
        form.person = obj.user  # their e-mail and name make a guessable password
        return form

    def render(self, template, **kwargs):
        """The list also shows the firm's pending invitations."""
        if template == self.list_template and self.actor is not None:
            kwargs["invitations"] = accounts.pending_invitations(self.actor.firm_id)
            kwargs["role_labels"] = Role.LABELS
        return super().render(template, **kwargs)

    # -- writes --------------------------------------------------------------------
    def create_model(self, form):
        """Invite someone to the firm; the answer does not tell whether their e-mail has an account."""
        actor = self.actor
        email = form.email.data.strip().lower()
        user = accounts.find_user(email)
        if user is not None and user.membership_for(actor.firm_id) is not None:
            form.email.errors.append("This person is already a member of this firm.")
            return False
        invitation, token = accounts.invite(
            actor.firm_id, email, form.role.data, can_create_files=form.can_create_files.data,
            multi_file_access=form.multi_file_access.data, invited_by=actor.user_id,
        )
        audit.record(actor, "create", invitation, summary=f"Invited {email} as {_role_label(invitation.role)}",
                     changes={"email": [None, email], "role": [None, invitation.role],
                              "can_create_files": [None, invitation.can_create_files],
                              "multi_file_access": [None, invitation.multi_file_access]})
        db.session.commit()
        link = url_for("auth.invitation", token=token, _external=True)
        days = max(1, int(current_app.config["INVITATION_LIFETIME_HOURS"]) // 24)
        flash(gettext("Invitation for %(email)s: send them this link, which works once, for %(days)d days: %(link)s",
                      email=email, link=link, days=days), "info")
        return True  # not a membership yet: "Save and continue" goes back to the list

    @expose("/invitations/withdraw/", methods=["POST"])
    def withdraw_invitation(self):
        """Withdraw a pending invitation of the actor's firm (its link stops working)."""
        if not self.allowed("delete"):
            return self.inaccessible_callback("withdraw_invitation")
        invitation = db.session.scalar(select(Invitation).where(
            Invitation.id == row_id(request.form.get("id")), Invitation.firm_id == self.actor.firm_id))
        if invitation is not None:
            audit.record(self.actor, "delete", invitation, summary=f"Withdrew the invitation of {invitation.email}",
                         changes={"email": [invitation.email, None]})
            db.session.delete(invitation)
            db.session.commit()
            flash(gettext("The invitation of %(email)s was withdrawn.", email=invitation.email), "info")
        return redirect(self.get_url(".index_view"))

    def update_model(self, form, model):
        """Change role, flags, name or password; an administrator cannot demote themself.

        Name and password belong to the person when they also work in another firm (or are
        support staff). A new role, new flags or a new password end the person's sessions.
        """
        actor = self.actor
        if model.user_id == actor.user_id and form.role.data != Role.ADMIN:
            form.role.errors.append("You cannot remove your own administrator role; ask another administrator.")
            return False
        if form.password.data and model.user_id == actor.user_id:
            form.password.errors.append(gettext("Change your own password on your account page."))
            return False
        shared = model.user.is_support or any(m.firm_id != model.firm_id for m in model.user.memberships)
        if form.password.data and shared:
            form.password.errors.append("This person also works in another firm; they change their password themselves.")
            return False
        name = (form.name.data or "").strip()
        if name and name != model.user.name and shared:
            form.name.errors.append(gettext("This person also works in another firm; they change their name themselves."))
            return False
        changes = {}
        for field in ("role", "can_create_files", "multi_file_access"):
            new = getattr(form, field).data
            if getattr(model, field) != new:
                changes[field] = [getattr(model, field), new]
                setattr(model, field, new)
        if name and name != model.user.name:
            changes["name"] = [model.user.name, name]
            model.user.name = name
        if form.password.data:
            model.user.set_password(form.password.data)  # ends their sessions
            changes["password"] = [audit.SECRET_MARK, audit.SECRET_MARK]
        elif changes.keys() & {"role", "can_create_files", "multi_file_access"} and model.user_id != actor.user_id:
            model.user.end_sessions()
        if changes:
            audit.record(actor, "update", model, summary=f"Updated {model.user.email}", changes=changes)
        db.session.commit()
        return True

    def delete_model(self, model):
        """Remove the membership (refused for oneself); the user goes when no firm is left."""
        actor = self.actor
        if model.user_id == actor.user_id:
            flash(gettext("You cannot remove yourself from the firm; ask another administrator."), "error")
            return False
        user, firm_id, email = model.user, model.firm_id, model.user.email
        firm_groups = select(Group.id).where(Group.firm_id == firm_id)
        firm_dossiers = select(Dossier.id).where(Dossier.firm_id == firm_id)
        db.session.execute(group_members.delete().where(
            group_members.c.user_id == user.id, group_members.c.group_id.in_(firm_groups)))
        db.session.execute(dossier_users.delete().where(
            dossier_users.c.user_id == user.id, dossier_users.c.dossier_id.in_(firm_dossiers)))
        audit.record(actor, "delete", model, summary=f"Removed {email} from the firm",
                     changes={"email": [email, None], "role": [model.role, None]})
        user.memberships.remove(model)
        db.session.delete(model)
        if not user.memberships and not user.is_support:
            db.session.delete(user)
        else:
            user.end_sessions()
        db.session.commit()
        return True
