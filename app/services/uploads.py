"""Manual uploads: a trial balance or ledger lines from a CSV or XLSX file.

A manual file (no active accounting link, or after "revert to a manual file") gets its
figures by upload:

* :func:`import_trial_balance`: one row per account (number, optional name, and either a
  year-to-date amount or debit and credit columns) at a chosen period end. The trial
  balance must balance. Year-to-date amounts become the movement of the chosen period:
  the balance at this period end minus the balance at the previous period end of the
  same fiscal year (what earlier uploads or syncs put there). The upload replaces the
  balances of that period ("accounts missing from the upload show 0").
* :func:`import_ledger_lines`: one row per line (date, account, optional account name,
  description, reference, journal, and an amount or debit and credit). The lines replace
  every ledger line of the periods they fall in, and those periods' balances become the
  sums of the uploaded lines.

Files: CSV separated by ``,`` or ``;`` (UTF-8, with or without BOM), decimal comma or
point, a header row whose column names are recognised in English, French and Dutch; or
XLSX (first sheet). Every bad line is reported with its line number and the reason, and
nothing is written unless the whole file is valid (:class:`UploadRejected`). Data goes
through :class:`app.services.bookkeeping.SyncWriter` with no link (origin NULL), an audit event records
the counts, and the session is committed once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import math
import re
import struct
import unicodedata
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from xml.parsers import expat

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, func, select
from werkzeug.exceptions import Forbidden

from app import audit
from app.services import fiscal_years
from app.access import can
from app.extensions import db
from app.i18n import N_
from app.models import Account, LedgerLine, Period, PeriodBalance
from connectors.base import (
    AccountRecord,
    BalanceRecord,
    DeletedRecord,
    LedgerLineRecord,
)

CENT = Decimal("0.01")
#: at most this many bad lines are listed; the rest are counted (the list travels in the
#: session cookie as a flashed message, which must stay under 4 KB)
MAX_ERRORS = 10
#: amounts must stay below this: 15 digits before the decimal point (the database keeps 16)
AMOUNT_LIMIT = Decimal(10) ** 15
#: the dates an upload may hold (outside them: a typing error, and no fiscal year fits)
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2200, 12, 31)
#: a CSV line longer than this is refused before it is split into cells
MAX_LINE_CHARS = 100_000
#: an XLSX with more zip members than this is refused (a one-sheet workbook has about ten)
MAX_XLSX_MEMBERS = 1_000
#: room for one member in a zip's table of contents (46 bytes and its name)
ZIP_ENTRY_BYTES = 256
#: Excel's own limit of columns; a sheet row with more cells is not read
EXCEL_MAX_COLUMNS = 16_384
#: a value quoted in an error message is cut to this many characters
SHOWN_CHARS = 40
NOT_UTF8 = "The file is not UTF-8 text: save it as \"CSV UTF-8\" and upload it again."
NOT_A_WORKBOOK = "The file is not a readable Excel workbook (.xlsx)."
TRIAL_BALANCE, LEDGER_LINES = "trial_balance", "ledger_lines"

#: column -> recognised header names (lower case, accents removed, punctuation as spaces)
_COMMON = {
    "account": ("account", "account number", "account no", "account code", "gl account", "code",
                "compte", "numero de compte", "numero compte", "n compte", "no compte", "compte general",
                "rekening", "rekeningnummer", "rekening nummer", "grootboekrekening", "grootboek",
                "nummer", "number"),
    "debit": ("debit", "debet"),
    "credit": ("credit",),
}
TRIAL_BALANCE_COLUMNS = {
    **_COMMON,
    "name": ("name", "account name", "description", "libelle", "intitule", "nom", "nom du compte",
             "libelle du compte", "intitule du compte", "naam", "rekeningnaam", "omschrijving", "grootboeknaam"),
    "amount": ("amount", "balance", "ytd", "year to date", "ytd balance", "ytd amount", "montant", "solde",
               "solde cumule", "saldo", "bedrag", "cumulatief saldo"),
}
LEDGER_COLUMNS = {
    **_COMMON,
    "name": ("account name", "nom du compte", "intitule", "intitule du compte", "libelle du compte",
             "rekeningnaam", "grootboeknaam", "naam rekening"),
    "date": ("date", "booking date", "posting date", "transaction date", "date comptable", "date d ecriture",
             "date ecriture", "datum", "boekingsdatum", "boekdatum"),
    "description": ("description", "memo", "narration", "text", "libelle", "libelle ecriture", "omschrijving",
                    "tekst"),
    "reference": ("reference", "ref", "document", "document number", "piece", "numero de piece", "n piece",
                  "referentie", "boekstuk", "stuk", "stuknummer"),
    "journal": ("journal", "journal code", "code journal", "dagboek", "dagboekcode"),
    "amount": ("amount", "montant", "bedrag", "saldo"),
}
_LABELS = {"account": "the account number", "amount": "an amount (or debit and credit)", "date": "the date"}
#: text column -> (its name in messages, the most characters the database keeps)
TEXT_LIMITS = {
    "account": (N_("account number"), Account.__table__.c.number.type.length),
    "name": (N_("account name"), Account.__table__.c.name.type.length),
    "description": (N_("description"), LedgerLine.__table__.c.description.type.length),
    "reference": (N_("reference"), LedgerLine.__table__.c.reference.type.length),
    "journal": (N_("journal"), LedgerLine.__table__.c.journal.type.length),
}
#: the amounts :func:`_parse_amount` reads once separators are settled: digits and one point
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
#: the amount columns' names in messages (marked for the catalogs)
AMOUNT_WORDS = (N_("amount"), N_("debit"), N_("credit"))


#: column -> its name in the column mapping form and messages (the file route, :func:`save_column_mapping`)
MAPPED_COLUMNS = {
    "account": N_("account number"), "name": N_("account name"), "amount": N_("amount"), "debit": N_("debit"),
    "credit": N_("credit"), "date": N_("date"), "description": N_("description"), "reference": N_("reference"),
    "journal": N_("journal"),
}
#: the longest header text a saved mapping may name
MAPPED_TITLE_CHARS = 100


class UploadRejected(ValueError):
    """The upload was refused; ``errors`` are sentences for the user (line numbers first)."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass
