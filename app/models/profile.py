"""Company master data snapshots from administration links."""
from app.extensions import db
from app.models.base import dossier_id_column, firm_id_column, utcnow


class CompanyProfile(db.Model):
    """One versioned snapshot of a company's master data.

    ``data`` holds: name, registration_number, vat_number, legal_form, status, address,
    incorporation_date, fiscal_year_end, officers [{name, role, start, end}],
    shareholders [{name, share}].
    """

    __table_args__ = (db.UniqueConstraint("dossier_id", "version"),)

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    dossier_id = dossier_id_column()
    link_id = db.Column(db.Integer, db.ForeignKey("dossier_link.id", ondelete="SET NULL"), nullable=True)
    version = db.Column(db.Integer, nullable=False)
    data = db.Column(db.JSON, nullable=False, default=dict)
    #: hash of ``data`` so an unchanged profile does not make a new version
    content_hash = db.Column(db.String(64), nullable=False)
    fetched_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    dossier = db.relationship("Dossier")
