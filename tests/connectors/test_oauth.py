"""Auth helpers without a server: refresh margins, locks, PKCE parameters, session logins."""
import contextlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.auth import OAuth2Code
from connectors.base import AuthError
from connectors.oauth import SessionLogin, TokenManager, api_key_header, authorization_url

SPEC = OAuth2Code(authorize_url="https://login.example.test/authorize", token_url="https://login.example.test/token",
                  scopes=("a", "b"), pkce=False, refresh_margin_seconds=60,
                  extra_authorize_params=(("prompt", "consent"),))


def manager(creds, requests_mock=None, **kwargs):
    store = {"creds": creds, "saves": [], "locks": 0}

    @contextlib.contextmanager
    def lock():
        store["locks"] += 1
        yield

    tm = TokenManager(SPEC, "cid", "csecret", load_credentials=lambda: store["creds"],
                      save_credentials=lambda c: (store["saves"].append(c), store.update(creds=c)),
                      lock=lock, clock=lambda: 1_000_000, **kwargs)
    return tm, store


def test_no_refresh_outside_the_margin(requests_mock):
    tm, store = manager({"access_token": "at1", "refresh_token": "rt1", "expires_at": 1_000_000 + 61})
    assert tm.access_token() == "at1"
    assert store["locks"] == 0 and requests_mock.call_count == 0


def test_a_fresh_token_in_hand_is_reused_without_reading_the_store_again():
    tm, store = manager({"access_token": "at1", "refresh_token": "rt1", "expires_at": 1_000_000 + 600})
    reads = []
    tm.load_credentials = lambda: reads.append(1) or store["creds"]
    assert [tm.access_token() for _ in range(5)] == ["at1"] * 5
    assert len(reads) == 1  # one database read and decryption, not one per page
    store["creds"] = {**store["creds"], "access_token": "at2"}  # another worker replaced it
    assert tm.access_token(force_refresh=True) == "at2"  # a refused token re-reads the committed one
    assert len(reads) == 3 and store["saves"] == []  # read before and under the lock; no refresh needed


def test_refresh_inside_the_margin_saves_before_returning(requests_mock):
    requests_mock.post(SPEC.token_url, json={"access_token": "at2", "refresh_token": "rt2", "expires_in": 1800,
                                             "token_type": "Bearer"})
    tm, store = manager({"access_token": "at1", "refresh_token": "rt1", "expires_at": 1_000_000 + 59})
    assert tm.access_token() == "at2"
    assert store["locks"] == 1 and tm.refreshes == 1
    assert store["saves"] == [{"access_token": "at2", "refresh_token": "rt2", "expires_at": 1_001_800,
                               "token_type": "Bearer"}]
    assert "refresh_token=rt1" in requests_mock.last_request.text


def test_a_non_rotating_answer_keeps_the_refresh_token(requests_mock):
    requests_mock.post(SPEC.token_url, json={"access_token": "at2", "expires_in": 600, "token_type": "Bearer"})
    tm, store = manager({"access_token": "at1", "refresh_token": "rt1", "expires_at": 0})
    tm.access_token()
    assert store["creds"]["refresh_token"] == "rt1"


def test_invalid_grant_without_a_newer_grant_is_an_auth_error(requests_mock):
    requests_mock.post(SPEC.token_url, status_code=400, json={"error": "invalid_grant"})
    tm, store = manager({"access_token": "at1", "refresh_token": "rt-secret-1", "expires_at": 0}, package="Xero")
    with pytest.raises(AuthError) as caught:
        tm.access_token()
    assert caught.value.message == ("The connection to Xero has expired or was revoked. "
                                    "An administrator must reconnect it.")
    assert store["saves"] == []


def test_token_endpoint_down_is_transient(requests_mock):
    from connectors.base import TransientError

    requests_mock.post(SPEC.token_url, exc=requests.ConnectionError)
    tm, _ = manager({"access_token": "at1", "refresh_token": "rt1", "expires_at": 0})
    with pytest.raises(TransientError):
        tm.access_token()


def test_authorization_url_without_pkce_and_with_extra_params():
    query = parse_qs(urlsplit(authorization_url(SPEC, "cid", "https://app/cb", "xyz", "verifier" * 8)).query)
    assert query["client_id"] == ["cid"] and query["state"] == ["xyz"] and query["scope"] == ["a b"]
    assert query["prompt"] == ["consent"] and "code_challenge" not in query


def test_session_login_caches_until_expiry():
    now = [0.0]
    logins = []
    session = SessionLogin(lambda: (logins.append(1) or f"s{len(logins)}", 100), margin_seconds=10,
                           clock=lambda: now[0])
    assert session.token() == "s1" and session.token() == "s1"
    now[0] = 91
    assert session.token() == "s2"
    session.invalidate()
    assert session.token() == "s3"


def test_api_key_header():
    prepared = requests.Request("GET", "https://x.test", auth=api_key_header("X-Api-Key", "k")).prepare()
    assert prepared.headers["X-Api-Key"] == "k"
