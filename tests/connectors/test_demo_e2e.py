"""Demo Books and Demo Cloud end to end against the running sandbox (real HTTP on 127.0.0.1)."""
import json
import multiprocessing
import re
import threading
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from redis import Redis

from connectors.base import (
    AccountRecord,
    AuthError,
    ConnectorContext,
    DataError,
    DeletedRecord,
    RateLimited,
    StreamState,
    SyncWindow,
    TransientError,
)
from connectors.demo import DemoBooks
from connectors.demo_oauth import DemoCloud
from connectors.http import budget_scope, build_client
from connectors.oauth import TokenManager, authorization_url, exchange_code, new_code_verifier, redis_lock

CLIENT_ID, CLIENT_SECRET = "demo-cloud-client", "demo-cloud-secret"
REDIRECT = "http://127.0.0.1:9/callback"


def demo(sandbox, reference="c-1002", api_key="demo-key", redis=None, **client):
    client.setdefault("sleep", lambda s: None)
    http = build_client(DemoBooks.spec, redis=redis, tenant=budget_scope(DemoBooks.spec, reference=reference),
                        secrets=[api_key], **client)
    return DemoBooks(ConnectorContext(config={"base_url": sandbox.url + "/demo", "api_key": api_key},
                                      credentials={}, reference=reference, http=http))


def read(connector, stream, bookmark=None, window=None):
    state = StreamState(bookmark=bookmark)
    return list(connector.read(stream, state, window or SyncWindow())), state


def test_full_read_is_consistent(sandbox):
    connector = demo(sandbox)
    assert connector.check().references == 3
    accounts, _ = read(connector, "accounts")
    assert len(accounts) == 120 and all(isinstance(a, AccountRecord) for a in accounts)
    lines, state = read(connector, "ledger_lines")
    assert len(lines) == 2000 and len({line.source_id for line in lines}) == 2000
    assert sum(line.amount for line in lines) == 0
    assert state.new_bookmark == {"modified_at": lines[-1].modified_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "id": int(lines[-1].source_id)}
    assert {line.account for line in lines} <= {a.number for a in accounts}
    balances, _ = read(connector, "balances")
    totals = {}
    for line in lines:
        key = (line.account, line.booking_period_end)
        totals[key] = totals.get(key, Decimal(0)) + line.amount
    assert {(b.account, b.period_end): b.amount for b in balances} == {k: v for k, v in totals.items() if v}
    years, _ = read(connector, "fiscal_years")
    assert [(y.start.isoformat(), y.end.isoformat()) for y in years] == [("2023-04-01", "2024-03-31"),
                                                                          ("2024-04-01", "2025-03-31")]
    assert sandbox.calls("/ledger-lines") == 5  # 4 full pages of 500, then an empty one


def test_incremental_sync_sees_exactly_the_changes_and_deletions(sandbox):
    connector = demo(sandbox, reference="c-1001")
    _, lines_state = read(connector, "ledger_lines")
    _, deleted_state = read(connector, "deleted")
    change = sandbox.mutate("c-1001", add=2, change=1, delete=1)
    lines, state = read(connector, "ledger_lines", lines_state.new_bookmark)
    assert sorted(int(line.source_id) for line in lines) == sorted(change["added"] + change["changed"])
    assert sum(line.amount for line in lines if int(line.source_id) in change["added"]) == 0
    deleted, deleted_state2 = read(connector, "deleted", deleted_state.new_bookmark)
    assert [int(d.source_id) for d in deleted] == sorted(change["deleted"])
    assert all(isinstance(d, DeletedRecord) for d in deleted)
    again, _ = read(connector, "ledger_lines", state.new_bookmark)
    assert again == []
    assert read(connector, "deleted", deleted_state2.new_bookmark)[0] == []


def test_transient_faults_are_retried(sandbox):
    sandbox.fault("500", path="/demo/api/v1/companies", count=2)
    connector = demo(sandbox)
    assert len(connector.list_references()) == 3
    assert connector.http.api_calls == 3


