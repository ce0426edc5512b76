"""QuickBooks Online: parsing over recorded-shape fixtures, the fixtures' field names against
Intuit's XSD, and the connector end to end against the sandbox (OAuth, full read, CDC deletes)."""
import re
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html import unescape

import pytest
import requests

from connectors.base import (
    AccountRecord, AuthError, BalanceRecord, ConnectorContext, DataError, DeletedRecord, FiscalYearRecord,
    LedgerLineRecord, StreamState, SyncWindow,
)
from connectors.http import build_client, secrets_for
from connectors.quickbooks import MAX_LINES_PER_TRANSACTION, QuickBooks, column_keys, fiscal_years, trial_balance
from connectors.emulation.books import entry_of
from connectors.quickbooks.emulator import realm_id
from tests.conftest import shared_path
from tests.connectors.mocks import fixture
from tests.connectors.mocks import quickbooks as mocks

KEY = "quickbooks"


def build(requests_mock=None, credentials=None, reference=mocks.REALM, config=None, saved=None):
    config = config or mocks.config()
    credentials = credentials or mocks.credentials()
    if requests_mock is not None:
        mocks.register(requests_mock, config["base_url"])
    http = build_client(QuickBooks.spec, secrets=secrets_for(QuickBooks.spec, config, credentials), sleep=lambda s: None)
    return QuickBooks(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http,
                                       save_credentials=saved.append if saved is not None else None))


def read(connector, stream, window=None, bookmark=None):
    state = StreamState(bookmark=bookmark)
    return list(connector.read(stream, state, window or mocks.window())), state


# --------------------------------------------------------------------------------------
# Unit tests over the fixtures
# --------------------------------------------------------------------------------------


def test_the_realm_from_the_callback_is_the_reference(requests_mock):
    assert QuickBooks.grant_details({"code": "x", "realmId": mocks.REALM}) == {"realm_id": mocks.REALM}
    for args in ({"code": "x"}, {"code": "x", "realmId": "company-1"}):
        with pytest.raises(AuthError, match="which company"):
            QuickBooks.grant_details(args)
    qbo = build(requests_mock, reference=None)
    [ref] = qbo.list_references()
    assert (ref.reference, ref.name) == (mocks.REALM, "Harbour Lights Bakery LLC")
    assert ref.details["fiscal_year_start_month"] == "January"
    assert "Harbour Lights Bakery LLC" in qbo.check().message
    assert requests_mock.last_request.qs["minorversion"] == ["75"]


def test_accounts_use_acctnum_else_id_and_include_inactive_ones(requests_mock):
    accounts, _ = read(build(requests_mock), "accounts")
    by_number = {a.number: a for a in accounts}
    assert set(by_number) == {"1000", "1100", "3000", "4000", "6000", "7", "6999"}
    assert by_number["7"].name == "Office Expenses:Office Supplies" and by_number["7"].kind == "expense"
    assert by_number["1000"].kind == "asset" and by_number["4000"].kind == "income"
    assert by_number["3000"].kind == "equity" and by_number["6999"].source_id == "90"
    statement = requests_mock.request_history[-1].qs["query"][0]
    assert "active in (true, false)" in statement and statement.endswith("startposition 1 maxresults 1000")


def test_account_query_pages_by_startposition(requests_mock):
    rows = fixture(KEY, "query_accounts")["QueryResponse"]["Account"]
    asked = []

    def page(request, context):
        found = re.search(r"startposition (\d+) maxresults (\d+)", request.qs["query"][0])
        start, size = int(found.group(1)), int(found.group(2))
        asked.append(start)
        chunk = rows[start - 1:start - 1 + size]
        return {"QueryResponse": {"Account": chunk, "startPosition": start, "maxResults": len(chunk)} if chunk else {}}

    qbo = build(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/{mocks.REALM}/query", json=page)
    qbo.page_size = 3
    accounts, _ = read(qbo, "accounts")
    assert len(accounts) == len(rows) == 7 and asked == [1, 4, 7]


def test_fiscal_years_follow_the_start_month():
    info = {"FiscalYearStartMonth": "April"}
    assert fiscal_years(info, date(2024, 2, 1), date(2024, 6, 30)) == [
        FiscalYearRecord(date(2023, 4, 1), date(2024, 3, 31)), FiscalYearRecord(date(2024, 4, 1), date(2025, 3, 31))]
    with pytest.raises(DataError):
        fiscal_years({"FiscalYearStartMonth": "Smarch"}, date(2024, 1, 1), date(2024, 1, 1))


def test_fiscal_years_of_the_window(requests_mock):
    years, _ = read(build(requests_mock), "fiscal_years")
    assert years == [FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31))]


