"""Horus in the sandbox: one customer's own API host, ``/horus/fidu-demo``, as :mod:`.assumptions` assumes it.

OAuth2 authorisation code at ``/horus/fidu-demo/oauth/authorize`` and ``/oauth/token`` (client id and
secret in the form; access tokens of 30 minutes or the sandbox's ``token_seconds``; rotating refresh
tokens); data at ``/horus/fidu-demo/api/v1`` with ``Authorization: Bearer``: ``folders`` (the sandbox's
companies), then ``accounts``, ``financialyears`` and ``accounthistories?dateFrom=&dateTo=``, each with
``folderId``, answering ``{"data": [...], "meta": {...}}`` paged with ``page`` and ``pageSize``. A
``revoke`` fault revokes every token. Since Horus documents none of these shapes publicly, this emulator
is the assumptions made executable, not a recording.
"""
from flask import Blueprint, current_app, jsonify, request

from connectors.emulation.oauth_server import OAuthProvider

PACKAGE = "horus"
DISPLAY_NAME = "Horus"
PREFIX = "/horus/fidu-demo"
DEFAULT_CLIENTS = {"horus-sandbox-client": "horus-sandbox-secret"}
#: vendor variants (``sandbox.modes(horus=[...])``)
MODES = {"signed_amount": "account history lines carry one signed 'amount' instead of the assumed 'debit' and "
                          "'credit'"}

api = Blueprint("horus_api", __name__, url_prefix=PREFIX + "/api/v1")


def _state():
    return current_app.extensions["sandbox"]


def _error(message, status):
    return jsonify({"errors": [{"status": str(status), "detail": message}]}), status


@api.before_request
def _bearer():
    if not _state().oauth[PACKAGE].valid_bearer(request.headers.get("Authorization")):
        return _error("The access token is invalid or has expired.", 401)
    return None


def _page(rows):
    page, size = int(request.args.get("page", 1)), int(request.args.get("pageSize", 100))
    return jsonify({"data": rows[(page - 1) * size: page * size],
                    "meta": {"page": page, "pageSize": size, "total": len(rows)}})


def _book():
    return _state().books.get(request.args.get("folderId", ""))


@api.get("/folders")
def folders():
    return _page([{"id": company, "name": book.spec.name, "type": "folder"}
                  for company, book in sorted(_state().books.items())])


@api.get("/accounts")
def accounts():
    book = _book()
    if book is None:
        return _error("Folder not found.", 404)
    return _page([{"id": a["id"], "number": a["number"], "name": a["name"]} for a in book.accounts])


@api.get("/financialyears")
def financial_years():
    book = _book()
    if book is None:
        return _error("Folder not found.", 404)
    return _page([{"id": str(start.year), "startDate": str(start), "endDate": str(end)}
                  for start, end in book.fiscal_years])


@api.get("/accounthistories")
def account_histories():
    book = _book()
    if book is None:
        return _error("Folder not found.", 404)
    low, high = request.args.get("dateFrom", ""), request.args.get("dateTo", "9999")
    signed = _state().mode(PACKAGE, "signed_amount")
    rows = []
    for line in book.all_lines():
        if not low <= line["date"] <= high:
            continue
        row = {"id": line["id"], "bookEntryId": line["entry_id"], "date": line["date"],
               "accountNumber": line["account"], "description": line["description"],
               "documentNumber": line["reference"], "journalCode": line["journal"]}
        amount = float(line["amount"])
        if signed:
            row["amount"] = amount
        else:
            row["debit"], row["credit"] = max(amount, 0.0), max(-amount, 0.0)
        rows.append(row)
    return _page(rows)


def register(app, state):
    """Mount the customer host's OAuth server and API under ``/horus/fidu-demo``."""
    settings = app.config.get("SANDBOX") or {}
    provider = OAuthProvider(PACKAGE, DISPLAY_NAME, state,
                             clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
                             access_seconds=settings.get("token_seconds") or 1800, rotating=True)
    state.oauth[PACKAGE] = provider
    app.register_blueprint(provider.blueprint("horus_oauth", PREFIX))
    app.register_blueprint(api)
