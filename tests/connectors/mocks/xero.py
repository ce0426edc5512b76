"""Xero mocks: identity (/connections) and the accounting API on recorded-shape fixtures."""
import time
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "xero"
BASE_URL = "https://api.xero.test/api.xro/2.0"
IDENTITY_URL = "https://identity.xero.test"
TENANT = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
PERIOD_ENDS = (date(2024, 4, 30), date(2024, 5, 31))


def config():
    return {"client_id": "xero-client-7f3a", "client_secret": "xero-secret-c81d4e09",
            "base_url": BASE_URL, "identity_url": IDENTITY_URL}


def credentials():
    return {"access_token": "xero-at-5b2e90d1c4", "refresh_token": "xero-rt-a7c3e1f602", "token_type": "Bearer",
            "expires_at": int(time.time()) + 1800}


def reference():
    return TENANT


def window():
    return SyncWindow(start=date(2024, 4, 1), end=date(2024, 5, 31), period_ends=PERIOD_ENDS)


def register(requests_mock, base_url):
    requests_mock.get(f"{IDENTITY_URL}/connections", json=fixture("xero", "connections"))
    requests_mock.get(f"{base_url}/Organisation", json=fixture("xero", "organisation"))
    requests_mock.get(f"{base_url}/Accounts", json=fixture("xero", "accounts"))
    requests_mock.get(f"{base_url}/Journals?offset=0", json=fixture("xero", "journals_offset_0"))
    requests_mock.get(f"{base_url}/Journals?offset=100", json=fixture("xero", "journals_offset_100"))
    for day in PERIOD_ENDS:
        requests_mock.get(f"{base_url}/Reports/TrialBalance?date={day.isoformat()}",
                          json=fixture("xero", f"trial_balance_{day.isoformat()}"))
