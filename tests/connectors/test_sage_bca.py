"""Sage Business Cloud Accounting: the connector on vendor-shaped fixtures (requests-mock), then against the
sandbox's emulator (OAuth consent, both balance paths, paging, rotation, budgets and faults)."""
import random
import re
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.base import (
    AccountRecord, AuthError, ConnectorContext, DataError, DeletedRecord, FiscalYearRecord,
    LedgerLineRecord, NotFoundError, PermissionError, RateLimited, StreamState, SyncWindow,
)
from connectors.http import build_client, secrets_for
from connectors.sage_bca import PAGE_SIZE, SageAccounting, emulator
from tests.connectors.mocks import fixture
from tests.connectors.mocks import sage_bca as mocks

BASE = mocks.BASE_URL
GB, FR = mocks.BUSINESS, "2900655ce8f68e4c799b04d7baa45757"
APRIL, MAY = (date(2024, 4, 1), date(2024, 4, 30)), (date(2024, 5, 1), date(2024, 5, 31))
REDIRECT = "http://127.0.0.1/oauth/callback"
LAST_CHANGE = {"since": "2024-05-22T16:40:00Z", "ids": ["c1e0a1d2b3c44d5e8f9a0b1c2d3e4f58"]}


def connector(reference=GB, credentials=None, saved=None, config=None):
    config = config or mocks.config()
    credentials = credentials or mocks.credentials()
    http = build_client(SageAccounting.spec, secrets=secrets_for(SageAccounting.spec, config, credentials),
                        sleep=lambda seconds: None)
    return SageAccounting(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http,
                                           save_credentials=saved.append if saved is not None else None))


def read(sage, stream, window=None, bookmark=None):
    state = StreamState(bookmark=bookmark)
    return list(sage.read(stream, state, window or mocks.window())), state


@pytest.fixture
def vendor(requests_mock):
    mocks.register(requests_mock, BASE)
    return requests_mock


# -- the spec -----------------------------------------------------------------------------

def test_the_spec_declares_sage_s_oauth_and_budgets():
    spec = SageAccounting.spec
    auth = spec.auth
    assert (auth.rotating_refresh_token, auth.access_token_seconds, auth.scopes) == (True, 300, ("readonly",))
    assert auth.token_url == "https://oauth.accounting.sage.com/token"
    assert (spec.rate_budget.per_minute, spec.rate_budget.per_day, spec.rate_budget.per) == (100, 2500, "tenant")
    assert [s.name for s in SageAccounting.streams] == ["fiscal_years", "accounts", "ledger_lines", "deleted",
                                                         "balances"]


def test_the_consent_url_asks_sage_for_api_v3_1_read_only_access():
    url = SageAccounting.spec.auth.consent_url(SageAccounting, {"client_id": "app-1"}, REDIRECT, "st-1")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.sageone.com/oauth2/auth/central"
    assert query["filter"] == ["apiv3.1"] and query["scope"] == ["readonly"] and query["state"] == ["st-1"]
    sandbox = SageAccounting.oauth_endpoints({"oauth_url": "http://127.0.0.1:9/sage/"})
    assert (sandbox.authorize_url, sandbox.token_url) == ("http://127.0.0.1:9/sage/oauth2/auth/central",
                                                          "http://127.0.0.1:9/sage/token")


# -- references and headers ---------------------------------------------------------------

def test_businesses_are_listed_without_x_business_and_every_other_call_names_the_business(vendor):
    sage = connector()
    assert [(r.reference, r.name) for r in sage.list_references()] == [
        (GB, "Northwind Trading Ltd"), (FR, "Boulangerie Dupont SARL")]
    assert "X-Business" not in vendor.last_request.headers
    assert sage.check().message == "Connected to Sage Accounting business Northwind Trading Ltd."
    read(sage, "accounts")
    business_calls = [r for r in vendor.request_history if urlsplit(r.url).path != "/v3.1/businesses"]
    assert business_calls and all(r.headers["X-Business"] == GB for r in business_calls)


