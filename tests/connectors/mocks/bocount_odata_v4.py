"""BoCount (Business Central) mocks: basic auth on an accountant's API v2.0 base URL, answered from
``connectors/bocount_odata_v4/fixtures/`` (trial balances by their ``dateFilter`` month, G/L entries
in two pages linked by ``@odata.nextLink``, or the entries since a ``lastModifiedDateTime`` filter)."""
import re
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "bocount_odata_v4"
FOLDER = "bocount_odata_v4"
BASE_URL = "https://bc.bocount.test/BC/api/v2.0"
COMPANY = "6f1e3c2a-8d4b-4e5f-9a7c-1b2d3e4f5a6b"
EMPTY = {"value": []}


def config():
    return {"base_url": BASE_URL, "endpoint_style": "api", "auth_method": "basic", "username": "FIRMSYNC",
            "web_service_access_key": "Wsk+9f3KQ2b7x1LmZ0pR4tV8yC6nE5hJ"}


def credentials():
    return {}


def reference():
    return COMPANY


def window():
    return SyncWindow(start=date(2024, 4, 1), end=date(2024, 5, 31), period_ends=(date(2024, 4, 30), date(2024, 5, 31)))


def trial_balance(request, context):
    month = re.search(r"dateFilter ge (\d{4}-\d\d)-01", request.qs.get("$filter", [""])[0], re.I)
    name = f"trial_balance_{month.group(1)}" if month else None
    return fixture(FOLDER, name) if name in ("trial_balance_2024-04", "trial_balance_2024-05") else EMPTY


def ledger_entries(request, context):
    if "$skiptoken" in request.qs:
        return fixture(FOLDER, "general_ledger_entries_page_2")
    if "$filter" in request.qs:
        return fixture(FOLDER, "general_ledger_entries_since")
    return fixture(FOLDER, "general_ledger_entries_page_1")


def register(requests_mock, base_url):
    company = f"{base_url}/companies({COMPANY})"
    requests_mock.get(f"{base_url}/companies", json=fixture(FOLDER, "companies"))
    requests_mock.get(f"{company}/accounts", json=fixture(FOLDER, "accounts"))
    requests_mock.get(f"{company}/accountingPeriods", json=fixture(FOLDER, "accounting_periods"))
    requests_mock.get(f"{company}/trialBalance", json=trial_balance)
    requests_mock.get(f"{company}/generalLedgerEntries", json=ledger_entries)
