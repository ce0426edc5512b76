"""Yuki: the connector over zeep and the kit's client, against the sandbox's SOAP emulator (real HTTP on
127.0.0.1) and the recorded-shape fixtures; every request the connector sends and every answer the
emulator gives is validated against the shipped WSDLs with xmlschema."""
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

import pytest
import requests_mock as requests_mock_lib
import xmlschema
from lxml import etree

from connectors.base import (
    AccountRecord, AuthError, BalanceRecord, ConnectorContext, FiscalYearRecord, PermissionError,
    RateLimited, RenewalRefused, StreamState, SyncWindow,
)
from connectors.http import build_client, secrets_for
from connectors.yuki import FAULTS, WSDL_DIR, Yuki
from connectors.yuki import emulator
from tests.connectors.mocks import fixtures_of
from tests.connectors.mocks import yuki as mocks
from tests.jobs.conftest import linked_dossier  # noqa: F401 (a fixture)

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
WINDOW = SyncWindow(start=date(2024, 1, 1), end=date(2026, 12, 5))
COMPANY = "c-1001"


def wsdl_schema(service):
    root = etree.parse(str(WSDL_DIR / f"{service}.wsdl")).getroot()
    schemas = root.findall(f"{{{WSDL_NS}}}types/{{{XSD_NS}}}schema")
    return xmlschema.XMLSchema([etree.tostring(s).decode() for s in schemas])


SCHEMAS = {service: wsdl_schema(service) for service in ("Accounting", "AccountingInfo")}


def body_of(content):
    return etree.fromstring(content).find(f"{{{ENV}}}Body")[0]


def validate(service, content):
    """``content`` (a SOAP envelope) is valid against ``service``'s WSDL schema (faults aside)."""
    element = body_of(content)
    if etree.QName(element).localname != "Fault":
        SCHEMAS[service].validate(element)
    return element


class Recorder:
    """Every (service, request body, answer body) the connector's client exchanged."""

    def __init__(self, http):
        self.exchanges = []
        http.session.hooks["response"].append(self.record)

    def record(self, response, *args, **kwargs):
        service = response.request.url.rsplit("/", 1)[-1].removesuffix(".asmx")
        self.exchanges.append((service, response.request.body, response.content))

    def operations(self):
        return Counter(etree.QName(body_of(request)).localname for _, request, _ in self.exchanges)


def build(config, reference=None):
    http = build_client(Yuki.spec, secrets=secrets_for(Yuki.spec, config, {}), sleep=lambda s: None)
    return Yuki(ConnectorContext(config=config, credentials={}, reference=reference, http=http))


def sandbox_config(sandbox, region="nl"):
    return {"api_key": "demo-key", "region": region, "daily_calls": "1000",
            "base_url": f"{sandbox.url}/yuki/{region}/ws"}


def connect(sandbox, company=COMPANY, region="nl"):
    yuki = build(sandbox_config(sandbox, region), emulator.administration_id(company))
    return yuki, Recorder(yuki.http)


def read_all(yuki, bookmarks=None, window=WINDOW):
    records, marks = {}, {}
    for stream in yuki.streams:
        state = StreamState(bookmark=(bookmarks or {}).get(stream.name))
        records[stream.name] = list(yuki.read(stream.name, state, window))
        if state.new_bookmark is not None:
            marks[stream.name] = state.new_bookmark
    return records, marks


# -- the WSDLs, the fixtures and the spec --------------------------------------------------------

def test_the_spec_declares_a_session_login_and_the_daily_budget_per_key():
    spec = Yuki.spec
    assert spec.auth.kind == "session" and spec.level == "firm" and spec.reference_label == "administration"
    assert (spec.rate_budget.per_day, spec.rate_budget.per) == (1000, "key")
    assert spec.sandbox_config["base_url"] == "{sandbox}/yuki/nl/ws"
    config = Yuki.spec.config_schema().load({"api_key": "k"})
    assert config["region"] == "nl" and config["daily_calls"] == "1000"
    assert build({"api_key": "k", "region": "be"}).base_url == "https://api.yukiworks.be/ws"
    assert build({"api_key": "k"}).base_url == "https://api.yukiworks.nl/ws"


@pytest.mark.parametrize("name", sorted(p.stem for p in fixtures_of("yuki").glob("*.xml")))
def test_every_fixture_is_a_valid_answer_of_the_wsdl(name):
    content = (fixtures_of("yuki") / f"{name}.xml").read_bytes()
    element = body_of(content)
    if name.startswith("fault"):
        assert etree.QName(element).localname == "Fault"
        return
    service = "Accounting" if etree.QName(element).localname.removesuffix("Response") in emulator.SERVICES[
        "Accounting"] else "AccountingInfo"
    SCHEMAS[service].validate(element)


