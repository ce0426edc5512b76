"""FID-Manager: the API ``connectors/fid_manager/assumptions.py`` guesses (FID-Manager publishes none).

Base URL ``/fid_manager``; ``Authorization: Bearer <token>`` with the sandbox's API keys or
:data:`DEFAULT_TOKEN`. Every sandbox company is a client of type company whose id is its number
(``c-1001`` -> ``1001``), plus one person (``9001``), which the connector must skip:

* ``GET /api/v1/clients?page=&per_page=``: ``{"data": [{id, name, type}], "meta": {...}}``;
* ``GET /api/v1/clients/<id>``: ``{"data": <signalétique>}`` (404 when unknown).

Tests steer it in-process through ``sandbox.state.oauth["fid_manager"]`` (:class:`Firm`): ``revoke_all()``
(the sandbox's ``revoke`` fault does the same) and ``rename_officer``.
"""
import random
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request

PACKAGE = "fid_manager"
PREFIX = "/fid_manager"
DEFAULT_TOKEN = "fid-manager-token"
PERSON = {"id": 9001, "name": "Sofie Peeters", "type": "person"}
FIRST = ("Sofie", "Pieter", "Lotte", "Wouter", "Nathalie", "Koen", "Elise", "Jan")
LAST = ("Peeters", "Janssens", "Maes", "Jacobs", "Willems", "Claes", "Goossens", "Wouters")
CAPACITIES = ("Zaakvoerder", "Bestuurder", "Vaste vertegenwoordiger")
#: vendor variants (``sandbox.modes(fid_manager=[...])``)
MODES = {
    "dutch_fields": "mandataries carry 'naam' and 'hoedanigheid' instead of the assumed 'name' and 'capacity': "
                    "the run fails naming “name”, writes nothing, and the diagnostic shows the shape that came",
}


class Firm:
    """The emulated firm account: a revoked token and officer renames; reset by the sandbox."""

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


def client_id(book):
    """The FID-Manager client id of a sandbox company: the digits of its id."""
    return int("".join(ch for ch in book.spec.id if ch.isdigit()) or 0)


def _clients():
    return {client_id(book): book for book in _state().books.values()}


def signaletique(book):
    """The client record of a sandbox company (deterministic from its seed)."""
    rng = random.Random(book.seed + 2)
    founded = book.fiscal_years[0][0] - timedelta(days=365 * rng.randrange(2, 10))
    renamed = _state().oauth[PACKAGE].renamed.get(book.spec.id, {})
    people = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(3)]
    people = [renamed.get(name, name) for name in people]
    dutch = _state().mode(PACKAGE, "dutch_fields")
    mandataries = []
    for index, name in enumerate(people):
        start = (founded + timedelta(days=150 * index)).isoformat()
        mandataries.append({"naam": name, "hoedanigheid": CAPACITIES[index], "begin": start} if dutch else
                           {"name": name, "capacity": CAPACITIES[index], "startDate": start, "endDate": None})
    vat = book.spec.vat_number or ""
    year_end = book.fiscal_years[-1][1]
    return {"id": client_id(book), "name": book.spec.name, "type": "company", "legalForm": "BV",
            "companyNumber": vat[2:] if vat.startswith("BE") else None, "vatNumber": vat or None,
            "address": {"street": "Grote Markt", "number": str(rng.randrange(1, 99)), "box": None, "zip": "9000",
                        "city": "Gent", "country": "BE"},
            "foundedOn": founded.isoformat(), "fiscalYearEnd": f"{year_end.day:02d}/{year_end.month:02d}",
            "mandataries": mandataries,
            "shareholders": [{"name": people[0], "shares": 500, "percentage": 50},
                             {"name": people[1], "shares": 500, "percentage": 50}]}


def _error(status, message):
    return jsonify({"message": message}), status


def blueprint():
    bp = Blueprint(PACKAGE, __name__, url_prefix=PREFIX)

    @bp.before_request
    def authenticate():
        tokens = set(_state().api_keys) | {DEFAULT_TOKEN}
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in tokens or _state().oauth[PACKAGE].revoked:
            return _error(401, "Unauthenticated.")
        return None

    @bp.get("/api/v1/clients")
    def clients():
        try:
            page = max(1, int(request.args.get("page", 1)))
            size = max(1, min(100, int(request.args.get("per_page", 15))))
        except ValueError:
            return _error(422, "page and per_page must be numbers")
        items = [{"id": cid, "name": book.spec.name, "type": "company"} for cid, book in _clients().items()]
        items.append(dict(PERSON))
        return jsonify({"data": items[(page - 1) * size:page * size],
                        "meta": {"current_page": page, "per_page": size, "total": len(items)}})

    @bp.get("/api/v1/clients/<int:client>")
    def client(client):
        book = _clients().get(client)
        if book is None:
            return _error(404, "Client not found.")
        return jsonify({"data": signaletique(book)})

    return bp


def register(app, state):
    """Mount FID-Manager at ``/fid_manager``; its firm state rides on ``state.oauth`` (reset, revoke)."""
    state.oauth[PACKAGE] = Firm()
    app.register_blueprint(blueprint())