class ImportResult:
    """What an upload wrote (the counts also go into the audit event)."""

    kind: str
    rows: int
    accounts: int = 0
    balances: int = 0
    lines_inserted: int = 0
    lines_updated: int = 0
    lines_deleted: int = 0
    period_ends: list = field(default_factory=list)

    @property
    def message(self):
        """One sentence for the user."""
        periods = ", ".join(d.isoformat() for d in self.period_ends)
        if self.kind == TRIAL_BALANCE:
            return f"Trial balance at {periods} uploaded: {self.rows} accounts, {self.balances} balances changed."
        return (f"{self.rows} ledger lines uploaded for the periods ending {periods}: "
                f"{self.lines_inserted} added, {self.lines_updated} changed, {self.lines_deleted} removed.")


# --------------------------------------------------------------------------------------
# Public surface
# --------------------------------------------------------------------------------------

def import_trial_balance(actor, dossier, data, filename, period_end, package=None) -> ImportResult:
    """Upload a trial balance of year-to-date amounts at ``period_end`` into ``dossier``.

    ``data`` is bytes or a file object (Werkzeug ``FileStorage``); ``filename`` decides CSV or
    XLSX. ``package`` (a registry key) says whose export the file is: the firm's saved column
    mapping of that package applies (:func:`save_column_mapping`); a file linked to a package
    built from public information takes that package's exports (the file route). Raises
    :class:`werkzeug.exceptions.Forbidden` without ``upload_data`` and :class:`UploadRejected`
    (nothing written) for any problem.
    """
    package = _check_may_upload(actor, dossier) or package
    rows = _rows_of(data, filename)
    table = _Table(rows, TRIAL_BALANCE_COLUMNS, ("account",), column_mapping(dossier.firm_id, package, TRIAL_BALANCE))
    errors, entries, seen = [], {}, {}
    for number, row in table.records():
        table.check_lengths(row, number, errors)
        account = table.text(row, "account")
        if not account:
            errors.append(f"line {number}: the account number is empty")
            continue
        amount = table.amount(row, number, errors)
        if account in seen:
            errors.append(f"line {number}: account {account} appears twice (also on line {seen[account]})")
            continue
        seen[account] = number
        if amount is not None:
            entries[account] = (table.text(row, "name"), amount)
    if not seen and not errors:
        errors.append("The file has no lines below its header.")
    _raise_if(errors)
    total = sum((amount for _, amount in entries.values()), Decimal("0.00"))
    if total != 0:
        side = "debits exceed credits" if total > 0 else "credits exceed debits"
        raise UploadRejected([f"The trial balance does not balance: {side} by {abs(total):.2f} {dossier.currency}."])

    period = _period_ending(dossier, period_end)
    previous = _ytd_before(dossier, period)
    movements = {account: amount - previous.get(account, Decimal("0.00")) for account, (_, amount) in entries.items()}
    for account, amount in previous.items():
        movements.setdefault(account, -amount)  # missing from the upload: its balance is now 0
    records = [BalanceRecord(account=a, period_end=period.end, amount=m, basis="movement") for a, m in movements.items()]
    records += _keep_later_ytd(dossier, period, previous, entries)

    writer = _writer(dossier)
    for record in _account_records(dossier, {a: name for a, (name, _) in entries.items()}):
        writer.write(record)
    for record in records:
        writer.write(record)
    written = writer.finish()
    result = ImportResult(TRIAL_BALANCE, rows=len(entries), accounts=written.accounts, balances=written.balances,
                          period_ends=[period.end])
    audit.record(actor, "data.upload_trial_balance", dossier, dossier_id=dossier.id,
                 summary=f"Uploaded a trial balance at {period.end.isoformat()} ({filename})",
                 changes={"file": filename, "rows": result.rows, "accounts": result.accounts,
                          "balances": result.balances, "period_end": period.end})
    db.session.commit()
    return result


def import_ledger_lines(actor, dossier, data, filename, package=None) -> ImportResult:
    """Upload ledger lines into ``dossier``; they replace the lines of the periods they fall in.

    Same checks, errors and ``package`` as :func:`import_trial_balance`.
    """
    package = _check_may_upload(actor, dossier) or package
    rows = _rows_of(data, filename)
    table = _Table(rows, LEDGER_COLUMNS, ("date", "account"), column_mapping(dossier.firm_id, package, LEDGER_LINES))
    errors, lines = [], []
    for number, row in table.records():
        table.check_lengths(row, number, errors)
        booking_date = table.date(row, number, errors)
        account = table.text(row, "account")
        if not account:
            errors.append(f"line {number}: the account number is empty")
        amount = table.amount(row, number, errors)
        if booking_date is None or not account or amount is None:
            continue
        lines.append((number, booking_date, account, amount, row))
    if not lines and not errors:
        errors.append("The file has no lines below its header.")
    _raise_if(errors)

    periods = {}
    for number, booking_date, *_ in lines:
        period = _period_containing(dossier, booking_date)
        if period is None or period.fiscal_year.locked:
            errors.append(f"line {number}: {booking_date.isoformat()} falls in a locked fiscal year, "
                          "which uploads cannot change")
        else:
            periods[booking_date] = period
    if errors:
        db.session.rollback()
        _raise_if(errors)

    covered = {p.id: p for p in periods.values()}
    records, sums, names, occurrences = [], defaultdict(Decimal), {}, defaultdict(int)
    for number, booking_date, account, amount, row in lines:
        description, reference, journal = (table.text(row, c) for c in ("description", "reference", "journal"))
        key = "|".join((booking_date.isoformat(), account, str(amount), description, reference, journal))
        occurrences[key] += 1
        digest = hashlib.sha1(f"{key}|{occurrences[key]}".encode()).hexdigest()
        records.append(LedgerLineRecord(
            source_id=f"upload:{dossier.id}:{digest}", booking_date=booking_date, account=account, amount=amount,
            description=description, reference=reference, journal=journal))
        period_end = periods[booking_date].end
        sums[(account, period_end)] += amount
        if table.text(row, "name"):
            names[account] = table.text(row, "name")
    errors = [gettext("The lines of account %(account)s in the period ending %(period_end)s add up to more than "
                      "15 digits before the decimal point", account=account, period_end=period_end.isoformat())
              for (account, period_end), total in sums.items() if abs(total) >= AMOUNT_LIMIT]
    if errors:
        db.session.rollback()
        _raise_if(errors)
    new_ids = {r.source_id for r in records}
    stale_manual = db.session.scalars(select(LedgerLine.source_id).where(
        LedgerLine.dossier_id == dossier.id, LedgerLine.link_id.is_(None), LedgerLine.period_id.in_(list(covered))))
    deletes = [DeletedRecord(source_id=s) for s in stale_manual if s not in new_ids]
    synced_removed = db.session.execute(delete(LedgerLine).where(
        LedgerLine.dossier_id == dossier.id, LedgerLine.link_id.is_not(None),
        LedgerLine.period_id.in_(list(covered)))).rowcount

    writer = _writer(dossier)
    for record in _account_records(dossier, names):
        writer.write(record)
    for record in records + deletes:
        writer.write(record)
    for (account, period_end), amount in sums.items():
        writer.write(BalanceRecord(account=account, period_end=period_end, amount=amount, basis="movement"))
    written = writer.finish()
    ends = sorted(p.end for p in covered.values())
    result = ImportResult(LEDGER_LINES, rows=len(records), accounts=written.accounts, balances=written.balances,
                          lines_inserted=written.lines_inserted, lines_updated=written.lines_updated,
                          lines_deleted=written.lines_deleted + synced_removed, period_ends=ends)
    audit.record(actor, "data.upload_ledger_lines", dossier, dossier_id=dossier.id,
                 summary=f"Uploaded {result.rows} ledger lines ({filename})",
                 changes={"file": filename, "rows": result.rows, "lines_inserted": result.lines_inserted,
                          "lines_updated": result.lines_updated, "lines_deleted": result.lines_deleted,
                          "synced_lines_replaced": synced_removed, "balances": result.balances,
                          "period_ends": ends})
    db.session.commit()
    return result


