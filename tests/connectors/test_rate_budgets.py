"""Several budgets per call (per tenant AND per connection) on the real test Redis, and the
sandbox enforcing both (issue #7, measure 6)."""
import threading
import time
from collections import Counter

import pytest

from requests_mock import ANY as requests_mock_any

from connectors.auth import NoAuth
from connectors.base import ConnectorSpec, RateBudget, RateLimited
from connectors.http import HttpClient, budget_scope, budget_wait, build_client
from connectors.rate_limit import RateLimiter
from connectors.xero import Xero
from sandbox import create_app
from connectors.xero.emulator import tenant_id

URL = "https://api.example.test/x"


def two(tenant_budget, connection_budget, tenant="tenant-a", connection="connection-1"):
    return [(tenant, tenant_budget), (connection, connection_budget)]


def test_the_connection_budget_caps_every_tenant_together(redis_db):
    limiter = RateLimiter(redis_db)
    per_tenant, per_connection = RateBudget(per_minute=3), RateBudget(per_minute=5, per="connection")
    granted = Counter()
    for tenant in ("tenant-a", "tenant-b", "tenant-c"):
        for _ in range(4):
            if limiter.acquire_all("xero", two(per_tenant, per_connection, tenant)).granted:
                granted[tenant] += 1
    assert granted == {"tenant-a": 3, "tenant-b": 2}
    assert limiter.usage("xero", "connection-1", per_connection)["window"] == 5


def test_a_refused_call_counts_against_no_budget(redis_db):
    limiter = RateLimiter(redis_db)
    per_tenant, per_connection = RateBudget(per_minute=2, per_day=100), RateBudget(per_minute=10, per="connection")
    for _ in range(2):
        assert limiter.acquire_all("xero", two(per_tenant, per_connection)).granted
    for _ in range(5):  # the tenant is full: the connection must not lose calls to these refusals
        assert not limiter.acquire_all("xero", two(per_tenant, per_connection)).granted
    assert limiter.usage("xero", "connection-1", per_connection)["window"] == 2
    assert limiter.usage("xero", "tenant-a", per_tenant) == {"window": 2, "day": 2, "in_flight": 0}


def test_the_wait_is_the_longest_of_the_full_budgets(redis_db):
    limiter = RateLimiter(redis_db)
    per_tenant = RateBudget(per_minute=1, window_seconds=2)
    per_connection = RateBudget(per_minute=1, window_seconds=60, per="connection")
    assert limiter.acquire_all("xero", two(per_tenant, per_connection)).granted
    refused = limiter.acquire_all("xero", two(per_tenant, per_connection))
    assert not refused.granted and 55 < refused.wait <= 60 and not refused.daily and not refused.concurrency
    limiter.block("xero", "tenant-b", 120)
    blocked = limiter.acquire_all("xero", two(per_tenant, per_connection, tenant="tenant-b"))
    assert 115 < blocked.wait <= 120


def test_no_slot_is_held_while_another_budget_is_full(redis_db):
    limiter = RateLimiter(redis_db)
    per_tenant = RateBudget(concurrency=1)
    per_connection = RateBudget(concurrency=1, per="connection")
    first = limiter.acquire_all("xero", two(per_tenant, per_connection, tenant="tenant-a"))
    assert first.granted
    # tenant-b's own slot is free, the connection's is not: tenant-b must not keep its slot
    refused = limiter.acquire_all("xero", two(per_tenant, per_connection, tenant="tenant-b"))
    assert not refused.granted and refused.concurrency
    assert limiter.usage("xero", "tenant-b", per_tenant)["in_flight"] == 0
    limiter.release(first)
    assert limiter.usage("xero", "tenant-a", per_tenant)["in_flight"] == 0
    assert limiter.usage("xero", "connection-1", per_connection)["in_flight"] == 0
    assert limiter.acquire_all("xero", two(per_tenant, per_connection, tenant="tenant-b")).granted


def test_release_counts_the_window_from_the_answer(redis_db):
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=1, window_seconds=1)
    permit = limiter.acquire("xero", "tenant-a", budget)
    time.sleep(0.6)  # a slow request: it may have reached the package only now
    limiter.release(permit)
    refused = limiter.acquire("xero", "tenant-a", budget)
    assert not refused.granted and 0.9 <= refused.wait <= 1.0


def test_budgets_need_distinct_scopes(redis_db):
    with pytest.raises(ValueError):
        RateLimiter(redis_db).acquire_all("xero", [("same", RateBudget(per_minute=1)), ("same", RateBudget(per_day=9))])


