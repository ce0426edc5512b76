"""The dossier page (/admin/dossier/?id=) through the test client, for every role."""
from datetime import date, datetime

import pytest
from rq.job import Job
from sqlalchemy import select

from app.extensions import db
from app.models import CompanyProfile, Connection, Dossier, DossierLink, Period, SyncRun
from app.redis_connection import redis_connection
from app.services.queues import JOB_SERIALIZER, sync_job_id
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

PROFILE = {
    "name": "ALPHA PUBLIC LIMITED", "registration_number": "09876543", "vat_number": None,
    "legal_form": "Private limited company", "status": "Active",
    "address": {"line_1": "1 Sandbox Street", "city": "London"}, "incorporation_date": "2015-02-10",
    "fiscal_year_end": "03-31",
    "officers": [{"name": "HUGHES, Megan", "role": "Director", "start": "2015-02-10", "end": None},
                 {"name": "PATEL, Owen", "role": "Secretary", "start": "2015-02-10", "end": "2019-01-31"}],
    "shareholders": [{"name": "Mr Thomas Price", "share": "50-75%", "start": "2015-03-01", "end": None}],
}


@pytest.fixture
def world(app):
    world = build_world()
    dossier = db.session.get(Dossier, world.a_public)
    connection = Connection(firm_id=world.alpha, package="companies_house", kind="administration",
                            name="Companies House", config={"base_url": "http://127.0.0.1:9/ch"},
                            credentials={"api_key": "ch-5ecret-key"})
    db.session.add(connection)
    db.session.flush()
    link = DossierLink(firm_id=world.alpha, dossier_id=dossier.id, connection_id=connection.id,
                       kind="administration", reference="09876543", reference_name="ALPHA PUBLIC LIMITED")
    db.session.add(link)
    db.session.flush()
    db.session.add(CompanyProfile(firm_id=world.alpha, dossier_id=dossier.id, link_id=link.id, version=1,
                                  data=PROFILE, content_hash="h1"))
    dossier.last_synced_at = datetime(2025, 1, 1, 2, 1)
    dossier.sync_status = "succeeded"
    db.session.add(Period(dossier_id=dossier.id, fiscal_year_id=world.a_year, start=date(2024, 1, 1),
                          end=date(2024, 1, 31)))
    db.session.commit()
    world.ids["a_admin_link"] = link.id
    return world


def page(client, dossier_id):
    return client.get(f"/admin/dossier/?id={dossier_id}")


def post(client, path, **form):
    return client.post(f"/admin/dossier/{path}", data={"csrf_token": csrf_token(client), **form})


def runs(dossier_id):
    db.session.expire_all()
    return db.session.scalars(select(SyncRun).where(SyncRun.dossier_id == dossier_id).order_by(SyncRun.id)).all()


@pytest.mark.parametrize("role, sync_button, adopt_button, sync_tab", [
    ("admin", True, True, True),
    ("staff", True, True, True),
    ("external", False, True, False),
    ("support", False, False, False),
])
def test_the_page_for_each_console_role(client, world, role, sync_button, adopt_button, sync_tab):
    html = page(log_in(client, role), world.a_public).get_data(as_text=True)
    assert 'id="dossier-name"' in html and "Alpha Public Ltd" in html
    # last successful sync under the name, in the firm's time zone (support, with no firm picked: UTC)
    assert ("2025-01-01 02:01 UTC" if role == "support" else "2025-01-01 03:01 CET") in html
    assert 'data-status="succeeded"' in html
    assert "New data from Companies House: 9 fields changed" in html
    assert ('id="sync-now"' in html) is sync_button
    assert ('id="admin-sync-now"' in html) is sync_button
    assert ('id="adopt-all"' in html) is adopt_button
    assert ("Use the data from Companies House sync" in html) is adopt_button
    assert ('id="sync-settings-link"' in html) is sync_tab
    assert "HUGHES, Megan" in html and "2019-01-31" in html and "Mr Thomas Price" in html
    assert f'data-run="{world.a_run}"' in html and "Alpha run" in html  # the sync history
    assert "<td>2024-01-01 &ndash; 2024-12-31</td><td>1</td>" in html  # fiscal year and its periods
    assert "ch-5ecret-key" not in html


