"""Octopus against the vendor's own OpenAPI spec (../shared/specs/octopus/octopus_openapi_v51.9.17.json).

* Requests: the connector reads every stream from Prism serving the spec; Prism checks each request's
  path, query, headers (``Token``, ``dossierToken``, ``softwareHouseUuid``) and body.
* Answers: every fixture and every sandbox answer validates against the operation's response schema
  (openapi-core).

Where the spec and the vendor's recorded behaviour part, the deviation is written once, in
:data:`SPEC_DEVIATIONS`, and each has a test below.
"""
import json
from datetime import date

import pytest
import requests

from connectors.base import ConnectorContext, StreamState, SyncWindow
from connectors.octopus import EVERYTHING, Octopus, emulator
from connectors.registry import ROOT
from tests.conftest import shared_path
from tests.spec_contract import assert_no_violations, openapi_spec, prism_serving, recording_client, validate_answer

SPEC = shared_path("specs", "octopus", "octopus_openapi_v51.9.17.json")
FIXTURES = ROOT / "octopus" / "fixtures"
SERVER = "https://service.inaras.be/octopus-rest-api/v1"

#: every place the vendor's behaviour and its spec part (README.md "Spec deviations" explains each)
SPEC_DEVIATIONS = {
    "429": "a spent daily allowance is not in the spec (no 429 answer is declared anywhere): GUESS, the emulator "
           "answers 429 with Retry-After and an ErrorResult body, the connector never gets there (its budgets)",
    "no-changes-404": "'nothing changed' is a 404 of the feeds, declared as an error (ErrorResult): read as empty",
    "optional-timestamp": "accounts/amounts/modified declares modifiedTimeStamp optional, every other feed "
                          "requires it: the connector always sends it",
}

#: fixture -> (method, path with query, status)
FIXTURE_CALLS = {
    "authentication.json": ("POST", "/authentication", 200),
    "dossiers.json": ("GET", "/dossiers", 200),
    "dossier_token.json": ("POST", "/dossiers?dossierId=1003", 200),
    "bookyears.json": ("GET", "/dossiers/1003/bookyears", 200),
    "accounts_bookyear_2.json": ("GET", "/dossiers/1003/accounts?bookyearId=2", 200),
    "account_amounts_modified.json": ("GET", f"/dossiers/1003/accounts/amounts/modified?modifiedTimeStamp={EVERYTHING}",
                                      200),
    "bookings_modified_incremental.json": ("GET", "/dossiers/1003/bookyears/-1/bookings/modified?journalTypeId=-1&"
                                                  "modifiedTimeStamp=2024-05-01 02:00:00.000", 200),
    "no_modified_accounts_404.json": ("GET", "/dossiers/1003/accounts/modified?"
                                             "modifiedTimeStamp=2024-05-01 02:00:00.000", 404),
    "error_401.json": ("GET", "/dossiers", 401),
    **{f"bookings_modified_{year}_{journal}.json":
       ("GET", f"/dossiers/1003/bookyears/{year}/bookings/modified?journalTypeId={journal}&"
               f"modifiedTimeStamp={EVERYTHING}", 200) for year in (1, 2) for journal in (1, 2, 3, 4)},
}


@pytest.fixture(scope="module")
def spec():
    return openapi_spec(SPEC)


def test_every_fixture_is_checked():
    assert set(FIXTURE_CALLS) == {path.name for path in FIXTURES.glob("*.json")}


@pytest.mark.parametrize("name", sorted(FIXTURE_CALLS))
def test_fixture_matches_the_spec(spec, name):
    method, url, status = FIXTURE_CALLS[name]
    validate_answer(spec, method, SERVER + url, (FIXTURES / name).read_bytes(), status=status)


def test_the_validator_rejects_wrong_shapes(spec):
    """The checks above can fail: a book year without its end, a booking amount as text."""
    years = json.loads((FIXTURES / "bookyears.json").read_text())
    del years[0]["endDate"]
    with pytest.raises(Exception, match="(?i)invalid"):
        validate_answer(spec, "GET", f"{SERVER}/dossiers/1003/bookyears", json.dumps(years))
    body = json.loads((FIXTURES / "bookings_modified_1_1.json").read_text())
    body["modifiedBookings"][0]["bookingAmount"] = "twelve"
    method, url, _ = FIXTURE_CALLS["bookings_modified_1_1.json"]
    with pytest.raises(Exception, match="(?i)invalid"):
        validate_answer(spec, method, SERVER + url, json.dumps(body))


def test_deviation_429_is_not_declared_by_the_spec(spec):
    assert "429" in SPEC_DEVIATIONS
    with pytest.raises(Exception):
        validate_answer(spec, "GET", f"{SERVER}/dossiers/1003/accounts?bookyearId=2",
                        json.dumps({"technicalInfo": "Maximum allowed calls per day reached"}), status=429)


def operation(path):
    return json.loads(SPEC.read_text())["paths"][f"/dossiers/{{dossierId}}/{path}"]["get"]


