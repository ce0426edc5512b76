"""Sample audit files written by Firmsync itself (tests and the audit-file benchmark).

:func:`sample_books` describes a small company's year; :func:`xaf`, :func:`fec` and
:func:`saft_no` render any :class:`Books` as an XAF 3.2 / 4.0, a FEC (tab or ``|``, Debit/Credit
or Montant/Sens, any encoding) or a Norwegian SAF-T 1.30, as chunks of bytes (a million-line
file is written without being held in memory). :func:`large_books` makes a year of ``lines``
ledger lines for the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from xml.sax.saxutils import escape


@dataclass
class Books:
    company: str
    registration: str
    vat: str
    start: date
    end: date
    #: (number, name, "B" or "P", standard code)
    accounts: list
    #: {account: amount} (debit positive)
    openings: dict
    #: entries: (journal, number, date, description, [(account, amount, document, counterparty), ...])
    entries: object = field(default_factory=list)
    counterparties: dict = field(default_factory=dict)


def sample_books(year=2024):
    """A small Dutch-style year: capital, bank, receivables, sales, costs, VAT."""
    accounts = [("0500", "Capital", "B", "BEivGok"), ("1000", "Bank", "B", "BLimBanRba"),
                ("1300", "Debtors", "B", "BVorDebHad"), ("1600", "Creditors", "B", "BSchCreHac"),
                ("1800", "VAT payable", "B", "BSchBtwAfb"), ("8000", "Sales", "P", "WOmzNopOlh"),
                ("4000", "Rent", "P", "WBedHuiHur")]
    openings = {"1000": Decimal("12500.00"), "1300": Decimal("2500.00"), "0500": Decimal("-15000.00")}
    entries = [
        ("VK", "1", date(year, 1, 15), "Invoice 1", [("1300", Decimal("1210.00"), "F2024-1", "C001"),
                                                    ("8000", Decimal("-1000.00"), "F2024-1", ""),
                                                    ("1800", Decimal("-210.00"), "F2024-1", "")]),
        ("BNK", "1", date(year, 2, 3), "Payment invoice 1", [("1000", Decimal("1210.00"), "B1", "C001"),
                                                            ("1300", Decimal("-1210.00"), "B1", "C001")]),
        ("INK", "1", date(year, 3, 1), "Rent March", [("4000", Decimal("800.00"), "R3", "S001"),
                                                     ("1600", Decimal("-800.00"), "R3", "S001")]),
        ("VK", "2", date(year, 3, 20), "Invoice 2 café", [("1300", Decimal("605.50"), "F2024-2", "C002"),
                                                           ("8000", Decimal("-500.41"), "F2024-2", ""),
                                                           ("1800", Decimal("-105.09"), "F2024-2", "")]),
    ]
    return Books("Bakkerij Janssens B.V.", "12345678", "NL001234567B01", date(year, 1, 1), date(year, 12, 31),
                 accounts, openings, entries, {"C001": "Café De Hoek", "C002": "Hotel Zon", "S001": "Verhuur BV"})


def large_books(lines, year=2024):
    """:func:`sample_books` with ``lines`` ledger lines (pairs spread over the year)."""
    books = sample_books(year)

    def entries():
        days = (books.end - books.start).days + 1
        for n in range(lines // 2):
            day = books.start + timedelta(days=n * days // max(lines // 2, 1))
            amount = Decimal(100 + n % 900) + Decimal(n % 100) / 100
            yield ("VK", str(n + 1), day, f"Invoice {n + 1}",
                   [("1300", amount, f"F{n + 1}", "C001"), ("8000", -amount, f"F{n + 1}", "")])
    books.entries = entries
    return books


def _entries(books):
    return books.entries() if callable(books.entries) else books.entries


def _dc(amount):
    return ("D", amount) if amount >= 0 else ("C", -amount)


def xaf(books, version="3.2"):
    """The books as an XAF (``"3.2"`` or ``"4.0"``), in chunks of bytes; totals computed in a
    first pass over the entries."""
    ns = ("http://www.auditfiles.nl/XAF/3.2" if version == "3.2" else
          "http://www.odb.belastingdienst.nl/Belastingdienst/BCPP/1.1/structures/XmlauditfileXAF_4.0")
    count = debit = 0
    for _, _, _, _, lines in _entries(books):
        for _, amount, _, _ in lines:
            count += 1
            debit += max(amount, 0)
    yield (f'<?xml version="1.0" encoding="UTF-8"?>\n<auditfile xmlns="{ns}">\n'
           f"<header><fiscalYear>{books.start.year}</fiscalYear><startDate>{books.start}</startDate>"
           f"<endDate>{books.end}</endDate><curCode>EUR</curCode><dateCreated>{books.end}</dateCreated>"
           "<softwareDesc>Firmsync samples</softwareDesc><softwareVersion>1</softwareVersion></header>\n<company>"
           ).encode()
    if version == "3.2":
        company = (f"<companyIdent>{books.registration}</companyIdent><companyName>{escape(books.company)}</companyName>"
                   f"<taxRegistrationCountry>NL</taxRegistrationCountry><taxRegIdent>{books.vat}</taxRegIdent>")
    else:
        company = (f"<Commercenr>{books.registration}</Commercenr><companyName>{escape(books.company)}</companyName>"
                   f"<taxRegistrationCountry>NL</taxRegistrationCountry><taxRegIdent>{books.vat}</taxRegIdent>")
    parts = [company, "<customersSuppliers>"]
    for ident, name in books.counterparties.items():
        parts.append(f"<customerSupplier><custSupID>{ident}</custSupID><custSupName>{escape(name)}</custSupName>"
                     + ("<custSupTp>B</custSupTp>" if version == "4.0" else "") + "</customerSupplier>")
    parts.append("</customersSuppliers><generalLedger>")
    for number, name, tp, rgs in books.accounts:
        code = f"<RGScode>{rgs}</RGScode>" if version == "4.0" else f"<leadCode>{rgs}</leadCode>"
        parts.append(f"<ledgerAccount><accID>{number}</accID><accDesc>{escape(name)}</accDesc><accTp>{tp}</accTp>"
                     f"{code}</ledgerAccount>")
    parts.append("</generalLedger><periods>")
    for month in range(1, 13):
        start = date(books.start.year, month, 1)
        end = (date(books.start.year + (month == 12), month % 12 + 1, 1) - timedelta(days=1))
        parts.append(f"<period><periodNumber>{month}</periodNumber><startDatePeriod>{start}</startDatePeriod>"
                     f"<endDatePeriod>{end}</endDatePeriod></period>")
    parts.append("</periods>")
    ob_debit = sum((a for a in books.openings.values() if a > 0), Decimal(0))
    parts.append("<openingBalance>" + (f"<opBalDate>{books.start}</opBalDate>" if version == "3.2" else "")
                 + f"<linesCount>{len(books.openings)}</linesCount><totalDebit>{ob_debit:.2f}</totalDebit>"
                 f"<totalCredit>{ob_debit:.2f}</totalCredit>")
    for n, (account, amount) in enumerate(books.openings.items(), start=1):
        tp, value = _dc(amount)
        parts.append(f"<obLine><nr>{n}</nr><accID>{account}</accID><amnt>{value:.2f}</amnt><amntTp>{tp}</amntTp>"
                     "</obLine>")
    parts.append(f"</openingBalance><transactions><linesCount>{count}</linesCount>"
                 f"<totalDebit>{debit:.2f}</totalDebit><totalCredit>{debit:.2f}</totalCredit>")
    yield "".join(parts).encode()
    journal = None
    buffer = []
    for code, number, day, description, lines in _entries(books):
        if code != journal:
            if journal is not None:
                buffer.append("</journal>")
            journal = code
            buffer.append(f"<journal><jrnID>{code}</jrnID><desc>Journal {code}</desc>")
        buffer.append(f"<transaction><nr>{number}</nr><desc>{escape(description)}</desc>"
                      f"<periodNumber>{day.month}</periodNumber><trDt>{day}</trDt>")
        for n, (account, amount, document, counterparty) in enumerate(lines, start=1):
            tp, value = _dc(amount)
            buffer.append(f"<trLine><nr>{n}</nr><accID>{account}</accID><docRef>{document}</docRef>"
                          f"<effDate>{day}</effDate><desc>{escape(description)}</desc><amnt>{value:.2f}</amnt>"
                          f"<amntTp>{tp}</amntTp>"
                          + (f"<custSupID>{counterparty}</custSupID>" if counterparty else "") + "</trLine>")
        buffer.append("</transaction>\n")
        if len(buffer) > 2000:
            yield "".join(buffer).encode()
            buffer = []
    if journal is not None:
        buffer.append("</journal>")
    buffer.append("</transactions></company>\n</auditfile>\n")
    yield "".join(buffer).encode()


FEC_COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
               "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
               "ValidDate", "Montantdevise", "Idevise")


def fec(books, separator="\t", encoding="utf-8", montant_sens=False, extra_column=False, bom=False):
    """The books as a FEC flat file (opening balance as the ``AN`` entry of the first day)."""
    columns = list(FEC_COLUMNS)
    if montant_sens:
        columns[11:13] = ["Montant", "Sens"]
    if extra_column:
        columns.append("CodeEtablissement")
    names = {number: name for number, name, _, _ in books.accounts}
    yield (("\ufeff" if bom else "") + separator.join(columns) + "\r\n").encode(encoding)

    def row(code, number, day, account, amount, document, counterparty, text):
        compact = day.strftime("%Y%m%d")
        value = f"{abs(amount):.2f}".replace(".", ",")
        money = ([value, "D" if amount >= 0 else "C"] if montant_sens else
                 [value if amount >= 0 else "0,00", value if amount < 0 else "0,00"])
        cells = [code, f"Journal {code}", number, compact, account, names.get(account, account), counterparty,
                 books.counterparties.get(counterparty, ""), document, compact, text, *money, "", "", compact, "", ""]
        if extra_column:
            cells.append("01")
        return separator.join(cells) + "\r\n"

    buffer = [row("AN", "0", books.start, account, amount, "AN", "", "A nouveaux")
              for account, amount in books.openings.items()]
    for code, number, day, description, lines in _entries(books):
        for account, amount, document, counterparty in lines:
            buffer.append(row(code, number, day, account, amount, document, counterparty, description))
        if len(buffer) > 5000:
            yield "".join(buffer).encode(encoding)
            buffer = []
    yield "".join(buffer).encode(encoding)


def fec_name(books, siren="123456789"):
    """The file name a FEC of ``books`` carries: ``<SIREN>FEC<closing date>.txt``."""
    return f"{siren}FEC{books.end.strftime('%Y%m%d')}.txt"


def as_bytes(chunks):
    """Join a generator's chunks (small samples)."""
    return b"".join(chunks)


