"""Winbooks On Web on its mocks (requests-mock): the exchange once then rotating refresh tokens, ContinuePath
paging, the criteria sent, the folder check, and answers the assumptions do not cover."""
import base64
import json
import time

import pytest
import requests_mock as requests_mock_lib

from connectors.base import (ConnectorContext, DataError, NotFoundError, RenewalRefused, StreamState, SyncWindow)
from connectors.http import build_client
from connectors.winbooks_on_web import WinbooksOnWeb, fingerprint
from connectors.winbooks_on_web.assumptions import ASSUMPTIONS
from tests.connectors.mocks import fixture
from tests.connectors.mocks import winbooks_on_web as mocks

BASE = "https://rapi.winbooksonweb.be"
KEY = "winbooks_on_web"


def connector(credentials=None, saved=None, reference=mocks.FOLDER, config=None):
    saved = [] if saved is None else saved
    return WinbooksOnWeb(ConnectorContext(
        config=config or mocks.config(), credentials=dict(credentials or {}), reference=reference,
        http=build_client(WinbooksOnWeb.spec, sleep=lambda s: None), save_credentials=saved.append))


@pytest.fixture
def vendor(requests_mock):
    mocks.register(requests_mock, BASE)
    return requests_mock


def token_calls(vendor):
    return [r for r in vendor.request_history if r.path.lower().endswith("/oauth20/token")]


def test_the_exchange_token_is_exchanged_once_with_the_email_as_basic_auth(vendor):
    saved = []
    books = connector(saved=saved)
    lines = list(books.read("ledger_lines", StreamState(), mocks.window()))
    assert len(lines) == 8 and sum(line.amount for line in lines) == 0
    [call] = token_calls(vendor)
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"licence@kantoor.be").decode()
    assert dict(part.split("=") for part in call.text.split("&")) == {
        "grant_type": "exchange_token", "code": mocks.EXCHANGE_TOKEN}
    [stored] = saved
    assert stored["refresh_token"] == "wow-refresh-9a2e" and stored["exchanged"] == fingerprint(mocks.EXCHANGE_TOKEN)
    assert stored["expires_at"] > time.time() + 800


def test_ledger_lines_follow_continue_path_with_the_assumed_criteria(vendor):
    lines = list(connector().read("ledger_lines", StreamState(), mocks.window()))
    posts = [r for r in vendor.request_history if r.path.endswith("/executecriteria")]
    assert [r.headers.get("ContinuePath") for r in posts] == [None, "page-2"]
    body = posts[0].json()
    assert body["EntityType"] == "Winbooks.TORM.OM.Accounting.GLTrans, Winbooks.TORM.OM"
    assert [(c["PropertyName"], c["Operator"], c["Values"]) for c in body["Conditions"]] == [
        ("Date", 3, ["2024-01-01"]), ("Date", 14, ["2024-12-31"])]
    first = lines[0]
    assert (first.source_id, str(first.booking_date), first.account, str(first.amount), first.journal,
            first.reference) == ("1", "2024-01-15", "400000", "1210.0", "VEN", "VEN00001")


def test_a_stored_access_token_is_reused_and_a_refused_one_is_refreshed_and_rotated(vendor):
    stored = {"access_token": "still-good", "refresh_token": "wow-refresh-old", "expires_at": time.time() + 600,
              "exchanged": fingerprint(mocks.EXCHANGE_TOKEN)}
    saved = []
    books = connector(stored, saved)
    vendor.get(f"{BASE}/app/GLAccounts/Folder/{mocks.FOLDER}", [
        {"status_code": 401, "json": {"Message": "token expired"}}, {"json": fixture(KEY, "gl_accounts")}])
    accounts = list(books.read("accounts", StreamState(), SyncWindow()))
    assert len(accounts) == 6 and {a.kind for a in accounts} >= {"equity", "asset", "expense", "income"}
    [refresh] = token_calls(vendor)
    assert "grant_type=refresh_token" in refresh.text and "code=wow-refresh-old" in refresh.text
    assert saved[-1]["refresh_token"] == "wow-refresh-9a2e"  # the rotated one, saved before use
    gets = [r for r in vendor.request_history if r.path.endswith("/glaccounts/folder/acme")]
    assert [r.headers["Authorization"] for r in gets] == ["Bearer still-good", "Bearer wow-access-1f3c"]


def test_a_new_exchange_token_typed_on_the_connection_starts_over(vendor):
    stored = {"access_token": "old", "refresh_token": "wow-refresh-old", "expires_at": time.time() + 600,
              "exchanged": fingerprint("the-previous-token")}
    list(connector(stored).read("fiscal_years", StreamState(), SyncWindow()))
    [call] = token_calls(vendor)
    assert "grant_type=exchange_token" in call.text


