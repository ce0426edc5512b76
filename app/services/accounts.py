"""People and their access: password rules, invitations to a firm, the TOTP second factor.

Used by the login and account pages (``app.auth``) and the Users screen
(``admin_views.users``) alike. Decisions are written down in ``docs/security-accounts.md``.
"""
import hashlib
import secrets
from datetime import datetime, timedelta, timezone

import pyotp
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from zxcvbn import zxcvbn

from app import audit
from app.access import actor_for
from app.extensions import db
from app.models import Membership, User
from app.models.base import utcnow
from app.models.firm import Invitation

PASSWORD_MIN_LENGTH = 12
#: zxcvbn's score (0-4) a password must reach: 3 is "safely unguessable" (about 10^8 guesses
#: or more); common passwords, keyboard walks, repeats and dates score 0-2
PASSWORD_MIN_SCORE = 3
#: passwords longer than this are cut before zxcvbn scores them (its work grows with length)
PASSWORD_SCORED_LENGTH = 100


def password_problem(password, *known):
    """Why ``password`` may not be used (a translated sentence), or None when it is fine.

    ``known`` are words about the person (e-mail, name) that make a password guessable.
    """
    if len(password or "") < PASSWORD_MIN_LENGTH:
        return _l("Use at least %(count)d characters.", count=PASSWORD_MIN_LENGTH)
    values = [str(value).lower() for value in known if value]
    words = values + [word for value in values for word in value.replace("@", " ").replace(".", " ").split()]
    if zxcvbn(password[:PASSWORD_SCORED_LENGTH], user_inputs=words)["score"] < PASSWORD_MIN_SCORE:
        return _l("This password is too common or too easy to guess; "
                  "try a few unrelated words or a password manager.")
    return None


def find_user(email):
    """The account with ``email`` (any case), or None."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


# -- invitations ---------------------------------------------------------------------------

def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def invite(firm_id, email, role, *, can_create_files=False, multi_file_access=True, invited_by=None):
    """Record an invitation to ``firm_id`` for ``email`` and answer ``(invitation, token)``.

    The same whether ``email`` has an account or not. A pending invitation of the same firm
    for the same e-mail is replaced (its old link stops working). The caller commits.
    """
    email = email.strip().lower()
    db.session.execute(Invitation.__table__.delete().where(Invitation.firm_id == firm_id, Invitation.email == email))
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        firm_id=firm_id, email=email, role=role, can_create_files=can_create_files,
        multi_file_access=multi_file_access, token_hash=token_hash(token), invited_by_id=invited_by,
        expires_at=utcnow() + timedelta(hours=int(current_app.config["INVITATION_LIFETIME_HOURS"])),
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation, token


def pending_invitation(token):
    """The unexpired invitation holding ``token``, or None."""
    if not token:
        return None
    return db.session.scalar(select(Invitation).where(
        Invitation.token_hash == token_hash(token), Invitation.expires_at > utcnow()))


def pending_invitations(firm_id):
    """The firm's unexpired invitations, oldest first."""
    return db.session.scalars(select(Invitation).where(
        Invitation.firm_id == firm_id, Invitation.expires_at > utcnow()).order_by(Invitation.id)).all()


def accept(invitation, user):
    """Make ``user`` (whose e-mail the invitation names) a member of the inviting firm.

    Deletes the invitation, records who accepted in the firm's audit log and commits.
    Answers the membership (the existing one when ``user`` already belongs to the firm).
    """
    membership = user.membership_for(invitation.firm_id)
    if membership is None:
        membership = Membership(
            user=user, firm_id=invitation.firm_id, role=invitation.role,
            can_create_files=invitation.can_create_files, multi_file_access=invitation.multi_file_access,
        )
        db.session.add(membership)
        db.session.flush()
        audit.record(actor_for(user, invitation.firm_id), "create", membership,
                     summary=f"{user.email} accepted the invitation",
                     changes={"email": [None, user.email], "role": [None, membership.role]})
    db.session.delete(invitation)
    db.session.commit()
    return membership


# -- the TOTP second factor ----------------------------------------------------------------

def new_totp_secret():
    return pyotp.random_base32()


def totp_uri(secret, email):
    """The ``otpauth://`` address an authenticator app reads (as a QR code or typed in)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="Firmsync")


def totp_step(secret, code, after=None):
    """The time step at which ``code`` is valid for ``secret`` (one step of clock drift
    either way), or None. A step not after ``after`` is refused: a code works once."""
    code = "".join((code or "").split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = datetime.now(timezone.utc)
    for drift in (0, -1, 1):
        moment = now + timedelta(seconds=drift * totp.interval)
        if secrets.compare_digest(totp.at(moment), code):
            step = totp.timecode(moment)
            return step if after is None or step > after else None
    return None
