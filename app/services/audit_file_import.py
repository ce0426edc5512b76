"""Uploading a standard audit file (XAF, FEC, SAF-T) into a manual file (or a file-route one).

:func:`import_audit_file` reads the file with :mod:`app.audit_files` twice, as a stream:

1. **Check** (nothing written; all a preview does): the XML schema when one is published
   (the first :data:`SCHEMA_ERRORS` violations, by line), every line readable, at most
   ``UPLOAD_MAX_ROWS`` lines, every booking and the whole file balanced, the opening balance
   balanced, every line and period inside the fiscal year, every account of a line or an
   opening line in the file's own chart (XAF, SAF-T), the totals the file states equal to
   what its lines add up to (line count, debit, credit, SAF-T's closing balance per
   account), and the fiscal year neither locked nor in conflict with one the file already has.
2. **Write**, only when the check found nothing: the fiscal year (origin ``manual``) when
   the file has none there, the chart (account kinds from the file's standard mappings: RGS,
   SAF-T standard accounts; a kind set before is kept when the file gives none), the opening
   balance at the first day of the year, every line, and each period's balance as the sum of
   its lines, through :class:`app.services.bookkeeping.SyncWriter` with no link. The lines of
   the fiscal year that the file no longer holds are removed, synced lines of its periods
   too. One commit, one audit event.

A file linked to a package built from public information (the file route,
:func:`app.services.uploads.file_route_package`) takes audit files too, as its sync would take
the same figures: a fiscal year ending before the link's transfer date is refused (nothing
would be written), and in a year that straddles it nothing dated before it is written (lines,
their periods' balances, an opening balance dated before it); those periods keep their source.

Source ids are ``audit:<format>:<journal>/<booking>/<line>``, so uploading the same file again
changes nothing and a corrected file changes only what differs.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_left
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, select

from app import audit
from app.audit_files import AuditFileRejected, read_audit_file, schema_for
from app.audit_files.common import (
    ChartAccount, refuse_dtd, release, FileHeader, Line, OpeningLine, PeriodInfo, Problem, StatedTotals, kind_from_class,
)
from app.extensions import db
from app.i18n import N_
from app.models import Account, FiscalYear, LedgerLine, Period
from app.services import fiscal_years
from app.services.account_mapping import remember_file_mappings
from app.services.uploads import MAX_ERRORS, UploadRejected, _check_may_upload, _raise_if
from connectors.base import AccountRecord, BalanceRecord, DeletedRecord, LedgerLineRecord, OpeningBalanceRecord

ZERO = Decimal("0.00")
#: schema violations listed before the rest are only counted
SCHEMA_ERRORS = 5
#: lines between two progress reports (background imports)
PROGRESS_EVERY = 1000
#: bookings whose lines are not yet balanced that the check keeps track of (a file's bookings
#: are contiguous: past this, the file is refused as unbalanced)
MAX_OPEN_ENTRIES = 10_000
SOURCE_ID_CHARS = LedgerLine.__table__.c.source_id.type.length
TEXT_LIMITS = {name: LedgerLine.__table__.c[name].type.length for name in ("description", "reference", "journal")}
ACCOUNT_NUMBER_CHARS = Account.__table__.c.number.type.length
ACCOUNT_NAME_CHARS = Account.__table__.c.name.type.length


@dataclass
class AuditFileResult:
    """What an audit-file upload read (and, unless a preview, wrote)."""

    format: str
    company: str
    fiscal_year: tuple
    accounts: int
    lines: int
    opening_lines: int
    debit: Decimal
    preview: bool
    written: dict = field(default_factory=dict)

    @property
    def message(self):
        """One sentence for the user."""
        start, end = self.fiscal_year
        what = gettext("%(format)s of %(company)s for %(start)s to %(end)s: %(accounts)s accounts, %(lines)s lines, "
                       "%(openings)s opening balances, %(debit)s debit and credit", format=self.format,
                       company=self.company or gettext("the company"), start=start.isoformat(), end=end.isoformat(),
                       accounts=self.accounts, lines=self.lines, openings=self.opening_lines,
                       debit=f"{self.debit:,.2f}")
        if self.preview:
            return gettext("Checked, nothing written: %(what)s. Upload it to write it.", what=what)
        w = self.written
        text = gettext("Uploaded %(what)s (%(added)s lines added, %(changed)s changed, %(removed)s removed).",
                       what=what, added=w.get("lines_inserted", 0), changed=w.get("lines_updated", 0),
                       removed=w.get("lines_deleted", 0))
        if w.get("lines_before_transfer_date"):
            text += " " + gettext("%(count)s lines dated before the sync's transfer date were not written.",
                                  count=w["lines_before_transfer_date"])
        return text


def import_audit_file(actor, dossier, data, filename, *, preview=False, progress=None) -> AuditFileResult:
    """Check and (unless ``preview``) write the audit file ``data`` (bytes or a seekable binary
    file object) into ``dossier``. Raises :class:`werkzeug.exceptions.Forbidden` without
    ``upload_data`` and :class:`~app.services.uploads.UploadRejected` (nothing written).

    ``progress(phase, done, total)`` is called every :data:`PROGRESS_EVERY` lines: phase
    ``"check"`` (``total`` None) then ``"write"`` (``total`` = the file's lines)."""
    _check_may_upload(actor, dossier)
    stream = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray)) else data
    stream.seek(0)
    try:
        _check_schema(stream)
        check = _Check(dossier, current_app.config["UPLOAD_MAX_ROWS"])
        for item in read_audit_file(stream, filename):
            check.take(item)
            if progress is not None and isinstance(item, Line) and check.count % PROGRESS_EVERY == 0:
                progress("check", check.count, None)
        check.finish()
    except AuditFileRejected as error:
        raise UploadRejected(error.errors) from None
    result = AuditFileResult(
        format=check.header.format, company=check.header.company.name if check.header.company else "",
        fiscal_year=(check.start, check.end), accounts=len(check.accounts), lines=check.count,
        opening_lines=len(check.openings), debit=check.debit, preview=preview)
    if preview:
        return result
    stream.seek(0)
    result.written = _write(actor, dossier, check, stream, filename, progress)
    return result


