"""Virk CVR mocks: the company index answers one company (CVR 25313763) to every search."""
from tests.connectors.mocks import fixture

KEY = "virk_cvr"
FOLDER = "virk_cvr"
BASE_URL = "http://distribution.virk.dk"
CVR = "25313763"


def config():
    return {"base_url": BASE_URL, "username": "firmsync-virk", "password": "virk-secret-pa55"}


def credentials():
    return {}


def reference():
    return CVR


def register(requests_mock, base_url, folder=FOLDER):
    requests_mock.post(f"{base_url.rstrip('/')}/cvr-permanent/virksomhed/_search",
                       json=fixture(folder, "company_search"))
