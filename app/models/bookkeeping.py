"""Bookkeeping data of a dossier: accounts, fiscal years, periods, balances, ledger lines."""
from app.extensions import db
from app.models.base import Money, dossier_id_column, utcnow


def _origin_link_column():
    return db.Column(db.Integer, db.ForeignKey("dossier_link.id", ondelete="SET NULL"), nullable=True, index=True)


def _updated_at_column():
    return db.Column(db.DateTime, nullable=True, default=utcnow)


class Account(db.Model):
    __table_args__ = (db.UniqueConstraint("dossier_id", "number"),)

    id = db.Column(db.Integer, primary_key=True)
    dossier_id = dossier_id_column()
    number = db.Column(db.String(50), nullable=False)
    name = db.Column(db.String(300), nullable=False, default="")
    #: asset | liability | equity | income | expense | other
    kind = db.Column(db.String(16), nullable=False, default="other")
    origin_link_id = _origin_link_column()
    #: when a sync inserted or really changed the row (the API's row-level ``updated_since``)
    updated_at = _updated_at_column()

    dossier = db.relationship("Dossier")

    def __str__(self):
        return f"{self.number} {self.name}"


class FiscalYear(db.Model):
    __table_args__ = (db.UniqueConstraint("dossier_id", "start"),)

    id = db.Column(db.Integer, primary_key=True)
    dossier_id = dossier_id_column()
    start = db.Column(db.Date, nullable=False)
    end = db.Column(db.Date, nullable=False)
    origin = db.Column(db.String(10), nullable=False, default="sync")  # sync | manual | support
    #: set by support: a locked year is never changed by a sync
    locked = db.Column(db.Boolean, nullable=False, default=False)

    dossier = db.relationship("Dossier")

    def __str__(self):
        return f"{self.start.isoformat()} – {self.end.isoformat()}"


class Period(db.Model):
    __table_args__ = (db.UniqueConstraint("dossier_id", "end"),)

    id = db.Column(db.Integer, primary_key=True)
    dossier_id = dossier_id_column()
    fiscal_year_id = db.Column(db.Integer, db.ForeignKey("fiscal_year.id", ondelete="CASCADE"), nullable=False, index=True)
    start = db.Column(db.Date, nullable=False)
    end = db.Column(db.Date, nullable=False)

    fiscal_year = db.relationship("FiscalYear")

    def __str__(self):
        return self.end.isoformat()


class PeriodBalance(db.Model):
    """Net movement of one account in one period (debit positive)."""

    __table_args__ = (db.UniqueConstraint("dossier_id", "account_id", "period_id"),)

    id = db.Column(db.Integer, primary_key=True)
    dossier_id = dossier_id_column()
    account_id = db.Column(db.Integer, db.ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True)
    period_id = db.Column(db.Integer, db.ForeignKey("period.id", ondelete="CASCADE"), nullable=False, index=True)
    amount = db.Column(Money, nullable=False)
    origin_link_id = _origin_link_column()
    #: when a sync inserted or really changed the row (the API's row-level ``updated_since``)
    updated_at = _updated_at_column()

    account = db.relationship("Account")
    period = db.relationship("Period")


class LedgerLine(db.Model):
    __table_args__ = (
        db.UniqueConstraint("link_id", "source_id"),
        db.Index("ix_ledger_line_dossier_period_account", "dossier_id", "period_id", "account_id"),
        db.Index("ix_ledger_line_dossier_updated_at", "dossier_id", "updated_at"),
    )

    id = db.Column(db.Integer, primary_key=True)
    # no index of its own: ix_ledger_line_dossier_period_account starts with dossier_id (one
    # index less to maintain per inserted line, see docs/benchmarks.md measure 1)
    dossier_id = db.Column(db.Integer, db.ForeignKey("dossier.id", ondelete="CASCADE"), nullable=False)
    #: origin link; NULL for manual uploads
    link_id = db.Column(db.Integer, db.ForeignKey("dossier_link.id", ondelete="SET NULL"), nullable=True)
    source_id = db.Column(db.String(120), nullable=False)
    account_id = db.Column(db.Integer, db.ForeignKey("account.id", ondelete="CASCADE"), nullable=False)
    period_id = db.Column(db.Integer, db.ForeignKey("period.id", ondelete="CASCADE"), nullable=False)
    booking_date = db.Column(db.Date, nullable=False)
    amount = db.Column(Money, nullable=False)
    description = db.Column(db.String(500), nullable=False, default="")
    reference = db.Column(db.String(120), nullable=False, default="")
    journal = db.Column(db.String(60), nullable=False, default="")
    dimensions = db.Column(db.JSON, nullable=False, default=dict)
    modified_at = db.Column(db.DateTime, nullable=True)
    #: when a sync inserted or really changed the line (the API's row-level ``updated_since``)
    updated_at = _updated_at_column()

    account = db.relationship("Account")
    period = db.relationship("Period")


class OpeningBalance(db.Model):
    __table_args__ = (db.UniqueConstraint("dossier_id", "account_id", "date"),)

    id = db.Column(db.Integer, primary_key=True)
    dossier_id = dossier_id_column()
    account_id = db.Column(db.Integer, db.ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True)
    date = db.Column(db.Date, nullable=False)
    amount = db.Column(Money, nullable=False)
    origin_link_id = _origin_link_column()

    account = db.relationship("Account")
