"""Cegid Loop on its mocks (requests-mock): the two key headers, windows by journal and fiscal year, skip/take
paging of at most 100 rows, the dossier check, the connection's own pace, and answers the assumptions do not
cover."""
import pytest

from connectors.base import Assumption, ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors.cegid_loop import CegidLoop
from connectors.cegid_loop.assumptions import ASSUMPTIONS
from connectors.http import build_client
from tests.connectors.mocks import cegid_loop as mocks
from tests.connectors.mocks import fixture

BASE = "https://api.cegid.com/loop-api-publiques"
KEY = "cegid_loop"


def connector(reference=mocks.DOSSIER, config=None):
    return CegidLoop(ConnectorContext(config=config or mocks.config(), credentials={}, reference=reference,
                                      http=build_client(CegidLoop.spec, sleep=lambda s: None)))


@pytest.fixture
def vendor(requests_mock):
    mocks.register(requests_mock, BASE)
    return requests_mock


def entry_calls(vendor):
    return [r for r in vendor.request_history if r.path.endswith("/ecriturecomptable")]


def test_every_call_carries_the_subscription_key_and_the_firm_api_key(vendor):
    list(connector().read("accounts", StreamState(), SyncWindow()))
    [call] = vendor.request_history
    assert call.headers["Ocp-Apim-Subscription-Key"] == mocks.SUBSCRIPTION_KEY
    assert call.headers["x-apikey"] == mocks.API_KEY and "Authorization" not in call.headers
    assert call.qs["codedossier"] == [mocks.DOSSIER.lower()] and call.qs["take"] == ["100"]


def test_ledger_lines_are_read_per_journal_and_fiscal_year_with_debit_minus_credit(vendor):
    lines = list(connector().read("ledger_lines", StreamState(), mocks.window()))
    assert len(lines) == 6 and sum(line.amount for line in lines) == 0
    filters = [r.qs["filter"][0] for r in entry_calls(vendor)]
    # 2023 lies outside the sync window: one window per journal (VT, BQ) for 2024 only
    assert filters == ['ecritureorigine!="" && journalcode=="vt" && datepiece>="2024-01-01" && datepiece<="2024-12-31"',
                       'ecritureorigine!="" && journalcode=="bq" && datepiece>="2024-01-01" && datepiece<="2024-12-31"']
    first = lines[0]
    assert (first.source_id, str(first.booking_date), first.account, str(first.amount), first.journal,
            first.reference) == ("VT-1-1", "2024-01-15", "411000", "1200.0", "VT", "FA0001")
    assert lines[1].amount == -1200


def test_listings_are_paged_with_skip_and_take(vendor, monkeypatch):
    monkeypatch.setitem(ASSUMPTIONS, "paging", Assumption({"skip": "skip", "take": "take", "page_size": 2},
                                                          "test", "verified"))
    accounts = list(connector().read("accounts", StreamState(), SyncWindow()))
    assert [a.number for a in accounts] == ["101000", "401000", "411000", "512000", "607000", "707000"]
    pages = [(r.qs["skip"][0], r.qs["take"][0]) for r in vendor.request_history]
    assert pages == [("0", "2"), ("2", "2"), ("4", "2"), ("6", "2")]
    assert {a.kind for a in accounts} == {"equity", "other", "asset", "expense", "income"}


def test_a_typed_dossier_is_verified_and_named_by_its_entity(vendor):
    vendor.get(f"{BASE}/etablissementComplet?codeDossier=NOPE", json=[])
    found = connector().lookup_reference(" BOULMART ")
    assert (found.reference, found.name) == ("BOULMART", "Boulangerie Martin SAS")
    with pytest.raises(NotFoundError, match="no dossier NOPE"):
        connector().lookup_reference("NOPE")
    assert connector().check().references == 1


def test_the_connection_sets_its_own_pace():
    assert CegidLoop.budgets_for({})[0].per_minute == 60
    assert CegidLoop.budgets_for({"calls_per_minute": 20})[0].per_minute == 20
    errors = CegidLoop.spec.config_schema().validate({**mocks.config(), "api_key": "no-colon"})
    assert "api_key" in errors


def test_an_entry_without_the_assumed_fields_fails_naming_one(vendor):
    rows = fixture(KEY, "entries")
    for row in rows:
        row["montant"] = row.pop("debit") - row.pop("credit")
    vendor.get(f"{BASE}/EcritureComptable?codeDossier={mocks.DOSSIER}", json=rows)
    with pytest.raises(DataError) as caught:
        list(connector().read("ledger_lines", StreamState(), mocks.window()))
    assert "without the field “debit”" in caught.value.message and "nothing was written" in caught.value.message


def test_an_object_where_a_list_is_assumed_fails_naming_the_shape(vendor):
    vendor.get(f"{BASE}/compte?codeDossier={mocks.DOSSIER}", json={"items": [], "total": 0})
    with pytest.raises(DataError, match="in a shape Firmsync does not expect"):
        list(connector().read("accounts", StreamState(), SyncWindow()))


def test_correcting_an_assumption_changes_what_the_connector_reads(vendor, monkeypatch):
    names = {**ASSUMPTIONS["account_fields"].value, "name": "intitule"}
    monkeypatch.setitem(ASSUMPTIONS, "account_fields", Assumption(names, "Cegid's documentation", "verified"))
    rows = [{**row, "intitule": row.pop("libelle")} for row in fixture(KEY, "accounts")]
    vendor.get(f"{BASE}/compte?codeDossier={mocks.DOSSIER}", json=rows)
    accounts = list(connector().read("accounts", StreamState(), SyncWindow()))
    assert accounts[0].name == "Capital"


def test_every_assumption_has_a_source_and_the_readme_lists_them():
    from connectors.assumptions import block_in, readme_block
    from connectors.registry import ROOT

    assert CegidLoop.spec.assumptions is ASSUMPTIONS
    assert all(item.source and item.confidence for item in ASSUMPTIONS.values())
    readme = (ROOT / "cegid_loop" / "README.md").read_text()
    assert block_in(readme) == readme_block(ASSUMPTIONS), "run python -m connectors.assumptions cegid_loop"
    assert CegidLoop.spec.built_from_public_information and CegidLoop.spec.confidence == "guess"
