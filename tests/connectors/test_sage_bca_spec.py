"""Sage Business Cloud Accounting against Sage's own specs (``../shared/specs/sage/``): requests through Prism,
answers (fixtures and the sandbox's) through openapi-core.

Three Swagger 2.0 files: the accounting API, the reporting module (``/trial_balance``) and the user module
(``/businesses``). Prism serves each; a transport adapter sends each request to the Prism of its module.
openapi-core reads only OpenAPI 3, so each file is translated in memory (:func:`as_openapi3`: definitions to
components, parameter types to schemas, response schemas to JSON content), nothing else changed.

The spec's deviations from the API are written down once, in the package README ("Spec deviations"), and
each is tested here: list answers in the ``$items`` envelope (spec: bare arrays), the two trial-balance shapes,
``from_date``/``to_date`` as date-times, and ``/businesses`` unpaged.
"""
import copy
import json
from contextlib import ExitStack
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests
from openapi_core import Config, OpenAPI
from requests.adapters import HTTPAdapter

from connectors.base import ConnectorContext, DataError, StreamState, SyncWindow
from connectors.registry import ROOT as PACKAGES
from connectors.sage_bca import SageAccounting, emulator
from tests.conftest import shared_path
from tests.spec_contract import assert_no_violations, prism_serving, recording_client, validate_answer

FIXTURES = PACKAGES / "sage_bca" / "fixtures"
SAGE = "https://api.accounting.sage.com"
SPEC_FILES = {"accounting": "sage-accounting-v3.1.swagger.json",
              "reporting": "sage-accounting-v3.1-reporting.swagger.json",
              "businesses": "sage-accounting-v3.1-user-businesses.swagger.json"}
PRISM_HOST = "http://sage.prism"
#: the envelope of list answers (https://developer.sage.com/accounting/guides/concepts/pagination/)
ENVELOPE_KEYS = {"$total", "$page", "$next", "$back", "$itemsPerPage", "$items_per_page", "$items"}
DECIMAL_TEXT = r"^-?\d+(\.\d+)?$"


def module_of(path):
    """Which of Sage's module specs describes ``path``."""
    if path.startswith("/businesses") or path.startswith("/user"):
        return "businesses"
    return "reporting" if path.startswith("/trial_balance") else "accounting"


def swagger(name):
    return json.loads(shared_path("specs", "sage", SPEC_FILES[name]).read_text())


# -- Swagger 2.0 -> OpenAPI 3 (in memory) ---------------------------------------------------

PARAMETER_SCHEMA = ("type", "format", "enum", "items", "minimum", "maximum", "default", "pattern", "maxLength",
                    "minLength")