def test_a_business_no_longer_in_the_grant_is_not_found(vendor):
    with pytest.raises(NotFoundError, match="no longer shared"):
        connector(reference="0" * 32).check()


# -- fiscal years and chart ----------------------------------------------------------------

def test_fiscal_years_repeat_the_financial_settings_year_end(vendor):
    years, _ = read(connector(), "fiscal_years", SyncWindow(date(2023, 6, 1), date(2024, 5, 31)))
    assert years == [FiscalYearRecord(date(2023, 4, 1), date(2024, 3, 31)),
                     FiscalYearRecord(date(2024, 4, 1), date(2025, 3, 31))]


def test_the_chart_maps_ledger_account_types_and_reads_nominal_codes(vendor):
    accounts, _ = read(connector(), "accounts")
    assert accounts[0] == AccountRecord("1100", "Trade Debtors", "asset", "9a994b92267a11e797950a57719b2edb")
    assert {a.number: a.kind for a in accounts} == {"1100": "asset", "1200": "asset", "2200": "liability",
                                                    "3000": "equity", "4000": "income", "7500": "expense"}
    assert parse_qs(urlsplit(vendor.last_request.url).query)["items_per_page"] == [str(PAGE_SIZE)]


def test_a_nominal_code_sent_as_text_or_only_in_the_name_is_read(requests_mock):
    body = fixture("sage_bca", "ledger_accounts")
    body["$items"][0]["nominal_code"] = " 1100 "
    del body["$items"][1]["nominal_code"]  # "Bank Current Account (1200)"
    requests_mock.get(f"{BASE}/ledger_accounts", json=body)
    accounts, _ = read(connector(), "accounts")
    assert [a.number for a in accounts[:2]] == ["1100", "1200"]


def test_the_spec_s_bare_array_answer_is_read_like_the_envelope(requests_mock):
    requests_mock.get(f"{BASE}/ledger_accounts", json=fixture("sage_bca", "ledger_accounts")["$items"])
    accounts, _ = read(connector(), "accounts")
    assert len(accounts) == 6


def test_pages_follow_until_a_short_page(requests_mock):
    rows = fixture("sage_bca", "ledger_accounts")["$items"]
    chart = [dict(rows[i % 6], id=f"acc{i}", nominal_code=1000 + i) for i in range(PAGE_SIZE + 3)]

    def page(request, context):
        number = int(request.qs["page"][0])
        items = chart[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]
        return {"$total": len(chart), "$page": number, "$next": "/ledger_accounts?page=2" if number == 1 else None,
                "$back": None, "$itemsPerPage": PAGE_SIZE, "$items": items}

    requests_mock.get(f"{BASE}/ledger_accounts", json=page)
    accounts, _ = read(connector(), "accounts")
    assert len(accounts) == PAGE_SIZE + 3 and requests_mock.call_count == 2


# -- balances: the two paths ---------------------------------------------------------------

def test_gb_balances_come_from_the_trial_balance_in_both_of_its_shapes(vendor):
    balances, _ = read(connector(), "balances")
    by_period = defaultdict(dict)
    for b in balances:
        by_period[(b.period_start, b.period_end)][b.account] = b.amount
    # April: the example's shape (top level, strings); May: the definition's (trial_balance{}, doubles)
    assert by_period[APRIL] == {"1100": Decimal("120"), "4000": Decimal("-100"), "2200": Decimal("-20")}
    assert by_period[MAY] == {"1100": Decimal("-120"), "1200": Decimal("90"), "7500": Decimal("30")}
    assert all(b.basis == "movement" for b in balances)
    tb_calls = [r for r in vendor.request_history if r.path.endswith("/trial_balance")]
    assert [r.qs for r in tb_calls] == [{"from_date": ["2024-04-01"], "to_date": ["2024-04-30"]},
                                        {"from_date": ["2024-05-01"], "to_date": ["2024-05-31"]}]


