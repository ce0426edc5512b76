"""Virk CVR: the typed CVR number, current values only from the register's history, errors in plain words."""
import json

import pytest

from connectors.base import AuthError, ConfigError, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors.http import build_client
from connectors.virk_cvr import VirkCvr, month_day, normalise_cvr, profile_record
from tests.connectors.mocks import fixture
from tests.connectors.mocks import virk_cvr as mocks

SEARCH = f"{mocks.BASE_URL}/cvr-permanent/virksomhed/_search"


@pytest.fixture
def connector(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    http = build_client(VirkCvr.spec, redis=None, tenant="t", secrets=["virk-secret-pa55"], sleep=lambda s: None)
    return VirkCvr(ConnectorContext(config=mocks.config(), credentials={}, reference=mocks.CVR, http=http))


def company():
    return fixture("virk_cvr", "company_search")["hits"]["hits"][0]["_source"]["Vrvirksomhed"]


@pytest.mark.parametrize("typed, cvr", [("25313763", "25313763"), (" 2531 3763 ", "25313763"),
                                        ("DK25313763", "25313763"), ("dk 25-31-37-63", "25313763")])
def test_a_typed_cvr_number_is_normalised(typed, cvr):
    assert normalise_cvr(typed) == cvr


@pytest.mark.parametrize("typed", ["1234567", "123456789", "02531376", "2531376X", ""])
def test_anything_else_is_refused_with_the_format(typed):
    with pytest.raises(ConfigError, match="8 digits"):
        normalise_cvr(typed)


def test_lookup_posts_a_term_query_with_basic_auth_and_names_the_company(connector, requests_mock):
    found = connector.lookup_reference("DK 25313763")
    assert (found.reference, found.name) == ("25313763", "Nordlys Brød ApS")
    sent = requests_mock.request_history[0]
    assert sent.method == "POST" and sent.headers["Authorization"].startswith("Basic ")
    assert json.loads(sent.body) == {"query": {"term": {"Vrvirksomhed.cvrNummer": 25313763}}, "size": 1}


def test_an_unknown_cvr_number_is_not_found(connector, requests_mock):
    requests_mock.post(SEARCH, json=fixture("virk_cvr", "empty_search"))
    with pytest.raises(NotFoundError, match="no company with CVR number 12345678"):
        connector.lookup_reference("12345678")


def test_the_profile_takes_current_values_only(connector):
    (record,) = list(connector.read("company_profile", StreamState(), SyncWindow()))
    assert record.name == "Nordlys Brød ApS" and record.registration_number == "25313763"
    assert record.vat_number == "DK25313763" and record.legal_form == "Anpartsselskab"
    assert record.fiscal_year_end == "06-30" and record.extra["fiscal_year_start"] == "07-01"  # not the 2016 one
    assert record.capital == {"amount": "80000.00", "currency": "DKK"}  # not the 2014 capital
    assert record.address["line_1"] == "Vesterbrogade 118A" and record.address["postal_code"] == "1620"
    # Jens Lund left the board in 2018; Søren Holm's current function is chairman since 2019
    assert [(o["name"], o["role"], o["start"]) for o in record.officers] == [
        ("Mette Kjær Hansen", "Direktør", "2000-03-01"), ("Søren Holm", "Formand", "2019-07-01")]
    assert [(s["name"], s["percentage"]) for s in record.shareholders] == [
        ("Mette Kjær Hansen", "66.67"), ("Søren Holm", "33.33")]


def test_without_attributes_the_fiscal_year_and_capital_stay_unknown():
    data = company() | {"attributter": []}
    record = profile_record(data)
    assert record.fiscal_year_end is None and record.capital is None


def test_the_latest_update_wins_between_open_values_across_time_zones():
    data = company()
    data["attributter"][3]["vaerdier"] = [
        {"vaerdi": "--03-31", "periode": {"gyldigFra": "2020-01-01", "gyldigTil": None},
         "sidstOpdateret": "2021-03-04T10:30:00.000+02:00"},  # 08:30 UTC
        {"vaerdi": "--09-30", "periode": {"gyldigFra": "2020-01-01", "gyldigTil": None},
         "sidstOpdateret": "2021-03-04T09:00:00Z"},  # 09:00 UTC: the later one
    ]
    assert profile_record(data).fiscal_year_end == "09-30"


def test_revoked_credentials_are_an_auth_error_without_the_password(connector, requests_mock):
    requests_mock.post(SEARCH, status_code=401, json=fixture("virk_cvr", "unauthorized"))
    with pytest.raises(AuthError) as caught:
        connector.check()
    assert "Danish Business Authority" in caught.value.message and "virk-secret" not in caught.value.message


@pytest.mark.parametrize("answer, message", [({"took": 1}, "without search hits"),
                                             ({"hits": {"total": 1, "hits": [{"_source": {}}]}}, "Vrvirksomhed")])
def test_malformed_answers_are_data_errors(connector, requests_mock, answer, message):
    requests_mock.post(SEARCH, json=answer)
    with pytest.raises(DataError, match=message):
        connector.lookup_reference(mocks.CVR)


def test_a_gmonthday_in_another_shape_is_a_data_error():
    assert month_day("--02-29", "fiscal year end") == "02-29"
    with pytest.raises(DataError, match="fiscal year end"):
        month_day("2019-06-30", "fiscal year end")


def test_an_officer_without_a_current_name_is_a_data_error():
    data = company()
    data["deltagerRelation"][0]["deltager"]["navne"] = [{"vaerdi": "Mette Kjær Hansen", "periode": {}}]
    with pytest.raises(DataError, match="officer without a current name"):
        profile_record(data)


def test_the_emulator_answers_gzip_encoded_like_elasticsearch_6(sandbox):
    import requests

    answer = requests.post(f"{sandbox.url}/virk/cvr-permanent/virksomhed/_search", auth=("virk-user", "virk-password"),
                           json={"query": {"match_all": {}}, "size": 1}, timeout=10)
    assert answer.headers["Content-Encoding"] == "gzip"
    body = answer.json()
    assert isinstance(body["hits"]["total"], int) and body["hits"]["hits"][0]["_type"] == "_doc"
    refused = requests.post(f"{sandbox.url}/virk/cvr-permanent/virksomhed/_search", auth=("virk-user", "wrong"),
                            json={"query": {"match_all": {}}}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "security_exception"
