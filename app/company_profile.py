"""Administration sync: what the latest company profile would change, and adopting it.

An administration link (Companies House, ...) stores versioned
:class:`~app.models.CompanyProfile` snapshots (``jobs/profiles.py``). The firm decides
which values it takes over ("Use the data from Companies House sync"); what it took is
kept in ``Dossier.adopted_profile`` as ``{field: {"value", "version", "by", "at"}}``.

Some fields are mirrored by the dossier's own columns (:data:`MIRRORED`): adopting the
name renames the dossier, adopting the fiscal year end sets the end of its first fiscal
year. For those the value *in effect* is the column, so a user who edits the dossier by
hand "overrides" the adopted value and the banner comes back.

* :func:`pending_changes` lists the fields where the latest snapshot differs from the
  value in effect (every field the sync knows, when nothing was adopted yet);
* :func:`adopt` takes over all or some fields, checks the actor's right and writes an
  audit event. Nothing here commits.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.services.fiscal_years import add_months, year_end_on_or_after
from app.models import CompanyProfile, DossierLink
from app.models.base import utcnow

#: compared fields, in display order, with their labels for an accountant
FIELDS = (
    ("name", "Name"),
    ("registration_number", "Company number"),
    ("vat_number", "VAT number"),
    ("legal_form", "Legal form"),
    ("status", "Status"),
    ("address", "Registered address"),
    ("incorporation_date", "Incorporated on"),
    ("fiscal_year_end", "Fiscal year end"),
    ("officers", "Officers"),
    ("shareholders", "Shareholders"),
)
LABELS = dict(FIELDS)
#: profile field -> the Dossier column that mirrors it
MIRRORED = {
    "name": "name",
    "registration_number": "company_number",
    "vat_number": "vat_number",
    "fiscal_year_end": "first_fiscal_year_end",
}
NOT_ALLOWED = "You may not take over administration data in this dossier."


@dataclass(frozen=True)
class FieldChange:
    """One field where the source's latest value differs from the value in the dossier."""

    field: str
    label: str
    adopted_value: object  # the value in effect in the dossier (None: nothing yet)
    source_value: object  # the latest snapshot's value


def latest_profile(dossier_id, session=None):
    """The newest :class:`CompanyProfile` of a dossier, or None."""
    session = session or db.session
    return session.scalar(
        select(CompanyProfile).where(CompanyProfile.dossier_id == dossier_id)
        .order_by(CompanyProfile.version.desc()).limit(1)
    )


def source_name(profile):
    """The package a snapshot came from, for messages ("Companies House")."""
    from connectors.registry import get_connector

    link = db.session.get(DossierLink, profile.link_id) if profile is not None and profile.link_id else None
    if link is not None and link.connection is not None:
        try:
            return get_connector(link.connection.package).spec.display_name
        except Exception:  # a package no longer installed: its stored name still helps
            return link.connection.name
    return "the administration sync"


def value_in_effect(dossier, field):
    """The dossier's current value of ``field``: its own column when mirrored, else the adopted value."""
    if field == "fiscal_year_end":
        end = dossier.first_fiscal_year_end
        return f"{end:%m-%d}" if end else None
    if field in MIRRORED:
        return getattr(dossier, MIRRORED[field])
    entry = (dossier.adopted_profile or {}).get(field)
    return entry.get("value") if isinstance(entry, dict) else None


def _blank(value):
    return value is None or value == "" or value == [] or value == {}


def pending_changes(dossier, profile=None):
    """``[FieldChange]`` between the latest snapshot (or ``profile``) and the dossier.

    A field is pending when the source has a value and either it was never adopted, or the
    value in effect differs from it (the source changed since, or a user overrode the
    adopted value). A field the source does not know (``None``, e.g. VAT at Companies
    House) is never offered, so adopting never wipes what the firm typed.
    """
    profile = profile if profile is not None else latest_profile(dossier.id)
    if profile is None:
        return []
    adopted = dossier.adopted_profile or {}
    changes = []
    for field, label in FIELDS:
        source = (profile.data or {}).get(field)
        if source is None:
            continue
        current = value_in_effect(dossier, field)
        never_adopted = field not in adopted
        if (never_adopted and not _blank(source)) or (not never_adopted and current != source):
            changes.append(FieldChange(field, label, current, source))
    return changes