def test_trial_balances_are_closing_for_the_balance_sheet_and_ytd_for_results(requests_mock):
    balances, _ = read(build(requests_mock), "balances")
    january = {b.account: b for b in balances if b.period_end == date(2024, 1, 31)}
    assert january["1000"] == BalanceRecord("1000", date(2024, 1, 31), Decimal("5000.00"), "closing")
    assert january["3000"].amount == Decimal("-3000.00") and january["3000"].basis == "closing"
    assert january["4000"] == BalanceRecord("4000", date(2024, 1, 31), Decimal("-3450.00"), "ytd")
    assert january["7"].basis == "ytd"
    assert sum(b.amount for b in balances if b.period_end == date(2024, 2, 29)) == 0
    asked = [r.qs for r in requests_mock.request_history if "trialbalance" in r.path.lower()]
    assert [(q["start_date"][0], q["end_date"][0]) for q in asked] == [("2024-01-01", "2024-01-31"),
                                                                       ("2024-01-01", "2024-02-29")]


def test_an_unbalanced_trial_balance_stops_the_sync(requests_mock):
    qbo = build(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/{mocks.REALM}/reports/TrialBalance",
                      json=fixture(KEY, "trial_balance_2024-03-31_unbalanced"))
    with pytest.raises(DataError, match="does not balance"):
        read(qbo, "balances", SyncWindow(date(2024, 3, 1), date(2024, 3, 31), (date(2024, 3, 31),)))


def test_general_ledger_rows_become_lines_with_stable_ids(requests_mock):
    lines, state = read(build(requests_mock), "ledger_lines")
    by_id = {line.source_id: line for line in lines}
    assert len(lines) == len(by_id) == 13  # beginning balances and totals are not lines
    assert by_id["Invoice:160:1"] == LedgerLineRecord(
        source_id="Invoice:160:1", booking_date=date(2024, 2, 7), account="1100", amount=Decimal("1250.50"),
        description="", reference="1038", journal="Invoice")
    assert [by_id[f"Invoice:160:{n}"].amount for n in (2, 3)] == [Decimal("-300.00"), Decimal("-950.50")]
    assert by_id["Purchase:151:2"].account == "7"  # a sub-account nested in its parent's section
    assert by_id["Purchase:175:1"].journal == "Credit Card Expense"
    assert by_id["JournalEntry:171:1"].description == "Owner top-up"
    for txn in {line.source_id.rsplit(":", 1)[0] for line in lines}:
        assert sum(line.amount for line in lines if line.source_id.startswith(txn + ":")) == 0, txn
    assert state.new_bookmark == {"since": "2024-03-05T18:00:00+00:00"}  # QuickBooks' clock, not ours
    asked = requests_mock.request_history[-1].qs
    assert asked["columns"] == ["tx_date,txn_type,doc_num,memo,debt_amt,credit_amt"]


#: titles a French-language company gets (Intuit localizes ColTitle); the number column untitled
FRENCH_TITLES = {"tx_date": "Date", "txn_type": "Type d'opération", "doc_num": "", "memo": "Mémo/Description",
                 "debt_amt": "Débit", "credit_amt": "Crédit"}


def retitled(report, titles):
    """``report`` with each column's title looked up by its ColType (None: the recorded titles)."""
    if titles is not None:
        for column in report["Columns"]["Column"]:
            column["ColTitle"] = titles.get(column["ColType"], "")
    return report


