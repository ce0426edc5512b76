"""Journey 2: an administrator adds a client whose books are in Xero, through the wizard and Xero's consent page."""
from playwright.sync_api import expect
from sqlalchemy import select

from app.models import Dossier, RunStatus, SyncRun, Trigger
from tests.browser.firm_world import COMPANIES, build_people, fresh, log_in, open_menu

ORGANISATION = COMPANIES["c-1003"]  # the smallest sandbox company: its first sync is quick


def setup_run(db, dossier_id):
    fresh()
    run = db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id)).first()
    return run if run is not None and run.status in RunStatus.FINISHED else None


def test_admin_adds_a_xero_client_choosing_the_organisation(app, db, sandbox, workers, page, shots):
    people = build_people()
    workers.start(SANDBOX_URL=sandbox.url)

    log_in(page, people.email("admin"))
    open_menu(page, "Clients", "Add new client")
    page.get_by_label("Client name").fill("Northwind Trading")
    page.get_by_label("Client number").fill("GB-042")
    page.get_by_label("Country").select_option("GB")
    page.get_by_label("Currency").select_option("GBP")
    page.get_by_label("Directly from the accounting").check()
    page.get_by_label("Accounting package").select_option(label="Xero")
    shots.take(page, "wizard-details", publish="new-client-wizard")
    page.get_by_role("button", name="Save and continue").click()

    # Xero's consent page (the sandbox): every organisation of the grant is listed
    page.wait_for_url(f"{sandbox.url}/xero/**")
    for name in COMPANIES.values():
        expect(page.get_by_text(name)).to_be_visible()
    shots.take(page, "xero-consent")
    page.get_by_role("button", name="Allow access").click()

    # back in Firmsync: which organisation does this file sync with? (never the first silently)
    page.wait_for_url("**/oauth/choose")
    expect(page.get_by_role("heading", name="Which organisation?")).to_be_visible()
    choices = page.get_by_role("radio")
    expect(choices).to_have_count(len(COMPANIES))
    fresh()
    assert db.session.scalars(select(Dossier)).first() is None  # nothing exists before the choice
    page.locator("label", has_text=ORGANISATION).get_by_role("radio").check()
    shots.take(page, "choose-organisation", publish="choose-organisation")
    page.get_by_role("button", name="Continue").click()

    page.wait_for_url("**/admin/dossier/?id=*")
    expect(page.locator(".alert").filter(has_text="was created and is linked to Xero")).to_contain_text(ORGANISATION)
    shots.take(page, "client-created")

    fresh()
    dossier = db.session.scalars(select(Dossier)).one()
    assert (dossier.name, dossier.number, dossier.country, dossier.currency) == ("Northwind Trading", "GB-042", "GB", "GBP")
    link = dossier.active_link("accounting")
    assert link.reference_name == ORGANISATION and link.scenario == "replace"
    assert (link.connection.package, link.connection.level, link.connection.owner_dossier_id) == ("xero", "dossier", dossier.id)

    run = workers.wait_for(lambda: setup_run(db, dossier.id), timeout=90, what="the first Xero sync")
    assert (run.trigger, run.status) == (Trigger.SETUP, RunStatus.SUCCEEDED), run.message
    assert run.accounts_count > 0 and run.lines_inserted > 0

    page.goto(f"/admin/dossier/?id={dossier.id}")
    expect(page.locator("#dossier-status .fs-status")).to_have_attribute("data-status", RunStatus.SUCCEEDED)
    expect(page.locator("#sources")).to_contain_text(ORGANISATION)
    shots.take(page, "xero-client-synced", publish="dossier-page")
