"""Per-connector HTTP mocks for the contract test (``tests/connectors/test_contract.py``).

Each module ``<key>.py`` exposes ``config()``, ``credentials()``, ``reference()`` and
``register(requests_mock, base_url)``, which mounts the JSON files of its package folder's
``connectors/<folder>/fixtures/`` (shaped exactly like the vendor's responses).
"""
import json

from connectors.registry import ROOT


def fixtures_of(folder):
    """The fixtures folder of package folder ``folder``."""
    return ROOT / folder / "fixtures"


def fixture(folder, name):
    """The decoded JSON of ``connectors/<folder>/fixtures/<name>.json``."""
    return json.loads((fixtures_of(folder) / f"{name}.json").read_text())
