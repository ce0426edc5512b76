"""Horus mocks: one customer's own API host with two folders; folder F-0042 has two financial years, six
accounts and six account history lines, in the shapes connectors/horus/assumptions.py assumes (Horus' own
documentation is given only with a client id); fixtures in connectors/horus/fixtures/*.json. A fresh access
token is stored (no refresh needed); the token endpoint answers a rotated pair."""
import time
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "horus"
FOLDER = "F-0042"
BASE_URL = "https://horus.kantoor-peeters.be"


def config():
    return {"base_url": BASE_URL, "client_id": "firmsync-horus", "client_secret": "horus-secret-91b0e4"}


def credentials():
    return {"access_token": "horus-at-0d9c2b", "refresh_token": "horus-rt-8e4f1a", "token_type": "Bearer",
            "expires_at": int(time.time()) + 1800}


def reference():
    return FOLDER


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 12, 31))


def register(requests_mock, base_url):
    requests_mock.post(f"{base_url}/oauth/token", json=fixture(KEY, "token"))
    requests_mock.get(f"{base_url}/api/v1/folders", json=fixture(KEY, "folders"))
    for path, name in (("accounts", "accounts"), ("financialyears", "financial_years"),
                       ("accounthistories", "account_histories")):
        requests_mock.get(f"{base_url}/api/v1/{path}?folderId={FOLDER}", json=fixture(KEY, name))
