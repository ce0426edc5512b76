"""HttpClient: the status table, retries, Retry-After, JSON errors and scrubbed messages."""
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from connectors.base import (
    AuthError,
    DataError,
    NotFoundError,
    PermissionError,
    RateLimited,
    RateBudget,
    TransientError,
)
from connectors.http import DEFAULT_TIMEOUT, HttpClient, budget_scope, build_client, parse_retry_after, secrets_for
from connectors.registry import get_connector

URL = "https://api.example.test/v1/things"
SECRET = "sk-live-93f8a7d1e2"


def client(**kwargs):
    kwargs.setdefault("sleep", kwargs.pop("sleeps", []).append)
    return HttpClient("Xero", secrets=[SECRET], **kwargs)


@pytest.mark.parametrize("status, error", [
    (401, AuthError), (403, PermissionError), (404, NotFoundError), (409, DataError), (422, DataError),
    (400, DataError),
])
def test_status_table(requests_mock, status, error):
    requests_mock.get(URL, status_code=status, json={"message": "nope"})
    http = client()
    with pytest.raises(error) as caught:
        http.get(URL)
    assert "Xero" in caught.value.message
    assert requests_mock.call_count == 1, "client errors are not retried"


def test_vendor_message_is_added_and_scrubbed(requests_mock):
    requests_mock.get(URL + "?api_key=" + SECRET, status_code=401,
                      json={"message": f"Key {SECRET} revoked; Authorization: Bearer abcdef123456"})
    http = client(error_message=lambda r: r.json()["message"])
    with pytest.raises(AuthError) as caught:
        http.get(URL, params={"api_key": SECRET})
    error = caught.value
    assert "reconnect" in error.message and "Xero says" in error.message
    for text in (error.message, error.detail, str(error)):
        assert SECRET not in text and "abcdef123456" not in text


def test_5xx_is_retried_with_capped_backoff_then_transient(requests_mock):
    requests_mock.get(URL, status_code=502)
    sleeps = []
    http = client(sleeps=sleeps, max_retries=5, backoff_cap=2.0)
    with pytest.raises(TransientError) as caught:
        http.get(URL)
    assert requests_mock.call_count == 6 and http.api_calls == 6
    assert sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert "6 tries" in caught.value.message and "try again" in caught.value.message


def test_5xx_then_success(requests_mock):
    requests_mock.get(URL, [{"status_code": 500}, {"status_code": 503}, {"json": {"ok": 1}}])
    http = client()
    assert http.get_json(URL) == {"ok": 1}
    assert http.api_calls == 3


def test_timeouts_are_retried_then_named_for_an_accountant(requests_mock):
    requests_mock.get(URL, exc=requests.ConnectTimeout)
    http = client()
    with pytest.raises(TransientError) as caught:
        http.get(URL)
    assert caught.value.message == "Xero did not answer in time (4 tries). The sync will try again."
    assert requests_mock.call_count == 4


def test_connection_errors_are_transient(requests_mock):
    requests_mock.get(URL, [{"exc": requests.ConnectionError}, {"json": []}])
    assert client().get_json(URL) == []


def test_default_timeouts_are_sent(requests_mock):
    seen = []
    requests_mock.get(URL, json=lambda request, context: seen.append(request.timeout) or {})
    client().get(URL)
    assert seen == [DEFAULT_TIMEOUT] and DEFAULT_TIMEOUT == (10, 60)


def test_bad_json_is_a_data_error(requests_mock):
    requests_mock.get(URL, text='{"broken": ')
    with pytest.raises(DataError) as caught:
        client().get_json(URL)
    assert "could not read" in caught.value.message


def test_long_429_raises_with_retry_after(requests_mock):
    requests_mock.get(URL, status_code=429, headers={"Retry-After": "90"})
    with pytest.raises(RateLimited) as caught:
        client().get(URL)
    assert caught.value.retry_after == 90 and requests_mock.call_count == 1


def test_429_without_retry_after_defaults_to_a_minute(requests_mock):
    requests_mock.get(URL, status_code=429)
    with pytest.raises(RateLimited) as caught:
        client().get(URL)
    assert caught.value.retry_after == 60


def test_short_429_is_waited_out_and_blocks_the_shared_budget(requests_mock, redis_db):
    from connectors.rate_limit import RateLimiter

    requests_mock.get(URL, [{"status_code": 429, "headers": {"Retry-After": "1"}}, {"json": {"ok": True}}])
    limiter = RateLimiter(redis_db)
    sleeps = []
    http = client(limiter=limiter, budget=RateBudget(per_minute=100), budget_key=("xero", "t1"), sleeps=sleeps)
    other = limiter.acquire("xero", "t1", RateBudget(per_minute=100))
    assert other.granted  # before the 429
    assert http.get_json(URL) == {"ok": True}
    assert sleeps and 0 < sleeps[0] <= 1


def test_retry_after_http_date():
    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=45), usegmt=True), now=now) == 45
    assert parse_retry_after("12") == 12
    assert parse_retry_after(None) == 60 and parse_retry_after("garbage", default=7) == 7


