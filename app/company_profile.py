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
  audit event. Nothing here commits, except :func:`import_register_export` (the file route of
  Corporify and FID-Manager: their company register export uploaded as a snapshot, one action).
"""
from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext, ngettext
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app import audit
from app.access import can
from app.extensions import db
from app.i18n import N_
from app.services.fiscal_years import add_months, year_end_on_or_after
from app.models import CompanyProfile, DossierLink
from app.models.base import utcnow

#: compared fields, in display order, with their labels for an accountant (English, as the
#: audit trail keeps them; the console translates them where it shows them)
FIELDS = (
    ("name", N_("Name")),
    ("registration_number", N_("Company number")),
    ("vat_number", N_("VAT number")),
    ("legal_form", N_("Legal form")),
    ("status", N_("Status")),
    ("address", N_("Registered address")),
    ("incorporation_date", N_("Incorporated on")),
    ("fiscal_year_end", N_("Fiscal year end")),
    ("agm_date", N_("Annual general meeting")),
    ("capital", N_("Capital")),
    ("officers", N_("Officers")),
    ("shareholders", N_("Shareholders")),
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
    #: shown next to the value; a field with a warning is only taken over on its own button
    warning: str | None = None


#: fields whose value is a number written many ways (spaces, dots, dashes, lower case)
NUMBERS = ("registration_number", "vat_number")
NUMBER_DIFFERS = ("The register's number (%(source)s) is not this file's own (%(current)s). Check that the file is "
                  "the same company before taking it over; \u201cuse all\u201d leaves it out.")
CAPITALS_ONLY = ("Only the capitals or spaces differ. Taking it over renames the file to \u201c%(source)s\u201d; "
                 "\u201cuse all\u201d leaves it out.")
_MONTHS = {unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower(): number
           for number, names in enumerate((
               (), ("january", "janvier", "januari", "jan"), ("february", "fevrier", "februari", "feb", "fev"),
               ("march", "mars", "maart", "mar", "mrt"), ("april", "avril", "apr", "avr"), ("may", "mai", "mei"),
               ("june", "juin", "juni", "jun"), ("july", "juillet", "juli", "jul"), ("august", "aout", "augustus", "aug"),
               ("september", "septembre", "sep", "sept"), ("october", "octobre", "oktober", "oct", "okt"),
               ("november", "novembre", "nov"), ("december", "decembre", "dec")))
           for name in names}


def _text(value):
    """Whitespace collapsed, accents kept, compared without case."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(value))).strip().casefold()


def month_day(value):
    """A fiscal year end written any usual way as "MM-DD" ("31 December", "31-12", "--12-31", "12-31",
    "31/12"); None when it cannot be read (it is then compared as text)."""
    text = _text(value).strip("-").replace("/", "-").replace(".", "-")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    named = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th|er)?[ -]([a-z]+)", text)
    if named and named.group(2) in _MONTHS:
        day, month = int(named.group(1)), _MONTHS[named.group(2)]
    else:
        numeric = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text)
        if not numeric:
            return None
        first, second = int(numeric.group(1)), int(numeric.group(2))
        # "MM-DD" is Firmsync's own form; a first part over 12 can only be a day ("31-12")
        month, day = (second, first) if first > 12 else (first, second)
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(2024, month)[1]:
        return None
    return f"{month:02d}-{day:02d}"