def test_pulse_gets_403_and_anonymous_the_login_page(client, world):
    assert page(log_in(client, "pulse"), world.a_public).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    anonymous = page(client, world.a_public)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


@pytest.mark.parametrize("role, dossier", [
    ("admin", "b_public"),  # another firm's file
    ("staff", "a_private"),  # private, not granted
    ("external", "a_private"),
    ("admin", "missing"),
])
def test_dossiers_out_of_scope_answer_404(client, world, role, dossier):
    log_in(client, role)
    dossier_id = world.ids.get(dossier, 999999)
    assert page(client, dossier_id).status_code == 404
    assert client.get(f"/admin/dossier/progress?id={dossier_id}").status_code == 404
    assert post(client, "sync", id=dossier_id).status_code == 404
    assert post(client, "adopt", id=dossier_id).status_code == 404
    assert client.get("/admin/dossier/?id=not-a-number").status_code == 404


def test_sync_now_queues_a_manual_run_and_the_admin_arrows_sync_the_administration_link(client, world):
    log_in(client, "staff")
    before = len(runs(world.a_public))
    response = post(client, "sync", id=world.a_public)
    assert response.status_code == 302
    created = runs(world.a_public)[before:]
    assert [(r.trigger, r.status, r.link_id) for r in created] == [("manual", "queued", world.a_link)]
    assert created[0].triggered_by_id == world.user_staff

    post(client, "sync", id=world.a_public, link_id=world.a_admin_link)
    assert runs(world.a_public)[-1].link_id == world.a_admin_link
    # another dossier's link is refused
    assert post(client, "sync", id=world.a_public, link_id=world.b_link).status_code == 404


@pytest.mark.parametrize("role", ["external", "support"])
def test_sync_now_is_refused_on_the_server_for_roles_without_it(client, world, role):
    log_in(client, role)
    before = len(runs(world.a_public))
    assert post(client, "sync", id=world.a_public).status_code == 403
    assert len(runs(world.a_public)) == before


def test_posts_need_the_csrf_token(client, world):
    log_in(client, "admin")
    assert client.post("/admin/dossier/sync", data={"id": world.a_public}).status_code == 400
    assert client.post("/admin/dossier/adopt", data={"id": world.a_public}).status_code == 400


def test_adopt_one_field_then_all_and_the_banner_goes(client, world):
    log_in(client, "external")
    assert post(client, "adopt", id=world.a_public, field="name").status_code == 302
    db.session.expire_all()
    assert db.session.get(Dossier, world.a_public).name == "ALPHA PUBLIC LIMITED"
    assert "New data from Companies House: 8 fields changed" in page(client, world.a_public).get_data(as_text=True)

    post(client, "adopt", id=world.a_public)
    db.session.expire_all()
    dossier = db.session.get(Dossier, world.a_public)
    assert dossier.first_fiscal_year_end == date(2016, 3, 31)
    html = page(client, world.a_public).get_data(as_text=True)
    assert 'id="profile-banner"' not in html
    assert "version 1" in html  # the Company tab says where the values came from


def test_adopt_is_refused_for_support(client, world):
    log_in(client, "support")
    assert post(client, "adopt", id=world.a_public).status_code == 403
    db.session.expire_all()
    assert db.session.get(Dossier, world.a_public).adopted_profile == {}


def test_adopt_pulse_403_and_unknown_field_400(client, world):
    log_in(client, "admin")
    assert post(client, "adopt", id=world.a_public, field="password_hash").status_code == 400
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    log_in(client, "pulse")
    token = csrf_token(client)
    assert client.post("/admin/dossier/adopt", data={"csrf_token": token, "id": world.a_public}).status_code == 403


