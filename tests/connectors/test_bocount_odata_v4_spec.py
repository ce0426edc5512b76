"""BoCount against Business Central's own spec (``../shared/specs/business-central/``, API v1.0).

Requests: the connector reads through Prism serving the spec. Answers: every fixture and every
sandbox answer validates against the spec's response schemas (openapi-core).

The spec is v1.0; the connector and its fixtures speak v2.0 (no public v2.0 spec exists,
CONNECTORS.md section 26). Where the two disagree, or the spec contradicts itself, the deviation
is written HERE, once, and tested below (the package README lists them too):

1. ``generalLedgerEntry.id`` is an int32 entry number in v1.0; v2.0 makes ``id`` a GUID and adds
   ``entryNumber``. :func:`as_v1` moves ``entryNumber`` into ``id``.
2. ``trialBalance.dateFilter`` is a ``date-time`` in v1.0 and a date in v2.0. :func:`as_v1` adds midnight UTC.
3. ``accountingPeriods`` (the fiscal years) is not in v1.0: Prism answers 404.
4. The spec declares OAuth2 only (implicit flow on login.windows.net); basic auth with a web
   service access key, BoCount's way in, is not declared: Prism refuses it (401).
5. The spec's examples are placeholders that contradict its own schemas: trial-balance amounts
   are the property names (``"totalDebit": "totalDebit"``), and G/L entry examples carry
   ``account: null`` and ``dimensions: [null, null]`` where the schema allows neither.
6. Collections carry only ``value``: ``@odata.context`` and ``@odata.nextLink`` are not described
   (no ``additionalProperties: false``, so they validate).
"""
import copy
import json
import warnings
from datetime import date

import pytest
import requests
import yaml

from connectors.base import AuthError, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors.bocount_odata_v4 import BoCount, emulator
from tests.conftest import shared_path
from tests.connectors.mocks import bocount_odata_v4 as mocks
from tests.connectors.mocks import fixture
from tests.spec_contract import assert_no_violations, openapi_spec, prism_serving, recording_client, validate_answer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

HOST = "https://api.businesscentral.dynamics.com"
SERVER_PATH = "/v2.0/sandbox/api/v1.0"  # the spec's server, as the paths are matched under it
COMPANY = mocks.COMPANY
#: fixture -> the spec path it answers
FIXTURES = {
    "companies": "/companies",
    "accounts": f"/companies({COMPANY})/accounts",
    "trial_balance_2024-04": f"/companies({COMPANY})/trialBalance",
    "trial_balance_2024-05": f"/companies({COMPANY})/trialBalance",
    "general_ledger_entries_page_1": f"/companies({COMPANY})/generalLedgerEntries",
    "general_ledger_entries_page_2": f"/companies({COMPANY})/generalLedgerEntries",
    "general_ledger_entries_since": f"/companies({COMPANY})/generalLedgerEntries",
}


def spec_path():
    return shared_path("specs", "business-central", "business-central-v1.swagger.yaml")


@pytest.fixture(scope="module")
def spec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openapi_spec(spec_path())


def as_v1(path, body):
    """A v2.0 answer as v1.0 shapes it (deviations 1 and 2 above); other entity sets unchanged."""
    body = copy.deepcopy(body)
    entity = path.rstrip("/").rsplit("/", 1)[-1]
    for row in body.get("value", []):
        if entity == "generalLedgerEntries" and "entryNumber" in row:
            row["id"] = row.pop("entryNumber")
        if entity == "trialBalance" and len(str(row.get("dateFilter") or "")) == 10:
            row["dateFilter"] = f"{row['dateFilter']}T00:00:00Z"
    return body


def valid(spec, path, body):
    text = json.dumps(body, default=lambda value: value.isoformat())  # YAML examples hold dates
    validate_answer(spec, "GET", SERVER_PATH + path, text, server=HOST)


# -- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_fixture_is_a_valid_answer_once_shaped_as_v1(spec, name):
    valid(spec, FIXTURES[name], as_v1(FIXTURES[name], fixture("bocount_odata_v4", name)))


@pytest.mark.parametrize("name, unchanged", [
    ("general_ledger_entries_page_1", False), ("trial_balance_2024-04", False), ("accounts", True), ("companies", True)])
def test_the_v2_deviations_are_real_and_the_only_ones(spec, name, unchanged):
    body = fixture("bocount_odata_v4", name)
    if unchanged:
        valid(spec, FIXTURES[name], body)
    else:
        with pytest.raises(Exception, match="InvalidData|not valid|Value"):
            valid(spec, FIXTURES[name], body)