def upload_period_ends(dossier, today=None):
    """The period ends a trial balance can be uploaded for, newest first.

    Those of the file's fiscal years, plus those of the year containing ``today`` when the
    file has none yet (it is created at the upload). Nothing is written.
    """
    today = today or date.today()
    years = [(y.start, y.end) for y in fiscal_years.years_of(dossier.id)]
    if not any(start <= today <= end for start, end in years) and not any(start > today for start, _ in years):
        pattern = dossier.first_fiscal_year_end or (years[-1][1] if years else None)
        month, dom = (pattern.month, pattern.day) if pattern else (12, 31)
        end = fiscal_years.year_end_on_or_after(today, month, dom)
        start = fiscal_years.add_months(end, -12) + timedelta(days=1)
        if years and start <= years[-1][1]:
            start = years[-1][1] + timedelta(days=1)
        years.append((start, end))
    ends = [end for start, stop in years for _, end in fiscal_years.period_bounds(start, stop, dossier.frequency)]
    return sorted(ends, reverse=True)


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------

def file_route_package(dossier):
    """The package whose exports may be uploaded into ``dossier`` while it stays linked: its
    active accounting link's, when that package is built from public information (the file
    route: a firm is never blocked by a missing API); else None."""
    from connectors.registry import get_connector

    link = dossier.active_link("accounting")
    if link is None:
        return None
    try:
        spec = get_connector(link.connection.package).spec
    except KeyError:
        return None
    return spec.key if spec.built_from_public_information else None


def _check_may_upload(actor, dossier):
    """Refuse an upload the actor may not make; answer the file route's package (or None)."""
    if not can(actor, "upload_data", dossier.id):
        raise Forbidden("You may not upload data into this file.")
    link = dossier.active_link("accounting")
    route = file_route_package(dossier)
    if route is not None:
        return route
    if link is not None:
        raise UploadRejected([
            f"This file syncs from {link.connection.name}, so its figures cannot be uploaded. "
            + "To upload, first revert it to a manual file (Switch sync > Revert to a manual file)."])


def _raise_if(errors):
    if errors:
        shown = errors[:MAX_ERRORS]
        if len(errors) > MAX_ERRORS:
            shown.append(f"... and {len(errors) - MAX_ERRORS} more problems.")
        raise UploadRejected(shown)


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

def _rows_of(data, filename):
    """The file's rows as ``(line number, [cell, ...])``, header first, read as they are used.

    ``data`` is bytes or a binary file object (seekable for XLSX). CSV is decoded line by
    line and XLSX read row by row, so a file is never held whole in memory as text or cells;
    :func:`_within_limits` stops at the first row past ``UPLOAD_MAX_ROWS`` or
    ``UPLOAD_MAX_COLUMNS``, and a workbook is measured before it is opened
    (:func:`_refuse_oversized_workbook`).
    """
    stream = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray)) else data
    if not hasattr(stream, "read"):
        raise TypeError("data must be bytes or a file object")
    name = (filename or "").lower()
    limits = _UploadLimits.from_config()
    if name.endswith((".xlsx", ".xlsm")):
        if stream.seek(0, io.SEEK_END) == 0:
            raise UploadRejected(["The file is empty."])
        stream.seek(0)
        _refuse_oversized_workbook(stream, limits)
        return _within_limits(_xlsx_rows(stream, limits), limits)
    if name.endswith((".csv", ".txt")):
        return _within_limits(_csv_rows(stream), limits)
    raise UploadRejected(["Upload a CSV file (.csv) or an Excel workbook (.xlsx)."])


@dataclass(frozen=True)
class _UploadLimits:
    """The ``UPLOAD_MAX_*`` settings (see ``config.py``)."""

    rows: int
    columns: int
    xlsx_uncompressed_bytes: int

    @classmethod
    def from_config(cls):
        settings = current_app.config
        return cls(rows=int(settings["UPLOAD_MAX_ROWS"]), columns=int(settings["UPLOAD_MAX_COLUMNS"]),
                   xlsx_uncompressed_bytes=int(settings["UPLOAD_MAX_XLSX_UNCOMPRESSED_BYTES"]))


