"""Companies House: company number format, labels (checked against the official value lists),
profile parsing over recorded-shape fixtures, the connector over strict HTTP mocks, and end to
end against the sandbox."""
import json
from datetime import date
from pathlib import Path

import pytest
import requests
import yaml

from connectors.registry import ROOT as PACKAGES
from connectors import companies_house as ch
from connectors.auth import Basic
from connectors.base import (
    AuthError, CompanyProfileRecord, ConfigError, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow,
)
from connectors.companies_house import CompaniesHouse
from connectors.http import build_client
from tests.conftest import shared_path
from tests.connectors.mocks import companies_house as mocks

FIXTURES = PACKAGES / "companies_house" / "fixtures"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed, number", [
    ("09876543", "09876543"),
    ("9876543", "09876543"),
    ("123", "00000123"),
    (" sc123456 ", "SC123456"),
    ("SC1234", "SC001234"),
    ("oc 301234", "OC301234"),
])
def test_company_numbers_are_normalised(typed, number):
    assert ch.normalise_company_number(typed) == number


@pytest.mark.parametrize("typed", ["", "123456789", "S1234567", "AB1234567", "BE0412345678", "12-34"])
def test_invalid_company_numbers_explain_the_format(typed):
    with pytest.raises(ConfigError) as caught:
        ch.normalise_company_number(typed)
    assert "8 characters" in caught.value.message


def test_built_in_labels_match_the_official_value_lists():
    constants = yaml.safe_load(shared_path("specs", "companies-house", "constants.yml").read_text())
    for built_in, official in ((ch.COMPANY_TYPES, "company_type"), (ch.COMPANY_STATUSES, "company_status"),
                               (ch.OFFICER_ROLES, "officer_role")):
        for code, text in built_in.items():
            assert constants[official][code] == text, (official, code)


def test_unknown_codes_fall_back_to_readable_words():
    assert ch.label(ch.COMPANY_TYPES, "ltd") == "Private limited company"
    assert ch.label(ch.COMPANY_TYPES, "icvc-umbrella") == "Icvc umbrella"
    assert ch.label(ch.OFFICER_ROLES, None) is None


def test_profile_record_from_fixtures():
    officers = fixture("officers_page1.json")["items"] + fixture("officers_page2.json")["items"]
    record = ch.profile_record(fixture("company_profile.json"), officers, fixture("psc.json")["items"])
    assert record.name == "HARBOUR LIGHT BAKERY LTD"
    assert record.registration_number == "09876543"
    assert record.legal_form == "Private limited company"
    assert record.status == "Active"
    assert record.incorporation_date == date(2015, 11, 3)
    assert record.fiscal_year_end == "03-31"
    assert record.address == {"line_1": "14 Quay Street", "line_2": "Unit 3", "city": "Bristol",
                              "region": "City of Bristol", "postal_code": "BS1 4DB", "country": "England"}
    assert record.extra["accounts_next_due"] == "2025-12-31"
    assert record.vat_number is None
    assert [o["role"] for o in record.officers] == ["Director", "Secretary", "Director"]
    assert record.officers[2] == {"name": "PRICE, Owen Gareth", "role": "Director",
                                  "start": "2016-02-01", "end": "2021-06-30"}
    assert [(s["name"], s["share"]) for s in record.shareholders] == [
        ("Mrs Megan Claire Hughes", "50-75%"), ("West Country Ovens Limited", "25-50%")]
    assert "right-to-appoint-and-remove-directors" in record.shareholders[0]["natures_of_control"]
    assert record.as_dict()["incorporation_date"] == "2015-11-03"


def test_dissolved_renamed_profile_keeps_its_cessation_date_and_previous_names():
    # shaped as Companies House documents companyProfile: date_of_cessation, previous_company_names[]
    record = ch.profile_record(fixture("company_profile_dissolved.json"))
    assert record.status == "Dissolved"
    assert record.extra["date_of_cessation"] == "2023-09-12"
    assert record.extra["previous_names"] == [
        {"name": "HARBOUR OVENS LTD", "start": "2014-03-01", "end": "2019-05-20"},
        {"name": "BRISTOL BREAD COMPANY LIMITED", "start": "2011-06-14", "end": "2014-03-01"}]
    assert record.as_dict()["extra"]["previous_names"][0]["name"] == "HARBOUR OVENS LTD"


