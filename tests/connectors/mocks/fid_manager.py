"""FID-Manager mocks: two company clients and a person on one page, one client's signalétique, in the shapes
connectors/fid_manager/assumptions.py guesses (FID-Manager publishes no API documentation); fixtures in
connectors/fid_manager/fixtures/*.json."""
from tests.connectors.mocks import fixture

KEY = "fid_manager"
FOLDER = "fid_manager"
BASE_URL = "https://app.fid-manager.com/api"
CLIENT = "1001"
TOKEN = "fid-firm-token-93c2e1"


def config():
    return {"base_url": BASE_URL, "api_key": TOKEN}


def credentials():
    return {}


def reference():
    return CLIENT


def register(requests_mock, base_url, folder=FOLDER):
    clients = f"{base_url.rstrip('/')}/v1/clients"
    requests_mock.get(clients, json=fixture(folder, "clients"))
    requests_mock.get(f"{clients}/{CLIENT}", json=fixture(folder, "client"))