def comparable(field, value):
    """``value`` as the banner compares it: equal values written differently compare equal.

    Whitespace and capitals never count (except in the name, where :func:`pending_changes`
    shows a capitals-only difference with a warning rather than hiding it); numbers
    ignore spaces, dots and dashes; fiscal year ends compare as "MM-DD"; amounts as
    decimals; lists of people ignore their order.
    """
    if _blank(value):
        return None
    if field in NUMBERS:
        return re.sub(r"[\s.\-/]", "", str(value)).upper()
    if field in ("fiscal_year_end", "agm_date"):
        return month_day(value) or _text(value)
    if field == "capital" and isinstance(value, dict):
        try:
            amount = Decimal(str(value.get("amount"))).normalize()
        except (InvalidOperation, ValueError):
            amount = _text(value.get("amount"))
        return (amount, _text(value.get("currency") or ""))
    if isinstance(value, dict):
        return tuple(sorted((k, comparable(k, v)) for k, v in value.items() if not _blank(v)))
    if isinstance(value, (list, tuple)):
        return tuple(sorted((comparable(field, item) for item in value), key=repr))
    if isinstance(value, str):
        return _text(value)
    return value


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
        same = comparable(field, current) == comparable(field, source)
        if field == "name" and same and current != source and not _blank(current):
            # the register writes names in capitals: never rename a file without showing it
            changes.append(FieldChange(field, label, current, source, gettext(CAPITALS_ONLY, source=source)))
        elif (never_adopted and not _blank(source) and not (same and field in MIRRORED)) or \
                (not never_adopted and not same):
            changes.append(FieldChange(field, label, current, source, _warning(field, current, source)))
    return changes


def _warning(field, current, source):
    """A register number that differs from the file's own: shown, and left out of "use all"."""
    if field in NUMBERS and not _blank(current) and comparable(field, current) != comparable(field, source):
        return gettext(NUMBER_DIFFERS, source=source, current=current)
    return None


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
    # "use all" leaves out what carries a warning (another register number, a name in capitals)
    held = {c.field for c in pending_changes(dossier, profile) if c.warning} if fields is None else set()
    wanted = [f for f, _ in FIELDS
              if (fields is None or f in fields) and data.get(f) is not None and f not in held]
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
    """A value as an accountant reads it (addresses on one line, people counted).

    ``display("holding", shareholder)`` is what one shareholder holds ("60 shares (60%)",
    "50-75%"; '' when unknown), for the Company tab's table.
    """
    if field == "holding":
        return _holding(value or {}).strip()
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
        return "; ".join(f"{p.get('name')}{_holding(p)}" for p in value)
    if field == "capital" and isinstance(value, dict):
        return " ".join(str(part) for part in (value.get("amount"), value.get("currency")) if part)
    if field == "previous_names" and isinstance(value, list):  # Companies House extra: {name, start, end}
        return "; ".join(f"{p.get('name')}{_span(p.get('start'), p.get('end'))}" for p in value)
    if field == "fiscal_year_end":
        try:
            month, day = (int(part) for part in str(value).split("-"))
            return f"{day} {calendar.month_name[month]}"
        except ValueError:
            return str(value)
    return str(value)


def _holding(person):
    """`` 50-75%``, `` 60 shares (60%)`` or ``''``: what a shareholder holds, as far as it is known."""
    parts = []
    if person.get("shares") not in (None, ""):
        try:
            parts.append(ngettext("%(num)d share", "%(num)d shares", int(person["shares"])))
        except (TypeError, ValueError):
            parts.append(str(person["shares"]))
    if person.get("percentage") not in (None, ""):
        parts.append(f"({person['percentage']}%)" if parts else f"{person['percentage']}%")
    if not parts and person.get("share"):
        parts.append(str(person["share"]))
    return (" " + " ".join(parts)) if parts else ""


def _span(start, end):
    """`` (2014-03-01 – 2019-05-20)``; an unknown end is left open, both unknown gives ''."""
    return f" ({start or '…'} – {end or '…'})" if start or end else ""


def _summary(field, value):
    return display(field, value) if field in ("address", "officers", "shareholders", "capital") else value


