"""BoCount (Business Central): parsing (formatted trial-balance amounts, enum escapes, v1.0 and v2.0
shapes), the two auth choices, OData paging and incremental reads on the fixtures, and the package
against its emulator (references, every stream, budgets, modes)."""
import base64
import math
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from connectors.base import (
    AuthError, ConfigError, ConnectorContext, DataError, FiscalYearRecord, NotFoundError, RateLimited, RenewalRefused,
    StreamState, SyncWindow,
)
from connectors.bocount_odata_v4 import (
    BoCount, decimal_separator_of, fiscal_years, formatted_amount, ledger_line_record,
)
from connectors.bocount_odata_v4 import emulator
from connectors.http import build_client, secrets_for
from tests.connectors.mocks import bocount_odata_v4 as mocks
from tests.connectors.mocks import fixture

COMPANY_URL = f"{mocks.BASE_URL}/companies({mocks.COMPANY})"
TOKEN_URL = "https://login.bocount.test/contoso/oauth2/v2.0/token"
ENTRA = {"auth_method": "entra", "tenant_id": "contoso", "client_id": "app-7c1d",
         "client_secret": "entra-secret-4b9e77a0", "entra_login_url": "https://login.bocount.test"}


def build(config, reference=mocks.COMPANY, credentials=None):
    http = build_client(BoCount.spec, sleep=lambda seconds: None,
                        secrets=secrets_for(BoCount.spec, config, credentials or {}))
    return BoCount(ConnectorContext(config=config, credentials=credentials or {}, reference=reference, http=http))


def read(connector, stream, window=None, bookmark=None):
    state = StreamState(bookmark=bookmark)
    return list(connector.read(stream, state, window or mocks.window())), state


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1,234.56", "1234.56"), ("1.234,56", "1234.56"), ("-1.234,56", "-1234.56"), ("12 345,60", "12345.60"),
    ("1\u00a0234,5", "1234.5"), ("1'234.56", "1234.56"), ("1,234,567.89", "1234567.89"), ("1.234.567", "1234567"),
    ("1,234", "1234"), ("1.234", "1234"), ("0,5", "0.5"), ("12.50", "12.50"), ("15", "15"), ("", "0"), (None, "0"),
    ("1.234,56-", "-1234.56"), ("(1,234.56)", "-1234.56"),
    (Decimal("12.34"), "12.34"), (7, "7"),
])
def test_formatted_amounts_are_read_in_either_locale(text, expected):
    assert formatted_amount(text, "total debit") == Decimal(expected)


def test_a_declared_separator_wins_over_the_guess():
    assert formatted_amount("1.234", "total debit", ",") == Decimal("1234")
    assert formatted_amount("1,234", "total debit", ",") == Decimal("1.234")
    assert decimal_separator_of("1,234") == "." and decimal_separator_of("1,23") == ","


@pytest.mark.parametrize("text", ["n/a", "totalDebit", "1.2.3,4,5x"])
def test_an_unreadable_amount_is_a_data_error_naming_the_field(text):
    with pytest.raises(DataError, match="total credit"):
        formatted_amount(text, "total credit")


def test_a_v1_entry_is_identified_by_its_integer_id_and_a_v2_entry_by_its_entry_number():
    v2 = fixture("bocount_odata_v4", "general_ledger_entries_page_1")["value"][0]
    assert ledger_line_record(v2).source_id == "2201"
    v1 = {k: v for k, v in v2.items() if k != "entryNumber"} | {"id": 2201, "dimensions": []}
    assert ledger_line_record(v1) == ledger_line_record(v2)


def test_an_entry_without_account_is_a_data_error():
    row = fixture("bocount_odata_v4", "general_ledger_entries_page_1")["value"][0] | {"accountNumber": " "}
    with pytest.raises(DataError, match="entry number or account"):
        ledger_line_record(row)


def test_fiscal_years_start_at_each_new_fiscal_year_period():
    rows = fixture("bocount_odata_v4", "accounting_periods")["value"]
    assert fiscal_years(rows) == [FiscalYearRecord(date(2023, 1, 1), date(2023, 12, 31)),
                                  FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31)),
                                  FiscalYearRecord(date(2025, 1, 1), date(2025, 12, 31))]
    shifted = [{"startingDate": "2023-04-01", "newFiscalYear": True}, {"startingDate": "2023-05-01", "newFiscalYear": False},
               {"startingDate": "2024-04-01", "newFiscalYear": True}]
    assert fiscal_years(shifted) == [FiscalYearRecord(date(2023, 4, 1), date(2024, 3, 31)),
                                     FiscalYearRecord(date(2024, 4, 1), date(2025, 3, 31))]


