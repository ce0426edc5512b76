"""The "Add new client" wizard (admin_views/new_client.py): manual files and firm-level connections.

The dossier-level packages (consent pages) are covered in tests/test_oauth_flow.py.
"""
import pytest
from sqlalchemy import func, select

from app.models import (
    AuditEvent,
    Connection,
    ConnectionStatus,
    Dossier,
    DossierLink,
    Role,
    SyncRun,
    Trigger,
)
from tests.conftest import csrf_from, logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from tests.test_connection_tasks import forbid_connectors, queued_job_ids, run_queued_jobs

REFERENCES = [{"reference": "c-1001", "name": "Bakery Janssens"}, {"reference": "c-1003", "name": "Garage Peeters"}]


@pytest.fixture
def admin(firm):
    return make_user("admin@alpha.test", firm, Role.ADMIN)


@pytest.fixture
def demo_connection(db, firm, sandbox):
    connection = Connection(firm_id=firm.id, package="demo", name="Demo office", config={"base_url": f"{sandbox.url}/demo"},
                            credentials={"api_key": "demo-key"}, references=REFERENCES)
    db.session.add(connection)
    db.session.commit()
    return connection




def details(client, **values):
    return {"name": "Garage Peeters", "number": "P-7", "country": "be", "currency": "eur", "frequency": "quarter",
            "csrf_token": csrf_from(client.get("/admin/new-client/")), **values}


def test_the_form_groups_connections_and_packages(client, admin, demo_connection):
    page = logged_in(client, admin).get("/admin/new-client/").get_data(as_text=True)
    assert "Where do you want to get the data from?" in page
    assert "Directly from the accounting" in page and "Manual" in page
    assert '<optgroup label="Through one of your firm&#39;s connections">' in page or "Through one of your firm" in page
    assert f'value="connection:{demo_connection.id}"' in page
    assert 'value="package:xero"' in page and 'value="package:quickbooks"' in page
    assert 'value="package:companies_house"' not in page  # administration packages are not an accounting source


def test_manual_creates_the_file_only(client, db, admin):
    logged_in(client, admin)
    answer = client.post("/admin/new-client/", data=details(client, source="manual"))
    dossier = db.session.scalars(select(Dossier)).one()
    assert answer.location.endswith(f"/admin/dossier/?id={dossier.id}")  # the file page
    assert (dossier.country, dossier.currency, dossier.frequency) == ("BE", "EUR", "quarter")
    assert dossier.links == [] and db.session.scalar(select(func.count(SyncRun.id))) == 0


def test_invalid_details_are_shown_on_the_fields(client, db, admin):
    logged_in(client, admin)
    page = client.post("/admin/new-client/", data=details(client, name="", country="Belgium", source="manual"))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "is not a country Firmsync knows" in text
    assert db.session.scalar(select(func.count(Dossier.id))) == 0


def test_a_firm_level_connection_asks_the_company_then_links_and_queues(client, db, admin, demo_connection):
    logged_in(client, admin)
    step2 = client.post("/admin/new-client/", data=details(client, source="direct", package=f"connection:{demo_connection.id}"))
    page = step2.get_data(as_text=True)
    assert step2.status_code == 200 and "Garage Peeters (c-1003)" in page and "Refresh list" in page
    assert db.session.scalar(select(func.count(Dossier.id))) == 0

    done = client.post("/admin/new-client/reference/", data=details(
        client, source="direct", package=f"connection:{demo_connection.id}", reference="c-1003"))
    dossier = db.session.scalars(select(Dossier)).one()
    assert done.location.endswith(f"/admin/dossier/?id={dossier.id}")  # the file page, with the run's progress
    link = db.session.scalars(select(DossierLink)).one()
    assert (link.dossier_id, link.connection_id, link.reference, link.scenario) == (
        dossier.id, demo_connection.id, "c-1003", "replace")
    run = db.session.scalars(select(SyncRun)).one()
    assert run.trigger == Trigger.SETUP and run.link_id == link.id
    landing = client.get(done.location).get_data(as_text=True)
    assert 'id="sync-progress"' in landing and 'data-active="yes"' in landing  # the set-up run's live progress
    assert "the first sync is queued" in landing