def _within_limits(rows, limits):
    """``rows`` with trailing empty cells dropped, refused at the first row past the limits
    (``rows`` is closed then, so the file it reads is let go at once)."""
    try:
        for count, (number, cells) in enumerate(rows, start=1):
            if count > limits.rows:
                raise UploadRejected([gettext(
                    "The file has more than %(rows)s lines, the most one upload may hold; split it into smaller "
                    "files.", rows=limits.rows)])
            while cells and not str(cells[-1]).strip():
                cells.pop()
            if len(cells) > limits.columns:
                raise UploadRejected([gettext(
                    "line %(line)s: more than %(columns)s columns, the most an upload may have.",
                    line=number, columns=limits.columns)])
            yield number, cells
    finally:
        rows.close()


def _csv_rows(stream):
    """The CSV's rows, decoded and split one line at a time (``,`` or ``;``, guessed from
    the first non-blank line)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        lines = _text_lines(text)
        leading = []  # blank lines before the header, then the header
        for line in lines:
            leading.append(line)
            if line.strip():
                break
        first = leading[-1] if leading else ""
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(itertools.chain(leading, lines), delimiter=delimiter)
        try:
            for cells in reader:
                yield reader.line_num, cells
        except csv.Error as error:
            raise UploadRejected([f"line {reader.line_num}: the file is not valid CSV ({error})."]) from None
    finally:
        if not stream.closed:
            text.detach()  # the caller's stream stays open


def _text_lines(text):
    """The lines of a text stream, each at most :data:`MAX_LINE_CHARS` long, refused when
    the bytes are not UTF-8 text."""
    number = 0
    while True:
        try:
            line = text.readline(MAX_LINE_CHARS + 2)
        except UnicodeDecodeError:
            raise UploadRejected([NOT_UTF8]) from None
        if not line:
            return
        number += 1
        if len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise UploadRejected([gettext("line %(line)s is longer than %(characters)s characters.",
                                          line=number, characters=MAX_LINE_CHARS)])
        if "\x00" in line:  # UTF-16 text, or not text at all
            raise UploadRejected([NOT_UTF8])
        yield line


def _refuse_oversized_workbook(stream, limits):
    """Refuse an XLSX that would unpack into more than an upload may hold, before opening it.

    1. The size of the zip's table of contents, as its end records declare it: Python's
       zipfile reads it whole, whatever count of members it claims.
    2. At most :data:`MAX_XLSX_MEMBERS` members and ``UPLOAD_MAX_XLSX_UNCOMPRESSED_BYTES``
       once unpacked, as the members declare it (zipfile never unpacks more than that).
    3. Every XML member read through once, as a stream, counting rows and cells: a sheet (any
       sheet) with more rows than ``UPLOAD_MAX_ROWS`` or more cells than ``UPLOAD_MAX_ROWS`` x
       ``UPLOAD_MAX_COLUMNS``, or a row with more cells than Excel allows (openpyxl would
       build every one of them), is refused.
    """
    too_large = UploadRejected([gettext(
        "The workbook unpacks to more than %(megabytes)s MB or %(parts)s parts, the most an upload may hold; "
        "split it into smaller files or upload it as CSV.", megabytes=megabytes(limits.xlsx_uncompressed_bytes),
        parts=MAX_XLSX_MEMBERS)])
    try:
        if _table_of_contents_size(stream) > MAX_XLSX_MEMBERS * ZIP_ENTRY_BYTES:
            raise too_large
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
            if len(members) > MAX_XLSX_MEMBERS:
                raise too_large
            if sum(member.file_size for member in members) > limits.xlsx_uncompressed_bytes:
                raise too_large
            for member in members:
                _count_cells(archive, member, limits)
    except UploadRejected:
        raise
    except Exception:  # noqa: BLE001 - any unreadable zip gets the same answer
        raise UploadRejected([NOT_A_WORKBOOK]) from None
    finally:
        stream.seek(0)


def _table_of_contents_size(stream):
    """The size of a zip's central directory as its end records declare it, found where
    zipfile looks for them: the last end record in the final 64 KiB, and the ZIP64 end
    record and locator just before it, whose size zipfile prefers (0 when there is no end
    record: zipfile then refuses the file)."""
    end = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, end - 22 - 0xFFFF - 76))
    tail = stream.read()
    at = len(tail) - 22  # an end record without a comment, else the last one
    if at < 0 or tail[at:at + 4] != b"PK\x05\x06" or tail[-2:] != b"\x00\x00":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return 0
    size = struct.unpack("<I", tail[at + 12:at + 16])[0]
    if at >= 76 and tail[at - 20:at - 16] == b"PK\x06\x07" and tail[at - 76:at - 72] == b"PK\x06\x06":
        size = max(size, struct.unpack("<Q", tail[at - 36:at - 28])[0])
    return size


def _count_cells(archive, member, limits):
    """Read one zip member as XML, as a stream, counting the rows and cells of its sheet;
    :class:`UploadRejected` past the limits. A member that is not XML is left alone."""
    rows = in_row = cells = 0

    def start(name, _attributes):
        nonlocal rows, in_row, cells
        element = name.rpartition("}")[2]
        if element == "row":
            rows, in_row = rows + 1, 0
            if rows > limits.rows:
                raise UploadRejected([gettext(
                    "A sheet of the workbook has more than %(rows)s lines, the most one upload may hold; split it "
                    "into smaller files.", rows=limits.rows)])
        elif element == "c":
            in_row, cells = in_row + 1, cells + 1
            if in_row > EXCEL_MAX_COLUMNS or cells > limits.rows * limits.columns:
                raise UploadRejected([gettext(
                    "A sheet of the workbook holds more cells than an upload may have (%(rows)s lines of "
                    "%(columns)s columns); split it into smaller files.", rows=limits.rows, columns=limits.columns)])

    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = start  # what it raises comes out of Parse()
    try:
        with archive.open(member) as part:
            while chunk := part.read(64 * 1024):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except expat.ExpatError:
        return  # not XML (an image...): openpyxl judges it, if it reads it at all


def _xlsx_rows(stream, limits):
    """The first sheet's rows, read row by row (openpyxl read-only), at most one past the limits."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook gets the same answer
        raise UploadRejected([NOT_A_WORKBOOK]) from None
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(max_row=limits.rows + 1, max_col=limits.columns + 1, values_only=True)
        for number, values in enumerate(rows, start=1):
            yield number, ["" if v is None else v for v in values]
    except UploadRejected:
        raise
    except Exception:  # noqa: BLE001 - a sheet openpyxl cannot read through
        raise UploadRejected([NOT_A_WORKBOOK]) from None
    finally:
        workbook.close()


