"""Octopus on its fixtures (requests-mock): the two tokens, the multilingual chart, periods, the feeds and
their bookmarks, deletions, renewal, messages, and the per-endpoint daily budgets on the test Redis."""
from datetime import date
from decimal import Decimal

import pytest

from connectors.base import (AuthError, BalanceRecord, ConnectorContext, DataError, DeletedRecord, LedgerLineRecord,
                             RateLimited, StreamState)
from connectors.http import budget_scope, build_client, secrets_for
from connectors.octopus import EVERYTHING, Octopus, description, kind_of
from tests.connectors.mocks import fixture
from tests.connectors.mocks import octopus as mocks

BASE = mocks.BASE_URL
DOSSIER = f"{BASE}/dossiers/{mocks.DOSSIER}"
WINDOW = mocks.window()


def connector(requests_mock, redis=None, **config):
    mocks.register(requests_mock, BASE)
    settings = {**mocks.config(), **config}
    http = build_client(Octopus.spec, redis=redis, sleep=lambda s: None,
                        tenant=budget_scope(Octopus.spec, reference=mocks.DOSSIER, connection_id=1),
                        secrets=secrets_for(Octopus.spec, settings))
    return Octopus(ConnectorContext(config=settings, credentials={}, reference=mocks.DOSSIER, http=http))


def read(octopus, stream, bookmark=None):
    state = StreamState(bookmark=bookmark)
    return list(octopus.read(stream, state, WINDOW)), state.new_bookmark


def calls(requests_mock, method, path):
    return [r for r in requests_mock.request_history if r.method == method and r.path == path.lower()]


def test_each_call_carries_its_own_token(requests_mock):
    octopus = connector(requests_mock)
    read(octopus, "fiscal_years")
    octopus.list_references()
    login = calls(requests_mock, "POST", "/octopus-rest-api/v1/authentication")[0]
    assert login.headers["softwareHouseUuid"] == mocks.SOFTWARE_HOUSE
    assert login.json() == {"user": "boekhouder@kantoor.be", "password": mocks.PASSWORD}
    user_token = fixture("octopus", "authentication")["token"]
    dossier_token = fixture("octopus", "dossier_token")["Dossiertoken"]
    connect = calls(requests_mock, "POST", "/octopus-rest-api/v1/dossiers")[0]
    assert connect.qs == {"dossierid": ["1003"]} and connect.headers["Token"] == user_token
    years = calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers/1003/bookyears")[0]
    assert years.headers["dossierToken"] == dossier_token and "Token" not in years.headers
    listing = calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers")[0]
    assert listing.headers["Token"] == user_token and "dossierToken" not in listing.headers
    assert len(calls(requests_mock, "POST", "/octopus-rest-api/v1/authentication")) == 1  # tokens are kept


def test_reference_details(requests_mock):
    refs = connector(requests_mock).list_references()
    assert [(r.reference, r.name) for r in refs][1] == ("1002", "Architectes Janssens SRL")
    assert refs[1].details == {"vat_number": "BE0567890123", "country": "BE", "language": "FR"}


@pytest.mark.parametrize("language, expected", [("nl", "Bank account (NL)"), ("fr", "Bank account (FR)"),
                                                ("en", "Bank account")])
def test_account_names_keep_the_firms_language(requests_mock, language, expected):
    accounts, _ = read(connector(requests_mock, language=language), "accounts")
    assert accounts[0].name == expected
    # no Dutch name: the next language that has one; an empty Dutch name counts as none
    assert accounts[1].name == ("Trade debtors (FR)" if language != "en" else "Trade debtors")
    assert accounts[2].name == "Stock (FR)"  # the only name it has


def test_descriptions_fall_back_in_order():
    names = {"description_FR": "Banque", "description_EN": "Bank", "description_DE": "Bankkonto"}
    assert description(names, "nl") == "Banque"
    assert description(names, "de") == "Bankkonto"
    assert description({"description_NL": "  "}, "nl") == ""
    assert description("  Kas  ", "fr") == "Kas"


@pytest.mark.parametrize("number, kind", [("100000", "equity"), ("170000", "liability"), ("220000", "asset"),
                                          ("400000", "asset"), ("440000", "liability"), ("499000", "other"),
                                          ("550000", "asset"), ("604000", "expense"), ("700000", "income"),
                                          ("0100", "other"), ("X1", "other")])
def test_kinds_follow_the_belgian_minimum_chart(number, kind):
    assert kind_of(number) == kind


