"""Manual uploads (trial balance, ledger lines) through app.services.uploads."""
import io
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.services.uploads import (
    UploadRejected,
    import_ledger_lines,
    import_trial_balance,
    upload_period_ends,
)
from app.models import (
    Account,
    AuditEvent,
    Connection,
    Dossier,
    DossierLink,
    FiscalYear,
    LedgerLine,
    Period,
    PeriodBalance,
    Role,
)
from app.services.links import revert_to_manual
from tests.conftest import make_user

TB_SEMICOLON = (
    "\ufeffRekeningnummer;Naam;Saldo\n"
    "100000;Kapitaal;-1.000,00\n"
    "550000;Bank;1.250,40\n"
    "700000;Omzet;-250,40\n"
).encode()
TB_COMMA = (
    b"Account,Name,Debit,Credit\n"
    b"100000,Capital,,1000.00\n"
    b"550000,Bank,\"1,250.40\",\n"
    b"700000,Sales,,250.40\n"
)


@pytest.fixture
def world(db, firm):
    admin = make_user("admin@alpha.test", firm, Role.ADMIN)
    external = make_user("ext@alpha.test", firm, Role.EXTERNAL)
    dossier = Dossier(firm=firm, name="Bakkerij Janssens", frequency="month", currency="EUR")
    db.session.add(dossier)
    db.session.flush()
    db.session.add(FiscalYear(dossier_id=dossier.id, start=date(2024, 1, 1), end=date(2024, 12, 31), origin="manual"))
    db.session.commit()
    dossier.users.append(external)
    db.session.commit()
    return {"admin": actor_for(admin, firm.id), "external": actor_for(external, firm.id), "dossier": dossier}


def balances(db, dossier, period_end):
    rows = db.session.execute(
        select(Account.number, PeriodBalance.amount, PeriodBalance.origin_link_id)
        .join(Account, Account.id == PeriodBalance.account_id).join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == dossier.id, Period.end == period_end)
    ).all()
    assert all(origin is None for _, _, origin in rows)
    return {number: amount for number, amount, _ in rows}


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_semicolon_csv_with_decimal_comma_and_bom(db, world):
    result = import_trial_balance(world["admin"], world["dossier"], TB_SEMICOLON, "tb.csv", date(2024, 1, 31))
    assert result.rows == 3
    assert balances(db, world["dossier"], date(2024, 1, 31)) == {
        "100000": Decimal("-1000.00"), "550000": Decimal("1250.40"), "700000": Decimal("-250.40")}
    names = dict(db.session.execute(select(Account.number, Account.name)).all())
    assert names["550000"] == "Bank"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "data.upload_trial_balance"))
    assert event.changes["rows"] == 3 and event.dossier_id == world["dossier"].id


def test_comma_csv_with_debit_and_credit_columns(db, world):
    import_trial_balance(world["admin"], world["dossier"], TB_COMMA, "tb.csv", date(2024, 1, 31))
    assert balances(db, world["dossier"], date(2024, 1, 31))["550000"] == Decimal("1250.40")
    assert balances(db, world["dossier"], date(2024, 1, 31))["100000"] == Decimal("-1000.00")


def test_a_file_object_is_read_as_a_stream_and_left_open(db, world):
    """The upload route passes Werkzeug's stream: it is read line by line and stays the caller's."""
    stream = io.BytesIO(TB_SEMICOLON.replace(b"\n", b"\r"))  # old Mac line ends are lines too
    result = import_trial_balance(world["admin"], world["dossier"], stream, "tb.csv", date(2024, 1, 31))
    assert result.rows == 3 and not stream.closed


def test_amounts_as_french_formats_them_with_narrow_no_break_spaces(db, world):
    data = "account;amount\n100000;-1\u202f234,56\n550000;1\u202f234,56\n".encode()
    import_trial_balance(world["admin"], world["dossier"], data, "tb.csv", date(2024, 1, 31))
    assert balances(db, world["dossier"], date(2024, 1, 31)) == {"100000": Decimal("-1234.56"),
                                                                 "550000": Decimal("1234.56")}


@pytest.mark.parametrize("data, filename", [(b"", "tb.csv"), (b"\n;\n\n", "tb.csv"), (b"", "tb.xlsx")])
def test_an_empty_file_is_refused(world, data, filename):
    with pytest.raises(UploadRejected) as error:
        import_trial_balance(world["admin"], world["dossier"], data, filename, date(2024, 1, 31))
    assert error.value.errors == ["The file is empty."]