# ----------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------

_schemas = {}


def schema_folder():
    """Where the official schemas are (``AUDIT_FILE_SCHEMA_DIR``; default: the shared specs
    beside the repository). None when the folder is not there (files are then checked by
    their content only)."""
    configured = current_app.config.get("AUDIT_FILE_SCHEMA_DIR")
    folder = Path(configured) if configured else Path(current_app.root_path).parent.parent / "shared/specs/audit-files"
    return folder if folder.is_dir() else None


def _check_schema(stream):
    """Refuse an XML file that breaks its official schema, naming the first violations by line.

    XSD 1.0 schemas (XAF, SAF-T Norway) are checked by libxml2 while the file streams through
    lxml's iterparse (about 70,000 lines a second); only when it finds a violation does
    xmlschema read the file again (stopping after :data:`SCHEMA_ERRORS` violations) to say
    on which lines, which libxml2's streaming check cannot. The XSD 1.1 schema of SAF-T
    Portugal is checked by xmlschema alone.
    """
    relative = schema_for(stream)
    folder = schema_folder()
    if relative is None or folder is None or not (folder / relative).is_file():
        return
    path = str(folder / relative)
    xsd11 = "SAFTPT" in path
    try:
        if not xsd11 and _valid_by_libxml2(stream, path):
            return
        errors = _violations(stream, path, xsd11)
    except AuditFileRejected:
        raise
    except Exception as error:  # noqa: BLE001 - not well-formed XML
        raise AuditFileRejected([gettext("The file is not well-formed XML (%(reason)s).", reason=str(error)[:150])]
                                ) from None
    finally:
        stream.seek(0)
    if errors:
        shown = errors[:SCHEMA_ERRORS]
        if len(errors) > SCHEMA_ERRORS:
            shown.append(gettext("... and more problems."))
        raise AuditFileRejected([gettext("The file does not follow the official schema (%(schema)s).",
                                         schema=relative.rsplit("/", 1)[-1])] + shown)


