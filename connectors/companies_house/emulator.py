"""Companies House: the public data API of ``connectors/companies_house/__init__.py``.

Base URL ``/companies-house``; HTTP basic auth with an API key as the user name and a blank
password (the sandbox's API keys, plus :data:`DEFAULT_KEY`). One UK company per sandbox
company, with a number derived from its id (``GET /_sandbox/companies-house/companies`` lists
them):

* ``GET /company/<number>``: the profile (``{"errors": [{"error": "company-profile-not-found"}]}``
  with 404 for an unknown number);
* ``GET /company/<number>/officers?items_per_page=&start_index=``;
* ``GET /company/<number>/persons-with-significant-control?items_per_page=&start_index=``;
* ``GET /search/companies?q=`` (what the connector's ``check`` calls).

Mode ``dissolved_renamed`` (:data:`MODES`) answers every company as dissolved and renamed.
"""
from __future__ import annotations

import random
import re
import zlib
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request

PACKAGE = "companies_house"
PREFIX = "/companies-house"
DEFAULT_KEY = "companies-house-key"
FORENAMES = ("Megan", "Thomas", "Aisha", "Owen", "Priya", "Callum", "Fiona", "Rhys", "Imogen", "Daniel")
SURNAMES = ("Hughes", "Patel", "MacLeod", "Evans", "O'Neill", "Clarke", "Ahmed", "Morgan", "Fraser", "Price")
ROLES = ("director", "director", "secretary", "director")
#: vendor variants (``/_sandbox/modes``, ``sandbox.modes(companies_house=[...])`` in tests)
MODES = {
    "dissolved_renamed": "profiles answer as dissolved companies renamed twice: company_status dissolved, "
                         "date_of_cessation and previous_company_names [{name, effective_from, ceased_on}]",
}


def company_number(book):
    """The sandbox company's Companies House number: 8 digits from its id."""
    return f"{zlib.crc32(book.spec.id.encode()) % 10 ** 8:08d}"


def _companies():
    return {company_number(book): book for book in current_app.extensions["sandbox"].books.values()}


def _not_found():
    return jsonify({"errors": [{"error": "company-profile-not-found", "type": "ch:service"}]}), 404


def _person(rng):
    return rng.choice(FORENAMES), rng.choice(FORENAMES), rng.choice(SURNAMES)


def people(book):
    """Deterministic officers and persons with significant control of a sandbox company."""
    rng = random.Random(book.seed)
    created = book.fiscal_years[0][0] - timedelta(days=365 * rng.randrange(2, 12))
    officers = []
    for index in range(rng.randrange(3, 6)):
        first, middle, last = _person(rng)
        appointed = created + timedelta(days=rng.randrange(0, 400) if index else 0)
        officer = {"name": f"{last.upper()}, {first} {middle}", "officer_role": ROLES[index % len(ROLES)],
                   "appointed_on": appointed.isoformat(), "nationality": "British",
                   "links": {"officer": {"appointments": f"/officers/sandbox-{book.spec.id}-{index}/appointments"}}}
        if index == 3:
            officer["resigned_on"] = (appointed + timedelta(days=900)).isoformat()
        officers.append(officer)
    owners = []
    for index, band in enumerate(("50-to-75", "25-to-50")):
        first, middle, last = _person(rng)
        owners.append({"kind": "individual-person-with-significant-control", "name": f"Mr {first} {middle} {last}",
                       "natures_of_control": [f"ownership-of-shares-{band}-percent", f"voting-rights-{band}-percent"],
                       "notified_on": (created + timedelta(days=30 * index)).isoformat()})
    return created, officers, owners


def _dissolved_renamed():
    return current_app.extensions["sandbox"].mode(PACKAGE, "dissolved_renamed")


