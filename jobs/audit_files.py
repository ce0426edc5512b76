"""The background import of an audit file (queued by
:func:`app.services.audit_file_import.queue_import`, job id ``audit-file-import-<dossier id>``).

The job takes ids and the path of the upload kept in the instance folder; it runs the same
checks and writes as an upload in the request, reports its progress in the job's ``meta``
(``phase``, ``done``, ``total``: the Sync tab draws a progress bar from it), always removes
the file, and answers ``{"ok": bool, "message": str}``: a refused file is an outcome, not a
job failure.
"""
import logging
from pathlib import Path

from rq import get_current_job
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.extensions import db
from app.models import Dossier, User
from app.services.audit_file_import import import_audit_file
from app.services.uploads import UploadRejected

log = logging.getLogger("firmsync.jobs")


def run_import(dossier_id, user_id, firm_id, path, filename):
    """Import the audit file at ``path`` into dossier ``dossier_id`` as user ``user_id``."""
    job = get_current_job()
    try:
        dossier = db.session.get(Dossier, dossier_id)
        user = db.session.get(User, user_id) if user_id is not None else None
        if dossier is None or dossier.firm_id != firm_id or user is None:
            return {"ok": False, "message": "This file or its user no longer exists; nothing was written."}
        actor = actor_for(user, firm_id)

        def progress(phase, done, total):
            if job is not None:
                job.meta.update(phase=phase, done=done, total=total)
                job.save_meta()

        try:
            with open(path, "rb") as stream:
                result = import_audit_file(actor, dossier, stream, filename, progress=progress)
        except UploadRejected as error:
            db.session.rollback()
            return {"ok": False, "message": " ".join(error.errors)}
        except Forbidden:  # the user lost the right to upload since the file was queued
            db.session.rollback()
            return {"ok": False, "message": "You may no longer upload data into this file; nothing was written."}
        return {"ok": True, "message": result.message}
    finally:
        Path(path).unlink(missing_ok=True)
