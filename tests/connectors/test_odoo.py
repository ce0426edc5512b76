"""Odoo: the connector against the sandbox's Odoo servers 16 to 19 in the three protocols (real HTTP on
127.0.0.1), and against the recorded-shape fixtures (requests-mock) for the answers the emulator does not
give (labels without ``__range``, translated labels, Odoo's fault texts)."""
import json
import xmlrpc.client
from array import array
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
import requests

from connectors.base import (
    AuthError, BalanceRecord, ConfigError, ConnectorContext, DataError, DeletedRecord, LedgerLineRecord,
    OpeningBalanceRecord, PermissionError, StreamState, SyncWindow,
)
from connectors.http import build_client, secrets_for
from connectors.odoo import ID_BLOCK, LedgerLines, Odoo, block_digest, month_end, odoo_error
import connectors.odoo as package
from connectors.odoo import emulator
from tests.connectors.mocks import fixture, fixtures_of
from tests.connectors.mocks import odoo as mocks

#: (server version, protocol): every protocol each version speaks
SERVERS = [(16, "xmlrpc"), (16, "jsonrpc"), (17, "xmlrpc"), (17, "jsonrpc"), (18, "xmlrpc"), (18, "jsonrpc"),
           (19, "json2"), (19, "jsonrpc"), (19, "xmlrpc")]
WINDOW = SyncWindow(start=date(2023, 1, 1), end=date(2024, 12, 31))
SMALL = "c-1003"  # 40 lines, GBP, company 3 of the multi-company database
KEY = "demo-key"


def build(config, reference=None):
    http = build_client(Odoo.spec, secrets=secrets_for(Odoo.spec, config, {}), sleep=lambda s: None)
    return Odoo(ConnectorContext(config=config, credentials={}, reference=reference, http=http))


def sandbox_config(sandbox, version=19, protocol="auto", **changes):
    config = Odoo.spec.sandbox_settings(sandbox.url)
    config.update(base_url=f"{sandbox.url}/odoo/{version}", protocol=protocol, **changes)
    return config


def company_of(sandbox, book_id, database=emulator.DATABASE):
    books = sorted(sandbox.state.books) if database == emulator.DATABASE else [database]
    return f"{database}:{books.index(book_id) + 1}"


def connect(sandbox, server=(19, "json2"), book=SMALL, **changes):
    version, protocol = server
    return build(sandbox_config(sandbox, version, protocol, **changes), company_of(sandbox, book))


def read(odoo, stream, bookmark=None, window=WINDOW):
    state = StreamState(bookmark=bookmark)
    return list(odoo.read(stream, state, window)), state.new_bookmark


def book_lines(sandbox, book):
    return list(sandbox.state.books[book].all_lines())


# -- protocol and references ----------------------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS, ids=lambda s: f"{s[0]}-{s[1]}")
def test_each_server_speaks_its_protocol_and_lists_its_companies(sandbox, server):
    version, protocol = server
    odoo = build(sandbox_config(sandbox, version, protocol))
    result = odoo.check()
    assert result.ok and result.references == len(sandbox.state.books)
    refs = {ref.reference: ref for ref in odoo.list_references()}
    book = sandbox.state.books["c-1001"]
    first = refs[company_of(sandbox, "c-1001")]
    assert first.name == book.spec.name
    assert first.details["vat_number"] == book.spec.vat_number and first.details["currency"] == "EUR"
    assert first.details["fiscal_year_end"] == "12-31" and first.details["fiscal_country"] == "BE"
    assert first.details["fiscalyear_lock_date"] == "2023-12-31"  # lock dates are shown as information
    assert refs[company_of(sandbox, "c-1002")].details["fiscal_year_end"] == "03-31"
    paths = sandbox.stats()["calls"]
    endpoints = {"json2": "/json/2/", "jsonrpc": "/jsonrpc", "xmlrpc": "/xmlrpc/2/object"}
    assert any(endpoints[protocol] in path for path in paths)
    assert not any(other in path for path in paths for name, other in endpoints.items() if name != protocol)


@pytest.mark.parametrize("version, expected", [(16, "xmlrpc"), (18, "xmlrpc"), (19, "json2")])
def test_auto_picks_json2_from_19_and_xmlrpc_before(sandbox, version, expected):
    odoo = build(sandbox_config(sandbox, version))
    assert odoo.protocol == expected and odoo.version == version


