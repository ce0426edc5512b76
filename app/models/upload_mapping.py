"""Column mappings of the file route: how a package's standard exports name their columns.

A firm whose package has no (working) API uploads the package's trial balance and ledger exports
on the file's Sync tab; the column mapping it saves once per package and per kind of export
(``trial_balance`` / ``ledger_lines``) is applied to every later upload of that package's exports
(:func:`app.services.uploads.save_column_mapping`, :func:`app.services.uploads.column_mapping`).
"""
from app.extensions import db
from app.models.base import firm_id_column, utcnow


class UploadColumnMapping(db.Model):
    __tablename__ = "upload_column_mapping"
    __table_args__ = (db.UniqueConstraint("firm_id", "package", "kind"),)

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    #: the package's registry key (``wings_online``)
    package = db.Column(db.String(64), nullable=False)
    #: ``trial_balance`` | ``ledger_lines``
    kind = db.Column(db.String(16), nullable=False)
    #: upload column (``account``, ``amount``, ``debit``...) -> the export's header text
    columns = db.Column(db.JSON, nullable=False, default=dict)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