@pytest.mark.parametrize("changes", [
    {},
    {"date_of_cessation": None, "previous_company_names": None},
    {"date_of_cessation": "", "previous_company_names": []},
])
def test_missing_cessation_date_and_previous_names_are_left_out(changes):
    profile = {**fixture("company_profile.json"), **changes}
    extra = ch.profile_record(profile).extra
    assert "date_of_cessation" not in extra and "previous_names" not in extra
    assert extra["accounts_next_due"] == "2025-12-31"


def test_previous_names_with_missing_dates_are_kept_and_nameless_ones_dropped():
    profile = {**fixture("company_profile.json"), "previous_company_names": [
        {"name": "HARBOUR OVENS LTD", "ceased_on": "2019-05-20"}, {"effective_from": "2011-06-14"}]}
    assert ch.profile_record(profile).extra["previous_names"] == [
        {"name": "HARBOUR OVENS LTD", "start": None, "end": "2019-05-20"}]


def test_unreadable_cessation_date_is_a_data_error():
    with pytest.raises(DataError):
        ch.profile_record({**fixture("company_profile.json"), "date_of_cessation": "12/09/2023"})


def test_fiscal_year_end_pads_day_and_month():
    assert ch.fiscal_year_end({"accounting_reference_date": {"day": "5", "month": "4"}}) == "04-05"
    assert ch.fiscal_year_end({}) is None


def test_profile_without_name_is_a_data_error():
    with pytest.raises(DataError):
        ch.profile_record({"company_number": "09876543"})


# --------------------------------------------------------------------------------------
# The connector over strict HTTP mocks
# --------------------------------------------------------------------------------------


def connector(requests_mock, reference=mocks.NUMBER, base_url=mocks.BASE_URL, api_key="ch-live-key-3b9f27d1"):
    http = build_client(CompaniesHouse.spec, secrets=[api_key], sleep=lambda s: None)
    return CompaniesHouse(ConnectorContext(config={"base_url": base_url, "api_key": api_key}, credentials={},
                                           reference=reference, http=http))


def test_spec_is_a_typed_firm_level_administration_package():
    spec = CompaniesHouse.spec
    assert (spec.kind, spec.level, spec.reference_typed) == ("administration", "firm", True)
    assert spec.auth == Basic(username_field="api_key", password_field=None)
    assert (spec.rate_budget.per_minute, spec.rate_budget.window_seconds, spec.rate_budget.per) == (600, 300, "key")


