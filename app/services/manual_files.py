"""When a manual file last got figures by upload (docs/console.md, "Manual files: last uploaded").

A manual file (no active accounting link) gets its figures by upload, never by a sync, so
"Never synced" says nothing useful about it. Every completed upload is recorded as an audit
event of its file (:mod:`app.services.uploads`, :mod:`app.services.audit_file_import`); the
newest of them is the file's "last uploaded" time. Nothing here checks access: callers pass
files the actor may see.
"""
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent

#: the audit actions of a completed upload of figures (a queued audit file is not one yet)
UPLOAD_ACTIONS = ("data.upload_trial_balance", "data.upload_ledger_lines", "data.upload_audit_file")


def last_uploads(dossier_ids):
    """``{dossier id: time of its newest completed upload}`` (naive UTC) for the files of
    ``dossier_ids`` that have one: one grouped statement, whatever the number of files."""
    ids = list(dossier_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(AuditEvent.dossier_id, func.max(AuditEvent.created_at))
        .where(AuditEvent.dossier_id.in_(ids), AuditEvent.action.in_(UPLOAD_ACTIONS))
        .group_by(AuditEvent.dossier_id))
    return {dossier_id: uploaded_at for dossier_id, uploaded_at in rows if uploaded_at is not None}


def last_upload(dossier):
    """The time of the newest completed upload into ``dossier`` when it is a manual file (no
    active accounting link), else None: a linked file shows its sync status instead."""
    if dossier.active_link("accounting") is not None:
        return None
    return last_uploads([dossier.id]).get(dossier.id)