def test_the_connector_requests_and_the_emulator_answers_validate_against_the_wsdls(sandbox):
    yuki, recorder = connect(sandbox)
    assert yuki.check().ok
    read_all(yuki)
    operations = recorder.operations()
    assert set(operations) >= {"Authenticate", "Domains", "Administrations", "GetPeriodDateTable",
                               "GetFinancialYearModifiedDate", "GetGLAccountScheme", "GetStartBalanceByGlAccount",
                               "GLAccountBalance", "GetTransactionDetails"}
    for service, request, answer in recorder.exchanges:
        validate(service, request)
        validate(service, answer)


def test_the_emulator_serves_the_wsdls(sandbox):
    import requests

    for service in ("Accounting", "AccountingInfo"):
        answer = requests.get(f"{sandbox.url}/yuki/be/ws/{service}.asmx?WSDL", timeout=10)
        assert answer.status_code == 200 and b"http://www.theyukicompany.com/" in answer.content


# -- references and a full read ---------------------------------------------------------------

def test_check_and_references_list_one_administration_per_company(sandbox):
    yuki = build(sandbox_config(sandbox))
    result = yuki.check()
    assert result.ok and result.references == len(sandbox.state.books)
    refs = {ref.reference: ref for ref in yuki.list_references()}
    for book in sandbox.state.books.values():
        ref = refs[emulator.administration_id(book.spec.id)]
        assert ref.name == book.spec.name and ref.details["country"] == book.spec.country


def test_a_full_read_is_consistent_and_exact(sandbox):
    yuki, recorder = connect(sandbox)
    records, marks = read_all(yuki)
    book = sandbox.state.books[COMPANY]
    assert records["fiscal_years"] == [FiscalYearRecord(start, end) for start, end in book.fiscal_years
                                       if end >= WINDOW.start]
    assert {a.number for a in records["accounts"]} == {a["number"] for a in book.accounts}
    assert all(isinstance(a, AccountRecord) and a.kind in ("asset", "liability", "equity", "income", "expense")
               for a in records["accounts"])
    lines = records["ledger_lines"]
    expected = [line for line in book.all_lines() if line["date"] >= "2024-01-01"]
    assert len(lines) == len(expected) and all(isinstance(line.amount, Decimal) for line in lines)
    assert sum(line.amount for line in lines) == 0
    by_month = defaultdict(Decimal)
    for line in lines:
        by_month[(line.account, line.booking_date.replace(day=1))] += line.amount
    balances = records["balances"]
    assert balances and all(isinstance(b, BalanceRecord) and b.basis == "movement" for b in balances)
    for balance in balances:  # each month's movement is exactly its lines (balance sheet and P&L alike)
        assert balance.amount == by_month[(balance.account, balance.period_start)], balance
    assert {k for k, v in by_month.items() if v} == {(b.account, b.period_start) for b in balances}
    assert marks["ledger_lines"] == marks["balances"] == marks["opening_balances"] == {
        "years": {"2024": marks["balances"]["years"]["2024"]}}
    openings = {o.account: o.amount for o in records["opening_balances"]}
    assert openings and {o.date for o in records["opening_balances"]} == {date(2024, 1, 1)}
    kinds = {a["number"]: a["type"] for a in book.accounts}
    before = defaultdict(Decimal)
    for line in book.all_lines():
        if line["date"] < "2024-01-01" and kinds[line["account"]] in ("asset", "liability", "equity"):
            before[line["account"]] += Decimal(line["amount"])
    assert openings == {k: v for k, v in before.items() if v}
    assert recorder.operations()["Authenticate"] == 1


def test_a_second_read_with_the_bookmarks_costs_a_handful_of_calls_and_yields_no_figures(sandbox):
    first, _ = connect(sandbox)
    _, marks = read_all(first)
    again, recorder = connect(sandbox)
    records, new_marks = read_all(again, marks)
    assert records["ledger_lines"] == records["balances"] == records["opening_balances"] == []
    assert new_marks == marks
    operations = recorder.operations()
    assert "GetTransactionDetails" not in operations and "GLAccountBalance" not in operations
    assert operations["GetFinancialYearModifiedDate"] == 1  # one per year, shared by both streams
    assert sum(operations.values()) <= 10, operations


def test_a_change_in_the_year_rereads_that_year(sandbox):
    first, _ = connect(sandbox)
    _, marks = read_all(first)
    changed = sandbox.mutate(COMPANY, change=1, add=1)
    again, _ = connect(sandbox)
    records, new_marks = read_all(again, marks)
    assert new_marks["ledger_lines"] != marks["ledger_lines"]
    ids = {line.source_id for line in records["ledger_lines"]}
    for line_id in changed["changed"] + changed["added"]:
        line = next(l for l in sandbox.state.books[COMPANY].all_lines() if l["id"] == line_id)
        if line["date"] >= "2024-01-01":
            assert emulator.line_guid(COMPANY, line_id) in ids
    assert records["balances"]