@pytest.fixture
def french(requests_mock):
    mocks.register(requests_mock, BASE)
    requests_mock.get(f"{BASE}/businesses/{FR}", json=fixture("sage_bca", "business_fr"))
    requests_mock.get(f"{BASE}/trial_balance", status_code=404,
                      json=fixture("sage_bca", "error_trial_balance_unavailable"))
    requests_mock.get(f"{BASE}/ledger_accounts?show_balance_details=true",
                      json=fixture("sage_bca", "ledger_accounts_balance_details_2024-04"))
    return requests_mock


def test_outside_ca_gb_and_ie_balances_come_from_the_chart_s_balance_details(french):
    window = SyncWindow(APRIL[0], APRIL[1], (APRIL[1],))
    balances, _ = read(connector(reference=FR), "balances", window)
    assert {b.account: b.amount for b in balances} == {"1100": Decimal("120"), "4000": Decimal("-100"),
                                                       "2200": Decimal("-20")}
    assert not any(r.path.endswith("/trial_balance") for r in french.request_history)
    detail_call = french.last_request
    assert detail_call.qs["show_balance_details"] == ["true"]
    # the spec's date-time for these from_date/to_date, at the bounds of the days (README "Spec deviations")
    assert detail_call.qs["from_date"] == ["2024-04-01t00:00:00z"]
    assert detail_call.qs["to_date"] == ["2024-04-30t23:59:59z"]


def test_balance_details_with_only_a_balance_and_its_side_are_read(french):
    body = fixture("sage_bca", "ledger_accounts_balance_details_2024-04")
    for row in body["$items"]:
        for key in ("debits", "credits"):
            row["balance_details"].pop(key)
    french.get(f"{BASE}/ledger_accounts?show_balance_details=true", json=body)
    balances, _ = read(connector(reference=FR), "balances", SyncWindow(APRIL[0], APRIL[1], (APRIL[1],)))
    assert {b.account: b.amount for b in balances} == {"1100": Decimal("120"), "4000": Decimal("-100"),
                                                       "2200": Decimal("-20")}


def test_a_trial_balance_in_neither_shape_is_a_data_error(vendor):
    vendor.get(f"{BASE}/trial_balance", json={"balances": []})
    with pytest.raises(DataError, match="trial balance Firmsync could not read"):
        read(connector(), "balances")


# -- ledger lines and deletes ---------------------------------------------------------------

def test_ledger_lines_are_debit_minus_credit_on_the_nominal_code(vendor):
    lines, state = read(connector(), "ledger_lines")
    assert len(lines) == 7 and sum(line.amount for line in lines) == 0
    first = lines[0]
    assert first == LedgerLineRecord(
        source_id="c1e0a1d2b3c44d5e8f9a0b1c2d3e4f51", booking_date=date(2024, 4, 10), account="1100",
        amount=Decimal("120.0"), description="Sales invoice SI-1", reference="SI-1",
        modified_at=first.modified_at)
    assert first.modified_at.isoformat() == "2024-04-10T09:15:02+00:00"
    # the deleted entry changed last; the bookmark names the entries of its second (read again next time)
    assert state.new_bookmark == LAST_CHANGE


def test_deleted_entries_come_from_the_same_read_without_another_call(vendor):
    sage = connector()
    read(sage, "ledger_lines")
    calls = vendor.call_count
    deleted, state = read(sage, "deleted")
    assert deleted == [DeletedRecord("c1e0a1d2b3c44d5e8f9a0b1c2d3e4f58")]
    assert vendor.call_count == calls and state.new_bookmark == LAST_CHANGE
    # on its own (another bookmark), the deleted stream reads the feed itself
    alone, _ = read(connector(), "deleted", bookmark={"since": "2024-05-01T00:00:00Z", "ids": []})
    assert alone == deleted and vendor.last_request.qs["updated_or_created_since"] == ["2024-05-01t00:00:00z"]