def test_xlsx_trial_balance_in_french(db, world):
    book = Workbook()
    sheet = book.active
    sheet.append(["N° compte", "Intitulé", "Solde"])
    sheet.append([100000, "Capital", -500])
    sheet.append([612000, "Loyer", 500.25])
    sheet.append([700000, "Ventes", -0.25])
    buffer = io.BytesIO()
    book.save(buffer)
    import_trial_balance(world["admin"], world["dossier"], buffer.getvalue(), "balance.xlsx", date(2024, 3, 31))
    assert balances(db, world["dossier"], date(2024, 3, 31)) == {
        "100000": Decimal("-500.00"), "612000": Decimal("500.25"), "700000": Decimal("-0.25")}


def test_bad_lines_are_reported_with_their_numbers_and_nothing_is_written(db, world):
    data = b"account;name;amount\n100000;Capital;-100\n\n550000;Bank;abc\n;No number;5\n"
    with pytest.raises(UploadRejected) as error:
        import_trial_balance(world["admin"], world["dossier"], data, "tb.csv", date(2024, 1, 31))
    assert error.value.errors == ["line 4: amount 'abc' is not a number", "line 5: the account number is empty"]
    assert count(db, PeriodBalance) == 0 and count(db, Account) == 0 and count(db, AuditEvent) == 0


def test_unknown_header_names_the_missing_column(world):
    with pytest.raises(UploadRejected) as error:
        import_trial_balance(world["admin"], world["dossier"], b"foo;bar\n1;2\n", "tb.csv", date(2024, 1, 31))
    assert "line 1: the header row has no column for the account number" in error.value.errors[0]


def test_unbalanced_trial_balance_says_by_how_much(db, world):
    data = b"account;amount\n550000;1250,40\n100000;-1125,00\n"
    with pytest.raises(UploadRejected) as error:
        import_trial_balance(world["admin"], world["dossier"], data, "tb.csv", date(2024, 1, 31))
    assert error.value.errors == ["The trial balance does not balance: debits exceed credits by 125.40 EUR."]
    assert count(db, PeriodBalance) == 0


def test_a_date_that_is_not_a_period_end_is_refused(db, world):
    with pytest.raises(UploadRejected) as error:
        import_trial_balance(world["admin"], world["dossier"], TB_SEMICOLON, "tb.csv", date(2024, 1, 15))
    assert "2024-01-15 is not the last day" in error.value.errors[0]
    assert count(db, PeriodBalance) == 0


def test_ytd_amounts_become_movements_across_two_uploads(db, world):
    dossier = world["dossier"]
    import_trial_balance(world["admin"], dossier, TB_SEMICOLON, "jan.csv", date(2024, 1, 31))
    february = b"account;amount\n100000;-1000\n550000;1400,40\n700000;-400,40\n"
    import_trial_balance(world["admin"], dossier, february, "feb.csv", date(2024, 2, 29))
    assert balances(db, dossier, date(2024, 2, 29)) == {"550000": Decimal("150.00"), "700000": Decimal("-150.00")}
    # a corrected January keeps February's year-to-date figures as uploaded
    corrected = b"account;amount\n100000;-1000\n550000;1300,40\n700000;-300,40\n"
    import_trial_balance(world["admin"], dossier, corrected, "jan2.csv", date(2024, 1, 31))
    assert balances(db, dossier, date(2024, 2, 29)) == {"550000": Decimal("100.00"), "700000": Decimal("-100.00")}
    ytd = db.session.execute(
        select(Account.number, func.sum(PeriodBalance.amount)).join(Account, Account.id == PeriodBalance.account_id)
        .group_by(Account.number)).all()
    assert dict(ytd) == {"100000": Decimal("-1000.00"), "550000": Decimal("1400.40"), "700000": Decimal("-400.40")}


def test_upload_is_refused_while_a_sync_is_active_and_allowed_after_revert(db, firm, world):
    dossier = world["dossier"]
    connection = Connection(firm=firm, package="demo", kind="accounting", name="Demo Books", config={}, credentials={})
    db.session.add(connection)
    db.session.flush()
    db.session.add(DossierLink(firm_id=firm.id, dossier=dossier, connection=connection, reference="1"))
    db.session.commit()
    with pytest.raises(UploadRejected) as error:
        import_trial_balance(world["admin"], dossier, TB_SEMICOLON, "tb.csv", date(2024, 1, 31))
    assert "syncs from Demo Books" in error.value.errors[0] and "revert it to a manual file" in error.value.errors[0]
    assert count(db, PeriodBalance) == 0
    revert_to_manual(world["admin"], dossier)
    import_trial_balance(world["admin"], dossier, TB_SEMICOLON, "tb.csv", date(2024, 1, 31))
    assert count(db, PeriodBalance) == 3


