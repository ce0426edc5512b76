"""Firms (tenants), users, memberships (role per firm), invitations and groups."""
from functools import cache

from flask_login import UserMixin
from werkzeug.security import check_password_hash, generate_password_hash

from app.crypto import EncryptedJSON
from app.extensions import db
from app.models.base import created_at_column, firm_id_column

#: werkzeug's default since 3.0: a memory-hard KDF
PASSWORD_METHOD = "scrypt"


@cache
def dummy_password_hash():
    """A hash of no one's password, checked when a login names no account (same work, same time)."""
    return generate_password_hash("no account has this password", method=PASSWORD_METHOD)


class Role:
    """Firm roles (ARCHITECTURE section 4). Support is a flag on :class:`User`, not a role."""

    ADMIN = "admin"
    STAFF = "staff"
    EXTERNAL = "external"
    PULSE = "pulse"
    ALL = (ADMIN, STAFF, EXTERNAL, PULSE)
    LABELS = {
        ADMIN: "Administrator",
        STAFF: "Staff contributor",
        EXTERNAL: "External contributor",
        PULSE: "Pulse user",
    }


class Firm(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(200), nullable=False)
    country = db.Column(db.String(2), nullable=False, default="BE")
    timezone = db.Column(db.String(64), nullable=False, default="Europe/Brussels")
    #: local time ("HH:MM") at which the nightly sync of this firm's dossiers starts
    nightly_time = db.Column(db.String(5), nullable=False, default="02:00")
    default_locale = db.Column(db.String(5), nullable=False, default="en")
    created_at = created_at_column()

    def __str__(self):
        return self.name


group_members = db.Table(
    "group_member",
    db.Column("group_id", db.Integer, db.ForeignKey("group.id", ondelete="CASCADE"), primary_key=True),
    db.Column("user_id", db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), nullable=False, unique=True)
    name = db.Column(db.String(200), nullable=False, default="")
    password_hash = db.Column(db.String(256), nullable=False, default="")
    #: platform support staff: read-only on every firm, may edit and lock fiscal years
    is_support = db.Column(db.Boolean, nullable=False, default=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    locale = db.Column(db.String(5), nullable=True)
    created_at = created_at_column()
    last_login_at = db.Column(db.DateTime, nullable=True)
    #: part of every session of this user (see :meth:`get_id`); raising it ends them all
    session_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    #: base32 secret of the optional TOTP second factor (administrators and support), encrypted
    totp_secret = db.Column(EncryptedJSON, nullable=True)
    #: the last TOTP time step accepted, so one code cannot be used twice
    totp_last_step = db.Column(db.BigInteger, nullable=True)

    memberships = db.relationship("Membership", back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self):
        return self.active

    def get_id(self):
        """The session's user id: ``"<id>:<session_version>"`` (checked by ``app.auth.load_user``)."""
        return f"{self.id}:{self.session_version or 0}"

    def end_sessions(self):
        """End every session of this user (logout, password or role change, removal)."""
        self.session_version = (self.session_version or 0) + 1

    def set_password(self, password):
        """Store a hash of ``password`` and end the user's sessions."""
        self.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
        if self.id is not None:
            self.end_sessions()

    def check_password(self, password):
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def may_use_two_factor(self):
        """Administrators (in any firm) and support staff may add a TOTP second factor."""
        return self.is_support or any(m.role == Role.ADMIN for m in self.memberships)

    def membership_for(self, firm_id):
        return next((m for m in self.memberships if m.firm_id == firm_id), None)

    def __str__(self):
        return self.name or self.email


class Membership(db.Model):
    __table_args__ = (db.UniqueConstraint("user_id", "firm_id"),)

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    firm_id = firm_id_column()
    role = db.Column(db.String(16), nullable=False, default=Role.STAFF)
    can_create_files = db.Column(db.Boolean, nullable=False, default=False)
    #: staff with multi-file access see every non-private dossier of the firm
    multi_file_access = db.Column(db.Boolean, nullable=False, default=True)
    created_at = created_at_column()
    #: when the user last logged in to, or switched to, this firm (what this firm's administrators see)
    last_login_at = db.Column(db.DateTime, nullable=True)

    user = db.relationship("User", back_populates="memberships")
    firm = db.relationship("Firm")

    def __str__(self):
        return f"{self.user} ({Role.LABELS.get(self.role, self.role)}, {self.firm})"


class Invitation(db.Model):
    """A pending invitation to join a firm with a role; the invited person accepts it.

    Only a SHA-256 of the token is stored; the link holding the token is shown once to the
    administrator who invites. Accepting creates the :class:`Membership` (and, for an e-mail
    without an account, the :class:`User`) and deletes the invitation.
    """

    __table_args__ = (db.UniqueConstraint("firm_id", "email"),)

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    email = db.Column(db.String(254), nullable=False)
    role = db.Column(db.String(16), nullable=False, default=Role.STAFF)
    can_create_files = db.Column(db.Boolean, nullable=False, default=False)
    multi_file_access = db.Column(db.Boolean, nullable=False, default=True)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    invited_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    created_at = created_at_column()
    expires_at = db.Column(db.DateTime, nullable=False)

    firm = db.relationship("Firm")

    def __str__(self):
        return f"{self.email} ({Role.LABELS.get(self.role, self.role)}, {self.firm})"


class Group(db.Model):
    __table_args__ = (db.UniqueConstraint("firm_id", "name"),)

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    name = db.Column(db.String(200), nullable=False)
    created_at = created_at_column()

    firm = db.relationship("Firm")
    members = db.relationship("User", secondary=group_members, backref="groups")

    def __str__(self):
        return self.name
