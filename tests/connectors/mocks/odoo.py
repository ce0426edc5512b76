"""Odoo mocks: an Odoo 19 database ``bakkerij-janssens`` with two companies, JSON-2 answers from
connectors/odoo/fixtures (shaped as Odoo answers them); ``common.version`` over XML-RPC picks the protocol.
Lines are answered as ``search_read`` would: ordered and limited as asked."""
import json
import re
from datetime import date

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture, fixtures_of

KEY = "odoo"
BASE_URL = "https://bakkerij-janssens.odoo.com"
DATABASE = "bakkerij-janssens"
API_KEY = "3f1c9a7e5b2d4c8a9e0f1b2c3d4e5f6a7b8c9d0e"


def config():
    return {"base_url": BASE_URL, "database": DATABASE, "login": "boekhouding@janssens.be", "api_key": API_KEY,
            "protocol": "auto", "odoo_com_url": "https://www.odoo.com"}


def credentials():
    return {}


def reference():
    return f"{DATABASE}:1"


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 2, 29), period_ends=(date(2024, 1, 31), date(2024, 2, 29)))


def answer(model, method, body):
    """The fixture answering ``model``/``method`` for the JSON-2 ``body``."""
    if method == "fields_get":
        return fixture(KEY, f"{model.replace('.', '_')}_fields_get")
    if model == "res.users":
        return fixture(KEY, "context_get")
    if model == "account.move.line" and method == "search_read":
        rows = fixture(KEY, "account_move_line_search_read")
        order = (body.get("order") or "id").split(",")[0].split()
        rows = sorted(rows, key=lambda r: (r[order[0]], r["id"]), reverse=order[-1] == "desc")
        return rows[: body.get("limit") or None]
    if model == "account.move.line" and method == "search":
        return fixture(KEY, "account_move_line_search")
    if method == "formatted_read_group":
        return fixture(KEY, "formatted_read_group_19") if "date:month" in body.get("groupby", []) else []
    return fixture(KEY, f"{model.replace('.', '_')}_{method}")


def register(requests_mock, base_url):
    def json2(request, context):
        model, method = re.search(r"/json/2/([^/]+)/([^/]+)$", request.path).groups()
        context.headers["Content-Type"] = "application/json; charset=utf-8"
        return json.dumps(answer(model, method, request.json() or {}))

    requests_mock.post(f"{base_url}/xmlrpc/2/common", text=(fixtures_of(KEY) / "version_19.xml").read_text(),
                       headers={"Content-Type": "text/xml"})
    requests_mock.post(re.compile(re.escape(base_url) + r"/json/2/"), text=json2)
