"""Issue #18, "Look and language", in Chromium: console error pages and the revert confirmation.

* A screen a role may not open, and a file that does not exist, answer the console's own page
  (navbar, one heading, a way back) in the user's language, within the Content-Security-Policy
  (the ``page`` fixture fails on any violation);
* "Revert to a manual file" asks first: dismissing the question keeps the file linked.
"""
from playwright.sync_api import expect

from app.models import DossierLink
from tests.browser.firm_world import build_people, demo_books_connection, fresh, linked_dossier, log_in


def test_error_pages_are_console_pages_in_the_users_language(app, db, page):
    people = build_people()
    log_in(page, people.email("staff"))
    page.locator("#language-picker").click()
    page.get_by_role("button", name="Français").click()
    page.wait_for_load_state()

    response = page.goto("/admin/groups/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1#error-403")).to_have_text("Non autorisé")
    expect(page.locator("#current-user")).to_be_visible()  # the console's navbar, not a bare error

    response = page.goto("/admin/dossier/?id=999999")
    assert response.status == 404
    expect(page.locator("h1#error-404")).to_have_text("Introuvable")
    page.get_by_role("link", name="Retour au tableau de bord").click()
    page.wait_for_url("**/admin/")


def test_revert_to_manual_asks_before_it_acts(app, db, sandbox, page):
    people = build_people()
    books = demo_books_connection(people, sandbox)
    dossier_id = linked_dossier(people, books, "c-1001", "Gouden Korst 2025").id
    log_in(page, people.email("admin"))
    page.goto(f"/admin/dossier-sync/?id={dossier_id}")

    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("#revert-button").click()
    assert questions and questions[0].startswith("Revert this file to a manual file?")
    fresh()
    assert db.session.query(DossierLink).filter_by(dossier_id=dossier_id, ended_at=None).count() == 1
