"""The audit-file readers (app.audit_files) on files Firmsync writes itself (benchmarks.audit_file_samples)."""
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import xmlschema

from app.audit_files import AuditFileRejected, detect, read_audit_file
from app.audit_files.common import ChartAccount, FileHeader, Line, OpeningLine, PeriodInfo, Problem, StatedTotals
from benchmarks.audit_file_samples import as_bytes, fec, fec_name, sample_books, xaf

SPECS = Path(__file__).resolve().parents[3] / "shared/specs/audit-files"


def items(data, filename=""):
    return list(read_audit_file(io.BytesIO(data), filename))


def of(kind, found):
    return [item for item in found if isinstance(item, kind)]


@pytest.mark.parametrize("version, schema", [("3.2", "xaf/XmlAuditfileFinancieel3.2.xsd"),
                                             ("4.0", "xaf/XmlAuditfileFinancieel4.0.xsd")])
def test_xaf_samples_follow_the_official_schema_and_read_into_canonical_records(version, schema):
    data = as_bytes(xaf(sample_books(), version))
    assert xmlschema.XMLSchema10(str(SPECS / schema)).is_valid(io.BytesIO(data))
    found = items(data)
    [header] = of(FileHeader, found)
    assert header.format == f"XAF {version}" and header.currency == "EUR"
    assert (header.fiscal_year_start, header.fiscal_year_end) == (date(2024, 1, 1), date(2024, 12, 31))
    assert header.company.name == "Bakkerij Janssens B.V." and header.company.vat_number == "NL001234567B01"
    assert header.company.registration_number == "12345678"
    accounts = {a.number: a for a in of(ChartAccount, found)}
    assert accounts["1000"].kind == "asset" and accounts["1000"].mappings == {"rgs": "BLimBanRba"}
    assert accounts["8000"].kind == "income" and accounts["4000"].kind == "expense"
    assert accounts["0500"].kind == "equity" and accounts["1600"].kind == "liability"
    assert len(of(PeriodInfo, found)) == 12
    assert {o.account: o.amount for o in of(OpeningLine, found)} == {
        "1000": Decimal("12500.00"), "1300": Decimal("2500.00"), "0500": Decimal("-15000.00")}
    lines = of(Line, found)
    assert len(lines) == 10 and sum(line.amount for line in lines) == 0
    first = lines[0]
    assert (first.key, first.entry, first.booking_date, first.account, first.amount, first.reference,
            first.counterparty, first.counterparty_name) == (
        "VK/1/1", "VK/1", date(2024, 1, 15), "1300", Decimal("1210.00"), "F2024-1", "C001", "Café De Hoek")
    totals = {t.scope: t for t in of(StatedTotals, found)}
    assert totals["lines"].lines == 10 and totals["lines"].debit == Decimal("3825.50")
    assert totals["opening"].debit == Decimal("15000.00")


@pytest.mark.parametrize("options", [
    {"separator": "\t"}, {"separator": "|"}, {"separator": "\t", "bom": True},
    {"separator": "|", "encoding": "iso-8859-15"}, {"separator": "\t", "montant_sens": True},
    {"separator": "|", "extra_column": True, "montant_sens": True},
])
def test_fec_variants_read_the_same(options):
    books = sample_books()
    data = as_bytes(fec(books, **options))
    assert detect(io.BytesIO(data)) == "fec"
    found = items(data, fec_name(books))
    [header] = of(FileHeader, found)
    assert header.fiscal_year_end == date(2024, 12, 31) and header.company.registration_number == "123456789"
    lines = of(Line, found)
    assert len(lines) == 13  # 3 opening ("A nouveaux") + 10
    assert sum(line.amount for line in lines) == 0
    cafe = [line for line in lines if line.entry == "VK/2"]
    assert [line.amount for line in cafe] == [Decimal("605.50"), Decimal("-500.41"), Decimal("-105.09")]
    assert cafe[0].description == "Invoice 2 café" and cafe[0].counterparty_name == "Hotel Zon"
    assert cafe[0].account_name == "Debtors" and [line.key for line in cafe] == ["VK/2/1", "VK/2/2", "VK/2/3"]


def test_a_fec_line_that_cannot_be_read_is_a_problem_with_its_number_and_reading_goes_on():
    data = as_bytes(fec(sample_books())).replace(b"20240115", b"2024-01-15", 1).replace(b"605,50", b"60x,50")
    problems = of(Problem, items(data))
    assert [p.line for p in problems] == [5, 12]
    assert "EcritureDate '2024-01-15' is not a date" in problems[0].message
    assert "Debit '60x,50'" in problems[1].message


