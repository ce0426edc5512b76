"""Uploading audit files into a manual file (app.services.audit_file_import) and through the Sync tab."""
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.models import (
    Account, AuditEvent, Dossier, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance, Role,
)
from app.services.audit_file_import import import_audit_file
from app.services.uploads import UploadRejected
from benchmarks.audit_file_samples import as_bytes, fec, fec_name, sample_books, xaf
from tests.conftest import make_user

XAF = as_bytes(xaf(sample_books(), "3.2"))


@pytest.fixture
def world(db, firm):
    admin = make_user("admin@alpha.test", firm, Role.ADMIN)
    external = make_user("ext@alpha.test", firm, Role.EXTERNAL)
    dossier = Dossier(firm=firm, name="Bakkerij Janssens", frequency="month", currency="EUR")
    db.session.add(dossier)
    db.session.commit()
    dossier.users.append(external)
    db.session.commit()
    return {"admin": actor_for(admin, firm.id), "external": actor_for(external, firm.id), "dossier": dossier}


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def balances(db, dossier):
    rows = db.session.execute(
        select(Account.number, Period.end, PeriodBalance.amount).join(Account, Account.id == PeriodBalance.account_id)
        .join(Period, Period.id == PeriodBalance.period_id).where(PeriodBalance.dossier_id == dossier.id)).all()
    return {(number, end): amount for number, end, amount in rows}


def nothing_written(db):
    return all(count(db, model) == 0 for model in (Account, LedgerLine, PeriodBalance, OpeningBalance, AuditEvent,
                                                   FiscalYear))


def test_an_xaf_fills_a_manual_file_and_a_second_upload_changes_nothing(db, world):
    dossier = world["dossier"]
    result = import_audit_file(world["admin"], dossier, XAF, "books.xaf")
    assert result.format == "XAF 3.2" and result.lines == 10 and result.accounts == 7
    year = db.session.scalar(select(FiscalYear))
    assert (year.start, year.end, year.origin) == (date(2024, 1, 1), date(2024, 12, 31), "manual")
    kinds = dict(db.session.execute(select(Account.number, Account.kind)).all())
    assert kinds == {"0500": "equity", "1000": "asset", "1300": "asset", "1600": "liability", "1800": "liability",
                     "8000": "income", "4000": "expense"}
    openings = dict(db.session.execute(select(Account.number, OpeningBalance.amount).join(
        Account, Account.id == OpeningBalance.account_id).where(OpeningBalance.date == date(2024, 1, 1))).all())
    assert openings == {"1000": Decimal("12500.00"), "1300": Decimal("2500.00"), "0500": Decimal("-15000.00")}
    assert balances(db, dossier) == {
        ("1300", date(2024, 1, 31)): Decimal("1210.00"), ("8000", date(2024, 1, 31)): Decimal("-1000.00"),
        ("1800", date(2024, 1, 31)): Decimal("-210.00"), ("1000", date(2024, 2, 29)): Decimal("1210.00"),
        ("1300", date(2024, 2, 29)): Decimal("-1210.00"), ("4000", date(2024, 3, 31)): Decimal("800.00"),
        ("1600", date(2024, 3, 31)): Decimal("-800.00"), ("1300", date(2024, 3, 31)): Decimal("605.50"),
        ("8000", date(2024, 3, 31)): Decimal("-500.41"), ("1800", date(2024, 3, 31)): Decimal("-105.09")}
    line = db.session.scalar(select(LedgerLine).where(LedgerLine.source_id == "audit:xaf:VK/1/1"))
    assert (line.journal, line.reference, line.description) == ("VK", "F2024-1", "Invoice 1")
    assert line.dimensions == {"counterparty": "C001", "counterparty_name": "Café De Hoek"}
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "data.upload_audit_file"))
    assert event.changes["lines"] == 10 and event.dossier_id == dossier.id

    again = import_audit_file(world["admin"], dossier, io.BytesIO(XAF), "books.xaf")
    assert {key: value for key, value in again.written.items() if value} == {}


