"""Exact Online (BE, FR, NL): parsing over recorded-shape fixtures, the connector over strict HTTP
mocks, and end to end against the sandbox (OAuth code flow, rotation, a division removed from
the grant)."""
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors import exact_online as exact
from connectors.base import (
    AccountRecord, AuthError, BalanceRecord, ConnectorContext, DataError, DeletedRecord, FiscalYearRecord,
    LedgerLineRecord, NotFoundError, PermissionError, RateLimited, StreamState, SyncWindow,
)
from connectors.exact_online import ExactOnlineBE
from connectors.exact_online import ExactOnlineFR
from connectors.exact_online import ExactOnlineNL
from connectors.http import build_client
from connectors.oauth import TokenManager
from connectors.registry import ROOT as PACKAGES, all_connectors
from connectors.companies_house.emulator import company_number
from tests.connectors.mocks import exact_online_be as mocks

FIXTURES = PACKAGES / "exact_online" / "fixtures"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def fake_response(status, body, headers=None):
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    response.headers.update(headers or {})
    return response


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def test_ms_json_dates():
    assert exact.ms_date("/Date(1704067200000)/", "booking date") == date(2024, 1, 1)
    assert exact.optional_ms_moment("/Date(1738593005000)/", "modification time") == \
        datetime(2025, 2, 3, 14, 30, 5, tzinfo=timezone.utc)
    assert exact.ms_date("/Date(1704067200000+0100)/", "booking date") == date(2024, 1, 1)
    assert exact.ms_date("/Date(-86400000)/", "booking date") == date(1969, 12, 31)
    assert exact.optional_ms_moment(None, "modification time") is None
    with pytest.raises(DataError) as caught:
        exact.ms_date("2024-01-01", "booking date")  # Exact sends MS-JSON only
    assert "booking date" in caught.value.message


def test_odata_envelope_and_next_link():
    rows, following = exact.odata_page(fixture("transaction_lines_page1.json"))
    assert len(rows) == 3 and following.startswith("https://start.exactonline.be/api/v1/1234567/sync/")
    rows, following = exact.odata_page(fixture("transaction_lines_page2.json"))
    assert len(rows) == 2 and following is None
    assert exact.odata_page({"d": {"CurrentDivision": 5}}) == ([{"CurrentDivision": 5}], None)
    with pytest.raises(DataError):
        exact.odata_page({"value": []})


def test_financial_periods_make_fiscal_years():
    calendar = exact.period_calendar(fixture("financial_periods.json")["d"]["results"])
    assert calendar[(2024, 2)] == (date(2024, 2, 1), date(2024, 2, 29))
    assert exact.fiscal_years(calendar) == [
        FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
        FiscalYearRecord(date(2025, 1, 1), date(2025, 12, 31)),
    ]


def test_exclusive_period_end_dates_are_moved_back_one_day():
    rows = [
        {"FinYear": 2024, "FinPeriod": 1, "StartDate": "/Date(1704067200000)/", "EndDate": "/Date(1706745600000)/"},
        {"FinYear": 2024, "FinPeriod": 2, "StartDate": "/Date(1706745600000)/", "EndDate": "/Date(1709164800000)/"},
    ]
    calendar = exact.period_calendar(rows)
    assert calendar[(2024, 1)] == (date(2024, 1, 1), date(2024, 1, 31))
    assert calendar[(2024, 2)] == (date(2024, 2, 1), date(2024, 2, 29))


def test_gl_accounts_codes_stripped_and_kinds():
    records = [exact.account_record(row) for row in fixture("gl_accounts.json")["d"]["results"]]
    by_number = {r.number: r for r in records}
    assert set(by_number) == {"100000", "400000", "440000", "550000", "570000", "604000", "620200", "700000"}
    assert by_number["700000"].kind == "income"
    assert by_number["604000"].kind == "expense"
    assert by_number["550000"].kind == "asset"
    assert by_number["440000"].kind == "liability"
    assert by_number["550000"].name == "KBC Bank zichtrekening"