def test_the_specs_own_examples_break_its_schemas(spec):
    document = yaml.load(spec_path().read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = document["components"]["schemas"]
    ledger = schemas["inline_response_200_23"]["example"]
    assert ledger["value"][0]["account"] is None and ledger["value"][0]["dimensions"] == [None, None]
    with pytest.raises(Exception, match="InvalidData|not valid|Value"):
        valid(spec, FIXTURES["general_ledger_entries_page_1"], ledger)
    trial = schemas["trialBalance"]["example"]
    assert trial["totalDebit"] == "totalDebit"  # a placeholder, not an amount (deviation 5)
    assert "/companies({company_id})/accountingPeriods" not in document["paths"]  # deviation 3
    assert list(document["components"]["securitySchemes"]) == ["oAuth"]  # deviation 4


def sandbox_answers(sandbox):
    """Every page the emulator gives the connector's calls, as (spec path, body)."""
    book = sandbox.state.books["c-1003"]
    company = emulator.guid(book.spec.id)
    base = f"{sandbox.url}/bocount/BC/api/v2.0"
    auth = ("FIRMSYNC", "demo-key")
    calls = [("/companies", {}), (f"/companies({company})/accounts", {}),
             (f"/companies({company})/trialBalance", {"$filter": "dateFilter ge 2024-01-01 and dateFilter le 2024-01-31"}),
             (f"/companies({company})/generalLedgerEntries", {}),
             (f"/companies({company})/generalLedgerEntries",
              {"$filter": "lastModifiedDateTime ge 2025-01-01T00:00:05.000Z"})]
    answers = []
    for path, params in calls:
        url = base + path
        while url:
            body = requests.get(url, params=params if url == base + path else None, auth=auth, timeout=10).json()
            answers.append((path, body))
            url = body.get("@odata.nextLink")
    return answers


def test_the_sandbox_answers_validate_as_v1_and_in_v1_mode_as_they_are(spec, sandbox, monkeypatch):
    monkeypatch.setattr(emulator, "PAGE", 15)  # several pages of each
    answers = sandbox_answers(sandbox)
    assert sum("@odata.nextLink" in body for _, body in answers) >= 3
    for path, body in answers:
        valid(spec, path.replace(emulator.guid("c-1003"), COMPANY), as_v1(path, body))
    sandbox.modes(bocount_odata_v4=["v1_shapes"])
    for path, body in sandbox_answers(sandbox):
        valid(spec, path.replace(emulator.guid("c-1003"), COMPANY), body)


# -- requests: Prism ---------------------------------------------------------------------------


def example_violations(response):
    """Prism's ``sl-violations`` about its OWN example answer (deviation 5), removed from the
    response so that :func:`assert_no_violations` judges the request alone. Fails on any
    violation located in the request."""
    header = response.headers.pop("sl-violations", None)
    if header is None:
        return None
    # a JSON list, or "Too many violations! [..." cut short: read the locations as text
    assert '"location":["response"' in header and '"location":["request"' not in header, header[:500]
    return header


@pytest.fixture(scope="module")
def prism():
    with prism_serving(spec_path()) as server:
        yield server


def prism_connector(prism, responses, monkeypatch, auth_method="entra"):
    # the Entra sign-in host is not part of this spec: the token is given (tested in test_bocount_odata_v4.py)
    monkeypatch.setattr(BoCount, "login", lambda self: ("prism-access-token", 3600))
    config = mocks.config() | {"base_url": prism.url, "auth_method": auth_method, "tenant_id": "contoso",
                               "client_id": "prism-app", "client_secret": "prism-secret-2f7c"}
    return BoCount(ConnectorContext(config=config, credentials={}, reference=COMPANY,
                                    http=recording_client(BoCount.spec, responses)))


def test_the_connector_reads_through_prism_without_a_violation(prism, monkeypatch):
    responses, offset = [], len(prism.output())
    bc = prism_connector(prism, responses, monkeypatch)
    assert bc.check().ok
    accounts = list(bc.read("accounts", StreamState(), SyncWindow()))
    assert [a.number for a in accounts] == ["number", "number"]  # the spec's example, twice
    state = StreamState()
    lines = list(bc.read("ledger_lines", state, SyncWindow()))
    assert [line.source_id for line in lines] == ["5", "5"] and state.new_bookmark == "2000-01-23T04:56:07.000Z"
    list(bc.read("ledger_lines", StreamState(bookmark=state.new_bookmark), SyncWindow()))
    assert "lastModifiedDateTime+ge+2000-01-23T04" in responses[-1].request.url
    assert all(r.request.headers["Authorization"] == "Bearer prism-access-token" for r in responses)
    flagged = {r.request.path_url.split("?")[0].rsplit("/", 1)[-1] for r in responses if example_violations(r)}
    assert flagged == {"companies", "generalLedgerEntries"}  # account: null, dimensions: [null, null]...
    assert_no_violations(prism, responses, offset)


def test_prism_accepts_the_trial_balance_request_whose_placeholder_amounts_are_refused(prism, monkeypatch):
    responses, offset = [], len(prism.output())
    bc = prism_connector(prism, responses, monkeypatch)
    window = SyncWindow(date(2024, 4, 1), date(2024, 4, 30), (date(2024, 4, 30),))
    with pytest.raises(DataError, match="total debit that is not an amount"):  # deviation 5
        list(bc.read("balances", StreamState(), window))
    assert "dateFilter+ge+2024-04-01+and+dateFilter+le+2024-04-30" in responses[-1].request.url
    assert all(example_violations(r) for r in responses)  # "account": null in the example
    assert_no_violations(prism, responses, offset)


def test_prism_has_no_accounting_periods(prism, monkeypatch):
    responses = []
    bc = prism_connector(prism, responses, monkeypatch)
    with pytest.raises(NotFoundError):  # deviation 3
        list(bc.read("fiscal_years", StreamState(), SyncWindow()))
    assert responses[-1].status_code == 404 and responses[-1].request.url.endswith("/accountingPeriods")


def test_prism_refuses_basic_auth_which_the_spec_does_not_declare(prism, monkeypatch):
    responses = []
    bc = prism_connector(prism, responses, monkeypatch, auth_method="basic")
    with pytest.raises(AuthError):  # deviation 4
        bc.check()
    assert responses[-1].status_code == 401 and responses[-1].request.headers["Authorization"].startswith("Basic ")


def test_prism_does_flag_a_request_outside_the_spec(prism, monkeypatch):
    """The runs above can fail: Prism refuses a call that breaks the spec."""
    responses, offset = [], len(prism.output())
    bc = prism_connector(prism, responses, monkeypatch)
    with pytest.raises(DataError):
        bc.get_json(f"{prism.url}/companies({COMPANY})/generalLedgerEntries", params={"$top": "all"})
    assert responses[-1].status_code == 422
    with pytest.raises(AssertionError):
        assert_no_violations(prism, responses, offset)