def test_deviation_no_changes_is_a_declared_404():
    assert "no-changes-404" in SPEC_DEVIATIONS
    for path in ("accounts/modified", "accounts/amounts/modified", "bookyears/{bookyearId}/bookings/modified"):
        answer = operation(path)["responses"]["404"]
        assert "No modified" in answer["description"]
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResult")


def test_deviation_optional_timestamp():
    assert "optional-timestamp" in SPEC_DEVIATIONS
    required = {path: next(p.get("required", False) for p in operation(path)["parameters"]
                           if p["name"] == "modifiedTimeStamp")
                for path in ("accounts/modified", "accounts/amounts/modified")}
    assert required == {"accounts/modified": True, "accounts/amounts/modified": False}


# -- the sandbox's answers ------------------------------------------------------------------------

def test_sandbox_answers_match_the_spec(spec, sandbox):
    base = f"{sandbox.url}/octopus/octopus-rest-api/v1"
    checked = []

    def check(method, path, status=200, **kwargs):
        response = requests.request(method, base + path, timeout=30, **kwargs)
        assert response.status_code == status, (path, response.text[:200])
        validate_answer(spec, method, SERVER + response.url.split("/v1", 1)[1], response.content, status=status)
        checked.append(path)
        return response.json()

    check("POST", "/authentication", 401, headers={"softwareHouseUuid": "wrong"}, json={"user": "x", "password": "y"})
    token = check("POST", "/authentication", headers={"softwareHouseUuid": emulator.SOFTWARE_HOUSE},
                  json={"user": emulator.USER, "password": "demo-key"})["token"]
    check("GET", "/dossiers", headers={"Token": token})
    dossier = check("POST", "/dossiers", params={"dossierId": 1001}, headers={"Token": token})["Dossiertoken"]
    check("POST", "/dossiers", 404, params={"dossierId": 4242}, headers={"Token": token})
    headers = {"dossierToken": dossier}
    check("GET", "/dossiers/1001/bookyears", headers=headers)
    check("GET", "/dossiers/1001/accounts", params={"bookyearId": 2}, headers=headers)
    check("GET", "/dossiers/1001/accounts/modified", 404, params={"modifiedTimeStamp": "2026-01-01 00:00:00.000"},
          headers=headers)
    check("GET", "/dossiers/1001/accounts/amounts/modified", params={"modifiedTimeStamp": EVERYTHING}, headers=headers)
    check("GET", "/dossiers/1001/bookyears/1/bookings/modified",
          params={"journalTypeId": 2, "modifiedTimeStamp": EVERYTHING}, headers=headers)
    sandbox.mutate("c-1001", add=1, change=1, delete=1)
    check("GET", "/dossiers/1001/bookyears/-1/bookings/modified",
          params={"journalTypeId": -1, "modifiedTimeStamp": "2025-06-01 00:00:00.000"}, headers=headers)
    check("GET", "/dossiers/1001/bookyears", 401, headers={"Token": token})  # the user's token on a dossier call
    assert len(checked) == 12


# -- Prism: the connector's requests against the spec --------------------------------------------

@pytest.fixture(scope="module")
def prism():
    with prism_serving(SPEC) as server:
        yield server


def test_octopus_reads_every_stream_without_a_prism_violation(prism):
    responses, offset = [], len(prism.output())
    config = {"software_house_uuid": "prism-house", "user": "prism-user", "password": "prism-password-7c1e",
              "language": "fr", "base_url": prism.url}
    http = recording_client(Octopus.spec, responses)
    octopus = Octopus(ConnectorContext(config=config, credentials={}, reference="1", http=http))
    assert octopus.check().ok
    window = SyncWindow(date(2019, 1, 1), date(2030, 12, 31))
    produced = {stream.name: list(octopus.read(stream.name, StreamState(), window)) for stream in Octopus.streams}
    state = StreamState(bookmark={"since": "2024-05-01 02:00:00.000", "years": [y.id for y in octopus.book_years()]})
    produced["incremental"] = list(octopus.read("ledger_lines", state, window))
    produced["changed accounts"] = list(octopus.read("accounts", StreamState(bookmark=state.new_bookmark), window))
    assert produced["fiscal_years"] and produced["accounts"] and produced["ledger_lines"], produced
    paths = {response.request.path_url.split("?")[0] for response in responses}
    assert {"/authentication", "/dossiers", "/dossiers/1/bookyears", "/dossiers/1/accounts",
            "/dossiers/1/accounts/modified", "/dossiers/1/accounts/amounts/modified",
            "/dossiers/1/bookyears/-1/bookings/modified"} <= paths
    assert_no_violations(prism, responses, offset)


def test_prism_does_flag_a_dossier_call_without_its_token(prism):
    """The run above can fail: Prism refuses a call that breaks the spec."""
    responses, offset = [], len(prism.output())
    http = recording_client(Octopus.spec, responses)
    with pytest.raises(Exception):
        http.get(f"{prism.url}/dossiers/1/bookyears", headers={"Token": "a-user-token"})
    assert responses[-1].status_code == 400
    with pytest.raises(AssertionError):
        assert_no_violations(prism, responses, offset)
