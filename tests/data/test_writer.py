"""The sync writer: idempotent upserts, conversions, periods, deletes, transfer date, locks."""
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models import Account, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance
from connectors.base import (
    AccountRecord, BalanceRecord, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord,
    OpeningBalanceRecord,
)
from app.services.bookkeeping import SyncWriter, write_records

D = Decimal


def line(source_id, day, account, amount, period_end=None, **extra):
    return LedgerLineRecord(source_id=source_id, booking_date=day, account=account, amount=D(amount),
                            booking_period_end=period_end, **extra)


def package_2024():
    return [
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        AccountRecord("400000", "Trade debtors", "asset"),
        AccountRecord("700000", "Sales", "income"),
        BalanceRecord("400000", date(2024, 1, 31), D("121.00"), "movement"),
        BalanceRecord("700000", date(2024, 1, 31), D("-121.00"), "movement"),
        line("L1", date(2024, 1, 5), "400000", "121.00", description="Invoice 1", journal="SALES",
             dimensions={"project": "P1"}, modified_at=datetime(2024, 1, 5, 10, 0)),
        line("L2", date(2024, 1, 5), "700000", "-121.00", description="Invoice 1", journal="SALES"),
        line("L3", date(2024, 2, 9), "400000", "-121.00", description="Payment"),
    ]


def balances_by_period(db, dossier_id, account_number):
    rows = db.session.execute(
        select(Period.end, PeriodBalance.amount)
        .join(Period, PeriodBalance.period_id == Period.id)
        .join(Account, PeriodBalance.account_id == Account.id)
        .where(PeriodBalance.dossier_id == dossier_id, Account.number == account_number)
        .order_by(Period.end)
    ).all()
    return {end: amount for end, amount in rows}


def test_second_write_of_the_same_records_touches_no_row(db, dossier, connection, make_link, write_statements, snapshot):
    link = make_link(dossier, connection)
    first = write_records(db.session, link.id, package_2024())
    db.session.commit()
    assert first.changed is True
    assert (first.lines_inserted, first.accounts, first.balances, first.fiscal_years) == (3, 2, 2, 1)
    assert first.periods == 12
    before = snapshot(dossier.id)

    with write_statements() as seen:
        second = write_records(db.session, link.id, package_2024())
        db.session.commit()
    assert second.changed is False
    assert (second.lines_inserted, second.lines_updated, second.lines_deleted, second.balances, second.accounts) == (0, 0, 0, 0, 0)
    assert seen == []
    assert snapshot(dossier.id) == before


def test_fiscal_years_come_from_the_package_with_the_first_year_end(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [
        FiscalYearRecord(date(2023, 7, 1), date(2024, 6, 30)),
        FiscalYearRecord(date(2022, 7, 1), date(2023, 6, 30)),
    ])
    db.session.commit()
    years = db.session.scalars(select(FiscalYear).where(FiscalYear.dossier_id == dossier.id).order_by(FiscalYear.start)).all()
    assert [(y.start, y.end, y.origin) for y in years] == [
        (date(2022, 7, 1), date(2023, 6, 30), "sync"), (date(2023, 7, 1), date(2024, 6, 30), "sync"),
    ]
    db.session.refresh(dossier)
    assert dossier.first_fiscal_year_end == date(2023, 6, 30)
    assert db.session.scalar(select(func.count()).select_from(Period).where(Period.dossier_id == dossier.id)) == 24