@pytest.mark.parametrize("titles", [None, FRENCH_TITLES, {}], ids=["documented", "localized", "untitled"])
def test_older_general_ledger_columns_named_only_by_coltype_give_the_same_lines(requests_mock, titles):
    """Intuit's documented GeneralLedger answer names columns in ColType (``tx_date``, ``debt_amt``), no MetaData."""
    expected, _ = read(build(requests_mock), "ledger_lines", SyncWindow(period_ends=(date(2024, 1, 31),)))
    legacy = retitled(fixture(KEY, "general_ledger_2024-01_legacy_columns"), titles)
    assert not any("MetaData" in column for column in legacy["Columns"]["Column"])
    qbo = build(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/{mocks.REALM}/reports/GeneralLedger", json=legacy)
    lines, _ = read(qbo, "ledger_lines", SyncWindow(period_ends=(date(2024, 1, 31),)))
    assert expected and lines == expected
    assert {line.source_id: (line.booking_date, line.amount, line.reference) for line in lines}["Deposit:148:1"] == (
        date(2024, 1, 15), Decimal("2250.00"), "D-1")


def test_column_keys_prefer_colkey_then_a_key_in_coltype_then_the_title():
    def keys(*columns):
        return column_keys({"Columns": {"Column": list(columns)}})

    assert keys({"ColTitle": "Montant", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "subt_nat_amount"}]},
                {"ColTitle": "Débit", "ColType": "debt_amt"},
                {"ColTitle": "Credit", "ColType": "credit_amt"},
                {"ColTitle": "", "ColType": "memo"}) == ["subt_nat_amount", "debt_amt", "credit_amt", "memo"]
    # ColumnTypeEnum values (Money, Account, String) name no column: the English title is the last resort
    assert keys({"ColTitle": "Debit", "ColType": "Money"}, {"ColTitle": "Credit", "ColType": "Money"},
                {"ColTitle": "Transaction Type", "ColType": "String"}) == ["debt_amt", "credit_amt", "txn_type"]
    assert keys({"ColTitle": "", "ColType": "Account"}, {"ColTitle": "Solde", "ColType": "Money"}) == ["Account", "Solde"]


@pytest.mark.parametrize("columns", [
    None,  # Intuit's documented answer: Account, Money "Debit", Money "Credit"
    [{"ColTitle": "", "ColType": "Account"}, {"ColTitle": "Débit", "ColType": "Money"},
     {"ColTitle": "Crédit", "ColType": "Money"}],
    [{"ColTitle": "", "ColType": "Account", "MetaData": [{"Name": "ColKey", "Value": "account_name"}]},
     {"ColTitle": "Soll", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "debt_amt"}]},
     {"ColTitle": "Haben", "ColType": "Money", "MetaData": [{"Name": "ColKey", "Value": "credit_amt"}]}],
], ids=["documented", "localized", "colkey"])
def test_trial_balance_columns_do_not_depend_on_their_titles(requests_mock, columns):
    accounts = build(requests_mock).accounts_by_id
    report = fixture(KEY, "trial_balance_2024-01-31")
    expected = trial_balance(report, date(2024, 1, 31), accounts)
    if columns is not None:
        report["Columns"]["Column"] = columns
    balances = {b.account: b.amount for b in trial_balance(report, date(2024, 1, 31), accounts)}
    assert balances == {b.account: b.amount for b in expected}
    assert balances["1000"] == Decimal("5000.00") and balances["4000"] == Decimal("-3450.00")


