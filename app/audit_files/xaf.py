"""XML Auditfile Financieel (XAF), the Dutch audit file: versions 3.1, 3.2 (3.2.1) and 4.0.

The versions differ by namespace and in a few names, all handled here:

* 3.1 / 3.2: ``company/companyIdent`` (KvK or administration number), RGS codes in
  ``ledgerAccount/leadCode`` or ``taxonomy/entryPoint/conceptRef``; ``accTp`` ``B``/``P``/``M``;
* 4.0: ``company/Commercenr``, ``ledgerAccount/RGScode``; ``accTp`` ``B``/``P``.

Amounts are unsigned ``amnt`` with ``amntTp`` ``D``/``C`` everywhere. Lines are read with
lxml's iterparse and every element is released once read, so memory stays bounded. The
source id of a line is ``journal / transaction nr / line nr``, stable across exports.
"""
from __future__ import annotations

from connectors.base import CompanyProfileRecord

from .common import (
    AuditFileRejected, ChartAccount, FileHeader, Line, OpeningLine, PeriodInfo, Problem, StatedTotals,
    children_text, iterparse, local, namespace, parse_decimal, parse_iso_date, release, shown,
)

NAMESPACES = {
    "http://www.auditfiles.nl/XAF/3.1": "3.1",
    "http://www.auditfiles.nl/XAF/3.2": "3.2",
    "http://www.odb.belastingdienst.nl/Belastingdienst/BCPP/1.0/structures/XmlAuditfileFinancieel3.2.1": "3.2.1",
    "http://www.odb.belastingdienst.nl/Belastingdienst/BCPP/1.1/structures/XmlauditfileXAF_4.0": "4.0",
}
#: the schema file of each version, under the audit-file specs folder (None: not published)
SCHEMAS = {"3.2": "xaf/XmlAuditfileFinancieel3.2.xsd", "4.0": "xaf/XmlAuditfileFinancieel4.0.xsd"}
#: RGS (Referentie Grootboekschema) main groups -> account kind
RGS_KINDS = {
    "BIva": "asset", "BMva": "asset", "BFva": "asset", "BVrd": "asset", "BVor": "asset", "BEff": "asset",
    "BLim": "asset", "BEiv": "equity", "BGrp": "equity", "BVrz": "liability", "BLas": "liability",
    "BSch": "liability", "WOmz": "income", "WOvb": "income", "WRev": "income",
}


def looks_like(head):
    """Does this file's head (bytes) look like an XAF?"""
    return b"<auditfile" in head and (b"auditfiles.nl" in head or b"XmlauditfileXAF" in head
                                      or b"XmlAuditfileFinancieel" in head)


def rgs_kind(code):
    """The account kind an RGS code implies (``WBed...`` expenses, ``BLim...`` assets...)."""
    if not code:
        return None
    kind = RGS_KINDS.get(code[:4])
    if kind:
        return kind
    return "expense" if code.startswith("W") else None


def read(stream):
    """The items of the XAF in ``stream`` (see :mod:`app.audit_files.common`)."""
    version = None
    header_done = False
    header = {}
    company = {}
    transaction = None  # {"nr", "desc", "trDt", "journal"} of the transaction being read
    journal = ""  # the jrnID of the journal being read (its element loses it once read)
    customers = {}
    try:
        for event, element in iterparse(stream):
            name = local(element.tag)
            if event == "start":
                if version is None:
                    if name != "auditfile":
                        raise AuditFileRejected(["The file is XML but not an XML Auditfile Financieel (its root "
                                                 f"element is '{shown(name)}')."])
                    version = NAMESPACES.get(namespace(element.tag))
                    if version is None:
                        raise AuditFileRejected([f"This XAF version (namespace '{shown(namespace(element.tag), 90)}') "
                                                 "is not supported: export XAF 3.2 or 4.0."])
                elif name == "transaction":
                    transaction = None
                continue
            parent = local(element.getparent().tag) if element.getparent() is not None else ""
            line = element.sourceline
            if name == "header" and parent == "auditfile":
                header = children_text(element)
                release(element)
            elif parent == "company" and len(element) == 0:
                company[name] = (element.text or "").strip()
            elif name == "customerSupplier" and parent == "customersSuppliers":
                values = children_text(element)
                customers[values.get("custSupID", "")] = values.get("custSupName", "")
                release(element)
            elif name == "ledgerAccount":
                if not header_done:
                    yield _header(version, header, company)
                    header_done = True
                yield _account(element, line)
                release(element)
            elif name == "period" and parent == "periods":
                values = children_text(element)
                start, end = parse_iso_date(values.get("startDatePeriod")), parse_iso_date(values.get("endDatePeriod"))
                if start is None or end is None or start > end:
                    yield Problem(line, f"period {shown(values.get('periodNumber', ''))} has no valid start and end date")
                else:
                    yield PeriodInfo(values.get("periodNumber", ""), start, end, line)
                release(element)
            elif name == "obLine":
                values = children_text(element)
                amount = _signed(values, line)
                if isinstance(amount, Problem):
                    yield amount
                else:
                    yield OpeningLine(values.get("accID", ""), amount, line)
                release(element)
            elif name in ("linesCount", "totalDebit", "totalCredit") and parent in ("openingBalance", "transactions"):
                element.getparent().attrib["_" + name] = (element.text or "").strip()
            elif name in ("openingBalance", "transactions"):
                if not header_done:
                    yield _header(version, header, company)
                    header_done = True
                yield _totals("opening" if name == "openingBalance" else "lines", element.attrib, line)
                release(element)
            elif name == "jrnID" and parent == "journal":
                journal = (element.text or "").strip()
            elif name == "trLine":
                if transaction is None:
                    transaction = _transaction(element.getparent(), journal)
                values = children_text(element, skip=("vat", "currency"))
                amount = _signed(values, line)
                if isinstance(amount, Problem):
                    yield amount
                else:
                    yield _line(transaction, values, amount, customers, line)
                release(element)
            elif name == "transaction":
                release(element)
            elif name == "journal":
                release(element)
        if version is None:
            raise AuditFileRejected(["The file is empty."])
        if not header_done:
            yield _header(version, header, company)
    except AuditFileRejected:
        raise
    except Exception as error:  # noqa: BLE001 - lxml's XMLSyntaxError and its kin
        where = getattr(error, "lineno", None) or getattr(getattr(error, "position", None), "__getitem__", None)
        text = str(getattr(error, "msg", "") or error)
        raise AuditFileRejected([f"The file is not well-formed XML ({shown(text, 120)})"
                                 + (f" at line {where}" if isinstance(where, int) else "") + "."]) from None


