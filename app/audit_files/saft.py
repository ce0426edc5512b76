"""SAF-T Financial: OECD 2.0 and the national variants built on it (Norway 1.10 / 1.30,
Portugal 1.04_01, Luxembourg FAIA, Lithuania...), read by element names, which they share:

* ``Header/Company`` (``RegistrationNumber``, ``Name``, ``TaxRegistration/TaxRegistrationNumber``;
  Portugal: ``CompanyID``, ``CompanyName``, ``TaxRegistrationNumber``), ``DefaultCurrencyCode``
  (``CurrencyCode``), ``SelectionCriteria/SelectionStartDate``/``SelectionEndDate`` or
  Portugal's ``StartDate``/``EndDate``;
* ``MasterFiles/GeneralLedgerAccounts/Account``: ``AccountID``, ``AccountDescription``, the
  standard mappings ``StandardAccountID`` / ``GroupingCategory`` / ``GroupingCode`` /
  ``TaxonomyCode``, opening and closing balances (debit or credit, per account): the opening
  ones become opening-balance lines, the closing ones control totals;
* ``GeneralLedgerEntries`` (``NumberOfEntries``, ``TotalDebit``, ``TotalCredit``) ->
  ``Journal`` (``JournalID``) -> ``Transaction`` (``TransactionID``, ``TransactionDate``,
  ``Description``) -> ``Line`` (OECD: ``DebitAmount/Amount`` or ``CreditAmount/Amount``) or
  ``DebitLine`` / ``CreditLine`` (Portugal: ``DebitAmount`` / ``CreditAmount`` as numbers).

The source id of a line is ``journal / transaction id / record id``.
"""
from __future__ import annotations

from decimal import Decimal

from connectors.base import CompanyProfileRecord

from .common import (
    AuditFileRejected, ChartAccount, FileHeader, Line, OpeningLine, Problem, StatedTotals,
    children_text, iterparse, local, namespace, parse_decimal, parse_iso_date, release, shown,
)

NAMESPACES = {
    "urn:OECD:StandardAuditFile-Taxation/2.00": "OECD 2.00",
    "urn:StandardAuditFile-Taxation-Financial:NO": "NO",
    "urn:OECD:StandardAuditFile-Tax:PT_1.04_01": "PT 1.04_01",
}
#: schema files under the audit-file specs folder (Norway's by the file's AuditFileVersion)
SCHEMAS = {"PT 1.04_01": "saft-pt/SAFTPT1.04_01.xsd", "NO 1.10": "saft-no/v1.10/Norwegian_SAF-T_Financial_Schema_v_1.10.xsd",
           "NO 1.30": "saft-no/v1.30/Norwegian_SAF-T_Financial_Schema_v_1.30.xsd",
           "NO": "saft-no/v1.30/Norwegian_SAF-T_Financial_Schema_v_1.30.xsd"}
LINE_ELEMENTS = ("Line", "DebitLine", "CreditLine")


def looks_like(head):
    """Does this file's head (bytes) look like a SAF-T file?"""
    return b"<AuditFile" in head or b":AuditFile" in head


def grouping_kind(category, code):
    """The account kind a Norwegian standard account or grouping code implies (NS 4102
    classes, which the RF-1167 / RF-1175 / RF-1323 and statistical ``KS`` codes follow), else None."""
    text = (code or "").strip()
    if (category or "").strip() in ("", "RF-1167", "RF-1175", "RF-1323", "KS") and text[:1].isdigit():
        first = text[:1]
        if first == "1":
            return "asset"
        if first == "2":
            return "equity" if text.startswith("20") else "liability"
        if first == "3":
            return "income"
        if first in "45678":
            return "expense"
    return None


def read(stream):
    """The items of the SAF-T file in ``stream``."""
    version = None
    header_done = False
    transaction = None
    journal = ""  # the JournalID of the journal being read (its element loses it once read)
    try:
        for event, element in iterparse(stream):
            name = local(element.tag)
            if event == "start":
                if version is None:
                    if name != "AuditFile":
                        raise AuditFileRejected([f"The file is XML but not a SAF-T file (its root element is "
                                                 f"'{shown(name)}')."])
                    version = NAMESPACES.get(namespace(element.tag), namespace(element.tag) or "OECD")
                elif name == "Transaction":
                    transaction = None
                continue
            parent = local(element.getparent().tag) if element.getparent() is not None else ""
            line = element.sourceline
            if name == "Header" and parent == "AuditFile":
                yield _header(version, element)
                header_done = True
                release(element)
            elif name == "Account" and parent == "GeneralLedgerAccounts":
                yield from _account(element, line)
                release(element)
            elif name in ("Customer", "Supplier") and parent in ("Customers", "Suppliers"):
                release(element)
            elif name in ("TotalDebit", "TotalCredit") and parent == "GeneralLedgerEntries":
                element.getparent().attrib["_" + name] = (element.text or "").strip()
            elif name == "JournalID" and parent == "Journal":
                journal = (element.text or "").strip()
            elif name in LINE_ELEMENTS and parent in ("Transaction", "Lines"):
                if transaction is None:
                    holder = element.getparent() if parent == "Transaction" else element.getparent().getparent()
                    transaction = _transaction(holder, journal)
                yield _line(transaction, element, name, line)
                release(element)
            elif name in ("Transaction", "Journal"):
                release(element)
            elif name == "GeneralLedgerEntries":
                attributes = element.attrib
                # NumberOfEntries counts transactions, not lines: only the debit and credit totals are checked
                yield StatedTotals("lines", lines=None, debit=parse_decimal(attributes.get("_TotalDebit")),
                                   credit=parse_decimal(attributes.get("_TotalCredit")), line=line)
                release(element)
        if version is None or not header_done:
            raise AuditFileRejected(["The SAF-T file has no Header."])
    except AuditFileRejected:
        raise
    except Exception as error:  # noqa: BLE001 - lxml's XMLSyntaxError and its kin
        raise AuditFileRejected([f"The file is not well-formed XML ({shown(str(error), 120)})."]) from None


