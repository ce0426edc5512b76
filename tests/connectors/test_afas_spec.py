"""AFAS against its own spec (``../shared/specs/afas/profit-Mutaties.json``, AFASSoftware/OASContent Mutaties.json
6.6.9): every request the connector sends goes to Prism serving the spec, and every fixture and sandbox answer is
validated with openapi-core.

The spec covers the standard GetConnectors (Profit_Administrations, Profit_Accounts, Profit_Period_balance,
Profit_Transactions, Profit_periods_per_administration); a custom or unknown id (the guessed log of deleted
mutations) falls under its generic ``/connectors/{Endpoint}``. Where the spec is wrong the deviation is written
down ONCE, here (:data:`DEVIATIONS`), and each has a test showing the spec really says otherwise:
"""
import json
from datetime import date

import pytest
import requests

from connectors.afas import Afas, Period, token_header
from connectors.base import ConnectorContext, DataError, StreamState, SyncWindow
from tests.conftest import shared_path
from tests.connectors.mocks import afas as mocks
from tests.connectors.mocks import fixtures_of
from tests.spec_contract import assert_no_violations, openapi_spec, prism_serving, recording_client, validate_answer

SERVER = "https://12345.rest.afas.online/ProfitRestServices"
FIXTURES = fixtures_of("afas")

#: where AFAS (and its documentation) and the spec disagree; the package follows AFAS
DEVIATIONS = {
    "operatortypes": "the spec types filterfieldids/filtervalues as one string and operatortypes as ONE number (enum "
                     "1..15); AFAS takes comma-separated lists, one entry per filter (help.afas.nl "
                     "App_Cnr_Rest_GET.htm). Every incremental read filters UnitId AND Modified: operatortypes=1,2.",
    "nulls": "no property of the standard GetConnector rows is nullable, but AFAS sends empty fields as null (the "
             "spec's own custom-connector example: \"EmailForDigitalDocuments\": null). Answers are validated "
             "with their null fields left out.",
    "error_examples": "the 500 answer's examples are objects ({\"example\": 0}) for an integer and strings: the spec's "
                      "own example does not validate; real bodies (fixtures/error_500.json) do.",
}

#: fixture -> GetConnector it answers
ANSWERS = {"administrations": "Profit_Administrations", "accounts": "Profit_Accounts",
           "periods": "Profit_periods_per_administration", "period_balance": "Profit_Period_balance",
           "transactions": "Profit_Transactions", "deleted_transactions": "Profit_Deleted_Transactions"}


@pytest.fixture(scope="module")
def spec_path():
    return shared_path("specs", "afas", "profit-Mutaties.json")


@pytest.fixture(scope="module")
def spec(spec_path):
    return openapi_spec(spec_path)