def test_a_refused_refresh_and_a_refused_exchange_need_a_new_exchange_token(vendor):
    vendor.post(f"{BASE}/OAuth20/Token", status_code=400, json={"error": "invalid_grant"})
    stored = {"refresh_token": "wow-refresh-old", "exchanged": fingerprint(mocks.EXCHANGE_TOKEN)}
    with pytest.raises(RenewalRefused) as caught:
        connector(stored).check()
    assert "new exchange token" in caught.value.message and mocks.EXCHANGE_TOKEN not in str(caught.value)
    assert [("refresh_token" in r.text, "exchange_token" in r.text) for r in token_calls(vendor)] == [
        (True, False), (False, True)]


def test_a_typed_folder_is_verified_by_a_read(vendor):
    vendor.get(f"{BASE}/app/BookYears/Folder/NOPE", status_code=404, json={"Message": "Folder not found"})
    assert connector().lookup_reference(" ACME ").reference == "ACME"
    with pytest.raises(NotFoundError, match="no folder NOPE"):
        connector().lookup_reference("NOPE")
    assert [r.reference for r in connector().list_references()] == ["ACME"]


def test_an_answer_without_an_assumed_field_fails_naming_it(vendor):
    rows = fixture(KEY, "gl_trans_page_1")
    for row in rows:
        row["Amount"] = row.pop("AmountEUR")
    vendor.post(f"{BASE}/app/GLTrans/Folder/{mocks.FOLDER}/ExecuteCriteria", json=rows)
    with pytest.raises(DataError) as caught:
        list(connector().read("ledger_lines", StreamState(), mocks.window()))
    assert "without the field “AmountEUR”" in caught.value.message and "nothing was written" in caught.value.message
    assert "Amount" in caught.value.detail


def test_an_object_where_a_list_is_assumed_fails_naming_the_shape(vendor):
    vendor.get(f"{BASE}/app/BookYears/Folder/{mocks.FOLDER}", json={"Items": [], "Total": 0})
    with pytest.raises(DataError, match="in a shape Firmsync does not expect"):
        list(connector().read("fiscal_years", StreamState(), SyncWindow()))


def test_a_looping_continue_path_is_a_clear_error(vendor):
    vendor.get(f"{BASE}/app/GLAccounts/Folder/{mocks.FOLDER}", json=fixture(KEY, "gl_accounts"),
               headers={"ContinuePath": "again"})
    with pytest.raises(DataError, match="seems to loop"):
        list(connector().read("accounts", StreamState(), SyncWindow()))


def test_correcting_an_assumption_changes_what_the_connector_reads(vendor, monkeypatch):
    """The vendor's documentation corrects the package in assumptions.py only."""
    from connectors.base import Assumption

    names = {**ASSUMPTIONS["ledger_fields"].value, "amount": "Amount"}
    monkeypatch.setitem(ASSUMPTIONS, "ledger_fields", Assumption(names, "Winbooks' documentation", "verified"))
    rows = fixture(KEY, "gl_trans_page_1") + fixture(KEY, "gl_trans_page_2")
    for row in rows:
        row["Amount"] = row.pop("AmountEUR")
    vendor.post(f"{BASE}/app/GLTrans/Folder/{mocks.FOLDER}/ExecuteCriteria", json=rows)
    lines = list(connector().read("ledger_lines", StreamState(), mocks.window()))
    assert len(lines) == 8 and lines[0].amount == 1210


def test_every_assumption_has_a_source_and_the_readme_lists_them():
    from connectors.assumptions import block_in, readme_block
    from connectors.registry import ROOT

    assert WinbooksOnWeb.spec.assumptions is ASSUMPTIONS
    assert all(item.source and item.confidence for item in ASSUMPTIONS.values())
    readme = (ROOT / "winbooks_on_web" / "README.md").read_text()
    assert block_in(readme) == readme_block(ASSUMPTIONS), "run python -m connectors.assumptions winbooks_on_web"
    assert WinbooksOnWeb.spec.built_from_public_information and WinbooksOnWeb.spec.confidence == "guess"
    assert json.dumps(WinbooksOnWeb.spec.sandbox_config)  # plain settings


def test_any_request_failing_mid_read_raises_without_partial_results(vendor):
    vendor.register_uri(requests_mock_lib.ANY, f"{BASE}/app/GLTrans/Folder/{mocks.FOLDER}/ExecuteCriteria",
                        [{"json": fixture(KEY, "gl_trans_page_1"), "headers": {"ContinuePath": "page-2"}},
                         {"status_code": 415, "json": {"Message": "Unsupported criteria"}}])
    with pytest.raises(DataError, match="HTTP 415"):
        list(connector().read("ledger_lines", StreamState(), mocks.window()))
