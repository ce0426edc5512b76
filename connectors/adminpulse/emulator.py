"""AdminPulse: the office API of ``connectors/adminpulse/__init__.py`` (shapes: its ``SHAPE``).

Base URL ``/adminpulse``; ``Authorization: Bearer <key>`` with the sandbox's API keys or
:data:`DEFAULT_KEY`. Every sandbox company is a relation of type company (plus two
persons, which the connector must skip), with a ``uniqueIdentifier`` derived from its id:

* ``GET /relations?page=&pageSize=&vatNumber=&name=``: ``{"results": [...], "totalCount"}``
  (``pageSize`` above 400 is a 400 error, as AdminPulse documents);
* ``GET /companies?relationIdentifier=``: the company data (``results`` empty when unknown).

Tests steer it in-process through ``sandbox.state.oauth["adminpulse"]`` (:class:`Office`):
``revoke_all()`` (the sandbox's ``revoke`` fault does the same) and ``rename_officer``.
"""
from __future__ import annotations

import random
import uuid
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request

PACKAGE = "adminpulse"
PREFIX = "/adminpulse"
DEFAULT_KEY = "adminpulse-key"
MAX_PAGE_SIZE = 400
FIRST = ("Sofie", "Pieter", "Lotte", "Wouter", "Nathalie", "Koen", "Elise", "Jan")
LAST = ("Peeters", "Janssens", "Maes", "Jacobs", "Willems", "Claes", "Goossens", "Wouters")
FUNCTIONS = ("Zaakvoerder", "Bestuurder", "Gedelegeerd bestuurder", "Voorzitter raad van bestuur")
#: vendor variants (``sandbox.modes(adminpulse=[...])``)
MODES = {
    "no_fiscal_year": "companies answer without a fiscal year end, general meeting date or capital",
}


class Office:
    """The emulated office: revoked keys and officer renames; reset by the sandbox."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.revoked = False
        self.renamed = {}  # company id -> {old name: new name}

    def revoke_all(self):
        self.revoked = True

    def rename_officer(self, company, old, new):
        self.renamed.setdefault(company, {})[old] = new


def _state():
    return current_app.extensions["sandbox"]


def identifier(book):
    """The relation's ``uniqueIdentifier``: a UUID derived from the sandbox company id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"adminpulse:{book.spec.id}"))


def _books():
    return {identifier(book): book for book in _state().books.values()}


def relation(book):
    return {"uniqueIdentifier": identifier(book), "type": "Company", "name": book.spec.name,
            "vatNumber": book.spec.vat_number or None}


def persons():
    return [{"uniqueIdentifier": str(uuid.uuid5(uuid.NAMESPACE_URL, f"adminpulse:person:{n}")), "type": "Person",
             "name": name, "vatNumber": None} for n, name in enumerate(("Sofie Peeters", "Koen Maes"))]


def company(book):
    """The company data of a sandbox company (deterministic from its seed)."""
    rng = random.Random(book.seed)
    founded = book.fiscal_years[0][0] - timedelta(days=365 * rng.randrange(2, 10))
    year_end = book.fiscal_years[-1][1]
    renamed = _state().oauth[PACKAGE].renamed.get(book.spec.id, {})
    board = []
    for index in range(3):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        board.append({"name": renamed.get(name, name), "function": FUNCTIONS[index % len(FUNCTIONS)],
                      "startDate": (founded + timedelta(days=200 * index)).isoformat() + "T00:00:00",
                      "endDate": None})
    owners = [{"name": board[0]["name"], "numberOfShares": 60, "percentage": 60.0},
              {"name": board[1]["name"], "numberOfShares": 40, "percentage": 40.0}]
    vat = book.spec.vat_number or ""
    data = {
        "relationIdentifier": identifier(book), "name": book.spec.name, "vatNumber": vat or None,
        "enterpriseNumber": vat[2:] if vat.startswith("BE") else None, "legalForm": "BV", "status": "Active",
        "foundingDate": founded.isoformat(),
        "address": {"street": "Kerkstraat", "number": str(rng.randrange(1, 200)), "postalCode": "2000",
                    "city": "Antwerpen", "country": "BE"},
        "fiscalYearEnd": f"{year_end.day:02d}/{year_end.month:02d}",
        "generalMeetingDate": "second Tuesday of June", "capital": {"amount": 18550, "currency": "EUR"},
        "boardMembers": board, "shareholders": owners,
    }
    if _state().mode(PACKAGE, "no_fiscal_year"):
        data.update(fiscalYearEnd=None, generalMeetingDate=None, capital=None)
    return data


def _error(status, message):
    return jsonify({"message": message}), status


def blueprint():
    bp = Blueprint(PACKAGE, __name__, url_prefix=PREFIX)

    @bp.before_request
    def authenticate():
        keys = set(_state().api_keys) | {DEFAULT_KEY}
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in keys or _state().oauth[PACKAGE].revoked:
            return _error(401, "Unauthorized")
        return None

    @bp.get("/relations")
    def relations():
        try:
            page = max(1, int(request.args.get("page", 1)))
            size = int(request.args.get("pageSize", 50))
        except ValueError:
            return _error(400, "page and pageSize must be numbers")
        if not 1 <= size <= MAX_PAGE_SIZE:
            return _error(400, f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        items = [relation(book) for book in _books().values()] + persons()
        vat = (request.args.get("vatNumber") or "").upper()
        name = (request.args.get("name") or "").lower()
        if vat:
            items = [i for i in items if (i["vatNumber"] or "").upper().endswith(vat.removeprefix("BE"))]
        if name:
            items = [i for i in items if name in i["name"].lower()]
        start = (page - 1) * size
        return jsonify({"results": items[start:start + size], "page": page, "pageSize": size,
                        "totalCount": len(items)})

    @bp.get("/companies")
    def companies():
        wanted = request.args.get("relationIdentifier")
        book = _books().get(wanted)
        return jsonify({"results": [company(book)] if book else [], "page": 1, "pageSize": 1,
                        "totalCount": 1 if book else 0})

    return bp


def register(app, state):
    """Mount AdminPulse at ``/adminpulse``; its office state rides on ``state.oauth`` (reset, revoke)."""
    state.oauth[PACKAGE] = Office()
    app.register_blueprint(blueprint())