def test_a_recent_bookmark_reads_changed_months_and_deletes_from_cdc(requests_mock):
    qbo = build(requests_mock)
    bookmark = {"since": "2024-03-01T00:00:00+00:00"}
    lines, state = read(qbo, "ledger_lines", bookmark=bookmark)
    ledgers = [r.qs["start_date"][0] for r in requests_mock.request_history if "generalledger" in r.path.lower()]
    assert ledgers == ["2024-02-01"]  # only February holds a changed transaction
    assert {line.source_id.rsplit(":", 1)[0] for line in lines} >= {"Invoice:160"}
    cdc = next(r for r in requests_mock.request_history if r.path.endswith("/cdc"))
    assert "journalentry" in cdc.qs["entities"][0] and cdc.qs["changedsince"] == ["2024-03-01t00:00:00+00:00"]
    assert state.new_bookmark == {"since": "2024-03-06T18:00:00+00:00"}

    deleted, deleted_state = read(qbo, "deleted", bookmark=bookmark)
    ids = {record.source_id for record in deleted}
    assert all(isinstance(record, DeletedRecord) for record in deleted)
    assert {f"JournalEntry:171:{n}" for n in (1, 2, MAX_LINES_PER_TRANSACTION)} <= ids
    # Invoice 160 was changed: its three lines stay, any line it had beyond them goes
    assert "Invoice:160:3" not in ids and "Invoice:160:4" in ids
    assert deleted_state.new_bookmark == {"since": "2024-03-06T18:00:00+00:00"}


def test_an_old_bookmark_means_a_full_re_read_and_no_cdc(requests_mock):
    qbo = build(requests_mock)
    old = {"since": "2024-01-15T00:00:00+00:00"}  # 50 days before QuickBooks' clock: beyond CDC's window
    lines, state = read(qbo, "ledger_lines", bookmark=old)
    assert len(lines) == 13 and not any(r.path.endswith("/cdc") for r in requests_mock.request_history)
    deleted, deleted_state = read(qbo, "deleted", bookmark=old)
    assert deleted == [] and deleted_state.new_bookmark == {"since": "2024-03-05T18:00:00+00:00"}
    first, first_state = read(qbo, "deleted")
    assert first == [] and first_state.new_bookmark is not None


def test_intuit_faults_become_words_for_an_accountant(requests_mock):
    qbo = build(requests_mock)
    requests_mock.get(f"{mocks.BASE_URL}/{mocks.REALM}/reports/TrialBalance", status_code=400,
                      json=fixture(KEY, "fault_validation"))
    with pytest.raises(DataError) as caught:
        read(qbo, "balances")
    assert "QuickBooks Online says" in caught.value.message and "business reason" in caught.value.message
    requests_mock.get(f"{mocks.BASE_URL}/{mocks.REALM}/reports/TrialBalance", json=fixture(KEY, "fault_in_ok_answer"))
    with pytest.raises(DataError, match="QueryParserError"):
        read(qbo, "balances")
    response = requests.Response()
    response.status_code, response._content = 401, requests.compat.json.dumps(fixture(KEY, "fault_unauthorized")).encode()
    assert "expired or was revoked" in QuickBooks.error_message(response)


def test_a_401_renews_the_token_once_and_saves_the_rotated_refresh_token(requests_mock):
    saved = []
    qbo = build(requests_mock, saved=saved)
    info_url = f"{mocks.BASE_URL}/{mocks.REALM}/companyinfo/{mocks.REALM}"
    requests_mock.get(info_url, [{"status_code": 401, "json": fixture(KEY, "fault_unauthorized")},
                                 {"json": fixture(KEY, "companyinfo")}])
    requests_mock.post("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
                       json={"access_token": "qbo-at-new", "refresh_token": "qbo-rt-new", "token_type": "bearer",
                             "expires_in": 3600, "x_refresh_token_expires_in": 8726400})
    assert qbo.check().ok
    assert saved and saved[0]["refresh_token"] == "qbo-rt-new" and saved[0]["realm_id"] == mocks.REALM
    assert requests_mock.last_request.headers["Authorization"] == "Bearer qbo-at-new"


# --------------------------------------------------------------------------------------
# The fixtures use Intuit's field names (XSD in ../shared/specs/quickbooks)
# --------------------------------------------------------------------------------------

XS = "{http://www.w3.org/2001/XMLSchema}"


@pytest.fixture(scope="module")
def xsd_types():
    folder = shared_path("specs", "quickbooks")
    types = {}
    for name in ("IntuitBaseTypes.xsd", "Finance.xsd", "Report.xsd", "IntuitRestServiceDef.xsd"):
        for complex_type in ET.parse(folder / name).getroot().iter(XS + "complexType"):
            if complex_type.get("name"):
                types[complex_type.get("name")] = complex_type
    return types


