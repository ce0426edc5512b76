"""e-conomic: parsing over recorded-shape fixtures, the fixtures and the sandbox's answers
against e-conomic's OpenAPI document, and the connector end to end against the sandbox."""
import json
import re
from datetime import date
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from connectors.base import (
    AccountRecord, AuthError, BalanceRecord, ConfigError, ConnectorContext, DataError, FiscalYearRecord,
    LedgerLineRecord, NotFoundError, StreamState, SyncWindow,
)
from connectors.economic import Economic
from connectors.http import build_client, secrets_for
from connectors.economic.emulator import agreement_number
from tests.conftest import shared_path
from tests.connectors.mocks import economic as mocks
from tests.connectors.mocks import fixture

KEY = "economic"
REDIRECT = "http://127.0.0.1/connect/economic"


def build(requests_mock=None, config=None, credentials=None, reference=mocks.AGREEMENT):
    config = config or mocks.config()
    credentials = credentials or mocks.credentials()
    if requests_mock is not None:
        mocks.register(requests_mock, config["base_url"])
    http = build_client(Economic.spec, secrets=secrets_for(Economic.spec, config, credentials), sleep=lambda s: None)
    return Economic(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http))


def read(connector, stream, window=None):
    return list(connector.read(stream, StreamState(), window or mocks.window()))


def consent_url(config, redirect_uri, state):
    return Economic.spec.auth.consent_url(Economic, config, redirect_uri, state)


def callback(args, config=None):
    return Economic.spec.auth.callback(Economic, config or mocks.config(), args, REDIRECT)


# --------------------------------------------------------------------------------------
# Unit tests over the fixtures
# --------------------------------------------------------------------------------------


def test_installation_url_carries_the_state_in_the_redirect_and_the_callback_gives_the_grant():
    url = consent_url(mocks.config(), "https://firm.example/connect/economic?dossier=12", "st-9")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://secure.e-conomic.com/secure/api1/requestaccess.aspx"
    query = parse_qs(parts.query)
    assert query["appPublicToken"] == ["pub-firmsync-0001"]
    assert parse_qs(urlsplit(query["redirectUrl"][0]).query) == {"dossier": ["12"], "state": ["st-9"]}
    assert "econ-app-secret" not in url
    assert callback({"token": "grant-1", "state": "st-9"}) == {"agreement_grant_token": "grant-1"}
    with pytest.raises(AuthError, match="did not grant"):
        callback({"state": "st-9"})
    with pytest.raises(ConfigError):
        consent_url({}, "https://firm.example/cb", "s")


def test_the_agreement_is_the_reference(requests_mock):
    economic = build(requests_mock)
    [ref] = economic.list_references()
    assert (ref.reference, ref.name) == ("754189", "Nordlys Kaffe ApS")
    assert ref.details == {"country": "Danmark", "vat_number": "DK31415926", "company_number": "31415926",
                           "currency": "DKK"}
    assert economic.check().ok
    headers = requests_mock.last_request.headers
    assert headers["X-AppSecretToken"] == "econ-app-secret-5b7d21"
    assert headers["X-AgreementGrantToken"] == "econ-grant-9f0c44e1a2"
    other = build(requests_mock, reference="111111").check()
    assert not other.ok and "754189" in other.message and "111111" in other.message


def test_accounts_skip_headings_and_sums_and_follow_next_page(requests_mock):
    accounts = read(build(requests_mock), "accounts")
    assert [(a.number, a.kind) for a in accounts] == [
        ("1010", "income"), ("1310", "expense"), ("2800", "expense"), ("5600", "asset"), ("6900", "liability")]
    assert accounts[0] == AccountRecord("1010", "Salg af varer", "income", "1010")
    asked = [r.qs for r in requests_mock.request_history if r.path == "/accounts"]
    assert [q["skippages"] for q in asked] == [["0"], ["1"]] and asked[0]["pagesize"] == ["1000"]


