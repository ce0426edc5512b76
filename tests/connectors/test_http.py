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
