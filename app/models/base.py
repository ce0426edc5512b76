"""Column helpers shared by the models."""
from datetime import datetime, timezone

from sqlalchemy import Numeric

from app.extensions import db

#: Money: NUMERIC(18, 2), returned as ``Decimal``; debit positive.
Money = Numeric(18, 2, asdecimal=True)


def utcnow():
    """Timezone-naive UTC now (stored as UTC everywhere)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def created_at_column():
    return db.Column(db.DateTime, nullable=False, default=utcnow)


def firm_id_column():
    return db.Column(db.Integer, db.ForeignKey("firm.id", ondelete="CASCADE"), nullable=False, index=True)


def dossier_id_column():
    return db.Column(db.Integer, db.ForeignKey("dossier.id", ondelete="CASCADE"), nullable=False, index=True)