def test_a_corrected_file_changes_only_what_differs(db, world):
    dossier = world["dossier"]
    import_audit_file(world["admin"], dossier, XAF, "books.xaf")
    books = sample_books()
    books.entries[2] = ("INK", "1", date(2024, 3, 1), "Rent March", [("4000", Decimal("850.00"), "R3", "S001"),
                                                                     ("1600", Decimal("-850.00"), "R3", "S001")])
    del books.entries[1]  # the payment is gone from the corrected export
    result = import_audit_file(world["admin"], dossier, as_bytes(xaf(books)), "books-v2.xaf")
    assert (result.written["lines_inserted"], result.written["lines_updated"], result.written["lines_deleted"]) == (
        0, 2, 2)
    now = balances(db, dossier)
    assert now[("4000", date(2024, 3, 31))] == Decimal("850.00")
    assert ("1000", date(2024, 2, 29)) not in now and ("1300", date(2024, 1, 31)) in now


def test_a_fec_with_montant_sens_in_iso_8859_15(db, world):
    books = sample_books()
    data = as_bytes(fec(books, separator="|", encoding="iso-8859-15", montant_sens=True))
    result = import_audit_file(world["admin"], world["dossier"], data, fec_name(books))
    assert result.format == "FEC" and result.lines == 13 and result.fiscal_year == (date(2024, 1, 1),
                                                                                    date(2024, 12, 31))
    kinds = dict(db.session.execute(select(Account.number, Account.kind)).all())
    assert kinds["0500"] == "other" and kinds["4000"] == "other"  # 0 and 4: third parties / no class
    line = db.session.scalar(select(LedgerLine).where(LedgerLine.source_id == "audit:fec:VK/2/1"))
    assert line.description == "Invoice 2 café" and line.amount == Decimal("605.50")
    # the "A nouveaux" entry is a booking of the first period
    assert balances(db, world["dossier"])[("1000", date(2024, 1, 31))] == Decimal("12500.00")


def test_a_preview_checks_and_writes_nothing(db, world):
    result = import_audit_file(world["admin"], world["dossier"], XAF, "books.xaf", preview=True)
    assert result.preview and "Checked, nothing written" in result.message and "10 lines" in result.message
    assert nothing_written(db)


def refused(world, data, filename="books.xaf"):
    with pytest.raises(UploadRejected) as error:
        import_audit_file(world["admin"], world["dossier"], data, filename)
    return error.value.errors


def test_an_unbalanced_booking_is_refused_and_nothing_is_written(db, world):
    data = XAF.replace(b"<amnt>500.41</amnt>", b"<amnt>500.40</amnt>")
    errors = refused(world, data)
    assert "booking VK/2 does not balance: debits exceed credits by 0.01" in errors
    assert "The lines do not balance: 3825.50 debit against 3825.49 credit." in errors
    assert nothing_written(db)


def test_an_account_outside_the_chart_is_refused(db, world):
    data = XAF.replace(b"<accID>4000</accID><docRef>", b"<accID>4001</accID><docRef>")
    assert any("account 4001 is not in the file's chart of accounts" in e for e in refused(world, data))
    assert nothing_written(db)


def test_a_line_outside_the_fiscal_year_is_refused(db, world):
    data = XAF.replace(b"<trDt>2024-03-01</trDt>", b"<trDt>2025-03-01</trDt>")
    assert any("2025-03-01 lies outside the fiscal year 2024-01-01 to 2024-12-31" in e for e in refused(world, data))


def test_a_stated_total_that_disagrees_is_refused(db, world):
    data = XAF.replace(b"<linesCount>10</linesCount>", b"<linesCount>11</linesCount>")
    assert any("the file states 11 ledger lines but holds 10" in e for e in refused(world, data))


def test_a_schema_violation_is_reported_by_line(db, world):
    data = XAF.replace(b"<obLine>", b"\n<obLine>").replace(b"<amntTp>C</amntTp></obLine>",
                                                           b"<amntTp>X</amntTp></obLine>")
    errors = refused(world, data)
    assert errors[0] == "The file does not follow the official schema (XmlAuditfileFinancieel3.2.xsd)."
    assert errors[1].startswith("line 7: /auditfile/company/openingBalance/obLine[3]/amntTp")
    assert nothing_written(db)


def test_a_locked_fiscal_year_is_refused(db, world):
    db.session.add(FiscalYear(dossier_id=world["dossier"].id, start=date(2024, 1, 1), end=date(2024, 12, 31),
                              origin="manual", locked=True))
    db.session.commit()
    assert any("is locked, which uploads cannot change" in e for e in refused(world, XAF))
    assert count(db, LedgerLine) == 0