def test_divisions_as_exact_answers_now_chamber_of_commerce_number_and_padded_codes():
    # recorded shape of system/AllDivisions?$select=...: ChamberOfCommerceNumber, codes padded with spaces
    refs = [exact.company_ref(row) for row in fixture("all_divisions_current_fields.json")["d"]["results"]]
    assert [(r.reference, r.name) for r in refs] == [
        ("3456789", "Boulangerie Martin SARL"), ("3456790", "Atelier Lef\u00e8vre SAS"),
        ("3456791", "Cabinet Lef\u00e8vre (mod\u00e8le)"),
    ]
    assert refs[0].details == {"country": "FR", "currency": "EUR", "vat_number": "FR40812345678",
                               "company_number": "812345678"}
    assert refs[1].details == {"country": "FR", "currency": "EUR", "vat_number": "FR12345678901",
                               "company_number": "345678901"}
    # no VAT number and an empty company number are left out, never prefilled as "" or " "
    assert refs[2].details == {"country": "FR", "currency": "EUR"}


def test_company_number_prefers_the_current_name_and_falls_back_to_the_older_one():
    row = {"Code": 1234567, "Description": "Bakkerij Janssens BV"}
    number = lambda **fields: exact.company_ref(row | fields).details.get("company_number")  # noqa: E731
    assert number(ChamberOfCommerce="0412345678") == "0412345678"
    assert number(ChamberOfCommerceNumber="0498765432", ChamberOfCommerce="0412345678") == "0498765432"
    assert number(ChamberOfCommerceNumber="   ", ChamberOfCommerce="0412345678 ") == "0412345678"
    assert number(ChamberOfCommerceNumber=None, ChamberOfCommerce=" ") is None


def test_padded_balance_codes_journal_and_dimensions_are_stripped():
    assert exact.account_kind("W ", "C ") == "income"
    assert exact.account_kind("B ", "D ") == "asset"
    assert exact.account_record({"Code": "   604000", "Description": "Achats ", "BalanceType": "W ",
                                 "BalanceSide": "D "}) == AccountRecord("604000", "Achats", "expense", None)
    calendar = exact.period_calendar(fixture("financial_periods.json")["d"]["results"])
    row = fixture("transaction_lines_page1.json")["d"]["results"][2]
    padded = row | {"CostCenter": "ATELIER ", "CostUnit": "   ", "JournalCode": " 60 "}
    line = exact.ledger_line_record(padded, calendar)
    assert line.dimensions == {"cost_center": "ATELIER"} and line.journal == "60"


def test_reporting_balance_rows_are_summed_per_account_and_period():
    calendar = exact.period_calendar(fixture("financial_periods.json")["d"]["results"])
    records = exact.balance_records(fixture("reporting_balance_2024.json")["d"]["results"], calendar)
    by_key = {(r.account, r.period_end): r.amount for r in records}
    # open (status 20) and processed (status 50) rows of the same account and period add up
    assert by_key[("400000", date(2024, 1, 31))] == Decimal("2500.50")
    assert by_key[("700000", date(2024, 1, 31))] == Decimal("-2500.50")
    assert by_key[("604000", date(2024, 2, 29))] == Decimal("1200.25")
    assert all(r.basis == "movement" for r in records)
    assert sum(by_key.values()) == 0


def test_reporting_balance_period_zero_goes_to_the_first_period_and_unknown_periods_fail():
    calendar = exact.period_calendar(fixture("financial_periods.json")["d"]["results"])
    row = {"ReportingYear": 2024, "ReportingPeriod": 0, "GLAccountCode": " 550000", "Amount": 5}
    assert exact.balance_records([row], calendar)[0].period_end == date(2024, 1, 31)
    with pytest.raises(DataError):
        exact.balance_records([{**row, "ReportingYear": 2019, "ReportingPeriod": 4}], calendar)