def xsd_fields(types, name):
    """Element names and (JSON: bare) attribute names of an XSD complex type, with its base types."""
    complex_type, found = types[name], set()
    for extension in complex_type.iter(XS + "extension"):
        if extension.get("base") in types:
            found |= xsd_fields(types, extension.get("base"))
    found |= {e.get("name") for e in complex_type.iter(XS + "element") if e.get("name")}
    found |= {a.get("name") for a in complex_type.iter(XS + "attribute") if a.get("name")}
    return found


def assert_fields(types, type_name, obj):
    unknown = set(obj) - xsd_fields(types, type_name)
    assert not unknown, f"{type_name} fields not in Intuit's XSD: {sorted(unknown)}"


def report_rows_of(rows):
    for row in rows.get("Row", []):
        yield row
        if "Rows" in row:
            yield from report_rows_of(row["Rows"])


def check_report(types, report):
    assert_fields(types, "Report", report)
    assert_fields(types, "ReportHeader", report["Header"])
    for column in report["Columns"]["Column"]:
        assert_fields(types, "Column", column)
    for row in report_rows_of(report["Rows"]):
        assert_fields(types, "Row", row)
        for part in (row, row.get("Header") or {}, row.get("Summary") or {}):
            for cell in part.get("ColData", []):
                assert_fields(types, "ColData", cell)


def test_fixtures_use_the_xsd_field_names(xsd_types):
    info = fixture(KEY, "companyinfo")
    assert "time" in xsd_fields(xsd_types, "IntuitResponse")
    assert_fields(xsd_types, "CompanyInfo", info["CompanyInfo"])
    assert_fields(xsd_types, "ModificationMetaData", info["CompanyInfo"]["MetaData"])
    query = fixture(KEY, "query_accounts")["QueryResponse"]
    assert_fields(xsd_types, "QueryResponse", {k: v for k, v in query.items() if k != "Account"})
    for account in query["Account"]:
        assert_fields(xsd_types, "Account", account)
    for name in ("trial_balance_2024-01-31", "trial_balance_2024-02-29", "general_ledger_2024-01", "general_ledger_2024-02",
                 "general_ledger_2024-01_legacy_columns"):
        check_report(xsd_types, fixture(KEY, name))
    for response in fixture(KEY, "cdc")["CDCResponse"]:
        for query in response["QueryResponse"]:
            for entity, objects in query.items():
                if isinstance(objects, list):
                    for obj in objects:
                        assert_fields(xsd_types, entity, obj)
    for error in fixture(KEY, "fault_validation")["Fault"]["Error"]:
        assert_fields(xsd_types, "Error", error)


# --------------------------------------------------------------------------------------
# End to end against the sandbox
# --------------------------------------------------------------------------------------

REDIRECT = "http://127.0.0.1/oauth/callback"


def sandbox_config(sandbox):
    """The spec's sandbox configuration (what the console uses outside production) at this sandbox."""
    return QuickBooks.spec.sandbox_settings(sandbox.url)


def connect(sandbox, book):
    """Consent page -> pick the company -> callback (code, state, realmId) -> credentials."""
    config = sandbox_config(sandbox)
    url = QuickBooks.spec.auth.consent_url(QuickBooks, config, REDIRECT, "state-7")
    assert url.startswith(f"{sandbox.url}/quickbooks/connect/oauth2?") and "com.intuit.quickbooks.accounting" in url
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and book.spec.name in unescape(page.text)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = requests.post(url.split("?")[0], data={**{k: unescape(v) for k, v in fields.items()},
                                                    "realm": realm_id(book.spec.id), "decision": "allow"},
                           allow_redirects=False, timeout=10)
    query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", answer.headers["Location"]))
    assert query["state"] == "state-7"
    return QuickBooks.spec.auth.callback(QuickBooks, config, query, REDIRECT)