def test_build_client_and_scopes():
    spec = get_connector("demo").spec
    config = {"base_url": "http://x", "api_key": "abcd-1234-key"}
    assert secrets_for(spec, config, {"refresh_token": "rt-999999"}) == ["abcd-1234-key", "rt-999999"]
    http = build_client(spec, tenant=budget_scope(spec, reference="c-1"), secrets=["abcd-1234-key"])
    assert http.limiter is None and http.budget_key == ("demo", "tenant-c-1") and http.package == spec.display_name
    keyed = budget_scope(type("S", (), {"rate_budget": RateBudget(per="key")})(), api_key="abcd-1234-key")
    assert "abcd" not in keyed and keyed.startswith("key-")


def test_a_worker_sleeps_out_a_minute_window_but_defers_longer_waits():
    from connectors.base import RateBudget
    from connectors.http import budget_wait

    assert budget_wait(RateBudget(per_minute=60)) == 65.0  # Xero, Exact: one window is slept out
    assert budget_wait(RateBudget(per_minute=600, window_seconds=300)) == 65.0  # never minutes of sleep
    assert budget_wait(RateBudget(per_day=1000)) == 5.0  # a daily budget defers the run
    assert budget_wait(None) == 5.0


# -- the interpret hook (errors the status does not tell) --------------------------------------

class RecordingLimiter:
    """A stand-in for :class:`connectors.rate_limit.RateLimiter` that grants every call and
    records what the client asked of it."""

    def __init__(self):
        self.acquired, self.released, self.blocked = 0, 0, []

    def acquire_all(self, package, budgets):
        from connectors.rate_limit import Permit

        self.acquired += 1
        return Permit(wait=0, lease=f"lease-{self.acquired}", package=package, held=tuple(budgets))

    def release(self, permit):
        self.released += 1

    def block(self, package, scope, seconds):
        self.blocked.append((package, scope, seconds))


def body_says(word, error):
    """A hook returning ``error`` when the JSON body has ``{"status": word}``."""
    def interpret(response):
        try:
            return error() if response.json().get("status") == word else None
        except ValueError:
            return None
    return interpret


def test_interpret_runs_before_the_status_table_and_is_not_retried(requests_mock):
    requests_mock.post(URL + "?key=" + SECRET, status_code=500,
                       json={"status": "denied", "text": f"token {SECRET} expired"})

    def interpret(response):
        if response.json()["status"] == "denied":
            return AuthError(f"Xero refused token {SECRET}: {response.json()['text']}", detail=f"fault {SECRET}")
        return None

    sleeps = []
    http = client(interpret=interpret, sleeps=sleeps)
    with pytest.raises(AuthError) as caught:
        http.post(URL, params={"key": SECRET})
    assert requests_mock.call_count == 1 and http.api_calls == 1 and sleeps == []
    error = caught.value
    for text in (error.message, error.detail, str(error), repr(error)):
        assert SECRET not in text
    assert error.detail.startswith("POST /v1/things -> 500 fault")


def test_interpret_finds_an_error_inside_a_200(requests_mock):
    requests_mock.get(URL, json={"status": "no-rights"})
    http = client(interpret=body_says("no-rights", lambda: PermissionError("Xero does not allow it.")))
    with pytest.raises(PermissionError) as caught:
        http.get_json(URL)
    assert caught.value.detail == "GET /v1/things -> 200" and requests_mock.call_count == 1


def test_interpret_returning_none_leaves_the_table_in_charge(requests_mock):
    requests_mock.get(URL, [{"status_code": 401, "json": {}}, {"json": {"ok": True}}])
    http = client(interpret=lambda response: None)
    with pytest.raises(AuthError) as caught:
        http.get(URL)
    assert "reconnect" in caught.value.message
    assert http.get_json(URL) == {"ok": True}


def test_an_interpreted_transient_error_is_retried_like_a_5xx(requests_mock):
    requests_mock.get(URL, [{"json": {"status": "busy"}}, {"json": {"status": "busy"}}, {"json": {"status": "ok"}}])
    sleeps = []
    http = client(interpret=body_says("busy", lambda: TransientError("Xero is busy.")), sleeps=sleeps)
    assert http.get_json(URL) == {"status": "ok"}
    assert requests_mock.call_count == 3 and http.api_calls == 3 and sleeps == [0.5, 1.0]


def test_an_interpreted_transient_error_is_raised_when_the_retries_are_spent(requests_mock):
    requests_mock.get(URL, json={"status": "busy"})
    http = client(interpret=body_says("busy", lambda: TransientError("Xero is busy.")), max_retries=2)
    with pytest.raises(TransientError) as caught:
        http.get(URL)
    assert caught.value.message == "Xero is busy." and requests_mock.call_count == 3


def test_an_interpreted_rate_limit_honours_its_retry_after(requests_mock):
    requests_mock.get(URL, [{"json": {"status": "slow"}}, {"json": {"status": "ok"}}])
    sleeps = []
    http = client(interpret=body_says("slow", lambda: RateLimited("Xero: slow down.", retry_after=2)), sleeps=sleeps)
    assert http.get_json(URL) == {"status": "ok"}
    assert sleeps == [2.0] and requests_mock.call_count == 2


