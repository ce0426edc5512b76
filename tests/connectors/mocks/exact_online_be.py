"""Exact Online (BE) mocks: division 1234567 on start.exactonline.be; shared by the FR and NL mocks."""
import json
import time

from tests.connectors.mocks import fixtures_of

KEY = "exact_online_be"
BASE_URL = "https://start.exactonline.be"
DIVISION = "1234567"
#: the host the fixtures' ``__next`` links were recorded on
RECORDED_HOST = "https://start.exactonline.be"


def fixture(name, base_url=RECORDED_HOST):
    """``connectors/exact_online/fixtures/<name>.json`` with its links moved to ``base_url``."""
    text = (fixtures_of("exact_online") / f"{name}.json").read_text()
    return json.loads(text.replace(RECORDED_HOST, base_url.rstrip("/")))


def config(base_url=BASE_URL):
    return {"base_url": base_url, "client_id": "b81cc4de-6ad2-4dd5-9a2b-7c0e5f1d2a3b",
            "client_secret": "exact-client-secret-9d41", "accountant_divisions": True}


def credentials():
    return {"access_token": "gAAAA-exact-access-4c1e", "refresh_token": "Stuv-exact-refresh-7a2d",
            "token_type": "bearer", "expires_at": int(time.time()) + 540}


def reference():
    return DIVISION


def register(requests_mock, base_url):
    api = f"{base_url.rstrip('/')}/api/v1"
    division = f"{api}/{DIVISION}"
    requests_mock.get(f"{api}/current/Me", json=fixture("current_me", base_url))
    page1 = fixture("all_divisions_page1", base_url)
    requests_mock.get(f"{division}/system/AllDivisions", json=page1)
    requests_mock.get(page1["d"]["__next"], json=fixture("all_divisions_page2", base_url))
    requests_mock.get(f"{division}/system/Divisions", json=fixture("divisions", base_url))
    requests_mock.get(f"{division}/financial/FinancialPeriods", json=fixture("financial_periods", base_url))
    requests_mock.get(f"{division}/financial/GLAccounts", json=fixture("gl_accounts", base_url))
    for year in (2024, 2025):
        requests_mock.get(f"{division}/financial/ReportingBalance?$filter=ReportingYear%20eq%20{year}",
                          json=fixture(f"reporting_balance_{year}", base_url))
    lines = fixture("transaction_lines_page1", base_url)
    requests_mock.get(f"{division}/sync/Financial/TransactionLines", json=lines)
    requests_mock.get(lines["d"]["__next"], json=fixture("transaction_lines_page2", base_url))
    requests_mock.get(f"{division}/sync/Deleted", json=fixture("deleted", base_url))
