"""The public API's credentials and the firm's webhook endpoints (docs/api.md)."""
from app.crypto import EncryptedJSON
from app.extensions import db
from app.models.base import created_at_column, firm_id_column


class Scope:
    """What an API token may do: ``read`` every resource, ``sync`` start syncs, ``admin`` both."""

    READ = "read"
    SYNC = "sync"
    ADMIN = "admin"
    ALL = (READ, SYNC, ADMIN)


class ApiToken(db.Model):
    """A bearer token of the firm's API. Only a SHA-256 of the token is stored.

    A firm token (``user_id`` NULL) acts as an administrator of the firm limited by its
    scopes; a personal token acts as its user (their role and file access). ``group_id``
    further restricts either to the files granted to that group.
    """

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"), nullable=True, index=True)
    group_id = db.Column(db.Integer, db.ForeignKey("group.id", ondelete="CASCADE"), nullable=True)
    name = db.Column(db.String(200), nullable=False)
    #: the first characters of the token, shown in the console to tell tokens apart
    prefix = db.Column(db.String(16), nullable=False)
    token_hash = db.Column(db.String(64), nullable=False, unique=True)
    #: space-separated :class:`Scope` values
    scopes = db.Column(db.String(60), nullable=False, default=Scope.READ)
    expires_at = db.Column(db.DateTime, nullable=True)
    revoked_at = db.Column(db.DateTime, nullable=True)
    last_used_at = db.Column(db.DateTime, nullable=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    created_at = created_at_column()

    firm = db.relationship("Firm")
    user = db.relationship("User", foreign_keys=[user_id])
    group = db.relationship("Group")

    @property
    def scope_set(self):
        return set((self.scopes or "").split())

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class WebhookEndpoint(db.Model):
    """A URL of the firm told about events; deliveries are signed with ``secret`` (HMAC-SHA256)."""

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    url = db.Column(db.String(500), nullable=False)
    #: space-separated event names (app.services.webhooks.EVENTS)
    events = db.Column(db.String(500), nullable=False, default="")
    secret = db.Column(EncryptedJSON, nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    disabled_reason = db.Column(db.String(300), nullable=True)
    created_at = created_at_column()

    firm = db.relationship("Firm")

    @property
    def event_set(self):
        return set((self.events or "").split())

    def __str__(self):
        return self.url


class WebhookDelivery(db.Model):
    """One event sent (or being sent) to one endpoint, with its last answer."""

    __table_args__ = (db.Index("ix_webhook_delivery_endpoint_id", "endpoint_id", "id"),
                      # a drain's "due pending deliveries of this endpoint" (app.services.webhooks.drain)
                      db.Index("ix_webhook_delivery_pending", "endpoint_id", "status", "next_attempt_at"))

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    endpoint_id = db.Column(db.Integer, db.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False)
    event = db.Column(db.String(60), nullable=False)
    payload = db.Column(db.JSON, nullable=False, default=dict)
    #: pending | delivered | failed (gave up)
    status = db.Column(db.String(16), nullable=False, default="pending")
    attempts = db.Column(db.Integer, nullable=False, default=0)
    last_status_code = db.Column(db.Integer, nullable=True)
    last_response = db.Column(db.String(500), nullable=True)
    last_attempt_at = db.Column(db.DateTime, nullable=True)
    next_attempt_at = db.Column(db.DateTime, nullable=True)
    created_at = created_at_column()

    endpoint = db.relationship("WebhookEndpoint")