def test_the_chart_is_read_once_then_only_its_changes(requests_mock):
    accounts, bookmark = read(connector(requests_mock), "accounts")
    assert len(accounts) == 20 and bookmark["years"] == ["2"] and len(bookmark["since"]) == 23
    assert [r.qs for r in calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers/1003/accounts")] == \
        [{"bookyearid": ["2"]}]
    requests_mock.reset_mock()
    again, later = read(connector(requests_mock), "accounts", bookmark)
    assert again == [] and later["years"] == ["2"]
    assert not calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers/1003/accounts")
    changed = calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers/1003/accounts/modified")
    assert changed[0].qs["modifiedtimestamp"] == [bookmark["since"]]


def test_a_changed_account_comes_through_the_modified_feed(requests_mock):
    octopus = connector(requests_mock)
    row = fixture("octopus", "accounts_bookyear_2")[0]
    row["description"] = {"description_NL": "Bank KBC"}
    requests_mock.get(f"{DOSSIER}/accounts/modified", json={"modified": [row], "deleted": []})
    accounts, _ = read(octopus, "accounts", {"since": "2024-05-01 02:00:00.000", "years": ["2"]})
    assert [(a.number, a.name, a.kind) for a in accounts] == [("551095", "Bank KBC", "asset")]


def test_balances_are_movements_per_book_year_period(requests_mock):
    balances, _ = read(connector(requests_mock), "balances")
    assert all(isinstance(b, BalanceRecord) and b.basis == "movement" for b in balances)
    first = balances[0]
    assert (first.account, first.period_start, first.period_end, first.amount) == \
        ("103650", date(2023, 2, 1), date(2023, 2, 28), Decimal("-365.72"))
    request = calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers/1003/accounts/amounts/modified")[0]
    assert request.qs["modifiedtimestamp"] == [EVERYTHING.lower()]


def test_balances_read_short_period_numbers_and_zero_deleted_amounts(requests_mock):
    octopus = connector(requests_mock)
    body = fixture("octopus", "account_amounts_modified")
    row = body["modified"][0]
    row["accountAmountKey"]["bookyearPeriodKey"] = {"bookyearKey": {"id": 1}, "bookyearPeriodNr": 2}  # nr in its year
    row["accountAmountKey"]["accountKey"]["id"] = 103650
    row["balance"] = "12.50"
    gone = {"accountAmountKey": {"bookyearPeriodKey": {"bookyearKey": {"id": 2}, "bookyearPeriodNr": 202403},
                                 "accountKey": {"bookyearKey": {"id": 2}, "id": 551095}}, "balance": 99.0}
    requests_mock.get(f"{DOSSIER}/accounts/amounts/modified", json={"modified": [row], "deleted": [gone]})
    balances, _ = read(octopus, "balances")
    assert [(b.account, b.period_end, b.amount) for b in balances] == [
        ("103650", date(2023, 2, 28), Decimal("12.50")), ("551095", date(2024, 3, 31), 0)]


def test_an_unknown_period_is_a_data_error(requests_mock):
    octopus = connector(requests_mock)
    body = fixture("octopus", "account_amounts_modified")
    body["modified"][0]["accountAmountKey"]["bookyearPeriodKey"]["bookyearPeriodNr"] = 202399
    requests_mock.get(f"{DOSSIER}/accounts/amounts/modified", json=body)
    with pytest.raises(DataError, match="period 202399"):
        read(octopus, "balances")


def test_first_read_per_year_and_journal_then_one_incremental_call(requests_mock):
    lines, bookmark = read(connector(requests_mock), "ledger_lines")
    assert len(lines) == 41 and sum(line.amount for line in lines) == 0
    first = lines[0]
    assert (first.source_id, first.journal, first.booking_period_end, first.account) == \
        ("1:1:1:3:1", "A1", date(2023, 4, 30), "617381")
    asked = [(r.path.split("/")[-3], r.qs["journaltypeid"][0]) for r in requests_mock.request_history
             if r.path.endswith("/bookings/modified")]
    assert asked == [(year, journal) for year in ("1", "2") for journal in ("1", "2", "3", "4")]
    assert bookmark["years"] == ["1", "2"]

    requests_mock.reset_mock()
    changes, later = read(connector(requests_mock), "ledger_lines", bookmark)
    deleted = [c for c in changes if isinstance(c, DeletedRecord)]
    assert deleted == [DeletedRecord(source_id="1:1:1:3:", entry=True)]  # every line of that document
    changed = [c for c in changes if isinstance(c, LedgerLineRecord)]
    assert [c.source_id for c in changed] == ["2:2:1:10:1", "2:2:1:10:2"]
    assert changed[0].amount == Decimal("-1310.82") and changed[0].description.endswith("(corrected)")
    request = [r for r in requests_mock.request_history if r.path.endswith("/bookings/modified")]
    assert len(request) == 1 and request[0].qs["modifiedtimestamp"] == [bookmark["since"]]
    assert later["years"] == ["1", "2"]


def test_the_bookmark_is_the_servers_time_in_belgium_minus_the_overlap(requests_mock):
    octopus = connector(requests_mock)
    requests_mock.get(f"{DOSSIER}/bookyears/-1/bookings/modified?journalTypeId=-1", status_code=404,
                      json={"technicalInfo": "No modified bookings found"},
                      headers={"Date": "Wed, 15 Jan 2025 09:30:00 GMT"})
    changes, bookmark = read(octopus, "ledger_lines", {"since": "2025-01-14 02:00:00.000", "years": ["1", "2"]})
    assert changes == []  # 404 "No modified bookings found": nothing changed
    assert bookmark == {"since": "2025-01-15 10:25:00.000", "years": ["1", "2"]}  # 09:30 UTC = 10:30 Brussels


def test_a_refused_token_is_renewed_once(requests_mock):
    octopus = connector(requests_mock)
    requests_mock.get(f"{DOSSIER}/bookyears", [{"status_code": 401, "json": {"technicalInfo": "Token expired"}},
                                               {"json": fixture("octopus", "bookyears")}])
    assert len(read(octopus, "fiscal_years")[0]) == 2
    assert len(calls(requests_mock, "POST", "/octopus-rest-api/v1/authentication")) == 2
    assert len(calls(requests_mock, "POST", "/octopus-rest-api/v1/dossiers")) == 2

    requests_mock.get(f"{DOSSIER}/accounts/amounts/modified", status_code=401, json={"technicalInfo": "Token expired"})
    with pytest.raises(AuthError) as caught:
        read(octopus, "balances")
    assert "Octopus says: \u201cToken expired\u201d" in caught.value.message


def test_a_refused_login_asks_for_the_credentials_without_showing_them(requests_mock):
    octopus = connector(requests_mock)
    requests_mock.post(f"{BASE}/authentication", status_code=401,
                       json={"technicalInfo": f"Invalid credentials {mocks.PASSWORD} {mocks.SOFTWARE_HOUSE}"})
    with pytest.raises(AuthError) as caught:
        octopus.check()
    assert "main user with the webservice module active" in caught.value.message
    for secret in (mocks.PASSWORD, mocks.SOFTWARE_HOUSE):
        assert secret not in caught.value.message and secret not in (caught.value.detail or "")
    assert len(calls(requests_mock, "POST", "/octopus-rest-api/v1/authentication")) == 1


def test_a_missing_dossier_is_not_found(requests_mock):
    octopus = connector(requests_mock)
    requests_mock.post(f"{BASE}/dossiers?dossierId=1003", status_code=404,
                       json={"errorCode": 404, "errorMessage": "Dossier niet gevonden"})
    with pytest.raises(Exception) as caught:
        read(octopus, "fiscal_years")
    assert type(caught.value).__name__ == "NotFoundError" and "Dossier niet gevonden" in caught.value.message


def test_endpoint_budgets_hold_the_chart_to_two_reads_a_day(requests_mock, redis_db):
    for _ in range(2):
        read(connector(requests_mock, redis=redis_db), "accounts")
    with pytest.raises(RateLimited) as caught:
        read(connector(requests_mock, redis=redis_db), "accounts")
    error = caught.value
    assert error.daily and error.budget == "accounts" and 86000 < error.retry_after <= 86400
    assert "read the full chart of accounts 2 times a day" in error.message
    assert len(calls(requests_mock, "GET", "/octopus-rest-api/v1/dossiers/1003/accounts")) == 2
    # the other endpoints keep their own allowance
    assert read(connector(requests_mock, redis=redis_db), "fiscal_years")[0]


def test_every_operation_used_has_the_spec_allowance():
    allowances = {budget.name: budget.per_minute for budget in Octopus.spec.budgets if budget.path}
    assert allowances == {"dossiers": 150, "dossier-tokens": 150, "bookyears": 24, "accounts": 2,
                          "accounts-modified": 48, "amounts-modified": 48, "bookings-modified": 48,
                          "buysell-modified": 48, "financialdivers-modified": 48}
    assert all(b.window_seconds == 86400 for b in Octopus.spec.budgets if b.path)


# -- the sandbox's vendor variants ---------------------------------------------------------------

def sandbox_connector(sandbox, company="c-1003", language="nl"):
    config = {**Octopus.spec.sandbox_settings(sandbox.url), "language": language}
    http = build_client(Octopus.spec, sleep=lambda s: None)
    return Octopus(ConnectorContext(config=config, credentials={}, reference=company[2:], http=http))


def everything(octopus):
    return {stream.name: list(octopus.read(stream.name, StreamState(), WINDOW)) for stream in Octopus.streams}


def test_the_vendor_variants_read_the_same_books(sandbox):
    plain = everything(sandbox_connector(sandbox))
    assert plain["ledger_lines"] and plain["balances"] and len(plain["accounts"]) == 20
    sandbox.modes(octopus=["short_period_numbers", "numbers_as_strings", "names_without_dutch"])
    varied = everything(sandbox_connector(sandbox))
    assert varied["ledger_lines"] == plain["ledger_lines"] and varied["balances"] == plain["balances"]
    assert varied["fiscal_years"] == plain["fiscal_years"]
    # no Dutch names: French, the next language, for every account
    assert [a.name for a in varied["accounts"]] == [a.name.replace("(NL)", "(FR)") for a in plain["accounts"]]


def test_sandbox_balances_match_its_lines(sandbox):
    books = everything(sandbox_connector(sandbox, "c-1001"))
    sums = {}
    for line in books["ledger_lines"]:
        key = (line.account, line.booking_period_end)
        sums[key] = sums.get(key, 0) + line.amount
    assert {(b.account, b.period_end): b.amount for b in books["balances"]} == {k: v for k, v in sums.items() if v}
