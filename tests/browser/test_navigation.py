"""Issue #18, grouped navigation, in Chromium at 1280x800 (the ``page`` fixture's viewport).

* The administrator's menu (Dashboard, Clients, Synchronisations, Firm, Support, and the firm,
  language, account and log-out controls) is one line: the navbar is less than two items high
  and every top-level entry sits on the same line.
* A screen is two clicks away: open the *Firm* dropdown, click *Users*, land on the Users list.
* An external contributor gets no *Firm* or *Support* category (none of their screens is in
  either), and their *Clients* dropdown lists what they may open.

The ``page`` fixture fails the test on any Content-Security-Policy violation (the dropdowns
work without inline scripts).
"""
from playwright.sync_api import expect

from tests.browser.firm_world import build_people, log_in, log_out, open_menu


def top_level_entries(page):
    return page.locator("#admin-navbar-collapse > ul.navbar-nav > li")


def test_the_menu_is_one_line_of_groups_and_each_role_sees_its_own(app, db, page, shots):
    people = build_people()
    log_in(page, people.email("admin"))

    navbar = page.locator("#admin-navbar-collapse")
    entries = top_level_entries(page)
    expect(navbar.locator(".dropdown-toggle").filter(has_text="Clients")).to_be_visible()
    item_height = page.locator("#admin-navbar-collapse .nav-link").first.bounding_box()["height"]
    assert navbar.bounding_box()["height"] < 2 * item_height, "the menu wraps onto a second line"
    tops = {round(entries.nth(i).bounding_box()["y"]) for i in range(entries.count())}
    assert len(tops) == 1, f"top-level entries on several lines: {sorted(tops)}"
    categories = [text.strip() for text in navbar.locator("#main-menu a.dropdown-toggle").all_inner_texts()]
    assert categories == ["Clients", "Synchronisations", "Firm", "Support"]

    open_menu(page, "Firm", "Users")
    page.wait_for_url("**/admin/users/")
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1")).to_have_text("Users")
    expect(page.locator("table.model-list")).to_contain_text(people.email("admin"))
    shots.take(page, "menu-users")

    log_out(page)
    log_in(page, people.email("external"))
    navbar = page.locator("#admin-navbar-collapse")
    categories = [text.strip() for text in navbar.locator("#main-menu a.dropdown-toggle").all_inner_texts()]
    assert categories == ["Clients", "Synchronisations"]
    navbar.get_by_role("button", name="Clients", exact=True).click()
    expect(navbar.locator(".dropdown-menu.show a")).to_have_text(["Files", "File links", "Fiscal years"])
