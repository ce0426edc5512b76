"""FID-Manager (built from public information): company clients as references, the signalétique as the
canonical profile, unexpected shapes and a revoked token in plain words."""
import pytest

from connectors.base import AuthError, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors import parsing
from connectors.fid_manager import PACKAGE, FidManager, enterprise_number
from connectors.http import build_client
from tests.connectors.mocks import fid_manager as mocks
from tests.connectors.mocks import fixture

CLIENTS = f"{mocks.BASE_URL}/v1/clients"


def month_day(value):
    """The fiscal-year end the package reads (the kit's parser)."""
    return parsing.month_day(value, "fiscal year end", PACKAGE)


@pytest.fixture
def connector(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    http = build_client(FidManager.spec, redis=None, tenant="t", secrets=[mocks.TOKEN], sleep=lambda s: None)
    return FidManager(ConnectorContext(config=mocks.config(), credentials={}, reference=mocks.CLIENT, http=http))


def signaletique(**changes):
    return {**fixture("fid_manager", "client")["data"], **changes}


def test_references_are_the_company_clients_only_and_the_token_goes_as_bearer(connector, requests_mock):
    refs = connector.list_references()
    assert [(r.reference, r.name) for r in refs] == [("1001", "Bakkerij De Gouden Korst BV"),
                                                     ("1002", "Janssens & Co Architecten")]
    first = requests_mock.request_history[0]
    assert first.headers["Authorization"] == f"Bearer {mocks.TOKEN}"
    assert first.qs["per_page"] == ["100"] and first.qs["page"] == ["1"]


def test_the_signaletique_fills_the_canonical_record(connector):
    (record,) = list(connector.read("company_profile", StreamState(), SyncWindow()))
    assert record.name == "Bakkerij De Gouden Korst BV" and record.legal_form == "BV"
    assert record.registration_number == "0456.789.012" and record.vat_number == "BE0456789012"
    assert record.fiscal_year_end == "12-31" and record.incorporation_date.isoformat() == "2012-05-04"
    assert record.address == {"line_1": "Grote Markt 7 bus 2", "city": "Gent", "postal_code": "9000", "country": "BE"}
    assert record.officers[1] == {"name": "Pieter Janssens", "role": "Bestuurder", "start": "2015-01-01",
                                  "end": "2021-06-30"}
    assert record.shareholders[1] == {"name": "Lotte Maes", "share": None, "shares": 400, "percentage": "40"}
    # FID-Manager keeps no AGM date or capital: unknown, never offered
    assert record.agm_date is None and record.capital is None and "capital" not in record.as_dict()


def test_without_an_enterprise_number_the_vat_number_gives_it():
    assert enterprise_number("456789012") == "0456.789.012" and enterprise_number(None) is None
    record = FidManager.__new__(FidManager).profile_record(signaletique(companyNumber=None))
    assert record.registration_number == "0456.789.012"


def test_an_unknown_client_is_not_found_in_words(connector, requests_mock):
    requests_mock.get(f"{CLIENTS}/4242", status_code=404, json={"message": "Client not found."})
    with pytest.raises(NotFoundError, match="FID-Manager has no client 4242"):
        connector.signaletique("4242")


def test_a_revoked_token_is_an_auth_error_telling_the_administrator_what_to_do(connector, requests_mock):
    requests_mock.get(CLIENTS, status_code=401, json={"message": f"Unauthenticated {mocks.TOKEN}"})
    with pytest.raises(AuthError) as caught:
        connector.check()
    assert "enter a current token" in caught.value.message and mocks.TOKEN not in str(caught.value)


@pytest.mark.parametrize("changes, field", [
    ({"mandataries": [{"naam": "Sofie Peeters", "hoedanigheid": "Zaakvoerder"}]}, "name"),
    ({"shareholders": [{"name": "Sofie Peeters", "aandelen": 10}]}, "shares"),
])
def test_records_in_another_shape_fail_naming_the_assumed_field(connector, requests_mock, changes, field):
    requests_mock.get(f"{CLIENTS}/{mocks.CLIENT}", json={"data": signaletique(**changes)})
    with pytest.raises(DataError) as caught:
        list(connector.read("company_profile", StreamState(), SyncWindow()))
    assert f"“{field}”" in caught.value.message


@pytest.mark.parametrize("body", [{"client": {}}, [], {"data": [1]}])
def test_an_answer_without_its_envelope_fails_clearly(connector, requests_mock, body):
    requests_mock.get(f"{CLIENTS}/{mocks.CLIENT}", json=body)
    with pytest.raises(DataError, match="data"):
        list(connector.read("company_profile", StreamState(), SyncWindow()))


def test_mandataries_that_are_no_list_fail_clearly():
    with pytest.raises(DataError, match="mandatary"):
        FidManager.__new__(FidManager).profile_record(signaletique(mandataries={"name": "x"}))


@pytest.mark.parametrize("value, expected", [("31/12", "12-31"), ("12-31", "12-31"), ("--06-30", "06-30"), (None, None)])
def test_fiscal_year_end_shapes(value, expected):
    assert month_day(value) == expected


def test_the_emulator_lists_companies_and_a_person_and_refuses_a_wrong_token(sandbox):
    import requests

    headers = {"Authorization": "Bearer fid-manager-token"}
    page = requests.get(f"{sandbox.url}/fid_manager/api/v1/clients", params={"per_page": 100}, headers=headers,
                        timeout=10).json()
    assert {c["type"] for c in page["data"]} == {"company", "person"}
    assert requests.get(f"{sandbox.url}/fid_manager/api/v1/clients/4242", headers=headers, timeout=10).status_code == 404
    assert requests.get(f"{sandbox.url}/fid_manager/api/v1/clients", timeout=10).status_code == 401
