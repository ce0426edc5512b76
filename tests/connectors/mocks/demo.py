"""Demo Books mocks: the API key lives in the config; company c-1003."""
from tests.connectors.mocks import fixture

KEY = "demo"
BASE_URL = "https://demo.example.test/demo"
COMPANY = "c-1003"


def config():
    return {"base_url": BASE_URL, "api_key": "demo-api-key-7f3a9c"}


def credentials():
    return {}


def reference():
    return COMPANY


def register(requests_mock, base_url, key=KEY):
    api = f"{base_url}/api/v1"
    company = f"{api}/companies/{COMPANY}"
    requests_mock.get(f"{api}/companies", json=fixture(key, "companies"))
    requests_mock.get(f"{company}/fiscal-years", json=fixture(key, "fiscal_years"))
    requests_mock.get(f"{company}/accounts", json=fixture(key, "accounts"))
    requests_mock.get(f"{company}/balances", json=fixture(key, "balances"))
    page1, page2 = fixture(key, "ledger_lines_page1"), fixture(key, "ledger_lines_page2")
    requests_mock.get(f"{company}/ledger-lines", json=page1)
    requests_mock.get(f"{company}/ledger-lines?cursor={page1['next_cursor']}", json=page2)
    deleted1, deleted2 = fixture(key, "deleted_page1"), fixture(key, "deleted_page2")
    requests_mock.get(f"{company}/deleted-lines", json=deleted1)
    requests_mock.get(deleted1["next"], json=deleted2)