# -- streams on the fixtures ----------------------------------------------------------------


@pytest.fixture
def fixtures_mocked(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    return requests_mock


def test_basic_auth_sends_the_user_and_web_service_access_key(fixtures_mocked):
    bc = build(mocks.config())
    assert [r.reference for r in bc.list_references()] == [mocks.COMPANY, "0b9c7d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"]
    sent = fixtures_mocked.last_request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(b"FIRMSYNC:Wsk+9f3KQ2b7x1LmZ0pR4tV8yC6nE5hJ").decode()


def test_the_chart_leaves_out_headings_and_totals_and_maps_categories(fixtures_mocked):
    accounts, _ = read(build(mocks.config()), "accounts")
    kinds = {a.number: a.kind for a in accounts}
    assert "10000" not in kinds and "19999" not in kinds
    assert kinds == {"400000": "asset", "550000": "asset", "440000": "liability", "451000": "liability",
                     "100000": "equity", "700000": "income", "604000": "expense", "610000": "expense",
                     "499000": "other"}


def test_balances_are_each_months_net_change_from_the_formatted_trial_balance(fixtures_mocked):
    balances, _ = read(build(mocks.config()), "balances")
    april = {b.account: b.amount for b in balances if b.period_end == date(2024, 4, 30)}
    may = {b.account: b.amount for b in balances if b.period_end == date(2024, 5, 31)}
    assert april == {"400000": Decimal("12100.00"), "550000": Decimal("-1815.00"), "440000": Decimal("-1500.00"),
                     "451000": Decimal("-2100.00"), "700000": Decimal("-10000.00"), "604000": Decimal("1000.00"),
                     "610000": Decimal("2315.00"), "499000": Decimal("0")}
    assert sum(april.values()) == 0 and sum(may.values()) == 0 and may["550000"] == Decimal("12100.00")
    assert all(b.basis == "movement" and b.period_start == b.period_end.replace(day=1) for b in balances)
    filters = [r.qs["$filter"][0] for r in fixtures_mocked.request_history if "trialbalance" in r.path]
    assert filters == ["datefilter ge 2024-04-01 and datefilter le 2024-04-30",
                       "datefilter ge 2024-05-01 and datefilter le 2024-05-31"]


def test_a_trial_balance_line_without_its_account_is_a_data_error(fixtures_mocked):
    answer = fixture("bocount_odata_v4", "trial_balance_2024-04")
    answer["value"][1]["number"] = " "
    fixtures_mocked.get(f"{COMPANY_URL}/trialBalance", json=answer)
    with pytest.raises(DataError, match="without an account number"):
        read(build(mocks.config()), "balances")


def test_ledger_lines_follow_the_next_link_and_bookmark_the_newest_change(fixtures_mocked):
    lines, state = read(build(mocks.config()), "ledger_lines")
    assert [line.source_id for line in lines] == [str(n) for n in range(2201, 2208)]
    assert sum(line.amount for line in lines) == 0
    first = lines[0]
    assert (first.amount, first.account, first.booking_date, first.reference, first.journal) == (
        Decimal("12100"), "400000", date(2024, 4, 3), "VF24-0112", "Invoice")
    assert lines[3].journal == ""  # a blank documentType arrives as _x0020_
    assert state.new_bookmark == "2024-05-07T07:45:01.993Z"
    assert "$skiptoken" in fixtures_mocked.request_history[-1].url


def test_an_incremental_read_filters_on_the_bookmark_and_keeps_it_when_nothing_is_new(fixtures_mocked):
    bc = build(mocks.config())
    lines, state = read(bc, "ledger_lines", bookmark="2024-05-07T07:45:01.993Z")
    assert [line.source_id for line in lines] == ["2206", "2207"]
    assert fixtures_mocked.last_request.qs["$filter"] == ["lastmodifieddatetime ge 2024-05-07t07:40:01.993z"]
    assert state.new_bookmark == "2024-05-07T07:45:01.993Z"
    fixtures_mocked.get(f"{COMPANY_URL}/generalLedgerEntries", json={"value": []})
    lines, state = read(bc, "ledger_lines", bookmark="2024-05-07T07:45:01.993Z")
    assert lines == [] and state.new_bookmark == "2024-05-07T07:45:01.993Z"


def test_fiscal_years_overlapping_the_window(fixtures_mocked):
    years, _ = read(build(mocks.config()), "fiscal_years")
    assert years == [FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31))]


