"""Xero and XeroTB over recorded-shape fixtures (connectors/xero/fixtures), no network."""
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from connectors.base import (
    AccountRecord, BalanceRecord, ConnectorContext, DataError, FiscalYearRecord, LedgerLineRecord, NotFoundError,
    PermissionError, RateLimited, StreamState, SyncWindow,
)
from connectors.http import build_client
from connectors.registry import ROOT as PACKAGES, get_connector
from connectors.xero import Xero, fiscal_years, parse_amount, parse_ms_date, parse_ms_datetime
from connectors.xero_tb import XeroTB, trial_balance

FIXTURES = PACKAGES / "xero" / "fixtures"
API = "https://api.xero.test/api.xro/2.0"
IDENTITY = "https://identity.xero.test"
TENANT = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
ACCESS_TOKEN = "xero-access-token-0123456789"
SECRET = "xero-client-secret-abcdef"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def connector(cls=Xero, reference=TENANT):
    config = {"client_id": "client-1", "client_secret": SECRET, "base_url": API, "identity_url": IDENTITY}
    credentials = {"access_token": ACCESS_TOKEN, "refresh_token": "xero-refresh-token-0123456789",
                   "expires_at": 4_000_000_000}
    http = build_client(cls.spec, secrets=[SECRET, ACCESS_TOKEN, credentials["refresh_token"]], sleep=lambda s: None)
    return cls(ConnectorContext(config=config, credentials=credentials, reference=reference, http=http))


@pytest.fixture
def xero_api(requests_mock):
    requests_mock.get(f"{IDENTITY}/connections", json=fixture("connections.json"))
    requests_mock.get(f"{API}/Organisation", json=fixture("organisation.json"))
    requests_mock.get(f"{API}/Accounts", json=fixture("accounts.json"))
    return requests_mock


# -- small parsers ----------------------------------------------------------------------

def test_ms_json_dates_become_dates_and_utc_datetimes():
    assert parse_ms_date("/Date(1539993600000+0000)/", "JournalDate") == date(2018, 10, 20)
    assert parse_ms_datetime("/Date(1541176243467+0000)/", "CreatedDateUTC") == datetime(
        2018, 11, 2, 16, 30, 43, 467000, tzinfo=timezone.utc)
    assert parse_ms_datetime("/Date(1552335214210)/", "DateTimeUTC").year == 2019


@pytest.mark.parametrize("value", ["2018-10-20", "/Date(abc)/", None, ""])
def test_a_bad_date_is_a_data_error_naming_the_field(value):
    with pytest.raises(DataError, match="JournalDate"):
        parse_ms_date(value, "JournalDate")


def test_amounts_from_numbers_and_report_strings_are_exact_decimals():
    assert parse_amount("1020.22", "YTD Credit") == Decimal("1020.22")
    assert parse_amount(Decimal("-28750.00"), "NetAmount") == Decimal("-28750.00")
    assert parse_amount(0.1, "NetAmount") == Decimal("0.1")
    assert parse_amount("", "YTD Debit") == Decimal("0")
    for bad in ("12,34x", "NaN", True):
        with pytest.raises(DataError, match="NetAmount"):
            parse_amount(bad, "NetAmount")


def test_fiscal_years_cover_the_window_from_the_year_end_day_and_month():
    organisation = {"FinancialYearEndDay": 31, "FinancialYearEndMonth": 3}
    assert fiscal_years(organisation, date(2023, 6, 1), date(2024, 5, 31)) == [
        FiscalYearRecord(date(2023, 4, 1), date(2024, 3, 31)),
        FiscalYearRecord(date(2024, 4, 1), date(2025, 3, 31)),
    ]
    # a 29 February year end is clamped in common years
    leap = {"FinancialYearEndDay": 29, "FinancialYearEndMonth": 2}
    assert fiscal_years(leap, date(2023, 1, 1), date(2023, 12, 31)) == [
        FiscalYearRecord(date(2022, 3, 1), date(2023, 2, 28)),
        FiscalYearRecord(date(2023, 3, 1), date(2024, 2, 29)),
    ]
    with pytest.raises(DataError, match="financial year end"):
        fiscal_years({"FinancialYearEndMonth": 3}, date(2024, 1, 1), date(2024, 1, 31))


# -- listing, tenant header, errors -------------------------------------------------------