def test_an_invalid_fiscal_year_from_the_package_fails_the_write(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    with pytest.raises(DataError, match="not a valid fiscal year"):
        write_records(db.session, link.id, [FiscalYearRecord(date(2024, 1, 1), date(2026, 6, 30))])
    db.session.rollback()


def test_ytd_and_closing_balances_become_period_movements(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        FiscalYearRecord(date(2025, 1, 1), date(2025, 12, 31)),
        BalanceRecord("700000", date(2024, 1, 31), D("-100"), "ytd"),
        BalanceRecord("700000", date(2024, 3, 31), D("-120"), "ytd"),
        BalanceRecord("700000", date(2024, 2, 29), D("-150"), "ytd"),
        BalanceRecord("700000", date(2025, 1, 31), D("-10"), "ytd"),  # a new year starts from zero
        BalanceRecord("550000", date(2024, 1, 31), D("1000"), "closing"),
        BalanceRecord("550000", date(2024, 2, 29), D("1200"), "closing"),
        BalanceRecord("550000", date(2025, 1, 31), D("1100"), "closing"),
    ])
    db.session.commit()
    assert balances_by_period(db, dossier.id, "700000") == {
        date(2024, 1, 31): D("-100.00"), date(2024, 2, 29): D("-50.00"), date(2024, 3, 31): D("30.00"),
        date(2025, 1, 31): D("-10.00"),
    }
    assert balances_by_period(db, dossier.id, "550000") == {
        date(2024, 1, 31): D("1000.00"), date(2024, 2, 29): D("200.00"), date(2025, 1, 31): D("-100.00"),
    }


def test_monthly_package_periods_add_up_in_a_quarterly_dossier(db, dossier, connection, make_link):
    dossier.frequency = "quarter"
    db.session.commit()
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        BalanceRecord("610000", date(2024, 1, 31), D("10"), "movement"),
        BalanceRecord("610000", date(2024, 2, 29), D("20"), "movement"),
        BalanceRecord("610000", date(2024, 4, 30), D("5"), "movement"),
    ])
    db.session.commit()
    assert balances_by_period(db, dossier.id, "610000") == {date(2024, 3, 31): D("30.00"), date(2024, 6, 30): D("5.00")}


def test_the_booking_period_decides_the_period_not_the_booking_date(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        line("late", date(2024, 2, 3), "610000", "50", period_end=date(2024, 1, 31)),
        line("plain", date(2024, 2, 3), "610000", "70"),
    ])
    db.session.commit()
    ends = dict(db.session.execute(
        select(LedgerLine.source_id, Period.end).join(Period, LedgerLine.period_id == Period.id)
    ).all())
    assert ends == {"late": date(2024, 1, 31), "plain": date(2024, 2, 29)}
    assert db.session.scalar(select(LedgerLine.booking_date).where(LedgerLine.source_id == "late")) == date(2024, 2, 3)


def test_a_line_for_an_unknown_account_creates_it_and_a_later_name_fills_it(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [line("X1", date(2024, 5, 2), "604000", "12.5")])
    db.session.commit()
    account = db.session.scalar(select(Account).where(Account.dossier_id == dossier.id, Account.number == "604000"))
    assert account is not None and account.name == ""
    # no fiscal year was sent: a calendar year was derived, with its periods
    assert db.session.scalar(select(FiscalYear.end).where(FiscalYear.dossier_id == dossier.id)) == date(2024, 12, 31)
    result = write_records(db.session, link.id, [AccountRecord("604000", "Purchases of goods", "expense")])
    db.session.commit()
    db.session.refresh(account)
    assert (result.accounts, account.name, account.kind) == (1, "Purchases of goods", "expense")


def test_changed_lines_are_updated_and_deleted_lines_removed(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, package_2024())
    db.session.commit()
    result = write_records(db.session, link.id, [
        line("L1", date(2024, 1, 5), "400000", "125.00", description="Invoice 1 (corrected)", journal="SALES",
             dimensions={"project": "P1"}, modified_at=datetime(2024, 1, 6, 9, 0)),
        DeletedRecord("L3"),
        DeletedRecord("never-seen"),
    ])
    db.session.commit()
    assert (result.lines_inserted, result.lines_updated, result.lines_deleted) == (0, 1, 1)
    lines = dict(db.session.execute(select(LedgerLine.source_id, LedgerLine.amount)).all())
    assert lines == {"L1": D("125.00"), "L2": D("-121.00")}


