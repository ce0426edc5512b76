"""AFAS: the connector on requests-mock and the fixtures (the vendor's ``{"skip", "take", "rows"}`` answers), and
against the sandbox's emulator on 127.0.0.1."""
import base64
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors import afas as package
from connectors.afas import Afas, token_header
from connectors.base import (
    AuthError, ConfigError, ConnectorContext, DataError, DeletedRecord, FiscalYearRecord, RateLimited, StreamState,
    SyncWindow, TransientError,
)
from connectors.http import build_client, secrets_for
from tests.connectors.mocks import afas as mocks
from tests.connectors.mocks import fixture

BASE = mocks.BASE_URL
WINDOW = mocks.window()


def connector(config=None, reference=mocks.ADMINISTRATION, sleeps=None):
    config = {**mocks.config(), **(config or {})}
    http = build_client(Afas.spec, secrets=secrets_for(Afas.spec, config), sleep=(sleeps if sleeps is not None
                                                                                  else []).append)
    return Afas(ConnectorContext(config=config, credentials={}, reference=reference, http=http))


def read(afas, stream, bookmark=None, window=WINDOW):
    state = StreamState(bookmark=bookmark)
    return list(afas.read(stream, state, window)), state


def query(request):
    return {key: values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}


def last_query(mocked, getconnector):
    return query([r for r in mocked.request_history if urlsplit(r.url).path.endswith(f"/{getconnector}")][-1])


@pytest.fixture
def mocked(requests_mock):
    mocks.register(requests_mock, BASE)
    return requests_mock


# -- auth and hosts -------------------------------------------------------------------------------------


def test_the_token_goes_base64_encoded_whatever_shape_the_firm_pasted():
    xml = mocks.TOKEN
    encoded = base64.b64encode(xml.encode()).decode()
    assert token_header(xml) == f"AfasToken {encoded}"
    assert token_header(f"  {encoded}\n") == f"AfasToken {encoded}"  # already base64
    assert token_header(f"{encoded[:40]}\n{encoded[40:]}") == f"AfasToken {encoded}"  # base64 wrapped in a mail
    data = xml.split("<data>")[1].split("</data>")[0]
    assert token_header(data) == f"AfasToken {encoded}"  # the data part alone


def test_every_call_carries_the_afastoken_header_and_the_encoded_token_is_a_secret(mocked):
    afas = connector()
    assert afas.check().ok
    sent = mocked.request_history[0].headers["Authorization"]
    assert sent == token_header(mocks.TOKEN)
    assert sent.split(" ", 1)[1] in afas.http.secrets


@pytest.mark.parametrize("kind, host", [("production", "rest"), ("test", "resttest"), ("accept", "restaccept")])
def test_the_host_follows_the_environment_number_and_type(kind, host):
    afas = connector({"base_url": None, "environment_type": kind, "environment_id": "O12345AA"})
    assert afas.base_url == f"https://12345.{host}.afas.online/ProfitRestServices"


def test_a_connection_without_environment_number_is_a_config_error():
    with pytest.raises(ConfigError, match="environment number"):
        connector({"base_url": None, "environment_id": ""}).base_url


def test_a_missing_token_is_a_config_error(mocked):
    with pytest.raises(ConfigError, match="token"):
        connector({"token": ""}).check()


# -- references and streams on the fixtures -------------------------------------------------------------


def test_administrations_are_the_references(mocked):
    afas = connector()
    references = afas.list_references()
    assert [(r.reference, r.name, r.details["code"]) for r in references] == [
        ("1", "Highpro BV", "01"), ("2", "Highpro Holding BV", "02")]
    assert afas.check().message == "Connected to AFAS: 2 administrations available."
    assert afas.lookup_reference("2").name == "Highpro Holding BV"


def test_fiscal_years_span_the_period_table(mocked):
    years, _ = read(connector(), "fiscal_years")
    assert years == [FiscalYearRecord(date(2024, 1, 1), date(2024, 12, 31))]
    assert last_query(mocked, "Profit_periods_per_administration") == {
        "skip": "0", "take": "1000", "orderbyfieldids": "Year,Period", "filterfieldids": "Unit", "filtervalues": "1",
        "operatortypes": "1"}


