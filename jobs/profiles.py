"""Company profile snapshots from administration links (:class:`CompanyProfileRecord`).

A new :class:`app.models.CompanyProfile` version is added only when the content differs
from the latest one (compared by a hash), so a resync with unchanged data writes nothing.
"""
from app.company_profile import write_snapshot
from app.models import DossierLink


def write_profile(session, link_id, record):
    """Add a profile version for the link's dossier if ``record`` differs; True when written."""
    return write_snapshot(session.get(DossierLink, link_id), record, session)
