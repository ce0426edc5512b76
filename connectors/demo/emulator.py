"""Demo Books: the API of Firmsync's own test package (connector ``connectors/demo.py``).

``/demo/api/v1`` with an ``X-Api-Key`` header:

* ``GET /companies`` -> ``{"companies": [...]}``
* ``GET /companies/<id>/fiscal-years`` -> ``{"fiscal_years": [{"start", "end"}]}``
* ``GET /companies/<id>/accounts?page=&per_page=`` -> page numbers
* ``GET /companies/<id>/balances?from=&to=&offset=&limit=`` -> offsets; monthly movements
* ``GET /companies/<id>/ledger-lines?modified_since=&after_id=&cursor=&limit=`` -> cursor,
  ordered by ``(modified_at, id)``
* ``GET /companies/<id>/deleted-lines?since=&after_id=&limit=`` -> ``next`` continuation URL

Errors are ``{"error": code, "message": text}``. :func:`data_blueprint` serves the same
data for Demo Cloud (``connectors/demo_oauth/emulator.py``) behind Bearer tokens.
"""
from __future__ import annotations

import base64
from datetime import date

from flask import Blueprint, current_app, jsonify, request, url_for

from connectors.emulation.books import parse_ts

PACKAGE = "demo"
MAX_LIMIT = 1000


def error(code, message, status):
    return jsonify({"error": code, "message": message}), status


def _state():
    return current_app.extensions["sandbox"]


def _book(company):
    return _state().books.get(company)


def _int(name, default, low=0, high=None):
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        value = default
    value = max(low, value)
    return min(value, high) if high else value


def encode_cursor(key):
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(text):
    padded = text + "=" * (-len(text) % 4)
    ts, line_id = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
    return int(ts), int(line_id)


def data_blueprint(name, url_prefix, authenticate):
    """The Demo data API under ``url_prefix``; ``authenticate()`` returns an error response or None."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.before_request
    def check_auth():
        return authenticate()

    @bp.get("/companies")
    def companies():
        return jsonify({"companies": [
            {"id": b.spec.id, "name": b.spec.name, "vat_number": b.spec.vat_number, "currency": b.spec.currency,
             "country": b.spec.country} for b in _state().books.values()
        ]})

    @bp.get("/companies/<company>/fiscal-years")
    def fiscal_years(company):
        book = _book(company)
        if book is None:
            return error("not_found", "Company not found", 404)
        return jsonify({"fiscal_years": [{"id": str(s.year), "start": s.isoformat(), "end": e.isoformat()}
                                         for s, e in book.fiscal_years]})

    @bp.get("/companies/<company>/accounts")
    def accounts(company):
        book = _book(company)
        if book is None:
            return error("not_found", "Company not found", 404)
        page, per_page = _int("page", 1, 1), _int("per_page", 100, 1, MAX_LIMIT)
        rows = book.accounts[(page - 1) * per_page: page * per_page]
        return jsonify({"accounts": rows, "page": page, "per_page": per_page, "total": len(book.accounts)})

    @bp.get("/companies/<company>/balances")
    def balances(company):
        book = _book(company)
        if book is None:
            return error("not_found", "Company not found", 404)
        try:
            start = date.fromisoformat(request.args.get("from", "0001-01-01"))
            end = date.fromisoformat(request.args.get("to", "9999-12-31"))
        except ValueError:
            return error("bad_request", "from and to must be dates (YYYY-MM-DD)", 400)
        offset, limit = _int("offset", 0), _int("limit", 500, 1, MAX_LIMIT)
        rows = [{"account": account, "period_end": period_end, "movement": str(amount)}
                for (period_end, account), amount in book.movements().items()
                if start <= date.fromisoformat(period_end) <= end]
        return jsonify({"balances": rows[offset: offset + limit], "offset": offset, "limit": limit,
                        "total": len(rows)})

    @bp.get("/companies/<company>/ledger-lines")
    def ledger_lines(company):
        book = _book(company)
        if book is None:
            return error("not_found", "Company not found", 404)
        limit = _int("limit", 500, 1, MAX_LIMIT)
        try:
            if request.args.get("cursor"):
                after = decode_cursor(request.args["cursor"])
            elif request.args.get("modified_since"):
                after = (parse_ts(request.args["modified_since"]), _int("after_id", 0))
            else:
                after = None
        except ValueError:
            return error("bad_request", "Invalid cursor or modified_since (use YYYY-MM-DDTHH:MM:SSZ)", 400)
        lines = book.lines_after(after, limit)
        following = None
        if len(lines) == limit:
            following = encode_cursor((parse_ts(lines[-1]["modified_at"]), lines[-1]["id"]))
        return jsonify({"lines": lines, "next_cursor": following})

    @bp.get("/companies/<company>/deleted-lines")
    def deleted_lines(company):
        book = _book(company)
        if book is None:
            return error("not_found", "Company not found", 404)
        limit = _int("limit", 500, 1, MAX_LIMIT)
        try:
            after = (parse_ts(request.args["since"]), _int("after_id", 0)) if request.args.get("since") else None
        except ValueError:
            return error("bad_request", "Invalid since (use YYYY-MM-DDTHH:MM:SSZ)", 400)
        rows = book.deleted_after(after, limit)
        following = None
        if len(rows) == limit:
            following = url_for(f"{name}.deleted_lines", company=company, since=rows[-1]["deleted_at"],
                                after_id=rows[-1]["id"], limit=limit, _external=True)
        return jsonify({"deleted": rows, "next": following})

    return bp


def _api_key():
    if request.headers.get("X-Api-Key") not in _state().api_keys:
        return error("unauthorized", "Invalid API key", 401)
    return None


def register(app, state):
    """Mount Demo Books at ``/demo/api/v1``."""
    app.register_blueprint(data_blueprint(PACKAGE, "/demo/api/v1", _api_key))

