"""Users of a firm: the firm's memberships (administrators only).

One person (one e-mail) can work in several firms: adding an e-mail that already has an
account adds a membership to that account instead of a second user. Removing someone
removes their membership (and their groups and direct file grants in this firm); the user
row itself goes only when they belong to no other firm.
"""
from flask import flash
from flask_admin.helpers import get_form_data
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from admin_views.base import SecureModelView
from admin_views.formatting import when, yes_no
from app import audit
from app.extensions import db
from app.models import Dossier, Group, Membership, Role, User, dossier_users, group_members

ADMIN_ONLY = {Role.ADMIN}
MIN_PASSWORD = 10
#: deliberately simple: any domain a firm uses is fine, the login proves the address
EMAIL = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="Enter an e-mail address such as anna@firm.be.")
ROLE_CHOICES = [(role, Role.LABELS[role]) for role in Role.ALL]


class MembershipEditForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    can_create_files = BooleanField("May create files")
    multi_file_access = BooleanField("Sees every non-private file", default=True)
    password = PasswordField(
        "New password", validators=[Optional(), Length(min=MIN_PASSWORD)],
        description=f"Leave blank to keep the current password (at least {MIN_PASSWORD} characters).",
    )


class MembershipCreateForm(MembershipEditForm):
    email = EmailField("E-mail", validators=[DataRequired(), EMAIL, Length(max=254)])
    password = PasswordField(
        "Initial password", validators=[Optional(), Length(min=MIN_PASSWORD)],
        description=f"At least {MIN_PASSWORD} characters. Not needed when this e-mail already has a Firmsync account.",
    )


def _role_label(role):
    return Role.LABELS.get(role, role)


class UserView(SecureModelView):
    model_class = Membership
    menu_name = _l("Users")
    screen_endpoint = "users"
    permissions = {op: ADMIN_ONLY for op in ("list", "create", "edit", "delete")}

    column_list = ("user.email", "user.name", "role", "can_create_files", "multi_file_access", "user.last_login_at")
    column_details_list = column_list + ("created_at",)
    column_labels = {
        "user.email": "E-mail", "user.name": "Name", "role": "Role",
        "can_create_files": "May create files", "multi_file_access": "Sees all files",
        "user.last_login_at": "Last login", "created_at": "Member since",
    }
    column_sortable_list = (("user.email", "user.email"), ("user.name", "user.name"), "role")
    column_searchable_list = ("user.email", "user.name")
    column_filters = ("role", "can_create_files")
    column_default_sort = "id"
    column_formatters = {
        "role": lambda v, c, m, n: _role_label(m.role),
        "can_create_files": yes_no,
        "multi_file_access": yes_no,
        "user.last_login_at": lambda v, c, m, n: when(v, c, m.user, "last_login_at"),
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
        return MembershipEditForm(formdata=get_form_data(), data=data)

    # -- writes --------------------------------------------------------------------
    def create_model(self, form):
        """Add a member: a new user with an initial password, or an existing user's new membership."""
        actor = self.actor
        email = form.email.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and user.membership_for(actor.firm_id) is not None:
            form.email.errors.append("This person is already a member of this firm.")
            return False
        created_user = user is None
        if created_user:
            if not form.password.data:
                form.password.errors.append(f"Set an initial password of at least {MIN_PASSWORD} characters.")
                return False
            user = User(email=email, name=(form.name.data or "").strip())
            user.set_password(form.password.data)
            db.session.add(user)
        membership = Membership(
            user=user, firm_id=actor.firm_id, role=form.role.data,
            can_create_files=form.can_create_files.data, multi_file_access=form.multi_file_access.data,
        )
        db.session.add(membership)
        db.session.flush()
        changes = {"email": [None, email], "role": [None, membership.role],
                   "can_create_files": [None, membership.can_create_files],
                   "multi_file_access": [None, membership.multi_file_access]}
        if created_user:
            changes["password"] = [audit.SECRET_MARK, audit.SECRET_MARK]
        audit.record(
            actor, "create", membership,
            summary=f"Added {email} as {_role_label(membership.role)}"
                    + ("" if created_user else " (existing Firmsync account)"),
            changes=changes,
        )
        db.session.commit()
        if not created_user:
            flash(f"{email} already had a Firmsync account: they can now also work in this firm with their own password.", "info")
        return membership

    def update_model(self, form, model):
        """Change role, flags, name or password; an administrator cannot demote themself."""
        actor = self.actor
        if model.user_id == actor.user_id and form.role.data != Role.ADMIN:
            form.role.errors.append("You cannot remove your own administrator role; ask another administrator.")
            return False
        other_firms = [m for m in model.user.memberships if m.firm_id != model.firm_id]
        if form.password.data and (other_firms or model.user.is_support):
            form.password.errors.append("This person also works in another firm; they change their password themselves.")
            return False
        changes = {}
        for field in ("role", "can_create_files", "multi_file_access"):
            new = getattr(form, field).data
            if getattr(model, field) != new:
                changes[field] = [getattr(model, field), new]
                setattr(model, field, new)
        name = (form.name.data or "").strip()
        if name and name != model.user.name:
            changes["name"] = [model.user.name, name]
            model.user.name = name
        if form.password.data:
            model.user.set_password(form.password.data)
            changes["password"] = [audit.SECRET_MARK, audit.SECRET_MARK]
        if changes:
            audit.record(actor, "update", model, summary=f"Updated {model.user.email}", changes=changes)
        db.session.commit()
        return True

    def delete_model(self, model):
        """Remove the membership (refused for oneself); the user goes when no firm is left."""
        actor = self.actor
        if model.user_id == actor.user_id:
            flash("You cannot remove yourself from the firm; ask another administrator.", "error")
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
        db.session.commit()
        return True
