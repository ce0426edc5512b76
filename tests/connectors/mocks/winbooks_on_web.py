"""Winbooks On Web mocks: folder ACME with two book years, six GL accounts and eight GLTrans lines answered in
two pages (the second asked for with the ``ContinuePath`` header); fixtures in
connectors/winbooks_on_web/fixtures/*.json, shaped as connectors/winbooks_on_web/assumptions.py assumes (Winbooks
publishes no spec or recording)."""
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "winbooks_on_web"
FOLDER = "ACME"
EXCHANGE_TOKEN = "wow-exchange-5b7d21"


def config():
    return {"base_url": "https://rapi.winbooksonweb.be", "email": "licence@kantoor.be",
            "exchange_token": EXCHANGE_TOKEN, "folders": FOLDER}


def credentials():
    return {}


def reference():
    return FOLDER


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 12, 31))


def register(requests_mock, base_url):
    requests_mock.post(f"{base_url}/OAuth20/Token", json=fixture(KEY, "token"))
    requests_mock.get(f"{base_url}/app/BookYears/Folder/{FOLDER}", json=fixture(KEY, "book_years"))
    requests_mock.get(f"{base_url}/app/GLAccounts/Folder/{FOLDER}", json=fixture(KEY, "gl_accounts"))
    criteria = f"{base_url}/app/GLTrans/Folder/{FOLDER}/ExecuteCriteria"
    requests_mock.post(criteria, json=fixture(KEY, "gl_trans_page_1"), headers={"ContinuePath": "page-2"})
    requests_mock.post(criteria, json=fixture(KEY, "gl_trans_page_2"), request_headers={"ContinuePath": "page-2"})