def test_roles_without_upload_data_are_refused(db, world):
    with pytest.raises(Forbidden):
        import_trial_balance(world["external"], world["dossier"], TB_SEMICOLON, "tb.csv", date(2024, 1, 31))
    assert count(db, PeriodBalance) == 0


LEDGER = (
    b"Datum;Rekening;Omschrijving;Referentie;Dagboek;Debet;Credit\n"
    b"15/01/2024;550000;Verkoop;F1;VK;121,00;\n"
    b"15/01/2024;700000;Verkoop;F1;VK;;100,00\n"
    b"15/01/2024;451000;BTW;F1;VK;;21,00\n"
    b"03/02/2024;550000;Verkoop;F2;VK;50,00;\n"
    b"03/02/2024;700000;Verkoop;F2;VK;;50,00\n"
)


def test_ledger_lines_are_written_with_period_balances_and_reupload_is_idempotent(db, world):
    dossier = world["dossier"]
    result = import_ledger_lines(world["admin"], dossier, LEDGER, "ledger.csv")
    assert (result.rows, result.lines_inserted) == (5, 5)
    assert result.period_ends == [date(2024, 1, 31), date(2024, 2, 29)]
    assert balances(db, dossier, date(2024, 1, 31)) == {
        "550000": Decimal("121.00"), "700000": Decimal("-100.00"), "451000": Decimal("-21.00")}
    line = db.session.scalar(select(LedgerLine).where(LedgerLine.reference == "F2", LedgerLine.amount < 0))
    assert (line.link_id, line.journal, line.description, line.booking_date) == (None, "VK", "Verkoop", date(2024, 2, 3))
    again = import_ledger_lines(world["admin"], dossier, LEDGER, "ledger.csv")
    assert (again.lines_inserted, again.lines_updated, again.lines_deleted) == (0, 0, 0)
    # a new file for January replaces January's lines only
    january = b"date,account,amount\n2024-01-20,550000,10.5\n2024-01-20,700000,-10.5\n"
    replaced = import_ledger_lines(world["admin"], dossier, january, "jan.csv")
    assert (replaced.lines_inserted, replaced.lines_deleted) == (2, 3)
    assert count(db, LedgerLine) == 4
    assert balances(db, dossier, date(2024, 1, 31)) == {"550000": Decimal("10.50"), "700000": Decimal("-10.50")}


def test_bad_ledger_lines_are_reported_and_nothing_is_written(db, world):
    data = b"date;account;amount\n2024-01-15;550000;12\n2024-13-01;700000;-12\n2024-01-15;700000;x\n"
    with pytest.raises(UploadRejected) as error:
        import_ledger_lines(world["admin"], world["dossier"], data, "ledger.csv")
    assert error.value.errors == [
        "line 3: date '2024-13-01' is not a date (use 2025-03-31 or 31/03/2025)",
        "line 4: amount 'x' is not a number",
    ]
    assert count(db, LedgerLine) == 0


def test_lines_in_a_locked_year_are_refused(db, world):
    db.session.add(FiscalYear(dossier_id=world["dossier"].id, start=date(2023, 1, 1), end=date(2023, 12, 31),
                              origin="support", locked=True))
    db.session.commit()
    data = b"date;account;amount\n2023-05-01;550000;12\n2023-05-01;700000;-12\n2024-01-02;550000;1\n"
    with pytest.raises(UploadRejected) as error:
        import_ledger_lines(world["admin"], world["dossier"], data, "ledger.csv")
    assert error.value.errors[0].startswith("line 2: 2023-05-01 falls in a locked fiscal year")
    assert len(error.value.errors) == 2
    assert count(db, LedgerLine) == 0 and count(db, Period) == 0


def test_other_file_types_are_refused(world):
    with pytest.raises(UploadRejected) as error:
        import_ledger_lines(world["admin"], world["dossier"], b"%PDF-1.4", "ledger.pdf")
    assert "CSV" in error.value.errors[0]


def test_period_ends_offered_for_upload(world):
    ends = upload_period_ends(world["dossier"], today=date(2024, 6, 1))
    assert ends[0] == date(2024, 12, 31) and ends[-1] == date(2024, 1, 31) and len(ends) == 12
    later = upload_period_ends(world["dossier"], today=date(2025, 2, 10))
    assert later[0] == date(2025, 12, 31) and len(later) == 24