def test_a_list_without_its_value_envelope_is_a_data_error(fixtures_mocked):
    fixtures_mocked.get(f"{COMPANY_URL}/accounts", json=[{"number": "400000"}])
    with pytest.raises(DataError, match="value"):
        read(build(mocks.config()), "accounts")


def test_a_next_link_pointing_back_is_refused_as_a_loop(fixtures_mocked):
    page = fixture("bocount_odata_v4", "general_ledger_entries_page_1")
    page["@odata.nextLink"] = f"{COMPANY_URL}/generalLedgerEntries?$skiptoken=1"
    fixtures_mocked.get(f"{COMPANY_URL}/generalLedgerEntries", json=page)
    with pytest.raises(DataError, match="loop"):
        read(build(mocks.config()), "ledger_lines")


def test_an_unknown_company_quotes_business_central_without_its_correlation_id(fixtures_mocked):
    fixtures_mocked.get(f"{COMPANY_URL}/accounts", status_code=404, json=fixture("bocount_odata_v4", "error_not_found"))
    with pytest.raises(NotFoundError) as caught:
        read(build(mocks.config()), "accounts")
    assert caught.value.message.endswith("BoCount says: \u201cThe specified resource does not exist.\u201d")


def test_refused_basic_credentials_are_an_auth_error_without_the_key(fixtures_mocked):
    fixtures_mocked.get(f"{mocks.BASE_URL}/companies", status_code=401,
                        json=fixture("bocount_odata_v4", "error_unauthorized"))
    with pytest.raises(AuthError) as caught:
        build(mocks.config()).check()
    assert "rejected the client credentials" in caught.value.message
    assert mocks.config()["web_service_access_key"] not in caught.value.message
    assert fixtures_mocked.call_count == 1


def test_service_names_come_from_the_config(fixtures_mocked):
    fixtures_mocked.get(f"{COMPANY_URL}/BoCountGLAccounts", json=fixture("bocount_odata_v4", "accounts"))
    accounts, _ = read(build(mocks.config() | {"accounts_service": "BoCountGLAccounts"}), "accounts")
    assert len(accounts) == 9 and fixtures_mocked.last_request.path.endswith("/bocountglaccounts")


def test_odata_v4_style_keys_companies_by_their_quoted_name(requests_mock):
    base = "https://bc.bocount.test/BC/ODataV4"
    requests_mock.get(f"{base}/Company", json={"value": [
        {"Name": "Garage O'Neil", "Display_Name": "Garage O'Neil BV", "Id": "0b9c7d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"}]})
    requests_mock.get(f"{base}/Company('Garage%20O''Neil')/accounts", json=fixture("bocount_odata_v4", "accounts"))
    config = mocks.config() | {"base_url": base, "endpoint_style": "odatav4"}
    assert build(config, reference=None).list_references()[0].reference == "Garage O'Neil"
    accounts, _ = read(build(config, reference="Garage O'Neil"), "accounts")
    assert len(accounts) == 9


def test_a_dossier_without_a_company_is_a_config_error():
    with pytest.raises(ConfigError, match="not linked"):
        read(build(mocks.config(), reference=None), "accounts")


# -- Entra ID ---------------------------------------------------------------------------------


def test_entra_signs_in_with_client_credentials_and_sends_the_token(fixtures_mocked):
    token = fixture("bocount_odata_v4", "entra_token")
    fixtures_mocked.post(TOKEN_URL, json=token)
    bc = build(mocks.config() | ENTRA)
    bc.check()
    bc.check()
    grant = fixtures_mocked.request_history[0]
    assert grant.url == TOKEN_URL and dict(pair.split("=") for pair in grant.text.split("&")) == {
        "grant_type": "client_credentials", "client_id": "app-7c1d", "client_secret": "entra-secret-4b9e77a0",
        "scope": "https%3A%2F%2Fapi.businesscentral.dynamics.com%2F.default"}
    assert fixtures_mocked.last_request.headers["Authorization"] == f"Bearer {token['access_token']}"
    assert [r.method for r in fixtures_mocked.request_history] == ["POST", "GET", "GET"]  # one token, reused


