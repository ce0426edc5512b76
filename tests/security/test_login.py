"""Login throttling that slows attackers without locking owners out (#19 item 8).

Failures count per (account, address) and per address with exponential backoff; the owner
of an attacked account still logs in from their own address; forwarded addresses are
trusted only from a configured proxy; a failure costs one password hash whether the e-mail
has an account or not.
"""
import hashlib

import pytest

from app import auth, create_app
from tests.conftest import PASSWORD, csrf_from, make_user
from tests.console_world import EMAILS, build_world, fresh_request_globals  # noqa: F401

ATTACKER, OWNER = "203.0.113.9", "198.51.100.7"


@pytest.fixture
def world(db):
    return build_world()


def attempt(client, email, password, address=None, forwarded_for=None):
    """One login through the real form, from ``address`` (or via a proxy forwarding ``forwarded_for``)."""
    environ = {"REMOTE_ADDR": address} if address else {}
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    token = csrf_from(client.get("/login", environ_base=environ, headers=headers))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base=environ, headers=headers)


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by the test."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(auth, "clock", lambda: now[0])
    return now


def test_the_owner_logs_in_from_their_address_while_their_account_is_attacked_from_another(app, world):
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(3):  # TestingConfig: 3 free failures per account and address
        assert attempt(attacker, EMAILS["admin"], "wrong password", ATTACKER).status_code == 401
    assert attempt(attacker, EMAILS["admin"], PASSWORD, ATTACKER).status_code == 429  # the attacker waits

    assert attempt(owner, EMAILS["admin"], PASSWORD, OWNER).status_code == 302


def test_the_wait_grows_with_each_failure_and_then_ends(app, world, clock):
    client = app.test_client()
    for _ in range(3):
        attempt(client, EMAILS["admin"], "wrong password", ATTACKER)
    blocked = attempt(client, EMAILS["admin"], PASSWORD, ATTACKER)
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "30"

    clock[0] += 31
    assert attempt(client, EMAILS["admin"], "wrong password", ATTACKER).status_code == 401
    assert attempt(client, EMAILS["admin"], PASSWORD, ATTACKER).headers["Retry-After"] == "60"

    clock[0] += 61
    assert attempt(client, EMAILS["admin"], PASSWORD, ATTACKER).status_code == 302  # a backoff, not a lockout


def test_the_wait_is_capped(app, world, clock):
    client = app.test_client()
    for _ in range(20):
        attempt(client, EMAILS["admin"], "wrong password", ATTACKER)
        clock[0] += 3600
    attempt(client, EMAILS["admin"], "wrong password", ATTACKER)
    assert attempt(client, EMAILS["admin"], PASSWORD, ATTACKER).headers["Retry-After"] == str(15 * 60)


def test_guessing_many_accounts_from_one_address_is_slowed(app, world):
    client = app.test_client()
    for number in range(6):  # TestingConfig: 6 free failures per address
        assert attempt(client, f"nobody{number}@alpha.test", "wrong password", ATTACKER).status_code == 401
    assert attempt(client, EMAILS["staff"], PASSWORD, ATTACKER).status_code == 429
    assert attempt(client, EMAILS["staff"], PASSWORD, OWNER).status_code == 302


@pytest.fixture
def proxied_app(app):
    """The application behind one trusted proxy (``PROXY_FIX_X_FOR=1``), on the same database,
    with its settings given as the environment gives them (``FIRMSYNC_<NAME>``: strings)."""
    settings = {"PROXY_FIX_X_FOR": "1", "PROXY_FIX_X_PROTO": "1", "LOGIN_BACKOFF_SECONDS": "30",
                "LOGIN_BACKOFF_MAX_SECONDS": "900", "LOGIN_FREE_FAILURES_PER_ADDRESS": "6"}
    return create_app("testing", SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                      REDIS_URL=app.config["REDIS_URL"], **settings)


def test_behind_a_trusted_proxy_each_client_address_is_throttled_on_its_own(proxied_app, world):
    attacker, colleague = proxied_app.test_client(), proxied_app.test_client()
    proxy = "10.0.0.2"  # every request reaches Firmsync from the proxy
    for number in range(6):
        attempt(attacker, f"nobody{number}@alpha.test", "wrong password", proxy, forwarded_for=ATTACKER)
    assert attempt(attacker, EMAILS["staff"], PASSWORD, proxy, forwarded_for=ATTACKER).status_code == 429

    assert attempt(colleague, EMAILS["staff"], PASSWORD, proxy, forwarded_for=OWNER).status_code == 302


def test_forwarded_addresses_are_ignored_without_a_trusted_proxy(app, world):
    client = app.test_client()
    for number in range(3):  # a new made-up address each time does not reset the count
        attempt(client, EMAILS["admin"], "wrong password", ATTACKER, forwarded_for=f"192.0.2.{number}")
    assert attempt(client, EMAILS["admin"], PASSWORD, ATTACKER, forwarded_for="192.0.2.99").status_code == 429


def test_a_failure_costs_one_password_hash_whether_the_email_exists_or_not(app, firm, monkeypatch):
    make_user("known@alpha.test", firm)  # scrypt, like every real account
    calls = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(*args, **kwargs):
        calls.append(1)
        return real_scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)

    def hashes_for(email):
        calls.clear()
        response = attempt(app.test_client(), email, "wrong password", OWNER)
        assert response.status_code == 401
        assert "Unknown e-mail or wrong password." in response.get_data(as_text=True)
        return len(calls)

    hashes_for("warm-up@nowhere.test")  # the first miss may also prepare the stand-in hash
    assert hashes_for("nobody@nowhere.test") == hashes_for("known@alpha.test") == 1
