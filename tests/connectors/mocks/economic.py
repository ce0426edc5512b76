"""e-conomic mocks: agreement 754189 on restapi.e-conomic.com, recorded-shape fixtures (two-page lists)."""
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "economic"
BASE_URL = "https://restapi.e-conomic.com"
AGREEMENT = "754189"
PERIOD_ENDS = (date(2024, 1, 31), date(2024, 2, 29))


def config():
    return {"app_secret_token": "econ-app-secret-5b7d21", "app_public_id": "pub-firmsync-0001",
            "base_url": BASE_URL, "consent_url": "https://secure.e-conomic.com/secure/api1/requestaccess.aspx"}


def credentials():
    return {"agreement_grant_token": "econ-grant-9f0c44e1a2"}


def reference():
    return AGREEMENT


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 2, 29), period_ends=PERIOD_ENDS)


def register(requests_mock, base_url):
    def pages(path, first, second=None):
        requests_mock.get(f"{base_url}/{path}?skippages=0", json=fixture(KEY, first))
        if second:
            requests_mock.get(f"{base_url}/{path}?skippages=1", json=fixture(KEY, second))

    requests_mock.get(f"{base_url}/self", json=fixture(KEY, "self"))
    pages("accounts", "accounts_page1", "accounts_page2")
    pages("accounting-years", "accounting_years")
    pages("accounting-years/2024/periods", "periods_2024")
    for month in (1, 2):
        pages(f"accounting-years/2024/periods/{month}/totals", f"totals_2024_{month}")
    pages("accounting-years/2024/entries", "entries_2024_page1", "entries_2024_page2")