def test_list_references_reads_connections_without_a_tenant_header(xero_api):
    refs = connector(reference=None).list_references()
    assert [(r.reference, r.name) for r in refs] == [
        (TENANT, "Harbour Bakery Ltd"), ("0d1e3c6a-4d5f-4a8b-9c2e-7f3a1b2c4d5e", "Kestrel Joinery Ltd")]
    request = xero_api.request_history[0]
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert "xero-tenant-id" not in request.headers


def test_an_organisation_without_tenant_name_is_named_from_its_organisation_record(requests_mock):
    connections = fixture("connections.json")
    for row in connections:  # some grants answer without tenantName, or with an empty one
        row.pop("tenantName")
    connections[1]["tenantName"] = ""
    requests_mock.get(f"{IDENTITY}/connections", json=connections)
    organisation = fixture("organisation.json")
    requests_mock.get(f"{API}/Organisation", json=lambda request, context: {"Organisations": [{
        **organisation["Organisations"][0],
        "Name": {TENANT: "Harbour Bakery Ltd"}.get(request.headers["xero-tenant-id"], "Kestrel Joinery Ltd")}]})
    refs = connector(reference=None).list_references()
    assert [(r.reference, r.name) for r in refs] == [
        (TENANT, "Harbour Bakery Ltd"), ("0d1e3c6a-4d5f-4a8b-9c2e-7f3a1b2c4d5e", "Kestrel Joinery Ltd")]


def test_an_organisation_whose_name_cannot_be_read_is_never_named_by_its_guid(requests_mock):
    connections = fixture("connections.json")
    del connections[0]["tenantName"]
    requests_mock.get(f"{IDENTITY}/connections", json=connections)
    requests_mock.get(f"{API}/Organisation", status_code=403, json=fixture("error_forbidden.json"))
    names = [r.name for r in connector(reference=None).list_references()]
    assert names[1] == "Kestrel Joinery Ltd"
    assert names[0] and TENANT not in names[0] and "Xero organisation" in names[0]


def test_every_data_call_sends_the_tenant_header(xero_api):
    xero = connector()
    list(xero.read("accounts", StreamState(), SyncWindow()))
    list(xero.read("fiscal_years", StreamState(), SyncWindow(date(2024, 4, 1), date(2024, 5, 31))))
    data_calls = [r for r in xero_api.request_history if "/api.xro/2.0/" in r.url]
    assert len(data_calls) == 2
    assert all(r.headers["xero-tenant-id"] == TENANT for r in data_calls)


def test_check_names_the_linked_organisation(xero_api):
    result = connector().check()
    assert result.ok and result.references == 2
    assert "Harbour Bakery" in result.message


def test_accounts_map_types_to_kinds_and_fall_back_to_the_account_id():
    pass_through = fixture("accounts.json")["Accounts"]
    from connectors.xero import account_record

    records = [account_record(row) for row in pass_through]
    by_name = {r.name: r for r in records}
    assert by_name["Sales"] == AccountRecord("200", "Sales", "income", pass_through[6]["AccountID"])
    assert by_name["Accounts Payable"].kind == "liability"
    assert by_name["General Expenses"].kind == "expense"
    assert by_name["Owner A Funds Introduced"].kind == "equity"
    bank = by_name["Business Current Account"]
    assert "Code" not in pass_through[0] and bank.number == pass_through[0]["AccountID"] and bank.kind == "asset"
    assert account_record({"AccountID": "x", "Code": "1", "Name": "New", "Type": "NEWTYPE", "Class": "REVENUE"}).kind == "income"


def test_a_disconnected_organisation_is_not_found(requests_mock):
    requests_mock.get(f"{IDENTITY}/connections", json=[])
    requests_mock.get(f"{API}/Accounts", status_code=403, json=fixture("error_forbidden.json"))
    with pytest.raises(NotFoundError, match="no longer connected"):
        list(connector().read("accounts", StreamState(), SyncWindow()))


def test_a_forbidden_call_on_a_connected_organisation_stays_a_permission_error(xero_api):
    xero_api.get(f"{API}/Accounts", status_code=403, json=fixture("error_forbidden.json"))
    with pytest.raises(PermissionError) as caught:
        list(connector().read("accounts", StreamState(), SyncWindow()))
    assert "Xero" in caught.value.message and ACCESS_TOKEN not in caught.value.message


def test_the_daily_limit_is_reported_as_daily(xero_api):
    xero_api.get(f"{API}/Accounts", status_code=429, headers={"Retry-After": "3600", "X-Rate-Limit-Problem": "day"})
    with pytest.raises(RateLimited) as caught:
        list(connector().read("accounts", StreamState(), SyncWindow()))
    assert caught.value.daily and caught.value.retry_after == 3600
    assert "daily" in caught.value.message