def test_a_fec_without_its_columns_is_refused():
    with pytest.raises(AuditFileRejected) as error:
        items(b"JournalCode\tCompteNum\tMontant\n", "x.txt")
    assert "lacks the column(s) ecriturenum" in error.value.errors[0]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<auditfile xmlns="http://www.auditfiles.nl/XAF/3.2"><header><fiscalYear>&lol2;</fiscalYear></header></auditfile>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<auditfile xmlns="http://www.auditfiles.nl/XAF/3.2"><header><fiscalYear>&x;</fiscalYear></header></auditfile>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL])
def test_entity_declarations_are_refused_before_parsing(data):
    with pytest.raises(AuditFileRejected) as error:
        items(data)
    assert "document type (DTD) or entities" in error.value.errors[0]


def test_broken_xml_is_refused_with_a_sentence():
    data = as_bytes(xaf(sample_books()))[:-40]
    with pytest.raises(AuditFileRejected) as error:
        items(data)
    assert error.value.errors[0].startswith("The file is not well-formed XML")


def test_an_unknown_xaf_version_and_an_unknown_format_are_refused():
    with pytest.raises(AuditFileRejected) as error:
        items(b'<auditfile xmlns="http://www.auditfiles.nl/XAF/9.9"><header/></auditfile>')
    assert "is not supported" in error.value.errors[0]
    with pytest.raises(AuditFileRejected) as error:
        items(b"hello;world\n1;2\n")
    assert "not an audit file Firmsync reads" in error.value.errors[0]


def test_a_huge_fec_line_is_refused_without_being_read_whole():
    header = as_bytes(fec(sample_books())).split(b"\r\n")[0]
    with pytest.raises(AuditFileRejected) as error:
        items(header + b"\r\n" + b"x" * 200_000 + b"\r\n")
    assert error.value.errors == ["line 2 is longer than 100000 characters."]


def test_a_utf16_fec_is_not_taken_for_text():
    data = as_bytes(fec(sample_books())).decode().encode("utf-16")
    with pytest.raises(AuditFileRejected):
        items(data)


def test_saft_no_sample_follows_the_schema_and_carries_grouping_codes_and_closing_balances():
    from benchmarks.audit_file_samples import saft_no

    data = as_bytes(saft_no(sample_books()))
    schema = xmlschema.XMLSchema10(str(SPECS / "saft-no/v1.30/Norwegian_SAF-T_Financial_Schema_v_1.30.xsd"))
    assert schema.is_valid(io.BytesIO(data))
    found = items(data)
    [header] = of(FileHeader, found)
    assert header.format == "SAF-T NO 1.30" and header.currency == "NOK"
    assert header.company.registration_number == "12345678" and header.company.vat_number == "NL001234567B01"
    accounts = {a.number: a for a in of(ChartAccount, found)}
    assert accounts["1000"].mappings == {"grouping_category": "RF-1167", "grouping": "1920"}
    assert [accounts[n].kind for n in ("1000", "0500", "1600", "8000", "4000")] == [
        "asset", "equity", "liability", "income", "expense"]
    closing = {t.account: t.debit - t.credit for t in of(StatedTotals, found) if t.scope == "closing"}
    assert closing["1000"] == Decimal("13710.00")
    lines = of(Line, found)
    assert len(lines) == 10 and lines[0].counterparty == "C001" and lines[0].key == "VK/1/1"


def test_saft_oecd_base_namespace_is_read_too():
    from benchmarks.audit_file_samples import saft_no

    data = as_bytes(saft_no(sample_books(), namespace="urn:OECD:StandardAuditFile-Taxation/2.00", version="2.00"))
    found = items(data)
    assert of(FileHeader, found)[0].format == "SAF-T OECD 2.00" and len(of(Line, found)) == 10


@pytest.mark.parametrize("render", ["xaf", "saft"])
def test_every_transaction_of_a_long_journal_keeps_its_journal(render):
    """Elements are released once read: the journal id must survive its element's release."""
    from benchmarks.audit_file_samples import large_books, saft_no

    data = as_bytes(xaf(large_books(200)) if render == "xaf" else saft_no(large_books(200)))
    lines = of(Line, items(data))
    assert len(lines) == 200 and {line.journal for line in lines} == {"VK"}
    assert len({line.key for line in lines}) == 200
