"""Companies House mocks: company 09876543 (two pages of officers), the key in the config."""
from tests.connectors.mocks import fixture

KEY = "companies_house"
BASE_URL = "https://api.company-information.service.gov.uk"
NUMBER = "09876543"


def config():
    return {"base_url": BASE_URL, "api_key": "ch-live-key-3b9f27d1"}


def credentials():
    return {}


def reference():
    return NUMBER


def register(requests_mock, base_url):
    company = f"{base_url.rstrip('/')}/company/{NUMBER}"
    requests_mock.get(f"{base_url.rstrip('/')}/search/companies", json={"items": [], "total_results": 0})
    requests_mock.get(company, json=fixture(KEY, "company_profile"))
    requests_mock.get(f"{company}/officers", json=fixture(KEY, "officers_page1"))
    requests_mock.get(f"{company}/officers?start_index=2", json=fixture(KEY, "officers_page2"))
    requests_mock.get(f"{company}/persons-with-significant-control", json=fixture(KEY, "psc"))
