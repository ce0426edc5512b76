"""The kit itself: declared streams and their dispatch, the signed request with one renewal,
the auth strategies' consent and callback, and the shared parsers."""
from datetime import date, datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import parsing
from connectors.auth import AgreementGrant, ApiKey, Basic, OAuth2Code, SessionLogin
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, ConfigError, Connector, ConnectorContext, ConnectorSpec, DataError,
    RateBudget, Stream, StreamState, SyncWindow,
)
from connectors.http import build_client

API = "https://books.example.test"


def spec(auth, **extra):
    return ConnectorSpec(key="kit", display_name="Kit Books", kind=ACCOUNTING, level=FIRM, auth=auth,
                         config_schema=None, api_version="1", docs_url="https://example.test",
                         rate_budget=RateBudget(per_minute=100), **extra)


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        for row in self.connector.get_json(f"{API}/accounts")["accounts"]:
            yield AccountRecord(number=parsing.text(row["code"]), name=row["name"])


class Lines(Stream):
    name, record_type, replication_key = "lines", AccountRecord, "updated"

    def records(self, state, window):
        return iter(())


def books(auth, credentials=None, config=None, **members):
    cls = type("KitBooks", (Connector,), {"spec": spec(auth), "streams": (Accounts, Lines), **members})
    http = build_client(cls.spec, secrets=["sk-kit-secret"], sleep=lambda s: None)
    return cls(ConnectorContext(config={"base_url": API, **(config or {})}, credentials=dict(credentials or {}),
                                http=http))


# -- streams ----------------------------------------------------------------------------------

def test_streams_are_classes_dispatched_by_name_and_incremental_by_their_replication_key(requests_mock):
    requests_mock.get(f"{API}/accounts", json={"accounts": [{"code": " 400 ", "name": "Sales"}]})
    connector = books(ApiKey(field="api_key"), config={"api_key": "k"})
    assert (Accounts.incremental, Lines.incremental) == (False, True)
    assert connector.stream("accounts") is Accounts
    assert list(connector.read("accounts", StreamState(), SyncWindow())) == [AccountRecord("400", "Sales")]
    with pytest.raises(ConfigError, match="no stream called 'nope'"):
        list(connector.read("nope", StreamState(), SyncWindow()))


def test_a_payload_that_breaks_a_stream_is_a_data_error_naming_it(requests_mock):
    requests_mock.get(f"{API}/accounts", json={"accounts": [{"name": "no code"}]})
    with pytest.raises(DataError, match="Kit Books sent accounts Firmsync could not read"):
        list(books(ApiKey(field="api_key"), config={"api_key": "k"}).read("accounts", StreamState(), SyncWindow()))


# -- the signed request and its one renewal ----------------------------------------------------

OAUTH = OAuth2Code(authorize_url="/oauth/authorize", token_url="/oauth/token", scopes=("read",))


def test_oauth_calls_carry_the_token_and_a_refused_token_is_renewed_once(requests_mock):
    requests_mock.get(f"{API}/accounts", [{"status_code": 401, "json": {}}, {"json": {"accounts": []}}])
    requests_mock.post(f"{API}/oauth/token", json={"access_token": "fresh", "refresh_token": "r2", "expires_in": 600})
    connector = books(OAUTH, {"access_token": "old", "refresh_token": "r1", "expires_at": 4_000_000_000},
                      {"client_id": "cid", "client_secret": "sk-kit-secret"})
    assert connector.get_json(f"{API}/accounts") == {"accounts": []}
    sent = [r.headers.get("Authorization") for r in requests_mock.request_history if r.method == "GET"]
    assert sent == ["Bearer old", "Bearer fresh"]
    assert connector.credentials["refresh_token"] == "r2"


def test_a_second_refusal_stands(requests_mock):
    requests_mock.get(f"{API}/accounts", status_code=401, json={})
    requests_mock.post(f"{API}/oauth/token", json={"access_token": "fresh", "expires_in": 600})
    connector = books(OAUTH, {"access_token": "old", "refresh_token": "r1", "expires_at": 4_000_000_000},
                      {"client_id": "cid", "client_secret": "sk-kit-secret"})
    with pytest.raises(AuthError):
        connector.get_json(f"{API}/accounts")
    assert sum(r.method == "GET" for r in requests_mock.request_history) == 2


def test_an_api_key_is_not_renewed(requests_mock):
    requests_mock.get(f"{API}/accounts", status_code=401, json={})
    with pytest.raises(AuthError):
        books(ApiKey(header="X-Key", field="api_key"), config={"api_key": "k"}).get_json(f"{API}/accounts")
    assert requests_mock.call_count == 1 and requests_mock.request_history[0].headers["X-Key"] == "k"


def test_basic_auth_takes_the_key_as_user_name(requests_mock):
    requests_mock.get(f"{API}/accounts", json={})
    books(Basic(username_field="api_key", password_field=None), config={"api_key": "ch-key"}).get_json(f"{API}/accounts")
    assert requests_mock.request_history[0].headers["Authorization"] == "Basic Y2gta2V5Og=="  # "ch-key:"


