"""Setting up a sync over uploaded figures: the preview says what is kept and replaced, and the
set-up only happens once the administrator has ticked the explicit confirmation."""
from datetime import date

from playwright.sync_api import expect
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, Dossier, DossierLink, PeriodBalance
from tests.browser.firm_world import build_people, demo_books_connection, fresh, log_in
from tests.conftest import upload_monthly_balances


def manual_file_with_uploads(people):
    """A manual monthly file with uploaded balances for 2025 and for January and February 2026."""
    dossier = Dossier(firm_id=people.firm_id, name="Bakkerij Janssens", frequency="month")
    db.session.add(dossier)
    db.session.flush()
    upload_monthly_balances(dossier, until=date(2026, 2, 28))
    return dossier.id


def balance_count(dossier_id):
    fresh()
    return db.session.scalar(select(func.count()).select_from(PeriodBalance).where(PeriodBalance.dossier_id == dossier_id))


def test_the_preview_and_the_confirmation_come_before_uploaded_figures_are_replaced(app, sandbox, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    dossier_id = manual_file_with_uploads(people)
    log_in(page, people.email("admin"))

    page.goto(f"/admin/dossier-sync/?id={dossier_id}")
    page.locator("#scenario-keep").check()
    page.locator("#connection_id").select_option(str(books.id))
    page.locator("#reference").select_option("c-1003")
    page.locator("#transfer_date").select_option("2026-01-01")
    expect(page.locator("#history")).to_have_value("previous_year")
    page.locator("#setup-submit").click()

    preview = page.locator("#setup-preview")
    expect(preview).to_contain_text("Replaces 2 uploaded periods, Jan–Feb 2026, with the package's figures; "
                                    "the package may have none for them yet.")
    expect(preview).to_contain_text("Keeps 12 periods before January 1, 2026.")
    expect(page.locator("#uploads-warning")).to_contain_text("The uploaded figures of Jan–Feb 2026 will be deleted.")
    shots.take(page, "setup-preview")
    assert balance_count(dossier_id) == 28  # the preview wrote nothing

    page.locator("#setup-confirm").click()  # not ticked: the browser keeps the form
    expect(page.locator("#setup-preview")).to_be_visible()
    assert balance_count(dossier_id) == 28 and db.session.scalar(select(func.count()).select_from(DossierLink)) == 0

    page.locator("#replace_uploads").check()
    page.locator("#setup-confirm").click()
    expect(page.locator(".alert").filter(has_text="is set up; its first sync is queued")).to_be_visible()
    expect(page.locator("#current-links .fs-history")).to_contain_text("Previous year")
    assert balance_count(dossier_id) == 24  # 2025 kept, January and February 2026 replaced
    link = db.session.scalars(select(DossierLink)).one()
    assert (link.scenario, link.valid_from, link.history) == ("keep", date(2026, 1, 1), "previous_year")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.setup"))
    assert event.changes["confirmed"] is True and event.changes["preview"]["periods_replaced"] == 2
