"""Horus on its mocks (requests-mock): OAuth endpoints on the connection's own API host, a refused access token
refreshed once (the rotated pair saved), folders as references, folder-filtered paged listings, and answers
the assumptions do not cover."""
import time

import pytest

from connectors.base import Assumption, AuthError, ConnectorContext, DataError, StreamState, SyncWindow
from connectors.horus import Horus
from connectors.horus.assumptions import ASSUMPTIONS
from connectors.http import build_client
from tests.connectors.mocks import fixture
from tests.connectors.mocks import horus as mocks

BASE = mocks.BASE_URL
KEY = "horus"


def connector(credentials=None, saved=None, config=None):
    saved = [] if saved is None else saved
    return Horus(ConnectorContext(
        config=config or mocks.config(), credentials=dict(credentials or mocks.credentials()),
        reference=mocks.FOLDER, http=build_client(Horus.spec, sleep=lambda s: None), save_credentials=saved.append))


@pytest.fixture
def vendor(requests_mock):
    mocks.register(requests_mock, BASE)
    return requests_mock


def test_the_oauth_endpoints_are_on_the_customers_own_host():
    endpoints = Horus.oauth_endpoints({"base_url": "https://horus.other-fidu.be/"})
    assert endpoints.authorize_url == "https://horus.other-fidu.be/oauth/authorize"
    assert endpoints.token_url == "https://horus.other-fidu.be/oauth/token"
    assert Horus.spec.auth.consent and Horus.spec.vendor_hosts == ()  # a customer's host can be anywhere
    assert "base_url" in Horus.spec.config_schema().validate({"client_id": "x", "client_secret": "y"})


def test_folders_are_the_references(vendor):
    found = connector().list_references()
    assert [(f.reference, f.name) for f in found] == [("F-0042", "Bakkerij Peeters BV"),
                                                      ("F-0043", "Garage Lambert SRL")]
    [call] = vendor.request_history
    assert call.headers["Authorization"] == "Bearer horus-at-0d9c2b"
    assert call.qs == {"page": ["1"], "pagesize": ["100"]}


def test_ledger_lines_are_the_folders_account_histories_in_the_window(vendor):
    lines = list(connector().read("ledger_lines", StreamState(), mocks.window()))
    assert len(lines) == 6 and sum(line.amount for line in lines) == 0
    [call] = vendor.request_history
    assert call.qs["folderid"] == ["f-0042"] and call.qs["datefrom"] == ["2024-01-01"]
    assert call.qs["dateto"] == ["2024-12-31"]
    first = lines[0]
    assert (first.source_id, str(first.booking_date), first.account, str(first.amount), first.journal,
            first.reference) == ("101", "2024-01-15", "400000", "1210.0", "VKP", "VF0001")
    assert lines[1].amount == -1210


def test_a_refused_access_token_is_refreshed_once_and_the_rotated_pair_saved(vendor):
    saved = []
    vendor.get(f"{BASE}/api/v1/accounts?folderId={mocks.FOLDER}", [
        {"status_code": 401, "json": {"errors": [{"status": "401"}]}}, {"json": fixture(KEY, "accounts")}])
    accounts = list(connector(saved=saved).read("accounts", StreamState(), SyncWindow()))
    assert len(accounts) == 6 and {a.kind for a in accounts} >= {"equity", "asset", "expense", "income"}
    [refresh] = [r for r in vendor.request_history if r.path == "/oauth/token"]
    assert "grant_type=refresh_token" in refresh.text and "refresh_token=horus-rt-8e4f1a" in refresh.text
    assert saved[-1]["refresh_token"] == "horus-refresh-2d7a" and saved[-1]["access_token"] == "horus-access-6c1e"


def test_an_expired_access_token_is_refreshed_before_the_call(vendor):
    stale = {**mocks.credentials(), "expires_at": int(time.time()) - 10}
    list(connector(stale).read("fiscal_years", StreamState(), SyncWindow()))
    assert [r.path for r in vendor.request_history] == ["/oauth/token", "/api/v1/financialyears"]
    assert vendor.request_history[-1].headers["Authorization"] == "Bearer horus-access-6c1e"


def test_a_refused_refresh_needs_reconnecting(vendor):
    vendor.post(f"{BASE}/oauth/token", status_code=400, json={"error": "invalid_grant"})
    stale = {**mocks.credentials(), "expires_at": int(time.time()) - 10}
    with pytest.raises(AuthError):
        connector(stale).check()


def test_an_answer_without_the_assumed_fields_fails_naming_one(vendor):
    answer = fixture(KEY, "account_histories")
    for row in answer["data"]:
        row["amount"] = row.pop("debit") - row.pop("credit")
    vendor.get(f"{BASE}/api/v1/accounthistories?folderId={mocks.FOLDER}", json=answer)
    with pytest.raises(DataError) as caught:
        list(connector().read("ledger_lines", StreamState(), mocks.window()))
    assert "without the field “debit”" in caught.value.message and "nothing was written" in caught.value.message


def test_an_answer_without_the_envelope_fails_naming_it(vendor):
    vendor.get(f"{BASE}/api/v1/folders", json=[{"id": "F-0042"}])
    with pytest.raises(DataError, match="“data”"):
        connector().list_references()


def test_correcting_an_assumption_changes_what_the_connector_reads(vendor, monkeypatch):
    monkeypatch.setitem(ASSUMPTIONS, "list_envelope", Assumption("items", "Horus' documentation", "verified"))
    answer = fixture(KEY, "folders")
    vendor.get(f"{BASE}/api/v1/folders", json={"items": answer["data"]})
    assert [f.reference for f in connector().list_references()] == ["F-0042", "F-0043"]


def test_every_assumption_has_a_source_and_the_readme_lists_them():
    from connectors.assumptions import block_in, readme_block
    from connectors.registry import ROOT

    assert Horus.spec.assumptions is ASSUMPTIONS
    assert all(item.source and item.confidence for item in ASSUMPTIONS.values())
    readme = (ROOT / "horus" / "README.md").read_text()
    assert block_in(readme) == readme_block(ASSUMPTIONS), "run python -m connectors.assumptions horus"
    assert Horus.spec.built_from_public_information and Horus.spec.confidence == "guess"
