"""Fichier des Écritures Comptables (FEC), the French audit file (flat-file form).

* Separator: TAB or ``|`` (from the header line), one per file; a trailing separator and
  extra columns after the 18 (``CodeEtablissement``, the cash-basis ``DateRglt``...) are
  accepted and ignored.
* Encoding: UTF-8 with or without BOM; otherwise ISO-8859-15 (CP1252 is the same for the
  letters French uses, and a file that is not UTF-8 is read as such).
* Columns matched by name, case-insensitively: ``Debit``/``Credit`` or the ``Montant`` +
  ``Sens`` variant (``D``/``C`` or ``+1``/``-1``); dates ``YYYYMMDD``; decimal comma.
* The fiscal year's closing date comes from the file name ``<SIREN>FEC<YYYYMMDD>``, the
  SIREN becomes the company's registration number.

The source id of a line is ``journal / entry number / n-th line of the entry``: stable as long
as the package exports an entry's lines in the same order. Lines are read one at a time.
"""
from __future__ import annotations

import codecs
import re

from connectors.base import CompanyProfileRecord

from .common import (
    AuditFileRejected, FileHeader, Line, Problem, kind_from_class, parse_compact_date, parse_decimal, shown,
)

#: a line longer than this is refused before it is split (as CSV uploads)
MAX_LINE_CHARS = 100_000
REQUIRED = ("journalcode", "ecriturenum", "ecrituredate", "comptenum", "comptelib", "pieceref",
            "ecriturelib")
FILE_NAME = re.compile(r"(\d{9})FEC(\d{8})", re.IGNORECASE)


def looks_like(head):
    """Does this file's head (bytes) look like a FEC (its header line names the FEC columns)?"""
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].lower()
    return b"journalcode" in first and b"comptenum" in first


def read(stream, filename=""):
    """The items of the FEC in ``stream`` (binary); see :mod:`app.audit_files.common`."""
    encoding = _encoding(stream)
    lines = _lines(stream, encoding)
    try:
        number, header_line = next(lines)
    except StopIteration:
        raise AuditFileRejected(["The file is empty."]) from None
    separator = "\t" if header_line.count("\t") >= header_line.count("|") else "|"
    names = [cell.strip().lower() for cell in header_line.split(separator)]
    index = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    missing = [n for n in REQUIRED if n not in index]
    has_debit_credit = "debit" in index and "credit" in index
    has_sens = "montant" in index and "sens" in index
    if not has_debit_credit and not has_sens:
        missing.append("Debit/Credit (or Montant/Sens)")
    if missing:
        raise AuditFileRejected([f"line {number}: the header line of this FEC lacks the column(s) "
                                 f"{', '.join(missing)} (columns are separated by a tab or |)."])
    match = FILE_NAME.search(filename or "")
    closing = parse_compact_date(match.group(2)) if match else None
    yield FileHeader(
        format="FEC", fiscal_year_end=closing, currency="",
        company=CompanyProfileRecord(name="", registration_number=match.group(1) if match else None),
    )
    position = {}  # entry -> lines read so far
    for number, text in lines:
        if not text.strip():
            continue
        cells = text.split(separator)

        def cell(name):
            at = index.get(name)
            return cells[at].strip() if at is not None and at < len(cells) else ""

        day = parse_compact_date(cell("ecrituredate"))
        if day is None:
            yield Problem(number, f"EcritureDate '{shown(cell('ecrituredate'))}' is not a date (YYYYMMDD)")
            continue
        if has_debit_credit:
            debit, credit = parse_decimal(cell("debit") or "0", comma=True), parse_decimal(cell("credit") or "0",
                                                                                           comma=True)
            if debit is None or credit is None:
                yield Problem(number, f"Debit '{shown(cell('debit'))}' or Credit '{shown(cell('credit'))}' is not "
                              "an amount")
                continue
            amount = debit - credit
        else:
            montant, sens = parse_decimal(cell("montant"), comma=True), cell("sens").upper()
            if montant is None or sens not in ("D", "C", "+1", "-1", "1"):
                yield Problem(number, f"Montant '{shown(cell('montant'))}' with Sens '{shown(cell('sens'))}' is not "
                              "an amount and a direction (D/C or +1/-1)")
                continue
            amount = montant if sens in ("D", "+1", "1") else -montant
        account = cell("comptenum")
        if not account:
            yield Problem(number, "CompteNum is empty")
            continue
        journal, entry_number = cell("journalcode"), cell("ecriturenum")
        entry = f"{journal}/{entry_number}"
        position[entry] = position.get(entry, 0) + 1
        yield Line(
            key=f"{entry}/{position[entry]}", entry=entry, booking_date=day, account=account, amount=amount,
            account_name=cell("comptelib"), journal=journal, description=cell("ecriturelib"),
            reference=cell("pieceref"), counterparty=cell("compauxnum"), counterparty_name=cell("compauxlib"),
            line=number,
        )
        if len(position) > 10_000:  # entries are contiguous in a FEC; forget the old ones
            position = {entry: position[entry]}


def account_kind(number):
    """The kind of a French (PCG) account from its class."""
    return kind_from_class(number)


def _encoding(stream):
    """``utf-8-sig`` when the file is UTF-8 (BOM or not), else ``iso-8859-15`` (read ahead
    in chunks, the stream is rewound)."""
    start = stream.tell()
    decoder = codecs.getincrementaldecoder("utf-8")()
    encoding = "utf-8-sig"
    try:
        while chunk := stream.read(1024 * 1024):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        encoding = "iso-8859-15"
    stream.seek(start)
    return encoding


def _lines(stream, encoding):
    """``(line number, text)`` one at a time (CR, LF or CR CR LF ends), each at most
    :data:`MAX_LINE_CHARS` long."""
    import io

    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    number = 0
    try:
        while True:
            line = text.readline(MAX_LINE_CHARS + 3)
            if not line:
                return
            number += 1
            stripped = line.rstrip("\r\n")
            if len(stripped) > MAX_LINE_CHARS:
                raise AuditFileRejected([f"line {number} is longer than {MAX_LINE_CHARS} characters."])
            if "\x00" in stripped:
                raise AuditFileRejected(["The file is not text (UTF-8 or ISO-8859-15): export the FEC again."])
            yield number, stripped
    finally:
        if not stream.closed:
            text.detach()
