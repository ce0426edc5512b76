"""Sync runs: one attempt to sync one dossier link."""
from app.extensions import db
from app.models.base import created_at_column, dossier_id_column, firm_id_column


class Trigger:
    NIGHTLY = "nightly"
    MANUAL = "manual"
    BULK = "bulk"
    SETUP = "setup"
    RETRY = "retry"
    ALL = (NIGHTLY, MANUAL, BULK, SETUP, RETRY)


class RunStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NEEDS_RECONNECT = "needs_reconnect"
    DEFERRED = "deferred"
    CANCELLED = "cancelled"
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED, NEEDS_RECONNECT, DEFERRED, CANCELLED)
    ACTIVE = (QUEUED, RUNNING, DEFERRED)
    FINISHED = (SUCCEEDED, FAILED, NEEDS_RECONNECT, CANCELLED)


class SyncRun(db.Model):
    __table_args__ = (
        db.Index("ix_sync_run_dossier_queued", "dossier_id", "queued_at"),
        db.Index("ix_sync_run_firm_status", "firm_id", "status"),
        # the newest run of a file (max id) in one index probe: the dashboard's latest failures
        db.Index("ix_sync_run_dossier_id_id", "dossier_id", "id"),
        # the firm's last nightly run without scanning its history
        db.Index("ix_sync_run_firm_trigger_queued", "firm_id", "trigger", "queued_at",
                 postgresql_include=["status", "finished_at", "nightly_key"]),  # index-only night summary
    )

    id = db.Column(db.Integer, primary_key=True)
    firm_id = firm_id_column()
    dossier_id = dossier_id_column()
    link_id = db.Column(db.Integer, db.ForeignKey("dossier_link.id", ondelete="CASCADE"), nullable=False, index=True)
    trigger = db.Column(db.String(16), nullable=False, default=Trigger.MANUAL)
    triggered_by_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    #: "<link id>:<local date>" for nightly runs only: a duplicated fan-out is harmless
    nightly_key = db.Column(db.String(40), nullable=True, unique=True)
    status = db.Column(db.String(20), nullable=False, default=RunStatus.QUEUED, index=True)
    attempt = db.Column(db.Integer, nullable=False, default=1)
    rq_job_id = db.Column(db.String(64), nullable=True)
    #: the RQ queue of the run's job (app/services/queues.py: people, sync or backfill); None while
    #: a first sync waits for its turn (docs/sync-engine.md, "Queues and fairness")
    queue = db.Column(db.String(16), nullable=True)
    cancel_requested = db.Column(db.Boolean, nullable=False, default=False)
    # counts
    accounts_count = db.Column(db.Integer, nullable=False, default=0)
    balances_count = db.Column(db.Integer, nullable=False, default=0)
    lines_inserted = db.Column(db.Integer, nullable=False, default=0)
    lines_updated = db.Column(db.Integer, nullable=False, default=0)
    lines_deleted = db.Column(db.Integer, nullable=False, default=0)
    changed = db.Column(db.Boolean, nullable=True)
    api_calls = db.Column(db.Integer, nullable=False, default=0)
    #: the running attempt's API calls so far, written by its heartbeat: the reaper adds them
    #: to ``api_calls`` when that attempt's worker died (an attempt that ends adds its own)
    attempt_api_calls = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    # progress while running
    progress_stream = db.Column(db.String(40), nullable=True)
    progress_records = db.Column(db.Integer, nullable=False, default=0)
    progress_percent = db.Column(db.Integer, nullable=True)
    # outcome
    error_category = db.Column(db.String(40), nullable=True)
    #: scrubbed, written for an accountant
    message = db.Column(db.String(1000), nullable=True)
    queued_at = created_at_column()
    started_at = db.Column(db.DateTime, nullable=True)
    heartbeat_at = db.Column(db.DateTime, nullable=True)
    finished_at = db.Column(db.DateTime, nullable=True)
    resume_at = db.Column(db.DateTime, nullable=True)
    #: rate-limited deferrals of this run in a row (none of them moved its bookmarks): capped
    #: by ``SYNC_MAX_DEFERRALS``, see docs/sync-engine.md "Recovery"
    deferrals = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    #: set in the same transaction as the run's data: a run found ``running`` with this set
    #: committed its data (its worker died just after) and is reported as succeeded
    data_committed_at = db.Column(db.DateTime, nullable=True)
    #: the data check after the run's commit (app/services/data_checks.py): in_balance |
    #: differences | not_applicable; None while not checked (failed runs are never checked)
    data_check_status = db.Column(db.String(20), nullable=True)
    #: the check's detail: counts, the first differences (account, period, both amounts), reason
    data_check = db.Column(db.JSON, nullable=True)

    firm = db.relationship("Firm")
    dossier = db.relationship("Dossier")
    link = db.relationship("DossierLink")
    triggered_by = db.relationship("User")

    @property
    def duration_seconds(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def __str__(self):
        return f"Run #{self.id} ({self.status})"
