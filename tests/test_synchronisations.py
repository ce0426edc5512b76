"""The firm's Synchronisations tab (the Connections screen): list, add by kind, rename, delete, reconnect, references."""
import pytest
from sqlalchemy import func, select

from app.models import Connection, ConnectionStatus, Dossier, DossierLink, Role
from tests.conftest import csrf_from, logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from tests.test_connection_tasks import forbid_connectors, queued_job_ids, run_queued_jobs

API_KEY = "demo-key"


@pytest.fixture
def admin(firm):
    return make_user("admin@alpha.test", firm, Role.ADMIN)


@pytest.fixture
def connection(db, firm, sandbox):
    row = Connection(firm_id=firm.id, package="demo", name="Demo office", config={"base_url": f"{sandbox.url}/demo"},
                     credentials={"api_key": API_KEY})
    db.session.add(row)
    db.session.commit()
    return row




def link(db, connection, name="Linked Ltd"):
    dossier = Dossier(firm_id=connection.firm_id, name=name)
    db.session.add(dossier)
    db.session.flush()
    db.session.add(DossierLink(firm_id=connection.firm_id, dossier_id=dossier.id, connection_id=connection.id,
                               reference="c-1001"))
    db.session.commit()
    return dossier


def test_the_list_shows_status_checks_and_linked_files(client, db, admin, connection):
    link(db, connection)
    link(db, connection, "Second Ltd")
    page = logged_in(client, admin).get("/admin/connections/").get_data(as_text=True)
    assert "Demo office" in page and "Demo Books" in page and 'data-status="active"' in page
    assert "never" in page  # last check
    assert ">2<" in page.replace(" ", "").replace("\n", "")  # two linked files
    assert API_KEY not in page


def test_adding_asks_the_kind_then_offers_only_that_kinds_packages(client, admin):
    logged_in(client, admin)
    accounting = client.get("/admin/connections/new/?kind=accounting").get_data(as_text=True)
    administration = client.get("/admin/connections/new/?kind=administration").get_data(as_text=True)
    assert 'data-package="exact_online_be"' in accounting and 'data-package="companies_house"' not in accounting
    assert 'data-package="companies_house"' in administration and 'data-package="exact_online_be"' not in administration
    assert 'data-package="xero"' not in accounting  # dossier-level packages are connected per client file
    oauth_form = client.get("/admin/connections/new/?package=demo_oauth").get_data(as_text=True)
    assert 'id="consent-note"' in oauth_form


def test_credentials_packages_are_saved_directly(client, db, admin, sandbox):
    logged_in(client, admin)
    url = "/admin/connections/new/?package=demo"
    client.post(url, data={"name": "Books", "base_url": f"{sandbox.url}/demo", "api_key": API_KEY,
                           "csrf_token": csrf_from(client.get(url))})
    row = db.session.scalars(select(Connection)).one()
    assert row.credentials == {"api_key": API_KEY} and row.status == ConnectionStatus.ACTIVE


def test_rename_keeps_the_row_and_its_links(client, db, admin, connection):
    dossier = link(db, connection)
    logged_in(client, admin)
    url = f"/admin/connections/edit/?id={connection.id}"
    client.post(url, data={"name": "Renamed office", "base_url": connection.config["base_url"], "api_key": "",
                           "csrf_token": csrf_from(client.get(url))})
    db.session.expire_all()
    row = db.session.get(Connection, connection.id)
    assert row.name == "Renamed office" and row.credentials == {"api_key": API_KEY}
    assert db.session.get(Dossier, dossier.id).active_link().connection_id == connection.id


def test_delete_is_refused_while_a_file_links_to_it(client, db, admin, connection):
    link(db, connection)
    logged_in(client, admin)
    client.post("/admin/connections/delete/", data={"id": connection.id, "csrf_token": csrf_from(client.get("/admin/connections/"))})
    assert db.session.scalar(select(func.count(Connection.id))) == 1


def test_delete_works_when_no_file_links_to_it(client, db, admin, connection):
    logged_in(client, admin)
    client.post("/admin/connections/delete/", data={"id": connection.id, "csrf_token": csrf_from(client.get("/admin/connections/"))})
    assert db.session.scalar(select(func.count(Connection.id))) == 0


def test_details_list_references_and_refresh_list_fills_them(client, db, admin, connection, monkeypatch):
    logged_in(client, admin)
    details = f"/admin/connections/details/?id={connection.id}"
    page = client.get(details).get_data(as_text=True)
    assert "Refresh list" in page and "None yet" in page
    with monkeypatch.context() as web:
        forbid_connectors(web)  # the click only queues a job
        answer = client.post("/admin/connections/action/", data={
            "action": "refresh_references", "rowid": connection.id, "url": details,
            "csrf_token": csrf_from(client.get(details))})
        assert answer.status_code == 302 and queued_job_ids() == [f"connection-references-{connection.id}"]
        page = client.get(details).get_data(as_text=True)
        assert "c-1001" not in page and "Asking Demo Books (sandbox) for its companies…" in page  # not asked yet
    run_queued_jobs()  # as a worker would, against the sandbox
    page = client.get(details).get_data(as_text=True)
    assert "c-1001" in page and "c-1002" in page and "companies found." in page and API_KEY not in page
    answer = client.get(f"/admin/connections/task/?id={connection.id}&kind=references").get_json()
    assert answer["state"] == "done" and {"c-1001", "c-1002"} <= {ref["reference"] for ref in answer["references"]}


def test_reconnect_button_only_for_needs_reconnect_and_admins(client, db, admin, firm, connection):
    connection.status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    page = logged_in(client, admin).get("/admin/connections/").get_data(as_text=True)
    assert f'action="/oauth/reconnect/{connection.id}"' in page
    support = make_user("support@firmsync.test", None, support=True)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/admin/"))})
    page = logged_in(client, support).get("/admin/connections/").get_data(as_text=True)
    assert "Demo office" in page and 'action="/oauth/reconnect/' not in page


def test_reconnect_of_a_credentials_package_goes_to_its_form(client, admin, connection):
    logged_in(client, admin)
    answer = client.post(f"/oauth/reconnect/{connection.id}", data={"csrf_token": csrf_from(client.get("/admin/"))})
    assert answer.location.endswith(f"/admin/connections/edit/?id={connection.id}")


def test_staff_see_no_synchronisations_tab(client, firm, connection):
    logged_in(client, make_user("staff@alpha.test", firm, Role.STAFF))
    assert client.get("/admin/connections/").status_code == 403
    assert client.post(f"/oauth/reconnect/{connection.id}", data={"csrf_token": csrf_from(client.get("/admin/"))}).status_code == 403


def test_the_file_list_offers_reconnect_for_its_broken_connection(client, db, admin, connection):
    dossier = link(db, connection)
    connection.status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    logged_in(client, admin)
    for url in ("/admin/dossiers/", f"/admin/dossiers/details/?id={dossier.id}"):
        assert f'action="/oauth/reconnect/{connection.id}"' in client.get(url).get_data(as_text=True)
    connection.status = ConnectionStatus.ACTIVE
    db.session.commit()
    assert 'action="/oauth/reconnect/' not in client.get("/admin/dossiers/").get_data(as_text=True)
