"""Journey 1: an administrator connects Exact Online, sets up a client file's sync and watches it run.

Exact Online (BE) is added through the sandbox's consent page; the client file is created by
the "Add new client" wizard as a manual file, gets its fiscal years (written through the data
layer: only support may create fiscal years in the console), and is linked on its Sync tab
with scenario (A) "keep the existing data and sync from a transfer date". The first sync and
a "Sync now" run through a real worker while the page shows the progress; the trial balance
then shows the synced figures.
"""
from datetime import date

from playwright.sync_api import expect
from sqlalchemy import func, select

from app.models import Connection, Dossier, LedgerLine, RunStatus, Scenario, SyncRun, Trigger
from tests.browser.firm_world import COMPANIES, add_fiscal_years, build_people, fresh, log_in, open_menu

COMPANY = COMPANIES["c-1003"]
TRANSFER_DATE = date(2024, 1, 1)
#: every sandbox call to Exact's data API waits this long (only so the running state stays visible)
SLOW_CALL_SECONDS = 1.5


def runs_of(db, dossier_id):
    fresh()
    return db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id).order_by(SyncRun.id)).all()


def all_finished(db, dossier_id, count):
    runs = runs_of(db, dossier_id)
    return runs if len(runs) == count and all(run.status in RunStatus.FINISHED for run in runs) else None


def add_exact_connection(page, sandbox, shots):
    """Synchronisations > Connections > Create > Accounting > Exact Online (BE) > form > Exact's consent page > back."""
    open_menu(page, "Synchronisations", "Connections")
    page.get_by_role("link", name="Create").click()
    page.locator("select#kind").select_option("accounting")
    page.locator("select#package").select_option(label="Exact Online (BE)")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Name").fill("Exact Online office")
    page.get_by_label("Exact Online address").fill(f"{sandbox.url}/exact-online")
    page.get_by_label("Client ID (apps.exactonline.com)").fill("exact-sandbox-client")
    page.get_by_label("Client secret").fill("exact-sandbox-secret")
    shots.take(page, "connection-form", publish="connection-form")
    page.get_by_role("button", name="Save", exact=True).click()

    page.wait_for_url(f"{sandbox.url}/exact-online/**")
    shots.take(page, "exact-consent")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url("**/admin/connections/details/**")
    expect(page.locator(".alert").filter(has_text="is connected to Exact Online")).to_be_visible()
    expect(page.locator("#references")).to_contain_text(COMPANY)
    shots.take(page, "connection-added", publish="connection-details")


def test_admin_connects_exact_sets_up_a_file_with_a_transfer_date_and_syncs(app, db, sandbox, workers, page, shots):
    people = build_people()
    workers.start(SANDBOX_URL=sandbox.url)

    log_in(page, people.email("admin"))
    add_exact_connection(page, sandbox, shots)
    fresh()
    connection = db.session.scalars(select(Connection)).one()
    division = next(ref["reference"] for ref in connection.references if ref["name"] == COMPANY)

    # a manual client file from the wizard; its fiscal years come from the data layer
    open_menu(page, "Clients", "Add new client")
    page.get_by_label("Client name").fill("Northwind Trading")
    page.get_by_label("Client number").fill("GB-007")
    page.get_by_label("Manual").check()
    page.get_by_role("button", name="Save and continue").click()
    expect(page.locator(".alert").filter(has_text="was created")).to_be_visible()
    fresh()
    dossier_id = db.session.scalars(select(Dossier.id)).one()
    add_fiscal_years(dossier_id, 2023, 2024)

    # the file's page, then its Sync tab: scenario (A) from 2024-01-01
    open_menu(page, "Clients", "Files")
    page.get_by_role("link", name="Northwind Trading", exact=True).click()
    page.wait_for_url(f"**/admin/dossier/?id={dossier_id}")
    page.locator("#sync-settings-link").click()
    page.get_by_label("Keep the existing data and sync from a transfer date").check()
    page.get_by_label("Connection", exact=True).select_option(label="Exact Online office (Exact Online (BE))")
    page.get_by_label("Company", exact=True).select_option(division)
    page.get_by_label("Transfer date", exact=True).select_option(TRANSFER_DATE.isoformat())
    shots.take(page, "sync-setup-keep", publish="sync-setup")
    sandbox.fault("slow", path="/exact-online/api/v1/", count=4, delay=SLOW_CALL_SECONDS)
    page.get_by_role("button", name="Set up sync").click()
    expect(page.locator(".alert").filter(has_text="is set up; its first sync is queued")).to_be_visible()

    # back on the file: the progress bar while the worker syncs, then "Synced"
    page.get_by_role("link", name="Back to the file").click()
    status = page.locator("#dossier-status .fs-status")
    expect(page.locator("#sync-progress .fs-progress-bar")).to_be_visible(timeout=30_000)
    expect(page.locator("#sync-progress .fs-progress-text")).to_contain_text("Syncing")
    shots.take(page, "sync-progress", publish="sync-progress")
    expect(status).to_have_attribute("data-status", RunStatus.SUCCEEDED, timeout=60_000)
    expect(page.locator("#sync-progress .fs-progress-bar")).to_be_hidden()

    # "Sync now" queues a second run, which the page follows to the end too
    page.reload()
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".alert").filter(has_text="The sync is queued")).to_be_visible()
    runs = workers.wait_for(lambda: all_finished(db, dossier_id, 2), timeout=60, what="the setup and manual runs")
    assert [(run.trigger, run.status) for run in runs] == [(Trigger.SETUP, RunStatus.SUCCEEDED),
                                                           (Trigger.MANUAL, RunStatus.SUCCEEDED)], \
        [run.message for run in runs]
    expect(status).to_have_attribute("data-status", RunStatus.SUCCEEDED, timeout=30_000)

    fresh()
    link = db.session.get(Dossier, dossier_id).active_link("accounting")
    assert (link.scenario, link.valid_from, link.reference) == (Scenario.KEEP, TRANSFER_DATE, division)
    lines = db.session.execute(select(func.count(), func.min(LedgerLine.booking_date))
                               .where(LedgerLine.dossier_id == dossier_id)).one()
    assert lines[0] > 0 and lines[1] >= TRANSFER_DATE  # nothing before the transfer date came from the sync

    page.reload()
    page.get_by_role("tab", name="Sync history").click()
    history = page.locator("#sync-history")
    expect(history.locator("tr[data-run]")).to_have_count(2)
    expect(history).to_contain_text("Setup")
    expect(history).to_contain_text("Sync now")
    shots.take(page, "sync-history", publish="sync-history")

    page.get_by_role("tab", name="Figures").click()
    trial_balance = page.locator("#trial-balance")
    expect(trial_balance).to_be_visible()
    expect(trial_balance.locator("tbody tr").first).to_be_visible()
    expect(page.locator("#trial-balance-totals")).to_have_attribute("data-balanced", "yes")
    shots.take(page, "trial-balance", publish="trial-balance")