def test_accounts_take_their_kind_from_the_sort_code(mocked):
    accounts, _ = read(connector(), "accounts")
    assert [(a.number, a.name, a.kind) for a in accounts][:4] == [
        ("1100", "Bank ING", "asset"), ("1300", "Debiteuren", "asset"), ("1600", "Crediteuren", "liability"),
        ("1710", "Af te dragen btw hoog", "other")]
    assert len(accounts) == 6


def test_a_chart_carrying_unitid_is_narrowed_to_the_administration(requests_mock):
    rows = [{"UnitId": 1, "Account": "1000", "Description": "Kas"},
            {"UnitId": 2, "Account": "1001", "Description": "Bank"},
            {"UnitId": 1, "Account": "1000", "Description": "Kas (double)"}]
    requests_mock.get(f"{BASE}/connectors/Profit_Accounts", json={"skip": 0, "take": 1000, "rows": rows})
    accounts, _ = read(connector(), "accounts")
    assert [(a.number, a.name) for a in accounts] == [("1000", "Kas")]


def test_balances_are_period_movements_with_period_zero_in_the_first_period(mocked):
    balances, _ = read(connector(), "balances")
    by_key = {(b.account, b.period_end): b for b in balances}
    assert by_key[("1100", date(2024, 1, 31))].amount == Decimal("8185.00")  # opening 10,000 (period 0) - 1,815
    assert by_key[("1710", date(2024, 1, 31))].amount == Decimal("-105.00")  # two rows of one period add up
    assert by_key[("1100", date(2024, 2, 29))].amount == Decimal("2420.00")
    assert all(b.basis == "movement" for b in balances)
    assert by_key[("1300", date(2024, 2, 29))].period_start == date(2024, 2, 1)


def test_balances_after_the_window_are_left_out_those_before_it_kept_for_the_opening(mocked):
    balances, _ = read(connector(), "balances", window=SyncWindow(date(2024, 2, 1), date(2024, 2, 28)))
    assert {b.period_end for b in balances} == {date(2024, 1, 31)}


def test_ledger_lines_are_debit_minus_credit_in_their_booking_period(mocked):
    lines, state = read(connector(), "ledger_lines")
    assert len(lines) == 8 and sum(line.amount for line in lines) == 0
    first = lines[0]
    assert (first.source_id, first.account, first.amount, first.booking_date, first.booking_period_end) == (
        "2024-101-1", "1300", Decimal("2420.00"), date(2024, 1, 15), date(2024, 1, 31))
    assert (first.journal, first.reference, first.description) == ("70", "24700001", "Factuur 24700001")
    assert lines[1].dimensions == {"vat_code": "1", "invoice": "24700001"}
    rent = lines[3]  # booked on 31 January, entered in February: the period decides
    assert rent.booking_period_end == date(2024, 1, 31) and rent.modified_at.isoformat() == "2024-02-01T08:00:03+00:00"
    empty = lines[6]  # AFAS sends empty fields as null
    assert (empty.amount, empty.description, empty.dimensions) == (Decimal("2420.00"), "", {})
    assert state.new_bookmark == {"stamp": "2024-02-05T14:31:09Z"}
    assert last_query(mocked, "Profit_Transactions") == {
        "skip": "0", "take": "1000", "orderbyfieldids": "Modified,EntryNo,SeqNo", "filterfieldids": "UnitId",
        "filtervalues": "1", "operatortypes": "1"}


def test_an_incremental_read_filters_on_modified_from_the_bookmark(mocked):
    read(connector(), "ledger_lines", bookmark={"stamp": "2024-02-01T08:00:03Z"})
    sent = last_query(mocked, "Profit_Transactions")
    assert (sent["filterfieldids"], sent["filtervalues"], sent["operatortypes"]) == (
        "UnitId,Modified", "1,2024-02-01T08:00:03Z", "1,2")


def test_deleted_lines_come_from_the_log_connector_with_the_lines_keys(mocked):
    deleted, state = read(connector(), "deleted_lines")
    assert deleted == [DeletedRecord("2024-99-1"), DeletedRecord("2024-99-2")]
    assert state.new_bookmark == {"stamp": "2024-02-02T10:00:00Z"}
    assert "orderbyfieldids=Deleted%2CEntryNo%2CSeqNo" in mocked.request_history[-1].url


