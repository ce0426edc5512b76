"""QuickBooks Online mocks: one realm on Intuit's sandbox host, recorded-shape fixtures.

Query strings are matched in a callback: requests-mock lowercases them, and QuickBooks
answers by query (``select ... STARTPOSITION n``), report dates and CDC.
"""
import time
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "quickbooks"
BASE_URL = "https://sandbox-quickbooks.api.intuit.com/v3/company"
REALM = "9130357766661234"
PERIOD_ENDS = (date(2024, 1, 31), date(2024, 2, 29))


def config():
    return {"client_id": "ABqbo-client-6c1f", "client_secret": "qbo-secret-0d9e7a55", "base_url": BASE_URL,
            "oauth_url": None, "accounting_method": "Accrual"}


def credentials():
    return {"access_token": "qbo-at-eyJlbmMiOi4f2a", "refresh_token": "qbo-rt-AB11712345", "token_type": "bearer",
            "expires_at": int(time.time()) + 3000, "realm_id": REALM}


def reference():
    return REALM


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 2, 29), period_ends=PERIOD_ENDS)


def _query(request, context):
    statement = request.qs["query"][0]
    return fixture(KEY, "query_accounts" if "startposition 1 " in statement else "query_empty")


def _trial_balance(request, context):
    return fixture(KEY, f"trial_balance_{request.qs['end_date'][0]}")


def _general_ledger(request, context):
    return fixture(KEY, f"general_ledger_{request.qs['start_date'][0][:7]}")


def register(requests_mock, base_url):
    company = f"{base_url}/{REALM}"
    requests_mock.get(f"{company}/companyinfo/{REALM}", json=fixture(KEY, "companyinfo"))
    requests_mock.get(f"{company}/query", json=_query)
    requests_mock.get(f"{company}/reports/TrialBalance", json=_trial_balance)
    requests_mock.get(f"{company}/reports/GeneralLedger", json=_general_ledger)
    requests_mock.get(f"{company}/cdc", json=fixture(KEY, "cdc"))
