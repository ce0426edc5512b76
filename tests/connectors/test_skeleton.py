"""The skeleton package proves the recipe of docs/connectors.md: a folder under connectors/ is a
package. Registered as a copy would be (without the leading underscore), it is discovered, its
emulator is mounted by the sandbox, and the connector reads every stream from it over HTTP."""
import json
from decimal import Decimal

import pytest

import connectors.registry as registry
from connectors.base import AccountRecord, ConnectorContext, LedgerLineRecord, StreamState, SyncWindow
from connectors.http import build_client, secrets_for
from sandbox import create_app
from tests.threaded_server import ThreadedServer

SMALL = "c-1003"


@pytest.fixture
def skeleton(monkeypatch):
    """The registry as it would be with ``connectors/skeleton/`` copied from ``connectors/_skeleton/``."""
    found = registry.package_folders()
    monkeypatch.setattr(registry, "package_folders", lambda: [*found, "_skeleton"])
    registry.all_connectors.cache_clear()
    yield registry.get_connector("skeleton")
    registry.all_connectors.cache_clear()


@pytest.fixture
def served(skeleton):
    server = ThreadedServer(create_app(seed=7), "skeleton-sandbox").start()
    yield server
    server.stop()


def build(cls, sandbox_url, reference=SMALL):
    config = cls.spec.sandbox_settings(sandbox_url)
    http = build_client(cls.spec, secrets=secrets_for(cls.spec, config, {}), sleep=lambda s: None)
    return cls(ConnectorContext(config=config, credentials={}, reference=reference, http=http))


def test_the_folder_is_discovered_with_its_emulator_and_nothing_else_listed(skeleton):
    assert skeleton.__name__ == "SkeletonBooks" and skeleton.spec.key in {s.key for s in registry.specs()}
    assert "connectors._skeleton.emulator" in registry.emulator_modules()
    assert registry.folder_of("skeleton").name == "_skeleton"


def test_the_real_registry_leaves_the_skeleton_out():
    assert "_skeleton" not in registry.package_folders()
    assert "skeleton" not in registry.all_connectors()


def test_the_connector_reads_every_stream_from_its_emulator(skeleton, served):
    connector = build(skeleton, served.url)
    assert connector.check().ok
    assert {r.name for r in connector.list_references()} == {b.spec.name for b in served.app.extensions["sandbox"].books.values()}
    book = served.app.extensions["sandbox"].books[SMALL]
    accounts = list(connector.read("accounts", StreamState(), SyncWindow()))
    assert all(isinstance(a, AccountRecord) for a in accounts)
    assert [a.number for a in accounts] == [a["number"] for a in book.accounts]  # padding stripped
    state = StreamState()
    lines = list(connector.read("ledger_lines", state, SyncWindow()))
    assert all(isinstance(line, LedgerLineRecord) for line in lines) and len(lines) == book.line_count
    assert sum(line.amount for line in lines) == Decimal("0")

    added = book.mutate(add=2)["added"]
    again = StreamState(bookmark=state.new_bookmark)
    assert len(list(connector.read("ledger_lines", again, SyncWindow()))) == len(added)


def test_a_vendor_variant_reads_the_same(skeleton, served):
    served.app.extensions["sandbox"].set_modes("skeleton", ["amounts_as_strings"])
    lines = list(build(skeleton, served.url).read("ledger_lines", StreamState(), SyncWindow()))
    book = served.app.extensions["sandbox"].books[SMALL]
    assert sorted(line.amount for line in lines) == sorted(Decimal(line["amount"]) for line in book.all_lines())


def test_the_fixture_shape_parses():
    rows = json.loads((registry.ROOT / "_skeleton" / "fixtures" / "accounts.json").read_text())["items"]
    assert [row["code"].strip() for row in rows] == ["4000", "1000"]
