"""Dossiers (client files), their access lists and their links to package companies."""
from app.extensions import db
from app.models.base import created_at_column, dossier_id_column, firm_id_column


class Frequency:
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    ALL = (MONTH, QUARTER, YEAR)


class Scenario:
    """How a link was set up (ARCHITECTURE section 7)."""

    KEEP = "keep"  # (A) keep existing data, sync from the transfer date
    REPLACE = "replace"  # (B) replace all bookkeeping data with the sync
    SWITCH = "switch"  # (1) switch to a new source from a transfer date
    MANUAL = "manual"  # (2) revert to a manual file
    RE_ESTABLISH = "re_establish"  # (3) re-establish completely
    ALL = (KEEP, REPLACE, SWITCH, MANUAL, RE_ESTABLISH)


class History:
    """How much history a link's sync reads (:mod:`app.services.sync_windows`)."""

    TRANSFER_DATE = "transfer_date"  # from the transfer date (none: the current year)
    PREVIOUS_YEAR = "previous_year"  # the current year and the two before it (the default)
    ALL = "all"  # all the package has (ten years back at most)
    CHOICES = (TRANSFER_DATE, PREVIOUS_YEAR, ALL)


dossier_users = db.Table(
    "dossier_user",
    db.Column("dossier_id", db.Integer, db.ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True),
    db.Column("user_id", db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
)

dossier_groups = db.Table(
    "dossier_group",
    db.Column("dossier_id", db.Integer, db.ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True),
    db.Column("group_id", db.Integer, db.ForeignKey("group.id", ondelete="CASCADE"), primary_key=True),
)


class Dossier(db.Model):
    __table_args__ = (
        db.Index("ix_dossier_firm_name", "firm_id", "name"),
        # the dashboard's status and stale tiles: an index-only pass over the firm's files
        db.Index("ix_dossier_firm_status_synced", "firm_id", "sync_status", "last_synced_at", "id"),
    )

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    name = db.Column(db.String(200), nullable=False)
    number = db.Column(db.String(50), nullable=True)
    company_number = db.Column(db.String(50), nullable=True)
    vat_number = db.Column(db.String(50), nullable=True)
    country = db.Column(db.String(2), nullable=False, default="BE")
    currency = db.Column(db.String(3), nullable=False, default="EUR")
    frequency = db.Column(db.String(10), nullable=False, default=Frequency.MONTH)
    first_fiscal_year_end = db.Column(db.Date, nullable=True)
    #: a private dossier is hidden from staff with multi-file access unless granted
    private = db.Column(db.Boolean, nullable=False, default=False)
    #: administration values the firm adopted: {field: {"value": ..., "version": n}}
    adopted_profile = db.Column(db.JSON, nullable=False, default=dict)
    # Denormalised from the latest runs so lists stay fast at 50,000 dossiers.
    last_synced_at = db.Column(db.DateTime, nullable=True, index=True)
    sync_status = db.Column(db.String(20), nullable=True, index=True)
    created_at = created_at_column()

    firm = db.relationship("Firm")
    users = db.relationship("User", secondary=dossier_users, backref="granted_dossiers")
    groups = db.relationship("Group", secondary=dossier_groups, backref="dossiers")
    links = db.relationship("DossierLink", back_populates="dossier", foreign_keys="DossierLink.dossier_id")

    def active_link(self, kind="accounting"):
        return next((l for l in self.links if l.active and l.kind == kind), None)

    def __str__(self):
        return f"{self.number} {self.name}" if self.number else self.name


class DossierLink(db.Model):
    """A dossier linked to one company (``reference``) reachable through a connection.

    At most one active link per kind (accounting, administration) per dossier; ended
    links (``ended_at`` set) stay as history.
    """

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    dossier_id = dossier_id_column()
    connection_id = db.Column(db.Integer, db.ForeignKey("connection.id", ondelete="RESTRICT"), nullable=False, index=True)
    kind = db.Column(db.String(16), nullable=False, default="accounting")
    reference = db.Column(db.String(200), nullable=False)
    reference_name = db.Column(db.String(300), nullable=True)
    scenario = db.Column(db.String(16), nullable=False, default=Scenario.REPLACE)
    #: transfer date: data from this date on comes from this link
    valid_from = db.Column(db.Date, nullable=True)
    valid_to = db.Column(db.Date, nullable=True)
    #: package options, e.g. {"language": "nl"} for Octopus
    options = db.Column(db.JSON, nullable=False, default=dict)
    #: how much history the sync reads: one of :data:`History.CHOICES`
    history = db.Column(db.String(16), nullable=False, default=History.PREVIOUS_YEAR,
                        server_default=History.PREVIOUS_YEAR)
    #: per-stream bookmarks, advanced only after the records are committed
    bookmarks = db.Column(db.JSON, nullable=False, default=dict)
    opening_balance_taken_at = db.Column(db.DateTime, nullable=True)
    ended_at = db.Column(db.DateTime, nullable=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    created_at = created_at_column()

    dossier = db.relationship("Dossier", back_populates="links", foreign_keys=[dossier_id])
    connection = db.relationship("Connection")
    created_by = db.relationship("User")

    @property
    def active(self):
        return self.ended_at is None

    def __str__(self):
        return f"{self.connection} → {self.reference_name or self.reference}"