def test_long_429_defers(sandbox):
    sandbox.fault("429", path="/demo/api/v1/companies/c-1002/accounts", retry_after=120)
    with pytest.raises(RateLimited) as caught:
        read(demo(sandbox), "accounts")
    assert caught.value.retry_after == 120


def test_malformed_answer_is_a_data_error(sandbox):
    sandbox.fault("malformed", path="/demo/api/v1/companies/c-1002/ledger-lines", count=2)  # asked again once
    with pytest.raises(DataError):
        read(demo(sandbox), "ledger_lines")


def test_slow_answer_times_out_as_transient(sandbox):
    sandbox.fault("slow", path="/demo/api/v1/companies", count=2, delay=0.5)
    with pytest.raises(TransientError) as caught:
        demo(sandbox, timeout=(2, 0.1), max_retries=1).list_references()
    assert "did not answer in time (2 tries)" in caught.value.message


def test_sandbox_budget_answers_429_with_retry_after(sandbox):
    sandbox.budgets(demo={"per_minute": 2, "window_seconds": 60})
    connector = demo(sandbox, max_wait=0)
    connector.fiscal_years()
    connector.fiscal_years()
    with pytest.raises(RateLimited) as caught:
        connector.fiscal_years()
    assert 0 < caught.value.retry_after <= 60
    assert sandbox.stats()["rejected"]["demo"] == 1


def test_wrong_api_key_is_an_auth_error_without_the_key(sandbox):
    with pytest.raises(AuthError) as caught:
        demo(sandbox, api_key="wrong-key-123456").check()
    assert "wrong-key-123456" not in caught.value.message + (caught.value.detail or "")
    assert "Invalid API key" in caught.value.message


# -- OAuth ------------------------------------------------------------------------------

def authorize(sandbox, decision="allow", verifier=None):
    """Walk the consent page like a browser; return the redirect's query."""
    verifier = verifier or new_code_verifier()
    url = authorization_url(DemoCloud.spec, CLIENT_ID, REDIRECT, "st4te", verifier,
                            base_url=sandbox.url + "/demo-cloud")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] == ["st4te"]
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and ">Allow<" in page.text and ">Deny<" in page.text
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    answer = requests.post(url.split("?")[0], data={**form, "decision": decision}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}, verifier


def connect(sandbox):
    answer, verifier = authorize(sandbox)
    return exchange_code(DemoCloud.spec, CLIENT_ID, CLIENT_SECRET, answer["code"], REDIRECT, verifier,
                         base_url=sandbox.url + "/demo-cloud")


