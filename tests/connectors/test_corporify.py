"""Corporify (built from public information): the typed enterprise number, the entity with its mandates and
shareholders as the canonical profile, unexpected shapes and a revoked key in plain words."""
import pytest

from connectors.base import AuthError, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors import parsing
from connectors.corporify import PACKAGE, Corporify, enterprise_digits
from connectors.http import build_client
from tests.connectors.mocks import corporify as mocks
from tests.connectors.mocks import fixture

ENTITIES = f"{mocks.BASE_URL}/api/v1/entities"


def month_day(value):
    """The fiscal-year end the package reads (the kit's parser)."""
    return parsing.month_day(value, "fiscal year end", PACKAGE)


@pytest.fixture
def connector(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    http = build_client(Corporify.spec, redis=None, tenant="t", secrets=[mocks.API_KEY], sleep=lambda s: None)
    return Corporify(ConnectorContext(config=mocks.config(), credentials={}, reference=mocks.NUMBER, http=http))


def test_the_profile_fills_the_canonical_record_from_entity_mandates_and_shareholders(connector, requests_mock):
    (record,) = list(connector.read("company_profile", StreamState(), SyncWindow()))
    assert requests_mock.request_history[0].headers["X-Api-Key"] == mocks.API_KEY
    assert record.name == "Bakkerij De Gouden Korst BV"
    assert record.registration_number == "0456.789.012" and record.vat_number == "BE0456789012"
    assert record.fiscal_year_end == "12-31" and record.agm_date == "third Thursday of May"
    assert record.capital == {"amount": "18550.00", "currency": "EUR"}
    assert record.address == {"line_1": "Meir 12 bus 3", "city": "Antwerpen", "postal_code": "2000", "country": "BE"}
    assert record.incorporation_date.isoformat() == "2012-05-04"
    assert record.officers[1] == {"name": "Pieter Janssens", "role": "Bestuurder", "start": "2015-01-01",
                                  "end": "2021-06-30"}
    assert record.shareholders[0] == {"name": "Sofie Peeters", "share": "A", "shares": 150, "percentage": "75",
                                      "start": "2012-05-04", "end": None}


def test_a_typed_enterprise_number_is_normalised_then_read(connector):
    found = connector.lookup_reference("BE 0456.789.012")
    assert (found.reference, found.name) == ("0456789012", "Bakkerij De Gouden Korst BV")
    assert enterprise_digits("456789012") == "0456789012"


@pytest.mark.parametrize("typed", ["1234", "2456789012", "", "BE04567890123"])
def test_a_malformed_enterprise_number_is_refused_before_any_call(connector, requests_mock, typed):
    with pytest.raises(NotFoundError, match="is not an enterprise number"):
        connector.lookup_reference(typed)
    assert requests_mock.call_count == 0


def test_an_unknown_entity_is_not_found_in_words(connector, requests_mock):
    requests_mock.get(f"{ENTITIES}/0999999999", status_code=404, json={"error": "Entity not found"})
    with pytest.raises(NotFoundError, match="Corporify has no legal entity with enterprise number 0999.999.999"):
        connector.lookup_reference("0999.999.999")


def test_a_revoked_key_is_an_auth_error_telling_the_administrator_what_to_do(connector, requests_mock):
    requests_mock.get(ENTITIES, status_code=401, json={"error": f"bad key {mocks.API_KEY}"})
    with pytest.raises(AuthError) as caught:
        connector.check()
    assert "enter a current key" in caught.value.message and mocks.API_KEY not in str(caught.value)


def test_mandates_in_another_shape_fail_naming_the_assumed_field(connector, requests_mock):
    requests_mock.get(f"{ENTITIES}/{mocks.NUMBER}/mandates", json={"items": [{"titulaire": "Sofie Peeters"}]})
    with pytest.raises(DataError) as caught:
        list(connector.read("company_profile", StreamState(), SyncWindow()))
    assert "holderName" in caught.value.message and "titulaire" in (caught.value.detail or "")


def test_a_listing_without_its_envelope_fails_clearly(connector, requests_mock):
    requests_mock.get(f"{ENTITIES}/{mocks.NUMBER}/shareholders", json=[{"holderName": "x"}])
    with pytest.raises(DataError, match="items"):
        list(connector.read("company_profile", StreamState(), SyncWindow()))


def test_without_fiscal_year_capital_or_meeting_they_stay_unknown(connector):
    entity = {**fixture("corporify", "entity"), "fiscalYearEnd": None, "annualMeetingDate": "", "capital": None}
    record = connector.profile_record(entity, [], [])
    assert record.fiscal_year_end is None and record.agm_date is None and record.capital is None
    assert "capital" not in record.as_dict() and record.officers == ()


@pytest.mark.parametrize("value, expected", [("31/12", "12-31"), ("12-31", "12-31"), ("--06-30", "06-30"),
                                             ("30.6", "06-30"), (None, None)])
def test_fiscal_year_end_shapes(value, expected):
    assert month_day(value) == expected


def test_a_fiscal_year_end_that_is_no_day_is_a_data_error():
    with pytest.raises(DataError, match="fiscal year end"):
        month_day("end of year")


def test_the_emulator_answers_the_assumed_shapes_and_refuses_a_wrong_key(sandbox):
    import requests

    headers = {"X-Api-Key": "corporify-key"}
    listing = requests.get(f"{sandbox.url}/corporify/api/v1/entities", headers=headers, timeout=10).json()
    assert {e["enterpriseNumber"] for e in listing["items"]} == {"0456789012", "0567890123"}  # Belgian ones only
    assert requests.get(f"{sandbox.url}/corporify/api/v1/entities/0999999999", headers=headers,
                        timeout=10).status_code == 404
    assert requests.get(f"{sandbox.url}/corporify/api/v1/entities", headers={"X-Api-Key": "nope"},
                        timeout=10).status_code == 401
