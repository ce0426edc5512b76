"""Console security: CSRF, secrets never shown or audited, form errors, unknown ids."""
import json

import pytest

from app.extensions import db
from app.models import AuditEvent, Connection, Dossier, FiscalYear, Firm, Membership
from app.models.firm import Invitation
from tests.console_world import SECRET_A, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

KNOWN_SECRET = "Sup3r-secret-api-key-value-42"
SCREENS = ("dossiers", "links", "runs", "fiscal-years", "connections", "users", "groups", "firms", "audit")


def body(response):
    text = response.get_data(as_text=True)
    response.close()
    return text


@pytest.fixture
def world(db):
    return build_world()


@pytest.mark.parametrize("token", [None, "not-a-valid-token"])
def test_post_without_valid_csrf_token_is_rejected_and_writes_nothing(client, world, token):
    log_in(client, "admin")
    data = {"name": "CSRF file", "country": "BE", "currency": "EUR", "frequency": "month"}
    if token:
        data["csrf_token"] = token
    assert client.post("/admin/dossiers/new/", data=data).status_code == 400
    assert client.post("/admin/dossiers/delete/", data={"id": str(world.a_public), **data}).status_code == 400
    assert db.session.query(Dossier).filter_by(name="CSRF file").count() == 0
    assert db.session.get(Dossier, world.a_public) is not None


def _all_console_pages(client, world):
    """Every list, detail, edit form and export the admin (and support) can open."""
    urls = ["/admin/", "/admin/connections/new/", "/admin/connections/new/?package=demo"]
    for screen in SCREENS:
        urls.append(f"/admin/{screen}/")
        for export in ("dossiers", "runs", "audit"):
            urls.append(f"/admin/{export}/export/csv/")
    ids = {
        "connections": [world.a_connection, world.a_spare_connection], "dossiers": [world.a_public],
        "links": [world.a_link], "runs": [world.a_run], "audit": _audit_ids(world), "users": [world.membership_admin],
        "firms": [world.alpha], "groups": [world.team], "fiscal-years": [world.a_year],
    }
    for screen, row_ids in ids.items():
        for row_id in row_ids:
            urls += [f"/admin/{screen}/details/?id={row_id}", f"/admin/{screen}/edit/?id={row_id}"]
    return urls


def _audit_ids(world):
    return [e.id for e in db.session.query(AuditEvent).filter_by(firm_id=world.alpha)]


def test_connection_secret_never_appears_in_pages_exports_or_audit(client, world):
    log_in(client, "admin")
    token = csrf_token(client)
    created = client.post("/admin/connections/new/?package=demo", data={
        "name": "Secret books", "base_url": "http://127.0.0.1:9/api", "api_key": KNOWN_SECRET, "csrf_token": token,
    })
    assert created.status_code == 302
    connection = db.session.query(Connection).filter_by(name="Secret books").one()
    assert connection.credentials == {"api_key": KNOWN_SECRET}
    # an edit that keeps the secret (blank) and one that changes it
    for new_key in ("", "An0ther-secret-value-77"):
        response = client.post(f"/admin/connections/edit/?id={connection.id}", data={
            "name": "Secret books", "base_url": "http://127.0.0.1:9/api", "api_key": new_key, "csrf_token": token,
        })
        assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Connection, connection.id).credentials == {"api_key": "An0ther-secret-value-77"}

    secrets = (KNOWN_SECRET, "An0ther-secret-value-77", SECRET_A)
    world.ids["a_connection"] = connection.id
    for role in ("admin", "support"):
        if role == "support":
            client.post("/logout", data={"csrf_token": csrf_token(client)})
            log_in(client, "support")
        for url in _all_console_pages(client, world):
            response = client.get(url)
            assert response.status_code in (200, 403), (role, url, response.status_code)
            page = body(response)
            for secret in secrets:
                assert secret not in page, f"secret rendered by {url} for {role}"
    db.session.expire_all()
    trail = [json.dumps([e.summary, e.changes]) for e in db.session.query(AuditEvent)]
    assert any('"api_key": ["(changed)", "(changed)"]' in row for row in trail)
    for secret in secrets:
        assert not any(secret in row for row in trail)


def test_connection_form_errors_are_shown_and_nothing_written(client, world):
    log_in(client, "admin")
    response = client.post("/admin/connections/new/?package=demo", data={
        "name": "Broken books", "base_url": "not a url", "api_key": "", "csrf_token": csrf_token(client),
    })
    page = body(response)
    assert response.status_code == 200
    assert "Not a valid URL." in page and "Missing data for required field." in page
    assert db.session.query(Connection).filter_by(name="Broken books").count() == 0