def cloud(sandbox, store, redis=None):
    return DemoCloud(ConnectorContext(
        config={"base_url": sandbox.url + "/demo-cloud", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        credentials=store["creds"], reference="c-1003", http=build_client(DemoCloud.spec, sleep=lambda s: None),
        load_credentials=lambda: store["creds"], save_credentials=lambda c: store.update(creds=c),
        lock=redis_lock(redis, "connection:test") if redis else None,
    ))


def test_authorization_code_flow_with_pkce(sandbox):
    creds = connect(sandbox)
    assert set(creds) >= {"access_token", "refresh_token", "expires_at"}
    assert 1700 < creds["expires_at"] - time.time() <= 1800
    store = {"creds": creds}
    assert cloud(sandbox, store).check().ok
    assert sandbox.stats()["token_grants"]["demo_oauth"] == 1


def test_deny_and_bad_verifier(sandbox):
    answer, _ = authorize(sandbox, decision="deny")
    assert answer == {"error": "access_denied", "state": "st4te"}
    answer, _ = authorize(sandbox)
    with pytest.raises(AuthError):
        exchange_code(DemoCloud.spec, CLIENT_ID, CLIENT_SECRET, answer["code"], REDIRECT, new_code_verifier(),
                      base_url=sandbox.url + "/demo-cloud")


def test_expired_token_is_refreshed_and_the_rotated_grant_persisted_first(sandbox):
    store = {"creds": {**connect(sandbox), "expires_at": int(time.time()) + 10}}
    old_refresh = store["creds"]["refresh_token"]
    connector = cloud(sandbox, store)
    lines, _ = read(connector, "ledger_lines")
    assert lines
    assert store["creds"]["refresh_token"] != old_refresh
    assert store["creds"]["expires_at"] - time.time() > 1700
    assert sandbox.stats()["token_refreshes"]["demo_oauth"] == 1
    # the old refresh token worked once: using it again is refused and reported for an accountant
    stale = {"creds": {**store["creds"], "refresh_token": old_refresh, "expires_at": 0}}
    with pytest.raises(AuthError) as caught:
        cloud(sandbox, stale).check()
    assert "expired or was revoked" in caught.value.message and old_refresh not in caught.value.message


def test_invalid_grant_uses_a_grant_another_process_rotated(sandbox):
    creds = {**connect(sandbox), "expires_at": 0}
    rotated = {}
    other = TokenManager(DemoCloud.spec, CLIENT_ID, CLIENT_SECRET, load_credentials=lambda: creds,
                         save_credentials=rotated.update, base_url=sandbox.url + "/demo-cloud")
    other.access_token()  # another process rotates the grant but our store lags behind
    reads = [creds, creds, rotated]
    saved = []
    ours = TokenManager(DemoCloud.spec, CLIENT_ID, CLIENT_SECRET, load_credentials=lambda: reads.pop(0),
                        save_credentials=saved.append, base_url=sandbox.url + "/demo-cloud")
    assert ours.access_token() == rotated["access_token"]
    assert saved == [] and sandbox.stats()["token_refreshes"]["demo_oauth"] == 2


def test_revoked_grant_needs_reconnect(sandbox):
    store = {"creds": {**connect(sandbox), "expires_at": 0}}
    sandbox.fault("revoke", path="/demo-cloud/oauth/token")
    with pytest.raises(AuthError) as caught:
        cloud(sandbox, store).list_references()
    assert "An administrator must reconnect it" in caught.value.message


def test_two_threads_refresh_a_rotating_grant_once(sandbox, redis_db):
    store = {"creds": {**connect(sandbox), "expires_at": 0}}
    barrier, results, errors = threading.Barrier(2), [], []

    def worker():
        connector = cloud(sandbox, store, redis=redis_db)
        barrier.wait()
        try:
            results.append(len(connector.list_references()))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and results == [3, 3]
    assert sandbox.stats()["token_refreshes"]["demo_oauth"] == 1


def _refresh_in_process(sandbox_url, redis_url, key, start, results):
    redis = Redis.from_url(redis_url)
    store = {
        "load": lambda: json.loads(redis.get(key)),
        "save": lambda creds: redis.set(key, json.dumps(creds)),
    }
    manager = TokenManager(DemoCloud.spec, CLIENT_ID, CLIENT_SECRET, load_credentials=store["load"],
                           save_credentials=store["save"], lock=redis_lock(redis, "connection:e2e"),
                           base_url=sandbox_url + "/demo-cloud")
    start.wait(30)
    try:
        token = manager.access_token()
        response = requests.get(sandbox_url + "/demo-cloud/api/v1/companies",
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
        results.put(response.status_code)
    except Exception as exc:  # noqa: BLE001 - the parent asserts on it
        results.put(repr(exc))


def test_two_processes_refresh_a_rotating_grant_once(sandbox, redis_db, redis_url):
    key = "test:creds"
    redis_db.set(key, json.dumps({**connect(sandbox), "expires_at": 0}))
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_refresh_in_process, args=(sandbox.url, redis_url, key, start, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    assert outcomes == [200, 200]
    assert sandbox.stats()["token_refreshes"]["demo_oauth"] == 1
    assert json.loads(redis_db.get(key))["expires_at"] > time.time() + 1700