def megabytes(size):
    """``size`` bytes in megabytes, for messages (``16``, ``0.5``)."""
    return f"{size / (1024 * 1024):.3g}"


def _normalise(header):
    text = unicodedata.normalize("NFKD", str(header or "")).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


class _Table:
    """The rows of an uploaded file with their columns recognised from the header row.

    ``rows`` is read once, as :meth:`records` is iterated (blank rows are skipped).
    """

    def __init__(self, rows, columns, required, mapping=None, labels=None, amounts=True):
        """``labels``: the columns' names in messages (default :data:`MAPPED_COLUMNS`); ``amounts``: an
        amount (or debit and credit) column is required (not in a company register export)."""
        labels = labels or MAPPED_COLUMNS
        self.rows = ((n, cells) for n, cells in rows if any(str(c).strip() for c in cells))
        first = next(self.rows, None)
        if first is None:
            raise UploadRejected(["The file is empty."])
        self.header_line, header = first
        self.index = {}
        titles = [_normalise(title) for title in header]
        for column, title in (mapping or {}).items():  # the package's saved column mapping comes first
            if column not in columns:
                continue
            if _normalise(title) not in titles:
                raise UploadRejected([gettext(
                    "line %(line)s: the file has no column “%(title)s”, which the saved column mapping names for "
                    "the %(column)s. Correct the mapping or the file.", line=self.header_line, title=_shown(title),
                    column=gettext(labels[column]))])
            self.index[column] = titles.index(_normalise(title))
        mapped = set(self.index.values())
        for position, key in enumerate(titles):
            if position in mapped:
                continue
            for column, names in columns.items():
                if key in names and column not in self.index:
                    self.index[column] = position
                    break
        missing = [c for c in required if c not in self.index]
        if not amounts:
            if missing:
                raise UploadRejected([gettext(
                    "line %(line)s: the header row has no column for the name. Recognised column names include "
                    "%(names)s.", line=self.header_line, names=", ".join(columns["name"][:6]))])
            return
        if "amount" not in self.index and not {"debit", "credit"} <= self.index.keys():
            missing.append("amount")
        if missing:
            wanted = ", ".join(_LABELS[c] for c in missing)
            known = "; ".join(f"{c}: {', '.join(columns[c][:4])}" for c in ("account", "amount", "debit", "credit"))
            raise UploadRejected([f"line {self.header_line}: the header row has no column for {wanted}. "
                                  + f"Recognised column names include {known}."])

    def records(self):
        """``(line number, cells)`` of each line below the header; once only."""
        return self.rows

    def cell(self, row, column):
        position = self.index.get(column)
        if position is None or position >= len(row):
            return ""
        return row[position]

    def text(self, row, column):
        value = self.cell(row, column)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip()

    def check_lengths(self, row, number, errors):
        """Add an error for each text of the row longer than its database column."""
        for column, (label, most) in TEXT_LIMITS.items():
            if column in self.index and len(self.text(row, column)) > most:
                errors.append(gettext("line %(line)s: the %(column)s is longer than %(characters)s characters",
                                      line=number, column=gettext(label), characters=most))

    def amount(self, row, number, errors):
        """The row's amount (debit positive), or None with an error added."""
        if "amount" in self.index:
            return _parse_amount(self.cell(row, "amount"), "amount", number, errors, required=True)
        debit = _parse_amount(self.cell(row, "debit"), "debit", number, errors)
        credit = _parse_amount(self.cell(row, "credit"), "credit", number, errors)
        if debit is None or credit is None:
            return None
        return (debit - credit).quantize(CENT)

    def date(self, row, number, errors):
        value = self.cell(row, "date")
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            parsed, text = value, value.isoformat()
        else:
            text = str(value).strip()
            if not text:
                errors.append(f"line {number}: the date is empty")
                return None
            parsed = _parse_date(text)
            if parsed is None:
                errors.append(f"line {number}: date '{_shown(text)}' is not a date (use 2025-03-31 or 31/03/2025)")
                return None
        if not EARLIEST_DATE <= parsed <= LATEST_DATE:
            errors.append(gettext("line %(line)s: date %(date)s is not between %(earliest)s and %(latest)s",
                                  line=number, date=_shown(text), earliest=EARLIEST_DATE.isoformat(),
                                  latest=LATEST_DATE.isoformat()))
            return None
        return parsed