def write_snapshot(link, record, session=None):
    """Add a :class:`CompanyProfile` version of ``record`` (a :class:`connectors.base.CompanyProfileRecord`)
    for ``link``'s dossier, only when its content hash differs from the latest version's. Used by the
    administration sync (``jobs/profiles.py``) and the file route (a company register export uploaded
    instead of syncing, :func:`import_register_export`). Flushes; the caller commits.
    Answers True when a version was added."""
    import hashlib
    import json

    from sqlalchemy import func

    session = session or db.session
    data = record.as_dict()
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    latest = latest_profile(link.dossier_id, session)
    if latest is not None and latest.content_hash == digest:
        return False
    version = (session.scalar(select(func.max(CompanyProfile.version))
                              .where(CompanyProfile.dossier_id == link.dossier_id)) or 0) + 1
    session.add(CompanyProfile(firm_id=link.firm_id, dossier_id=link.dossier_id, link_id=link.id, version=version,
                               data=json.loads(json.dumps(data, default=str)), content_hash=digest))
    session.flush()
    return True


def import_register_export(actor, dossier, data, filename):
    """Upload the company register export of ``dossier``'s Corporify or FID-Manager link (the file route of
    administration packages built from public information): the file is read by
    :func:`app.services.uploads.read_company_register` (its upload limits, column names and saved column
    mapping; :class:`~app.services.uploads.UploadRejected` or :class:`Forbidden`, nothing written) and
    becomes a snapshot of the link (:func:`write_snapshot`), which :func:`pending_changes` then offers like
    a sync's. Audited and committed (unlike the rest of this module: an upload is one action). Answers
    True when a new snapshot was written, False when the export holds the latest snapshot's data.
    """
    from app.services import uploads

    package, record = uploads.read_company_register(actor, dossier, data, filename, month_day)
    written = write_snapshot(dossier.active_link("administration"), record)
    audit.record(actor, "profile.upload_register", dossier, dossier_id=dossier.id,
                 summary=f"Uploaded a company register export ({filename})",
                 changes={"file": filename, "package": package, "officers": len(record.officers),
                          "shareholders": len(record.shareholders), "new_snapshot": written})
    db.session.commit()
    return written


# --------------------------------------------------------------------------------------
# Two statuses: bookkeeping sync and company-data (administration) sync, kept apart
# --------------------------------------------------------------------------------------

#: link kind -> the status it gives a file (a failed register lookup is not a failed bookkeeping sync)
BOOKKEEPING, COMPANY_DATA = "bookkeeping", "company_data"
_STATUS_OF_KIND = {"accounting": BOOKKEEPING, "administration": COMPANY_DATA}


def sync_statuses(dossier_ids, session=None):
    """``{dossier id: {"bookkeeping": status | None, "company_data": status | None}}`` in one statement.

    Each status is the :class:`app.models.RunStatus` of the newest run of the file's
    **active** link of that kind (accounting → ``bookkeeping``, administration →
    ``company_data``); None when the file has no such link or it never ran. So an
    administration sync that fails (an unknown register number) shows as a failed
    company-data sync and leaves the bookkeeping status as its own last run left it,
    whatever ``Dossier.sync_status`` (the newest run of any kind) says.
    """
    from sqlalchemy import func

    from app.models import SyncRun

    session = session or db.session
    ids = [int(i) for i in dossier_ids]
    answer = {i: {BOOKKEEPING: None, COMPANY_DATA: None} for i in ids}
    if not ids:
        return answer
    newest = (select(func.max(SyncRun.id)).join(DossierLink, DossierLink.id == SyncRun.link_id)
              .where(SyncRun.dossier_id.in_(ids), DossierLink.ended_at.is_(None))
              .group_by(SyncRun.link_id))
    rows = session.execute(
        select(SyncRun.dossier_id, DossierLink.kind, SyncRun.status, SyncRun.id)
        .join(DossierLink, DossierLink.id == SyncRun.link_id).where(SyncRun.id.in_(newest)).order_by(SyncRun.id)
    ).all()
    for dossier_id, kind, status, _ in rows:  # by run id: the newest link of a kind wins
        if kind in _STATUS_OF_KIND:
            answer[dossier_id][_STATUS_OF_KIND[kind]] = status
    return answer