def sandbox_connector(sandbox, credentials, saved=None):
    config = sandbox_config(sandbox)
    http = build_client(QuickBooks.spec, secrets=secrets_for(QuickBooks.spec, config, credentials), sleep=lambda s: None)
    return QuickBooks(ConnectorContext(config=config, credentials=credentials, reference=credentials["realm_id"],
                                       http=http, save_credentials=saved.append if saved is not None else None))


def company(sandbox, name_start):
    return next(book for book in sandbox.state.books.values() if book.spec.name.startswith(name_start))


def test_oauth_flow_gives_the_realm_and_a_rotating_refresh_token(sandbox):
    book = company(sandbox, "Northwind")
    credentials = connect(sandbox, book)
    assert credentials["realm_id"] == realm_id(book.spec.id)
    assert credentials["expires_at"] - time.time() == pytest.approx(3600, abs=60)
    [ref] = sandbox_connector(sandbox, credentials).list_references()
    assert (ref.reference, ref.name) == (realm_id(book.spec.id), book.spec.name)
    saved = []
    expired = {**credentials, "expires_at": int(time.time()) - 5}
    assert sandbox_connector(sandbox, expired, saved).check().ok
    assert len(saved) == 1 and saved[0]["refresh_token"] != credentials["refresh_token"]
    with pytest.raises(AuthError, match="reconnect"):  # the old refresh token worked once
        sandbox_connector(sandbox, {**credentials, "access_token": "gone", "expires_at": 0}).check()


def test_full_read_of_every_stream_matches_the_books(sandbox):
    book = company(sandbox, "Janssens")  # fiscal years from April, 2,000 lines
    qbo = sandbox_connector(sandbox, connect(sandbox, book))
    window = SyncWindow(book.fiscal_years[0][0], book.fiscal_years[-1][1])
    assert list(qbo.read("fiscal_years", StreamState(), window)) == [FiscalYearRecord(s, e) for s, e in book.fiscal_years]
    accounts = list(qbo.read("accounts", StreamState(), window))
    assert all(isinstance(a, AccountRecord) for a in accounts)
    assert {(a.number, a.kind) for a in accounts} == {(a["number"], a["type"]) for a in book.accounts}
    state = StreamState()
    lines = list(qbo.read("ledger_lines", state, window))
    expected = list(book.all_lines())
    assert len(lines) == len({line.source_id for line in lines}) == len(expected)
    totals, got = {}, {}
    for line in expected:
        totals[line["account"]] = totals.get(line["account"], Decimal(0)) + Decimal(line["amount"])
    for line in lines:
        got[line.account] = got.get(line.account, Decimal(0)) + line.amount
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in totals.items() if v}
    assert sandbox.calls("/reports/GeneralLedger") == 24 and state.new_bookmark["since"].startswith("2025-01-01")
    # trial balances: year-to-date results and closing balance-sheet amounts that agree with the ledger
    kinds = {a["number"]: a["type"] for a in book.accounts}
    period_end = date(2023, 6, 30)
    balances = list(qbo.read("balances", StreamState(), SyncWindow(period_ends=(period_end,))))
    expected_tb = {}
    for line in expected:
        if date.fromisoformat(line["date"]) <= period_end:
            expected_tb[line["account"]] = expected_tb.get(line["account"], Decimal(0)) + Decimal(line["amount"])
    assert {b.account: b.amount for b in balances} == {k: v for k, v in expected_tb.items() if v}
    assert all(b.basis == ("closing" if kinds[b.account] in ("asset", "liability", "equity") else "ytd") for b in balances)