def test_fiscal_years_balances_and_lines_of_the_window(requests_mock):
    economic = build(requests_mock)
    assert read(economic, "fiscal_years") == [FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31))]
    balances = read(economic, "balances")
    assert BalanceRecord("1010", date(2024, 1, 31), Decimal("-12500.0"), "movement", date(2024, 1, 1)) in balances
    assert {b.period_end for b in balances} == {date(2024, 1, 31), date(2024, 2, 29)}
    assert sum(b.amount for b in balances) == 0
    lines = read(economic, "ledger_lines")
    assert [line.source_id for line in lines] == ["901", "902", "903", "904", "905"]
    assert lines[0] == LedgerLineRecord(
        source_id="901", booking_date=date(2024, 1, 5), account="5600", amount=Decimal("12500.0"),
        description="Kontantsalg uge 1", reference="101", journal="Finance vouchers",
        dimensions={"departmental_distribution": "2"})
    assert lines[2].journal == "Purchases"
    assert not any("2023" in r.path for r in requests_mock.request_history if "entries" in r.path)


def test_a_next_page_on_another_host_is_refused(requests_mock):
    economic = build(requests_mock)
    page = fixture(KEY, "accounts_page1")
    page["pagination"]["nextPage"] = "https://evil.example/accounts?skippages=1&pagesize=1000"
    requests_mock.get(f"{mocks.BASE_URL}/accounts?skippages=0", json=page)
    with pytest.raises(DataError, match="another address"):
        read(economic, "accounts")
    assert not any(r.netloc == "evil.example" for r in requests_mock.request_history)


