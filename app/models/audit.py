"""Audit trail: who did what to which object, and when."""
from app.extensions import db
from app.models.base import created_at_column


class AuditEvent(db.Model):
    __table_args__ = (db.Index("ix_audit_event_firm_created", "firm_id", "created_at"),)

    id = db.Column(db.Integer, primary_key=True)
    firm_id = db.Column(db.Integer, db.ForeignKey("firm.id", ondelete="CASCADE"), nullable=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    dossier_id = db.Column(db.Integer, db.ForeignKey("dossier.id", ondelete="SET NULL"), nullable=True, index=True)
    #: e.g. "create", "update", "delete", "sync.setup", "scenario.switch", "data.replace"
    action = db.Column(db.String(40), nullable=False)
    object_type = db.Column(db.String(40), nullable=False)
    object_id = db.Column(db.String(40), nullable=True)
    summary = db.Column(db.String(500), nullable=False, default="")
    #: {field: [old, new]} with secret values replaced by "(changed)"
    changes = db.Column(db.JSON, nullable=False, default=dict)
    created_at = created_at_column()

    user = db.relationship("User")
    firm = db.relationship("Firm")
