"""Scoped query factories for the console's select fields.

A form may only offer (and accept) rows of the actor's firm: a forged id posted for a
row outside these queries fails validation as "Not a valid choice", and
:meth:`admin_views.base.SecureModelView.check_related_rows` checks again before saving.
"""
from flask_admin.contrib.sqla.fields import QuerySelectMultipleField

from app.access import current_actor, dossier_visibility
from app.extensions import db
from app.models import Dossier, Group, Membership, User


def firm_members():
    """Users with a membership in the actor's firm, by name."""
    actor = current_actor()
    if actor is None or actor.firm_id is None:
        return User.query.filter(db.false())
    return (
        User.query.join(Membership, Membership.user_id == User.id)
        .filter(Membership.firm_id == actor.firm_id)
        .order_by(User.name, User.email)
    )


def firm_groups():
    """Groups of the actor's firm, by name."""
    actor = current_actor()
    if actor is None or actor.firm_id is None:
        return Group.query.filter(db.false())
    return Group.query.filter(Group.firm_id == actor.firm_id).order_by(Group.name)


def visible_dossiers():
    """Dossiers the actor may see, by name."""
    return Dossier.query.filter(dossier_visibility(current_actor())).order_by(Dossier.name)


class ScopedMultipleField(QuerySelectMultipleField):
    """A multiple select that refuses ids outside its (scoped) query.

    Flask-Admin 2.2's field checks its "invalid ids" flag before computing it, so a forged
    id is silently dropped instead of refused; computing ``data`` first makes it an error.
    """

    def pre_validate(self, form):
        self.data  # noqa: B018 - resolves the posted ids and flags unknown ones
        super().pre_validate(form)