def test_threads_on_many_tenants_never_exceed_either_budget(redis_db):
    limiter = RateLimiter(redis_db)
    per_tenant, per_connection = RateBudget(per_minute=4), RateBudget(per_minute=15, per="connection")
    granted, lock = Counter(), threading.Lock()

    def worker(tenant):
        for _ in range(10):
            if limiter.acquire_all("xero", two(per_tenant, per_connection, tenant)).granted:
                with lock:
                    granted[tenant] += 1

    threads = [threading.Thread(target=worker, args=(f"tenant-{n % 6}",)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted.values()) == 15
    assert max(granted.values()) <= 4


def test_the_client_sleeps_the_longest_wait_then_calls(redis_db, requests_mock):
    requests_mock.get(URL, json={})
    limiter = RateLimiter(redis_db)
    per_tenant = RateBudget(per_minute=5, window_seconds=60)
    per_connection = RateBudget(per_minute=1, window_seconds=1, per="connection")
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    client = HttpClient("Xero", limiter=limiter, budget_key=("xero", "ignored"),
                        budgets=two(per_tenant, per_connection), sleep=sleep)
    assert client.budget_key == ("xero", "tenant-a")
    client.get(URL)
    client.get(URL)
    assert requests_mock.call_count == 2 and client.api_calls == 2
    assert slept and 0.5 < sum(slept) <= 1.1
    assert limiter.usage("xero", "tenant-a", per_tenant)["window"] == 2


def test_a_long_wait_on_the_connection_defers_the_run(redis_db, requests_mock):
    requests_mock.get(URL, json={})
    limiter = RateLimiter(redis_db)
    budgets = two(RateBudget(per_minute=60), RateBudget(per_minute=60, per="connection"))
    limiter.block("xero", "connection-1", 300)
    client = HttpClient("Xero", limiter=limiter, budget_key=("xero", None), budgets=budgets, max_wait=65,
                        sleep=lambda s: None)
    with pytest.raises(RateLimited) as caught:
        client.get(URL)
    assert 290 < caught.value.retry_after <= 300 and requests_mock.call_count == 0


def test_xero_declares_its_app_minute_limit_per_connection():
    tenant, app = Xero.spec.budgets
    assert Xero.spec.rate_budget is tenant
    assert (tenant.per, tenant.per_minute, tenant.per_day, tenant.concurrency) == ("tenant", 60, 5000, 5)
    assert (app.per, app.per_minute, app.window_seconds) == ("connection", 10_000, 60)
    assert budget_wait(Xero.spec.budgets) == 65.0


def test_scopes_of_a_spec_with_two_budgets():
    assert budget_scope(Xero.spec, reference="org-1", connection_id=7) == ("tenant-org-1", "connection-7")
    # no organisation (a connection-wide check): still two distinct scopes
    assert budget_scope(Xero.spec, connection_id=7) == ("connection-7", "connection-7.connection")
    http = build_client(Xero.spec, tenant=("tenant-org-1", "connection-7"))
    assert [scope for scope, _ in http.budgets] == ["tenant-org-1", "connection-7"]
    assert http.budget_key == ("xero", "tenant-org-1")
    one = build_client(Xero.spec, tenant="oauth-setup")
    assert [scope for scope, _ in one.budgets] == ["oauth-setup", "oauth-setup.connection"]
    with pytest.raises(ValueError):
        build_client(Xero.spec, tenant=("only-one",))


def test_a_sync_through_build_client_counts_both_budgets(redis_db, requests_mock):
    requests_mock.get(URL, json={})
    http = build_client(Xero.spec, redis=redis_db, tenant=budget_scope(Xero.spec, reference="org-1", connection_id=7),
                        sleep=lambda s: None)
    for _ in range(3):
        http.get(URL)
    tenant, app = Xero.spec.budgets
    assert http.limiter.usage("xero", "tenant-org-1", tenant)["window"] == 3
    assert http.limiter.usage("xero", "connection-7", app)["window"] == 3
    assert http.limiter.usage("xero", "tenant-org-1", tenant)["in_flight"] == 0


# -- the sandbox ---------------------------------------------------------------------


def sandbox_with(budget):
    app = create_app(budgets={"xero": budget})
    state = app.extensions["sandbox"]
    return app.test_client(), state


def bearer(state):
    return "Bearer " + state.oauth["xero"]._issue("xero-sandbox-client")["access_token"]


def organisation(client, token, company):
    return client.get("/xero/api.xro/2.0/Organisation",
                      headers={"Authorization": token, "xero-tenant-id": tenant_id(company)})


def test_sandbox_enforces_the_budget_per_organisation_and_per_grant():
    client, state = sandbox_with({"per_minute": 2, "per_connection": 3, "window_seconds": 60})
    companies = [book.spec.id for book in state.books.values()]
    grant, other_grant = bearer(state), bearer(state)
    answers = [organisation(client, grant, companies[0]).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert organisation(client, grant, companies[1]).status_code == 200  # the grant's 3rd call
    refused = organisation(client, grant, companies[2])
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "appminute"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert organisation(client, other_grant, companies[2]).status_code == 200  # another grant, its own budget
    stats = state.stats()
    assert stats["rejected"]["xero"] == 2
    assert stats["rejected_by"] == {"xero:tenant": 1, "xero:connection": 1}


def test_sandbox_keeps_the_grant_across_a_refresh():
    client, state = sandbox_with({"per_connection": 1, "window_seconds": 60})
    companies = [book.spec.id for book in state.books.values()]
    first = state.oauth["xero"]._issue("xero-sandbox-client")
    assert organisation(client, "Bearer " + first["access_token"], companies[0]).status_code == 200
    renewed = client.post("/xero/connect/token", auth=("xero-sandbox-client", "xero-sandbox-secret"),
                          data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert renewed.status_code == 200
    # the renewed token belongs to the same grant: its budget is already spent
    again = organisation(client, "Bearer " + renewed.get_json()["access_token"], companies[1])
    assert again.status_code == 429 and again.headers["X-Rate-Limit-Problem"] == "appminute"


# -- endpoint budgets (a budget counting only the calls to matching paths) --------------------

ENDPOINT_SPEC_BUDGETS = (
    RateBudget(per_minute=30, per="connection"),
    RateBudget(per_minute=2, window_seconds=86400, path=r"/dossiers/[^/]+/accounts$", method="GET",
               name="accounts", label="read the chart of accounts"),
    RateBudget(per_day=3, path=r"/modified$", name="modified", label="read a modified feed"),
)
API = "https://api.example.test"


def endpoint_client(redis_db, sleep=lambda s: None):
    scopes = ["connection-1", "tenant-9.accounts", "tenant-9.modified"]
    return HttpClient("Octopus", limiter=RateLimiter(redis_db), budget_key=("octopus", "connection-1"),
                      budgets=list(zip(scopes, ENDPOINT_SPEC_BUDGETS)), max_wait=65, sleep=sleep)


def test_an_endpoint_budget_counts_only_its_method_and_path(redis_db, requests_mock):
    requests_mock.register_uri(requests_mock_any, requests_mock_any, json={})
    http = endpoint_client(redis_db)
    http.get(f"{API}/dossiers/9/accounts")
    http.get(f"{API}/dossiers/9/accounts/modified")
    http.request("PUT", f"{API}/dossiers/9/accounts")
    http.get(f"{API}/dossiers")
    general, accounts, modified = ENDPOINT_SPEC_BUDGETS
    assert http.limiter.usage("octopus", "connection-1", general)["window"] == 4
    assert http.limiter.usage("octopus", "tenant-9.accounts", accounts)["window"] == 1
    assert http.limiter.usage("octopus", "tenant-9.modified", modified)["day"] == 1


def test_a_spent_endpoint_budget_defers_until_its_next_call_and_says_when(redis_db, requests_mock):
    requests_mock.register_uri(requests_mock_any, requests_mock_any, json={})
    http = endpoint_client(redis_db)
    for _ in range(2):
        http.get(f"{API}/dossiers/9/accounts")
    with pytest.raises(RateLimited) as caught:
        http.get(f"{API}/dossiers/9/accounts")
    error = caught.value
    assert error.daily and 86000 < error.retry_after <= 86400 and error.budget == "accounts"
    assert "read the chart of accounts 2 times a day" in error.message
    assert error.resume_at.strftime("%Y-%m-%d %H:%M UTC") in error.message
    assert requests_mock.call_count == 2  # the refused call never reached the package
    http.get(f"{API}/dossiers/9/bookyears")  # other endpoints still answer
    for _ in range(3):
        http.get(f"{API}/dossiers/9/accounts/amounts/modified")
    with pytest.raises(RateLimited) as per_day:
        http.get(f"{API}/dossiers/9/bookings/modified")
    assert per_day.value.daily and per_day.value.budget == "modified" and "3 times a day" in per_day.value.message


def test_endpoint_budgets_get_their_own_scopes():
    spec = ConnectorSpec(key="octo", display_name="Octo", kind="accounting", level="firm", auth=NoAuth(),
                         config_schema=None, api_version="1", docs_url="https://example.test",
                         rate_budgets=ENDPOINT_SPEC_BUDGETS)
    scopes = budget_scope(spec, reference="9", connection_id=1)
    assert scopes == ("connection-1", "tenant-9.accounts", "tenant-9.modified")
    http = build_client(spec, tenant=scopes)
    assert [scope for scope, _ in http.budgets] == list(scopes)  # not suffixed twice
    assert budget_wait(ENDPOINT_SPEC_BUDGETS) == 65.0
    assert not RateBudget().path and RateBudget().applies_to("GET", "/anything")
