"""Corporify: the API ``connectors/corporify/assumptions.py`` guesses (Corporify publishes none).

Base URL ``/corporify``; ``X-Api-Key`` with the sandbox's API keys or :data:`DEFAULT_KEY`. Every sandbox
company with a Belgian VAT number is a legal entity whose enterprise number is the VAT number's digits:

* ``GET /api/v1/entities?page=&pageSize=``: ``{"items": [{enterpriseNumber, name}], "total"}``;
* ``GET /api/v1/entities/<number>``: the entity (404 when unknown);
* ``GET /api/v1/entities/<number>/mandates`` and ``.../shareholders``: ``{"items": [...]}``.

Tests steer it in-process through ``sandbox.state.oauth["corporify"]`` (:class:`Silo`): ``revoke_all()``
(the sandbox's ``revoke`` fault does the same) and ``rename_officer``.
"""
import random
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request

PACKAGE = "corporify"
PREFIX = "/corporify"
DEFAULT_KEY = "corporify-key"
FIRST = ("Sofie", "Pieter", "Lotte", "Wouter", "Nathalie", "Koen", "Elise", "Jan")
LAST = ("Peeters", "Janssens", "Maes", "Jacobs", "Willems", "Claes", "Goossens", "Wouters")
MANDATES = ("Bestuurder", "Gedelegeerd bestuurder", "Voorzitter")
#: vendor variants (``sandbox.modes(corporify=[...])``)
MODES = {
    "french_fields": "mandates carry 'titulaire' and 'fonction' instead of the assumed 'holderName' and 'mandate': "
                     "the run fails naming “holderName”, writes nothing, and the diagnostic shows the shape that came",
}


class Silo:
    """The emulated customer environment: a revoked key and officer renames; reset by the sandbox."""

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


def enterprise_number(book):
    """The 10 digits of a Belgian sandbox company's enterprise number (None for other countries)."""
    vat = book.spec.vat_number or ""
    return vat[2:] if vat.startswith("BE") else None


def _entities():
    return {enterprise_number(book): book for book in _state().books.values() if enterprise_number(book)}


def _people(book):
    rng = random.Random(book.seed)
    founded = book.fiscal_years[0][0] - timedelta(days=365 * rng.randrange(2, 10))
    renamed = _state().oauth[PACKAGE].renamed.get(book.spec.id, {})
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(3)]
    return founded, [renamed.get(name, name) for name in names], names


def entity(book):
    """The legal entity of a sandbox company (deterministic from its seed)."""
    founded, _, _ = _people(book)
    rng = random.Random(book.seed + 1)
    year_end = book.fiscal_years[-1][1]
    return {"enterpriseNumber": enterprise_number(book), "name": book.spec.name, "vatNumber": book.spec.vat_number,
            "legalForm": "BV", "status": "Active", "incorporationDate": founded.isoformat(),
            "registeredOffice": {"street": "Meir", "houseNumber": str(rng.randrange(1, 200)), "box": None,
                                 "postalCode": "2000", "city": "Antwerpen", "countryCode": "be"},
            "fiscalYearEnd": f"{year_end.day:02d}/{year_end.month:02d}",
            "annualMeetingDate": "third Thursday of May", "capital": {"amount": "20000", "currency": "EUR"}}


def mandates(book):
    founded, people, _ = _people(book)
    french = _state().mode(PACKAGE, "french_fields")
    rows = []
    for index, name in enumerate(people):
        start = (founded + timedelta(days=180 * index)).isoformat()
        if french:
            rows.append({"titulaire": name, "organe": "Conseil d'administration", "fonction": MANDATES[index],
                         "debut": start})
        else:
            rows.append({"holderName": name, "governingBody": "Raad van bestuur", "mandate": MANDATES[index],
                         "startDate": start, "endDate": None})
    return rows


def shareholders(book):
    founded, people, _ = _people(book)
    return [{"holderName": people[0], "shareClass": "A", "numberOfShares": 150, "percentage": "75",
             "since": founded.isoformat()},
            {"holderName": people[1], "shareClass": "A", "numberOfShares": 50, "percentage": "25",
             "since": founded.isoformat()}]


def _error(status, message):
    return jsonify({"error": message}), status


def _page(items):
    try:
        page = max(1, int(request.args.get("page", 1)))
        size = max(1, min(100, int(request.args.get("pageSize", 100))))
    except ValueError:
        return _error(400, "page and pageSize must be numbers")
    return jsonify({"items": items[(page - 1) * size:page * size], "total": len(items)})


def blueprint():
    bp = Blueprint(PACKAGE, __name__, url_prefix=PREFIX)

    @bp.before_request
    def authenticate():
        keys = set(_state().api_keys) | {DEFAULT_KEY}
        if request.headers.get("X-Api-Key") not in keys or _state().oauth[PACKAGE].revoked:
            return _error(401, "Invalid API key")
        return None

    @bp.get("/api/v1/entities")
    def entities():
        return _page([{"enterpriseNumber": number, "name": book.spec.name} for number, book in _entities().items()])

    def _book(number):
        book = _entities().get(number)
        if book is None:
            return None, _error(404, "Entity not found")
        return book, None

    @bp.get("/api/v1/entities/<number>")
    def one(number):
        book, missing = _book(number)
        return missing or jsonify(entity(book))

    @bp.get("/api/v1/entities/<number>/mandates")
    def entity_mandates(number):
        book, missing = _book(number)
        return missing or _page(mandates(book))

    @bp.get("/api/v1/entities/<number>/shareholders")
    def entity_shareholders(number):
        book, missing = _book(number)
        return missing or _page(shareholders(book))

    return bp


def register(app, state):
    """Mount Corporify at ``/corporify``; its silo state rides on ``state.oauth`` (reset, revoke)."""
    state.oauth[PACKAGE] = Silo()
    app.register_blueprint(blueprint())
