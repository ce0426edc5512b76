"""The dossier's Sync tab (/admin/dossier-sync/?id=) through the test client."""
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Connection, DossierLink, FiscalYear, PeriodBalance, SyncRun
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)
from tests.test_connection_tasks import forbid_connectors, queued_job_ids, run_queued_jobs, use_fake_connector

TB = b"Account;Name;Amount\n100000;Capital;-1.000,00\n550000;Bank;1.000,00\n"


@pytest.fixture
def world(app):
    world = build_world()
    spare = db.session.get(Connection, world.a_spare_connection)
    spare.references = [{"reference": "42", "name": "Grouped Company BV"}]
    for year in (2023, 2024):
        db.session.add(FiscalYear(dossier_id=world.a_grouped, start=date(year, 1, 1), end=date(year, 12, 31),
                                  origin="manual"))
    db.session.commit()
    return world


def tab(client, dossier_id):
    return client.get(f"/admin/dossier-sync/?id={dossier_id}")


def post(client, path, **form):
    return client.post(f"/admin/dossier-sync/{path}", data={"csrf_token": csrf_token(client), **form},
                       follow_redirects=True)


def links_of(dossier_id, active=True):
    db.session.expire_all()
    query = select(DossierLink).where(DossierLink.dossier_id == dossier_id)
    if active:
        query = query.where(DossierLink.ended_at.is_(None))
    return db.session.scalars(query.order_by(DossierLink.id)).all()


def test_the_tab_shows_set_up_for_a_manual_file_and_switch_for_a_synced_one(client, world):
    log_in(client, "admin")
    manual = tab(client, world.a_grouped).get_data(as_text=True)
    assert "Set up sync" in manual and "Keep the existing data and sync from a transfer date" in manual
    assert 'value="2023-01-01"' in manual and "Grouped Company BV" in manual
    assert 'id="upload-form"' in manual
    assert f'action="/oauth/re-establish/{world.a_grouped}"' in manual
    synced = tab(client, world.a_public).get_data(as_text=True)
    assert "Switch sync" in synced and "Revert to a manual file" in synced and "Company 1" in synced
    assert 'id="upload-form"' not in synced and "revert it to a manual file first" in synced


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_set_up_with_scenario_b_replace(client, world, role):
    log_in(client, role)
    response = post(client, "setup", id=world.a_grouped, scenario="replace",
                    connection_id=world.a_spare_connection, reference="42")
    assert "is set up; its first sync is queued" in response.get_data(as_text=True)
    [link] = links_of(world.a_grouped)
    assert (link.scenario, link.reference, link.reference_name, link.valid_from) == ("replace", "42",
                                                                                    "Grouped Company BV", None)
    assert db.session.scalar(select(SyncRun.trigger).where(SyncRun.link_id == link.id)) == "setup"


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_set_up_with_scenario_a_keep_from_a_transfer_date(client, world, role):
    log_in(client, role)
    post(client, "setup", id=world.a_grouped, scenario="keep", connection_id=world.a_spare_connection,
         reference="42", transfer_date="2024-01-01")
    [link] = links_of(world.a_grouped)
    assert (link.scenario, link.valid_from) == ("keep", date(2024, 1, 1))


def test_a_bad_transfer_date_shows_the_valid_dates_and_writes_nothing(client, world):
    log_in(client, "admin")
    response = post(client, "setup", id=world.a_grouped, scenario="keep", connection_id=world.a_spare_connection,
                    reference="42", transfer_date="2024-07-01")
    html = response.get_data(as_text=True)
    assert "2024-07-01 is not the first day" in html and "Valid transfer dates: 2023-01-01, 2024-01-01." in html
    assert links_of(world.a_grouped, active=False) == []
    assert db.session.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.dossier_id == world.a_grouped)) == 0


def test_a_company_not_in_the_connection_list_is_refused(client, world):
    log_in(client, "admin")
    response = post(client, "setup", id=world.a_grouped, scenario="replace",
                    connection_id=world.a_spare_connection, reference="99")
    assert "not in the list of Alpha spare connection" in response.get_data(as_text=True)
    assert links_of(world.a_grouped, active=False) == []


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_refresh_list_queues_a_job_and_the_tab_shows_the_companies_it_found(client, world, role, monkeypatch):
    log_in(client, role)
    with monkeypatch.context() as web:
        forbid_connectors(web)  # the click only queues the question to the package
        response = post(client, "refresh", id=world.a_grouped, connection_id=world.a_spare_connection)
        html = response.get_data(as_text=True)
    assert queued_job_ids() == [f"connection-references-{world.a_spare_connection}"]
    assert "the list is filled in when the answer comes" in html and "Asking Demo Books (sandbox) for its companies…" in html
    assert f'data-url="/admin/dossier-sync/references-task?id={world.a_grouped}&amp;connection_id={world.a_spare_connection}"' in html

    use_fake_connector(monkeypatch)
    run_queued_jobs()
    answer = client.get(f"/admin/dossier-sync/references-task?id={world.a_grouped}"
                        f"&connection_id={world.a_spare_connection}").get_json()
    assert (answer["state"], answer["ok"], answer["count"]) == ("done", True, 2)
    html = tab(client, world.a_grouped).get_data(as_text=True)  # after a reload, without JavaScript
    assert '<option value="R2">Company Two (R2)</option>' in html and "2 companies found." in html
    assert "Grouped Company BV" not in html  # the list was replaced by the package's answer


