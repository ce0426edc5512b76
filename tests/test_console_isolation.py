"""Firm isolation and dossier access in the console.

An administrator of firm A must not read or touch firm B's rows by any route: lists,
detail and edit by id, delete by id, action ids, exports and forged ids in form posts.
Inside a firm, staff do not see private files they were not granted, and external
contributors see only the files granted to them (directly or through a group).
"""
from types import SimpleNamespace

import pytest

from app.extensions import db
from app.models import Connection, Dossier, Firm, Group, Membership, SyncRun
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)
from tests.test_connection_tasks import forbid_connectors, queued_job_ids

#: screen -> the key of firm B's row in the world
B_ROWS = {
    "dossiers": "b_public", "links": "b_link", "runs": "b_run", "fiscal-years": "b_year",
    "connections": "b_connection", "users": "membership_admin_b", "groups": "b_group", "firms": "beta",
    "audit": "b_event",
}
EDITABLE_BY_ADMIN = ("dossiers", "connections", "users", "groups", "firms")
MODELS = {"dossiers": Dossier, "connections": Connection, "users": Membership, "groups": Group, "firms": Firm}


def body(response):
    text = response.get_data(as_text=True)
    response.close()
    return text


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def requested(monkeypatch):
    calls = []

    def request_syncs(dossier_ids, trigger, actor=None):
        calls.extend(dossier_ids)
        return [SimpleNamespace(id=i) for i in dossier_ids], []

    monkeypatch.setattr("app.services.syncs.request_syncs", request_syncs)
    return calls


@pytest.mark.parametrize("screen", B_ROWS)
def test_lists_show_no_row_of_another_firm(client, world, screen):
    log_in(client, "admin")
    page = body(client.get(f"/admin/{screen}/"))
    assert "Alpha" in page or screen in ("users", "groups", "fiscal-years", "links", "runs")
    assert "Beta" not in page and "beta.test" not in page


@pytest.mark.parametrize("screen", B_ROWS)
def test_detail_and_edit_by_id_of_another_firm_is_not_found(client, world, screen):
    log_in(client, "admin")
    target = getattr(world, B_ROWS[screen])
    assert client.get(f"/admin/{screen}/details/?id={target}").status_code == 404
    if screen in EDITABLE_BY_ADMIN:
        assert client.get(f"/admin/{screen}/edit/?id={target}").status_code == 404


@pytest.mark.parametrize("screen", EDITABLE_BY_ADMIN)
def test_edit_and_delete_posts_on_another_firm_change_nothing(client, world, screen):
    log_in(client, "admin")
    token = csrf_token(client)
    target = getattr(world, B_ROWS[screen])
    model = MODELS[screen]
    before = {k: v for k, v in vars(db.session.get(model, target)).items() if not k.startswith("_")}
    edit = client.post(f"/admin/{screen}/edit/?id={target}", data={"name": "Hijacked", "csrf_token": token})
    delete = client.post(f"/admin/{screen}/delete/", data={"id": str(target), "csrf_token": token})
    assert edit.status_code == 404
    assert delete.status_code == (403 if screen == "firms" else 404)  # firms are never deleted in the console
    db.session.expire_all()
    row = db.session.get(model, target)
    assert row is not None
    assert {k: getattr(row, k) for k in before} == before


def test_action_ids_of_another_firm_are_ignored(client, world, requested, monkeypatch):
    forbid_connectors(monkeypatch)
    log_in(client, "admin")
    token = csrf_token(client)
    client.post("/admin/dossiers/action/", data={"action": "resync", "rowid": [str(world.b_public)], "csrf_token": token})
    for name in ("check", "refresh_references"):
        client.post("/admin/connections/action/", data={"action": name, "rowid": [str(world.b_connection)],
                                                         "csrf_token": token})
    client.post("/admin/dossiers/action/", data={"action": "delete", "rowid": [str(world.b_public)], "csrf_token": token})
    assert requested == []
    assert queued_job_ids() == []  # no test or refresh of firm B's connection was queued
    for kind in ("check", "references"):  # nor can its state be read
        assert client.get(f"/admin/connections/task/?id={world.b_connection}&kind={kind}").status_code == 404
    db.session.expire_all()
    assert db.session.get(Connection, world.b_connection).last_check_at is None
    assert db.session.get(Dossier, world.b_public) is not None