def _header(version, header, company):
    registration = company.get("Commercenr") or company.get("companyIdent") or None
    profile = CompanyProfileRecord(
        name=company.get("companyName", ""), registration_number=registration,
        vat_number=company.get("taxRegIdent") or None,
        extra={"country": company.get("taxRegistrationCountry", "")},
    )
    return FileHeader(format=f"XAF {version}", company=profile, currency=header.get("curCode", ""),
                      fiscal_year_start=parse_iso_date(header.get("startDate")),
                      fiscal_year_end=parse_iso_date(header.get("endDate")))


def _account(element, line):
    values = children_text(element)
    mappings = {}
    rgs = values.get("RGScode", "")
    if not rgs:
        for concept in element.iter("{*}conceptRef"):
            text = (concept.text or "").strip()
            code = text.rpartition("_")[2] if text.startswith("rgs") else text
            if rgs_kind(code):
                rgs = code
                break
    lead = values.get("leadCode", "")
    if not rgs and rgs_kind(lead):
        rgs = lead
    if rgs:
        mappings["rgs"] = rgs
    if lead and lead != rgs:
        mappings["lead"] = lead
    kind = rgs_kind(rgs) or "other"
    if kind == "other" and values.get("accTp") == "P":
        kind = "expense"  # a profit-and-loss account without a finer code: its sign decides on the page
    return ChartAccount(values.get("accID", ""), values.get("accDesc", ""), kind, mappings, line)


def _signed(values, line):
    amount = parse_decimal(values.get("amnt"))
    sign = values.get("amntTp", "").upper()
    if amount is None:
        return Problem(line, f"amount '{shown(values.get('amnt', ''))}' is not a number")
    if sign not in ("D", "C"):
        return Problem(line, f"amount type '{shown(values.get('amntTp', ''))}' is neither D (debit) nor C (credit)")
    return amount if sign == "D" else -amount


def _totals(scope, attributes, line):
    count = attributes.get("_linesCount")
    return StatedTotals(scope, lines=int(count) if count and count.isdigit() else None,
                        debit=parse_decimal(attributes.get("_totalDebit")),
                        credit=parse_decimal(attributes.get("_totalCredit")), line=line)


def _transaction(element, journal):
    values = children_text(element, skip=("trLine",))
    return {"nr": values.get("nr", ""), "desc": values.get("desc", ""), "trDt": values.get("trDt", ""),
            "journal": journal}


def _line(transaction, values, amount, customers, line):
    journal, number = transaction["journal"], transaction["nr"]
    day = parse_iso_date(transaction["trDt"]) or parse_iso_date(values.get("effDate"))
    if day is None:
        return Problem(line, f"date '{shown(transaction['trDt'] or values.get('effDate', ''))}' is not a date")
    counterparty = values.get("custSupID", "")
    return Line(
        key=f"{journal}/{number}/{values.get('nr', '')}", entry=f"{journal}/{number}", booking_date=day,
        account=values.get("accID", ""), amount=amount, journal=journal,
        description=values.get("desc") or transaction["desc"], reference=values.get("docRef", ""),
        counterparty=counterparty, counterparty_name=customers.get(counterparty, ""), line=line,
    )
