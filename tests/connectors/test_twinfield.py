"""Twinfield: parsing, the SOAP calls (validated against the vendor's SHARED WSDL), fault 354,
and the package end to end against its emulator (OAuth, cluster discovery, every stream, modes)."""
import re
import threading
import time
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
import requests
import xmlschema
from lxml import etree

from connectors.base import (
    AuthError, ConnectorContext, DataError, RateLimited, RenewalRefused, StreamState, SyncWindow,
)
from connectors.http import build_client, secrets_for
from connectors.twinfield import (
    LINE_FIELDS, WSDL, WSDL_DIR, Twinfield, YearCalendar, browse_request, browse_rows, cluster_of, parse_xml,
    refused,
)
from connectors.twinfield import emulator
from tests.conftest import shared_path
from tests.connectors.mocks import twinfield as mocks

ENV = mocks.ENV
TWF = mocks.TWF
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
REDIRECT = "http://127.0.0.1/oauth/callback"
FAULT_354 = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENV}"><soap:Body><soap:Fault>'
             "<faultcode>soap:Server</faultcode><faultstring>Access denied. Token invalid (code 354).</faultstring>"
             "<detail /></soap:Fault></soap:Body></soap:Envelope>")


def wsdl_schema(path):
    """The XML schema inside a WSDL's ``types``."""
    root = etree.parse(str(path)).getroot()
    schemas = root.findall(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
    return xmlschema.XMLSchema([etree.tostring(s).decode() for s in reversed(schemas)])


@pytest.fixture(scope="module")
def shared_schema():
    return wsdl_schema(shared_path("specs", "twinfield", "processxml.wsdl"))


def validate_request(schema, body):
    envelope = etree.fromstring(body)
    schema.validate(envelope.find(f"{{{ENV}}}Header/{{{TWF}}}Header"))
    schema.validate(envelope.find(f"{{{ENV}}}Body")[0])


def validate_answer(schema, content):
    body = etree.fromstring(content).find(f"{{{ENV}}}Body")[0]
    if etree.QName(body).localname != "Fault":
        schema.validate(body)


# -- parsing ---------------------------------------------------------------------------------------

def test_browse_cells_are_mapped_by_field_not_position():
    root = parse_xml(mocks.xml_fixture("browse_030_1"), "browse")
    rows = list(browse_rows(root))
    keys, cells = rows[3]  # this row carries 12 cells in another order than the header's 10
    assert keys == {"office": "NLA001234", "code": "VRK", "number": "202400012", "line": "2"}
    assert cells["fin.trs.line.dim1"] == "8000" and cells["fin.trs.line.basevaluesigned"] == "-1210.00"
    assert cells["fin.trs.head.inpdate"] == "20240416"


def test_result_zero_is_the_vendors_message():
    assert refused(parse_xml(mocks.xml_fixture("browse_refused"), "browse")).startswith("Je hebt geen rechten")
    assert refused(parse_xml(mocks.xml_fixture("offices"), "offices")) is None


def test_cluster_and_periods():
    assert cluster_of({"twf.clusterUrl": "https://api.accounting2.twinfield.com/"}) == \
        "https://api.accounting2.twinfield.com"
    with pytest.raises(DataError):
        cluster_of({"twf.organisationId": "x"})
    year = YearCalendar(2023, date(2023, 4, 1), date(2024, 3, 31), {1: date(2023, 4, 30), 12: date(2024, 3, 31)})
    assert year.period_end(1) == date(2023, 4, 30)
    assert year.period_end(0) == date(2023, 3, 31)  # the opening period: before the year
    assert year.period_end(13) == date(2024, 3, 31)  # closing periods: the year's end


def test_unsafe_xml_is_refused():
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><offices>&a;</offices>'
    root = parse_xml(bomb, "offices")
    assert "aaaa" not in (root.text or "")


def test_the_shipped_wsdl_is_not_the_shared_one():
    assert "connectors/twinfield" in str(WSDL) and "shared" not in str(WSDL)
    assert {p.name for p in WSDL_DIR.glob("*.wsdl")} == {"processxml.wsdl", "PeriodService.wsdl",
                                                         "DeletedTransactionsService.wsdl"}


# -- on the mocks ------------------------------------------------------------------------------------

def mocked(requests_mock, credentials=None):
    config, creds = mocks.config(), credentials or mocks.credentials()
    mocks.register(requests_mock, config["login_url"])
    saved = []
    http = build_client(Twinfield.spec, secrets=secrets_for(Twinfield.spec, config, creds), sleep=lambda s: None)
    return Twinfield(ConnectorContext(config=config, credentials=creds, reference=mocks.OFFICE, http=http,
                                      save_credentials=saved.append)), saved


def test_requests_validate_against_the_shared_wsdl(requests_mock, shared_schema):
    connector, _ = mocked(requests_mock)
    records = list(connector.read("ledger_lines", StreamState(), mocks.window()))
    assert [r.source_id for r in records] == ["MEMO:202400001:1", "MEMO:202400001:2", "VRK:202400012:1",
                                              "VRK:202400012:2", "INK:202400031:1", "INK:202400031:2"]
    line = records[3]
    assert (line.account, line.amount, line.dimensions) == ("8000", Decimal("-1210.00"), {"dim2": "CC1"})
    june = records[4]
    assert june.booking_date == date(2024, 6, 1) and june.booking_period_end == date(2024, 5, 31)
    posts = [r for r in requests_mock.request_history if r.method == "POST" and r.url == mocks.ENDPOINT]
    assert posts and all(r.headers["SOAPAction"] == '"http://www.twinfield.com/ProcessXmlString"' for r in posts)
    for post in posts:
        validate_request(shared_schema, post.body)
        header = etree.fromstring(post.body).find(f"{{{ENV}}}Header/{{{TWF}}}Header")
        assert header.findtext(f"{{{TWF}}}AccessToken") == "twf-at-7d3e51b0a9"
        assert header.findtext(f"{{{TWF}}}CompanyCode") == mocks.OFFICE
    periods = {(c.findtext("from"), c.findtext("to")) for p in posts
               for c in mocks.xml_request(p.body).findall("column") if c.findtext("field") == "fin.trs.head.yearperiod"}
    assert ("2024/04", "2024/04") in periods and ("2024/13", "2024/55") in periods


def test_fiscal_years_accounts_and_balances_on_the_fixtures(requests_mock):
    connector, _ = mocked(requests_mock)
    years = list(connector.read("fiscal_years", StreamState(), mocks.window()))
    assert [(y.start, y.end) for y in years] == [(date(2024, 1, 1), date(2024, 12, 31))]
    accounts = list(connector.read("accounts", StreamState(), mocks.window()))
    assert [a.number for a in accounts] == ["1000", "1100", "1300", "1600", "8000", "4300"]
    balances = list(connector.read("balances", StreamState(), mocks.window()))
    assert {(b.account, b.period_end, b.amount) for b in balances} >= {("8000", date(2024, 4, 30), Decimal("-1210.00"))}


def test_years_and_periods_come_from_the_period_service(requests_mock):
    connector, _ = mocked(requests_mock)
    window = SyncWindow(start=date(2023, 1, 1), end=date(2025, 6, 30))
    years = list(connector.read("fiscal_years", StreamState(), window))
    assert [(y.start, y.end) for y in years] == [(date(2024, 1, 1), date(2024, 12, 31))]  # 2025 has no periods yet
    calls = [mocks.wcf_query(r.body) for r in requests_mock.request_history if r.url == mocks.PERIOD_SERVICE]
    assert calls == [("GetYears", {}), ("GetPeriods", {"Year": "2024"}), ("GetPeriods", {"Year": "2025"})]
    for request in (r for r in requests_mock.request_history if r.url == mocks.PERIOD_SERVICE):
        # the .svc services take the Authentication header, not the .asmx Header
        header = etree.fromstring(request.body).find(f"{{{ENV}}}Header/{{{TWF}}}Authentication")
        assert header.findtext(f"{{{TWF}}}AccessToken") == "twf-at-7d3e51b0a9"
        assert header.findtext(f"{{{TWF}}}CompanyCode") == mocks.OFFICE
        assert request.headers["SOAPAction"] == '"http://www.twinfield.com/PeriodService/Query"'


def test_deleted_transactions_become_entry_deletions_except_those_read_again(requests_mock):
    connector, _ = mocked(requests_mock)
    list(connector.read("ledger_lines", StreamState(), mocks.window()))  # VRK 202400012 is in the books again
    deleted = list(connector.read("deleted", StreamState(), mocks.window()))
    assert [(d.source_id, d.entry) for d in deleted] == [("MEMO:202400007:", True)]
    kind, fields = mocks.wcf_query(requests_mock.request_history[-1].body)
    assert kind == "GetDeletedTransactions"
    assert fields["CompanyCode"] == mocks.OFFICE and fields["DateFrom"].startswith("2024-01-01")


def test_a_deleted_transaction_without_its_number_is_a_data_error(requests_mock):
    connector, _ = mocked(requests_mock)
    broken = mocks.xml_fixture("deleted_transactions").replace("<a:TransactionNumber>202400007</a:TransactionNumber>", "")
    requests_mock.post(mocks.DELETED_SERVICE, text=broken, headers={"Content-Type": "text/xml; charset=utf-8"})
    with pytest.raises(DataError, match="deleted transaction"):
        list(connector.read("deleted", StreamState(), mocks.window()))


def test_fault_354_refreshes_once_then_asks_to_reconnect(requests_mock):
    connector, saved = mocked(requests_mock)
    requests_mock.post(mocks.ENDPOINT, [{"status_code": 500, "text": FAULT_354},
                                        {"text": mocks.process_xml}])
    token_url = f"{mocks.LOGIN_URL}/connect/token"
    requests_mock.post(token_url, json={"access_token": "twf-at-new", "refresh_token": "twf-rt-c4a8e20f17",
                                        "expires_in": 3600, "token_type": "Bearer"})
    assert connector.list_references()
    assert requests_mock.call_count == 4  # fault, refresh, validation (cluster), retry
    assert saved and saved[-1]["access_token"] == "twf-at-new" and saved[-1]["cluster_url"] == mocks.CLUSTER
    refresh = next(r for r in requests_mock.request_history if r.url == token_url)
    assert refresh.headers["Authorization"].startswith("Basic ")  # client authentication with HTTP basic

    again, _ = mocked(requests_mock)
    requests_mock.post(mocks.ENDPOINT, status_code=500, text=FAULT_354)
    with pytest.raises(AuthError) as caught:
        again.list_references()
    assert "reconnect" in caught.value.message
    assert "twf-at" not in caught.value.message + (caught.value.detail or "")


def test_a_refused_refresh_is_not_retried(requests_mock):
    connector, _ = mocked(requests_mock)
    requests_mock.post(mocks.ENDPOINT, status_code=500, text=FAULT_354)
    requests_mock.post(f"{mocks.LOGIN_URL}/connect/token", status_code=400, json={"error": "invalid_grant"})
    with pytest.raises(RenewalRefused):
        connector.list_references()
    assert requests_mock.call_count == 2


def test_other_auth_faults_are_not_retried(requests_mock):
    connector, _ = mocked(requests_mock)
    requests_mock.post(mocks.ENDPOINT, status_code=500, text=FAULT_354.replace(
        "Access denied. Token invalid (code 354).", "Access denied. You have no access to office NLA001234."))
    requests_mock.post(f"{mocks.LOGIN_URL}/connect/token", json={"access_token": "twf-at-new", "expires_in": 3600})
    with pytest.raises(AuthError):
        connector.list_references()
    assert [r.method for r in requests_mock.request_history].count("POST") <= 3


def test_result_zero_in_a_200_is_a_data_error(requests_mock):
    connector, _ = mocked(requests_mock)
    requests_mock.post(mocks.ENDPOINT, text=mocks.soap_answer(mocks.xml_fixture("browse_refused")))
    with pytest.raises(DataError, match="Je hebt geen rechten"):
        list(connector.read("ledger_lines", StreamState(), mocks.window()))


def test_no_cluster_in_the_credentials_asks_the_validation_call(requests_mock):
    creds = {k: v for k, v in mocks.credentials().items() if k != "cluster_url"}
    connector, saved = mocked(requests_mock, creds)
    assert len(connector.list_references()) == 2
    validation = requests_mock.request_history[0]
    assert validation.url.startswith(f"{mocks.LOGIN_URL}/connect/accesstokenvalidation?token=")
    assert validation.headers["Authorization"].startswith("Basic ")  # the client proves it owns the token
    assert saved[-1]["cluster_url"] == mocks.CLUSTER


def test_429_with_retry_after(requests_mock):
    connector, _ = mocked(requests_mock)
    requests_mock.post(mocks.ENDPOINT, status_code=429, headers={"Retry-After": "90"}, text="Too many requests")
    with pytest.raises(RateLimited) as caught:
        connector.list_references()
    assert caught.value.retry_after == pytest.approx(90, abs=1)


# -- against the emulator -----------------------------------------------------------------------------

def sandbox_config(sandbox):
    return Twinfield.spec.sandbox_settings(sandbox.url)


def connect(sandbox):
    config = sandbox_config(sandbox)
    url = Twinfield.spec.auth.consent_url(Twinfield, config, REDIRECT, "state-7", None)
    assert url.startswith(f"{sandbox.url}/twinfield/auth/authentication/connect/authorize?")
    assert "scope=openid+twf.user+twf.organisation+twf.organisationUser+offline_access" in url
    page = requests.get(url, timeout=10)
    fields = {k: unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    answer = requests.post(url.split("?")[0], data={**fields, "decision": "allow"}, allow_redirects=False, timeout=10)
    query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", answer.headers["Location"]))
    return Twinfield.spec.auth.callback(Twinfield, config, query, REDIRECT, None)


def build(sandbox, credentials, reference=None, saved=None):
    config = sandbox_config(sandbox)
    http = build_client(Twinfield.spec, secrets=secrets_for(Twinfield.spec, config, credentials), sleep=lambda s: None)
    return Twinfield(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http,
                                      save_credentials=saved.append if saved is not None else None))


def office(sandbox, name_start):
    book = next(b for b in sandbox.state.books.values() if b.spec.name.startswith(name_start))
    return book, emulator.office_code(book)


WINDOW = SyncWindow(start=date(2023, 1, 1), end=date(2024, 12, 31))


def test_consent_gives_the_cluster_then_offices(sandbox):
    credentials = connect(sandbox)
    assert credentials["cluster_url"] == f"{sandbox.url}/twinfield/api.accounting"
    assert credentials["expires_at"] - time.time() == pytest.approx(3600, abs=60)
    validation = f"{sandbox.url}/twinfield/auth/authentication/connect/accesstokenvalidation"
    assert requests.get(validation, params={"token": credentials["access_token"]}, timeout=10).status_code == 401
    references = build(sandbox, credentials).list_references()
    assert sorted(r.name for r in references) == sorted(b.spec.name for b in sandbox.state.books.values())


def test_every_stream_matches_the_generated_books(sandbox):
    book, code = office(sandbox, "Janssens")
    connector = build(sandbox, connect(sandbox), code)
    assert connector.check().ok
    years = list(connector.read("fiscal_years", StreamState(), WINDOW))
    assert [(y.start, y.end) for y in years] == book.fiscal_years
    accounts = list(connector.read("accounts", StreamState(), WINDOW))
    assert sorted(a.number for a in accounts) == sorted(a["number"] for a in book.accounts)
    lines = list(connector.read("ledger_lines", StreamState(), WINDOW))
    assert len(lines) == book.line_count and sum(line.amount for line in lines) == 0
    moved = {}
    for line in lines:
        key = (line.booking_period_end.isoformat(), line.account)
        moved[key] = moved.get(key, Decimal(0)) + line.amount
    assert {k: v for k, v in moved.items() if v} == book.movements()
    balances = list(connector.read("balances", StreamState(), WINDOW))
    assert {(b.period_end.isoformat(), b.account): b.amount for b in balances} == book.movements()


def test_emulator_answers_validate_against_the_shared_wsdl(sandbox, shared_schema):
    _, code = office(sandbox, "Bakkerij")
    credentials = connect(sandbox)
    endpoint = f"{credentials['cluster_url']}/webservices/processxml.asmx"
    client = build(sandbox, credentials, code).client
    for xml in ("<list><type>offices</type></list>", browse_request("030_1", code, LINE_FIELDS, "2023/01", "2023/01")):
        message = client.create_message(client.service, "ProcessXmlString", xmlRequest=xml, _soapheaders={
            "Header": {"AccessToken": credentials["access_token"], "CompanyCode": code, "CompanyId": None}})
        body = etree.tostring(message)
        validate_request(shared_schema, body)
        answer = requests.post(endpoint, data=body, timeout=10, headers={
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://www.twinfield.com/ProcessXmlString"'})
        assert answer.status_code == 200
        validate_answer(shared_schema, answer.content)
    expired = requests.post(endpoint, data=body.replace(credentials["access_token"].encode(), b"nope"), timeout=10)
    assert expired.status_code == 500 and b"354" in expired.content


@pytest.mark.parametrize("service, queries", [
    ("PeriodService", [("GetYears", {}), ("GetPeriods", {"Year": 2023})]),
    ("DeletedTransactionsService", [("GetDeletedTransactions", {"CompanyCode": None})]),
])
def test_svc_requests_and_emulator_answers_validate_against_the_shipped_wsdls(sandbox, service, queries):
    """The hand-written .svc WSDLs (README) hold what the connector sends and what the emulator answers."""
    book, code = office(sandbox, "Bakkerij")
    sandbox.mutate(book.spec.id, delete=1)
    credentials = connect(sandbox)
    connector = build(sandbox, credentials, code)
    schema = wsdl_schema(WSDL_DIR / f"{service}.wsdl")
    namespace = f"http://schemas.datacontract.org/2004/07/Twinfield.WebServices.{service}"
    responses = []
    connector.http.session.hooks["response"].append(lambda response, *a, **k: responses.append(response))
    for name, fields in queries:
        fields = {k: (code if v is None else v) for k, v in fields.items()}
        assert connector.query(service, namespace, name, **fields)  # the answers are read, not empty
    sent = [r for r in responses if r.url.endswith(f"/{service}.svc")]
    assert len(sent) == len(queries)
    for response in sent:
        request = etree.fromstring(response.request.body)
        schema.validate(request.find(f"{{{ENV}}}Header/{{{TWF}}}Authentication"))
        schema.validate(request.find(f"{{{ENV}}}Body")[0])
        schema.validate(etree.fromstring(response.content).find(f"{{{ENV}}}Body")[0])


def test_mode_numbered_cluster(sandbox):
    sandbox.modes(twinfield=["numbered_cluster"])
    _, code = office(sandbox, "Northwind")
    credentials = connect(sandbox)
    assert credentials["cluster_url"].endswith("/twinfield/api.accounting2")
    assert list(build(sandbox, credentials, code).read("accounts", StreamState(), WINDOW))
    assert sandbox.calls("/twinfield/api.accounting2/") and not sandbox.calls("/twinfield/api.accounting/")


def test_mode_extra_browse_cells(sandbox):
    book, code = office(sandbox, "Northwind")
    credentials = connect(sandbox)
    plain = list(build(sandbox, credentials, code).read("ledger_lines", StreamState(), WINDOW))
    sandbox.modes(twinfield=["extra_browse_cells"])
    assert list(build(sandbox, credentials, code).read("ledger_lines", StreamState(), WINDOW)) == plain
    assert len(plain) == book.line_count


def test_mode_token_expires_mid_sync(sandbox):
    sandbox.modes(twinfield=["token_expires_mid_sync"])
    book, code = office(sandbox, "Northwind")
    saved = []
    lines = list(build(sandbox, connect(sandbox), code, saved).read("ledger_lines", StreamState(), WINDOW))
    assert len(lines) == book.line_count
    assert sandbox.stats()["token_refreshes"]["twinfield"] >= 2 and saved[-1]["cluster_url"]


def test_mode_browse_refused(sandbox):
    sandbox.modes(twinfield=["browse_refused"])
    _, code = office(sandbox, "Northwind")
    with pytest.raises(DataError, match="no rights"):
        list(build(sandbox, connect(sandbox), code).read("ledger_lines", StreamState(), WINDOW))


def test_credits_over_budget_are_429_with_retry_after(sandbox):
    sandbox.budgets(twinfield={"per_minute": 2})
    _, code = office(sandbox, "Northwind")
    connector = build(sandbox, connect(sandbox), code)
    connector.http.max_wait = 0
    with pytest.raises(RateLimited) as caught:
        list(connector.read("accounts", StreamState(), WINDOW))
        connector.list_references()
    assert caught.value.retry_after >= 1


def test_one_concurrent_call_per_organisation(sandbox):
    _, code = office(sandbox, "Janssens")
    credentials = connect(sandbox)
    endpoint = f"{credentials['cluster_url']}/webservices/processxml.asmx"
    client = build(sandbox, credentials, code).client
    body = etree.tostring(client.create_message(
        client.service, "ProcessXmlString", xmlRequest=browse_request("030_1", code, LINE_FIELDS, "2023/01", "2024/12"),
        _soapheaders={"Header": {"AccessToken": credentials["access_token"], "CompanyCode": code, "CompanyId": None}}))
    statuses = []

    def call():
        statuses.append(requests.post(endpoint, data=body, timeout=30,
                                      headers={"Content-Type": "text/xml; charset=utf-8"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 200 in statuses and set(statuses) <= {200, 429}