def without_nulls(value):
    """``value`` with every null field left out (DEVIATIONS["nulls"])."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def check(spec, getconnector, body, status=200, query="skip=0&take=1000"):
    payload = without_nulls(json.loads(body)) if body else None
    validate_answer(spec, "GET", f"/ProfitRestServices/connectors/{getconnector}?{query}",
                    json.dumps(payload) if payload is not None else b"", status=status,
                    headers={"Authorization": token_header(mocks.TOKEN)}, server="https://12345.rest.afas.online")


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_fixture_is_a_valid_answer_of_its_getconnector(spec, name):
    check(spec, ANSWERS[name], (FIXTURES / f"{name}.json").read_bytes())


def test_error_fixtures_are_valid_500_and_503_answers(spec):
    check(spec, "Profit_Transactions", (FIXTURES / "error_500.json").read_bytes(), status=500)
    check(spec, "Profit_Transactions", (FIXTURES / "maintenance_503.json").read_bytes(), status=503)


def test_the_validator_rejects_wrong_shapes(spec):
    """The checks above can fail: a year as text, an amount as text, rows that are no list."""
    page = json.loads((FIXTURES / "transactions.json").read_text())
    page["rows"][0]["Year"] = "2024"
    with pytest.raises(Exception, match="(?i)invalid"):
        check(spec, "Profit_Transactions", json.dumps(page))
    balances = json.loads((FIXTURES / "period_balance.json").read_text())
    balances["rows"][0]["Balance"] = "8185,00"
    with pytest.raises(Exception, match="(?i)invalid"):
        check(spec, "Profit_Period_balance", json.dumps(balances))
    with pytest.raises(Exception, match="(?i)invalid"):
        check(spec, "Profit_Accounts", json.dumps({"skip": 0, "take": 10, "rows": {"Account": "1000"}}))


# -- the deviations, each shown ------------------------------------------------------------------------


def test_deviation_operatortypes_the_spec_refuses_a_list_of_filters(spec):
    from openapi_core.testing import MockRequest

    def request(operators):
        return MockRequest("https://12345.rest.afas.online", "GET",
                           "/ProfitRestServices/connectors/Profit_Transactions",
                           args={"skip": "0", "take": "1000", "filterfieldids": "UnitId,Modified",
                                 "filtervalues": "1,2024-02-01T08:00:03Z", "operatortypes": operators},
                           headers={"Authorization": token_header(mocks.TOKEN)})

    with pytest.raises(Exception, match="operatortypes"):
        spec.validate_request(request("1,2"))
    assert "operatortypes" in DEVIATIONS


def test_deviation_nulls_the_spec_refuses_afas_empty_fields(spec):
    body = (FIXTURES / "transactions.json").read_bytes()
    assert b"null" in body
    with pytest.raises(Exception, match="(?i)invalid"):
        validate_answer(spec, "GET", "/ProfitRestServices/connectors/Profit_Transactions?skip=0&take=1000", body,
                        server="https://12345.rest.afas.online")
    check(spec, "Profit_Transactions", body)  # the same answer with its nulls left out


def test_deviation_error_examples_the_spec_own_500_example_is_invalid(spec, spec_path):
    answer = json.loads(spec_path.read_text())["components"]["responses"]["500"]
    schema = answer["content"]["application/json"]["schema"]
    own_example = {name: field["example"] for name, field in schema["properties"].items()}
    assert own_example["errorNumber"] == {"example": 0}
    with pytest.raises(Exception, match="(?i)invalid"):
        check(spec, "Profit_Transactions", json.dumps(own_example), status=500)


# -- the sandbox's answers ------------------------------------------------------------------------------


def sandbox_get(sandbox, getconnector, query="skip=0&take=1000", token=mocks.TOKEN):
    base = Afas.spec.sandbox_settings(sandbox.url)["base_url"]
    return requests.get(f"{base}/connectors/{getconnector}?{query}",
                        headers={"Authorization": token_header(token)}, timeout=30)


@pytest.mark.parametrize("modes", [[], ["nulls", "accounts_with_unit"]])
def test_sandbox_answers_are_valid_answers_of_their_getconnector(sandbox, spec, modes):
    sandbox.modes(afas=modes)
    sandbox.mutate("c-1003", delete=2)
    token = "<token><version>1</version><data>demo-key</data></token>"
    for getconnector in ANSWERS.values():
        answer = sandbox_get(sandbox, getconnector, token=token)
        assert answer.status_code == 200 and answer.json()["rows"], (getconnector, answer.text[:200])
        check(spec, getconnector, answer.content)
    if "nulls" in modes:
        rows = sandbox_get(sandbox, "Profit_Transactions", token=token).json()["rows"]
        assert all(row["VatCode"] is None and None in (row["AmtDebit"], row["AmtCredit"]) for row in rows)


def test_sandbox_errors_are_the_spec_answers(sandbox, spec):
    refused = sandbox_get(sandbox, "Profit_Accounts", token="<token><version>1</version><data>wrong</data></token>")
    assert refused.status_code == 401 and refused.content == b""
    check(spec, "Profit_Accounts", refused.content, status=401)
    sandbox.modes(afas=["maintenance"])
    down = sandbox_get(sandbox, "Profit_Accounts")
    assert down.status_code == 503 and down.headers["Retry-After"] == "7200"
    check(spec, "Profit_Accounts", down.content, status=503)
    sandbox.modes(afas=[])
    wrong_field = sandbox_get(sandbox, "Profit_Accounts",
                              "skip=0&take=10&filterfieldids=Nope&filtervalues=1&operatortypes=1",
                              token="<token><version>1</version><data>demo-key</data></token>")
    assert wrong_field.status_code == 500 and "Nope" in wrong_field.json()["externalMessage"]
    check(spec, "Profit_Accounts", wrong_field.content, status=500)


# -- requests: Prism serving the spec -------------------------------------------------------------------


@pytest.fixture(scope="module")
def prism(spec_path):
    with prism_serving(spec_path) as server:
        yield server


def prism_connector(prism, responses):
    config = {**mocks.config(), "base_url": prism.url}
    return Afas(ConnectorContext(config=config, credentials={}, reference=mocks.ADMINISTRATION,
                                 http=recording_client(Afas.spec, responses)))


def test_every_first_read_passes_prism(prism):
    responses, offset = [], len(prism.output())
    afas = prism_connector(prism, responses)
    assert afas.check().ok  # Prism's generated administration (AdminId 0)
    assert [a.number for a in afas.read("accounts", StreamState(), SyncWindow())] == ["string"]
    # Prism answers from the schema: its one period belongs to administration ("Unit") 0, so it is left out
    assert list(afas.read("fiscal_years", StreamState(), SyncWindow())) == []
    afas._periods = {(0, 0): Period(0, 0, date(2024, 1, 1), date(2024, 1, 31))}  # Prism's rows are year 0, period 0
    assert list(afas.read("balances", StreamState(), SyncWindow())) == []  # a generated Balance of 0
    with pytest.raises(DataError, match="entry date"):
        list(afas.read("ledger_lines", StreamState(), SyncWindow()))
    with pytest.raises(DataError, match="without Deleted"):  # the generic custom-connector example rows
        list(afas.read("deleted_lines", StreamState(), SyncWindow()))
    paths = [r.request.path_url.split("?")[0] for r in responses]
    assert paths == [f"/connectors/{c}" for c in ("Profit_Administrations", "Profit_Accounts",
                                                  "Profit_periods_per_administration", "Profit_Period_balance",
                                                  "Profit_Transactions", "Profit_Deleted_Transactions")]
    assert_no_violations(prism, responses, offset)


def test_an_incremental_read_breaks_only_the_operatortypes_deviation(prism):
    responses, offset = [], len(prism.output())
    afas = prism_connector(prism, responses)
    with pytest.raises(DataError):  # Prism's 422
        list(afas.read("ledger_lines", StreamState(bookmark={"stamp": "2024-02-01T08:00:03Z"}), SyncWindow()))
    assert responses[-1].status_code == 422
    violations = responses[-1].json()["validation"]
    assert {tuple(v["location"]) for v in violations} == {("query", "operatortypes")}, violations
    assert "operatortypes" in DEVIATIONS
    with pytest.raises(AssertionError):
        assert_no_violations(prism, responses, offset)


def test_prism_does_flag_a_call_without_the_afastoken(prism):
    """The runs above can fail: Prism refuses a call that breaks the spec's security."""
    responses, offset = [], len(prism.output())
    afas = prism_connector(prism, responses)
    with pytest.raises(Exception):
        afas.http.get(f"{prism.url}/connectors/Profit_Accounts", params={"skip": 0, "take": 10})
    with pytest.raises(AssertionError):
        assert_no_violations(prism, responses, offset)