def test_without_a_deleted_connector_no_call_is_made(mocked):
    deleted, state = read(connector({"deleted_connector": ""}), "deleted_lines")
    assert deleted == [] and state.new_bookmark is None and mocked.call_count == 0


def test_custom_getconnector_ids_replace_the_standard_ones(requests_mock):
    requests_mock.get(f"{BASE}/connectors/Firm_Mutaties", json=fixture("afas", "transactions"))
    requests_mock.get(f"{BASE}/connectors/Firm_Perioden", json=fixture("afas", "periods"))
    afas = connector({"transactions_connector": "Firm_Mutaties", "periods_connector": "Firm_Perioden"})
    lines, _ = read(afas, "ledger_lines")
    assert len(lines) == 8
    assert {urlsplit(r.url).path.rsplit("/", 1)[-1] for r in requests_mock.request_history} == {
        "Firm_Mutaties", "Firm_Perioden"}


# -- paging ---------------------------------------------------------------------------------------------


def paged(name):
    """A GetConnector answering fixture ``name`` page by page (``skip``/``take``)."""
    rows = fixture("afas", name)["rows"]

    def answer(request, context):
        skip, take = int(query(request)["skip"]), int(query(request)["take"])
        return {"skip": skip, "take": take, "rows": rows[skip: skip + take]}
    return answer


class Mutaties:
    """A Profit_Transactions that honours the filters, the order and skip/take; ``on_page`` runs after each page."""

    def __init__(self, rows, on_page=None):
        self.rows, self.on_page, self.pages = [dict(r) for r in rows], on_page, []

    def __call__(self, request, context):
        args = query(request)
        rows = [r for r in self.rows if str(r["UnitId"]) == args["filtervalues"].split(",")[0]]
        if "," in args["filtervalues"]:
            rows = [r for r in rows if r["Modified"] >= args["filtervalues"].split(",")[1]]
        rows.sort(key=lambda r: (r["Modified"], r["EntryNo"], r["SeqNo"]))
        skip, take = int(args["skip"]), int(args["take"])
        page = [dict(r) for r in rows[skip: skip + take]]  # as sent, before any later change
        self.pages.append((args.get("filtervalues"), skip, [(r["EntryNo"], r["SeqNo"]) for r in page]))
        if self.on_page:
            self.on_page(self, len(self.pages))
        return {"skip": skip, "take": take, "rows": page}


@pytest.mark.parametrize("changed", [(101, 1), (102, 1)], ids=["read-before-the-last-stamp", "of-the-last-stamp"])
def test_pages_restart_from_the_last_stamp_so_a_row_changed_mid_read_shifts_nothing_out_of_sight(
        requests_mock, monkeypatch, changed):
    monkeypatch.setattr(package, "PAGE_SIZE", 4)
    rows = fixture("afas", "transactions")["rows"]

    def change_a_read_row(mutaties, page):
        if page == 1:  # a line read on page 1 is corrected in Profit: it moves to the end
            row = next(r for r in mutaties.rows if (r["EntryNo"], r["SeqNo"]) == changed)
            row.update(Modified="2024-03-01T12:00:00Z", AmtDebit=2500.0, AmtCredit=0.0)

    mutaties = Mutaties(rows, change_a_read_row)
    requests_mock.get(f"{BASE}/connectors/Profit_Transactions", json=mutaties)
    requests_mock.get(f"{BASE}/connectors/Profit_periods_per_administration", json=paged("periods"))
    lines, state = read(connector(), "ledger_lines")
    # a plain skip=4 would now pass over one unread line; the stamp restart sees every line
    assert {line.source_id for line in lines} == {f"2024-{r['EntryNo']}-{r['SeqNo']}" for r in rows}
    assert mutaties.pages[1][:2] == ("1,2024-02-01T08:00:03Z", 0)  # >= page 1's last stamp, from its first row
    again = [line.amount for line in lines if line.source_id == "2024-%d-%d" % changed]
    assert again[-1] == Decimal("2500.00") and len(again) == 2  # read before the change, then after it
    assert len(lines) == len(rows) + 1
    assert state.new_bookmark == {"stamp": "2024-03-01T12:00:00Z"}


