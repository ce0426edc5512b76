"""Sessions end when they should, even for someone holding a copy of the cookie (#19 item 6).

Logout, a password change or reset, a change of role and removal from a firm end the
sessions concerned: a session cookie copied before stops opening the console.
"""
import pytest

from app.extensions import db
from app.models import Membership, Role
from tests.conftest import PASSWORD, csrf_from, login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

NEW_PASSWORD = "plum tractor velvet 42"


@pytest.fixture
def world(db):
    return build_world()


def copy_of_session(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def opens_console(client):
    return client.get("/admin/").status_code == 200


def test_a_copied_session_works_until_logout(client, app, world):
    log_in(client, "admin")
    thief = copy_of_session(app, client)
    assert opens_console(thief)  # the copy is a working session...

    client.post("/logout", data={"csrf_token": csrf_token(client)})

    assert not opens_console(thief)  # ...until its owner logs out
    assert not opens_console(client)


def test_a_password_reset_by_an_administrator_ends_the_persons_sessions(client, app, world):
    staff = app.test_client()
    log_in(staff, "staff")
    thief = copy_of_session(app, staff)

    log_in(client, "admin")
    response = client.post(f"/admin/users/edit/?id={world.membership_staff}", data={
        "role": "staff", "multi_file_access": "y", "password": NEW_PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 302

    assert not opens_console(thief)
    assert not opens_console(staff)
    assert opens_console(client)  # the administrator's own session goes on


def test_changing_ones_own_password_ends_the_other_sessions(client, app, world):
    log_in(client, "admin")
    thief = copy_of_session(app, client)
    page = client.get("/account")
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        "csrf_token": csrf_from(page)})
    assert response.status_code == 302

    assert not opens_console(thief)
    assert opens_console(client)


@pytest.mark.parametrize("change", [{"role": "external"}, {"role": "staff", "can_create_files": "y"}])
def test_a_change_of_role_or_rights_ends_the_persons_sessions(client, app, world, change):
    staff = app.test_client()
    log_in(staff, "staff")
    log_in(client, "admin")
    client.post(f"/admin/users/edit/?id={world.membership_staff}",
                data={"multi_file_access": "y", **change, "csrf_token": csrf_token(client)})
    db.session.expire_all()
    membership = db.session.get(Membership, world.membership_staff)
    assert (membership.role, membership.can_create_files) != (Role.STAFF, False)

    assert staff.get("/admin/").status_code == 302


def test_an_unchanged_save_keeps_the_persons_sessions(client, app, world):
    staff = app.test_client()
    log_in(staff, "staff")
    log_in(client, "admin")
    client.post(f"/admin/users/edit/?id={world.membership_staff}",
                data={"role": "staff", "multi_file_access": "y", "csrf_token": csrf_token(client)})

    assert opens_console(staff)


def test_removal_from_a_firm_ends_the_persons_sessions(client, app, world):
    # staff@beta.test also works in firm A; firm A removes them
    db.session.add(Membership(user_id=world.user_staff_b, firm_id=world.alpha, role=Role.STAFF))
    db.session.commit()
    removed = db.session.query(Membership).filter_by(user_id=world.user_staff_b, firm_id=world.alpha).one()
    person = app.test_client()
    assert login(person, "staff@beta.test").status_code == 302
    assert opens_console(person)

    log_in(client, "admin")
    client.post("/admin/users/delete/", data={"id": str(removed.id), "csrf_token": csrf_token(client)})

    assert not opens_console(person)
    assert login(person, "staff@beta.test").status_code == 302  # they log in again, to firm B
    assert opens_console(person)