def _parse_date(text):
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?", text)
    if match:
        year, month, day = map(int, match.groups())
    else:
        match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
        if not match:
            return None
        day, month, year = map(int, match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _parse_amount(value, what, number, errors, required=False):
    """A Decimal from ``1234.56``, ``1.234,56``, ``1,234.56``, ``-12,5``, ``(12.50)``; "" is 0
    unless ``required``. A lone comma is a decimal comma. Exponents (``1E30``), ``NaN`` and
    infinities are not numbers; an amount of :data:`AMOUNT_LIMIT` or more is too large."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"line {number}: {what} '{value}' is not a number")
            return None
        return _bounded(Decimal(str(value)), value, what, number, errors)
    text = str(value).strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("€", "")
    if not text:
        if required:
            errors.append(f"line {number}: the {what} is empty")
            return None
        return Decimal("0.00")
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()")
    if "," in text and "." in text:
        thousands = "." if text.rfind(",") > text.rfind(".") else ","
        text = text.replace(thousands, "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", ".") if text.count(",") == 1 else text.replace(",", "")
    elif text.count(".") > 1:
        text = text.replace(".", "")
    if not PLAIN_NUMBER.fullmatch(text):
        errors.append(f"line {number}: {what} '{_shown(value)}' is not a number")
        return None
    amount = Decimal(text)
    return _bounded(-amount if negative else amount, value, what, number, errors)


def _bounded(amount, value, what, number, errors):
    """``amount`` to the cent, or None with an error when it is :data:`AMOUNT_LIMIT` or more."""
    if abs(amount) >= AMOUNT_LIMIT:
        errors.append(gettext("line %(line)s: %(what)s '%(value)s' is too large (at most 15 digits before the "
                              "decimal point)", line=number, what=gettext(what), value=_shown(value)))
        return None
    return amount.quantize(CENT)


def _shown(value):
    """``value`` as quoted in an error message: at most :data:`SHOWN_CHARS` characters."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


# --------------------------------------------------------------------------------------
# Periods and writing
# --------------------------------------------------------------------------------------

def _writer(dossier):
    from app.services.bookkeeping import SyncWriter

    return SyncWriter(db.session, None, dossier_id=dossier.id)


def _period_containing(dossier, day):
    """The dossier's period containing ``day``, deriving its fiscal year (origin manual) if needed."""
    fiscal_years.ensure_year_for(db.session, dossier, day, origin="manual")
    fiscal_years.ensure_periods(db.session, dossier)
    return fiscal_years.period_for(dossier.id, day)


def _period_ending(dossier, period_end):
    """The period ending on ``period_end`` (UploadRejected when there is none)."""
    if isinstance(period_end, datetime):
        period_end = period_end.date()
    if not isinstance(period_end, date):
        raise UploadRejected(["Choose the period end of the trial balance."])
    period = _period_containing(dossier, period_end) if EARLIEST_DATE <= period_end <= LATEST_DATE else None
    if period is not None and period.end == period_end and not period.fiscal_year.locked:
        return period
    locked = period is not None and period.fiscal_year.locked
    db.session.rollback()  # the fiscal year derived for a wrong date is not kept
    if locked:
        raise UploadRejected([f"{period_end.isoformat()} falls in a locked fiscal year, which uploads cannot change."])
    raise UploadRejected([f"{period_end.isoformat()} is not the last day of one of this file's periods; "
                          + "choose a period end from the list."])


def _ytd_before(dossier, period):
    """``{account number: balance}`` summed over the periods of ``period``'s fiscal year before it."""
    rows = db.session.execute(
        select(Account.number, func.sum(PeriodBalance.amount))
        .join(Account, Account.id == PeriodBalance.account_id)
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier.id, Period.fiscal_year_id == period.fiscal_year_id,
               Period.end < period.end)
        .group_by(Account.number)
    ).all()
    return {number: Decimal(amount).quantize(CENT) for number, amount in rows if amount is not None}


def _keep_later_ytd(dossier, period, previous, entries):
    """Movements for the next period holding data in the same fiscal year, so that its
    year-to-date figures stay what they were (re-uploading an earlier month does not
    change a later month's trial balance)."""
    later = db.session.scalar(
        select(Period).join(PeriodBalance, PeriodBalance.period_id == Period.id)
        .where(Period.dossier_id == dossier.id, Period.fiscal_year_id == period.fiscal_year_id,
               Period.end > period.end).order_by(Period.end).limit(1))
    if later is None:
        return []
    old_ytd = dict(previous)
    for number, amount in db.session.execute(
            select(Account.number, PeriodBalance.amount).join(Account, Account.id == PeriodBalance.account_id)
            .where(PeriodBalance.period_id == period.id)):
        old_ytd[number] = old_ytd.get(number, Decimal("0.00")) + amount
    later_amounts = dict(db.session.execute(
        select(Account.number, PeriodBalance.amount).join(Account, Account.id == PeriodBalance.account_id)
        .where(PeriodBalance.period_id == later.id)).all())
    accounts = set(later_amounts) | set(old_ytd) | set(entries)
    new_ytd = {a: amount for a, (_, amount) in entries.items()}
    return [
        BalanceRecord(account=a, period_end=later.end, basis="movement",
                      amount=later_amounts.get(a, Decimal("0.00")) + old_ytd.get(a, Decimal("0.00"))
                      - new_ytd.get(a, Decimal("0.00")))
        for a in sorted(accounts)
    ]


def _account_records(dossier, names):
    """AccountRecords for the accounts the upload names (existing kinds kept)."""
    kinds = dict(db.session.execute(select(Account.number, Account.kind).where(Account.dossier_id == dossier.id)).all())
    return [AccountRecord(number=number, name=name, kind=kinds.get(number, "other"))
            for number, name in names.items() if name]


# --------------------------------------------------------------------------------------
# The file route's saved column mappings
# --------------------------------------------------------------------------------------

def column_mapping(firm_id, package, kind) -> dict | None:
    """The firm's saved column mapping for ``package``'s ``kind`` exports (None: none saved)."""
    if not package:
        return None
    from app.models import UploadColumnMapping

    saved = db.session.scalar(select(UploadColumnMapping).where(
        UploadColumnMapping.firm_id == firm_id, UploadColumnMapping.package == package,
        UploadColumnMapping.kind == kind))
    return dict(saved.columns) if saved is not None and saved.columns else None


def save_column_mapping(actor, dossier, package, kind, columns):
    """Save (or clear, with no column named) the firm's column mapping of ``package``'s ``kind``
    exports, from ``dossier``'s Sync tab; the next uploads of that package's exports use it.

    ``columns`` is ``{column: header text}`` (columns of :data:`MAPPED_COLUMNS`; empty texts are
    dropped). Checks ``upload_data`` on the dossier (:class:`Forbidden`), refuses an unknown
    package or kind, a header longer than :data:`MAPPED_TITLE_CHARS` or named twice
    (:class:`UploadRejected`); audited, committed. Answers the saved mapping.
    """
    from app.models import UploadColumnMapping
    from connectors.registry import get_connector

    if not can(actor, "upload_data", dossier.id):
        raise Forbidden("You may not upload data into this file.")
    try:
        spec = get_connector(str(package or ""))
    except KeyError:
        raise UploadRejected([gettext("Choose the package whose exports these are.")]) from None
    if kind == COMPANY_REGISTER:
        if not register_package(spec.spec):
            raise UploadRejected([gettext("Choose an administration package built from public information.")])
        wanted, labels = REGISTER_COLUMNS, REGISTER_MAPPED_COLUMNS
    elif kind not in (TRIAL_BALANCE, LEDGER_LINES) or spec.spec.kind != "accounting":
        raise UploadRejected([gettext("Choose a trial balance or ledger lines export of an accounting package.")])
    else:
        wanted, labels = (TRIAL_BALANCE_COLUMNS if kind == TRIAL_BALANCE else LEDGER_COLUMNS), MAPPED_COLUMNS
    cleaned, errors = {}, []
    for column, title in (columns or {}).items():
        title = " ".join(str(title or "").split())
        if column not in wanted or column not in labels or not title:
            continue
        if len(title) > MAPPED_TITLE_CHARS:
            errors.append(gettext("The column name for the %(column)s is longer than %(characters)s characters.",
                                  column=gettext(labels[column]), characters=MAPPED_TITLE_CHARS))
        elif _normalise(title) in {_normalise(t) for t in cleaned.values()}:
            errors.append(gettext("The column “%(title)s” is named for two different columns.", title=_shown(title)))
        else:
            cleaned[column] = title
    _raise_if(errors)
    saved = db.session.scalar(select(UploadColumnMapping).where(
        UploadColumnMapping.firm_id == dossier.firm_id, UploadColumnMapping.package == spec.spec.key,
        UploadColumnMapping.kind == kind))
    before = dict(saved.columns) if saved is not None else {}
    if saved is None:
        saved = UploadColumnMapping(firm_id=dossier.firm_id, package=spec.spec.key, kind=kind, columns=cleaned)
        db.session.add(saved)
    else:
        saved.columns = cleaned
    db.session.flush()
    audit.record(actor, "upload_mapping.save", saved, firm_id=dossier.firm_id, dossier_id=dossier.id,
                 summary=f"Saved the column mapping of {spec.spec.display_name} {kind.replace('_', ' ')} exports",
                 changes={"columns": [before, cleaned]})
    db.session.commit()
    return cleaned


