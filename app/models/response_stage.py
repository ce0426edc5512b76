"""A parked sync run's kept answers (docs/sync-engine.md "Parking").

When a run parks (its API budget is used up), the answers its attempts received are kept
here so the next attempt is answered from them up to where it stopped, then continues live
(:mod:`connectors.response_journal`, :mod:`app.services.response_stages`). The rows live only
while the run is active: they are deleted when it ends, and the reaper sweeps any left behind.
"""
from app.extensions import db
from app.models.base import created_at_column


class RunResponseStage(db.Model):
    """One kept answer of a parked run: the hash of its request, status, headers, compressed body.

    Never a request header, never a credential exchange (token, login, session requests are
    not kept, nor answers naming a credential field), never a cookie header.
    """

    __tablename__ = "run_response_stage"
    __table_args__ = (db.UniqueConstraint("run_id", "seq", name="uq_run_response_stage_run_seq"),)

    id = db.Column(db.Integer, primary_key=True)
    run_id = db.Column(db.Integer, db.ForeignKey("sync_run.id", ondelete="CASCADE"), nullable=False)
    #: the order the answers were received in (a resume hands them out in this order)
    seq = db.Column(db.Integer, nullable=False)
    #: :func:`connectors.response_journal.request_key`: SHA-256 of method, URL with query, body hash
    key_hash = db.Column(db.String(64), nullable=False)
    status = db.Column(db.Integer, nullable=False)
    #: the response headers that hold no credential (:func:`connectors.response_journal.kept_headers`)
    headers = db.Column(db.JSON, nullable=False)
    #: the response body, zlib-compressed
    body = db.Column(db.LargeBinary, nullable=False)
    #: the last day of the run's sync window, frozen at the attempt that first parked, so a resume
    #: days later asks the same requests
    window_end = db.Column(db.Date, nullable=False)
    created_at = created_at_column()