def test_a_revoked_grant_asks_for_a_new_connection_without_secrets(requests_mock):
    economic = build(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/self", status_code=401, json=fixture(KEY, "error_unauthorized"))
    with pytest.raises(AuthError) as caught:
        economic.check()
    assert "removed the Firmsync app" in caught.value.message
    assert "econ-grant" not in caught.value.message and "econ-app-secret" not in caught.value.message


def test_e_conomic_messages_are_passed_on(requests_mock):
    economic = build(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/accounting-years/2024/entries?skippages=0", status_code=404,
                      json=fixture(KEY, "error_not_found"))
    with pytest.raises(NotFoundError) as caught:
        read(economic, "ledger_lines")
    assert "The accounting year was not found." in caught.value.message


# --------------------------------------------------------------------------------------
# The fixtures and the sandbox validate against e-conomic's OpenAPI document
# --------------------------------------------------------------------------------------

FIXTURE_PATHS = {
    "self": "/self",
    "accounts_page1": "/accounts",
    "accounts_page2": "/accounts",
    "accounting_years": "/accounting-years",
    "periods_2024": "/accounting-years/2024/periods",
    "entries_2024_page1": "/accounting-years/2024/entries",
    "entries_2024_page2": "/accounting-years/2024/entries",
}


@pytest.fixture(scope="module")
def spec():
    return OpenAPI.from_file_path(str(shared_path("specs", "e-conomic", "e-conomic.openapi.yaml")),
                                  config=Config(spec_validator_cls=None))


def validate(spec, path, body, status=200):
    request = MockRequest(mocks.BASE_URL, "GET", path,
                          headers={"X-AppSecretToken": "a", "X-AgreementGrantToken": "b"})
    response = MockResponse(json.dumps(body).encode(), status_code=status, content_type="application/json")
    spec.validate_response(request, response)


@pytest.mark.parametrize("name", sorted(FIXTURE_PATHS))
def test_fixtures_validate_against_the_spec(spec, name):
    validate(spec, FIXTURE_PATHS[name], fixture(KEY, name))


def test_error_fixtures_validate_against_the_spec(spec):
    validate(spec, "/self", fixture(KEY, "error_unauthorized"), 401)
    validate(spec, "/accounting-years/2024/entries", fixture(KEY, "error_not_found"), 404)


def test_a_fixture_that_breaks_the_spec_is_caught(spec):
    broken = fixture(KEY, "accounting_years")
    broken["collection"][0]["fromDate"] = "1 January 2024"
    with pytest.raises(Exception):
        validate(spec, "/accounting-years", broken)


# --------------------------------------------------------------------------------------
# End to end against the sandbox
# --------------------------------------------------------------------------------------

def sandbox_config(sandbox):
    return Economic.spec.sandbox_settings(sandbox.url)


def company(sandbox, name_start):
    return next(book for book in sandbox.state.books.values() if book.spec.name.startswith(name_start))


def consent(sandbox, book, decision="allow"):
    """Open the installation page, pick the agreement, press a button: the callback's query."""
    url = consent_url(sandbox_config(sandbox), REDIRECT, "state-3")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and book.spec.name in unescape(page.text)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = requests.post(url.split("?")[0], data={**{k: unescape(v) for k, v in fields.items()},
                                                    "agreement": agreement_number(book.spec.id), "decision": decision},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def sandbox_connector(sandbox, credentials, reference=None):
    config = sandbox_config(sandbox)
    http = build_client(Economic.spec, secrets=secrets_for(Economic.spec, config, credentials), sleep=lambda s: None)
    return Economic(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http))


def test_consent_gives_a_grant_for_the_chosen_agreement(sandbox):
    book = company(sandbox, "Janssens")
    query = consent(sandbox, book)
    assert query["state"] == "state-3"
    [ref] = sandbox_connector(sandbox, callback(query)).list_references()
    assert (ref.reference, ref.name) == (str(agreement_number(book.spec.id)), book.spec.name)
    refused = consent(sandbox, book, decision="deny")
    with pytest.raises(AuthError):
        callback(refused)
    with pytest.raises(AuthError, match="connect"):
        sandbox_connector(sandbox, {"agreement_grant_token": "made-up"}).check()


def test_full_read_matches_the_books_and_the_spec(sandbox, spec):
    book = company(sandbox, "Bakkerij")  # 500 lines: entries come in pages of 1,000, totals per month
    credentials = callback(consent(sandbox, book))
    economic = sandbox_connector(sandbox, credentials, str(agreement_number(book.spec.id)))
    economic.page_size = 100  # several pages of entries, as a big agreement would send
    assert economic.check().ok
    window = SyncWindow(book.fiscal_years[0][0], book.fiscal_years[-1][1])
    assert list(economic.read("fiscal_years", StreamState(), window)) == [
        FiscalYearRecord(s, e) for s, e in book.fiscal_years]
    accounts = list(economic.read("accounts", StreamState(), window))
    kinds = {"asset": "asset", "expense": "expense", "income": "income", "liability": "liability", "equity": "liability"}
    assert {(a.number, a.kind) for a in accounts} == {(a["number"], kinds[a["type"]]) for a in book.accounts}
    lines = list(economic.read("ledger_lines", StreamState(), window))
    assert len(lines) == len({line.source_id for line in lines}) == book.line_count
    balances = list(economic.read("balances", StreamState(), window))
    by_month = {}
    for line in lines:
        key = (line.account, date(line.booking_date.year, line.booking_date.month, 1))
        by_month[key] = by_month.get(key, Decimal(0)) + line.amount
    assert {(b.account, b.period_start): b.amount for b in balances} == {k: v for k, v in by_month.items() if v}
    assert sandbox.calls("/entries") >= 2 * 2  # two years, at least two pages each
    # the sandbox's answers are e-conomic's shapes
    headers = {"X-AppSecretToken": "economic-sandbox-secret", "X-AgreementGrantToken": credentials["agreement_grant_token"]}
    for path in ("/self", "/accounts", "/accounting-years", "/accounting-years/2023/periods",
                 "/accounting-years/2023/entries"):
        answer = requests.get(f"{sandbox.url}/e-conomic/api{path}", headers=headers, timeout=10)
        validate(spec, path, answer.json(), answer.status_code)