def _valid_by_libxml2(stream, path):
    """True when the file streams through libxml2's check of the XSD 1.0 at ``path``."""
    from lxml import etree

    schema = _schemas.get(("lxml", path))
    if schema is None:
        schema = _schemas[("lxml", path)] = etree.XMLSchema(etree.parse(path))
    stream.seek(0)
    refuse_dtd(stream)
    try:
        for _, element in etree.iterparse(stream, events=("end",), schema=schema, resolve_entities=False,
                                          no_network=True, huge_tree=False, load_dtd=False):
            if len(element) and element.getparent() is not None and element.getparent().getparent() is not None:
                release(element)  # memory stays bounded: read elements and their elder siblings go
    except etree.XMLSyntaxError:
        return False
    finally:
        stream.seek(0)
    return True


def _violations(stream, path, xsd11):
    """The first violations of the schema at ``path``, with their lines (xmlschema, over lxml's
    safe iterparse)."""
    import xmlschema
    from lxml import etree

    schema = _schemas.get(("xmlschema", path))
    if schema is None:
        schema_class = xmlschema.XMLSchema11 if xsd11 else xmlschema.XMLSchema10
        schema = _schemas[("xmlschema", path)] = schema_class(path)

    def safe_iterparse(source, events=None, **_ignored):
        return etree.iterparse(source, events=events, resolve_entities=False, no_network=True, huge_tree=False,
                               load_dtd=False)

    stream.seek(0)
    refuse_dtd(stream)
    errors = []
    resource = xmlschema.XMLResource(stream, lazy=True, allow="none", iterparse=safe_iterparse)
    for error in schema.iter_errors(resource):
        line = getattr(error, "sourceline", None)
        reason = (error.reason or "invalid").strip()
        errors.append(((f"line {line}: " if line else "") + f"{error.path or ''}: {reason}")[:300])
        if len(errors) > SCHEMA_ERRORS:
            break
    if not errors:  # libxml2 refused what xmlschema accepts (a well-formedness error): say so
        errors.append(gettext("the file breaks the schema or is not well-formed XML"))
    return errors


# ----------------------------------------------------------------------------------------
# Check
# ----------------------------------------------------------------------------------------

