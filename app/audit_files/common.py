"""What the audit-file readers share: the items they yield, amounts and dates, safe XML.

Each reader (:mod:`.xaf`, :mod:`.fec`, :mod:`.saft`) turns one file into a stream of items,
in file order, read as the caller iterates (bounded memory: one XML element or one text line
at a time):

* :class:`FileHeader` once, first: the format, the fiscal year it states (if any), the
  currency and the company (:class:`connectors.base.CompanyProfileRecord`);
* :class:`ChartAccount` per account of the file's chart (FEC has no chart: its accounts come
  with the lines), with the standard mappings the file carries (``{"rgs": ...}``,
  ``{"grouping": ...}``);
* :class:`PeriodInfo` per period the file declares;
* :class:`OpeningLine` per opening-balance line;
* :class:`Line` per ledger line (``entry`` groups the lines of one booking);
* :class:`StatedTotals` for every control total the file states (lines, debit, credit);
* :class:`Problem` for a line the reader could not read (line number and a sentence);
  the reader carries on, so every bad line is reported.

The readers neither touch the database nor need an application context; checking the items
(balance, fiscal year, chart) and writing them is :mod:`app.services.audit_file_import`'s job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from connectors.base import CompanyProfileRecord

CENT = Decimal("0.01")
#: amounts must stay below this (the database keeps 16 digits before the point; as uploads)
AMOUNT_LIMIT = Decimal(10) ** 15
#: the dates a file may hold
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2200, 12, 31)
#: how much of an XML file's head is searched for a DTD (refused: audit files have none)
XML_HEAD_BYTES = 64 * 1024


class AuditFileRejected(ValueError):
    """The file cannot be read at all; ``errors`` are sentences for the user."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True)
class FileHeader:
    """What the file says about itself."""

    format: str  # "XAF 3.2", "FEC", "SAF-T NO 1.30"...
    company: CompanyProfileRecord | None = None
    fiscal_year_start: date | None = None
    fiscal_year_end: date | None = None
    currency: str = ""


@dataclass(frozen=True)
class ChartAccount:
    """One account of the file's chart; ``mappings`` are the standard codes the file gives it."""

    number: str
    name: str
    kind: str = "other"
    mappings: dict = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class PeriodInfo:
    number: str
    start: date
    end: date
    line: int | None = None


@dataclass(frozen=True)
class OpeningLine:
    account: str
    amount: Decimal  # debit positive
    line: int | None = None


@dataclass(frozen=True)
class Line:
    """One ledger line. ``key`` is stable across exports of the same booking (the source id
    comes from it), ``entry`` names the booking whose lines must balance."""

    key: str
    entry: str
    booking_date: date
    account: str
    amount: Decimal  # debit positive
    account_name: str = ""
    journal: str = ""
    description: str = ""
    reference: str = ""
    counterparty: str = ""
    counterparty_name: str = ""
    line: int | None = None


@dataclass(frozen=True)
class StatedTotals:
    """A control total the file states; ``scope`` is ``"opening"`` or ``"lines"``."""

    scope: str  # "opening", "lines" or "closing" (one account's closing balance: ``account``)
    lines: int | None = None
    debit: Decimal | None = None
    credit: Decimal | None = None
    line: int | None = None
    account: str = ""


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str


# ----------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


def parse_decimal(text, *, comma=False):
    """``text`` as a Decimal to the cent, or None when it is not a plain number below
    :data:`AMOUNT_LIMIT` (``comma``: the decimal separator is a comma, as in FEC)."""
    value = (text or "").strip()
    if comma:
        value = value.replace(",", ".")
    if not value or not _DECIMAL.fullmatch(value):
        return None
    try:
        amount = Decimal(value).quantize(CENT)
    except InvalidOperation:
        return None
    return amount if abs(amount) < AMOUNT_LIMIT else None


def parse_iso_date(text):
    """``2024-03-31`` (a time part is ignored) as a date within the allowed range, else None."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:T.*)?", (text or "").strip())
    if not match:
        return None
    return _date(*map(int, match.groups()))


def parse_compact_date(text):
    """``20240331`` as a date within the allowed range, else None."""
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", (text or "").strip())
    if not match:
        return None
    return _date(*map(int, match.groups()))


def _date(year, month, day):
    try:
        value = date(year, month, day)
    except ValueError:
        return None
    return value if EARLIEST_DATE <= value <= LATEST_DATE else None


def shown(value, most=40):
    """``value`` as quoted in a message: at most ``most`` characters."""
    text = str(value)
    return text if len(text) <= most else text[:most] + "…"


def kind_from_class(number):
    """An account kind from the first digit of a French-style (PCG, also Belgian PCMN)
    account number: 1 equity, 2-3 and 5 assets, 6 expenses, 7 income, 4 (third parties) other."""
    first = (number or "")[:1]
    return {"1": "equity", "2": "asset", "3": "asset", "5": "asset", "6": "expense", "7": "income"}.get(first, "other")


# ----------------------------------------------------------------------------------------
# Safe XML
# ----------------------------------------------------------------------------------------

def refuse_dtd(stream):
    """Refuse an XML file that declares a DTD or entities (no audit file does; it is how
    entity-expansion attacks start), reading only its head; the stream is rewound."""
    start = stream.tell()
    head = stream.read(XML_HEAD_BYTES)
    stream.seek(start)
    if not head.strip():
        raise AuditFileRejected(["The file is empty."])
    probe = head.upper()
    if b"<!DOCTYPE" in probe or b"<!ENTITY" in probe or b"<\x00!\x00D\x00O\x00C" in probe:
        raise AuditFileRejected(["The file declares a document type (DTD) or entities, which an audit file never "
                                 "does; it was not read."])


def iterparse(stream, events=("start", "end")):
    """lxml's iterparse with entity resolution, network access, DTDs and huge trees off."""
    from lxml import etree

    refuse_dtd(stream)
    return etree.iterparse(stream, events=events, resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_comments=True, remove_pis=True)


def local(tag):
    """An element's name without its namespace."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def namespace(tag):
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


def children_text(element, skip=()):
    """``{local name: stripped text}`` of ``element``'s direct children (the first of each name)."""
    values = {}
    for child in element:
        name = local(child.tag)
        if name and name not in skip and name not in values:
            values[name] = (child.text or "").strip()
    return values


def release(element):
    """Free an element that has been read, and the siblings read before it (bounded memory)."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