def test_transaction_line_booking_period_decides_not_the_date():
    calendar = exact.period_calendar(fixture("financial_periods.json")["d"]["results"])
    rows = fixture("transaction_lines_page1.json")["d"]["results"]
    line = exact.ledger_line_record(rows[2], calendar)
    assert line.booking_date == date(2024, 1, 31)
    assert line.booking_period_end == date(2024, 2, 29)
    assert line.account == "604000"
    assert line.amount == Decimal("1200.25")
    assert line.journal == "60"
    assert line.dimensions == {"cost_center": "ATELIER"}
    first = exact.ledger_line_record(rows[0], calendar)
    assert first.reference == "24700001" and first.description.startswith("Factuur")


def test_rate_limit_headers():
    now = 1_700_000_000_000
    assert exact.rate_limit_wait({"X-RateLimit-Minutely-Remaining": "12"}, now) == (0.0, False)
    assert exact.rate_limit_wait({"X-RateLimit-Minutely-Remaining": "0",
                                  "X-RateLimit-Minutely-Reset": str(now + 20_000)}, now) == (20.0, False)
    wait, daily = exact.rate_limit_wait({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(now + 7_200_000)}, now)
    assert (wait, daily) == (7200.0, True)


@pytest.mark.parametrize("name, headers, error_class, words", [
    ("user_blocked.json", {}, AuthError, "blocked"),
    ("user_blocked.json", {"Reason": "BlockedUser"}, AuthError, "unblock"),
    ("no_division_access.json", {}, NotFoundError, "access list"),
    ("password_expired.json", {}, AuthError, "new password"),
    ("email_not_validated.json", {}, AuthError, "e-mail address"),
])
def test_error_catalogue_messages_tell_the_administrator_what_to_do(name, headers, error_class, words):
    error = exact.classify_error(fake_response(403, fixture(f"errors/{name}"), headers), division="1234568")
    assert isinstance(error, error_class)
    assert words in error.message
    assert "reconnect" in error.message or "access list" in error.message or "unblock" in error.message


def test_reason_header_alone_is_enough_and_unknown_errors_are_not_catalogued():
    error = exact.classify_error(fake_response(403, b"", {"Reason": "NoDivisionAccess"}), division="42")
    assert isinstance(error, NotFoundError) and "division 42" in error.message
    assert isinstance(exact.classify_error(fake_response(403, b"", {"Reason": "LicenseExpired"})), PermissionError)
    assert exact.classify_error(fake_response(500, fixture("errors/server_error.json"))) is None


# --------------------------------------------------------------------------------------
# The connector over strict HTTP mocks
# --------------------------------------------------------------------------------------


API = "https://start.exactonline.be/api/v1/1234567"


def connector(requests_mock, *, bookmark_credentials=None, sleeps=None, **config):
    mocks.register(requests_mock, mocks.BASE_URL)
    http = build_client(ExactOnlineBE.spec, secrets=["exact-client-secret-9d41"], sleep=(sleeps or []).append)
    return ExactOnlineBE(ConnectorContext(config=mocks.config() | config,
                                          credentials=bookmark_credentials or mocks.credentials(),
                                          reference=mocks.DIVISION, http=http))


def test_three_country_packages_share_one_connector():
    registered = all_connectors()
    assert {"exact_online_be", "exact_online_fr", "exact_online_nl"} <= set(registered)
    assert registered["exact_online_nl"] is ExactOnlineNL
    assert ExactOnlineNL.spec.config_schema().load({"client_id": "x", "client_secret": "y"})["base_url"] == \
        "https://start.exactonline.nl"
    oauth = ExactOnlineBE.spec.oauth
    assert oauth.rotating_refresh_token and oauth.access_token_seconds == 600 and oauth.refresh_margin_seconds == 30
    # a token is valid only on its own host: the OAuth endpoints follow the connection's host
    assert ExactOnlineFR.oauth_endpoints({}).token_url == "https://start.exactonline.fr/api/oauth2/token"
    assert ExactOnlineFR.oauth_endpoints({"base_url": "http://sandbox.test/exact-online"}).authorize_url == \
        "http://sandbox.test/exact-online/api/oauth2/auth"
    assert ExactOnlineBE.spec.rate_budget.per_minute == 60 and ExactOnlineBE.spec.rate_budget.per_day == 5000


