"""Who may see and do what: the one place that turns ARCHITECTURE section 4 into code.

Every console view, action, API endpoint and job trigger asks this module, on the server:

* :func:`current_actor` gives the logged-in user with the firm they are working in and
  their role there (support staff have a flag, not a role);
* :func:`dossier_visibility` is the SQL condition selecting the dossiers an actor may see;
* :func:`can` answers a capability question, optionally for one dossier.
"""
from dataclasses import dataclass

from flask import session
from flask_login import current_user
from sqlalchemy import false, select, true

from app.extensions import db
from app.models import Dossier, Membership, Role, dossier_groups, dossier_users, group_members

SESSION_FIRM_KEY = "firm_id"


@dataclass(frozen=True)
class Actor:
    """A user acting inside one firm (``firm_id`` may be None for support staff)."""

    user_id: int
    firm_id: int | None
    role: str | None  # one of Role.ALL, or None for support staff without a membership
    is_support: bool = False
    can_create_files: bool = False
    multi_file_access: bool = False

    @property
    def is_admin(self):
        return self.role == Role.ADMIN

    @property
    def uses_console(self):
        """Pulse users get only the read-only portal."""
        return self.is_support or self.role in (Role.ADMIN, Role.STAFF, Role.EXTERNAL)


def actor_for(user, firm_id=None):
    """Build the :class:`Actor` for ``user`` working in ``firm_id`` (default: first firm)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    membership = None
    if firm_id is not None:
        membership = user.membership_for(firm_id)
    if membership is None and user.memberships:
        membership = sorted(user.memberships, key=lambda m: m.firm_id)[0]
    if membership is None:
        if user.is_support:
            return Actor(user.id, firm_id, None, is_support=True)
        return None
    return Actor(
        user_id=user.id,
        firm_id=membership.firm_id,
        role=membership.role,
        is_support=user.is_support,
        can_create_files=membership.can_create_files,
        multi_file_access=membership.multi_file_access,
    )


def current_actor():
    """The actor of the current request, or None when anonymous."""
    return actor_for(current_user, session.get(SESSION_FIRM_KEY))


def _granted_to(user_id):
    """Dossier ids granted to the user directly or through one of their groups."""
    direct = select(dossier_users.c.dossier_id).where(dossier_users.c.user_id == user_id)
    via_group = (
        select(dossier_groups.c.dossier_id)
        .join(group_members, group_members.c.group_id == dossier_groups.c.group_id)
        .where(group_members.c.user_id == user_id)
    )
    return Dossier.id.in_(direct.union(via_group))


def dossier_visibility(actor):
    """SQL condition on :class:`Dossier` for the dossiers ``actor`` may see."""
    if actor is None:
        return false()
    if actor.is_support:
        return true()
    in_firm = Dossier.firm_id == actor.firm_id
    if actor.role == Role.ADMIN:
        return in_firm
    if actor.role == Role.STAFF:
        if actor.multi_file_access:
            return in_firm & (Dossier.private.is_(False) | _granted_to(actor.user_id))
        return in_firm & _granted_to(actor.user_id)
    if actor.role in (Role.EXTERNAL, Role.PULSE):
        return in_firm & _granted_to(actor.user_id)
    return false()


def visible_dossier_ids(actor):
    """A SELECT of the ids of the dossiers ``actor`` may see (for ``IN`` filters)."""
    return select(Dossier.id).where(dossier_visibility(actor))


def can_see_dossier(actor, dossier_id):
    return db.session.scalar(
        select(Dossier.id).where(Dossier.id == dossier_id, dossier_visibility(actor))
    ) is not None


# Capabilities (ARCHITECTURE section 4). Support is read-only except fiscal years.
FIRM_CAPABILITIES = {
    "manage_connections": {Role.ADMIN},
    "manage_users": {Role.ADMIN},
    "edit_firm": {Role.ADMIN},
    "view_audit": {Role.ADMIN},
}
DOSSIER_CAPABILITIES = {
    "view_dossier": {Role.ADMIN, Role.STAFF, Role.EXTERNAL, Role.PULSE},
    "edit_dossier": {Role.ADMIN, Role.STAFF},
    "delete_dossier": {Role.ADMIN},
    "setup_sync": {Role.ADMIN, Role.STAFF},
    "sync_now": {Role.ADMIN, Role.STAFF},
    "adopt_profile": {Role.ADMIN, Role.STAFF, Role.EXTERNAL},
    "upload_data": {Role.ADMIN, Role.STAFF},
}


def can(actor, capability, dossier_id=None):
    """May ``actor`` do ``capability`` (on ``dossier_id`` for dossier capabilities)?

    Capabilities: ``console``, ``create_dossiers``, ``edit_fiscal_years``, the keys of
    :data:`FIRM_CAPABILITIES` and of :data:`DOSSIER_CAPABILITIES`. For a dossier
    capability without ``dossier_id`` the answer is whether the role has it at all.
    """
    if actor is None:
        return False
    if capability == "console":
        return actor.uses_console
    if capability == "edit_fiscal_years":
        return actor.is_support
    if capability == "view_dossier" and actor.is_support:
        return dossier_id is None or can_see_dossier(actor, dossier_id)
    if capability == "create_dossiers":
        return actor.role == Role.ADMIN or (actor.role == Role.STAFF and actor.can_create_files)
    if capability in FIRM_CAPABILITIES:
        return actor.role in FIRM_CAPABILITIES[capability]
    if capability in DOSSIER_CAPABILITIES:
        if actor.role not in DOSSIER_CAPABILITIES[capability]:
            return False
        return dossier_id is None or can_see_dossier(actor, dossier_id)
    raise KeyError(f"unknown capability {capability!r}")


def memberships_of(user):
    """The user's memberships, ordered by firm name (for the firm switcher)."""
    return db.session.scalars(
        select(Membership).where(Membership.user_id == user.id).join(Membership.firm)
    ).all()
