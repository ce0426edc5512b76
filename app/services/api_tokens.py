"""API tokens: created by a firm's administrator, shown once, stored as a SHA-256, revocable.

:func:`create_token` returns the token text (the only time it exists outside the caller);
:func:`authenticate` turns a presented token into an :class:`ApiCaller` or None (unknown,
revoked, expired, or a personal token whose user lost access). The caller's
:func:`ApiCaller.dossier_visibility` is the console's rule (:func:`app.access.dossier_visibility`)
for the token's actor, narrowed to the token's group when it has one.
"""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext
from sqlalchemy import select, update

from app import audit
from app.access import Actor, actor_for, dossier_visibility
from app.extensions import db
from app.models import ApiToken, Dossier, Group, Role, Scope, User, dossier_groups
from app.models.base import utcnow

#: every token starts with this, so a leaked one is easy to recognise (secret scanners)
TOKEN_PREFIX = "fsk_"
#: ``last_used_at`` is written at most this often per token (one UPDATE per call would be wasteful)
LAST_USE_RESOLUTION = timedelta(minutes=1)


class TokenError(ValueError):
    """A token cannot be created as asked (message for the administrator)."""


def token_hash(text):
    """The stored form of a token: hex SHA-256 (tokens are random, so no salt or KDF is needed)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create_token(actor, name, scopes, *, expires_at=None, group_id=None, user_id=None):
    """Create a token of ``actor``'s firm; return ``(ApiToken, token text)`` after committing.

    Only an administrator may create tokens. ``user_id`` makes a personal token acting as
    that member of the firm; ``group_id`` restricts the token to that group's files.
    """
    if actor is None or actor.role != Role.ADMIN or actor.firm_id is None:
        raise TokenError(gettext("Only an administrator of the firm may create API tokens."))
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= set(Scope.ALL):
        raise TokenError(gettext("Choose at least one scope among read, sync and admin."))
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise TokenError(gettext("Give the token a name of at most 200 characters."))
    if expires_at is not None and expires_at <= utcnow():
        raise TokenError(gettext("The expiry date must be in the future."))
    if group_id is not None and db.session.scalar(
            select(Group.id).where(Group.id == group_id, Group.firm_id == actor.firm_id)) is None:
        raise TokenError(gettext("That group is not one of the firm's."))
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None or user.membership_for(actor.firm_id) is None:
            raise TokenError(gettext("That person is not a member of the firm."))
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(firm_id=actor.firm_id, user_id=user_id, group_id=group_id, name=name, prefix=text[:10],
                     token_hash=token_hash(text), scopes=" ".join(scopes), expires_at=expires_at,
                     created_by_id=actor.user_id)
    db.session.add(token)
    db.session.flush()
    audit.record(actor, "api_token.create", token, summary=f"API token {token} ({token.scopes})")
    db.session.commit()
    return token, text


def revoke_token(actor, token_id):
    """Revoke a token of ``actor``'s firm (administrators only); True when it was active."""
    if actor is None or actor.role != Role.ADMIN:
        raise TokenError(gettext("Only an administrator of the firm may revoke API tokens."))
    token = db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.firm_id == actor.firm_id))
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    audit.record(actor, "api_token.revoke", token, summary=f"API token {token} revoked")
    db.session.commit()
    return True


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling the API: the token, its firm, the :class:`Actor` it acts as, its scopes."""

    token_id: int
    firm_id: int
    actor: Actor
    scopes: frozenset
    group_id: int | None = None

    def has_scope(self, scope):
        """``admin`` includes every scope."""
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def dossier_visibility(self):
        """SQL condition on :class:`Dossier`: the console's rule for the actor, then the token's group."""
        condition = dossier_visibility(self.actor)
        if self.group_id is not None:
            condition = condition & Dossier.id.in_(
                select(dossier_groups.c.dossier_id).where(dossier_groups.c.group_id == self.group_id))
        return condition

    def visible_dossier_ids(self):
        return select(Dossier.id).where(self.dossier_visibility())


def authenticate(text):
    """The :class:`ApiCaller` of a presented token text, or None. Records the last use."""
    if not text or not text.startswith(TOKEN_PREFIX) or len(text) > 200:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(text)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.user_id is not None:
        actor = actor_for(token.user, token.firm_id)
        if actor is None or actor.firm_id != token.firm_id or actor.role is None:
            return None  # the person left the firm or was deactivated
    else:
        actor = Actor(user_id=None, firm_id=token.firm_id, role=Role.ADMIN)
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_RESOLUTION:
        db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        db.session.commit()
    return ApiCaller(token_id=token.id, firm_id=token.firm_id, actor=actor,
                     scopes=frozenset(token.scope_set), group_id=token.group_id)
