"""Skeleton Books in the sandbox: ``/skeleton`` with an ``X-Api-Key`` header, over the generated books.

``GET /companies``, ``GET /companies/<id>/accounts?page=&size=`` (``items``; codes padded as
the example vendor pads them), ``GET /companies/<id>/lines?cursor=`` or ``?changed_since=&after_id=``
(``items`` ordered by change time, and ``next``). Replace these answers with the vendor's documented shapes.
"""
from flask import Blueprint, current_app, jsonify, request

from connectors.emulation.books import parse_ts

PACKAGE = "skeleton"
#: vendor variants (``sandbox.modes(skeleton=[...])``)
MODES = {"amounts_as_strings": "amounts come as strings instead of numbers"}
PAGE = 100

api = Blueprint("skeleton", __name__, url_prefix="/skeleton")


def _state():
    return current_app.extensions["sandbox"]


@api.before_request
def _key():
    if request.headers.get("X-Api-Key") not in _state().api_keys:
        return jsonify({"message": "Invalid API key"}), 401
    return None


def _book(company):
    book = _state().books.get(company)
    if book is None:
        return None, (jsonify({"message": "No such company"}), 404)
    return book, None


@api.get("/companies")
def companies():
    return jsonify([{"id": b.spec.id, "name": b.spec.name + "  "} for b in _state().books.values()])


@api.get("/companies/<company>/accounts")
def accounts(company):
    book, refused = _book(company)
    if refused:
        return refused
    page, size = int(request.args.get("page", 1)), int(request.args.get("size", PAGE))
    rows = book.accounts[(page - 1) * size: page * size]
    return jsonify({"items": [{"code": f"{a['number']:<8}", "name": a["name"], "kind": a["type"]} for a in rows]})


@api.get("/companies/<company>/lines")
def lines(company):
    book, refused = _book(company)
    if refused:
        return refused
    after = None
    if request.args.get("cursor"):
        moment, _, line_id = request.args["cursor"].partition("|")
        after = (parse_ts(moment), int(line_id or 0))
    elif request.args.get("changed_since"):
        after = (parse_ts(request.args["changed_since"]), int(request.args.get("after_id", 0)))
    page = book.lines_after(after, PAGE)
    as_text = _state().mode(PACKAGE, "amounts_as_strings")
    items = [{"id": line["id"], "date": line["date"], "account": line["account"], "text": line["description"],
              "amount": line["amount"] if as_text else float(line["amount"]),
              "changed_at": line["modified_at"]} for line in page]
    following = f"{page[-1]['modified_at']}|{page[-1]['id']}" if len(page) == PAGE else None
    return jsonify({"items": items, "next": following})


def register(app, state):
    """Mount Skeleton Books under ``/skeleton``."""
    app.register_blueprint(api)