def test_a_long_interpreted_rate_limit_blocks_the_budget_and_raises_at_once(requests_mock):
    requests_mock.get(URL, json={"status": "slow"})
    limiter = RecordingLimiter()
    http = client(interpret=body_says("slow", lambda: RateLimited("Xero: slow down.", retry_after=90)),
                  limiter=limiter, budget=RateBudget(per_minute=60), budget_key=("xero", "tenant-1"))
    with pytest.raises(RateLimited) as caught:
        http.get(URL)
    assert caught.value.retry_after == 90 and requests_mock.call_count == 1
    assert limiter.acquired == limiter.released == 1 and limiter.blocked == [("xero", "tenant-1", 90.0)]


def test_a_daily_interpreted_rate_limit_is_never_slept(requests_mock):
    requests_mock.get(URL, json={"status": "spent"})
    sleeps = []
    http = client(interpret=body_says("spent", lambda: RateLimited("Spent.", retry_after=1, daily=True)),
                  sleeps=sleeps)
    with pytest.raises(RateLimited) as caught:
        http.get(URL)
    assert caught.value.daily and sleeps == [] and requests_mock.call_count == 1


def test_the_per_request_hook_runs_before_the_clients_own(requests_mock):
    requests_mock.get(URL, json={"status": "denied"})
    http = client(interpret=body_says("denied", lambda: DataError("client hook")))
    with pytest.raises(AuthError):
        http.get(URL, interpret=body_says("denied", lambda: AuthError("request hook")))
    with pytest.raises(DataError):
        http.get(URL, interpret=lambda response: None)


def test_a_broken_hook_is_ignored_and_a_hook_raising_a_typed_error_counts(requests_mock):
    requests_mock.get(URL, status_code=404, json={})

    def broken(response):
        raise KeyError("no such field")

    with pytest.raises(NotFoundError):
        client(interpret=broken).get(URL)

    def raising(response):
        raise AuthError(f"refused {SECRET}")

    with pytest.raises(AuthError) as caught:
        client(interpret=raising).get(URL)
    assert SECRET not in caught.value.message and requests_mock.call_count == 2


def test_a_hook_must_answer_a_typed_error_or_none(requests_mock):
    requests_mock.get(URL, json={})
    with pytest.raises(TypeError):
        client(interpret=lambda response: "an error").get(URL)


def test_build_client_accepts_interpret():
    def hook(response):
        return None

    http = build_client(get_connector("demo").spec, tenant="t", interpret=hook)
    assert http.interpret is hook


def test_vendor_error_and_match_fault():
    from connectors.base import ConfigError
    from connectors.http import match_fault, vendor_error

    table = {"354": AuthError, 4: PermissionError, "Access denied": AuthError, "busy": TransientError}
    assert match_fault(table, ("soap:Client", "Client"), "Token invalid (code 354)") is AuthError
    assert match_fault(table, ("4",), "") is PermissionError and match_fault(table, (4,), "") is PermissionError
    assert match_fault(table, (), "code 3541") is None and match_fault(table, (), "ACCESS DENIED here") is AuthError
    assert match_fault({"3541": DataError, "354": AuthError}, ("354",), "code 3541") is AuthError  # codes win
    assert match_fault(None, ("354",)) is None

    error = vendor_error("Odoo", AuthError, "Traceback (most recent call last):\n  File x\nAccessDenied: Access Denied")
    assert isinstance(error, AuthError) and error.message.endswith("Odoo says: \u201cAccessDenied: Access Denied\u201d")
    assert "reconnect" in error.message
    limited = vendor_error("Odoo", RateLimited, "x" * 500)
    assert limited.retry_after == 60 and "\u2026" in limited.message and len(limited.message) < 450
    assert vendor_error("Odoo", ConfigError).message.startswith("Odoo refused the settings")
    transient = vendor_error("Odoo", TransientError, "")
    assert transient.message == "Odoo had a problem on its side. The sync will try again."


def test_the_environments_proxy_is_honoured_and_read_once_per_host(monkeypatch, requests_mock):
    from connectors.http import VendorSession

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.firm.test:3128")
    monkeypatch.setenv("NO_PROXY", "bypass.example.test")
    session = VendorSession()
    looked_up = []
    real = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies",
                        lambda url, no_proxy=None: looked_up.append(url) or real(url, no_proxy=no_proxy))
    first = session.merge_environment_settings(URL, {}, None, None, None)
    assert first["proxies"].get("https") == "http://proxy.firm.test:3128"
    first["proxies"].clear()  # what a caller does with its copy does not reach the next request
    again = session.merge_environment_settings(URL + "?page=2", {}, None, None, None)
    assert again["proxies"].get("https") == "http://proxy.firm.test:3128"
    bypassed = session.merge_environment_settings("https://bypass.example.test/x", {}, None, None, None)
    assert "https" not in bypassed["proxies"]
    assert len(looked_up) == 2, "one look-up per scheme and host"
    explicit = session.merge_environment_settings(URL, {"https": "http://other.test:1"}, None, None, None)
    assert explicit["proxies"]["https"] == "http://other.test:1"
