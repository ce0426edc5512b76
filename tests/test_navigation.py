"""Issue #18, console look: the grouped menu per role, one heading per page, readable connection pages.

* The menu groups the screens (Clients, Synchronisations, Firm, Support); each role sees in it
  exactly the screens it may open (each entry answers 200), and a category with none of them
  is not shown.
* Every console screen an administrator opens has exactly one ``<h1>``.
* Connection forms save and go to the connection's page: no "Save and Add Another" or "Save
  and Continue Editing" (OAuth packages included). The connection's page shows its settings
  as labelled values (no JSON, never a secret), times without seconds, and no filter box.
"""
import re

import pytest

from app.extensions import db
from app.models import AuditEvent, Connection
from tests.console_world import SECRET_A, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 - autouse: a fresh `g` per request
from tests.test_pseudo_locale import screen_urls

MENUS = {
    "admin": {
        "Clients": ["Files", "Add new client", "File links", "Fiscal years"],
        "Synchronisations": ["Sync runs", "Connections", "Webhooks", "Webhook deliveries"],
        "Firm": ["Users", "Groups", "Firm", "API tokens", "Audit log"],
        "Support": ["System health"],
    },
    "support": {
        "Clients": ["Files", "File links", "Fiscal years"],
        "Synchronisations": ["Sync runs", "Connections"],
        "Firm": ["Firm", "Audit log"],
        "Support": ["System health"],
    },
    "creator": {"Clients": ["Files", "Add new client", "File links", "Fiscal years"], "Synchronisations": ["Sync runs"]},
    "staff": {"Clients": ["Files", "File links", "Fiscal years"], "Synchronisations": ["Sync runs"]},
    "external": {"Clients": ["Files", "File links", "Fiscal years"], "Synchronisations": ["Sync runs"]},
}


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html)).strip()


def menu(html):
    """``(top-level entries, {category: [(entry, url)]})`` of the page's main menu."""
    nav = re.search(r'<ul class="nav navbar-nav mr-auto" id="main-menu">(.*?)\n  </ul>', html, re.S).group(1)
    top = [text(entry) for entry in re.findall(r'<li class="nav-item(?: active)?"><a class="nav-link" [^>]*>(.*?)</a>', nav)]
    categories = {}
    for name, items in re.findall(r'data-toggle="dropdown"[^>]*>(.*?)</a>\s*<div class="dropdown-menu">(.*?)</div>', nav, re.S):
        categories[text(name)] = [(text(label), url) for url, label in
                                  re.findall(r'<a class="dropdown-item[^"]*" href="([^"]+)">(.*?)</a>', items, re.S)]
    return top, categories


@pytest.fixture
def world(db):
    return build_world()


@pytest.mark.parametrize("role", sorted(MENUS))
def test_each_role_sees_its_screens_grouped(client, world, role):
    log_in(client, role)
    top, categories = menu(client.get("/admin/").get_data(as_text=True))
    assert top == ["Dashboard"]
    assert {name: [label for label, _url in entries] for name, entries in categories.items()} == MENUS[role]
    for entries in categories.values():
        for label, url in entries:
            assert client.get(url).status_code == 200, (role, label, url)


def test_every_console_screen_has_one_heading(app, client, world):
    log_in(client, "admin")
    urls = screen_urls(app, world) + [f"/admin/connections/details/?id={world.a_connection}",
                                      f"/admin/dossiers/details/?id={world.a_public}",
                                      "/admin/connections/new/?package=demo", "/admin/groups/"]
    walked = 0
    for url in urls:
        response = client.get(url)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        walked += 1
        headings = re.findall(r"<h1[ >]", response.get_data(as_text=True))
        assert len(headings) == 1, (url, len(headings))
    assert walked > 20


def test_connection_forms_only_save_or_cancel(client, world):
    log_in(client, "admin")
    for url in ("/admin/connections/new/?package=demo", "/admin/connections/new/?package=demo_oauth",
                f"/admin/connections/edit/?id={world.a_connection}"):
        page = client.get(url).get_data(as_text=True)
        assert 'value="Save"' in page and "Cancel" in page, url
        assert "_add_another" not in page and "_continue_editing" not in page, url


def test_saving_a_connection_goes_to_its_page(client, world):
    log_in(client, "admin")
    answer = client.post(f"/admin/connections/edit/?id={world.a_connection}", data={
        "name": "Alpha books renamed", "base_url": "http://127.0.0.1:9/api", "csrf_token": csrf_token(client)})
    assert answer.status_code == 302
    assert answer.location.endswith(f"/admin/connections/details/?id={world.a_connection}")
    db.session.expire_all()
    assert db.session.get(Connection, world.a_connection).name == "Alpha books renamed"
    assert db.session.query(AuditEvent).filter_by(action="update", object_type="Connection").count() == 1


def test_the_connection_page_is_readable(client, world):
    log_in(client, "admin")
    page = client.get(f"/admin/connections/details/?id={world.a_connection}").get_data(as_text=True)
    shown = text(page)
    assert "Settings Base URL: http://127.0.0.1:9/api" in shown  # the form's label, not the JSON
    assert "base_url" not in page and SECRET_A not in page
    assert not re.search(r"\d\d:\d\d:\d\d", shown)  # no seconds, let alone microseconds
    assert re.search(r"Created \d{4}-\d\d-\d\d \d\d:\d\d", shown)
    assert 'id="fa_filter"' not in page  # no filter box over a dozen rows
    assert "Kind Accounting" in shown and "Level" not in shown

    listing = client.get("/admin/connections/").get_data(as_text=True)
    assert '"options": [["active", "Active"], ["needs_reconnect", "Needs reconnect"], ["disabled", "Disabled"]]' in listing
    assert text(listing).count("Accounting") >= 2  # each row's kind in words
