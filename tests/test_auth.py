"""Login, logout, throttling, safe ``next`` redirects, the firm switcher and pulse users."""
import pytest

from app.extensions import db
from app.models import Membership, Role
from tests.conftest import PASSWORD, csrf_from, login
from tests.console_world import EMAILS, build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401

SCREENS = ("dossiers", "links", "runs", "fiscal-years", "connections", "users", "groups", "firms", "audit")


@pytest.fixture
def world(db):
    return build_world()


def post_login(client, email, password, next_url=None):
    token = csrf_from(client.get("/login"))
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": token})


def test_login_and_logout(client, world):
    response = login(client, EMAILS["admin"])
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client)}).status_code == 302
    after = client.get("/admin/")
    assert after.status_code == 302 and "/login" in after.headers["Location"]


def test_wrong_password_is_refused(client, world):
    response = post_login(client, EMAILS["admin"], "wrong password")
    assert response.status_code == 401
    assert "Unknown e-mail or wrong password." in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_throttled_per_account_even_with_the_right_password(client, world):
    for _ in range(3):  # TestingConfig: 3 failures per account
        assert post_login(client, EMAILS["admin"], "wrong password").status_code == 401
    blocked = post_login(client, EMAILS["admin"], PASSWORD)
    assert blocked.status_code == 429
    assert client.get("/admin/").status_code == 302
    # another account from the same address is not blocked yet (3 of 6 failures)
    assert post_login(client, EMAILS["staff"], PASSWORD).status_code == 302


def test_throttled_per_address_across_accounts(client, world):
    for number in range(6):  # TestingConfig: 6 failures per address
        assert post_login(client, f"nobody{number}@alpha.test", "wrong password").status_code == 401
    assert post_login(client, EMAILS["staff"], PASSWORD).status_code == 429
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.test", "https://evil.test/x", "/\\evil.test", "javascript:alert(1)",
                                    "http://evil.test", "///evil.test", "/.//evil.test/x", "/a/..//evil.test",
                                    "/%09/evil.test", "/\t/evil.test"])
def test_off_site_next_is_refused(client, world, target):
    response = post_login(client, EMAILS["admin"], PASSWORD, next_url=target)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "evil.test" not in location and "javascript" not in location
    assert location.startswith("/") and not location.startswith("//")


@pytest.mark.parametrize("target", ["/a/..//evil.test", "/.//evil.test/x", "//evil.test"])
def test_the_language_picker_never_redirects_off_site(client, world, target):
    token = csrf_from(client.get("/login"))
    response = client.post("/locale", data={"locale": "fr", "next": target, "csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert not location.startswith("//") and "evil.test" not in location


def test_on_site_next_is_honoured(client, world):
    response = post_login(client, EMAILS["admin"], PASSWORD, next_url="/admin/dossiers/?sort=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/dossiers/?sort=1"


def test_firm_switcher(client, world):
    # the admin of firm A is also a staff member of firm B
    db.session.add(Membership(user_id=world.user_admin, firm_id=world.beta, role=Role.STAFF))
    db.session.commit()
    log_in(client, "admin")
    assert "Alpha Public Ltd" in client.get("/admin/dossiers/").get_data(as_text=True)
    response = client.post(f"/switch-firm/{world.beta}", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    assert "Beta Public Ltd" in page and "Alpha Public Ltd" not in page
    assert client.get("/admin/users/").status_code == 403  # staff in firm B


def test_cannot_switch_to_a_firm_one_does_not_belong_to(client, world):
    log_in(client, "admin")
    response = client.post(f"/switch-firm/{world.beta}", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 403
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    assert "Alpha Public Ltd" in page and "Beta Public Ltd" not in page


def test_pulse_user_lands_on_portal_and_is_refused_everywhere_in_console(client, world):
    response = login(client, EMAILS["pulse"])
    assert response.status_code == 302
    landing = client.get(response.headers["Location"])
    assert landing.status_code == 302 and landing.headers["Location"].endswith("/portal/")
    assert client.get("/portal/").status_code == 200
    assert client.get("/admin/").status_code == 403
    for screen in SCREENS:
        assert client.get(f"/admin/{screen}/").status_code == 403, screen
        assert client.get(f"/admin/{screen}/new/").status_code == 403, screen


def test_session_cookie_is_http_only(client, world):
    response = login(client, EMAILS["admin"])
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = [c for c in cookies if c.startswith("session=")]
    assert session_cookie, cookies
    assert "HttpOnly" in session_cookie[0]
    assert "SameSite=Lax" in session_cookie[0]