def test_an_expired_entra_token_is_replaced_once(fixtures_mocked):
    fixtures_mocked.post(TOKEN_URL, [{"json": {"access_token": "tok-1", "expires_in": 3599}},
                                     {"json": {"access_token": "tok-2", "expires_in": 3599}}])
    fixtures_mocked.get(f"{mocks.BASE_URL}/companies", [
        {"status_code": 401, "json": fixture("bocount_odata_v4", "error_unauthorized")},
        {"json": fixture("bocount_odata_v4", "companies")}])
    assert build(mocks.config() | ENTRA).check().references == 2
    assert [r.headers.get("Authorization") for r in fixtures_mocked.request_history if r.method == "GET"] == [
        "Bearer tok-1", "Bearer tok-2"]


def test_a_refused_entra_app_needs_a_reconnect_and_is_not_retried(fixtures_mocked):
    fixtures_mocked.post(TOKEN_URL, status_code=401, json=fixture("bocount_odata_v4", "entra_invalid_client"))
    with pytest.raises(RenewalRefused) as caught:
        build(mocks.config() | ENTRA).check()
    assert "invalid_client" in caught.value.message and "reconnect" in caught.value.message
    assert ENTRA["client_secret"] not in caught.value.message and fixtures_mocked.call_count == 1


def test_entra_without_its_client_secret_is_a_config_error():
    with pytest.raises(ConfigError, match="client secret"):
        build(mocks.config() | ENTRA | {"client_secret": None}).check()


def test_the_spec_declares_the_budgets_and_no_consent_step():
    budget = BoCount.spec.rate_budget
    assert (budget.per_minute, budget.window_seconds, budget.concurrency, budget.per) == (6000, 300, 100, "connection")
    assert BoCount.spec.auth.kind == "basic" and not BoCount.spec.auth.consent
    schema = BoCount.spec.config_schema()
    assert schema.fields["web_service_access_key"].metadata["secret"] and schema.fields["client_secret"].metadata["secret"]


# -- against the emulator --------------------------------------------------------------------

SMALL = "c-1003"


def sandbox_connector(sandbox, company=SMALL, **config):
    settings = BoCount.spec.sandbox_settings(sandbox.url) | config
    book = sandbox.state.books[company]
    return build(settings, reference=emulator.guid(book.spec.id)), book


def entra_settings(sandbox):
    return {"auth_method": "entra", "tenant_id": "contoso", "client_id": "bocount-sandbox-client",
            "client_secret": "bocount-sandbox-secret", "entra_login_url": f"{sandbox.url}/bocount/entra"}


def window_of(book):
    first, last = book.fiscal_years[0][0], book.fiscal_years[-1][1]
    ends, month = [], first
    while month <= last:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        ends.append(following.fromordinal(following.toordinal() - 1))
        month = following
    return SyncWindow(start=first, end=last, period_ends=tuple(ends))


def month_movements(book):
    totals = Counter()
    for line in book.all_lines():
        day = date.fromisoformat(line["date"])
        totals[(day.year, day.month, line["account"])] += Decimal(line["amount"])
    return {key: value for key, value in totals.items() if value}


def test_check_lists_one_company_per_generated_book(sandbox):
    bc, _ = sandbox_connector(sandbox)
    refs = bc.list_references()
    assert {r.reference for r in refs} == {emulator.guid(company) for company in sandbox.state.books}
    assert {r.name for r in refs} == {b.spec.name for b in sandbox.state.books.values()}


def test_a_full_read_of_the_emulator_is_exact(sandbox):
    bc, book = sandbox_connector(sandbox)
    window = window_of(book)
    years, _ = read(bc, "fiscal_years", window)
    assert [(y.start, y.end) for y in years] == book.fiscal_years
    accounts, _ = read(bc, "accounts", window)
    assert sorted(a.number for a in accounts) == sorted(a["number"] for a in book.accounts)
    lines, state = read(bc, "ledger_lines", window)
    assert len(lines) == book.line_count and sum(line.amount for line in lines) == 0
    balances, _ = read(bc, "balances", window)
    got = {(b.period_end.year, b.period_end.month, b.account): b.amount for b in balances if b.amount}
    assert got == month_movements(book)
    again, second = read(bc, "ledger_lines", window, bookmark=state.new_bookmark)
    assert again and second.new_bookmark == state.new_bookmark  # the last five minutes, read again


