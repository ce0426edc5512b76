"""How a file's accounts map to a standard chart (docs/data-and-scenarios.md, "Audit files")."""
from app.extensions import db
from app.models.base import dossier_id_column, utcnow


class AccountMapping(db.Model):
    """One account of a dossier mapped to a standard code and an account kind.

    ``origin`` says who decided: ``file`` (the standard mapping an uploaded audit file
    carries: XAF's RGS code, SAF-T's grouping code), ``reference`` (matched to a reference
    chart by number) or ``firm`` (chosen by the firm; never overwritten by an upload). The row
    outlives the account rows, so the next upload of the file finds it again.
    """

    __table_args__ = (db.UniqueConstraint("dossier_id", "account_number"),)

    id = db.Column(db.Integer, primary_key=True)
    dossier_id = dossier_id_column()
    account_number = db.Column(db.String(50), nullable=False)
    #: "rgs", "grouping", "standard", "reference:fr"...
    scheme = db.Column(db.String(32), nullable=False, default="")
    code = db.Column(db.String(64), nullable=False, default="")
    #: asset | liability | equity | income | expense | other (as Account.kind)
    kind = db.Column(db.String(16), nullable=False, default="other")
    origin = db.Column(db.String(16), nullable=False, default="file")
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