def test_a_deleted_entry_removes_every_line_of_it_and_nothing_else(db, dossier, connection, make_link):
    """A package that reports deletions per transaction (Twinfield) names the entry's prefix."""
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [
        *package_2024(),
        line("VRK:10:1", date(2024, 3, 1), "400000", "50"), line("VRK:10:2", date(2024, 3, 1), "700000", "-50"),
        line("VRK:100:1", date(2024, 3, 2), "400000", "7"), line("VRK%:10:1", date(2024, 3, 2), "400000", "9"),
    ])
    db.session.commit()
    # the line read in the same run before the deletion goes too; a LIKE wildcard in a prefix is literal
    result = write_records(db.session, link.id, [line("VRK:10:3", date(2024, 3, 1), "400000", "1"),
                                                 DeletedRecord("VRK:10:", entry=True),
                                                 DeletedRecord("V_K:", entry=True)])
    db.session.commit()
    assert result.lines_deleted == 3
    assert set(db.session.scalars(select(LedgerLine.source_id))) == {"L1", "L2", "L3", "VRK:100:1", "VRK%:10:1"}


def test_a_deleted_entry_in_a_locked_year_stays(db, dossier, connection, make_link, calendar_years):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [FiscalYearRecord(date(2023, 1, 1), date(2023, 12, 31)),
                                         line("MEMO:1:1", date(2023, 4, 1), "400000", "80")])
    db.session.commit()
    db.session.scalar(select(FiscalYear)).locked = True
    db.session.commit()
    result = write_records(db.session, link.id, [DeletedRecord("MEMO:1:", entry=True)])
    db.session.commit()
    assert (result.lines_deleted, result.skipped) == (0, 1)
    assert db.session.scalar(select(func.count(LedgerLine.id))) == 1


def test_batches_flush_while_streaming_and_count_correctly(db, dossier, connection, make_link):
    link = make_link(dossier, connection)
    writer = SyncWriter(db.session, link.id, batch_size=7)
    for n in range(50):
        writer.write(line(f"S{n}", date(2024, 1 + n % 12, 1), f"6{n % 5}0000", str(n)))
    # after seven batches the first lines are already in the transaction
    assert db.session.scalar(select(func.count()).select_from(LedgerLine)) == 49
    result = writer.finish()
    db.session.commit()
    assert result.lines_inserted == 50
    assert db.session.scalar(select(func.sum(LedgerLine.amount))) == D(sum(range(50)))


def test_transfer_date_keeps_earlier_periods_and_takes_the_opening_balance_once(
    db, dossier, connection, make_link, calendar_years
):
    calendar_years(dossier, 2023)
    manual = write_records(db.session, None, [
        BalanceRecord("400000", date(2023, 6, 30), D("999"), "movement"),
    ], dossier_id=dossier.id)
    db.session.commit()
    assert manual.balances == 1
    link = make_link(dossier, connection, scenario="keep", valid_from=date(2024, 1, 1))
    history = [
        FiscalYearRecord(date(2023, 1, 1), date(2023, 12, 31)),
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        line("H1", date(2023, 3, 1), "400000", "100"),
        line("H2", date(2023, 9, 1), "400000", "50"),
        line("H3", date(2023, 9, 1), "700000", "-150"),
        line("N1", date(2024, 2, 1), "400000", "10"),
    ]
    result = write_records(db.session, link.id, history)
    db.session.commit()
    assert result.lines_inserted == 1 and result.skipped == 3
    assert db.session.scalars(select(LedgerLine.source_id)).all() == ["N1"]
    # the manual 2023 figures keep their origin
    manual_row = db.session.scalar(select(PeriodBalance))
    assert (manual_row.amount, manual_row.origin_link_id) == (D("999.00"), None)
    openings = dict(db.session.execute(
        select(Account.number, OpeningBalance.amount).join(Account, OpeningBalance.account_id == Account.id)
        .where(OpeningBalance.date == date(2024, 1, 1))
    ).all())
    assert openings == {"400000": D("150.00"), "700000": D("-150.00")}
    db.session.refresh(link)
    taken_at = link.opening_balance_taken_at
    assert taken_at is not None

    # the package's history changes later: the opening balance is not refreshed
    changed_history = history[:2] + [line("H1", date(2023, 3, 1), "400000", "400")] + history[3:]
    again = write_records(db.session, link.id, changed_history)
    db.session.commit()
    assert again.changed is False
    db.session.refresh(link)
    assert link.opening_balance_taken_at == taken_at
    assert db.session.scalar(
        select(OpeningBalance.amount).join(Account, OpeningBalance.account_id == Account.id).where(Account.number == "400000")
    ) == D("150.00")