def test_json2_is_refused_before_19(sandbox):
    odoo = build(sandbox_config(sandbox, 18, "json2"))
    with pytest.raises(ConfigError, match="needs Odoo 19"):
        odoo.check()


def test_without_a_database_the_odoo_com_account_lists_every_database(sandbox):
    odoo = build(sandbox_config(sandbox, 19, database=""))
    refs = odoo.list_references()
    databases = {ref.reference.rsplit(":", 1)[0] for ref in refs}
    assert databases == {emulator.DATABASE, *sandbox.state.books}
    assert len(refs) == 2 * len(sandbox.state.books)
    assert all(ref.name.endswith(f"({ref.reference.rsplit(':', 1)[0]})") for ref in refs)
    one = build(sandbox_config(sandbox, 19, database=""), reference="c-1003:1")
    records, _ = read(one, "accounts")
    assert len(records) == len(sandbox.state.books["c-1003"].accounts)
    assert any("/odoo/www/json/2/odoo.database/list" in path for path in sandbox.stats()["calls"])


# -- data -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS, ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_full_read_is_the_companys_books(sandbox, server):
    odoo = connect(sandbox, server)
    book = sandbox.state.books[SMALL]
    years, _ = read(odoo, "fiscal_years")
    assert [(y.start, y.end) for y in years] == book.fiscal_years
    accounts, _ = read(odoo, "accounts")
    assert {(a.number, a.kind) for a in accounts} == {(a["number"], a["type"]) for a in book.accounts}
    lines, bookmark = read(odoo, "ledger_lines")
    assert all(isinstance(line, LedgerLineRecord) for line in lines)
    expected = book_lines(sandbox, SMALL)
    assert len(lines) == len(expected) and bookmark["write_date"] and bookmark["blocks"]
    assert sorted((l.booking_date.isoformat(), l.account, l.amount) for l in lines) == \
        sorted((l["date"], l["account"], Decimal(l["amount"])) for l in expected)
    assert all(l.dimensions["currency"] == "EUR" and l.dimensions["amount_currency"] for l in lines)  # GBP books
    balances, _ = read(odoo, "balances")
    sums = defaultdict(Decimal)
    for line in expected:
        sums[(line["account"], date.fromisoformat(line["date"]).replace(day=1))] += Decimal(line["amount"])
    assert {(b.account, b.period_start): b.amount for b in balances if b.amount} == {k: v for k, v in sums.items() if v}
    months = {b.period_start for b in balances}  # every month read is sent: an emptied month is cleared
    assert len(months) == 24 and min(months) == date(2023, 1, 1) and max(months) == date(2024, 12, 1)
    assert all(isinstance(b, BalanceRecord) and b.basis == "movement" for b in balances)


def test_only_the_linked_companys_records_come_in_a_multi_company_database(sandbox):
    odoo = connect(sandbox, book="c-1001")
    lines, _ = read(odoo, "ledger_lines")
    count = len(sandbox.state.books)
    assert len(lines) == len(book_lines(sandbox, "c-1001"))
    assert {int(line.source_id) % count for line in lines} == {0}  # company 1's interleaved ids only


