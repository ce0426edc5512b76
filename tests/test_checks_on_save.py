"""Checks on save (issue #18, item 5): credentials are tested after a save, an empty list is not
a success after a refusal, and a typed reference is checked with the register before linking.

Console requests only queue the test (:func:`forbid_connectors` while they run); the queued
job then runs in this process through an RQ burst (:func:`run_queued_jobs`) against
Companies House answered by ``requests_mock``. The real worker against the sandbox is in
``tests/jobs/test_connection_tasks_e2e.py``.
"""
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Connection, ConnectionStatus, DossierLink
from app.services import connections as service
from app.services.connections import CHECK, task_job_id
from app.services.links import SetupError
from app.services.typed_references import UNVERIFIED, confirm_typed_reference
from tests.connectors.mocks import companies_house as house
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)
from tests.test_connection_tasks import forbid_connectors, queued_job_ids, run_queued_jobs

SEARCH = f"{house.BASE_URL}/search/companies"
UNKNOWN = "01234567"


@pytest.fixture
def world(app):
    return build_world()


def refuse_key(requests_mock):
    requests_mock.get(SEARCH, status_code=401, json={"error": "Invalid Authorization"})
    requests_mock.get(f"{house.BASE_URL}/company/{house.NUMBER}", status_code=401, json={"error": "Invalid Authorization"})


def save_house(client, key="wrong-key", name="Companies House"):
    return client.post("/admin/connections/new/?package=companies_house", data={
        "csrf_token": csrf_token(client), "name": name, "api_key": key, "base_url": house.BASE_URL})


def house_connection(world, name="Companies House"):
    db.session.expire_all()
    return db.session.scalar(select(Connection).where(Connection.firm_id == world.alpha, Connection.name == name))


def details(client, connection):
    return client.get(f"/admin/connections/details/?id={connection.id}").get_data(as_text=True)


def test_a_refused_key_saved_in_the_console_is_tested_and_not_left_active(client, world, requests_mock, monkeypatch):
    log_in(client, "admin")
    with monkeypatch.context() as web:
        forbid_connectors(web)  # the save only queues the test
        assert save_house(client).status_code == 302
        connection = house_connection(world)
        assert task_job_id(CHECK, connection.id) in queued_job_ids()
        page = details(client, connection)
    assert "Testing connection…" in page and "tested at" not in page
    assert requests_mock.call_count == 0

    refuse_key(requests_mock)
    run_queued_jobs()
    connection = house_connection(world)
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT and connection.last_check_ok is False
    assert "API key is not valid" in connection.last_check_message and connection.last_check_at is not None
    page = details(client, connection)
    assert "Test failed." in page and "API key is not valid" in page and "wrong-key" not in page
    assert "tested at " in page
    assert client.get(f"/admin/connections/task/?id={connection.id}&kind=check").get_json()["status"] == \
        ConnectionStatus.NEEDS_RECONNECT


def test_a_working_key_is_confirmed_and_a_new_name_alone_is_not_retested(client, world, requests_mock, monkeypatch):
    house.register(requests_mock, house.BASE_URL)
    log_in(client, "admin")
    save_house(client, key="good-key")
    run_queued_jobs()
    connection = house_connection(world)
    assert connection.status == ConnectionStatus.ACTIVE and connection.last_check_ok is True
    assert "Connection works." in details(client, connection)

    with monkeypatch.context() as web:
        forbid_connectors(web)
        form = {"csrf_token": csrf_token(client), "name": "CH renamed", "api_key": "", "base_url": house.BASE_URL}
        assert client.post(f"/admin/connections/edit/?id={connection.id}", data=form).status_code == 302
        assert queued_job_ids() == []  # only the name changed
        form = {**form, "api_key": "another-key"}
        assert client.post(f"/admin/connections/edit/?id={connection.id}", data=form).status_code == 302
        assert queued_job_ids() == [task_job_id(CHECK, connection.id)]
    requested = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "connection.check_requested"))
    assert len(list(requested)) == 2  # the first save and the new key


def test_refresh_list_after_a_refused_key_reports_the_refusal_not_zero_companies(world, requests_mock):
    refuse_key(requests_mock)
    connection = Connection(firm_id=world.alpha, package="companies_house", kind="administration",
                            name="CH", config={"base_url": house.BASE_URL}, credentials={"api_key": "wrong-key"})
    db.session.add(connection)
    db.session.commit()
    count, error = service.refresh_references(connection)
    assert count is None and "API key is not valid" in error
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT and connection.references_refreshed_at is None


def link_house(client, world, connection, reference):
    return client.post("/admin/dossier-sync/setup", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "scenario": "replace",
        "connection_id": connection.id, "reference": reference}, follow_redirects=True)


def active_links(dossier_id):
    db.session.expire_all()
    return db.session.scalars(select(DossierLink).where(DossierLink.dossier_id == dossier_id,
                                                        DossierLink.ended_at.is_(None))).all()


@pytest.fixture
def house_row(world):
    connection = Connection(firm_id=world.alpha, package="companies_house", kind="administration", name="CH",
                            config={"base_url": house.BASE_URL}, credentials={"api_key": "good-key"})
    db.session.add(connection)
    db.session.commit()
    return connection


def test_an_unknown_register_number_is_refused_in_the_form_and_no_link_is_made(client, world, house_row,
                                                                              requests_mock):
    requests_mock.get(f"{house.BASE_URL}/company/{UNKNOWN}", status_code=404,
                      json={"errors": [{"error": "company-profile-not-found"}]})
    log_in(client, "admin")
    page = link_house(client, world, house_row, UNKNOWN).get_data(as_text=True)
    assert f"Companies House has no company with number {UNKNOWN}." in page
    assert active_links(world.a_grouped) == []


def test_an_unreachable_register_lets_the_number_through_with_a_warning(world, house_row, requests_mock):
    requests_mock.get(f"{house.BASE_URL}/company/{UNKNOWN}", status_code=503, json={"error": "down"})
    found = confirm_typed_reference(house_row, f" {UNKNOWN} ")
    assert found.reference == UNKNOWN and found.details == {"unverified": str(UNVERIFIED)}
    assert house_row.status == ConnectionStatus.ACTIVE


def test_the_form_links_an_unchecked_number_and_shows_the_warning(client, world, house_row, requests_mock):
    requests_mock.get(f"{house.BASE_URL}/company/{UNKNOWN}", status_code=503, json={"error": "down"})
    log_in(client, "admin")
    page = link_house(client, world, house_row, UNKNOWN).get_data(as_text=True)
    assert "saved without being checked" in page
    assert [link.reference for link in active_links(world.a_grouped)] == [UNKNOWN]


def test_an_unreachable_register_still_refuses_a_refused_key(world, house_row, requests_mock):
    refuse_key(requests_mock)
    with pytest.raises(SetupError, match="API key is not valid"):
        confirm_typed_reference(house_row, house.NUMBER)