def test_a_validation_error_body_becomes_part_of_the_message(xero_api):
    xero_api.get(f"{API}/Accounts", status_code=400, json=fixture("error_validation.json"))
    with pytest.raises(DataError, match="A validation exception occurred"):
        list(connector().read("accounts", StreamState(), SyncWindow()))


# -- journals -------------------------------------------------------------------------------

def mount_journals(requests_mock):
    requests_mock.get(f"{API}/Journals?offset=0", json=fixture("journals_offset_0.json"))
    requests_mock.get(f"{API}/Journals?offset=100", json=fixture("journals_offset_100.json"))


def test_journals_page_by_journal_number_and_stop_on_a_short_page(requests_mock):
    mount_journals(requests_mock)
    state = StreamState()
    lines = list(connector().read("ledger_lines", state, SyncWindow()))
    pages = [r.qs.get("offset") for r in requests_mock.request_history]
    assert pages == [["0"], ["100"]]  # 100 + 3 journals: the short second page ends the read
    assert len(lines) == 103 * 2 and all(isinstance(line, LedgerLineRecord) for line in lines)
    assert state.new_bookmark == {"offset": 103}
    assert not any("If-Modified-Since" in r.headers for r in requests_mock.request_history)


def xero_journals_filter(journals):
    """A requests-mock answer for ``GET Journals`` filtering as Xero documents: JournalNumber greater
    than ``offset``, CreatedDateUTC at or after ``If-Modified-Since`` when sent, 100 at most."""
    from email.utils import parsedate_to_datetime

    def answer(request, context):
        offset = int(request.qs.get("offset", ["0"])[0])
        since = request.headers.get("If-Modified-Since")
        if since:
            try:
                since = datetime.fromisoformat(since)
            except ValueError:
                since = parsedate_to_datetime(since)
        chosen = [j for j in journals if j["JournalNumber"] > offset
                  and (since is None or parse_ms_datetime(j["CreatedDateUTC"], "") >= since)]
        return {"Journals": sorted(chosen, key=lambda j: j["JournalNumber"])[:100]}

    return answer


def backdated_journals():
    """150 journals whose CreatedDateUTC is not monotonic in JournalNumber: 120 and 121 were
    backdated (created a year before their neighbours), as backdated and converted journals are."""
    template = fixture("journals_offset_0.json")["Journals"]
    journals = []
    for number in range(1, 151):
        journal = json.loads(json.dumps(template[(number - 1) % 100]))
        created = 1_711_981_805_000 + number * 86_400_000 - (365 * 86_400_000 if number in (120, 121) else 0)
        journal.update(JournalNumber=number, JournalID=f"journal-{number}", CreatedDateUTC=f"/Date({created}+0000)/")
        journals.append(journal)
    return journals


def test_backdated_journals_are_all_read(requests_mock):
    journals = backdated_journals()
    requests_mock.get(f"{API}/Journals", json=xero_journals_filter(journals))
    state = StreamState()
    lines = list(connector().read("ledger_lines", state, SyncWindow()))
    assert {line.source_id.split(":")[0] for line in lines} == {j["JournalID"] for j in journals}
    assert len(lines) == sum(len(j["JournalLines"]) for j in journals)
    assert state.new_bookmark == {"offset": 150}


def test_backdated_journals_after_the_bookmark_are_read_on_the_next_sync(requests_mock):
    journals = backdated_journals()
    requests_mock.get(f"{API}/Journals", json=xero_journals_filter(journals))
    state = StreamState(bookmark={"offset": 100})
    lines = list(connector().read("ledger_lines", state, SyncWindow()))
    assert {line.source_id.split(":")[0] for line in lines} == {f"journal-{n}" for n in range(101, 151)}


def test_a_bookmark_that_filtered_by_creation_time_is_read_again_from_the_start(requests_mock):
    # bookmarks written while If-Modified-Since was sent may have skipped backdated journals
    journals = backdated_journals()
    requests_mock.get(f"{API}/Journals", json=xero_journals_filter(journals))
    state = StreamState(bookmark={"offset": 150, "since": "2024-08-29T14:30:05+00:00"})
    lines = list(connector().read("ledger_lines", state, SyncWindow()))
    assert requests_mock.request_history[0].qs["offset"] == ["0"]
    assert {line.source_id.split(":")[0] for line in lines} >= {"journal-120", "journal-121"}
    assert state.new_bookmark == {"offset": 150}