@pytest.mark.parametrize("server", [(17, "xmlrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("book", ["c-1001", "c-1002"])
def test_openings_and_movements_equal_odoos_trial_balance(sandbox, server, book):
    """Each fiscal year's opening plus the months up to a date give Odoo's trial balance for the year's
    start to that date: P&L accounts from the year's start, earlier results on unaffected earnings."""
    odoo = connect(sandbox, server, book=book)
    openings, _ = read(odoo, "opening_balances")
    balances, _ = read(odoo, "balances")
    source = sandbox.state.books[book]
    for start, end in source.fiscal_years[1:]:
        for until in {month_end(date(start.year, start.month + 4, 1)), min(end, WINDOW.end)}:
            odoo_tb = emulator.trial_balance_of(source, start, until)
            ours = defaultdict(Decimal)
            for record in openings:
                if record.date == start:
                    ours[record.account] += record.amount
            for record in balances:
                if start <= record.period_start and record.period_end <= until:
                    ours[record.account] += record.amount
            assert {k: v for k, v in ours.items() if v} == {k: v[2] for k, v in odoo_tb.items() if v[2]}
            unaffected = emulator._unaffected(source)["number"]
            assert ours[unaffected] == odoo_tb[unaffected][2] != 0  # the earlier year's result is there


def test_opening_balances_anchor_pnl_accounts_at_zero_and_carry_results(sandbox):
    odoo = connect(sandbox, book="c-1001")
    openings, _ = read(odoo, "opening_balances")
    second = sandbox.state.books["c-1001"].fiscal_years[1][0]
    kinds = {a["number"]: a["type"] for a in sandbox.state.books["c-1001"].accounts}
    at = {o.account: o.amount for o in openings if o.date == second}
    assert all(isinstance(o, OpeningBalanceRecord) for o in openings)
    assert all(amount == 0 for code, amount in at.items() if kinds[code] in ("income", "expense"))
    assert sum(at.values()) == 0  # the opening balances, like the books


# -- incremental ledger and deletions -------------------------------------------------------------

@pytest.mark.parametrize("server", [(16, "xmlrpc"), (18, "jsonrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_resync_reads_changes_and_removes_lines_whose_move_left_the_books(sandbox, server):
    odoo = connect(sandbox, server)
    first, bookmark = read(odoo, "ledger_lines")
    again, unchanged = read(connect(sandbox, server), "ledger_lines", bookmark)
    assert not any(isinstance(r, DeletedRecord) for r in again)  # nothing left the books
    assert {r.source_id for r in again} <= {r.source_id for r in first}
    assert unchanged["blocks"] == bookmark["blocks"]

    changed = sandbox.mutate(SMALL, change=1, delete=1, add=1)
    records, after = read(connect(sandbox, server), "ledger_lines", bookmark)
    gone = {r.source_id for r in records if isinstance(r, DeletedRecord)}
    come = {r.source_id: r for r in records if isinstance(r, LedgerLineRecord)}
    count, position = len(sandbox.state.books), sorted(sandbox.state.books).index(SMALL)

    def global_id(line_id):
        return str(line_id * count + position)

    assert {global_id(i) for i in changed["deleted"]} <= gone  # reset to draft: out of the dossier
    assert not gone & set(come)
    assert {global_id(i) for i in changed["changed"] + changed["added"]} <= set(come)
    assert all(come[global_id(i)].description.endswith("(corrected)") for i in changed["changed"])
    assert after["write_date"] > bookmark["write_date"]


def test_lines_deleted_after_a_reset_to_draft_are_found_by_their_missing_ids(sandbox):
    sandbox.modes(odoo=["drafts_deleted"])
    odoo = connect(sandbox)
    _, bookmark = read(odoo, "ledger_lines")
    deleted = sandbox.mutate(SMALL, delete=2)["deleted"]
    records, _ = read(connect(sandbox), "ledger_lines", bookmark)
    count, position = len(sandbox.state.books), sorted(sandbox.state.books).index(SMALL)
    gone = {r.source_id for r in records if isinstance(r, DeletedRecord)}
    assert {str(i * count + position) for i in deleted} <= gone
    still_posted = {str(l["id"] * count + position) for l in book_lines(sandbox, SMALL)}
    assert not gone & still_posted


def test_gone_compares_blocks_by_digest():
    before = {"max_id": 1004, "blocks": {"0": block_digest([1, 2, 3]), "1": block_digest([1000, 1004])}}
    tally = {"blocks": {}, "max_id": 0}
    # 2 left the books, 1004 too (block 1 now only holds ids above last time's largest), 5 was read then vanished
    gone = list(LedgerLines.gone(iter([1, 3, 1000, 1010]), before, array("q", [5, 1010]), tally))
    # a changed block gives every id of it that is not posted (ids never stored cost the writer nothing)
    assert gone == sorted(set(range(ID_BLOCK)) - {1, 3}) + [1001, 1002, 1003, 1004]
    assert tally["max_id"] == 1010 and tally["blocks"]["0"] == block_digest([1, 3])
    unchanged = list(LedgerLines.gone(iter([1, 2, 3, 1000, 1004, 2000]), before, array("q"), {"blocks": {},
                                                                                             "max_id": 0}))
    assert unchanged == []
    emptied = list(LedgerLines.gone(iter([1000, 1004]), before, array("q"), {"blocks": {}, "max_id": 0}))
    assert emptied == list(range(ID_BLOCK))


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("server", [(16, "xmlrpc"), (17, "jsonrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_revoked_key_is_a_refusal_without_the_key(sandbox, server):
    odoo = connect(sandbox, server)
    read(odoo, "accounts")
    sandbox.fault("revoke", path="/odoo")  # the next call revokes the keys (the user deleted the API key)
    with pytest.raises(AuthError) as caught:
        read(connect(sandbox, server), "ledger_lines")
    assert "API key" in caught.value.message and KEY not in caught.value.message + str(caught.value.detail)


@pytest.mark.parametrize("server", [(16, "xmlrpc"), (18, "jsonrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_user_without_accounting_rights_is_told_which_rights_to_give(sandbox, server):
    sandbox.modes(odoo=["no_accounting_rights"])
    with pytest.raises(PermissionError) as caught:
        read(connect(sandbox, server), "accounts")
    assert "Accounting / Auditor" in caught.value.message and "Odoo says" in caught.value.message


@pytest.mark.parametrize("server", [(17, "xmlrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_database_on_a_standard_plan_is_a_configuration_problem(sandbox, server):
    sandbox.modes(odoo=["standard_plan"])
    with pytest.raises(ConfigError, match="Custom plan"):
        connect(sandbox, server).check()


@pytest.mark.parametrize("server", [(16, "xmlrpc"), (18, "jsonrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_wrong_database_name_says_so(sandbox, server):
    with pytest.raises(ConfigError, match="no database called acme-typo"):
        build(sandbox_config(sandbox, *server, database="acme-typo")).check()


def test_a_malformed_answer_is_a_data_error(sandbox):
    odoo = connect(sandbox)
    read(odoo, "accounts")
    sandbox.fault("malformed", path="/odoo/19/json/2/account.move.line")
    with pytest.raises(DataError):
        read(odoo, "ledger_lines")


# -- recorded shapes (requests-mock) --------------------------------------------------------------

def mocked(requests_mock, version="17", protocol="jsonrpc"):
    config = {**mocks.config(), "protocol": protocol}
    mocks.register(requests_mock, mocks.BASE_URL)
    requests_mock.post(f"{mocks.BASE_URL}/xmlrpc/2/common",
                       text=(fixtures_of("odoo") / f"version_{version}.xml").read_text())
    return build(config, mocks.reference())


def test_read_group_months_come_from_range_then_from_the_english_label(requests_mock):
    odoo = mocked(requests_mock)
    group_answer = fixture("odoo", "read_group_17")
    requests_mock.post(f"{mocks.BASE_URL}/jsonrpc", json=group_answer)
    odoo.session._token, odoo.session._expires_at = "7", float("inf")  # logged in
    odoo.__dict__["chart"] = {11: {"code": "400000"}, 15: {"code": "700000"}, 16: {"code": "604000"}}
    found = odoo.grouped([], by_month=True)
    assert [(a, m, amount) for a, m, amount in found] == [
        (11, date(2024, 1, 1), Decimal("1210.0")), (15, date(2024, 1, 1), Decimal("-1000.0")),
        (16, date(2024, 2, 1), Decimal("460.83"))]
    sent = requests_mock.last_request.json()["params"]["args"]
    assert sent[4] == "read_group" and sent[6]["lazy"] is False and sent[6]["context"]["allowed_company_ids"] == [1]


@pytest.mark.parametrize("name, error_class, words", [
    ("fault_access_error", PermissionError, "Accounting / Auditor"),
    ("fault_wrong_database", ConfigError, "no database called bakkerij-janssens"),
])
def test_xmlrpc_faults_become_typed_errors(requests_mock, name, error_class, words):
    odoo = mocked(requests_mock, protocol="xmlrpc")
    requests_mock.post(f"{mocks.BASE_URL}/xmlrpc/2/object", text=(fixtures_of("odoo") / f"{name}.xml").read_text())
    odoo.session._token, odoo.session._expires_at = "7", float("inf")
    with pytest.raises(error_class) as caught:
        odoo.fields_of("account.move.line")
    assert words in caught.value.message and "Traceback" not in caught.value.message


def test_a_refused_authentication_is_a_reconnect(requests_mock):
    odoo = mocked(requests_mock, protocol="xmlrpc")
    # the protocol is chosen in the connection: no version call, straight to authenticate (False: refused)
    requests_mock.post(f"{mocks.BASE_URL}/xmlrpc/2/common",
                       text=(fixtures_of("odoo") / "authenticate_refused.xml").read_text())
    with pytest.raises(AuthError, match="API key"):
        odoo.check()
    assert requests_mock.call_count == 1  # a refused login is not tried again


def test_json2_errors_carry_odoos_exception(requests_mock):
    odoo = mocked(requests_mock, version="19", protocol="json2")
    requests_mock.post(f"{mocks.BASE_URL}/json/2/res.company/fields_get", status_code=403,
                       json=fixture("odoo", "json2_access_error"))
    with pytest.raises(PermissionError, match="Accounting / Auditor"):
        odoo.check()
    again = mocked(requests_mock, version="19", protocol="json2")
    requests_mock.post(f"{mocks.BASE_URL}/json/2/res.company/fields_get", status_code=401,
                       json=fixture("odoo", "json2_unauthorized"))
    with pytest.raises(AuthError) as caught:
        again.check()
    assert mocks.API_KEY not in caught.value.message and "Invalid apikey" in caught.value.message


def test_jsonrpc_access_denied_is_a_reconnect():
    error = odoo_error(**{"name": fixture("odoo", "jsonrpc_access_denied")["error"]["data"]["name"],
                          "code": 200, "text": "Access Denied"})
    assert isinstance(error, AuthError) and "Access Denied" in error.message


def test_the_fixture_chart_maps_account_types_and_unaffected_earnings(requests_mock):
    mocks.register(requests_mock, mocks.BASE_URL)
    odoo = build(mocks.config(), mocks.reference())
    records, _ = read(odoo, "accounts")
    assert {r.number: r.kind for r in records} == {"400000": "asset", "550000": "asset", "440000": "liability",
                                                   "451000": "liability", "700000": "income", "604000": "expense",
                                                   "999999": "equity"}
    sent = [json.loads(r.body) for r in requests_mock.request_history if r.path.endswith("account.account/search_read")]
    assert sent[0]["domain"] == [["company_ids", "in", [1]]]  # 18+: shared accounts
    lines, _ = read(odoo, "ledger_lines", window=mocks.window())
    usd = next(l for l in lines if l.source_id == "104")
    assert usd.dimensions == {"partner": "Meelfabriek Gent", "currency": "USD", "amount_currency": "500.0"}
    assert usd.amount == Decimal("460.83") and usd.reference == "BILL/2024/02/0001"



@pytest.mark.parametrize("server", [(17, "xmlrpc"), (19, "json2")], ids=lambda s: f"{s[0]}-{s[1]}")
def test_a_large_ledger_is_read_page_by_page(sandbox, server, monkeypatch):
    monkeypatch.setattr(package, "PAGE_SIZE", 150)
    monkeypatch.setattr(package, "ID_PAGE_SIZE", 400)
    monkeypatch.setattr(package, "GROUP_PAGE_SIZE", 100)
    odoo = connect(sandbox, server, book="c-1002")  # 2,000 lines
    lines, bookmark = read(odoo, "ledger_lines")
    ids = [line.source_id for line in lines]
    assert len(ids) == len(set(ids)) == len(book_lines(sandbox, "c-1002"))
    balances, _ = read(odoo, "balances")
    assert sum(b.amount for b in balances) == 0 and len({(b.account, b.period_end) for b in balances}) == len(balances)
    pages = sum(n for path, n in sandbox.stats()["calls"].items() if "odoo" in path)
    assert pages >= 2000 // 150 + 2000 // 400 + len(balances) // 100
    again, _ = read(connect(sandbox, server, book="c-1002"), "ledger_lines", bookmark)
    assert not any(isinstance(r, DeletedRecord) for r in again)


def test_read_group_labels_without_range_are_read_in_english(sandbox):
    sandbox.modes(odoo=["no_range"])
    odoo = connect(sandbox, (17, "jsonrpc"))
    balances, _ = read(odoo, "balances")
    expected = defaultdict(Decimal)
    for line in book_lines(sandbox, SMALL):
        expected[(line["account"], date.fromisoformat(line["date"]).replace(day=1))] += Decimal(line["amount"])
    assert {(b.account, b.period_start): b.amount for b in balances if b.amount} == \
        {k: v for k, v in expected.items() if v}


@pytest.mark.parametrize("answer, major", [({"server_version_info": ["saas~17", 4, 0, "final", 0, ""]}, 17),
                                           ({"server_version": "18.0+e"}, 18)])
def test_odoo_online_versions_are_read(requests_mock, answer, major):
    odoo = build({**mocks.config(), "protocol": "auto"}, mocks.reference())
    requests_mock.post(f"{mocks.BASE_URL}/xmlrpc/2/common", text=xmlrpc.client.dumps((answer,), methodresponse=True))
    assert odoo.version == major and odoo.protocol == "xmlrpc"


def shape(row):
    """Each key's JSON kind (a number is a number, ``false`` stands for an empty value of any kind)."""
    kinds = {bool: "empty", int: "number", float: "number", str: "text", list: "list", dict: "object"}
    return {key: kinds[type(value)] for key, value in row.items() if value is not False}


def test_the_emulator_answers_in_the_fixtures_shapes(sandbox):
    """The recorded-shape fixtures and the emulator agree key for key, kind for kind (Odoo 19, JSON-2;
    Odoo 17, JSON-RPC ``read_group``)."""
    headers = {"Authorization": f"bearer {KEY}", "X-Odoo-Database": emulator.DATABASE}

    def json2(model, method, **body):
        answer = requests.post(f"{sandbox.url}/odoo/19/json/2/{model}/{method}", json=body, headers=headers,
                               timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    context = {"allowed_company_ids": [1]}
    company = fixture("odoo", "res_company_search_read")[0]
    assert shape(json2("res.company", "search_read", domain=[], fields=list(company))[0]) == shape(company)
    account = fixture("odoo", "account_account_search_read")[0]
    assert shape(json2("account.account", "search_read", domain=[], fields=list(account), context=context)[0]) \
        == shape(account)
    line = fixture("odoo", "account_move_line_search_read")[3]  # a purchase: partner and reference
    purchase = [["ref", ">=", "P"], ["ref", "<", "Q"]]  # the sandbox numbers purchases P0000001...
    assert shape(json2("account.move.line", "search_read", domain=purchase, fields=list(line), context=context,
                       limit=1)[0]) == shape(line)
    group = fixture("odoo", "formatted_read_group_19")[0]
    assert shape(json2("account.move.line", "formatted_read_group", domain=[], groupby=["account_id", "date:month"],
                       aggregates=["balance:sum"], context=context)[0]) == shape(group)
    assert set(json2("res.users", "context_get")) >= set(fixture("odoo", "context_get"))
    assert set(fixture("odoo", "account_move_line_fields_get")) - {"analytic_distribution"} <= \
        set(json2("account.move.line", "fields_get", attributes=["type"]))

    args = [emulator.DATABASE, emulator.UID, KEY, "account.move.line", "read_group", [],
            {"domain": [], "fields": ["balance:sum"], "groupby": ["account_id", "date:month"], "lazy": False}]
    call = {"jsonrpc": "2.0", "method": "call", "id": 1,
            "params": {"service": "object", "method": "execute_kw", "args": args}}
    groups = requests.post(f"{sandbox.url}/odoo/17/jsonrpc", json=call, timeout=10).json()["result"]
    assert shape(groups[0]) == shape(fixture("odoo", "read_group_17")["result"][0])
    listed = requests.post(f"{sandbox.url}/odoo/www/json/2/odoo.database/list", json={},
                           headers={"Authorization": f"bearer {KEY}"}, timeout=10).json()
    assert set(listed[0]) == set(fixture("odoo", "odoo_database_list")[0])


@pytest.mark.parametrize("name, code, text, error_class, words", [
    ("builtins.KeyError", 1, "Traceback (most recent call last):\nKeyError: 'account.move.line'", ConfigError,
     "not installed"),
    ("odoo.exceptions.UserError", 2, "The operation cannot be completed", DataError, "(UserError)"),
    ("odoo.exceptions.AccessDenied", 3, "Access Denied", AuthError, "API key"),
    ("werkzeug.exceptions.Unauthorized", 401, "Invalid apikey", AuthError, "Invalid apikey"),
])
def test_odoo_exceptions_map_to_typed_errors_with_odoos_sentence(name, code, text, error_class, words):
    error = odoo_error(name, code, text)
    assert type(error) is error_class and words in error.message and "Traceback" not in error.message
    assert name.rsplit(".", 1)[-1] in error.detail