def adopt(actor, dossier, fields=None, profile=None):
    """Take over ``fields`` (default: every field the source knows) from the latest snapshot.

    Needs ``can(actor, "adopt_profile", dossier.id)`` (admin, staff, external; support
    staff are read-only), else :class:`werkzeug.exceptions.Forbidden`. Unknown field names
    raise ``ValueError``. Mirrored fields update the dossier (rename, company number, VAT,
    first fiscal year end). Writes an audit event; the caller commits. Returns the names of
    the fields whose value in effect changed or that were adopted for the first time.
    """
    if actor is None or actor.is_support or not can(actor, "adopt_profile", dossier.id):
        raise Forbidden(NOT_ALLOWED)
    unknown = set(fields or ()) - set(LABELS)
    if unknown:
        raise ValueError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    profile = profile if profile is not None else latest_profile(dossier.id)
    if profile is None:
        return []
    data = profile.data or {}
    wanted = [f for f, _ in FIELDS if (fields is None or f in fields) and data.get(f) is not None]
    adopted = dict(dossier.adopted_profile or {})
    now = utcnow().isoformat(timespec="seconds")
    changes, taken = {}, []
    for field in wanted:
        before = value_in_effect(dossier, field)
        value = data[field]
        if field in MIRRORED:
            _mirror(dossier, field, value, data.get("incorporation_date"))
        after = value_in_effect(dossier, field) if field in MIRRORED else value
        if before != after or field not in adopted:
            taken.append(field)
        if before != after:
            changes[field] = [_summary(field, before), _summary(field, after)]
        adopted[field] = {"value": after, "version": profile.version, "by": actor.user_id, "at": now}
    dossier.adopted_profile = adopted  # a new dict: the JSON column sees the change
    if taken:
        source = source_name(profile)
        audit.record(actor, "profile.adopted", dossier, summary=(
            f"Took over {len(taken)} field(s) from {source} (version {profile.version}): "
            + ", ".join(LABELS[f].lower() for f in taken)), changes=changes)
    db.session.flush()
    return taken


def _mirror(dossier, field, value, incorporation_date):
    if field == "name":
        dossier.name = str(value)[:200]
    elif field == "registration_number":
        dossier.company_number = str(value)[:50]
    elif field == "vat_number":
        dossier.vat_number = str(value).upper()[:50]
    elif field == "fiscal_year_end":
        dossier.first_fiscal_year_end = first_year_end(value, dossier.first_fiscal_year_end, incorporation_date)


def first_year_end(month_day, current=None, incorporation_date=None, today=None):
    """The first fiscal year end for a "MM-DD" year end.

    With a current first year end: the same year, on the new day (clamped to the month).
    Else from the incorporation date: the first such day at least six months later (a UK
    first accounting period runs 6 to 18 months). Else the next such day from today.
    """
    month, day = (int(part) for part in str(month_day).split("-"))
    if current is not None:
        return date(current.year, month, min(day, calendar.monthrange(current.year, month)[1]))
    if incorporation_date:
        start = incorporation_date if isinstance(incorporation_date, date) else date.fromisoformat(str(incorporation_date))
        return year_end_on_or_after(add_months(start, 6, month_end=False), month, day)
    return year_end_on_or_after(today or utcnow().date(), month, day)


def display(field, value):
    """A value as an accountant reads it (addresses on one line, people counted)."""
    if _blank(value):
        return "—"
    if field == "address" and isinstance(value, dict):
        order = ("line_1", "line_2", "city", "region", "postal_code", "country")
        return ", ".join(str(value[k]) for k in order if value.get(k))
    if field == "officers" and isinstance(value, list):
        current = sum(1 for person in value if not person.get("end"))
        return f"{len(value)} officers ({current} current): " + "; ".join(
            f"{p.get('name')}{'' if not p.get('end') else ' (until ' + str(p['end']) + ')'}" for p in value)
    if field == "shareholders" and isinstance(value, list):
        return "; ".join(f"{p.get('name')}{' ' + p['share'] if p.get('share') else ''}" for p in value)
    if field == "previous_names" and isinstance(value, list):  # Companies House extra: {name, start, end}
        return "; ".join(f"{p.get('name')}{_span(p.get('start'), p.get('end'))}" for p in value)
    if field == "fiscal_year_end":
        try:
            month, day = (int(part) for part in str(value).split("-"))
            return f"{day} {calendar.month_name[month]}"
        except ValueError:
            return str(value)
    return str(value)


def _span(start, end):
    """`` (2014-03-01 – 2019-05-20)``; an unknown end is left open, both unknown gives ''."""
    return f" ({start or '…'} – {end or '…'})" if start or end else ""


def _summary(field, value):
    return display(field, value) if field in ("address", "officers", "shareholders") else value
