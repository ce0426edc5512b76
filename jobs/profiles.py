"""Company profile snapshots from administration links (:class:`CompanyProfileRecord`).

A new :class:`app.models.CompanyProfile` version is added only when the content differs
from the latest one (compared by a hash), so a resync with unchanged data writes nothing.
"""
import hashlib
import json

from sqlalchemy import func, select

from app.models import CompanyProfile, DossierLink


def write_profile(session, link_id, record):
    """Add a profile version for the link's dossier if ``record`` differs; True when written."""
    link = session.get(DossierLink, link_id)
    data = record.as_dict()
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    latest = session.scalar(
        select(CompanyProfile).where(CompanyProfile.dossier_id == link.dossier_id)
        .order_by(CompanyProfile.version.desc()).limit(1)
    )
    if latest is not None and latest.content_hash == digest:
        return False
    version = (session.scalar(select(func.max(CompanyProfile.version))
                              .where(CompanyProfile.dossier_id == link.dossier_id)) or 0) + 1
    session.add(CompanyProfile(firm_id=link.firm_id, dossier_id=link.dossier_id, link_id=link.id,
                               version=version, data=json.loads(json.dumps(data, default=str)), content_hash=digest))
    session.flush()
    return True
