"""WingsOnline on its mocks: the facts (API user, dossier code) and the guessed shapes, read only through the
declared assumptions; a typed dossier verified by a read; an answer the guesses do not cover names the field."""
import pytest

from connectors.base import ConnectorContext, DataError, NotFoundError, StreamState, SyncWindow
from connectors.http import build_client
from connectors.wings_online import WingsOnline
from connectors.wings_online.assumptions import ASSUMPTIONS
from tests.connectors.mocks import fixture
from tests.connectors.mocks import wings_online as mocks

BASE = "https://ws.wingsonline.example"
DOSSIER_URL = f"{BASE}/api/v1/dossiers/{mocks.DOSSIER}"


def connector(config=None):
    return WingsOnline(ConnectorContext(config=config or mocks.config(), credentials={}, reference=mocks.DOSSIER,
                                        http=build_client(WingsOnline.spec, sleep=lambda s: None)))


@pytest.fixture
def vendor(requests_mock):
    mocks.register(requests_mock, BASE)
    return requests_mock


def test_streams_read_the_guessed_shapes_with_basic_auth_and_page_numbers(vendor):
    wings = connector()
    lines = list(wings.read("ledger_lines", StreamState(), mocks.window()))
    assert len(lines) == 6 and sum(line.amount for line in lines) == 0
    call = vendor.request_history[-1]
    assert call.headers["Authorization"].startswith("Basic ")
    assert call.qs == {"datefrom": ["2024-01-01"], "dateto": ["2024-12-31"], "page": ["1"], "pagesize": ["200"]}
    assert [a.kind for a in wings.read("accounts", StreamState(), SyncWindow())][:2] == ["equity", "other"]
    assert len(list(wings.read("fiscal_years", StreamState(), SyncWindow()))) == 2


def test_a_typed_dossier_is_verified_by_a_read(vendor):
    vendor.get(f"{BASE}/api/v1/dossiers/NOPE", status_code=404, json={"message": "not found"})
    found = connector().lookup_reference("DOS042")
    assert (found.reference, found.name) == ("DOS042", "Bakkerij Peeters BV")
    with pytest.raises(NotFoundError, match="no dossier NOPE"):
        connector().lookup_reference("NOPE")


def test_check_without_dossier_codes_calls_nothing_and_says_so(vendor):
    result = connector({**mocks.config(), "dossiers": ""}).check()
    assert result.ok and "type a dossier code" in result.message and vendor.call_count == 0


def test_an_answer_without_the_assumed_envelope_or_field_fails_naming_it(vendor):
    vendor.get(f"{DOSSIER_URL}/accounts", json=[{"number": "100000"}])
    with pytest.raises(DataError, match="“items”"):
        list(connector().read("accounts", StreamState(), SyncWindow()))
    rows = fixture("wings_online", "entries")
    for row in rows["items"]:
        row["bedrag"] = row.pop("amount")
    vendor.get(f"{DOSSIER_URL}/entries", json=rows)
    with pytest.raises(DataError, match="without the field “amount”"):
        list(connector().read("ledger_lines", StreamState(), mocks.window()))


def test_the_readme_lists_every_assumption():
    from connectors.assumptions import block_in, readme_block
    from connectors.registry import ROOT

    readme = (ROOT / "wings_online" / "README.md").read_text()
    assert block_in(readme) == readme_block(ASSUMPTIONS)
    assert WingsOnline.spec.built_from_public_information and WingsOnline.spec.confidence == "guess"
    facts = {name for name, item in ASSUMPTIONS.items() if item.confidence != "guess"}
    assert facts == {"credentials", "reference"}