def test_journals_in_any_order_within_a_page_and_numbers_as_strings_are_read(requests_mock):
    page = fixture("journals_offset_100.json")
    page["Journals"].reverse()
    page["Journals"][0]["JournalNumber"] = str(page["Journals"][0]["JournalNumber"])
    requests_mock.get(f"{API}/Journals?offset=100", json=page)
    state = StreamState(bookmark={"offset": 100})
    lines = list(connector().read("ledger_lines", state, SyncWindow()))
    assert len(lines) == 6 and state.new_bookmark == {"offset": 103}


def test_journal_lines_become_ledger_lines():
    from connectors.xero import ledger_lines

    journals = fixture("journals_offset_0.json")["Journals"]
    invoice = journals[5]  # JournalNumber 6: a sales invoice with a tracking category
    debit, credit = ledger_lines(invoice)
    assert debit.source_id == f"{invoice['JournalID']}:{invoice['JournalLines'][0]['JournalLineID']}"
    assert debit.booking_date == date(2024, 4, 6)
    assert debit.amount == -credit.amount > 0  # NetAmount: debit positive
    assert debit.journal == "ACCREC" and debit.reference == "INV-0006" and debit.modified_at.tzinfo is not None
    assert (debit.account, credit.account) == ("610", "200") and credit.dimensions == {"Region": "North"}
    assert debit.dimensions == {} and debit.description == "Line 6"
    payment_debit, _ = ledger_lines(journals[1])  # JournalNumber 2: a receipt into the bank account
    assert payment_debit.account == journals[1]["JournalLines"][0]["AccountID"]  # no code: its AccountID


def test_journals_resume_from_the_bookmark_by_offset_alone(requests_mock):
    requests_mock.get(f"{API}/Journals?offset=100", json=fixture("journals_offset_100.json"))
    state = StreamState(bookmark={"offset": 100})
    lines = list(connector().read("ledger_lines", state, SyncWindow()))
    assert len(lines) == 6
    assert "If-Modified-Since" not in requests_mock.request_history[0].headers
    assert requests_mock.request_history[0].headers["xero-tenant-id"] == TENANT


def test_nothing_new_keeps_the_bookmark(requests_mock):
    requests_mock.get(f"{API}/Journals?offset=103", json={"Journals": []})
    state = StreamState(bookmark={"offset": 103})
    assert list(connector().read("ledger_lines", state, SyncWindow())) == []
    assert state.new_bookmark is None


def test_a_bad_journal_date_fails_the_read(requests_mock):
    page = fixture("journals_offset_100.json")
    page["Journals"][1]["JournalDate"] = "2024-05-12"
    requests_mock.get(f"{API}/Journals?offset=0", json=page)
    with pytest.raises(DataError, match="JournalDate"):
        list(connector().read("ledger_lines", StreamState(), SyncWindow()))


def test_journals_going_backwards_fail_instead_of_looping(requests_mock):
    page = fixture("journals_offset_0.json")
    requests_mock.get(f"{API}/Journals?offset=0", json=page)
    requests_mock.get(f"{API}/Journals?offset=100", json=page)
    with pytest.raises(DataError, match="out of order"):
        list(connector().read("ledger_lines", StreamState(), SyncWindow()))


# -- XeroTB ----------------------------------------------------------------------------------

def test_trial_balance_gives_ytd_results_and_closing_balance_sheet_balances():
    from connectors.xero import account_record

    accounts = fixture("accounts.json")["Accounts"]
    records = trial_balance(fixture("trial_balance_2024-05-31.json"), date(2024, 5, 31),
                            {a["AccountID"]: account_record(a) for a in accounts})
    assert all(r.period_end == date(2024, 5, 31) for r in records)
    basis = {r.account: r.basis for r in records}
    assert basis["200"] == basis["429"] == "ytd" and basis["610"] == basis["800"] == "closing"
    assert sum(r.amount for r in records) == 0
    # without the chart, the section says which accounts are on the balance sheet
    bare = {r.account: r.basis for r in trial_balance(fixture("trial_balance_2024-05-31.json"), date(2024, 5, 31), {})}
    assert bare["200"] == "ytd" and bare["610"] == "closing"
    # the YTD of the sales account equals the sum of its journal lines up to the date
    journals = fixture("journals_offset_0.json")["Journals"] + fixture("journals_offset_100.json")["Journals"]
    sales = sum(Decimal(str(line["NetAmount"])) for j in journals for line in j["JournalLines"]
                if line.get("AccountCode") == "200")
    assert {r.account: r.amount for r in records}["200"] == sales < 0
    assert accounts[0]["AccountID"] in {r.account for r in records}