def test_a_fiscal_year_in_conflict_with_the_files_is_refused(db, world):
    db.session.add(FiscalYear(dossier_id=world["dossier"].id, start=date(2023, 7, 1), end=date(2024, 6, 30),
                              origin="manual"))
    db.session.commit()
    assert any("correct the fiscal years first" in e for e in refused(world, XAF))


def test_too_many_lines_are_refused(app, db, world):
    app.config["UPLOAD_MAX_ROWS"] = 5
    assert refused(world, XAF) == ["The file has more than 5 lines, the most one upload may hold."]


def test_who_may_upload(db, world):
    with pytest.raises(Forbidden):
        import_audit_file(world["external"], world["dossier"], XAF, "books.xaf")
    assert nothing_written(db)



def test_a_saft_file_is_uploaded_and_its_closing_balances_are_checked(db, world):
    from benchmarks.audit_file_samples import saft_no

    data = as_bytes(saft_no(sample_books()))
    wrong = data.replace(b"<ClosingDebitBalance>13710.00</ClosingDebitBalance>",
                         b"<ClosingDebitBalance>13700.00</ClosingDebitBalance>")
    assert any("account 1000 closes at 13700.00 in the file, but its opening balance and lines add up to 13710.00"
               in e for e in refused(world, wrong, "saft.xml"))
    assert nothing_written(db)
    result = import_audit_file(world["admin"], world["dossier"], data, "saft.xml")
    assert result.format == "SAF-T NO 1.30" and result.lines == 10
    assert dict(db.session.execute(select(Account.number, Account.kind)).all())["1600"] == "liability"


def test_lines_out_of_date_order_land_in_their_own_periods(db, world):
    books = sample_books()
    books.entries = [books.entries[3], books.entries[0], books.entries[2], books.entries[1]]  # March first
    data = as_bytes(fec(books))
    import_audit_file(world["admin"], world["dossier"], data, fec_name(books))
    now = balances(db, world["dossier"])
    assert now[("1300", date(2024, 1, 31))] == Decimal("2500.00") + Decimal("1210.00")  # "A nouveaux" + invoice 1
    assert now[("1300", date(2024, 2, 29))] == Decimal("-1210.00")
    assert now[("1300", date(2024, 3, 31))] == Decimal("605.50")


@pytest.mark.parametrize("data, expected", [
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbbbb"><!ENTITY c "&b;&b;&b;&b;&b;&b;">]>'
     b'<auditfile xmlns="http://www.auditfiles.nl/XAF/3.2"><header><fiscalYear>&c;</fiscalYear></header></auditfile>',
     "document type (DTD) or entities"),
    (XAF.replace(b"<auditfile ", b"<!DOCTYPE auditfile SYSTEM 'http://example.invalid/x.dtd'><auditfile ", 1),
     "document type (DTD) or entities"),
    (as_bytes(fec(sample_books())).decode().encode("utf-16"), "not an audit file Firmsync reads"),
    (b"", "not an audit file Firmsync reads"),
])
def test_hostile_and_unreadable_files_are_refused_cleanly(db, world, data, expected):
    assert any(expected in e for e in refused(world, data))
    assert nothing_written(db)


@pytest.mark.parametrize("render", ["fec", "xaf"])
def test_a_spooled_upload_on_disk_is_read_twice_and_left_open(db, world, render):
    """Werkzeug keeps a large upload in a SpooledTemporaryFile rolled over to disk."""
    import tempfile

    books = sample_books()
    stream = tempfile.SpooledTemporaryFile(max_size=16)
    stream.write(as_bytes(fec(books) if render == "fec" else xaf(books)))
    stream.seek(0)
    result = import_audit_file(world["admin"], world["dossier"], stream, fec_name(books))
    assert result.lines == (13 if render == "fec" else 10) and not stream.closed
    assert count(db, LedgerLine) == result.lines


def test_a_line_number_repeated_within_a_booking_is_refused(db, world):
    data = XAF.replace(b"<trLine><nr>2</nr><accID>8000</accID>", b"<trLine><nr>1</nr><accID>8000</accID>", 1)
    assert any("line VK/1/1 appears twice in booking VK/1" in e for e in refused(world, data))
    assert nothing_written(db)
