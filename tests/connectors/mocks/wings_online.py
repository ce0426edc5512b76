"""WingsOnline mocks: dossier DOS042 with two fiscal years, six accounts and six entry lines, in the shapes
connectors/wings_online/assumptions.py guesses (Wings publishes no API documentation); fixtures in
connectors/wings_online/fixtures/*.json."""
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "wings_online"
DOSSIER = "DOS042"
PASSWORD = "Wings-pw-8c41f2"


def config():
    return {"base_url": "https://ws.wingsonline.example", "username": "Wings8kantoor", "password": PASSWORD,
            "dossiers": DOSSIER}


def credentials():
    return {}


def reference():
    return DOSSIER


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 12, 31))


def register(requests_mock, base_url):
    dossier = f"{base_url}/api/v1/dossiers/{DOSSIER}"
    requests_mock.get(dossier, json=fixture(KEY, "dossier"))
    requests_mock.get(f"{dossier}/fiscalyears", json=fixture(KEY, "fiscal_years"))
    requests_mock.get(f"{dossier}/accounts", json=fixture(KEY, "accounts"))
    requests_mock.get(f"{dossier}/entries", json=fixture(KEY, "entries"))