def test_references_follow_next_links_and_use_the_current_division(requests_mock):
    refs = connector(requests_mock).list_references()
    assert [r.reference for r in refs] == ["1234568", "1234567", "2345678"]
    assert refs[1].name == "Bakkerij Janssens BV" and refs[1].details["vat_number"] == "BE0412345678"
    assert requests_mock.request_history[1].url.startswith(f"{API}/system/AllDivisions")
    refs = connector(requests_mock, accountant_divisions=False).list_references()
    assert len(refs) == 2


def test_references_select_the_documented_division_fields_and_read_the_current_answer(requests_mock):
    fr_host = "https://start.exactonline.fr"
    requests_mock.get(f"{fr_host}/api/v1/current/Me", json={"d": {"results": [{"CurrentDivision": 3456789}]}})
    listing = requests_mock.get(f"{fr_host}/api/v1/3456789/system/AllDivisions",
                                json=fixture("all_divisions_current_fields.json"))
    conn = ExactOnlineFR(ConnectorContext(config=mocks.config(fr_host), credentials=mocks.credentials(),
                                          reference="3456789", http=build_client(ExactOnlineFR.spec)))
    refs = {r.reference: r for r in conn.list_references()}
    assert refs["3456789"].details == {"country": "FR", "currency": "EUR", "vat_number": "FR40812345678",
                                       "company_number": "812345678"}
    # $select names only properties system/(All)Divisions document: an unknown one can fail the call
    selected = parse_qs(urlsplit(listing.last_request.url).query)["$select"][0].split(",")
    assert set(selected) == {"Code", "Description", "Country", "Currency", "VATNumber", "ChamberOfCommerceNumber"}


def test_ledger_lines_page_until_no_next_link_and_bookmark_the_timestamp(requests_mock):
    state = StreamState(bookmark=18445000)
    lines = list(connector(requests_mock).read("ledger_lines", state, SyncWindow()))
    assert [line.source_id for line in lines] == [row["ID"] for name in ("transaction_lines_page1", "transaction_lines_page2")
                                                  for row in fixture(f"{name}.json")["d"]["results"]]
    assert state.new_bookmark == 18446020
    first = next(r for r in requests_mock.request_history if "TransactionLines" in r.url)
    assert first.qs["$filter"] == ["timestamp gt 18445000l"]  # requests-mock lower-cases queries
    assert "$select" in first.qs
    assert sum("TransactionLines" in r.url for r in requests_mock.request_history) == 2
    assert all(isinstance(line, LedgerLineRecord) for line in lines)
    assert lines[4].modified_at == datetime(2025, 2, 3, 14, 30, 5, tzinfo=timezone.utc)


def test_next_link_to_another_host_is_refused(requests_mock):
    conn = connector(requests_mock)
    page = fixture("transaction_lines_page1.json")
    page["d"]["__next"] = "https://evil.example.test/api/v1/1234567/sync/Financial/TransactionLines?$skiptoken=1"
    requests_mock.get(f"{API}/sync/Financial/TransactionLines", json=page)
    with pytest.raises(DataError):
        list(conn.read("ledger_lines", StreamState(), SyncWindow()))


def test_deleted_feed_keeps_transaction_lines_only(requests_mock):
    state = StreamState()
    deleted = list(connector(requests_mock).read("deleted", state, SyncWindow()))
    assert deleted == [DeletedRecord(fixture("deleted.json")["d"]["results"][0]["EntityKey"]),
                       DeletedRecord(fixture("deleted.json")["d"]["results"][2]["EntityKey"])]
    assert state.new_bookmark == 18446032
    request = next(r for r in requests_mock.request_history if "sync/Deleted" in r.url)
    assert request.qs["$filter"] == ["timestamp gt 0l and entitytype eq 1"]