def test_the_bookmark_is_the_latest_change_whatever_the_order(requests_mock):
    mocks.register(requests_mock, BASE)
    body = fixture("sage_bca", "ledger_entries")
    random.Random(7).shuffle(body["$items"])
    requests_mock.get(f"{BASE}/ledger_entries", json=body)
    _, state = read(connector(), "ledger_lines")
    assert state.new_bookmark == LAST_CHANGE


def test_an_incremental_read_asks_for_changes_since_the_bookmark_inclusive(vendor):
    _, state = read(connector(), "ledger_lines", bookmark={"since": "2024-05-21T08:00:00Z"})
    query = vendor.last_request.qs
    assert query["updated_or_created_since"] == ["2024-05-21t08:00:00z"]
    assert query["from_date"] == ["2024-04-01t00:00:00z"] and query["attributes"] == ["all"]
    vendor.get(f"{BASE}/ledger_entries", json={"$total": 0, "$page": 1, "$next": None, "$back": None,
                                               "$itemsPerPage": 200, "$items": []})
    _, quiet = read(connector(), "ledger_lines", bookmark={"since": "2024-05-21T08:00:00Z"})
    assert quiet.new_bookmark == {"since": "2024-05-21T08:00:00Z", "ids": []}  # nothing changed: the bookmark stays


def test_balances_are_read_again_only_after_a_change(vendor):
    sage = connector()
    read(sage, "ledger_lines")
    first, state = read(sage, "balances")
    assert first and state.new_bookmark == LAST_CHANGE  # up to the ledger lines read in the same run
    # a quiet night: the feed since the bookmark holds only the entry of the bookmark's second, already seen
    last = fixture("sage_bca", "ledger_entries")
    last["$items"] = last["$items"][-1:]
    vendor.get(f"{BASE}/ledger_entries", json=last)
    night = connector()
    read(night, "ledger_lines", bookmark=LAST_CHANGE)
    tb_calls = sum(1 for r in vendor.request_history if r.path.endswith("/trial_balance"))
    quiet, kept = read(night, "balances", bookmark=LAST_CHANGE)
    assert quiet == [] and kept.new_bookmark == LAST_CHANGE
    assert sum(1 for r in vendor.request_history if r.path.endswith("/trial_balance")) == tb_calls
    # another entry changed in that same second: every period is read again
    changed = connector()
    read(changed, "ledger_lines", bookmark={**LAST_CHANGE, "ids": []})
    again, _ = read(changed, "balances", bookmark={**LAST_CHANGE, "ids": []})
    assert again == first


def test_an_entry_without_a_date_is_a_data_error_naming_the_stream(vendor):
    body = fixture("sage_bca", "ledger_entries")
    body["$items"][2]["date"] = "tomorrow"
    vendor.get(f"{BASE}/ledger_entries", json=body)
    with pytest.raises(DataError, match="ledger entry date"):
        read(connector(), "ledger_lines")


def test_an_unreadable_answer_is_a_data_error(vendor):
    vendor.get(f"{BASE}/ledger_entries", text='{"$items": [{"id": ')
    with pytest.raises(DataError, match="could not read"):
        read(connector(), "ledger_lines")


# -- errors and tokens ----------------------------------------------------------------------

def test_sage_s_error_list_is_quoted_without_secrets(vendor):
    vendor.get(f"{BASE}/ledger_accounts", status_code=403, json=[{
        "$severity": "error", "$dataCode": "AccessDenied", "$message": "You do not have access to Reporting.",
        "$source": ""}])
    with pytest.raises(PermissionError) as caught:
        read(connector(), "accounts")
    assert "Sage Accounting says: “You do not have access to Reporting.”" in caught.value.message