class _Check:
    """Everything pass 1 learns and every problem it finds (small: the chart, the openings,
    the bookings not yet balanced, the sums per account)."""

    def __init__(self, dossier, max_rows):
        self.dossier = dossier
        self.max_rows = int(max_rows)
        self.header = None
        self.accounts = {}  # number -> ChartAccount (FEC: built from the lines)
        self.has_chart = False
        self.periods = []
        self.openings = {}
        self.opening_count = 0
        self.stated = []
        self.errors = []
        self.open_entries = {}
        self.count = 0
        self.debit = self.credit = ZERO
        self.per_account = defaultdict(Decimal)
        self.first = self.last = None
        self.lines_outside = []  # the first few; ``outside`` counts them all
        self.outside = 0
        self.too_many_open = False
        self.current_entry, self.entry_keys = None, set()  # the keys of the booking being read
        self.start = self.end = None
        # a file linked to a package built from public information (the file route) takes audit
        # files as its sync would: nothing dated before the link's transfer date is written
        self.link = dossier.active_link("accounting")
        self.transfer_date = self.link.valid_from if self.link is not None else None
        self.before_transfer = 0  # lines dated before the transfer date (read, checked, not written)

    def error(self, line, message):
        self.errors.append(gettext("line %(line)s: %(problem)s", line=line, problem=message) if line else message)

    def take(self, item):
        if isinstance(item, FileHeader):
            self.header = item
        elif isinstance(item, ChartAccount):
            self.has_chart = True
            if len(item.number) > ACCOUNT_NUMBER_CHARS or not item.number:
                self.error(item.line, gettext("account number '%(account)s' is empty or longer than %(most)s "
                                              "characters", account=item.number[:40], most=ACCOUNT_NUMBER_CHARS))
            self.accounts[item.number] = item
        elif isinstance(item, PeriodInfo):
            self.periods.append(item)
        elif isinstance(item, OpeningLine):
            self.opening_count += 1
            self.openings[item.account] = self.openings.get(item.account, ZERO) + item.amount
            if self.has_chart and item.account not in self.accounts:
                self.error(item.line, gettext("the opening balance names account %(account)s, which is not in the "
                                              "file's chart of accounts", account=item.account[:40]))
        elif isinstance(item, StatedTotals):
            self.stated.append(item)
        elif isinstance(item, Problem):
            self.error(item.line, item.message)
        elif isinstance(item, Line):
            self._line(item)

    def _line(self, line):
        self.count += 1
        if self.count > self.max_rows:
            raise AuditFileRejected([gettext("The file has more than %(rows)s lines, the most one upload may hold.",
                                             rows=self.max_rows)])
        if line.account not in self.accounts:
            if self.has_chart:
                self.error(line.line, gettext("account %(account)s is not in the file's chart of accounts",
                                              account=line.account[:40]))
            elif len(line.account) > ACCOUNT_NUMBER_CHARS:
                self.error(line.line, gettext("account number '%(account)s' is empty or longer than %(most)s "
                                              "characters", account=line.account[:40], most=ACCOUNT_NUMBER_CHARS))
            else:
                self.accounts[line.account] = ChartAccount(line.account, line.account_name,
                                                           kind_from_class(line.account))
        if line.amount > 0:
            self.debit += line.amount
        else:
            self.credit -= line.amount
        self.per_account[line.account] += line.amount
        if line.entry != self.current_entry:  # a booking's lines follow each other
            self.current_entry, self.entry_keys = line.entry, set()
        if line.key in self.entry_keys:
            self.error(line.line, gettext("line %(key)s appears twice in booking %(entry)s", key=line.key,
                                          entry=line.entry))
        self.entry_keys.add(line.key)
        total = self.open_entries.pop(line.entry, ZERO) + line.amount
        if total != 0 and len(self.open_entries) < MAX_OPEN_ENTRIES:
            self.open_entries[line.entry] = total
        elif total != 0:
            self.too_many_open = True
        if self.transfer_date is not None and line.booking_date < self.transfer_date:
            self.before_transfer += 1
        if self.first is None or line.booking_date < self.first:
            self.first = line.booking_date
        if self.last is None or line.booking_date > self.last:
            self.last = line.booking_date
        if self.header and self.header.fiscal_year_start and self.header.fiscal_year_end and not (
                self.header.fiscal_year_start <= line.booking_date <= self.header.fiscal_year_end):
            self.outside += 1
            if len(self.lines_outside) < MAX_ERRORS:
                self.lines_outside.append(line)

    def finish(self):
        """Settle the fiscal year and raise UploadRejected with every problem found."""
        if self.header is None:
            raise AuditFileRejected([gettext("The file has no header.")])
        if self.count == 0 and not self.openings and not self.errors:
            self.errors.append(gettext("The file has no ledger lines and no opening balance."))
        self._fiscal_year()
        for line in self.lines_outside[:MAX_ERRORS]:
            self.error(line.line, gettext("%(date)s lies outside the fiscal year %(start)s to %(end)s",
                                          date=line.booking_date.isoformat(), start=self.start.isoformat(),
                                          end=self.end.isoformat()))
        for period in self.periods:
            if self.start and self.end and not (self.start <= period.start and period.end <= self.end):
                self.error(period.line, gettext("period %(number)s (%(start)s to %(end)s) lies outside the fiscal "
                                                "year", number=period.number, start=period.start.isoformat(),
                                                end=period.end.isoformat()))
        if self.outside > len(self.lines_outside):
            self.errors.append(gettext("%(count)s lines in all lie outside the fiscal year.", count=self.outside))
        for entry, total in list(self.open_entries.items())[:MAX_ERRORS]:
            text = (N_("booking %(entry)s does not balance: debits exceed credits by %(amount)s") if total > 0 else
                    N_("booking %(entry)s does not balance: credits exceed debits by %(amount)s"))
            self.errors.append(gettext(text, entry=entry, amount=f"{abs(total):.2f}"))
        if self.too_many_open:
            self.errors.append(gettext("More than %(count)s bookings do not balance.", count=MAX_OPEN_ENTRIES))
        if self.debit != self.credit:
            self.errors.append(gettext("The lines do not balance: %(debit)s debit against %(credit)s credit.",
                                       debit=f"{self.debit:.2f}", credit=f"{self.credit:.2f}"))
        opening_total = sum(self.openings.values(), ZERO)
        if opening_total != 0:
            self.errors.append(gettext("The opening balance does not balance: its debits and credits differ by "
                                       "%(amount)s.", amount=f"{abs(opening_total):.2f}"))
        self._stated_totals()
        _raise_if(self.errors)

    def _stated_totals(self):
        opening_debit = sum((a for a in self.openings.values() if a > 0), ZERO)
        for stated in self.stated:
            if stated.scope == "closing":
                actual = self.openings.get(stated.account, ZERO) + self.per_account.get(stated.account, ZERO)
                wanted = (stated.debit or ZERO) - (stated.credit or ZERO)
                if actual != wanted:
                    self.error(stated.line, gettext("account %(account)s closes at %(stated)s in the file, but its "
                                                    "opening balance and lines add up to %(actual)s",
                                                    account=stated.account[:40], stated=f"{wanted:.2f}",
                                                    actual=f"{actual:.2f}"))
                continue
            count, debit = ((self.count, self.debit) if stated.scope == "lines"
                            else (self.opening_count, opening_debit))
            what = gettext("ledger lines") if stated.scope == "lines" else gettext("opening balance lines")
            if stated.lines is not None and stated.lines != count:
                self.error(stated.line, gettext("the file states %(stated)s %(what)s but holds %(count)s",
                                                stated=stated.lines, what=what, count=count))
            for side, value in ((N_("debit"), stated.debit), (N_("credit"), stated.credit)):
                if value is not None and value != debit:
                    self.error(stated.line, gettext("the file states a total %(side)s of %(stated)s for its %(what)s, "
                                                    "but they add up to %(actual)s", side=gettext(side),
                                                    stated=f"{value:.2f}", what=what, actual=f"{debit:.2f}"))

    def _fiscal_year(self):
        """The file's fiscal year: stated by the file, else from its dates and the dossier's years."""
        start, end = self.header.fiscal_year_start, self.header.fiscal_year_end
        years = fiscal_years.years_of(self.dossier.id)
        if end is None:
            if self.last is None:
                raise AuditFileRejected(self.errors or [gettext("The file states no fiscal year and has no lines.")])
            existing = next((y for y in years if y.start <= self.last <= y.end), None)
            if existing is not None:
                end = existing.end
            else:
                pattern = self.dossier.first_fiscal_year_end
                end = fiscal_years.year_end_on_or_after(self.last, pattern.month if pattern else 12,
                                                        pattern.day if pattern else 31)
        if start is None:
            existing = next((y for y in years if y.end == end), None)
            start = existing.start if existing else fiscal_years.add_months(end, -12) + timedelta(days=1)
            if self.first is not None and self.first < start:
                start = self.first.replace(day=1)
            if self.first is not None and self.last is not None and self.last > end:
                self.errors.append(gettext("The file has lines up to %(last)s, after the end of its fiscal year "
                                           "%(end)s.", last=self.last.isoformat(), end=end.isoformat()))
        if start > end:
            raise AuditFileRejected([gettext("The file's fiscal year starts (%(start)s) after it ends (%(end)s).",
                                             start=start.isoformat(), end=end.isoformat())])
        self.start, self.end = start, end
        if self.transfer_date is not None and end < self.transfer_date:
            self.errors.append(gettext(
                "The audit file's fiscal year %(start)s to %(end)s lies before %(date)s, the transfer date of the "
                "sync with %(connection)s: figures before that date keep their source, so nothing would be "
                "written.", start=start.isoformat(), end=end.isoformat(), date=self.transfer_date.isoformat(),
                connection=self.link.connection.name))
        for year in years:
            if year.start <= end and start <= year.end:
                if year.locked:
                    self.errors.append(gettext("The fiscal year %(start)s to %(end)s is locked, which uploads "
                                               "cannot change.", start=year.start.isoformat(),
                                               end=year.end.isoformat()))
                elif (year.start, year.end) != (start, end):
                    self.errors.append(gettext(
                        "The audit file's fiscal year %(start)s to %(end)s overlaps this file's fiscal year "
                        "%(year_start)s to %(year_end)s; correct the fiscal years first.", start=start.isoformat(),
                        end=end.isoformat(), year_start=year.start.isoformat(), year_end=year.end.isoformat()))


