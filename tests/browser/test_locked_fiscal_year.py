"""Journey 6: support staff lock a fiscal year, and the next sync leaves it exactly as it was."""
from datetime import date

from playwright.sync_api import expect
from sqlalchemy import select

from app.models import FiscalYear, LedgerLine, Period, PeriodBalance, RunStatus, SyncRun, Trigger
from app.services.syncs import request_sync
from tests.browser.firm_world import build_people, demo_books_connection, fresh, linked_dossier, log_in


def year_rows(db, year_id):
    """Every row of one fiscal year (the year, its periods, balances and ledger lines), comparable with ==."""
    fresh()
    periods = select(Period.id).where(Period.fiscal_year_id == year_id)
    tables = {
        "year": select(*FiscalYear.__table__.columns).where(FiscalYear.id == year_id),
        "periods": select(*Period.__table__.columns).where(Period.fiscal_year_id == year_id),
        "balances": select(*PeriodBalance.__table__.columns).where(PeriodBalance.period_id.in_(periods)),
        "lines": select(*LedgerLine.__table__.columns).where(LedgerLine.period_id.in_(periods)),
    }
    return {name: sorted(tuple(map(str, row)) for row in db.session.execute(query)) for name, query in tables.items()}


def line_in(db, dossier_id, start, end):
    """The source id of one ledger line of the dossier booked between ``start`` and ``end``."""
    return db.session.scalars(select(LedgerLine.source_id).where(
        LedgerLine.dossier_id == dossier_id, LedgerLine.booking_date.between(start, end)).limit(1)).one()


def finished(db, run_id):
    fresh()
    run = db.session.get(SyncRun, run_id)
    return run if run.status in RunStatus.FINISHED else None


def test_support_locks_a_fiscal_year_and_the_next_sync_leaves_it_alone(app, db, sandbox, workers, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    dossier_id = linked_dossier(people, books, "c-1003", "Northwind Trading").id
    workers.start(SANDBOX_URL=sandbox.url)
    first = request_sync(dossier_id, Trigger.MANUAL)
    assert workers.wait_for(lambda: finished(db, first.id), what="the first sync").status == RunStatus.SUCCEEDED
    fresh()
    years = {year.start.year: year.id for year in db.session.scalars(
        select(FiscalYear).where(FiscalYear.dossier_id == dossier_id))}
    assert set(years) == {2023, 2024}, years

    log_in(page, people.email("support"))
    page.goto("/admin/fiscal-years/")
    row = page.locator("table.model-list tbody tr").filter(has_text="2023-01-01")
    expect(row).to_contain_text("Northwind Trading")
    row.locator("input.action-checkbox").check()
    page.get_by_role("button", name="With selected").or_(page.get_by_role("link", name="With selected")).click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Lock the selected fiscal years against the sync?"
    page.get_by_role("link", name="Lock", exact=True).click()
    expect(page.locator(".alert").filter(has_text="1 fiscal year(s) locked")).to_be_visible()
    expect(row.locator("td.col-locked")).to_have_text("yes")
    expect(page.locator("table.model-list tbody tr").filter(has_text="2024-01-01").locator("td.col-locked")) \
        .to_have_text("no")
    shots.take(page, "fiscal-year-locked", publish="fiscal-year-locked")

    before = year_rows(db, years[2023])
    assert before["year"][0][list(FiscalYear.__table__.columns.keys()).index("locked")] in ("True", "1")
    assert before["lines"]
    # the package corrects one booking in each year (amount doubled, description marked)
    in_2023 = line_in(db, dossier_id, date(2023, 1, 1), date(2023, 12, 31))
    in_2024 = line_in(db, dossier_id, date(2024, 1, 1), date(2024, 12, 31))
    assert any(in_2023 in line for line in before["lines"])
    sandbox.mutate("c-1003", change_ids=[int(in_2023), int(in_2024)])

    second = request_sync(dossier_id, Trigger.MANUAL)
    done = workers.wait_for(lambda: finished(db, second.id), what="the sync after the lock")
    assert done.status == RunStatus.SUCCEEDED, done.message
    assert year_rows(db, years[2023]) == before
    corrected = db.session.scalars(select(LedgerLine).where(LedgerLine.dossier_id == dossier_id,
                                                            LedgerLine.source_id == in_2024)).one()
    assert corrected.description.endswith("(corrected)")  # the open year did take the correction

    page.goto(f"/admin/dossier/?id={dossier_id}")
    page.get_by_role("tab", name="Fiscal years").click()
    years_table = page.locator("#fiscal-years")
    expect(years_table.locator("tr").filter(has_text="2023-01-01")).to_contain_text("yes")
    expect(years_table.locator("tr").filter(has_text="2024-01-01")).to_contain_text("no")
    shots.take(page, "locked-year-after-sync")
