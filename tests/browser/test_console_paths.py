"""Issue #18 items 4, 6, 7, 8 and 9 in Chromium: the paths an accountant takes through the console.

* Edit client -> Sync -> scenario -> company -> a warning that another file already uses that
  company -> "Link anyway" -> the file is linked and the audit log says so (items 4 and 9);
* support staff pick one firm: the dashboard and the Files list (with its Firm column) show that
  firm's files, and the choice is kept while they move around (item 6);
* the Figures tab and the portal open on the latest year with figures (not a newer empty one),
  with the previous year beside it (item 7);
* "Sync now" pressed twice quickly, on the file page and with the list's arrow, makes one run; the
  second press answers that run (item 8). No worker runs here: the run stays queued, which is
  exactly the moment a second press must not queue another one.
"""
import re
from datetime import datetime, time, timedelta
from decimal import Decimal

from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import (
    Account, AuditEvent, Dossier, DossierLink, Firm, FiscalYear, Period, PeriodBalance, RunStatus, SyncRun, Trigger,
    User,
)
from app.models.base import utcnow
from tests.browser.firm_world import (
    COMPANIES, SYNC_FORMS, add_fiscal_years, build_people, demo_books_connection, fresh, linked_dossier, log_in,
)

#: what a sync-now press answers: a new run, or the one already queued or running
ANSWERED = re.compile("The sync is queued.|A sync of this file is already under way.")