# ----------------------------------------------------------------------------------------
# Write
# ----------------------------------------------------------------------------------------

def _write(actor, dossier, check, stream, filename, progress=None):
    from app.services.bookkeeping import SyncWriter

    session = db.session
    year = session.scalar(select(FiscalYear).where(FiscalYear.dossier_id == dossier.id,
                                                   FiscalYear.start == check.start, FiscalYear.end == check.end))
    if year is None:
        session.add(FiscalYear(dossier_id=dossier.id, start=check.start, end=check.end, origin="manual"))
        session.flush()
    fiscal_years.ensure_periods(session, dossier)
    periods = session.execute(select(Period.id, Period.start, Period.end).where(
        Period.dossier_id == dossier.id, Period.start >= check.start, Period.end <= check.end)
        .order_by(Period.start)).all()
    transfer = check.transfer_date
    # the periods the upload replaces: every period of the year, from the transfer date on
    period_ids = [p.id for p in periods if transfer is None or p.end >= transfer]
    family = check.header.format.split()[0].lower().replace("-", "")
    existing = set(session.scalars(select(LedgerLine.source_id).where(
        LedgerLine.dossier_id == dossier.id, LedgerLine.link_id.is_(None), LedgerLine.period_id.in_(period_ids))))
    synced_removed = session.execute(delete(LedgerLine).where(
        LedgerLine.dossier_id == dossier.id, LedgerLine.link_id.is_not(None),
        LedgerLine.period_id.in_(period_ids))).rowcount

    writer = SyncWriter(session, None, dossier_id=dossier.id)
    kinds = dict(session.execute(select(Account.number, Account.kind).where(Account.dossier_id == dossier.id)).all())
    kinds.update(remember_file_mappings(session, dossier.id, check.accounts))
    for number, account in check.accounts.items():
        kind = kinds.get(number, account.kind)
        writer.write(AccountRecord(number=number, name=(account.name or number)[:ACCOUNT_NAME_CHARS], kind=kind))
    if transfer is None or check.start >= transfer:
        for number, amount in check.openings.items():
            writer.write(OpeningBalanceRecord(account=number, date=check.start, amount=amount))

    sums = defaultdict(Decimal)
    ends = [p.end for p in periods]
    done = 0
    for item in read_audit_file(stream, filename):
        if not isinstance(item, Line):
            continue
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress("write", done, check.count)
        if transfer is not None and item.booking_date < transfer:
            continue  # before the transfer date: its figures keep their source, as in a sync
        source_id = f"audit:{family}:{item.key}"
        if len(source_id) > SOURCE_ID_CHARS:
            source_id = f"audit:{family}:sha1:{hashlib.sha1(item.key.encode()).hexdigest()}"
        existing.discard(source_id)
        dimensions = {k: v for k, v in (("counterparty", item.counterparty),
                                        ("counterparty_name", item.counterparty_name)) if v}
        writer.write(LedgerLineRecord(
            source_id=source_id, booking_date=item.booking_date, account=item.account, amount=item.amount,
            description=item.description[:TEXT_LIMITS["description"]],
            reference=item.reference[:TEXT_LIMITS["reference"]], journal=item.journal[:TEXT_LIMITS["journal"]],
            dimensions=dimensions))
        # the year's periods follow each other: the first one ending on or after the date holds it
        sums[(item.account, ends[bisect_left(ends, item.booking_date)])] += item.amount
    for source_id in existing:
        writer.write(DeletedRecord(source_id=source_id))
    anchor = next(iter(check.accounts))
    covered = [end for end in ends if transfer is None or end >= transfer]
    for end in covered:  # every period of the year is covered: its balances become the file's
        writer.write(BalanceRecord(account=anchor, period_end=end, amount=ZERO, basis="movement"))
    for (account, end), amount in sums.items():
        writer.write(BalanceRecord(account=account, period_end=end, amount=amount, basis="movement"))
    result = writer.finish()
    written = {"accounts": result.accounts, "balances": result.balances, "lines_inserted": result.lines_inserted,
               "lines_updated": result.lines_updated, "lines_deleted": result.lines_deleted + synced_removed,
               "opening_balances": result.opening_balances, "fiscal_years": result.fiscal_years,
               "lines_before_transfer_date": check.before_transfer}
    audit.record(actor, "data.upload_audit_file", dossier, dossier_id=dossier.id,
                 summary=f"Uploaded an audit file ({check.header.format}, {filename})",
                 changes={"file": filename, "format": check.header.format, "fiscal_year_start": check.start,
                          "fiscal_year_end": check.end, "lines": check.count, **written})
    db.session.commit()
    return written


