"""Password rules, changing one's own password, the optional TOTP second factor (#19 item 12)."""
import re
import time

import pyotp
import pytest

from app import auth
from app.extensions import db
from app.models import User
from app.services.accounts import password_problem
from tests.conftest import PASSWORD, csrf_from, login
from tests.console_world import EMAILS, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

NEW_PASSWORD = "plum tractor velvet 42"


@pytest.fixture
def world(db):
    return build_world()


@pytest.mark.parametrize("password", ["elevenchars", "password1234", "qwertyuiop12", "Password123!", "aaaaaaaaaaaa",
                                      "anna.peeters@alpha.test"])
def test_short_common_or_personal_passwords_are_refused(app, password):
    assert password_problem(password, "anna.peeters@alpha.test", "Anna Peeters") is not None


@pytest.mark.parametrize("password", [PASSWORD, NEW_PASSWORD, "Tr0ub4dor&3x-ok"])
def test_long_uncommon_passwords_are_accepted(app, password):
    assert password_problem(password, "anna.peeters@alpha.test", "Anna Peeters") is None


def reset_by_admin(client, world, password):
    return client.post(f"/admin/users/edit/?id={world.membership_staff}", data={
        "role": "staff", "multi_file_access": "y", "password": password, "csrf_token": csrf_token(client)})


@pytest.mark.parametrize(("password", "message"), [("short pass1", "at least 12 characters"),
                                                     ("password1234", "too common")])
def test_an_administrator_cannot_set_a_weak_password(client, world, password, message):
    log_in(client, "admin")
    response = reset_by_admin(client, world, password)
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, world.user_staff).check_password(PASSWORD)


def change_own_password(client, current, new, confirm=None):
    page = client.get("/account")
    assert page.status_code == 200
    return client.post("/account/password", data={
        "current_password": current, "new_password": new, "confirm": confirm or new, "csrf_token": csrf_from(page)})


def test_users_change_their_own_password(client, world):
    log_in(client, "external")
    assert change_own_password(client, PASSWORD, NEW_PASSWORD).status_code == 302
    db.session.expire_all()
    user = db.session.get(User, world.user_external)
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)


@pytest.mark.parametrize(("current", "new", "confirm", "message"), [
    ("wrong password", NEW_PASSWORD, None, "This is not your current password."),
    (PASSWORD, "password1234", None, "too common"),
    (PASSWORD, NEW_PASSWORD, "plum tractor velvet 43", "The two passwords differ."),
])
def test_a_wrong_current_password_or_a_weak_new_one_is_refused(client, world, current, new, confirm, message):
    log_in(client, "pulse")
    response = change_own_password(client, current, new, confirm)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, world.user_pulse).check_password(PASSWORD)


# -- the TOTP second factor ---------------------------------------------------------------------

def enrol(client):
    """Turn two-step login on for the logged-in client; answers the secret."""
    page = client.get("/account/two-factor")
    assert page.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.get_data(as_text=True)).group(1)
    response = client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now(),
                                                        "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    return secret


def next_code(secret):
    """A code of the next time step: valid now (one step of drift) and never used before."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def enter_code(client, code):
    page = client.get("/login/code")
    return client.post("/login/code", data={"code": code, "csrf_token": csrf_from(page)})


@pytest.mark.parametrize("role", ["admin", "support"])
def test_administrators_and_support_log_in_with_a_code_once_enrolled(client, app, world, role):
    log_in(client, role)
    secret = enrol(client)

    browser = app.test_client()
    response = login(browser, EMAILS[role])
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/code")
    assert browser.get("/admin/").status_code == 302  # the password alone does not open the console
    assert enter_code(browser, "000000" if next_code(secret) != "000000" else "111111").status_code == 401
    code = next_code(secret)
    assert enter_code(browser, code).status_code == 302
    assert browser.get("/admin/").status_code == 200

    replay = app.test_client()
    login(replay, EMAILS[role])
    assert enter_code(replay, code).status_code == 401  # a code works once
    assert replay.get("/admin/").status_code == 302


def test_two_step_login_is_off_until_enrolled_and_not_offered_to_other_roles(client, app, world):
    log_in(client, "staff")
    assert client.get("/account/two-factor").status_code == 403
    assert "two-factor-link" not in client.get("/account").get_data(as_text=True)


def test_turning_it_off_needs_the_password_and_a_code(client, app, world):
    log_in(client, "admin")
    secret = enrol(client)
    page = client.get("/account/two-factor")
    refused = client.post("/account/two-factor", data={"password": "wrong password", "code": next_code(secret),
                                                       "csrf_token": csrf_from(page)})
    assert refused.status_code == 400
    client.post("/account/two-factor", data={"password": PASSWORD, "code": next_code(secret),
                                             "csrf_token": csrf_from(page)})
    db.session.expire_all()
    assert db.session.get(User, world.user_admin).totp_secret is None
    response = login(app.test_client(), EMAILS["admin"])
    assert response.status_code == 302 and not response.headers["Location"].endswith("/login/code")


def test_guessing_codes_is_throttled_even_when_the_password_is_entered_again(client, app, world, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(auth, "clock", lambda: now[0])
    log_in(client, "admin")
    secret = enrol(client)
    wrong = "000000" if next_code(secret) != "000000" else "111111"
    attacker = app.test_client()
    login(attacker, EMAILS["admin"])
    for _ in range(3):  # TestingConfig: 3 free failures per account and address
        assert enter_code(attacker, wrong).status_code == 401
    assert enter_code(attacker, next_code(secret)).status_code == 429

    now[0] += 31  # after the wait, the right password again does not start the count over
    assert login(attacker, EMAILS["admin"]).headers["Location"].endswith("/login/code")
    assert enter_code(attacker, wrong).status_code == 401
    assert enter_code(attacker, next_code(secret)).status_code == 429