# --------------------------------------------------------------------------------------
# The file route of administration packages: a company register export
# --------------------------------------------------------------------------------------

COMPANY_REGISTER = "company_register"
#: register column -> recognised header names (as for the bookkeeping uploads: lower case, no accents)
REGISTER_COLUMNS = {
    "type": ("type", "row type", "record", "record type", "kind", "type de ligne", "soort", "regeltype"),
    "name": ("name", "company name", "company", "denomination", "nom", "raison sociale", "naam", "benaming",
             "bedrijfsnaam"),
    "registration_number": ("registration number", "company number", "enterprise number", "register number",
                            "numero d entreprise", "numero bce", "numero d immatriculation", "siren",
                            "ondernemingsnummer", "kbo nummer", "kvk nummer", "registratienummer"),
    "vat_number": ("vat", "vat number", "tva", "numero de tva", "numero tva", "btw", "btw nummer", "btw nr"),
    "legal_form": ("legal form", "forme juridique", "forme", "rechtsvorm"),
    "status": ("status", "statut", "situation", "toestand"),
    "line_1": ("address", "street", "address line 1", "adresse", "rue", "adresse ligne 1", "adres", "straat",
               "adresregel 1"),
    "line_2": ("address line 2", "adresse ligne 2", "adresregel 2"),
    "postal_code": ("postal code", "postcode", "post code", "zip", "zip code", "code postal"),
    "city": ("city", "town", "ville", "localite", "commune", "gemeente", "plaats", "stad", "woonplaats"),
    "country": ("country", "pays", "land"),
    "incorporation_date": ("incorporation date", "incorporated on", "date of incorporation", "date de constitution",
                           "constitution", "oprichtingsdatum", "opgericht op"),
    "fiscal_year_end": ("fiscal year end", "financial year end", "year end", "fin d exercice", "cloture",
                        "date de cloture", "cloture de l exercice", "einde boekjaar", "afsluitdatum", "boekjaareinde"),
    "agm_date": ("agm", "agm date", "annual general meeting", "assemblee generale", "date de l assemblee generale",
                 "algemene vergadering", "jaarvergadering", "datum algemene vergadering"),
    "capital": ("capital", "share capital", "capital social", "kapitaal", "maatschappelijk kapitaal"),
    "currency": ("currency", "devise", "monnaie", "munt", "valuta"),
    "role": ("role", "function", "mandate", "position", "fonction", "mandat", "qualite", "functie", "mandaat",
             "hoedanigheid"),
    "share": ("share class", "class of shares", "categorie d actions", "classe d actions", "soort aandelen",
              "aandelenklasse"),
    "shares": ("shares", "number of shares", "actions", "nombre d actions", "parts", "aandelen",
               "aantal aandelen"),
    "percentage": ("percentage", "share percentage", "pourcentage", "pourcentage de detention",
                   "percentage aandelen", "participatie"),
    "start": ("start", "start date", "from", "since", "date de debut", "debut", "depuis", "begindatum", "van",
              "sinds"),
    "end": ("end", "end date", "until", "date de fin", "fin", "jusqu au", "einddatum", "tot"),
}
#: register column -> its name in the column mapping form and messages
REGISTER_MAPPED_COLUMNS = {
    "type": N_("row type"), "name": N_("name"), "registration_number": N_("company number"),
    "vat_number": N_("VAT number"), "legal_form": N_("legal form"), "status": N_("status"),
    "line_1": N_("address"), "line_2": N_("address line 2"), "postal_code": N_("postal code"), "city": N_("city"),
    "country": N_("country"), "incorporation_date": N_("incorporation date"),
    "fiscal_year_end": N_("fiscal year end"), "agm_date": N_("annual general meeting"), "capital": N_("capital"),
    "currency": N_("currency"), "role": N_("role"), "share": N_("share class"), "shares": N_("number of shares"),
    "percentage": N_("percentage"), "start": N_("start date"), "end": N_("end date"),
}
#: the words of the "type" column: which row is the company, an officer or a shareholder (empty: the company)
REGISTER_ROW_TYPES = {
    "company": ("", "company", "entity", "societe", "entreprise", "personne morale", "vennootschap", "bedrijf",
                "onderneming", "entiteit"),
    "officer": ("officer", "director", "mandate", "administrateur", "mandataire", "mandat", "gerant", "bestuurder",
                "mandaat", "zaakvoerder", "functionaris"),
    "shareholder": ("shareholder", "member", "actionnaire", "associe", "aandeelhouder", "vennoot"),
}
#: the most characters a text of a company register export may have
REGISTER_TEXT_CHARS = 200


def register_package(spec):
    """Whether uploads of a company register export stand in for ``spec``'s sync: an administration
    package built from public information (Corporify, FID-Manager)."""
    return spec.kind == "administration" and spec.built_from_public_information


def register_route_package(dossier):
    """The package of ``dossier``'s active administration link when its company register export may be
    uploaded instead of syncing (:func:`register_package`); else None."""
    from connectors.registry import get_connector

    link = dossier.active_link("administration")
    if link is None:
        return None
    try:
        spec = get_connector(link.connection.package).spec
    except KeyError:
        return None
    return spec.key if register_package(spec) else None