# -- faults, auth and the budget ------------------------------------------------------------------

def test_an_invalid_key_is_a_refusal_without_the_key_in_the_message(sandbox):
    config = {**sandbox_config(sandbox), "api_key": "wrong-key-7f3a9b"}
    yuki = build(config)
    recorder = Recorder(yuki.http)
    with pytest.raises(RenewalRefused) as caught:
        yuki.check()
    assert "access key" in caught.value.message and "wrong-key-7f3a9b" not in str(caught.value)
    assert recorder.operations() == Counter({"Authenticate": 1}), "an invalid key is not tried twice"


def test_session_expires_mid_sync_renews_once_per_expiry(sandbox):
    sandbox.modes(yuki=["session_expires_mid_sync"])
    yuki, recorder = connect(sandbox)
    records, _ = read_all(yuki)
    assert records["ledger_lines"] and records["balances"]
    assert recorder.operations()["Authenticate"] > 1


def test_a_session_fault_twice_in_a_row_is_an_auth_error(requests_mock):
    config = mocks.config()
    mocks.register(requests_mock, config["base_url"])
    fault = (fixtures_of("yuki") / "fault_session.xml").read_text()
    ok = (fixtures_of("yuki") / "authenticate.xml").read_text()

    def respond(request, context):
        action = request.headers["SOAPAction"].strip('"')
        context.status_code = 200 if action.endswith("/Authenticate") else 500
        return ok if action.endswith("/Authenticate") else fault

    requests_mock.post(f"{config['base_url']}/Accounting.asmx", text=respond)
    yuki = build(config, mocks.reference())
    with pytest.raises(AuthError) as caught:
        yuki.list_references()
    assert not isinstance(caught.value, RenewalRefused)
    actions = [r.headers["SOAPAction"].strip('"').rsplit("/", 1)[-1] for r in requests_mock.request_history]
    assert actions == ["Authenticate", "Domains", "Authenticate", "Domains"]
    assert "0b7c9e52-4f1a-4d3b-8e2c-5a6f7d8e9f10" not in caught.value.message


def test_be_host_the_nl_host_refuses_the_key_and_the_be_host_reads(sandbox):
    sandbox.modes(yuki=["be_host"])
    with pytest.raises(AuthError) as caught:
        build(sandbox_config(sandbox, "nl")).check()
    assert "country" in caught.value.message
    yuki, _ = connect(sandbox, region="be")
    assert yuki.check().ok
    records, _ = read_all(yuki)
    assert records["ledger_lines"]


def test_padded_codes_are_stripped(sandbox):
    sandbox.modes(yuki=["padded_codes"])
    yuki, recorder = connect(sandbox)
    records, _ = read_all(yuki)
    numbers = {a["number"] for a in sandbox.state.books[COMPANY].accounts}
    assert {a.number for a in records["accounts"]} == numbers
    assert {line.account for line in records["ledger_lines"]} <= numbers
    assert {b.account for b in records["balances"]} <= numbers
    assert any(b"  " + next(iter(numbers)).encode() in answer or b"<code>  " in answer
               for _, _, answer in recorder.exchanges)


def test_two_domains_lists_both_and_reads_a_company_of_the_second(sandbox):
    sandbox.modes(yuki=["two_domains"])
    yuki = build(sandbox_config(sandbox))
    refs = yuki.list_references()
    assert len(refs) == len(sandbox.state.books)
    assert len({ref.details["domain_id"] for ref in refs}) == 2
    second, recorder = connect(sandbox, company="c-1003")
    records, _ = read_all(second)
    assert records["accounts"] and recorder.operations()["SetCurrentDomain"] >= 1


def test_two_domains_with_an_expiring_session_enters_the_domain_again(sandbox):
    sandbox.modes(yuki=["two_domains", "session_expires_mid_sync"])
    yuki, recorder = connect(sandbox, company="c-1003")
    records, _ = read_all(yuki)
    assert records["ledger_lines"]
    assert recorder.operations()["SetCurrentDomain"] >= recorder.operations()["Authenticate"] - 1 > 0


def test_no_rights_is_a_permission_error(sandbox):
    sandbox.modes(yuki=["no_rights"])
    yuki, _ = connect(sandbox)
    assert yuki.check().ok  # listing works
    with pytest.raises(PermissionError) as caught:
        list(yuki.read("accounts", StreamState(), WINDOW))
    assert "Yuki" in caught.value.message


def test_a_spent_daily_budget_defers_until_the_vendors_midnight(sandbox):
    sandbox.modes(yuki=["daily_limit_spent"])
    yuki, recorder = connect(sandbox)
    with pytest.raises(RateLimited) as caught:
        yuki.check()
    assert caught.value.daily and 60 <= caught.value.retry_after <= 25 * 3600
    assert len(recorder.exchanges) == 1, "a spent day is not retried"