def test_rows_sharing_one_stamp_across_pages_are_skipped_by_count(requests_mock, monkeypatch):
    monkeypatch.setattr(package, "PAGE_SIZE", 2)
    rows = [{**r, "Modified": "2024-05-01T00:00:00Z"} for r in fixture("afas", "transactions")["rows"]]
    mutaties = Mutaties(rows)
    requests_mock.get(f"{BASE}/connectors/Profit_Transactions", json=mutaties)
    requests_mock.get(f"{BASE}/connectors/Profit_periods_per_administration", json=paged("periods"))
    lines, _ = read(connector(), "ledger_lines")
    assert len({line.source_id for line in lines}) == len(lines) == 8
    assert [skip for _, skip, _ in mutaties.pages] == [0, 2, 4, 6, 8]


def test_a_getconnector_repeating_its_page_is_stopped(requests_mock, monkeypatch):
    monkeypatch.setattr(package, "PAGE_SIZE", 2)
    page = {"skip": 0, "take": 2, "rows": fixture("afas", "accounts")["rows"][:2]}
    requests_mock.get(f"{BASE}/connectors/Profit_Accounts", json=page)
    with pytest.raises(DataError, match="loop"):
        read(connector(), "accounts")


# -- errors ---------------------------------------------------------------------------------------------


def test_maintenance_defers_until_afas_says(requests_mock):
    requests_mock.get(f"{BASE}/connectors/Profit_Administrations", status_code=503,
                      json=fixture("afas", "maintenance_503"), headers={"Retry-After": "7200"})
    with pytest.raises(RateLimited) as caught:
        connector().check()
    assert caught.value.retry_after == 7200 and not caught.value.daily
    assert "scheduled maintenance" in caught.value.message
    assert requests_mock.call_count == 1


def test_a_plain_503_is_retried_as_any_5xx(requests_mock):
    requests_mock.get(f"{BASE}/connectors/Profit_Administrations", status_code=503, text="")
    with pytest.raises(TransientError):
        connector().check()
    assert requests_mock.call_count == 4


def test_a_500_quotes_afas_external_message(requests_mock):
    requests_mock.get(f"{BASE}/connectors/Profit_Administrations", status_code=500, json=fixture("afas", "error_500"))
    with pytest.raises(TransientError) as caught:
        connector().check()
    assert "AFAS says: “Filter is ongeldig: het veld 'Modified' komt niet voor in deze GetConnector.”" in \
        caught.value.message


def test_a_refused_getconnector_is_named_and_needs_a_reconnect(requests_mock):
    requests_mock.get(f"{BASE}/connectors/Profit_Administrations", status_code=401, text="")
    with pytest.raises(AuthError) as caught:
        connector().check()
    assert "GetConnector Profit_Administrations" in caught.value.message and "reconnect" in caught.value.message
    assert requests_mock.call_count == 1
    assert mocks.TOKEN not in caught.value.message and "AfasToken" not in caught.value.message


@pytest.mark.parametrize("body", [{"skip": 0, "take": 100}, {"skip": 0, "take": 100, "rows": {"a": 1}},
                                  [1, 2], {"rows": [1]}])
def test_an_answer_without_rows_is_a_data_error_naming_the_getconnector(requests_mock, body):
    requests_mock.get(f"{BASE}/connectors/Profit_Accounts", json=body)
    with pytest.raises(DataError, match="GetConnector Profit_Accounts"):
        read(connector(), "accounts")


def test_an_unreadable_row_is_a_data_error_naming_the_stream(mocked, requests_mock):
    rows = fixture("afas", "transactions")["rows"]
    rows[0]["EntryDate"] = "vandaag"
    requests_mock.get(f"{BASE}/connectors/Profit_Transactions", json={"skip": 0, "take": 1000, "rows": rows})
    with pytest.raises(DataError, match="entry date"):
        read(connector(), "ledger_lines")
    requests_mock.get(f"{BASE}/connectors/Profit_Transactions", text='{"skip": 0, "rows": [')
    with pytest.raises(DataError, match="could not read"):
        read(connector(), "ledger_lines")