def test_changes_and_deletes_come_through_cdc(sandbox):
    book = company(sandbox, "Bakkerij")
    qbo = sandbox_connector(sandbox, connect(sandbox, book))
    window = SyncWindow(book.fiscal_years[0][0], book.fiscal_years[-1][1])
    first, first_deleted = StreamState(), StreamState()
    lines = {line.source_id: line for line in qbo.read("ledger_lines", first, window)}
    assert list(qbo.read("deleted", first_deleted, window)) == []
    changes = sandbox.mutate(book.spec.id, delete=1, change=1, add=1)
    gone = changes["deleted"]

    qbo = sandbox_connector(sandbox, qbo.credentials)
    again = StreamState(bookmark=first.new_bookmark)
    calls_before = sandbox.calls("/reports/GeneralLedger")
    changed = list(qbo.read("ledger_lines", again, window))
    read_months = sandbox.calls("/reports/GeneralLedger") - calls_before
    assert 1 <= read_months <= 3  # only the months of changed or added transactions
    doubled = [line for line in changed if line.description.endswith("(corrected)")]
    assert doubled and all(lines[line.source_id].amount * 2 == line.amount for line in doubled)
    deleted = {r.source_id for r in qbo.read("deleted", StreamState(bookmark=first_deleted.new_bookmark), window)}
    gone_transactions = {str(entry_of(line_id - 1) + 1) for line_id in gone}
    gone_lines = {sid for sid in lines if sid.split(":")[1] in gone_transactions}
    assert gone_lines and gone_lines <= deleted
    assert not deleted & {line.source_id for line in changed}
    assert again.new_bookmark["since"] > first.new_bookmark["since"]


def test_cdc_refuses_a_bookmark_older_than_30_days_so_the_connector_reads_everything(sandbox):
    book = company(sandbox, "Northwind")
    qbo = sandbox_connector(sandbox, connect(sandbox, book))
    window = SyncWindow(book.fiscal_years[0][0], book.fiscal_years[-1][1])
    clock = datetime.fromtimestamp(book.clock, timezone.utc)
    old = StreamState(bookmark={"since": (clock - timedelta(days=45)).isoformat()})
    assert len(list(qbo.read("ledger_lines", old, window))) == book.line_count
    assert sandbox.calls("/cdc") == 0
    with pytest.raises(DataError):  # the emulator refuses what Intuit refuses
        qbo.changes(clock - timedelta(days=45))


def test_legacy_report_columns_mode_reads_the_same_lines_and_balances(sandbox):
    """Mode ``legacy_report_columns``: keys only in ColType, French or empty titles; the connector reads the same books."""
    book = company(sandbox, "Northwind")
    credentials = connect(sandbox, book)
    window = SyncWindow(book.fiscal_years[0][0], book.fiscal_years[0][1])
    period_end = book.fiscal_years[0][1]
    default_lines = list(sandbox_connector(sandbox, credentials).read("ledger_lines", StreamState(), window))
    default_balances = list(sandbox_connector(sandbox, credentials).read(
        "balances", StreamState(), SyncWindow(period_ends=(period_end,))))

    sandbox.modes(quickbooks=["legacy_report_columns"])

    def columns(report, **params):
        answer = requests.get(f"{sandbox_config(sandbox)['base_url']}/{credentials['realm_id']}/reports/{report}",
                              headers={"Authorization": f"Bearer {credentials['access_token']}"}, timeout=10,
                              params={"start_date": window.start.isoformat(), "end_date": window.start.isoformat(),
                                      **params})
        return answer.json()["Columns"]["Column"]

    ledger = columns("GeneralLedger", columns="tx_date,txn_type,doc_num,memo,debt_amt,credit_amt")
    assert [c["ColType"] for c in ledger] == ["tx_date", "txn_type", "doc_num", "memo", "debt_amt", "credit_amt"]
    assert not any("MetaData" in c for c in ledger) and "Débit" in [c["ColTitle"] for c in ledger]
    assert [(c["ColType"], c["ColTitle"]) for c in columns("TrialBalance")] == [
        ("Account", ""), ("Money", "Débit"), ("Money", "Crédit")]

    qbo = sandbox_connector(sandbox, credentials)
    lines = list(qbo.read("ledger_lines", StreamState(), window))
    balances = list(qbo.read("balances", StreamState(), SyncWindow(period_ends=(period_end,))))
    in_year = [line for line in book.all_lines() if window.start <= date.fromisoformat(line["date"]) <= window.end]
    assert len(lines) == len(in_year) > 0 and lines == default_lines
    assert balances == default_balances and balances