def test_the_emulator_counts_the_daily_budget_per_key(sandbox, monkeypatch):
    monkeypatch.setattr(emulator, "DAILY_CALLS", 4)
    yuki, recorder = connect(sandbox)
    with pytest.raises(RateLimited):
        read_all(yuki)
    assert len(recorder.exchanges) == 5  # four counted calls, then the fault


# -- paid tiers: the connection's daily budget -----------------------------------------------------

@pytest.mark.parametrize("plan, per_day", [("1000", 1000), ("5000", 5000), ("10000", 10000), (5000, 5000)])
def test_the_connections_plan_is_its_daily_budget_per_key(plan, per_day):
    budgets = Yuki.budgets_for({"api_key": "k", "region": "nl", "daily_calls": plan})
    assert [(b.per_day, b.per) for b in budgets] == [(per_day, "key")]


@pytest.mark.parametrize("config", [{"api_key": "k"}, {"api_key": "k", "daily_calls": None},
                                    {"api_key": "k", "daily_calls": "123456"}])
def test_without_a_known_plan_the_budget_is_the_free_1000_a_day(config):
    assert Yuki.budgets_for(config) == Yuki.spec.budgets
    assert [(b.per_day, b.per) for b in Yuki.budgets_for(config)] == [(1000, "key")]


def test_open_connector_counts_the_connections_plan(db, linked_dossier):
    from app.models import DossierLink
    from app.services.connectors import open_connector

    dossier = linked_dossier(package="yuki", reference=emulator.administration_id(COMPANY),
                             config={"region": "nl", "daily_calls": "5000",
                                     "base_url": "http://yuki.invalid/yuki/nl/ws"},
                             credentials={"api_key": "yuki-key-5k-secret"})
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    yuki = open_connector(link.connection, link.reference)
    assert isinstance(yuki, Yuki)
    assert [(b.per_day, b.per) for _, b in yuki.http.budgets] == [(5000, "key")]
    assert all("yuki-key-5k-secret" not in scope for scope, _ in yuki.http.budgets)  # the key is hashed
    link.connection.config = {**link.connection.config, "daily_calls": "1000"}
    assert [b.per_day for _, b in open_connector(link.connection, link.reference).http.budgets] == [1000]


def test_the_fault_table_maps_the_documented_words():
    from connectors.http import match_fault

    assert match_fault(FAULTS, (), emulator.FAULT_TEXTS["session"]) is AuthError
    assert match_fault(FAULTS, (), emulator.FAULT_TEXTS["key"]) is AuthError
    assert match_fault(FAULTS, (), emulator.FAULT_TEXTS["rights"]) is PermissionError
    assert match_fault(FAULTS, (), emulator.FAULT_TEXTS["limit"]) is RateLimited
    assert match_fault(FAULTS, (), "Server was unable to process request.") is None


def test_transaction_pages_follow_start_record(requests_mock, monkeypatch):
    import connectors.yuki as package

    monkeypatch.setattr(package, "PAGE_SIZE", 4)
    config = mocks.config()
    mocks.register(requests_mock, config["base_url"])
    full = (fixtures_of("yuki") / "transaction_details.xml").read_text()
    starts = []

    def respond(request, context):
        action = request.headers["SOAPAction"].strip('"').rsplit("/", 1)[-1]
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        if action != "GetTransactionDetails":
            return mocks.answer_for(action, body)
        start = int(body.split("<ns0:startRecord>")[1].split("<")[0])
        starts.append(start)
        root = etree.fromstring(full.encode())
        rows = root.findall(".//TransactionInfo")
        for row in rows[:start - 1] + rows[start - 1 + 4:]:
            row.getparent().remove(row)
        return etree.tostring(root).decode()

    requests_mock.register_uri(requests_mock_lib.POST, f"{config['base_url']}/AccountingInfo.asmx", text=respond)
    yuki = build(config, mocks.reference())
    lines = list(yuki.read("ledger_lines", StreamState(), mocks.window()))
    assert starts == [1, 5] and len(lines) == 6


def test_rows_are_read_with_or_without_the_namespace_reset():
    from connectors.yuki import child_text, xml_rows

    plain = etree.fromstring(b'<GLAccountBalance xmlns=""><GLAccount Code="1"><Amount>2.50</Amount></GLAccount>'
                             b"</GLAccountBalance>")
    namespaced = etree.fromstring(b'<GLAccountBalance xmlns="http://www.theyukicompany.com/"><GLAccount Code="1">'
                                  b"<Amount>2.50</Amount></GLAccount></GLAccountBalance>")
    for result in ([plain], [namespaced]):
        rows = xml_rows(result, "GLAccount")
        assert len(rows) == 1 and child_text(rows[0], "Amount") == "2.50" and child_text(rows[0], "Nope") is None