def _first(element, *paths):
    for path in paths:
        found = element.find(path)
        if found is not None and (found.text or "").strip():
            return found.text.strip()
    return ""


def _header(version, element):
    audit_version = _first(element, "{*}AuditFileVersion")
    if version == "NO" and audit_version:
        version = f"NO {audit_version}"
    company = CompanyProfileRecord(
        name=_first(element, "{*}Company/{*}Name", "{*}CompanyName"),
        registration_number=_first(element, "{*}Company/{*}RegistrationNumber", "{*}CompanyID") or None,
        vat_number=_first(element, "{*}Company/{*}TaxRegistration/{*}TaxRegistrationNumber",
                          "{*}TaxRegistrationNumber") or None,
    )
    start = parse_iso_date(_first(element, "{*}SelectionCriteria/{*}SelectionStartDate", "{*}StartDate"))
    end = parse_iso_date(_first(element, "{*}SelectionCriteria/{*}SelectionEndDate", "{*}EndDate"))
    return FileHeader(format=f"SAF-T {version}", company=company, fiscal_year_start=start, fiscal_year_end=end,
                      currency=_first(element, "{*}DefaultCurrencyCode", "{*}CurrencyCode"))


def _balance(values, debit_name, credit_name):
    debit, credit = values.get(debit_name), values.get(credit_name)
    if debit is None and credit is None:
        return None
    debit_amount, credit_amount = parse_decimal(debit or "0"), parse_decimal(credit or "0")
    if debit_amount is None or credit_amount is None:
        return Problem
    return debit_amount - credit_amount


def _account(element, line):
    values = children_text(element)
    number = values.get("AccountID", "")
    mappings = {key: values[source] for key, source in (("standard", "StandardAccountID"),
                ("grouping_category", "GroupingCategory"), ("grouping", "GroupingCode"),
                ("taxonomy", "TaxonomyCode")) if values.get(source)}
    kind = (grouping_kind(values.get("GroupingCategory"), values.get("StandardAccountID") or values.get("GroupingCode"))
            or "other")
    yield ChartAccount(number, values.get("AccountDescription", ""), kind, mappings, line)
    opening = _balance(values, "OpeningDebitBalance", "OpeningCreditBalance")
    closing = _balance(values, "ClosingDebitBalance", "ClosingCreditBalance")
    if opening is Problem or closing is Problem:
        yield Problem(line, f"account {shown(number)}: an opening or closing balance is not a number")
        return
    if opening:
        yield OpeningLine(number, opening, line)
    if closing is not None:
        yield StatedTotals("closing", debit=max(closing, Decimal("0.00")), credit=max(-closing, Decimal("0.00")),
                           line=line, account=number)


def _transaction(element, journal):
    values = children_text(element, skip=LINE_ELEMENTS + ("Lines",))
    return {"id": values.get("TransactionID", ""), "date": values.get("TransactionDate", ""),
            "description": values.get("Description", ""), "journal": journal,
            "customer": values.get("CustomerID", ""), "supplier": values.get("SupplierID", "")}


def _line(transaction, element, name, line):
    values = children_text(element)
    debit = element.find("{*}DebitAmount")
    credit = element.find("{*}CreditAmount")
    if debit is not None:
        text = _first(debit, "{*}Amount") or (debit.text or "").strip()
        sign = 1
    elif credit is not None:
        text = _first(credit, "{*}Amount") or (credit.text or "").strip()
        sign = -1
    else:
        return Problem(line, "the line has neither a DebitAmount nor a CreditAmount")
    amount = parse_decimal(text)
    if amount is None:
        return Problem(line, f"amount '{shown(text)}' is not a number")
    day = parse_iso_date(transaction["date"]) or parse_iso_date(values.get("ValueDate"))
    if day is None:
        return Problem(line, f"date '{shown(transaction['date'])}' is not a date")
    journal, number = transaction["journal"], transaction["id"]
    return Line(
        key=f"{journal}/{number}/{values.get('RecordID', '')}", entry=f"{journal}/{number}", booking_date=day,
        account=values.get("AccountID", ""), amount=sign * amount, journal=journal,
        description=values.get("Description") or transaction["description"],
        reference=values.get("SourceDocumentID", ""),
        counterparty=values.get("CustomerID") or values.get("SupplierID") or transaction["customer"]
        or transaction["supplier"], line=line,
    )