def test_a_session_login_logs_in_again_after_a_refusal(requests_mock):
    requests_mock.get(f"{API}/accounts", [{"status_code": 401, "json": {}}, {"json": {}}])
    logins = []

    def login(self):
        logins.append(1)
        return f"session-{len(logins)}", 600

    connector = books(SessionLogin(), login=login)
    connector.get_json(f"{API}/accounts")
    assert [r.headers["Authorization"] for r in requests_mock.request_history] == ["Bearer session-1",
                                                                                   "Bearer session-2"]


# -- consent and callback -------------------------------------------------------------------------

def test_oauth_consent_url_and_callback_use_the_connections_endpoints(requests_mock):
    cls = type(books(OAUTH, config={"client_id": "cid"}))
    config = {"base_url": "https://sandbox.test/demo", "client_id": "cid", "client_secret": "cs"}
    url = OAUTH.consent_url(cls, config, "https://firm/cb", "st4te", "v" * 50)
    assert url.startswith("https://sandbox.test/demo/oauth/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["state"] == ["st4te"] and query["code_challenge_method"] == ["S256"]
    requests_mock.post("https://sandbox.test/demo/oauth/token", json={"access_token": "a", "refresh_token": "r",
                                                                      "expires_in": 60})
    assert OAUTH.callback(cls, config, {"code": "c0de"}, "https://firm/cb", "v" * 50)["access_token"] == "a"
    with pytest.raises(AuthError):
        OAUTH.callback(cls, config, {"error": "access_denied"}, "https://firm/cb")


def test_an_agreement_grant_carries_state_in_its_redirect_and_reads_the_token():
    grant = AgreementGrant(consent_page="https://secure.example.test/requestaccess.aspx",
                           headers=(("X-AppSecretToken", "app_secret_token"), ("X-AgreementGrantToken", "grant")),
                           credential="grant")
    cls = type(books(grant))
    url = grant.consent_url(cls, {"app_public_id": "pub"}, "https://firm/cb", "st4te")
    query = parse_qs(urlsplit(url).query)
    assert query["appPublicToken"] == ["pub"] and parse_qs(urlsplit(query["redirectUrl"][0]).query)["state"] == ["st4te"]
    assert grant.callback(cls, {}, {"token": " g-1 "}, "https://firm/cb") == {"grant": "g-1"}
    with pytest.raises(AuthError):
        grant.callback(cls, {}, {}, "https://firm/cb")
    with pytest.raises(ConfigError):
        grant.consent_url(cls, {}, "https://firm/cb", "s")


# -- shared parsers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (12, Decimal("12")), (Decimal("-28750.00"), Decimal("-28750.00")), (0.1, Decimal("0.1")),
    ("1020.22", Decimal("1020.22")), (" 72,893.84 ", Decimal("72893.84")), ("", Decimal("0")), (None, Decimal("0")),
])
def test_amounts_are_exact_decimals(value, expected):
    assert parsing.amount(value, "amount", "Kit Books") == expected


def test_a_decimal_comma_amount_and_bad_amounts():
    assert parsing.amount("72.893,84", "amount", "Kit Books", decimal_comma=True) == Decimal("72893.84")
    for bad in ("12,34x", "NaN", True, "Infinity"):
        with pytest.raises(DataError, match="Kit Books sent a NetAmount"):
            parsing.amount(bad, "NetAmount", "Kit Books")


def test_dates_in_the_vendors_shapes():
    assert parsing.ms_json_date("/Date(1539993600000+0000)/", "JournalDate", "Xero") == date(2018, 10, 20)
    assert parsing.day("2024-03-31T00:00:00+02:00", "date", "X") == date(2024, 3, 31)
    assert parsing.day("31/03/2024", "date", "X") == date(2024, 3, 31)
    assert parsing.moment("2020-02-08 14:55:00.000", "time", "Octopus") == datetime(2020, 2, 8, 14, 55,
                                                                                   tzinfo=timezone.utc)
    assert parsing.moment("2024-02-01T09:30:00-08:00", "time", "QB") == datetime(2024, 2, 1, 17, 30,
                                                                                tzinfo=timezone.utc)
    assert parsing.optional_day("", "date", "X") is None
    with pytest.raises(DataError, match="X sent a date that is not a date"):
        parsing.day("soon", "date", "X")


def test_padded_strings():
    assert parsing.text("FR ") == "FR" and parsing.text(None) == "" and parsing.text(400000) == "400000"


def test_a_refused_refresh_is_not_tried_twice(requests_mock):
    requests_mock.get(f"{API}/accounts", json={})
    requests_mock.post(f"{API}/oauth/token", status_code=400, json={"error": "invalid_grant"})
    connector = books(OAUTH, {"access_token": "old", "refresh_token": "dead", "expires_at": 0},
                      {"client_id": "cid", "client_secret": "sk-kit-secret"})
    with pytest.raises(AuthError, match="reconnect"):
        connector.get_json(f"{API}/accounts")
    assert sum(r.method == "POST" for r in requests_mock.request_history) == 1
    assert not any(r.method == "GET" for r in requests_mock.request_history)
