"""A manual file in a New York firm: its upload shows as "Last uploaded" in the firm's time zone,
and classifying its uploaded accounts several at a time splits the chart's income and expenses."""
import re

from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Dossier, Firm
from app.services import fiscal_years
from tests.browser.firm_world import add_fiscal_years, build_people, fresh, log_in

TRIAL_BALANCE = (b"Account,Name,Debit,Credit\n"
                 b"100000,Capital,,1000.00\n"
                 b"550000,Bank,1500.00,\n"
                 b"604000,Purchases,300.00,\n"
                 b"700000,Sales,,800.00\n")


def test_an_uploaded_file_says_when_in_the_firms_zone_and_its_accounts_get_kinds(app, page, tmp_path):
    people = build_people()
    db.session.get(Firm, people.firm_id).timezone = "America/New_York"
    dossier = Dossier(firm_id=people.firm_id, name="Bakkerij Janssens", country="BE", frequency="month")
    db.session.add(dossier)
    db.session.commit()
    dossier_id = dossier.id
    add_fiscal_years(dossier_id, 2026)
    fiscal_years.ensure_periods(db.session, db.session.get(Dossier, dossier_id))
    db.session.commit()
    csv = tmp_path / "tb.csv"
    csv.write_bytes(TRIAL_BALANCE)

    log_in(page, people.email("admin"))
    page.goto(f"/admin/dossier-sync/?id={dossier_id}")
    page.locator("#kind-trial_balance").check()
    page.locator("#period_end").select_option("2026-01-31")
    page.locator("#upload-form input[type=file]").set_input_files(str(csv))
    page.locator("#upload-form button[type=submit]").first.click()
    page.wait_for_load_state()

    fresh()
    uploaded_at = db.session.scalars(select(AuditEvent.created_at).where(
        AuditEvent.dossier_id == dossier_id, AuditEvent.action == "data.upload_trial_balance")).one()
    page.goto(f"/admin/dossier/?id={dossier_id}&tab=figures")
    expect(page.locator("#dossier-status")).to_contain_text("Last uploaded")
    expect(page.locator("#last-upload-time")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T$"))
    shown = page.locator("#last-upload-time").inner_text()
    hours_behind = (uploaded_at.hour - int(shown[11:13])) % 24
    assert hours_behind in (4, 5), (uploaded_at, shown)  # New York: UTC-5 in winter, UTC-4 in summer

    result = page.locator("#figures-chart rect.fs-result[data-period='2026-01-31']")
    expect(result).to_have_attribute("data-value", "0.00")  # every uploaded account is "other": flat
    form = page.locator("#classify-accounts-form")
    expect(form.locator("tr[data-account='700000'] .fs-suggested-kind")).to_have_text("Income")
    form.locator("#classify-kind").select_option("suggested")
    form.get_by_role("button", name="Classify the ticked accounts").click()
    expect(page.locator(".alert").filter(has_text="4 accounts changed kind.")).to_be_visible()
    expect(page.locator("#figures-chart rect.fs-result[data-period='2026-01-31']")).to_have_attribute(
        "data-value", "500.00")  # sales 800 - purchases 300
    expect(page.locator("#trial-balance tbody[data-kind='income']")).to_contain_text("700000 Sales")
    expect(page.locator("#trial-balance tbody[data-kind='expense']")).to_contain_text("604000 Purchases")