def test_a_row_without_its_stamp_is_refused(mocked, requests_mock):
    rows = fixture("afas", "transactions")["rows"]
    del rows[2]["Modified"]
    requests_mock.get(f"{BASE}/connectors/Profit_Transactions", json={"skip": 0, "take": 1000, "rows": rows})
    with pytest.raises(DataError, match="without Modified"):
        read(connector(), "ledger_lines")


def test_a_balance_in_a_year_without_periods_is_refused(mocked, requests_mock):
    rows = fixture("afas", "period_balance")["rows"]
    rows[1]["Year"] = 2019
    requests_mock.get(f"{BASE}/connectors/Profit_Period_balance", json={"skip": 0, "take": 1000, "rows": rows})
    with pytest.raises(DataError, match="2019 period 1"):
        read(connector(), "balances")


def test_an_unlinked_dossier_is_a_config_error(mocked):
    with pytest.raises(ConfigError, match="not linked"):
        read(connector(reference=None), "ledger_lines")


# -- against the sandbox's emulator ---------------------------------------------------------------------


def sandbox_connector(sandbox, reference):
    config = Afas.spec.sandbox_settings(sandbox.url)
    http = build_client(Afas.spec, secrets=secrets_for(Afas.spec, config), sleep=lambda seconds: None)
    return Afas(ConnectorContext(config=config, credentials={}, reference=reference, http=http))


def test_the_sandbox_serves_every_company_as_an_administration_with_its_whole_ledger(sandbox):
    afas = sandbox_connector(sandbox, "1002")
    assert {r.reference: r.name for r in afas.list_references()}["1002"] == "Janssens & Co Architecten"
    book = sandbox.state.books["c-1002"]
    lines, state = read(afas, "ledger_lines", window=SyncWindow())
    assert len(lines) == book.line_count == 2000  # two full pages of 1,000 and an empty one
    assert sandbox.calls("/connectors/Profit_Transactions") == 3
    years, _ = read(afas, "fiscal_years", window=SyncWindow())
    assert [(y.start, y.end) for y in years] == book.fiscal_years  # fiscal years from April
    balances, _ = read(afas, "balances", window=SyncWindow())
    from_lines = {}
    for line in lines:
        key = (line.account, line.booking_period_end)
        from_lines[key] = from_lines.get(key, Decimal(0)) + line.amount
    assert {(b.account, b.period_end): b.amount for b in balances} == {k: v for k, v in from_lines.items() if v}
    accounts, _ = read(afas, "accounts", window=SyncWindow())
    assert {line.account for line in lines} <= {a.number for a in accounts}

    changes = sandbox.mutate("c-1002", add=1, change=1, delete=1)
    night, _ = read(afas, "ledger_lines", bookmark=state.new_bookmark, window=SyncWindow())
    assert len(night) < 20 and len(changes["added"]) + len(changes["changed"]) <= len(night)
    deleted, deleted_state = read(afas, "deleted_lines", window=SyncWindow())
    assert len(deleted) == len(changes["deleted"]) > 0
    assert {d.source_id for d in deleted} <= {line.source_id for line in lines}
    assert read(afas, "deleted_lines", bookmark=deleted_state.new_bookmark, window=SyncWindow())[0] == deleted


def test_the_sandbox_chart_is_per_administration_in_the_unitid_variant(sandbox):
    afas = sandbox_connector(sandbox, "1003")
    sandbox.modes(afas=["accounts_with_unit"])
    accounts, _ = read(afas, "accounts", window=SyncWindow())
    assert sorted(a.number for a in accounts) == sorted(a["number"] for a in sandbox.state.books["c-1003"].accounts)


def test_the_sandbox_answers_100_rows_without_take_and_refuses_a_revoked_token(sandbox):
    afas = sandbox_connector(sandbox, "1002")
    url = f"{afas.base_url}/connectors/Profit_Transactions"
    rows = afas.get_json(url, params={"filterfieldids": "UnitId", "filtervalues": "1002", "operatortypes": "1"})["rows"]
    assert len(rows) == 100
    sandbox.fault("revoke", path="/afas")
    with pytest.raises(AuthError, match="revoked"):
        afas.check()