def test_an_unbalanced_trial_balance_is_a_data_error():
    with pytest.raises(DataError) as caught:
        trial_balance(fixture("trial_balance_2024-03-31_unbalanced.json"), date(2024, 3, 31), {})
    assert caught.value.message == (
        "Xero's trial balance at 2024-03-31 does not balance: debits exceed credits by 12.00")


def test_xero_tb_reads_one_trial_balance_per_period_end(xero_api):
    for day in ("2024-04-30", "2024-05-31"):
        xero_api.get(f"{API}/Reports/TrialBalance?date={day}", json=fixture(f"trial_balance_{day}.json"))
    xero_tb = connector(XeroTB)
    window = SyncWindow(date(2024, 4, 1), date(2024, 5, 31), (date(2024, 5, 31), date(2024, 4, 30)))
    records = list(xero_tb.read("balances", StreamState(), window))
    assert {r.period_end for r in records} == {date(2024, 4, 30), date(2024, 5, 31)}
    assert all(isinstance(r, BalanceRecord) for r in records)
    assert {r.basis for r in records} == {"ytd", "closing"}
    dates = [r.qs["date"] for r in xero_api.request_history if "TrialBalance" in r.url]
    assert dates == [["2024-04-30"], ["2024-05-31"]]
    assert [s.name for s in XeroTB.streams] == ["fiscal_years", "accounts", "balances"]


def test_an_account_that_left_the_trial_balance_comes_back_as_zero(xero_api):
    may = fixture("trial_balance_2024-05-31.json")
    sections = may["Reports"][0]["Rows"]
    expenses = next(row for row in sections if row.get("Title") == "Expenses")
    dropped = expenses["Rows"].pop()  # General Expenses (429): balance back to zero...
    equity = next(row for row in sections if row.get("Title") == "Equity")["Rows"][0]["Cells"]
    moved = Decimal(dropped["Cells"][3]["Value"] or 0) - Decimal(dropped["Cells"][4]["Value"] or 0)
    ytd_debit = Decimal(equity[3]["Value"] or 0) - Decimal(equity[4]["Value"] or 0) + moved  # ...moved to equity
    equity[3]["Value"], equity[4]["Value"] = (f"{ytd_debit:.2f}", "") if ytd_debit > 0 else ("", f"{-ytd_debit:.2f}")
    xero_api.get(f"{API}/Reports/TrialBalance?date=2024-04-30", json=fixture("trial_balance_2024-04-30.json"))
    xero_api.get(f"{API}/Reports/TrialBalance?date=2024-05-31", json=may)
    window = SyncWindow(date(2024, 4, 1), date(2024, 5, 31), (date(2024, 4, 30), date(2024, 5, 31)))
    records = list(connector(XeroTB).read("balances", StreamState(), window))
    assert BalanceRecord("429", date(2024, 5, 31), Decimal(0), basis="ytd") in records


def test_both_keys_are_registered_dossier_level_oauth_with_rotating_tokens():
    for key, cls in (("xero", Xero), ("xero_tb", XeroTB)):
        assert get_connector(key) is cls
        assert cls.spec.level == "dossier" and cls.spec.oauth.rotating_refresh_token and cls.spec.oauth.pkce
        assert cls.spec.rate_budget.per_minute == 60 and cls.spec.rate_budget.concurrency == 5
    assert XeroTB.spec.oauth_app == "xero" and XeroTB.spec.sandbox_config == Xero.spec.sandbox_config
    assert "ledger_lines" not in [s.name for s in XeroTB.streams]


def test_a_refused_token_is_renewed_once_at_the_identity_url_and_the_call_sent_again(xero_api):
    xero_api.post(f"{IDENTITY}/connect/token", json={
        "access_token": "xero-access-token-renewed", "refresh_token": "xero-refresh-token-2", "expires_in": 1800})
    xero_api.get(f"{API}/Accounts", [{"status_code": 401, "json": fixture("error_unauthorized.json")},
                                     {"json": fixture("accounts.json")}])
    xero = connector()
    assert list(xero.read("accounts", StreamState(), SyncWindow()))
    calls = [r for r in xero_api.request_history if r.path.endswith("/accounts")]
    assert [r.headers["Authorization"] for r in calls] == [f"Bearer {ACCESS_TOKEN}", "Bearer xero-access-token-renewed"]
    assert xero.credentials["refresh_token"] == "xero-refresh-token-2"