def test_a_refused_access_token_is_renewed_once_and_the_rotated_refresh_token_saved_first(vendor):
    token_calls = []

    def token(request, context):
        token_calls.append(parse_qs(request.text))
        return {"access_token": "sage-at-new", "refresh_token": "sage-rt-rotated", "expires_in": 300,
                "refresh_token_expires_in": 2678400, "token_type": "bearer", "scope": "readonly"}

    vendor.post(f"{mocks.OAUTH_URL}/token", json=token)
    vendor.get(f"{BASE}/financial_settings", [{"status_code": 401, "json": fixture("sage_bca", "error_401")},
                                              {"json": fixture("sage_bca", "financial_settings")}])
    saved = []
    years, _ = read(connector(saved=saved), "fiscal_years")
    assert years and len(token_calls) == 1
    assert token_calls[0]["grant_type"] == ["refresh_token"]
    assert token_calls[0]["client_secret"] == ["sage-secret-93b7c2d0"]  # Sage takes the client in the form
    assert saved[-1]["refresh_token"] == "sage-rt-rotated" and saved[-1]["access_token"] == "sage-at-new"
    assert vendor.last_request.headers["Authorization"] == "Bearer sage-at-new"


def test_a_revoked_grant_is_an_auth_error_that_names_no_secret(vendor):
    vendor.post(f"{mocks.OAUTH_URL}/token", status_code=400, json={"error": "invalid_grant"})
    vendor.get(f"{BASE}/financial_settings", status_code=401, json=fixture("sage_bca", "error_401"))
    with pytest.raises(AuthError) as caught:
        read(connector(), "fiscal_years")
    message = caught.value.message
    assert "reconnect" in message and "sage-rt-b61e07a3f5" not in message and "sage-secret" not in message


# -- against the sandbox ---------------------------------------------------------------------

def sandbox_config(sandbox):
    return SageAccounting.spec.sandbox_settings(sandbox.url)