def test_balances_per_fiscal_year_in_the_window(requests_mock):
    window = SyncWindow(start=date(2025, 1, 1), end=date(2025, 12, 31))
    conn = connector(requests_mock)
    balances = list(conn.read("balances", StreamState(), window))
    assert balances == [
        BalanceRecord("550000", date(2025, 1, 31), Decimal("-3100.0"), "movement", date(2025, 1, 1)),
        BalanceRecord("620200", date(2025, 1, 31), Decimal("3100.0"), "movement", date(2025, 1, 1)),
    ]
    years = list(conn.read("fiscal_years", StreamState(), window))
    assert years == [FiscalYearRecord(date(2025, 1, 1), date(2025, 12, 31))]
    accounts = list(conn.read("accounts", StreamState(), window))
    assert len(accounts) == 8 and all(isinstance(a, AccountRecord) for a in accounts)


def test_division_outside_the_grant_is_not_found_with_instructions(requests_mock):
    conn = connector(requests_mock)
    requests_mock.get(f"{API}/financial/GLAccounts", status_code=403, headers={"Reason": "NoDivisionAccess"},
                      json=fixture("errors/no_division_access.json"))
    with pytest.raises(NotFoundError) as caught:
        list(conn.read("accounts", StreamState(), SyncWindow()))
    assert "division 1234567" in caught.value.message and "access list" in caught.value.message
    assert requests_mock.call_count == 1, "a catalogued error is not retried (Exact blocks keys after 10 errors)"