def test_opening_balance_starts_from_a_package_opening_balance(db, dossier, connection, make_link):
    link = make_link(dossier, connection, scenario="keep", valid_from=date(2024, 1, 1))
    write_records(db.session, link.id, [
        FiscalYearRecord(date(2023, 1, 1), date(2023, 12, 31)),
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        OpeningBalanceRecord("100000", date(2023, 1, 1), D("-5000")),
        BalanceRecord("100000", date(2023, 5, 31), D("-250"), "movement"),
        BalanceRecord("100000", date(2024, 5, 31), D("-7"), "movement"),
    ])
    db.session.commit()
    rows = db.session.execute(select(OpeningBalance.date, OpeningBalance.amount)).all()
    assert rows == [(date(2024, 1, 1), D("-5250.00"))]
    assert list(balances_by_period(db, dossier.id, "100000").values()) == [D("-7.00")]


def test_a_locked_year_is_never_changed(db, dossier, connection, make_link, calendar_years):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, [
        FiscalYearRecord(date(2023, 1, 1), date(2023, 12, 31)),
        line("OLD", date(2023, 4, 1), "400000", "80"),
        BalanceRecord("400000", date(2023, 4, 30), D("80"), "movement"),
    ])
    db.session.commit()
    year = db.session.scalar(select(FiscalYear))
    year.locked, year.origin = True, "support"
    db.session.commit()

    result = write_records(db.session, link.id, [
        FiscalYearRecord(date(2023, 1, 1), date(2023, 6, 30)),  # the package disagrees; support locked it
        line("OLD", date(2023, 4, 1), "400000", "85"),
        line("NEW-IN-LOCKED", date(2023, 5, 1), "400000", "1"),
        DeletedRecord("OLD"),
        BalanceRecord("400000", date(2023, 4, 30), D("85"), "movement"),
        line("NEXT", date(2024, 1, 10), "400000", "3"),
    ])
    db.session.commit()
    assert result.lines_deleted == 0 and result.lines_inserted == 1
    db.session.refresh(year)
    assert year.end == date(2023, 12, 31)
    assert dict(db.session.execute(select(LedgerLine.source_id, LedgerLine.amount)).all()) == {
        "OLD": D("80.00"), "NEXT": D("3.00"),
    }
    assert balances_by_period(db, dossier.id, "400000") == {date(2023, 4, 30): D("80.00")}


def test_a_failure_in_the_middle_rolls_everything_back(db, dossier, connection, make_link, snapshot):
    link = make_link(dossier, connection)
    write_records(db.session, link.id, package_2024())
    db.session.commit()
    before = snapshot(dossier.id)

    writer = SyncWriter(db.session, link.id, batch_size=3)
    writer.write(FiscalYearRecord(date(2025, 1, 1), date(2025, 12, 31)))
    writer.write(AccountRecord("400000", "Debtors renamed", "asset"))
    for n in range(10):
        writer.write(line(f"F{n}", date(2025, 3, 1), "999999", "1"))
    writer.write(DeletedRecord("L1"))
    with pytest.raises(DataError, match="not a number"):
        writer.write(LedgerLineRecord(source_id="BAD", booking_date=date(2025, 3, 1), account="400000", amount="abc"))
        writer.finish()
    assert db.session.scalar(select(func.count()).select_from(LedgerLine)) > 3  # batches were flushed
    db.session.rollback()
    assert snapshot(dossier.id) == before


