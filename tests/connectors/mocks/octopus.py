"""Octopus mocks: dossier 1003 (Northwind Trading Ltd), book years 2023 (id 1) and 2024 (id 2) with monthly
periods; fixtures in connectors/octopus/fixtures/*.json, shaped as the vendor's OpenAPI answers (the spec test
validates each). A first read: the chart of book year 2, the balances since 1980, each year's bookings per
journal type; an incremental read: ``bookyears/-1/bookings/modified?journalTypeId=-1``."""
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "octopus"
BASE_URL = "https://service.inaras.be/octopus-rest-api/v1"
DOSSIER = "1003"
SOFTWARE_HOUSE = "0c6f3a2e-91b4-4f7d-8e25-octopus-house"
PASSWORD = "Octopus-pw-5d1c9e"
FIRST_READ = "1980-01-01 00:00:00.000"


def config():
    return {"software_house_uuid": SOFTWARE_HOUSE, "user": "boekhouder@kantoor.be", "password": PASSWORD,
            "language": "nl", "base_url": BASE_URL}


def credentials():
    return {}


def reference():
    return DOSSIER


def window():
    return SyncWindow(start=date(2023, 1, 1), end=date(2024, 12, 31))


def register(requests_mock, base_url):
    dossier = f"{base_url}/dossiers/{DOSSIER}"
    requests_mock.post(f"{base_url}/authentication", json=fixture(KEY, "authentication"))
    requests_mock.get(f"{base_url}/dossiers", json=fixture(KEY, "dossiers"))
    requests_mock.post(f"{base_url}/dossiers?dossierId={DOSSIER}", json=fixture(KEY, "dossier_token"))
    requests_mock.get(f"{dossier}/bookyears", json=fixture(KEY, "bookyears"))
    requests_mock.get(f"{dossier}/accounts?bookyearId=2", json=fixture(KEY, "accounts_bookyear_2"))
    requests_mock.get(f"{dossier}/accounts/modified", status_code=404, json=fixture(KEY, "no_modified_accounts_404"))
    requests_mock.get(f"{dossier}/accounts/amounts/modified", json=fixture(KEY, "account_amounts_modified"))
    for year in (1, 2):
        for journal_type in (1, 2, 3, 4):
            requests_mock.get(f"{dossier}/bookyears/{year}/bookings/modified?journalTypeId={journal_type}",
                              json=fixture(KEY, f"bookings_modified_{year}_{journal_type}"))
    requests_mock.get(f"{dossier}/bookyears/-1/bookings/modified?journalTypeId=-1",
                      json=fixture(KEY, "bookings_modified_incremental"))
