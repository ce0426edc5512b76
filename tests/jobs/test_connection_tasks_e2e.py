"""End to end through a REAL worker against the sandbox: "Test connection" and "Refresh companies".

The console request only queues the job (the sandbox sees no call until a worker runs);
the page's poll endpoint answers queued, then done with the outcome; the pages show it.
"""
import pytest

from app.extensions import db
from app.models import Connection, ConnectionStatus, Dossier, Role
from tests.conftest import csrf_from, logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request

pytestmark = pytest.mark.slow

API_KEY = "demo-key"


@pytest.fixture
def admin(firm):
    return make_user("admin@alpha.test", firm, Role.ADMIN)


@pytest.fixture
def demo(app, firm, sandbox):
    def _make(api_key=API_KEY, name="Demo office"):
        row = Connection(firm_id=firm.id, package="demo", name=name, config={"base_url": f"{sandbox.url}/demo"},
                         credentials={"api_key": api_key})
        db.session.add(row)
        db.session.commit()
        return row
    return _make


def click(client, action, connection, url):
    return client.post("/admin/connections/action/", data={"action": action, "rowid": connection.id, "url": url,
                                                            "csrf_token": csrf_from(client.get(url))})


def poll(client, url):
    """What the page's script asks, and when the answer is final."""
    db.session.expire_all()  # the test's session outlives a request: forget what it read before the worker wrote
    answer = client.get(url)
    assert answer.status_code == 200, answer.status_code
    data = answer.get_json()
    return data if data["state"] in ("done", "failed") else None


def test_test_connection_and_refresh_companies_through_a_worker(client, admin, demo, sandbox, workers):
    connection = demo()
    details = f"/admin/connections/details/?id={connection.id}"
    check_url = f"/admin/connections/task/?id={connection.id}&kind=check"
    references_url = f"/admin/connections/task/?id={connection.id}&kind=references"
    logged_in(client, admin)
    before = sandbox.calls("/demo")
    assert click(client, "check", connection, details).status_code == 302
    assert click(client, "refresh_references", connection, details).status_code == 302
    assert sandbox.calls("/demo") == before  # the clicks asked nothing of the package
    page = client.get(details).get_data(as_text=True)
    assert "Testing connection…" in page and "Asking Demo Books (sandbox) for its companies…" in page
    assert client.get(check_url).get_json()["state"] == "queued"

    workers.start()
    checked = workers.wait_for(lambda: poll(client, check_url), what="the test of the connection")
    assert (checked["state"], checked["ok"], checked["mark"], checked["text"]) == ("done", True, "✓", "Connection works.")
    assert checked["message"].startswith("Connected to Demo Books") and "companies available" in checked["message"]
    refreshed = workers.wait_for(lambda: poll(client, references_url), what="the refresh of the companies")
    assert refreshed["state"] == "done" and refreshed["ok"] is True and refreshed["count"] >= 3
    assert {"c-1001", "c-1002", "c-1003"} <= {ref["reference"] for ref in refreshed["references"]}
    assert sandbox.calls("/demo") > before  # the worker asked

    page = client.get(details).get_data(as_text=True)  # a reload shows what the jobs stored
    assert "Connection works." in page and checked["message"] in page and "c-1002" in page
    assert API_KEY not in page
    db.session.expire_all()
    row = db.session.get(Connection, connection.id)
    assert row.last_check_ok is True and len(row.references) == refreshed["count"]


def test_a_refused_key_answers_the_cross_and_the_connection_needs_a_reconnect(client, firm, demo, sandbox,
                                                                             workers):
    connection = demo(api_key="not-the-key")
    dossier = Dossier(firm_id=firm.id, name="Bakery Janssens")
    db.session.add(dossier)
    db.session.commit()
    staff = make_user("staff@alpha.test", firm, Role.STAFF)  # sets up syncs; may not test firm connections
    logged_in(client, staff)
    tab = f"/admin/dossier-sync/?id={dossier.id}"
    answer = client.post("/admin/dossier-sync/refresh", data={"id": dossier.id, "connection_id": connection.id,
                                                              "csrf_token": csrf_from(client.get(tab))})
    assert answer.status_code == 302
    poll_url = f"/admin/dossier-sync/references-task?id={dossier.id}&connection_id={connection.id}"
    assert client.get(poll_url).get_json()["state"] == "queued"

    workers.start()
    refused = workers.wait_for(lambda: poll(client, poll_url), what="the refresh of the companies")
    assert (refused["state"], refused["ok"], refused["mark"]) == ("done", False, "✗")
    assert refused["text"] == "The list could not be refreshed." and refused["message"]
    assert "not-the-key" not in refused["message"]
    assert refused["status"] == ConnectionStatus.NEEDS_RECONNECT
    page = client.get(tab).get_data(as_text=True)  # a reload: the tab no longer offers the broken connection
    assert f'data-connection="{connection.id}"' not in page and 'id="no-connections"' in page


def test_saving_a_companies_house_key_tests_it_in_the_background(client, firm, admin, sandbox, workers):
    """Issue #18 item 5: a wrong key saved in the console is tested by a worker and not left Active;
    the "Refresh companies" that follows reports the refusal, not "0 companies found"."""
    logged_in(client, admin)
    new = "/admin/connections/new/?package=companies_house"
    answer = client.post(new, data={"csrf_token": csrf_from(client.get(new)), "name": "CH wrong key",
                                     "api_key": "not-the-key", "base_url": f"{sandbox.url}/companies-house"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    connection = db.session.scalar(db.select(Connection).where(Connection.name == "CH wrong key"))
    check_url = f"/admin/connections/task/?id={connection.id}&kind=check"
    assert client.get(check_url).get_json()["state"] == "queued"

    workers.start()
    checked = workers.wait_for(lambda: poll(client, check_url), what="the test after the save")
    assert (checked["state"], checked["ok"], checked["text"]) == ("done", False, "Test failed.")
    assert "API key is not valid" in checked["message"] and "not-the-key" not in checked["message"]
    assert checked["status"] == ConnectionStatus.NEEDS_RECONNECT and checked["last_check_at"] != "never"
    assert checked["time"] == f"tested at {checked['last_check_at']}"

    details = f"/admin/connections/details/?id={connection.id}"
    assert click(client, "refresh_references", connection, details).status_code == 302
    references_url = f"/admin/connections/task/?id={connection.id}&kind=references"
    refreshed = workers.wait_for(lambda: poll(client, references_url), what="the refresh of the companies")
    assert refreshed["ok"] is False and refreshed["text"] == "The list could not be refreshed."
    assert "API key is not valid" in refreshed["message"]