def test_profile_stream_pages_officers_and_sends_the_key_as_basic_user(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    records = list(connector(requests_mock).read("company_profile", StreamState(), SyncWindow()))
    assert len(records) == 1 and isinstance(records[0], CompanyProfileRecord)
    assert [o["name"] for o in records[0].officers] == ["HUGHES, Megan Claire", "HUGHES, Thomas", "PRICE, Owen Gareth"]
    officer_calls = [r for r in requests_mock.request_history if r.path.endswith("/officers")]
    assert [r.qs["start_index"] for r in officer_calls] == [["0"], ["2"]]
    expected = requests.auth._basic_auth_str("ch-live-key-3b9f27d1", "")
    assert all(r.headers["Authorization"] == expected for r in requests_mock.request_history)


def test_profile_stream_of_a_dissolved_renamed_company(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    requests_mock.get(f"{mocks.BASE_URL}/company/{mocks.NUMBER}", json=fixture("company_profile_dissolved.json"))
    record = next(connector(requests_mock).read("company_profile", StreamState(), SyncWindow()))
    assert (record.status, record.extra["date_of_cessation"]) == ("Dissolved", "2023-09-12")
    assert [n["name"] for n in record.extra["previous_names"]] == ["HARBOUR OVENS LTD", "BRISTOL BREAD COMPANY LIMITED"]


def test_lookup_normalises_the_number_and_unknown_numbers_say_so(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    assert connector(requests_mock).lookup_reference("9876543").name == "HARBOUR LIGHT BAKERY LTD"
    requests_mock.get(f"{mocks.BASE_URL}/company/00001234", status_code=404, json=fixture("not_found.json"))
    with pytest.raises(NotFoundError) as caught:
        connector(requests_mock).lookup_reference("1234")
    assert caught.value.message == "Companies House has no company with number 00001234."
    with pytest.raises(ConfigError):
        connector(requests_mock).lookup_reference("not a number")


def test_missing_psc_register_is_an_empty_list(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    requests_mock.get(f"{mocks.BASE_URL}/company/{mocks.NUMBER}/persons-with-significant-control", status_code=404,
                      json={"errors": [{"error": "company-psc-not-found", "type": "ch:service"}]})
    record = next(connector(requests_mock).read("company_profile", StreamState(), SyncWindow()))
    assert record.shareholders == () and len(record.officers) == 3


def test_invalid_key_message_names_what_to_do_without_the_key(requests_mock):
    requests_mock.get(f"{mocks.BASE_URL}/search/companies", status_code=401, json=fixture("invalid_key.json"))
    with pytest.raises(AuthError) as caught:
        connector(requests_mock).check()
    assert "developer hub" in caught.value.message and "ch-live-key" not in caught.value.message


# --------------------------------------------------------------------------------------
# End to end against the sandbox
# --------------------------------------------------------------------------------------


def sandbox_numbers(sandbox):
    return {row["company"]: row["number"] for row in
            requests.get(f"{sandbox.url}/_sandbox/companies-house/companies", timeout=10).json()}


def test_sandbox_profile_end_to_end(sandbox):
    number = sandbox_numbers(sandbox)["c-1003"]
    conn = connector(None, reference=number, base_url=f"{sandbox.url}/companies-house", api_key="demo-key")
    assert conn.check().ok
    assert conn.lookup_reference(number).name == "NORTHWIND TRADING LTD"
    record = next(conn.read("company_profile", StreamState(), SyncWindow()))
    assert record.registration_number == number and record.legal_form == "Private limited company"
    assert record.fiscal_year_end == "12-31" and len(record.officers) >= 3
    assert any(o["end"] for o in record.officers) == (len(record.officers) > 3)
    assert {s["share"] for s in record.shareholders} == {"50-75%", "25-50%"}
    assert "date_of_cessation" not in record.extra and "previous_names" not in record.extra


def test_sandbox_dissolved_renamed_mode_end_to_end(sandbox):
    number = sandbox_numbers(sandbox)["c-1003"]
    sandbox.modes(companies_house=["dissolved_renamed"])
    conn = connector(None, reference=number, base_url=f"{sandbox.url}/companies-house", api_key="demo-key")
    assert conn.lookup_reference(number).details["status"] == "Dissolved"
    record = next(conn.read("company_profile", StreamState(), SyncWindow()))
    assert record.status == "Dissolved" and record.name == "NORTHWIND TRADING LTD"
    ceased = date.fromisoformat(record.extra["date_of_cessation"])
    names = record.extra["previous_names"]
    assert [n["name"] for n in names] == ["NORTHWIND TRADING HOLDINGS LIMITED", "NORTHWIND TRADING (UK) LIMITED"]
    assert names[1]["start"] == record.incorporation_date.isoformat() and names[1]["end"] == names[0]["start"]
    assert record.incorporation_date < date.fromisoformat(names[0]["end"]) < ceased


def test_sandbox_unknown_number_and_bad_key(sandbox):
    conn = connector(None, reference="SC000001", base_url=f"{sandbox.url}/companies-house", api_key="demo-key")
    with pytest.raises(NotFoundError) as caught:
        conn.lookup_reference("SC1")
    assert "SC000001" in caught.value.message
    wrong = connector(None, base_url=f"{sandbox.url}/companies-house", api_key="wrong-key")
    with pytest.raises(AuthError):
        wrong.check()