def former_names(book, created):
    """Two earlier names, newest first, the current one in use since four years after incorporation."""
    name = re.sub(r"\s+(LTD|LIMITED|PLC|LLP)\.?$", "", book.spec.name.upper())
    renamed, current_since = created + timedelta(days=730), created + timedelta(days=1461)
    return [{"name": f"{name} HOLDINGS LIMITED", "effective_from": renamed.isoformat(),
             "ceased_on": current_since.isoformat()},
            {"name": f"{name} (UK) LIMITED", "effective_from": created.isoformat(), "ceased_on": renamed.isoformat()}]


def profile(number, book):
    created, _, _ = people(book)
    year_end = book.fiscal_years[-1][1]
    data = {
        "company_name": book.spec.name.upper(),
        "company_number": number,
        "company_status": "active",
        "type": "ltd",
        "jurisdiction": "england-wales",
        "date_of_creation": created.isoformat(),
        "registered_office_address": {"address_line_1": "1 Sandbox Street", "locality": "London",
                                      "postal_code": "EC1A 1AA", "country": "England"},
        "sic_codes": ["69201"],
        "accounts": {
            "accounting_reference_date": {"day": str(year_end.day), "month": str(year_end.month)},
            "next_made_up_to": year_end.isoformat(),
            "next_due": (year_end + timedelta(days=273)).isoformat(),
            "last_accounts": {"made_up_to": (year_end.replace(year=year_end.year - 1)).isoformat(),
                              "type": "micro-entity"},
        },
        "links": {"self": f"/company/{number}"},
    }
    if _dissolved_renamed():
        data.update(company_status="dissolved", date_of_cessation=(year_end + timedelta(days=120)).isoformat(),
                    previous_company_names=former_names(book, created))
    return data


def _paged(items, kind, path):
    try:
        start = max(0, int(request.args.get("start_index", 0)))
        size = min(100, max(1, int(request.args.get("items_per_page", 35))))
    except ValueError:
        return jsonify({"errors": [{"error": "invalid-parameters", "type": "ch:service"}]}), 400
    return jsonify({"kind": kind, "items": items[start:start + size], "start_index": start,
                    "items_per_page": size, "total_results": len(items), "links": {"self": path}})


def blueprint():
    bp = Blueprint(PACKAGE, __name__, url_prefix=PREFIX)

    @bp.before_request
    def authenticate():
        keys = set(current_app.extensions["sandbox"].api_keys) | {DEFAULT_KEY}
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username not in keys or auth.password:
            return jsonify({"error": "Invalid Authorization", "type": "ch:service"}), 401
        return None

    @bp.get("/company/<number>")
    def company(number):
        book = _companies().get(number)
        return jsonify(profile(number, book)) if book else _not_found()

    @bp.get("/company/<number>/officers")
    def officers(number):
        book = _companies().get(number)
        if book is None:
            return _not_found()
        return _paged(people(book)[1], "officer-list", request.path)

    @bp.get("/company/<number>/persons-with-significant-control")
    def persons_with_significant_control(number):
        book = _companies().get(number)
        if book is None:
            return _not_found()
        return _paged(people(book)[2], "persons-with-significant-control#list", request.path)

    @bp.get("/search/companies")
    def search():
        text = (request.args.get("q") or "").lower()
        status = "dissolved" if _dissolved_renamed() else "active"
        found = [{"title": book.spec.name.upper(), "company_number": number, "company_status": status}
                 for number, book in _companies().items() if text in book.spec.name.lower()]
        return _paged(found, "search#companies", request.path)

    return bp


def control_blueprint():
    bp = Blueprint("companies_house_control", __name__, url_prefix="/_sandbox/companies-house")

    @bp.get("/companies")
    def companies():
        return jsonify([{"number": number, "company": book.spec.id, "name": book.spec.name}
                        for number, book in _companies().items()])

    return bp


def register(app, state):
    """Mount Companies House at ``/companies-house`` and its control listing."""
    app.register_blueprint(blueprint())
    app.register_blueprint(control_blueprint())