def test_resync_queues_only_own_dossiers_with_a_sync(client, world, requested):
    log_in(client, "admin")
    token = csrf_token(client)
    ids = [str(world.a_public), str(world.a_private), str(world.b_public)]
    response = client.post("/admin/dossiers/action/", data={"action": "resync", "rowid": ids, "csrf_token": token},
                           follow_redirects=True)
    assert sorted(requested) == sorted([world.a_public, world.a_private])  # the fake queues all it is asked for
    assert "2 syncs queued." in body(response)  # b_public is not among the actor's files: never even counted


@pytest.mark.parametrize("screen", ("dossiers", "runs", "audit"))
def test_exports_hold_no_row_of_another_firm(client, world, screen):
    log_in(client, "admin")
    csv = body(client.get(f"/admin/{screen}/export/csv/"))
    assert "Alpha" in csv
    assert "Beta" not in csv


def test_forged_user_and_group_ids_are_rejected_in_dossier_form(client, world):
    log_in(client, "admin")
    token = csrf_token(client)
    for field, value in (("users", world.user_admin_b), ("groups", world.b_group)):
        response = client.post("/admin/dossiers/new/", data={
            "name": f"Forged {field}", "country": "BE", "currency": "EUR", "frequency": "month",
            field: [str(value)], "csrf_token": token,
        })
        assert response.status_code == 200, "the form must come back with an error"
        assert "Not a valid choice" in body(response)
        assert db.session.query(Dossier).filter_by(name=f"Forged {field}").count() == 0


def test_forged_member_id_is_rejected_in_group_form(client, world):
    log_in(client, "admin")
    response = client.post("/admin/groups/new/", data={
        "name": "Forged group", "members": [str(world.user_staff_b)], "csrf_token": csrf_token(client),
    })
    assert response.status_code == 200
    assert db.session.query(Group).filter_by(name="Forged group").count() == 0


def test_forged_dossier_id_is_rejected_in_fiscal_year_form_of_support_user(client, world):
    """Support may reach every firm, but not an id that does not exist."""
    log_in(client, "support")
    response = client.post("/admin/fiscal-years/new/", data={
        "dossier": "999999", "start": "2030-01-01", "end": "2030-12-31", "csrf_token": csrf_token(client),
    })
    assert response.status_code == 200
    assert "Not a valid choice" in body(response)


def test_staff_without_grant_does_not_see_private_dossier(client, world):
    log_in(client, "staff")
    page = body(client.get("/admin/dossiers/"))
    assert "Alpha Public Ltd" in page and "Alpha Grouped Ltd" in page
    assert "Alpha Private Ltd" not in page
    assert client.get(f"/admin/dossiers/details/?id={world.a_private}").status_code == 404
    assert client.get(f"/admin/dossiers/edit/?id={world.a_private}").status_code == 404


def test_staff_granted_a_private_dossier_sees_it(client, world):
    private = db.session.get(Dossier, world.a_private)
    private.users.append(db.session.get(Membership, world.membership_staff).user)
    db.session.commit()
    log_in(client, "staff")
    assert "Alpha Private Ltd" in body(client.get("/admin/dossiers/"))


def test_external_sees_only_dossiers_granted_directly_or_through_a_group(client, world):
    log_in(client, "external")
    page = body(client.get("/admin/dossiers/"))
    assert "Alpha Public Ltd" in page  # granted directly
    assert "Alpha Grouped Ltd" in page  # granted to the Externals group
    assert "Alpha Private Ltd" not in page
    assert client.get(f"/admin/dossiers/details/?id={world.a_private}").status_code == 404
    runs = body(client.get("/admin/runs/"))
    assert "Alpha run" in runs and "Beta run" not in runs


def test_external_does_not_see_runs_of_ungranted_dossiers(client, world):
    link_id = world.a_link
    db.session.add(SyncRun(firm_id=world.alpha, dossier_id=world.a_private, link_id=link_id, message="Private run"))
    db.session.commit()
    log_in(client, "external")
    assert "Private run" not in body(client.get("/admin/runs/"))