#: Norwegian standard accounts (NS 4102) for the sample chart
NO_STANDARD = {"0500": "2000", "1000": "1920", "1300": "1500", "1600": "2400", "1800": "2700", "8000": "3000",
               "4000": "6300"}


def saft_no(books, namespace="urn:StandardAuditFile-Taxation-Financial:NO", version="1.30"):
    """The books as a Norwegian SAF-T Financial file (``namespace`` of OECD 2.00 gives the
    base layout, without schema here)."""
    closing = dict(books.openings)
    count = 0
    debit = Decimal(0)
    for _, _, _, _, lines in _entries(books):
        for account, amount, _, _ in lines:
            closing[account] = closing.get(account, Decimal(0)) + amount
            count += 1
            debit += max(amount, 0)
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<AuditFile xmlns="{namespace}">\n<Header>'
             f"<AuditFileVersion>{version}</AuditFileVersion><AuditFileCountry>NO</AuditFileCountry>"
             f"<AuditFileDateCreated>{books.end}</AuditFileDateCreated><SoftwareCompanyName>Firmsync"
             "</SoftwareCompanyName><SoftwareID>Firmsync samples</SoftwareID><SoftwareVersion>1</SoftwareVersion>"
             f"<Company><RegistrationNumber>{books.registration}</RegistrationNumber><Name>{escape(books.company)}"
             "</Name><Address><City>Oslo</City><PostalCode>0150</PostalCode></Address>"
             "<Contact><ContactPerson><FirstName>Kari</FirstName><LastName>Nordmann</LastName></ContactPerson>"
             f"</Contact><TaxRegistration><TaxRegistrationNumber>{books.vat}</TaxRegistrationNumber>"
             "</TaxRegistration></Company><DefaultCurrencyCode>NOK</DefaultCurrencyCode>"
             f"<SelectionCriteria><SelectionStartDate>{books.start}</SelectionStartDate>"
             f"<SelectionEndDate>{books.end}</SelectionEndDate></SelectionCriteria>"
             "<TaxAccountingBasis>A</TaxAccountingBasis></Header>\n<MasterFiles><GeneralLedgerAccounts>"]
    for number, name, _, _ in books.accounts:
        opening, close = books.openings.get(number, Decimal(0)), closing.get(number, Decimal(0))
        parts.append(
            f"<Account><AccountID>{number}</AccountID><AccountDescription>{escape(name)}</AccountDescription>"
            f"<GroupingCategory>RF-1167</GroupingCategory><GroupingCode>{NO_STANDARD.get(number, '9999')}</GroupingCode>"
            "<AccountType>GL</AccountType>"
            + (f"<OpeningDebitBalance>{opening:.2f}</OpeningDebitBalance>" if opening >= 0 else
               f"<OpeningCreditBalance>{-opening:.2f}</OpeningCreditBalance>")
            + (f"<ClosingDebitBalance>{close:.2f}</ClosingDebitBalance>" if close >= 0 else
               f"<ClosingCreditBalance>{-close:.2f}</ClosingCreditBalance>") + "</Account>")
    parts.append("</GeneralLedgerAccounts></MasterFiles>\n"
                 f"<GeneralLedgerEntries><NumberOfEntries>{count}</NumberOfEntries>"
                 f"<TotalDebit>{debit:.2f}</TotalDebit><TotalCredit>{debit:.2f}</TotalCredit>")
    yield "".join(parts).encode()
    by_journal = {}
    for entry in _entries(books):
        by_journal.setdefault(entry[0], []).append(entry)
    for code, entries in by_journal.items():
        buffer = [f"<Journal><JournalID>{code}</JournalID><Description>Journal {code}</Description>"
                  f"<Type>{code}</Type>"]
        for _, number, day, description, lines in entries:
            buffer.append(f"<Transaction><TransactionID>{number}</TransactionID><Period>{day.month}</Period>"
                          f"<PeriodYear>{day.year}</PeriodYear><TransactionDate>{day}</TransactionDate>"
                          f"<Description>{escape(description)}</Description><SystemEntryDate>{day}</SystemEntryDate>"
                          f"<GLPostingDate>{day}</GLPostingDate>")
            for n, (account, amount, document, counterparty) in enumerate(lines, start=1):
                side = "DebitAmount" if amount >= 0 else "CreditAmount"
                buffer.append(f"<Line><RecordID>{n}</RecordID><AccountID>{account}</AccountID>"
                              + (f"<CustomerID>{counterparty}</CustomerID>" if counterparty.startswith("C") else "")
                              + (f"<SupplierID>{counterparty}</SupplierID>" if counterparty.startswith("S") else "")
                              + f"<Description>{escape(description)}</Description>"
                              f"<{side}><Amount>{abs(amount):.2f}</Amount></{side}></Line>")
            buffer.append("</Transaction>\n")
        buffer.append("</Journal>")
        yield "".join(buffer).encode()
    yield b"</GeneralLedgerEntries>\n</AuditFile>\n"
