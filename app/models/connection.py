"""Connections: one authenticated access to a package (firm-level, or owned by a dossier)."""
from app.crypto import EncryptedJSON
from app.extensions import db
from app.models.base import created_at_column, firm_id_column, utcnow


class ConnectionStatus:
    ACTIVE = "active"
    NEEDS_RECONNECT = "needs_reconnect"
    DISABLED = "disabled"
    ALL = (ACTIVE, NEEDS_RECONNECT, DISABLED)


class Connection(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    #: registry key of the connector (``xero``, ``exact_online_be``...)
    package = db.Column(db.String(64), nullable=False, index=True)
    kind = db.Column(db.String(16), nullable=False, default="accounting")  # accounting | administration
    level = db.Column(db.String(16), nullable=False, default="firm")  # firm | dossier
    name = db.Column(db.String(200), nullable=False)
    status = db.Column(db.String(20), nullable=False, default=ConnectionStatus.ACTIVE, index=True)
    #: non-secret configuration (base URL, options), validated by the connector's schema
    config = db.Column(db.JSON, nullable=False, default=dict)
    #: secrets: tokens, API keys, passwords, secret config fields; encrypted at rest
    credentials = db.Column(EncryptedJSON, nullable=True)
    #: cached company references reachable: [{"reference": ..., "name": ...}]
    references = db.Column(db.JSON, nullable=False, default=list)
    references_refreshed_at = db.Column(db.DateTime, nullable=True)
    last_check_at = db.Column(db.DateTime, nullable=True)
    last_check_ok = db.Column(db.Boolean, nullable=True)
    last_check_message = db.Column(db.String(500), nullable=True)
    #: dossier-level packages (Xero, QuickBooks...) keep their grant in a connection owned by one dossier
    owner_dossier_id = db.Column(db.Integer, db.ForeignKey("dossier.id", ondelete="CASCADE"), nullable=True)
    created_at = created_at_column()
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    firm = db.relationship("Firm")
    owner_dossier = db.relationship("Dossier", foreign_keys=[owner_dossier_id])

    def __str__(self):
        return self.name
