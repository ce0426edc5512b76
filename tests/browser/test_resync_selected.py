"""Journey 3: a staff contributor selects three files in the list and runs "Resync selected"."""
from playwright.sync_api import expect
from sqlalchemy import select

from app.models import RunStatus, SyncRun, Trigger
from tests.browser.firm_world import (
    SYNC_FORMS, build_people, demo_books_connection, finished_runs, fresh, linked_dossier, log_in,
)

CHOSEN = {"Bakkerij De Gouden Korst": "c-1001", "Northwind Trading": "c-1003", "Northwind Export": "c-1003"}


def test_staff_resync_three_selected_files(app, db, sandbox, workers, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    chosen = {name: linked_dossier(people, books, company, name).id for name, company in CHOSEN.items()}
    left_alone = linked_dossier(people, books, "c-1001", "Zuiderzee Bakery").id
    workers.start(SANDBOX_URL=sandbox.url)

    log_in(page, people.email("staff"))
    page.goto("/admin/dossiers/")
    rows = page.locator("table.model-list tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator(SYNC_FORMS).first).to_be_visible()  # staff do get sync controls (external users do not)
    for name in CHOSEN:
        rows.filter(has=page.get_by_role("link", name=name, exact=True)).locator("input.action-checkbox").check()
    shots.take(page, "three-files-selected")

    page.get_by_role("button", name="With selected").or_(page.get_by_role("link", name="With selected")).click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Queue a sync for every selected file?"
    page.get_by_role("link", name="Resync selected").click()
    expect(page.locator(".alert").filter(has_text="3 syncs queued")).to_be_visible()
    shots.take(page, "resync-queued", publish="resync-selected")

    runs = workers.wait_for(lambda: finished_runs(chosen.values()), timeout=90, what="the three bulk syncs")
    assert {run.dossier_id for run in runs} == set(chosen.values())
    assert all(run.trigger == Trigger.BULK and run.status == RunStatus.SUCCEEDED for run in runs), \
        [(run.dossier_id, run.status, run.message) for run in runs]
    assert all(run.triggered_by_id == people.users["staff"] for run in runs)
    fresh()
    assert db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == left_alone)).first() is None

    page.goto("/admin/runs/")
    run_rows = page.locator("table.model-list tbody tr")
    expect(run_rows).to_have_count(3)
    for name in CHOSEN:
        row = run_rows.filter(has_text=name)
        expect(row).to_contain_text("Resync selected")
        expect(row.locator(".fs-status")).to_have_attribute("data-status", RunStatus.SUCCEEDED)
    shots.take(page, "bulk-runs-finished", publish="sync-runs")

    page.goto("/admin/dossiers/")
    for name in CHOSEN:
        row = rows.filter(has=page.get_by_role("link", name=name, exact=True))
        expect(row.locator(".fs-status")).to_have_attribute("data-status", RunStatus.SUCCEEDED)
    expect(rows.filter(has=page.get_by_role("link", name="Zuiderzee Bakery")).locator(".fs-status")) \
        .not_to_have_attribute("data-status", RunStatus.SUCCEEDED)
    shots.take(page, "files-synced", publish="file-list")
