"""AFAS mocks: environment 12345, administration 1 (Highpro BV), 2024 in monthly periods; every standard
GetConnector answers its fixture (connectors/afas/fixtures/*.json, shaped as AFAS's ``{"skip", "take", "rows"}``)."""
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "afas"
BASE_URL = "https://12345.rest.afas.online/ProfitRestServices"
TOKEN = ("<token><version>1</version><data>4E1B8C0A9D7F42A6B3C5E8D1F0A2B4C6D8E0F1A3B5C7D9E2F4A6B8C0D2E4F6A8</data>"
         "</token>")
ADMINISTRATION = "1"
FIXTURES = {
    "Profit_Administrations": "administrations",
    "Profit_Accounts": "accounts",
    "Profit_periods_per_administration": "periods",
    "Profit_Period_balance": "period_balance",
    "Profit_Transactions": "transactions",
    "Profit_Deleted_Transactions": "deleted_transactions",
}


def config():
    return {"environment_id": "12345", "environment_type": "production", "token": TOKEN, "base_url": BASE_URL}


def credentials():
    return {}


def reference():
    return ADMINISTRATION


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 2, 29), period_ends=(date(2024, 1, 31), date(2024, 2, 29)))


def register(requests_mock, base_url):
    for connector, name in FIXTURES.items():
        requests_mock.get(f"{base_url}/connectors/{connector}", json=fixture(KEY, name))
