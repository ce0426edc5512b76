"""Journeys 4 and 5: what an external contributor and a pulse user can reach, in a real browser."""
from playwright.sync_api import expect

from app.extensions import db
from app.models import RunStatus, User
from tests.browser.firm_world import (
    SYNC_FORMS, build_people, demo_books_connection, linked_dossier, log_in, sync_in_this_process,
)


def test_an_external_contributor_sees_only_the_granted_file_and_no_sync_controls(app, sandbox, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    granted = linked_dossier(people, books, "c-1003", "Northwind Trading Ltd", number="GB-007")
    hidden = linked_dossier(people, books, "c-1001", "Bakkerij De Gouden Korst", number="BE-001")
    granted.users.append(db.session.get(User, people.users["external"]))
    db.session.commit()
    granted_id, hidden_id = granted.id, hidden.id

    log_in(page, people.email("external"))
    page.goto("/admin/dossiers/")
    files = page.locator("table.model-list tbody")
    expect(files.get_by_role("link", name="Northwind Trading Ltd", exact=True)).to_be_visible()
    assert files.get_by_text("Bakkerij De Gouden Korst").count() == 0
    # no sync controls: no bulk action, no per-row sync arrows
    assert page.get_by_text("Resync selected").count() == 0
    assert page.locator(SYNC_FORMS).count() == 0 and page.get_by_title("Sync now").count() == 0
    shots.take(page, "external-file-list", publish="external-file-list")

    page.locator("a.fs-dossier-link", has_text="Northwind Trading Ltd").click()
    page.wait_for_url(f"**/admin/dossier/?id={granted_id}")
    assert page.locator("#dossier-name").inner_text().endswith("Northwind Trading Ltd")
    assert page.locator(SYNC_FORMS).count() == 0 and page.get_by_title("Sync now").count() == 0
    assert page.locator("#sync-settings-link").count() == 0
    shots.take(page, "external-dossier-page")

    for url in (f"/admin/dossier/?id={hidden_id}", f"/admin/dossiers/details/?id={hidden_id}",
                f"/admin/dossiers/edit/?id={hidden_id}"):
        response = page.goto(url)
        assert response.status in (403, 404), url
        assert "Bakkerij De Gouden Korst" not in page.content()
    shots.take(page, "external-refused")


def test_a_pulse_user_lands_on_the_portal_and_cannot_reach_the_console(app, sandbox, page, shots):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    mine = linked_dossier(people, books, "c-1003", "Northwind Trading Ltd")
    linked_dossier(people, books, "c-1001", "Bakkerij De Gouden Korst")
    mine.users.append(db.session.get(User, people.users["pulse"]))
    db.session.commit()
    assert sync_in_this_process(mine.id).status == RunStatus.SUCCEEDED

    landed = log_in(page, people.email("pulse"))
    assert landed.endswith("/portal/")
    card = page.locator(".card").filter(has=page.get_by_role("heading", name="Northwind Trading Ltd"))
    expect(card).to_be_visible()
    expect(card).to_contain_text("Revenue")  # the key figures of the synced file
    assert page.get_by_text("Bakkerij De Gouden Korst").count() == 0
    shots.take(page, "pulse-portal", publish="client-portal")

    for url in ("/admin/", "/admin/dossiers/", f"/admin/dossier/?id={mine.id}", "/admin/connections/"):
        response = page.goto(url)
        assert response.status == 403, url
        assert "Northwind Trading Ltd" not in page.content()
    shots.take(page, "pulse-console-refused")