def test_edit_client_sync_warns_about_a_company_another_file_uses(app, db, sandbox, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    existing = linked_dossier(people, books, "c-1001", "Gouden Korst 2025").id
    manual = Dossier(firm_id=people.firm_id, name="Gouden Korst (new file)", frequency="month")
    db.session.add(manual)
    db.session.commit()
    add_fiscal_years(manual.id, 2024)

    log_in(page, people.email("admin"))
    page.goto("/admin/dossiers/")
    row = page.locator("table.model-list tbody tr").filter(has=page.get_by_role("link", name=manual.name, exact=True))
    row.locator("a[title='Edit Record']").click()
    page.locator("#edit-sync-tab").click()  # Edit client -> Sync
    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/dossier-sync/?id={manual.id}")
    page.locator("#scenario-replace").check()
    page.locator("#connection_id").select_option(str(books.id))
    page.locator("#reference").select_option("c-1001")
    page.locator("#setup-submit").click()

    warning = page.locator("#duplicate-warning")
    expect(warning).to_contain_text(f"{COMPANIES['c-1001']} (c-1001) is already linked to file ‘Gouden Korst 2025’")
    shots.take(page, "duplicate-company-warning")
    fresh()
    assert db.session.scalars(select(DossierLink).where(DossierLink.dossier_id == manual.id)).first() is None

    page.locator("#duplicate-confirm").click()
    expect(page.locator(".alert").filter(has_text="is set up; its first sync is queued")).to_be_visible()
    fresh()
    [link] = db.session.scalars(select(DossierLink).where(DossierLink.dossier_id == manual.id)).all()
    assert (link.reference, link.scenario) == ("c-1001", "replace")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.duplicate_company_confirmed"))
    assert event.dossier_id == manual.id and event.changes["other_files"] == [existing]


def test_support_picks_one_firm_for_the_dashboard_and_the_files_list(app, db, sandbox, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    alpha_file = linked_dossier(people, books, "c-1001", "Alpha client")
    alpha_file.sync_status = RunStatus.FAILED
    beta = Firm(name="Beta Boekhouding")
    db.session.add(beta)
    db.session.flush()
    db.session.add_all([Dossier(firm_id=beta.id, name="Beta client one", frequency="month"),
                        Dossier(firm_id=beta.id, name="Beta client two", frequency="month")])
    db.session.commit()

    log_in(page, people.email("support"))
    page.goto("/admin/")
    expect(page.locator("#tile-failed")).to_have_attribute("data-count", "1")
    page.locator("#firm-picker-firm").select_option(label="Beta Boekhouding")  # submits on change
    expect(page.locator("#firm-picker-firm")).to_have_value(str(beta.id))
    expect(page.locator("#tile-failed")).to_have_attribute("data-count", "0")
    expect(page.locator("#status-counts tr[data-status='never'] td").last).to_have_text("2")
    shots.take(page, "support-dashboard-one-firm")

    page.goto("/admin/dossiers/")  # the choice is kept in the session
    rows = page.locator("table.model-list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.model-list thead")).to_contain_text("Firm")
    expect(rows.first).to_contain_text("Beta Boekhouding")
    expect(page.get_by_role("link", name="Alpha client", exact=True)).to_have_count(0)
    shots.take(page, "support-files-one-firm")

    page.locator("#firm-picker-firm").select_option(label="All firms")
    expect(page.locator("table.model-list tbody tr")).to_have_count(3)


def _books(dossier_id, year_amounts):
    """Two accounts and one period per year with the given sales (credit) and bank (debit); committed."""
    sales = Account(dossier_id=dossier_id, number="7000", name="Sales", kind="income")
    bank = Account(dossier_id=dossier_id, number="5500", name="Bank", kind="asset")
    db.session.add_all([sales, bank])
    db.session.flush()
    for year in db.session.scalars(select(FiscalYear).where(FiscalYear.dossier_id == dossier_id)):
        period = Period(dossier_id=dossier_id, fiscal_year_id=year.id, start=year.start, end=year.start + timedelta(30))
        db.session.add(period)
        db.session.flush()
        amount = year_amounts.get(year.start.year)
        if amount is not None:
            db.session.add_all([
                PeriodBalance(dossier_id=dossier_id, account_id=sales.id, period_id=period.id, amount=-Decimal(amount)),
                PeriodBalance(dossier_id=dossier_id, account_id=bank.id, period_id=period.id, amount=Decimal(amount)),
            ])
    db.session.commit()


def test_figures_and_portal_open_on_the_latest_year_with_figures_and_show_the_year_before(app, db, sandbox, page):
    people = build_people()
    dossier = Dossier(firm_id=people.firm_id, name="Comparatives Ltd", frequency="month", currency="EUR")
    db.session.add(dossier)
    dossier.users.append(db.session.get(User, people.users["pulse"]))  # the pulse user's portal shows it
    db.session.commit()
    this_year = utcnow().year
    add_fiscal_years(dossier.id, this_year - 2, this_year - 1, this_year)  # this year: opened, still empty
    _books(dossier.id, {this_year - 2: "800.00", this_year - 1: "1250.00"})

    log_in(page, people.email("admin"))
    page.goto(f"/admin/dossier/?id={dossier.id}&tab=figures")
    expect(page.locator("#figures-year option:checked")).to_contain_text(str(this_year - 1))
    bank = page.locator("#trial-balance tr[data-account='5500']")
    expect(bank).to_contain_text("1,250.00")
    expect(page.locator("#comparative-year")).to_contain_text("Previous year")
    expect(bank.locator(".fs-comparative")).to_have_text("800.00")

    page.context.clear_cookies()
    log_in(page, people.email("pulse"))
    card = page.locator(f".dossier-card[data-dossier-id='{dossier.id}']")
    expect(card.locator("[data-year='current']")).to_contain_text(str(this_year - 1))
    expect(card.locator("[data-figure='revenue']")).to_contain_text("1,250.00")
    expect(card.locator("[data-previous='revenue']")).to_contain_text("800.00")


def test_two_quick_presses_of_sync_now_make_one_run(app, db, sandbox, page, shots):
    from jobs.nightly import fan_out

    people = build_people()
    books = demo_books_connection(people, sandbox)
    dossier = linked_dossier(people, books, "c-1003", "Northwind Trading")
    link_id = dossier.active_link().id
    other_link_id = linked_dossier(people, books, "c-1001", "Zuiderzee Bakery").active_link().id

    def manual_runs():
        fresh()
        return db.session.scalars(select(SyncRun).where(SyncRun.link_id == link_id, SyncRun.trigger == Trigger.MANUAL)
                                  ).all()

    log_in(page, people.email("staff"))
    page.goto(f"/admin/dossier/?id={dossier.id}")
    page.locator("#sync-now").dblclick()  # two presses as quick as a hand makes them
    expect(page.locator(".alert").filter(has_text=ANSWERED)).to_be_visible()
    assert len(manual_runs()) == 1
    page.locator("#sync-now").click()  # and one more while that run is still queued
    expect(page.locator(".alert").filter(has_text="A sync of this file is already under way.")).to_be_visible()
    shots.take(page, "second-press-same-run")
    [run] = manual_runs()
    assert run.status == RunStatus.QUEUED

    page.goto("/admin/dossiers/")  # the list's sync arrow, twice
    arrow = page.locator(SYNC_FORMS).filter(has=page.locator(f"button[data-dossier='{dossier.id}']")).locator("button")
    arrow.click()
    expect(page.locator(".alert").filter(has_text="already under way")).to_be_visible()
    page.goto("/admin/dossiers/")
    arrow.dblclick()
    expect(page.locator(".alert").filter(has_text="already under way")).to_be_visible()
    assert [r.id for r in manual_runs()] == [run.id]

    # the run finishes at 14:00; the fan-out a minute later (the firm's nightly time has passed) gives
    # this link no "Nightly" run, while the file that was not synced today gets one
    finished = datetime.combine(utcnow().date(), time(14, 0))
    synced = db.session.get(SyncRun, run.id)
    synced.status, synced.finished_at = RunStatus.SUCCEEDED, finished
    db.session.commit()
    fan_out(now=finished + timedelta(minutes=1))
    fresh()
    nightly = db.session.scalars(select(SyncRun.link_id).where(SyncRun.trigger == Trigger.NIGHTLY)).all()
    assert nightly == [other_link_id]