def connect(sandbox):
    """The consent page, "Allow", and the callback through the spec's auth strategy: the credentials."""
    config = sandbox_config(sandbox)
    url = SageAccounting.spec.auth.consent_url(SageAccounting, config, REDIRECT, "state-9")
    assert url.startswith(f"{sandbox.url}/sage/oauth2/auth/central?") and "filter=apiv3.1" in url
    page = requests.get(url, timeout=10)
    fields = {k: unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    answer = requests.post(url.split("?")[0], data={**fields, "decision": "allow"}, allow_redirects=False, timeout=10)
    query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", answer.headers["Location"]))
    return SageAccounting.spec.auth.callback(SageAccounting, config, query, REDIRECT)


def sandbox_connector(sandbox, company, credentials=None, saved=None):
    config = sandbox_config(sandbox)
    credentials = credentials or connect(sandbox)
    http = build_client(SageAccounting.spec, secrets=secrets_for(SageAccounting.spec, config, credentials),
                        sleep=lambda seconds: None)
    return SageAccounting(ConnectorContext(config=config, credentials=credentials,
                                           reference=emulator.business_id(company) if company else None, http=http,
                                           save_credentials=saved.append if saved is not None else None))


def month_ends(year):
    return tuple(date(year, m + 1, 1).replace(day=1) - date.resolution if m < 12 else date(year, 12, 31)
                 for m in range(1, 13))


def line_sums(book, ends):
    """Movements per (period end, account) from the generated lines, by date as Sage books them."""
    sums = defaultdict(Decimal)
    for line in book.all_lines():
        day = date.fromisoformat(line["date"])
        end = next((e for e in ends if e >= day), None)
        if end and day >= date(ends[0].year, ends[0].month, 1):
            sums[(end, line["account"])] += Decimal(line["amount"])
    return {k: v for k, v in sums.items() if v}


@pytest.mark.parametrize("company, path", [("c-1003", "trial_balance"), ("c-1001", "balance_details")])
def test_both_balance_paths_match_the_lines_in_the_sandbox(sandbox, company, path):
    book = sandbox.state.books[company]
    sage = sandbox_connector(sandbox, company)
    assert sage.check().ok
    ends = month_ends(2024)
    window = SyncWindow(date(2024, 1, 1), date(2024, 12, 31), ends)
    balances, _ = read(sage, "balances", window)
    assert {(b.period_end, b.account): b.amount for b in balances} == line_sums(book, ends)
    assert (sandbox.calls("/sage/v3.1/trial_balance") > 0) == (path == "trial_balance")
    lines, state = read(sage, "ledger_lines", window)
    assert len(lines) == sum(1 for line in book.all_lines() if line["date"] >= "2024-01-01")
    assert state.new_bookmark["since"]


def test_the_wrapped_trial_balance_mode_gives_the_same_balances(sandbox):
    window = SyncWindow(date(2024, 1, 1), date(2024, 3, 31), month_ends(2024)[:3])
    credentials = connect(sandbox)
    plain, _ = read(sandbox_connector(sandbox, "c-1003", credentials), "balances", window)
    sandbox.modes(sage_bca=["trial_balance_wrapped"])
    wrapped, _ = read(sandbox_connector(sandbox, "c-1003", credentials), "balances", window)
    assert wrapped == plain and plain


def test_a_large_business_pages_and_an_incremental_night_reads_only_the_changes(sandbox):
    book = sandbox.state.books["c-1002"]
    sage = sandbox_connector(sandbox, "c-1002")
    accounts, _ = read(sage, "accounts", SyncWindow())
    lines, state = read(sage, "ledger_lines", SyncWindow())
    assert len(accounts) == len(book.accounts) and len(lines) == book.line_count > PAGE_SIZE
    assert sandbox.calls("/sage/v3.1/ledger_entries") == -(-book.line_count // PAGE_SIZE)

    changes = sandbox.mutate("c-1002", add=2, change=1, delete=1)
    night = sandbox_connector(sandbox, "c-1002", sage.credentials)
    fresh, later = read(night, "ledger_lines", SyncWindow(), state.new_bookmark)
    gone, _ = read(night, "deleted", SyncWindow(), state.new_bookmark)
    ids = {emulator.entry_id("c-1002", i) for i in changes["added"] + changes["changed"]}
    assert ids <= {line.source_id for line in fresh} and len(fresh) < 20
    assert {d.source_id for d in gone} == {emulator.entry_id("c-1002", i) for i in changes["deleted"]}
    assert later.new_bookmark["since"] >= state.new_bookmark["since"]


def test_an_expired_access_token_rotates_the_refresh_token_in_the_sandbox(sandbox):
    credentials = {**connect(sandbox), "expires_at": int(time.time()) - 5}
    saved = []
    sage = sandbox_connector(sandbox, "c-1003", credentials, saved)
    years, _ = read(sage, "fiscal_years", SyncWindow(date(2023, 1, 1), date(2024, 12, 31)))
    assert years == [FiscalYearRecord(date(2023, 1, 1), date(2023, 12, 31)),
                     FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31))]
    assert len(saved) == 1 and saved[0]["refresh_token"] != credentials["refresh_token"]
    # the old refresh token worked once: Sage rotates it
    token_url = SageAccounting.oauth_endpoints(sandbox_config(sandbox)).token_url
    reuse = requests.post(token_url, data={"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"],
                                           "client_id": "sage-sandbox-client", "client_secret": "sage-sandbox-secret"},
                          timeout=10)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


def test_the_sandbox_s_minute_budget_answers_429_with_retry_after(sandbox):
    sandbox.budgets(sage_bca={"per_minute": 2, "window_seconds": 60})
    sage = sandbox_connector(sandbox, "c-1003")
    sage.http.max_wait = 0  # not worth waiting for here: raise
    with pytest.raises(RateLimited) as caught:
        for _ in range(3):
            sage.get("/financial_settings")
    assert 1 <= caught.value.retry_after <= 60


def test_an_unknown_business_is_refused(sandbox):
    sage = sandbox_connector(sandbox, None)
    sage.reference = "f" * 32
    with pytest.raises(PermissionError, match="does not have access|do not have access"):
        sage.get("/financial_settings")
    # the grant's own businesses stay listed (the user API takes no X-Business)
    assert {r.name for r in sage.list_references()} == {b.spec.name for b in sandbox.state.books.values()}