def read_company_register(actor, dossier, data, filename, month_day):
    """Read the company register export of the package ``dossier``'s administration link names.

    The file's rows are the company (the row whose ``type`` is empty or "company") and, on rows of
    type "officer" or "shareholder", its officers and shareholders (the format:
    ``docs/administration-sync.md``, "The file route"). The firm's saved column mapping of the
    package's ``company_register`` exports applies. ``month_day`` reads a day of the year as "MM-DD"
    (:func:`app.company_profile.month_day`, passed in: that module uses this one). Needs
    ``upload_data`` (:class:`Forbidden`); any problem raises :class:`UploadRejected`. Writes nothing:
    :func:`app.company_profile.import_register_export` writes the snapshot. Answers ``(package,
    CompanyProfileRecord)``.
    """
    from connectors.base import CompanyProfileRecord

    if not can(actor, "upload_data", dossier.id) or getattr(actor, "is_support", False):
        raise Forbidden("You may not upload data into this file.")
    package = register_route_package(dossier)
    if package is None:
        raise UploadRejected([gettext("A company register export can only be uploaded into a file whose "
                                      "administration sync is Corporify or FID-Manager.")])
    table = _Table(_rows_of(data, filename), REGISTER_COLUMNS, ("name",),
                   column_mapping(dossier.firm_id, package, COMPANY_REGISTER), labels=REGISTER_MAPPED_COLUMNS,
                   amounts=False)
    kinds = {_normalise(word): kind for kind, words in REGISTER_ROW_TYPES.items() for word in words}
    errors, companies, officers, shareholders = [], [], [], []
    for number, row in table.records():
        for column in REGISTER_COLUMNS:
            if column in table.index and len(table.text(row, column)) > REGISTER_TEXT_CHARS:
                errors.append(gettext("line %(line)s: the %(column)s is longer than %(characters)s characters",
                                      line=number, column=gettext(REGISTER_MAPPED_COLUMNS[column]),
                                      characters=REGISTER_TEXT_CHARS))
        kind = kinds.get(_normalise(table.text(row, "type")))
        name = table.text(row, "name")
        if kind is None:
            errors.append(gettext("line %(line)s: type “%(type)s” is not company, officer or shareholder",
                                  line=number, type=_shown(table.text(row, "type"))))
            continue
        if not name:
            errors.append(gettext("line %(line)s: the name is empty", line=number))
            continue
        start, end = (_register_day(table, row, c, number, errors) for c in ("start", "end"))
        if kind == "company":
            companies.append((number, row))
        elif kind == "officer":
            officers.append({"name": name, "role": table.text(row, "role") or None, "start": start, "end": end})
        else:
            shares = _parse_amount(table.cell(row, "shares"), "number of shares", number, errors)
            percentage = _parse_amount(table.cell(row, "percentage"), "percentage", number, errors)
            shareholders.append({
                "name": name, "share": table.text(row, "share") or None,
                "shares": int(shares) if table.text(row, "shares") and shares is not None else None,
                "percentage": f"{percentage.normalize():f}" if table.text(row, "percentage") and percentage is not None
                else None, "start": start, "end": end})
    if len(companies) != 1:
        errors.append(gettext("The file must have exactly one company row (type empty or “company”); it has "
                              "%(count)s.", count=len(companies)))
        _raise_if(errors)
    number, row = companies[0]
    record = CompanyProfileRecord(
        name=table.text(row, "name"),
        registration_number=table.text(row, "registration_number") or None,
        vat_number=re.sub(r"[\s.]", "", table.text(row, "vat_number")).upper() or None,
        legal_form=table.text(row, "legal_form") or None, status=table.text(row, "status") or None,
        address={k: table.text(row, k) for k in ("line_1", "line_2", "city", "postal_code", "country")
                 if table.text(row, k)},
        incorporation_date=_register_day(table, row, "incorporation_date", number, errors, as_text=False),
        fiscal_year_end=_register_month_day(table, row, "fiscal_year_end", number, errors, month_day),
        agm_date=_register_month_day(table, row, "agm_date", number, errors, month_day, words_allowed=True),
        capital=_register_capital(table, row, number, errors, dossier),
        officers=tuple(officers), shareholders=tuple(shareholders))
    _raise_if(errors)
    return package, record


def _register_day(table, row, column, number, errors, as_text=True):
    """The ISO day of a date cell (None when empty), or None with an error added."""
    value = table.cell(row, column)
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        text = str(value).strip()
        if not text:
            return None
        value = _parse_date(text)
        if value is None or not EARLIEST_DATE <= value <= LATEST_DATE:
            errors.append(gettext("line %(line)s: the %(column)s “%(value)s” is not a date (use 2025-03-31 or "
                                  "31/03/2025)", line=number, column=gettext(REGISTER_MAPPED_COLUMNS[column]),
                                  value=_shown(text)))
            return None
    return value.isoformat() if as_text else value


def _register_month_day(table, row, column, number, errors, month_day, words_allowed=False):
    """A day of the year as "MM-DD" ("31/12", "31 December", a date); the AGM may stay in words."""
    value = table.cell(row, column)
    if isinstance(value, (datetime, date)):
        return f"{value:%m-%d}"
    text = table.text(row, column)
    if not text:
        return None
    parsed = month_day(text) or (f"{_parse_date(text):%m-%d}" if _parse_date(text) else None)
    if parsed is None and not words_allowed:
        errors.append(gettext("line %(line)s: the %(column)s “%(value)s” is not a day and month (use 31/12)",
                              line=number, column=gettext(REGISTER_MAPPED_COLUMNS[column]), value=_shown(text)))
    return parsed or (text if words_allowed else None)


def _register_capital(table, row, number, errors, dossier):
    """``{"amount", "currency"}`` of the company row (None when the capital is empty)."""
    if not table.text(row, "capital"):
        return None
    amount = _parse_amount(table.cell(row, "capital"), "capital", number, errors)
    if amount is None:
        return None
    currency = (table.text(row, "currency") or dossier.currency or "EUR").upper()[:3]
    return {"amount": f"{amount:.2f}", "currency": currency}
