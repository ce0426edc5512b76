"""Corporify mocks: legal entity 0456.789.012 with two mandates and two shareholders, in the shapes
connectors/corporify/assumptions.py guesses (Corporify publishes no API documentation); fixtures in
connectors/corporify/fixtures/*.json."""
from tests.connectors.mocks import fixture

KEY = "corporify"
FOLDER = "corporify"
BASE_URL = "https://api.corporify.com"
NUMBER = "0456789012"
API_KEY = "corp-silo-key-5e21b7"


def config():
    return {"base_url": BASE_URL, "api_key": API_KEY}


def credentials():
    return {}


def reference():
    return NUMBER


def register(requests_mock, base_url, folder=FOLDER):
    entities = f"{base_url.rstrip('/')}/api/v1/entities"
    requests_mock.get(entities, json=fixture(folder, "entities"))
    requests_mock.get(f"{entities}/{NUMBER}", json=fixture(folder, "entity"))
    requests_mock.get(f"{entities}/{NUMBER}/mandates", json=fixture(folder, "mandates"))
    requests_mock.get(f"{entities}/{NUMBER}/shareholders", json=fixture(folder, "shareholders"))