def test_blocked_user_is_an_auth_error(requests_mock):
    conn = connector(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/api/v1/current/Me", status_code=401, json=fixture("errors/user_blocked.json"))
    with pytest.raises(AuthError) as caught:
        conn.check()
    assert "blocked" in caught.value.message and "exact-client-secret" not in caught.value.message
    assert requests_mock.call_count == 1, "no token renewal for a blocked user (Exact counts every error)"


def test_an_access_token_refused_before_its_time_is_renewed_once(requests_mock):
    conn = connector(requests_mock)
    token = requests_mock.post(f"{mocks.BASE_URL}/api/oauth2/token", json=fixture("token.json"))
    me = requests_mock.get(f"{mocks.BASE_URL}/api/v1/current/Me", [
        {"status_code": 401, "json": {"error": {"code": "", "message": {"lang": "", "value": "Unauthorized"}}}},
        {"json": fixture("current_me.json")}])
    conn.me()
    assert token.call_count == 1 and me.call_count == 2
    assert me.last_request.headers["Authorization"] == "Bearer gAAAAexact-access-1"


def test_minutely_budget_header_blocks_the_limiter(requests_mock, redis_db):
    mocks.register(requests_mock, mocks.BASE_URL)
    slept = []
    http = build_client(ExactOnlineBE.spec, redis=redis_db, tenant="tenant-1234567", sleep=slept.append)
    conn = ExactOnlineBE(ConnectorContext(config=mocks.config(), credentials=mocks.credentials(),
                                          reference=mocks.DIVISION, http=http))
    reset = int(datetime.now(timezone.utc).timestamp() * 1000) + 45_000
    requests_mock.get(f"{mocks.BASE_URL}/api/v1/current/Me", json=fixture("current_me.json"),
                      headers={"X-RateLimit-Minutely-Remaining": "0", "X-RateLimit-Minutely-Reset": str(reset)})
    conn.me()
    # every worker of this division now waits for Exact's minute to reset
    assert 30 < http.limiter.acquire(*http.budget_key, ExactOnlineBE.spec.rate_budget).wait <= 46


def test_a_blocked_minute_is_waited_out_before_the_next_call(requests_mock, redis_db):
    mocks.register(requests_mock, mocks.BASE_URL)
    slept = []

    def pass_time(seconds):  # the block has expired when the sleep ends
        slept.append(seconds)
        redis_db.delete(http.limiter._key(*http.budget_key, "blocked"))

    http = build_client(ExactOnlineBE.spec, redis=redis_db, tenant="tenant-1234567", sleep=pass_time)
    conn = ExactOnlineBE(ConnectorContext(config=mocks.config(), credentials=mocks.credentials(),
                                          reference=mocks.DIVISION, http=http))
    http.limiter.block(*http.budget_key, 45)
    conn.me()  # Exact's minute is slept out (one window at most) instead of earning a 429
    assert len(slept) == 1 and 30 < slept[0] <= 46
    assert requests_mock.call_count == 1


def test_a_block_longer_than_a_minute_defers_the_run(requests_mock, redis_db):
    mocks.register(requests_mock, mocks.BASE_URL)
    http = build_client(ExactOnlineBE.spec, redis=redis_db, tenant="tenant-1234567", sleep=lambda s: None)
    conn = ExactOnlineBE(ConnectorContext(config=mocks.config(), credentials=mocks.credentials(),
                                          reference=mocks.DIVISION, http=http))
    http.limiter.block(*http.budget_key, 600)
    with pytest.raises(RateLimited) as caught:
        conn.me()
    assert 500 < caught.value.retry_after <= 600
    assert requests_mock.call_count == 0


def test_daily_budget_spent_defers_until_reset(requests_mock):
    conn = connector(requests_mock)
    reset = int(datetime.now(timezone.utc).timestamp() * 1000) + 3_600_000
    requests_mock.get(f"{mocks.BASE_URL}/api/v1/current/Me", json=fixture("current_me.json"),
                      headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    conn.me()
    with pytest.raises(RateLimited) as caught:
        conn.me()
    assert caught.value.daily and caught.value.retry_after > 3500


def test_expired_access_token_is_refreshed_with_client_secret_post_and_rotation(requests_mock):
    saved = []
    mocks.register(requests_mock, mocks.BASE_URL)
    requests_mock.post(f"{mocks.BASE_URL}/api/oauth2/token", json=fixture("token.json"))
    http = build_client(ExactOnlineBE.spec)
    conn = ExactOnlineBE(ConnectorContext(
        config=mocks.config(), reference=mocks.DIVISION, http=http, save_credentials=saved.append,
        credentials=mocks.credentials() | {"expires_at": int(datetime.now(timezone.utc).timestamp()) + 10}))
    conn.me()
    token_call = next(r for r in requests_mock.request_history if r.url.endswith("/api/oauth2/token"))
    assert "client_secret=exact-client-secret-9d41" in token_call.text
    assert saved and saved[-1]["refresh_token"] == "Stuv.exact-refresh-2"
    me_call = requests_mock.request_history[-1]
    assert me_call.headers["Authorization"] == "Bearer gAAAAexact-access-1"


def test_a_refused_refresh_is_not_tried_again(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    token = requests_mock.post(f"{mocks.BASE_URL}/api/oauth2/token", status_code=400, json={"error": "invalid_grant"})
    conn = ExactOnlineBE(ConnectorContext(config=mocks.config(), credentials=mocks.credentials() | {"expires_at": 1},
                                          reference=mocks.DIVISION, http=build_client(ExactOnlineBE.spec)))
    with pytest.raises(AuthError):
        conn.me()
    assert token.call_count == 1, "Exact allows 200 token calls a day: a dead refresh token is not sent twice"


def test_token_younger_than_the_margin_is_not_refreshed(requests_mock):
    conn = connector(requests_mock)  # expires in 540 s: Exact would refuse a refresh now
    token = requests_mock.post(f"{mocks.BASE_URL}/api/oauth2/token", json=fixture("token.json"))
    conn.me()
    assert token.call_count == 0


# --------------------------------------------------------------------------------------
# End to end against the sandbox
# --------------------------------------------------------------------------------------


CLIENT_ID, CLIENT_SECRET = "exact-sandbox-client", "exact-sandbox-secret"
REDIRECT = "https://firmsync.example.test/oauth/callback"


def sandbox_config(sandbox):
    """The spec's sandbox configuration (the same for the three hosts) with the sandbox's URL."""
    config = ExactOnlineBE.spec.sandbox_settings(sandbox.url)
    assert (config["client_id"], config["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
    return config


def grant_by_consent(sandbox):
    """The OAuth authorization-code flow through the sandbox's consent page."""
    config, auth = sandbox_config(sandbox), ExactOnlineBE.spec.auth
    url = auth.consent_url(ExactOnlineBE, config, REDIRECT, "state-123")
    assert url.startswith(f"{config['base_url']}/api/oauth2/auth?")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and 'id="allow"' in page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()} | {"decision": "allow"}
    answer = requests.post(f"{config['base_url']}/api/oauth2/auth", data=form, allow_redirects=False, timeout=10)
    query = {name: values[0] for name, values in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    assert query["state"] == "state-123"
    return auth.callback(ExactOnlineBE, config, query, REDIRECT)


def divisions(sandbox):
    return {row["company"]: str(row["code"]) for row in
            requests.get(f"{sandbox.url}/_sandbox/exact-online/divisions", timeout=10).json()}


def sandbox_connector(sandbox, credentials, reference=None, saved=None):
    return ExactOnlineBE(ConnectorContext(config=sandbox_config(sandbox), credentials=credentials,
                                          reference=reference, http=build_client(ExactOnlineBE.spec),
                                          save_credentials=(saved if saved is not None else []).append))


def test_sandbox_code_flow_then_a_full_and_an_incremental_sync(sandbox):
    credentials = grant_by_consent(sandbox)
    assert credentials["access_token"] and credentials["refresh_token"] and credentials["expires_at"]
    division = divisions(sandbox)["c-1002"]
    conn = sandbox_connector(sandbox, credentials, division)
    check = conn.check()
    assert check.ok and check.references == 3
    assert {r.reference for r in conn.list_references()} == set(divisions(sandbox).values())

    book = sandbox.state.books["c-1002"]
    lines_state = StreamState()
    lines = list(conn.read("ledger_lines", lines_state, SyncWindow()))
    # 2,000 lines and 120 accounts: several sync pages of 1,000 and list pages of 60
    assert sandbox.calls("sync/Financial/TransactionLines") == 3 and sandbox.calls("financial/GLAccounts") == 0
    assert len(lines) == book.line_count and sum(line.amount for line in lines) == 0
    balances = list(conn.read("balances", StreamState(), SyncWindow()))
    assert sum(b.amount for b in balances) == 0
    assert {(b.period_end.isoformat(), b.account): b.amount for b in balances} == dict(book.movements())
    accounts = list(conn.read("accounts", StreamState(), SyncWindow()))
    assert {a.number for a in accounts} == {a["number"] for a in book.accounts}
    assert sandbox.calls("financial/GLAccounts") == 2
    assert [(fy.start, fy.end) for fy in conn.read("fiscal_years", StreamState(), SyncWindow())] == book.fiscal_years

    changes = sandbox.mutate("c-1002", change=1, delete=1)
    again = list(conn.read("ledger_lines", StreamState(bookmark=lines_state.new_bookmark), SyncWindow()))
    assert len(again) == len(changes["changed"]) and all("(corrected)" in line.description for line in again)
    gone = list(conn.read("deleted", StreamState(), SyncWindow()))
    by_id = {line.source_id for line in lines}
    assert len(gone) == len(changes["deleted"]) and {d.source_id for d in gone} <= by_id


def test_sandbox_refresh_rotates_once_and_the_old_refresh_token_is_dead(sandbox):
    credentials = grant_by_consent(sandbox)
    stale = credentials | {"expires_at": int(datetime.now(timezone.utc).timestamp()) + 5}
    saved = []
    conn = sandbox_connector(sandbox, dict(stale), divisions(sandbox)["c-1001"], saved)
    conn.me()
    conn.me()
    assert sandbox.stats()["token_refreshes"]["exact_online"] == 1
    assert len(saved) == 1 and saved[0]["refresh_token"] != credentials["refresh_token"]
    # a worker that still holds the old refresh token cannot use it again
    manager = TokenManager(ExactOnlineBE.oauth_endpoints(sandbox_config(sandbox)), CLIENT_ID, CLIENT_SECRET,
                           load_credentials=lambda: stale, save_credentials=saved.append)
    with pytest.raises(AuthError):
        manager.access_token()


def test_sandbox_division_removed_from_the_grant_is_not_found(sandbox):
    credentials = grant_by_consent(sandbox)
    division = divisions(sandbox)["c-1002"]
    requests.post(f"{sandbox.url}/_sandbox/exact-online/divisions/{division}/remove", timeout=10).raise_for_status()
    conn = sandbox_connector(sandbox, credentials, division)
    assert division not in {r.reference for r in conn.list_references()}
    with pytest.raises(NotFoundError) as caught:
        list(conn.read("accounts", StreamState(), SyncWindow()))
    assert f"division {division}" in caught.value.message


@pytest.mark.parametrize("problem, error_class, words", [
    ("blocked", AuthError, "blocked"),
    ("password_expired", AuthError, "password"),
    ("email_not_validated", AuthError, "e-mail address"),
])
def test_sandbox_user_problems_reach_the_administrator(sandbox, problem, error_class, words):
    credentials = grant_by_consent(sandbox)
    requests.post(f"{sandbox.url}/_sandbox/exact-online/user", json={"problem": problem}, timeout=10).raise_for_status()
    with pytest.raises(error_class) as caught:
        sandbox_connector(sandbox, credentials).check()
    assert words in caught.value.message


def test_sandbox_refuses_a_made_up_access_token(sandbox):
    with pytest.raises(AuthError):
        sandbox_connector(sandbox, {"access_token": "made-up", "expires_at": 4_000_000_000}).check()



def test_sandbox_division_answers_default_and_in_current_division_fields_mode(sandbox):
    credentials = grant_by_consent(sandbox)
    url = f"{sandbox.url}/exact-online/api/v1/{divisions(sandbox)['c-1001']}/system/AllDivisions"
    headers = {"Authorization": f"Bearer {credentials['access_token']}", "Accept": "application/json"}
    old_select = {"$select": "Code,Country,Currency,VATNumber,ChamberOfCommerce"}
    row = requests.get(url, headers=headers, params=old_select, timeout=10).json()["d"]["results"][0]
    assert (row["Country"], row["Currency"], row["VATNumber"]) == ("BE", "EUR", "BE0456789012")  # default unchanged
    assert row["ChamberOfCommerce"] is None

    sandbox.modes(exact_online=["current_division_fields"])
    refused = requests.get(url, headers=headers, params=old_select, timeout=10)
    assert refused.status_code == 400 and "'ChamberOfCommerce'" in refused.json()["error"]["message"]["value"]
    select = {"$select": "Code,Country,Currency,VATNumber,ChamberOfCommerceNumber"}
    row = requests.get(url, headers=headers, params=select, timeout=10).json()["d"]["results"][0]
    assert set(row) == {"__metadata", "Code", "Country", "Currency", "VATNumber", "ChamberOfCommerceNumber"}
    assert (row["Country"], row["Currency"], row["VATNumber"]) == ("BE ", "EUR ", "BE0456789012 ")
    assert row["ChamberOfCommerceNumber"] == "0456789012"


@pytest.mark.parametrize("accountant_divisions", [True, False])
def test_sandbox_current_division_fields_reach_the_references(sandbox, accountant_divisions):
    credentials = grant_by_consent(sandbox)
    sandbox.modes(exact_online=["current_division_fields"])
    config = sandbox_config(sandbox) | {"accountant_divisions": accountant_divisions}
    conn = ExactOnlineBE(ConnectorContext(config=config, credentials=credentials, http=build_client(ExactOnlineBE.spec)))
    refs = {r.reference: r for r in conn.list_references()}
    codes = divisions(sandbox)
    assert sandbox.calls("system/AllDivisions" if accountant_divisions else "system/Divisions") == 1
    assert refs[codes["c-1001"]].details == {"country": "BE", "currency": "EUR", "vat_number": "BE0456789012",
                                             "company_number": "0456789012"}
    northwind = sandbox.state.books["c-1003"]
    assert refs[codes["c-1003"]].details == {"country": "GB", "currency": "GBP", "vat_number": "GB123456789",
                                             "company_number": company_number(northwind)}