def test_progress_json_queued_then_running_from_the_job_meta(client, world):
    log_in(client, "external")
    idle = client.get(f"/admin/dossier/progress?id={world.a_public}").get_json()
    assert idle["active"] is False and idle["status"] == "succeeded"

    run = SyncRun(firm_id=world.alpha, dossier_id=world.a_public, link_id=world.a_link, status="queued")
    db.session.add(run)
    db.session.commit()
    queued = client.get(f"/admin/dossier/progress?id={world.a_public}").get_json()
    assert (queued["active"], queued["status"], queued["run_id"], queued["label"]) == (True, "queued", run.id, "Queued")

    run.status, run.progress_stream, run.progress_records = "running", "accounts", 100
    db.session.commit()
    job = Job.create("jobs.sync.run", args=(run.id,), id=sync_job_id(run.id), connection=redis_connection(),
                     serializer=JOB_SERIALIZER)
    job.meta["progress"] = {"stream": "ledger_lines", "records": 1500, "percent": 42}
    job.save()
    running = client.get(f"/admin/dossier/progress?id={world.a_public}").get_json()
    assert (running["status"], running["stream"], running["records"], running["percent"]) == \
        ("running", "ledger_lines", 1500, 42)


def test_the_files_list_links_to_the_dossier_page(client, world):
    html = log_in(client, "admin").get("/admin/dossiers/").get_data(as_text=True)
    assert f'href="/admin/dossier/?id={world.a_public}"' in html


def test_the_page_is_not_in_the_menu(client, world):
    html = log_in(client, "admin").get("/admin/").get_data(as_text=True)
    assert 'href="/admin/dossier/"' not in html


# -- Edit client -> Sync (issue #18 item 4) ---------------------------------------------------------


@pytest.mark.parametrize("role, dossier", [
    ("admin", "a_public"), ("staff", "a_public"), ("staff", "a_grouped"),
])
def test_edit_client_has_a_sync_tab_leading_to_the_set_up_flow(client, world, role, dossier):
    log_in(client, role)
    page = client.get(f"/admin/dossiers/edit/?id={world.ids[dossier]}").get_data(as_text=True)
    assert 'id="edit-sync-tab"' in page
    assert f'href="/admin/dossier-sync/?id={world.ids[dossier]}"' in page
    flow = client.get(f"/admin/dossier-sync/?id={world.ids[dossier]}").get_data(as_text=True)
    assert 'id="setup-form"' in flow  # the same set-up flow as the file page's Sync tab


@pytest.mark.parametrize("role", ["external", "support"])
def test_edit_client_and_its_sync_flow_are_refused_to_who_may_not_set_up(client, world, role):
    """External contributors and support cannot edit files nor set up their sync, on the server."""
    log_in(client, role)
    assert client.get(f"/admin/dossiers/edit/?id={world.a_public}").status_code == 403
    assert client.get(f"/admin/dossier-sync/?id={world.a_public}").status_code == 403


def test_edit_client_of_a_file_out_of_scope_answers_404(client, world):
    log_in(client, "staff")
    assert client.get(f"/admin/dossiers/edit/?id={world.a_private}").status_code == 404
    assert client.get(f"/admin/dossiers/edit/?id={world.b_public}").status_code == 404


def test_a_second_press_while_the_run_is_queued_answers_that_run_and_says_so(client, world):
    """Issue #18 item 8 (the browser journey is tests/browser/test_console_paths.py)."""
    log_in(client, "staff")
    before = len(runs(world.a_public))
    first = client.post("/admin/dossier/sync", data={"csrf_token": csrf_token(client), "id": world.a_public},
                        follow_redirects=True).get_data(as_text=True)
    assert "The sync is queued." in first
    second = client.post("/admin/dossier/sync", data={"csrf_token": csrf_token(client), "id": world.a_public},
                         follow_redirects=True).get_data(as_text=True)
    assert "A sync of this file is already under way." in second and "The sync is queued." not in second
    assert len(runs(world.a_public)) == before + 1