def _components(node):
    if isinstance(node, dict):
        return {k: v.replace("#/definitions/", "#/components/schemas/") if k == "$ref" and isinstance(v, str)
                else _components(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_components(v) for v in node]
    return node


def as_openapi3(document):
    """A Swagger 2.0 document as OpenAPI 3.0 for openapi-core (same paths, parameters and schemas)."""
    paths = {}
    for path, item in document["paths"].items():
        paths[path] = {}
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            new = {k: v for k, v in operation.items() if k not in ("parameters", "responses", "produces", "consumes")}
            parameters = []
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "body":
                    new["requestBody"] = {"content": {"application/json": {"schema": parameter.get("schema", {})}}}
                elif parameter["in"] in ("query", "path", "header"):
                    kept = {k: v for k, v in parameter.items()
                            if k not in PARAMETER_SCHEMA + ("collectionFormat", "allowEmptyValue")}
                    parameters.append({**kept, "schema": {k: parameter[k] for k in PARAMETER_SCHEMA if k in parameter}})
            if parameters:
                new["parameters"] = parameters
            # a Swagger 2.0 answer without a schema describes no body: any JSON (here: its example kept)
            new["responses"] = {code: {"description": answer.get("description", ""),
                                       "content": {"application/json": {"schema": answer.get("schema", {})}}}
                                for code, answer in operation.get("responses", {}).items()}
            paths[path][method] = new
    return _components({"openapi": "3.0.3", "info": document["info"],
                        "servers": [{"url": f"https://{document['host']}{document.get('basePath', '')}"}],
                        "paths": paths, "components": {"schemas": document.get("definitions", {})}})


@pytest.fixture(scope="module")
def specs():
    return {name: OpenAPI.from_dict(as_openapi3(swagger(name)), config=Config(spec_validator_cls=None))
            for name in SPEC_FILES}


def trial_balance_schema():
    """The reporting spec's TrialBalance definition, accepting both shapes the spec describes: wrapped in
    ``trial_balance{}`` (its definition) or top level (its example), amounts as numbers or decimal strings."""
    definitions = copy.deepcopy(swagger("reporting")["definitions"])
    for definition in definitions.values():
        for holder in [definition, *definition.get("properties", {}).values()]:
            for name, prop in list(holder.get("properties", {}).items()):
                if prop.get("type") == "number":
                    holder["properties"][name] = {"anyOf": [{"type": "number"},
                                                            {"type": "string", "pattern": DECIMAL_TEXT}]}
    wrapped = definitions["TrialBalance"]
    top_level = copy.deepcopy(wrapped["properties"]["trial_balance"])
    wrapped["required"] = ["trial_balance"]
    wrapped["properties"]["trial_balance"]["required"] = top_level["required"] = ["from_date", "to_date",
                                                                                   "ledger_accounts"]
    return {"anyOf": [{"$ref": "#/definitions/TrialBalance"}, top_level], "definitions": definitions}


def validate_trial_balance(body):
    jsonschema.Draft4Validator(trial_balance_schema()).validate(json.loads(body))


def validate(specs, url, body):
    """Raise unless ``body`` is a valid answer to ``GET url`` (a path under /v3.1) in the spec of its module.

    List answers come in Sage's ``$items`` envelope where the spec declares a bare array: the envelope's
    keys are checked and its ``$items`` validated as the spec's answer."""
    path = urlsplit(url).path
    if module_of(path) == "reporting":
        return validate_trial_balance(body)
    answer = json.loads(body)
    if isinstance(answer, dict) and "$items" in answer and module_of(path) == "accounting":
        assert set(answer) <= ENVELOPE_KEYS, set(answer) - ENVELOPE_KEYS
        assert isinstance(answer["$total"], int) and isinstance(answer["$items"], list)
        body = json.dumps(answer["$items"])
    validate_answer(specs[module_of(path)], "GET", f"/v3.1{url}", body, server=SAGE)


# -- fixtures -----------------------------------------------------------------------------

FIXTURE_CALLS = {
    "businesses.json": "/businesses",
    "business_gb.json": "/businesses/f99d7e3bdd4ae1b27610e262261e1a53",
    "business_fr.json": "/businesses/2900655ce8f68e4c799b04d7baa45757",
    "financial_settings.json": "/financial_settings",
    "ledger_accounts.json": "/ledger_accounts?items_per_page=200&page=1",
    "ledger_accounts_balance_details_2024-04.json": "/ledger_accounts?show_balance_details=true"
                                                    "&from_date=2024-04-01T00:00:00Z&to_date=2024-04-30T23:59:59Z",
    "ledger_entries.json": "/ledger_entries?items_per_page=200&page=1",
    "trial_balance_2024-04-30.json": "/trial_balance?from_date=2024-04-01&to_date=2024-04-30",
    "trial_balance_2024-05-31.json": "/trial_balance?from_date=2024-05-01&to_date=2024-05-31",
}


def test_every_fixture_is_named_here():
    assert {p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("error")} == set(FIXTURE_CALLS)


@pytest.mark.parametrize("name", sorted(FIXTURE_CALLS))
def test_fixture_matches_the_spec(specs, name):
    validate(specs, FIXTURE_CALLS[name], (FIXTURES / name).read_bytes())


def test_the_two_trial_balance_fixtures_are_the_two_shapes_of_the_spec():
    april = json.loads((FIXTURES / "trial_balance_2024-04-30.json").read_text())
    may = json.loads((FIXTURES / "trial_balance_2024-05-31.json").read_text())
    assert isinstance(april["ledger_accounts"][0]["debit"], str)
    assert isinstance(may["trial_balance"]["ledger_accounts"][0]["debit"], float)
    # and the spec's own example is accepted by the same deviation schema
    example = swagger("reporting")["paths"]["/trial_balance"]["get"]["responses"]["200"]["examples"]["application/json"]
    validate_trial_balance(json.dumps(example))


def test_the_validators_reject_wrong_shapes(specs):
    """The checks above can fail: an entry whose debit is a word, an amount written with a comma, a bad envelope."""
    entries = json.loads((FIXTURES / "ledger_entries.json").read_text())
    entries["$items"][0]["debit"] = "one hundred"
    with pytest.raises(Exception, match="(?i)invalid"):
        validate(specs, "/ledger_entries", json.dumps(entries))
    balance = json.loads((FIXTURES / "trial_balance_2024-04-30.json").read_text())
    balance["ledger_accounts"][0]["debit"] = "120,00"
    with pytest.raises(jsonschema.ValidationError):
        validate_trial_balance(json.dumps(balance))
    with pytest.raises(jsonschema.ValidationError):
        validate_trial_balance(json.dumps({"balances": []}))
    settings = json.loads((FIXTURES / "financial_settings.json").read_text())
    settings["multi_currency_enabled"] = "no"
    with pytest.raises(Exception, match="(?i)invalid"):
        validate(specs, "/financial_settings", json.dumps(settings))
    with pytest.raises(AssertionError):
        validate(specs, "/ledger_accounts", json.dumps({"$items": [], "$total": 0, "items": []}))


# -- the sandbox's answers -------------------------------------------------------------------

def test_the_sandbox_answers_match_the_spec(sandbox, specs):
    provider = sandbox.state.oauth["sage_bca"]
    headers = {"Authorization": f"Bearer {provider._issue('sage-sandbox-client')['access_token']}"}
    calls = ["/businesses", "/businesses/{business}", "/financial_settings",
             "/ledger_accounts?items_per_page=200&page=1",
             "/ledger_accounts?show_balance_details=true&from_date=2024-04-01T00:00:00Z&to_date=2024-04-30T23:59:59Z",
             "/ledger_entries?items_per_page=200&page=2&updated_or_created_since=2025-01-01T00:00:00Z",
             "/trial_balance?from_date=2024-04-01&to_date=2024-04-30"]
    sandbox.mutate("c-1003", delete=1)  # a deleted entry in the feed
    for modes in ([], ["trial_balance_wrapped"]):
        sandbox.modes(sage_bca=modes)
        for call in calls:
            business = emulator.business_id("c-1003")
            url = call.format(business=business)
            answer = requests.get(f"{sandbox.url}/sage/v3.1{url}", headers={**headers, "X-Business": business},
                                  timeout=30)
            assert answer.status_code == 200, (url, answer.text[:200])
            validate(specs, url, answer.content)
    wrapped = requests.get(f"{sandbox.url}/sage/v3.1{calls[-1]}", timeout=30,
                           headers={**headers, "X-Business": emulator.business_id("c-1003")}).json()
    assert isinstance(wrapped["trial_balance"]["ledger_accounts"][0]["debit"], float)


# -- requests: Prism ------------------------------------------------------------------------

class PrismRouter(HTTPAdapter):
    """Sends each request for ``PRISM_HOST`` to the Prism serving the spec of its module."""

    def __init__(self, prisms):
        super().__init__()
        self.prisms = prisms

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        query = f"?{parts.query}" if parts.query else ""
        request.url = f"{self.prisms[module_of(parts.path)].url}{parts.path}{query}"
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def prisms():
    with ExitStack() as stack:
        yield {name: stack.enter_context(prism_serving(shared_path("specs", "sage", file)))
               for name, file in SPEC_FILES.items()}


def prism_connector(prisms, responses):
    config = {"client_id": "prism-client", "client_secret": "prism-secret-5d0e", "base_url": PRISM_HOST}
    credentials = {"access_token": "prism-access-token", "refresh_token": "prism-refresh-token",
                   "expires_at": 4_000_000_000}
    http = recording_client(SageAccounting.spec, responses)
    http.session.mount(PRISM_HOST, PrismRouter(prisms))
    return SageAccounting(ConnectorContext(config=config, credentials=credentials, http=http,
                                           reference="f99d7e3bdd4ae1b27610e262261e1a53"))


def offsets(prisms):
    return {name: len(server.output()) for name, server in prisms.items()}


def assert_clean(prisms, responses, before):
    for name, server in prisms.items():
        mine = [r for r in responses if r.url.startswith(server.url)]
        if mine:
            assert_no_violations(server, mine, before[name])


WINDOW = SyncWindow(date(2024, 4, 1), date(2024, 5, 31), (date(2024, 4, 30), date(2024, 5, 31)))


def test_every_stream_reads_without_a_prism_violation(prisms):
    responses, before = [], offsets(prisms)
    sage = prism_connector(prisms, responses)
    assert len(sage.list_references()) == 8  # the user spec's example
    assert sage.check().ok
    for stream in ("fiscal_years", "accounts", "balances", "ledger_lines", "deleted"):
        list(sage.read(stream, StreamState(), WINDOW))
    incremental = StreamState(bookmark={"since": "2024-05-01T00:00:00Z"})
    list(sage.read("ledger_lines", incremental, WINDOW))
    paths = {urlsplit(r.url).path for r in responses}
    assert {"/businesses", "/financial_settings", "/ledger_accounts", "/ledger_entries"} <= paths
    # Prism's Business has no real country: the balances came from the chart's balance details
    assert "/trial_balance" not in paths
    assert any("show_balance_details=true" in r.url for r in responses)
    assert_clean(prisms, responses, before)


def test_a_gb_business_reads_the_trial_balance_without_a_prism_violation(prisms):
    responses, before = [], offsets(prisms)
    sage = prism_connector(prisms, responses)
    sage.__dict__["business"] = {"country": {"id": "GB"}}  # Prism's generated Business names no real country
    balances = list(sage.read("balances", StreamState(), WINDOW))
    # the spec's example trial balance, top level with string amounts, read for each period
    assert len([r for r in responses if "/trial_balance" in r.url]) == 2
    assert sum(b.amount for b in balances) == 2 * sum(
        Decimal(a["debit"]) - Decimal(a["credit"])
        for a in swagger("reporting")["paths"]["/trial_balance"]["get"]["responses"]["200"]["examples"]
        ["application/json"]["ledger_accounts"])
    assert_clean(prisms, responses, before)


def test_prism_flags_the_plain_dates_the_spec_does_not_allow(prisms):
    """Why the connector sends from_date/to_date as date-times to /ledger_accounts and /ledger_entries (README),
    and that the runs above can fail."""
    responses, before = [], offsets(prisms)
    sage = prism_connector(prisms, responses)
    with pytest.raises(DataError):
        sage.get("/ledger_entries", {"from_date": "2024-04-01"})
    assert responses[-1].status_code == 422 and "date-time" in responses[-1].text
    with pytest.raises(AssertionError):
        assert_clean(prisms, responses, before)