def test_switch_to_a_new_source_from_a_transfer_date(client, world):
    log_in(client, "staff")
    old = links_of(world.a_public)[0]
    response = post(client, "setup", id=world.a_public, scenario="switch", connection_id=world.a_spare_connection,
                    reference="42", transfer_date="2024-01-01")
    assert "The sync now comes from Alpha spare connection" in response.get_data(as_text=True)
    [new] = links_of(world.a_public)
    assert new.id != old.id and (new.scenario, new.valid_from) == ("switch", date(2024, 1, 1))
    assert db.session.get(DossierLink, old.id).ended_at is not None


def test_revert_to_manual_then_upload_through_the_form(client, world):
    log_in(client, "admin")
    refused = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_public, "kind": "trial_balance", "period_end": "2024-12-31",
        "file": (io.BytesIO(TB), "tb.csv")}, content_type="multipart/form-data", follow_redirects=True)
    assert "syncs from Alpha Demo Books" in refused.get_data(as_text=True)
    post(client, "setup", id=world.a_public, scenario="manual")
    assert links_of(world.a_public) == []
    assert len(links_of(world.a_public, active=False)) == 1  # ended link kept as history
    response = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_public, "kind": "trial_balance", "period_end": "2024-12-31",
        "file": (io.BytesIO(TB), "tb.csv")}, content_type="multipart/form-data", follow_redirects=True)
    assert "Trial balance at 2024-12-31 uploaded: 2 accounts" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PeriodBalance)
                             .where(PeriodBalance.dossier_id == world.a_public)) == 2


def test_an_invalid_upload_is_reported_and_writes_nothing(client, world):
    log_in(client, "staff")
    response = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "kind": "trial_balance", "period_end": "2024-12-31",
        "file": (io.BytesIO(b"account;amount\n100000;-10\n550000;abc\n"), "tb.csv")},
        content_type="multipart/form-data", follow_redirects=True)
    assert "line 3: amount &#39;abc&#39; is not a number" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PeriodBalance)) == 0


def test_stop_administration_sync(client, world, requests_mock):
    from tests.connectors.mocks import companies_house as house_mocks

    house_mocks.register(requests_mock, house_mocks.BASE_URL)  # the typed number is looked up before linking
    log_in(client, "admin")
    house = Connection(firm_id=world.alpha, package="companies_house", kind="administration", name="Companies House",
                       config={}, credentials={"api_key": "ch-live-key"})
    db.session.add(house)
    db.session.commit()
    post(client, "setup", id=world.a_grouped, connection_id=house.id, reference="9876543")  # typed without its 0
    [link] = links_of(world.a_grouped)
    assert link.kind == "administration" and link.reference == "09876543"
    assert "Stop administration sync" in tab(client, world.a_grouped).get_data(as_text=True)
    post(client, "stop-administration", id=world.a_grouped)
    assert links_of(world.a_grouped) == []


@pytest.mark.parametrize("role", ["external", "pulse", "support"])
def test_roles_without_setup_get_403(client, world, role):
    log_in(client, role)
    assert tab(client, world.a_public).status_code == 403
    response = client.post("/admin/dossier-sync/setup", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "scenario": "replace",
        "connection_id": world.a_spare_connection, "reference": "42"})
    assert response.status_code == 403
    assert links_of(world.a_grouped, active=False) == []
    assert post(client, "refresh", id=world.a_public, connection_id=world.a_connection).status_code == 403
    assert client.get(f"/admin/dossier-sync/references-task?id={world.a_public}"
                      f"&connection_id={world.a_connection}").status_code == 403
    assert queued_job_ids() == []


def test_another_firms_or_an_inaccessible_file_is_404(client, world):
    log_in(client, "admin")
    assert tab(client, world.b_grouped).status_code == 404
    response = client.post("/admin/dossier-sync/setup", data={
        "csrf_token": csrf_token(client), "id": world.b_grouped, "scenario": "replace",
        "connection_id": world.b_spare_connection, "reference": "42"})
    assert response.status_code == 404
    # another firm's connection on one's own file
    response = client.post("/admin/dossier-sync/setup", data={
        "csrf_token": csrf_token(client), "id": world.a_grouped, "scenario": "replace",
        "connection_id": world.b_spare_connection, "reference": "42"})
    assert response.status_code == 404
    assert links_of(world.b_grouped, active=False) == [] and links_of(world.a_grouped, active=False) == []


def test_staff_get_404_for_a_private_file_not_granted_to_them(client, world):
    log_in(client, "staff")
    assert tab(client, world.a_private).status_code == 404
    response = client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": world.a_private, "kind": "trial_balance", "period_end": "2024-12-31",
        "file": (io.BytesIO(TB), "tb.csv")}, content_type="multipart/form-data")
    assert response.status_code == 404


def test_a_post_without_csrf_is_400(client, world):
    log_in(client, "admin")
    response = client.post("/admin/dossier-sync/setup", data={
        "id": world.a_grouped, "scenario": "replace", "connection_id": world.a_spare_connection, "reference": "42"})
    assert response.status_code == 400
    assert links_of(world.a_grouped, active=False) == []