def test_new_entries_are_read_incrementally(sandbox):
    bc, book = sandbox_connector(sandbox)
    _, state = read(bc, "ledger_lines")
    added = sandbox.mutate(SMALL, add=3)["added"]
    lines, after = read(bc, "ledger_lines", bookmark=state.new_bookmark)
    assert {int(line.source_id) for line in lines} >= set(added)
    assert after.new_bookmark > state.new_bookmark


@pytest.mark.parametrize("mode", ["decimal_comma", "v1_shapes"])
def test_the_vendor_variants_read_the_same_figures(sandbox, mode):
    bc, book = sandbox_connector(sandbox)
    window = window_of(book)
    plain = [read(bc, stream, window)[0] for stream in ("balances", "ledger_lines")]
    sandbox.modes(bocount_odata_v4=[mode])
    assert [read(bc, stream, window)[0] for stream in ("balances", "ledger_lines")] == plain


def test_odata_v4_style_reads_the_emulator_by_company_name(sandbox):
    book = sandbox.state.books[SMALL]
    settings = BoCount.spec.sandbox_settings(sandbox.url) | {
        "endpoint_style": "odatav4", "base_url": f"{sandbox.url}/bocount/BC/ODataV4"}
    refs = build(settings, reference=None).list_references()
    assert book.spec.name in {r.reference for r in refs}
    lines, _ = read(build(settings, reference=book.spec.name), "ledger_lines")
    assert len(lines) == book.line_count


def test_entra_tokens_expiring_mid_read_are_renewed_once_each(sandbox):
    sandbox.modes(bocount_odata_v4=["token_expires_mid_sync"])
    bc, book = sandbox_connector(sandbox, **entra_settings(sandbox))
    lines, _ = read(bc, "ledger_lines")
    assert len(lines) == book.line_count
    accepted = sandbox.calls("/generalLedgerEntries") - sandbox.stats()["token_grants"][emulator.PACKAGE] + 1
    assert sandbox.stats()["token_grants"][emulator.PACKAGE] == math.ceil(accepted / emulator.CALLS_PER_TOKEN)


def test_a_wrong_web_service_key_is_refused_without_the_key_in_the_message(sandbox):
    bc, _ = sandbox_connector(sandbox, web_service_access_key="wrong-key-5d1a")
    with pytest.raises(AuthError) as caught:
        bc.check()
    assert "wrong-key-5d1a" not in caught.value.message and "rejected" in caught.value.message


def test_a_revoked_access_refuses_both_auth_choices(sandbox):
    sandbox.state.oauth[emulator.PACKAGE].revoke_all()
    with pytest.raises(AuthError):
        sandbox_connector(sandbox)[0].check()
    with pytest.raises(RenewalRefused):
        sandbox_connector(sandbox, **entra_settings(sandbox))[0].check()


def test_the_per_user_budget_answers_429_with_its_retry_after(sandbox):
    sandbox.budgets(bocount_odata_v4={"per_minute": 3, "window_seconds": 300})
    bc, _ = sandbox_connector(sandbox, company="c-1001")  # 500 lines: 5 pages
    bc.http.max_wait = 0  # a web request: never waits
    with pytest.raises(RateLimited) as caught:
        read(bc, "ledger_lines")
    assert 200 < caught.value.retry_after <= 300
    assert sandbox.stats()["rejected"][emulator.PACKAGE] == 1


def test_more_than_100_calls_at_once_are_answered_429(sandbox, monkeypatch):
    monkeypatch.setattr(emulator, "CONCURRENCY", 0)  # as if 100 of this user's calls were in flight
    bc, _ = sandbox_connector(sandbox)
    bc.http.max_wait = 0
    with pytest.raises(RateLimited) as caught:
        bc.check()
    assert caught.value.retry_after == 1


def test_the_default_budget_is_6000_calls_per_five_minutes(sandbox):
    assert sandbox.stats()["budgets"][emulator.PACKAGE] == {"per_minute": 6000, "window_seconds": 300}


def test_a_malformed_answer_is_a_data_error(sandbox):
    sandbox.fault("malformed", path="/bocount/BC/api/v2.0/companies(", count=2)  # asked again once
    with pytest.raises(DataError, match="could not read"):
        read(sandbox_connector(sandbox)[0], "accounts")
