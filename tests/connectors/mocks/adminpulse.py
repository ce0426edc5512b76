"""AdminPulse mocks: two company relations (and a person) on one page, one company's data."""
from tests.connectors.mocks import fixture

KEY = "adminpulse"
FOLDER = "adminpulse"
BASE_URL = "https://api.adminpulse.be"
RELATION = "5f1c2a9e-3b7d-4c1e-9a41-2d6e8f0b7c13"


def config():
    return {"base_url": BASE_URL, "api_key": "ap-office-key-7c41e9"}


def credentials():
    return {}


def reference():
    return RELATION


def register(requests_mock, base_url, folder=FOLDER):
    base = base_url.rstrip("/")
    requests_mock.get(f"{base}/relations", json=fixture(folder, "relations"))
    requests_mock.get(f"{base}/companies?relationIdentifier={RELATION}", json=fixture(folder, "company"))
