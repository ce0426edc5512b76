"""AdminPulse: relations as references, the company data as the canonical profile, errors in plain words."""
import pytest

from connectors.adminpulse import AdminPulse, fiscal_year_end, profile_record
from connectors.base import AuthError, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors.http import build_client
from tests.connectors.mocks import adminpulse as mocks
from tests.connectors.mocks import fixture


@pytest.fixture
def connector(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    http = build_client(AdminPulse.spec, redis=None, tenant="t", secrets=["ap-office-key-7c41e9"], sleep=lambda s: None)
    return AdminPulse(ConnectorContext(config=mocks.config(), credentials={}, reference=mocks.RELATION, http=http))


def company(**changes):
    data = fixture("adminpulse", "company")["results"][0]
    data.update(changes)
    return data


def test_references_are_the_company_relations_only_and_the_key_goes_as_bearer(connector, requests_mock):
    refs = connector.list_references()
    assert [(r.reference, r.name) for r in refs] == [
        ("5f1c2a9e-3b7d-4c1e-9a41-2d6e8f0b7c13", "Bakkerij De Gouden Korst BV"),
        ("c3a7e915-0d4b-4b62-8f1e-7e9a5c2d4b61", "Janssens & Co Architecten")]
    first = requests_mock.request_history[0]
    assert first.headers["Authorization"] == "Bearer ap-office-key-7c41e9"
    assert first.qs["pagesize"] == ["400"] and first.qs["page"] == ["1"]


def test_the_profile_fills_the_canonical_record(connector):
    (record,) = list(connector.read("company_profile", StreamState(), SyncWindow()))
    assert record.name == "Bakkerij De Gouden Korst BV"
    assert record.registration_number == "0456.789.012" and record.vat_number == "BE0456789012"
    assert record.fiscal_year_end == "12-31" and record.agm_date == "second Tuesday of June"
    assert record.capital == {"amount": "18550.00", "currency": "EUR"}
    assert record.address == {"line_1": "Kerkstraat 12 bus 3", "city": "Antwerpen", "postal_code": "2000",
                              "country": "BE"}
    assert record.officers[1] == {"name": "Pieter Janssens", "role": "Bestuurder", "start": "2015-01-01",
                                  "end": "2021-06-30"}
    assert record.shareholders[0] == {"name": "Sofie Peeters", "share": None, "shares": 60, "percentage": "60"}


def test_an_unknown_relation_is_not_found_in_words(connector, requests_mock):
    requests_mock.get(f"{mocks.BASE_URL}/companies?relationIdentifier=nope", json={"results": [], "totalCount": 0})
    with pytest.raises(NotFoundError, match="AdminPulse has no company relation nope"):
        connector.company("nope")


def test_a_revoked_key_is_an_auth_error_telling_the_administrator_what_to_do(connector, requests_mock):
    requests_mock.get(f"{mocks.BASE_URL}/relations", status_code=401, json={"message": "Unauthorized"})
    with pytest.raises(AuthError) as caught:
        connector.check()
    assert "enter a current key" in caught.value.message and "ap-office-key" not in caught.value.message


@pytest.mark.parametrize("changes, message", [
    ({"name": None}, "without its name"),
    ({"boardMembers": {"name": "x"}}, "not lists"),
    ({"fiscalYearEnd": "end of year"}, "fiscal year end"),
    ({"foundingDate": "soon"}, "founding date"),
])
def test_malformed_company_data_is_a_clear_data_error(changes, message):
    with pytest.raises(DataError, match=message):
        profile_record(company(**changes))


def test_a_body_without_results_is_a_data_error(connector, requests_mock):
    requests_mock.get(f"{mocks.BASE_URL}/relations", json={"items": []})
    with pytest.raises(DataError, match="results"):
        connector.list_references()


@pytest.mark.parametrize("value, expected", [("31/12", "12-31"), ("31-12", "12-31"), ("12-31", "12-31"),
                                             ("--06-30", "06-30"), ("30.6", "06-30"), (None, None)])
def test_fiscal_year_end_shapes(value, expected):
    assert fiscal_year_end(value) == expected


def test_without_fiscal_year_capital_or_meeting_they_stay_unknown():
    record = profile_record(company(fiscalYearEnd=None, generalMeetingDate="", capital=None))
    assert record.fiscal_year_end is None and record.agm_date is None and record.capital is None
    assert "capital" not in record.as_dict() and "agm_date" not in record.as_dict()


def test_find_searches_by_vat_number_or_by_name(connector, requests_mock):
    assert [r.name for r in connector.find("BE 0456.789.012")] == ["Bakkerij De Gouden Korst BV",
                                                                  "Janssens & Co Architecten"]
    assert requests_mock.last_request.qs["vatnumber"] == ["be0456789012"]  # requests_mock lower-cases the query
    connector.find("Janssens")
    assert requests_mock.last_request.qs["name"] == ["janssens"] and "vatnumber" not in requests_mock.last_request.qs


def test_the_emulator_refuses_pages_above_400_as_adminpulse_does(sandbox):
    import requests

    headers = {"Authorization": "Bearer adminpulse-key"}
    assert requests.get(f"{sandbox.url}/adminpulse/relations", params={"pageSize": 401}, headers=headers,
                        timeout=10).status_code == 400
    page = requests.get(f"{sandbox.url}/adminpulse/relations", params={"pageSize": 400}, headers=headers, timeout=10)
    assert page.status_code == 200 and {r["type"] for r in page.json()["results"]} == {"Company", "Person"}
    assert requests.get(f"{sandbox.url}/adminpulse/relations", timeout=10).status_code == 401