# ----------------------------------------------------------------------------------------
# In the background
# ----------------------------------------------------------------------------------------

#: the RQ function of a background import (jobs take ids and a file path, never objects)
IMPORT_JOB = "jobs.audit_files.run_import"
IMPORT_TIMEOUT = 2 * 3600
IMPORT_RESULT_TTL = 24 * 3600


def import_job_id(dossier_id):
    """The id of the background import of ``dossier_id``: one at a time per file."""
    return f"audit-file-import-{int(dossier_id)}"


def queue_import(actor, dossier, data, filename):
    """Keep the upload in the instance folder (owner-only) and queue its import; answers the
    job id. The same checks as :func:`import_audit_file` run in the job; a file whose import
    is still queued or running is refused."""
    import secrets

    from rq.exceptions import NoSuchJobError

    from app.instance_files import private_folder
    from app.services.queues import PEOPLE_QUEUE, fetch_job, get_queue

    _check_may_upload(actor, dossier)
    job_id = import_job_id(dossier.id)
    state = import_state(dossier.id)
    if state and state["state"] in ("queued", "started"):
        raise UploadRejected([gettext("An audit file is already being imported into this file; wait until it "
                                      "is done.")])
    folder = Path(current_app.instance_path) / "audit-uploads"
    private_folder(folder)
    path = folder / f"{int(dossier.id)}-{secrets.token_hex(8)}"
    import os

    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        source = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray)) else data
        source.seek(0)
        while chunk := source.read(1024 * 1024):
            out.write(chunk)
    try:
        fetch_job(job_id).delete()  # the previous outcome
    except NoSuchJobError:
        pass
    audit.record(actor, "data.upload_audit_file_queued", dossier, dossier_id=dossier.id,
                 summary=f"Audit file queued for import ({filename})", changes={"file": filename})
    db.session.commit()
    get_queue(PEOPLE_QUEUE).enqueue(
        IMPORT_JOB, dossier.id, actor.user_id, actor.firm_id, str(path), filename, job_id=job_id,
        job_timeout=IMPORT_TIMEOUT, result_ttl=IMPORT_RESULT_TTL, failure_ttl=IMPORT_RESULT_TTL,
        description=f"audit file import into dossier {dossier.id}")
    return job_id


def import_state(dossier_id):
    """How the background import of ``dossier_id`` stands, for the Sync tab's poller:
    ``{"state", "phase", "done", "total", "ok", "message"}``, or None when there is none."""
    from rq.exceptions import NoSuchJobError

    from app.services.queues import fetch_job

    try:
        job = fetch_job(import_job_id(dossier_id))
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=True)
    status = getattr(status, "value", status)
    meta = job.get_meta(refresh=True) if hasattr(job, "get_meta") else job.meta
    answer = {"state": {"finished": "done", "failed": "failed"}.get(status, status or "queued"),
              "phase": meta.get("phase", ""), "done": meta.get("done", 0), "total": meta.get("total"),
              "ok": None, "message": ""}
    if answer["state"] == "done":
        result = job.return_value() if hasattr(job, "return_value") else job.result
        answer.update(ok=bool(result and result.get("ok")), message=(result or {}).get("message", ""))
    elif answer["state"] == "failed":
        answer.update(ok=False, message=gettext("The import stopped on an error; nothing was written."))
    return answer