def test_connection_with_links_cannot_be_deleted(client, world):
    log_in(client, "admin")
    response = client.post("/admin/connections/delete/", data={"id": str(world.a_connection), "csrf_token": csrf_token(client)},
                           follow_redirects=True)
    assert "cannot be deleted" in body(response)
    assert db.session.get(Connection, world.a_connection) is not None


@pytest.mark.parametrize(("url", "data", "message"), [
    ("/admin/users/new/", {"email": "", "role": "staff"}, "This field is required."),
    ("/admin/users/new/", {"email": "not-an-email", "role": "staff"},
     "Enter an e-mail address"),
    ("/admin/dossiers/new/", {"name": "", "country": "BE", "currency": "EUR", "frequency": "month"},
     "This field is required."),
    ("/admin/dossiers/new/", {"name": "Bad country", "country": "Belgium", "currency": "EUR", "frequency": "month"},
     "is not a country Firmsync knows"),
])
def test_bad_input_shows_field_errors_and_writes_nothing(client, world, url, data, message):
    log_in(client, "admin")
    before = (db.session.query(Dossier).count(), db.session.query(Membership).count())
    response = client.post(url, data={**data, "csrf_token": csrf_token(client)})
    assert response.status_code == 200
    assert message in body(response)
    assert (db.session.query(Dossier).count(), db.session.query(Membership).count()) == before


def test_firm_nightly_time_must_be_hh_mm(client, world):
    log_in(client, "admin")
    response = client.post(f"/admin/firms/edit/?id={world.alpha}", data={
        "name": "Alpha", "country": "BE", "timezone": "Europe/Brussels", "nightly_time": "25:00",
        "default_locale": "en", "csrf_token": csrf_token(client),
    })
    assert "24-hour time" in body(response)
    db.session.expire_all()
    assert db.session.get(Firm, world.alpha).nightly_time == "02:00"


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026-01-01", "2025-12-31", "The end must come after the start."),
    ("2026-01-01", "2028-01-01", "at most 24 months"),
    ("2024-06-01", "2025-05-31", "overlaps"),
])
def test_fiscal_year_rules(client, world, start, end, message):
    log_in(client, "support")
    response = client.post("/admin/fiscal-years/new/", data={
        "dossier": str(world.a_public), "start": start, "end": end, "csrf_token": csrf_token(client),
    })
    assert message in body(response)
    assert db.session.query(FiscalYear).filter_by(dossier_id=world.a_public).count() == 1


def test_admin_cannot_demote_or_remove_themself(client, world):
    log_in(client, "admin")
    token = csrf_token(client)
    demote = client.post(f"/admin/users/edit/?id={world.membership_admin}", data={"role": "staff", "csrf_token": token})
    assert "cannot remove your own administrator role" in body(demote)
    removed = client.post("/admin/users/delete/", data={"id": str(world.membership_admin), "csrf_token": token},
                          follow_redirects=True)
    assert "cannot remove yourself" in body(removed)
    db.session.expire_all()
    assert db.session.get(Membership, world.membership_admin).role == "admin"


def test_existing_email_gets_an_invitation_not_a_second_user(client, world):
    log_in(client, "admin")
    response = client.post("/admin/users/new/", data={
        "email": "ADMIN@beta.test", "role": "external", "csrf_token": csrf_token(client),
    })
    assert response.status_code == 302
    memberships = db.session.query(Membership).filter_by(user_id=world.user_admin_b).all()
    assert [m.firm_id for m in memberships] == [world.beta]  # a member once they accept
    assert db.session.query(Invitation).filter_by(firm_id=world.alpha, email="admin@beta.test").count() == 1
    event = db.session.query(AuditEvent).filter_by(object_type="Invitation", action="create").one()
    assert event.firm_id == world.alpha and "existing" not in event.summary


@pytest.mark.parametrize("screen", SCREENS)
def test_unknown_id_is_not_found(client, world, screen):
    log_in(client, "admin")
    assert client.get(f"/admin/{screen}/details/?id=987654").status_code == 404
    assert client.get(f"/admin/{screen}/details/?id=not-a-number").status_code == 404
    if screen in ("dossiers", "connections", "users", "groups", "firms"):
        assert client.get(f"/admin/{screen}/edit/?id=987654").status_code == 404