def test_balances_come_from_the_lines_when_the_package_sends_none(db, dossier, connection, make_link,
                                                                   calendar_years, write_statements):
    link = make_link(dossier, connection)
    calendar_years(dossier, 2024)
    records = [line("L1", date(2024, 1, 5), "400000", "121.00"), line("L2", date(2024, 1, 5), "700000", "-121.00"),
               line("L3", date(2024, 2, 9), "400000", "-21.00"), line("L4", date(2024, 2, 9), "550000", "21.00")]
    with write_statements() as first:
        result = write_records(db.session, link.id, records, balances_from_lines=True)
    db.session.commit()
    assert result.balances == 4
    assert balances_by_period(db, dossier.id, "400000") == {date(2024, 1, 31): D("121.00"), date(2024, 2, 29): D("-21.00")}
    # a first sync on PostgreSQL: the sums go from the lines into the balances in one statement
    summed_in_place = [s for s in first if s.startswith("INSERT INTO period_balance") and "SELECT" in s]
    assert len(summed_in_place) == (db.engine.dialect.name == "postgresql")

    # unchanged lines: the derived balances are not rewritten
    with write_statements() as seen:
        again = write_records(db.session, link.id, records, balances_from_lines=True)
    assert again.changed is False and seen == []

    # a deleted line takes its amount out of the period's balance
    write_records(db.session, link.id, [DeletedRecord("L3"), DeletedRecord("L4")], balances_from_lines=True)
    db.session.commit()
    assert balances_by_period(db, dossier.id, "400000") == {date(2024, 1, 31): D("121.00")}
    assert balances_by_period(db, dossier.id, "550000") == {}


def test_without_the_option_lines_leave_balances_alone(db, dossier, connection, make_link, calendar_years):
    link = make_link(dossier, connection)
    calendar_years(dossier, 2024)
    write_records(db.session, link.id, [line("L1", date(2024, 1, 5), "400000", "121.00")])
    db.session.commit()
    assert balances_by_period(db, dossier.id, "400000") == {}


@pytest.mark.parametrize("extra", [
    {"description": "Tab\there, new\nline, back\\slash, quote ' \" and é", "dimensions": {"projet": "Été \t\\"},
     "modified_at": datetime(2024, 1, 5, 10, 0), "amount": D("-1234567.89")},
    {"description": "", "dimensions": {}, "modified_at": datetime(2024, 1, 5, 10, 0, 0, 123456), "amount": D("0.00")},
    {"description": "", "dimensions": None, "modified_at": None, "amount": D("0.01")},
])
def test_bulk_inserted_rows_are_stored_as_a_core_insert_stores_them(db, dossier, connection, make_link, extra):
    """insert_rows (COPY on PostgreSQL, raw executemany on SQLite) against SQLAlchemy's own insert."""
    from sqlalchemy import insert, text

    from app.services.bookkeeping import insert_rows

    link = make_link(dossier, connection)
    write_records(db.session, link.id, package_2024())
    model = db.session.execute(select(LedgerLine).where(LedgerLine.source_id == "L1")).scalar_one()
    base = {"dossier_id": dossier.id, "link_id": link.id, "account_id": model.account_id, "period_id": model.period_id,
            "booking_date": date(2024, 1, 5), "reference": "R", "journal": "J",
            "updated_at": datetime(2024, 2, 1, 8, 30, 15, 500), **extra}
    insert_rows(db.session, LedgerLine.__table__, [{**base, "source_id": "bulk"}])
    db.session.execute(insert(LedgerLine.__table__), [{**base, "source_id": "core"}])
    columns = "booking_date, amount, description, reference, journal, dimensions, modified_at, updated_at"
    stored = {source_id: row for source_id, *row in db.session.execute(
        text(f"SELECT source_id, {columns} FROM ledger_line WHERE source_id IN ('bulk', 'core')"))}
    assert stored["bulk"] == stored["core"]
    line = db.session.execute(select(LedgerLine).where(LedgerLine.source_id == "bulk")).scalar_one()
    assert (line.description, line.amount, line.modified_at) == (extra["description"], extra["amount"],
                                                                 extra["modified_at"])
