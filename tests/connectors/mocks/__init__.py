"""Per-connector HTTP mocks for the contract test (``tests/connectors/test_contract.py``).

Each module ``<key>.py`` exposes ``config()``, ``credentials()``, ``reference()`` and
``register(requests_mock, base_url)``, which mounts the JSON files of
``tests/fixtures/<key>/`` (shaped exactly like the vendor's responses).
"""
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture(key, name):
    """The decoded JSON of ``tests/fixtures/<key>/<name>.json``."""
    return json.loads((FIXTURES / key / f"{name}.json").read_text())
