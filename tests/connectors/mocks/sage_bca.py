"""Sage Business Cloud Accounting mocks: the user API (/businesses) and the accounting API on vendor-shaped fixtures.

The linked business is in GB, so balances come from /trial_balance (April in the reporting spec's example
shape, May in its definition's shape).
"""
import time
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "sage_bca"
BASE_URL = "https://api.sage.test/v3.1"
OAUTH_URL = "https://oauth.sage.test"
BUSINESS = "f99d7e3bdd4ae1b27610e262261e1a53"
PERIOD_ENDS = (date(2024, 4, 30), date(2024, 5, 31))


def config():
    return {"client_id": "sage-client-4e1a", "client_secret": "sage-secret-93b7c2d0", "base_url": BASE_URL,
            "oauth_url": OAUTH_URL}


def credentials():
    return {"access_token": "sage-at-2f8c41d9e0", "refresh_token": "sage-rt-b61e07a3f5", "token_type": "bearer",
            "expires_at": int(time.time()) + 300}


def reference():
    return BUSINESS


def window():
    return SyncWindow(start=date(2024, 4, 1), end=date(2024, 5, 31), period_ends=PERIOD_ENDS)


def register(requests_mock, base_url):
    requests_mock.get(f"{base_url}/businesses", json=fixture("sage_bca", "businesses"))
    requests_mock.get(f"{base_url}/businesses/{BUSINESS}", json=fixture("sage_bca", "business_gb"))
    requests_mock.get(f"{base_url}/financial_settings", json=fixture("sage_bca", "financial_settings"))
    requests_mock.get(f"{base_url}/ledger_accounts", json=fixture("sage_bca", "ledger_accounts"))
    requests_mock.get(f"{base_url}/ledger_entries", json=fixture("sage_bca", "ledger_entries"))
    for day in PERIOD_ENDS:
        query = f"from_date={day.replace(day=1).isoformat()}&to_date={day.isoformat()}"
        requests_mock.get(f"{base_url}/trial_balance?{query}",
                          json=fixture("sage_bca", f"trial_balance_{day.isoformat()}"))