def test_refresh_list_queues_a_job_and_the_list_comes_when_it_is_done(client, db, admin, demo_connection, monkeypatch):
    demo_connection.references = []
    db.session.commit()
    logged_in(client, admin)
    with monkeypatch.context() as web:
        forbid_connectors(web)  # the click only queues the question to the package
        page = client.post("/admin/new-client/reference/", data=details(
            client, source="direct", package=f"connection:{demo_connection.id}", refresh="1")).get_data(as_text=True)
    assert queued_job_ids() == [f"connection-references-{demo_connection.id}"]
    assert "Asking Demo Books (sandbox) for its companies…" in page and 'data-active="yes"' in page
    assert f'data-url="/admin/new-client/references-task?connection_id={demo_connection.id}"' in page
    assert 'name="reload"' in page and "(c-1002)" not in page  # "Show the list", for browsers without JavaScript

    run_queued_jobs()  # as a worker would, against the sandbox
    answer = client.get(f"/admin/new-client/references-task?connection_id={demo_connection.id}").get_json()
    assert answer["state"] == "done" and answer["ok"] is True
    assert {r["reference"] for r in answer["references"]} >= {"c-1001", "c-1002", "c-1003"}
    shown = client.post("/admin/new-client/reference/", data=details(
        client, source="direct", package=f"connection:{demo_connection.id}", reload="1")).get_data(as_text=True)
    assert "(c-1002)" in shown and "companies found." in shown and "Choose the company" not in shown
    assert queued_job_ids() == [] and db.session.scalar(select(func.count(Dossier.id))) == 0


def test_refresh_list_is_for_those_who_create_files(client, db, firm, demo_connection):
    logged_in(client, make_user("staff@alpha.test", firm, Role.STAFF))  # may not create files
    answer = client.post("/admin/new-client/reference/", data={
        "name": "Garage Peeters", "country": "BE", "currency": "EUR", "frequency": "month", "source": "direct",
        "package": f"connection:{demo_connection.id}", "refresh": "1", "csrf_token": csrf_from(client.get("/admin/"))})
    assert answer.status_code == 403 and queued_job_ids() == []
    assert client.get(f"/admin/new-client/references-task?connection_id={demo_connection.id}").status_code == 403


def test_a_reference_outside_the_list_is_refused(client, db, admin, demo_connection):
    logged_in(client, admin)
    page = client.post("/admin/new-client/reference/", data=details(
        client, source="direct", package=f"connection:{demo_connection.id}", reference="c-9999"))
    assert "Choose the company of this client." in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Dossier.id))) == 0


def test_a_connection_needing_reconnect_cannot_be_used(client, db, admin, demo_connection):
    demo_connection.status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    logged_in(client, admin)
    answer = client.post("/admin/new-client/reference/", data=details(
        client, source="direct", package=f"connection:{demo_connection.id}", reference="c-1003"))
    assert "must be reconnected" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Dossier.id))) == 0


def test_another_firms_connection_answers_404(client, db, admin, other_firm):
    theirs = Connection(firm_id=other_firm.id, package="demo", name="Theirs", config={}, credentials={}, references=REFERENCES)
    db.session.add(theirs)
    db.session.commit()
    logged_in(client, admin)
    answer = client.post("/admin/new-client/reference/", data=details(
        client, source="direct", package=f"connection:{theirs.id}", reference="c-1003"))
    assert answer.status_code == 404
    assert db.session.scalar(select(func.count(Dossier.id))) == 0


def test_a_creator_gets_access_to_the_file_they_create(client, db, firm):
    creator = make_user("creator@alpha.test", firm, Role.STAFF, can_create_files=True, multi_file_access=False)
    logged_in(client, creator)
    client.post("/admin/new-client/", data=details(client, source="manual"))
    dossier = db.session.scalars(select(Dossier)).one()
    assert creator in dossier.users
    assert client.get(f"/admin/dossiers/details/?id={dossier.id}").status_code == 200


def test_a_company_another_file_uses_warns_before_the_file_is_created(client, db, admin, demo_connection):
    """Issue #18: the wizard warns, like the Sync tab, before a second file is fed by one company."""
    logged_in(client, admin)
    first = client.post("/admin/new-client/reference/", data=details(
        client, source="direct", package=f"connection:{demo_connection.id}", reference="c-1003"))
    assert first.status_code == 302  # no other file yet: created at once
    warned = client.post("/admin/new-client/reference/", data=details(
        client, name="Garage Peeters bis", source="direct", package=f"connection:{demo_connection.id}",
        reference="c-1003"))
    page = warned.get_data(as_text=True)
    assert warned.status_code == 200 and 'id="duplicate-warning"' in page
    assert "Garage Peeters (c-1003) is already linked to file ‘Garage Peeters’." in page
    assert 'name="duplicate_confirmed" value="1"' in page and 'name="name" value="Garage Peeters bis"' in page
    assert db.session.scalar(select(func.count(Dossier.id))) == 1  # nothing created before the answer

    done = client.post("/admin/new-client/reference/", data=details(
        client, name="Garage Peeters bis", source="direct", package=f"connection:{demo_connection.id}",
        reference="c-1003", duplicate_confirmed="1"))
    second = db.session.scalars(select(Dossier).where(Dossier.name == "Garage Peeters bis")).one()
    assert done.location.endswith(f"/admin/dossier/?id={second.id}")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.duplicate_company_confirmed"))
    assert event.dossier_id == second.id and "Garage Peeters" in event.summary
