"""Virk CVR: the company index of ``connectors/virk_cvr/__init__.py``, answering like Elasticsearch 6.

Base URL ``/virk``; HTTP basic with :data:`USERNAME` / :data:`PASSWORD`. Every sandbox company
is a Danish company with a CVR number derived from its id (``GET /_sandbox/virk/companies``):

* ``POST /cvr-permanent/virksomhed/_search`` with ``{"query": {"term": {"Vrvirksomhed.cvrNummer": n}}}``
  (or ``match_all``): ``hits.total`` an integer, ``_type: _doc``, gzip-encoded, timestamps
  mixing ``+01:00``, ``+02:00`` and ``Z``, history periods (a former name, an ended board seat);
* a body that is not the query DSL is a 400 ``parsing_exception``; bad credentials a 401
  ``security_exception``.

Tests steer it in-process through ``sandbox.state.oauth["virk_cvr"]`` (:class:`Register`):
``revoke_all()`` (the sandbox's ``revoke`` fault too) and ``rename_officer``.
"""
from __future__ import annotations

import gzip
import json
import random
import zlib
from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify, request

PACKAGE = "virk_cvr"
PREFIX = "/virk"
USERNAME, PASSWORD = "virk-user", "virk-password"
FIRST = ("Mette", "Søren", "Anne", "Lars", "Kirsten", "Jens", "Ida", "Niels")
LAST = ("Hansen", "Jørgensen", "Nielsen", "Holm", "Lund", "Kjær", "Møller", "Poulsen")
MODES = {
    "no_fiscal_year": "attributter is empty: no REGNSKABSÅR, no KAPITAL (as the register sends for some companies)",
}


class Register:
    """The emulated register's steering: revoked credentials and renamed officers; reset by the sandbox."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.revoked = False
        self.renamed = {}

    def revoke_all(self):
        self.revoked = True

    def rename_officer(self, company, old, new):
        self.renamed.setdefault(company, {})[old] = new


def _state():
    return current_app.extensions["sandbox"]


def cvr_number(book):
    """The sandbox company's CVR number: 8 digits, the first not 0."""
    return str(10_000_000 + zlib.crc32(f"cvr:{book.spec.id}".encode()) % 90_000_000)


def _companies():
    return {cvr_number(book): book for book in _state().books.values()}


def _values(*periods):
    return [{"vaerdi": value, "periode": {"gyldigFra": start, "gyldigTil": end}, "sidstOpdateret": stamp}
            for value, start, end, stamp in periods]


def document(book):
    """The ``Vrvirksomhed`` of a sandbox company (deterministic from its seed)."""
    rng = random.Random(book.seed)
    founded = (book.fiscal_years[0][0] - timedelta(days=365 * rng.randrange(2, 10))).isoformat()
    year_start, year_end = book.fiscal_years[-1]
    renamed = _state().oauth[PACKAGE].renamed.get(book.spec.id, {})
    names = [renamed.get(n, n) for n in (f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(3))]
    cvr = cvr_number(book)

    def seat(person, organisation, function, start, end=None, share=None):
        organisations = [{"hovedtype": "LEDELSESORGAN", "organisationsNavn": [{"navn": organisation}],
                          "medlemsData": [{"attributter": [{"type": "FUNKTION", "vaerditype": "string",
                                                            "vaerdier": _values((function, start, end,
                                                                                 "2021-03-04T10:11:12.000+01:00"))}]}]}]
        if share:
            organisations.append({"hovedtype": "REGISTER", "organisationsNavn": [{"navn": "EJERREGISTER"}],
                                  "medlemsData": [{"attributter": [{"type": "EJERANDEL_PROCENT", "vaerditype": "decimal",
                                                                    "vaerdier": _values((share, start, None,
                                                                                         "2021-06-01T08:00:00Z"))}]}]})
        return {"deltager": {"enhedstype": "PERSON",
                             "navne": [{"navn": person, "periode": {"gyldigFra": start, "gyldigTil": None}}]},
                "organisationer": organisations}

    attributes = [
        {"type": "KAPITAL", "vaerditype": "decimal", "vaerdier": _values(
            ("50000.00", founded, "2019-12-31", "2020-01-02T09:00:00.000+01:00"),
            ("80000.00", "2020-01-01", None, "2020-01-02T09:00:00.000+01:00"))},
        {"type": "KAPITALVALUTA", "vaerditype": "string", "vaerdier": _values(("DKK", founded, None, "2020-01-02T08:00:00Z"))},
        {"type": "REGNSKABSÅR_START", "vaerditype": "gMonthDay",
         "vaerdier": _values((f"--{year_start:%m-%d}", founded, None, "2019-06-01T12:00:00.000+02:00"))},
        {"type": "REGNSKABSÅR_SLUT", "vaerditype": "gMonthDay",
         "vaerdier": _values((f"--{year_end:%m-%d}", founded, None, "2019-06-01T12:00:00.000+02:00"))},
    ]
    if _state().mode(PACKAGE, "no_fiscal_year"):
        attributes = []
    name = book.spec.name
    return {
        "cvrNummer": int(cvr), "enhedstype": "VIRKSOMHED", "sidstOpdateret": "2024-02-01T09:12:44.000+01:00",
        "navne": [{"navn": f"{name} (tidligere)", "periode": {"gyldigFra": founded, "gyldigTil": "2019-12-31"}},
                  {"navn": name, "periode": {"gyldigFra": "2020-01-01", "gyldigTil": None}}],
        "attributter": attributes,
        "deltagerRelation": [
            seat(names[0], "Direktion", "DIREKTØR", founded, share="0.6"),
            seat(names[1], "Bestyrelse", "FORMAND", "2020-01-01", share="0.4"),
            seat(names[2], "Bestyrelse", "BESTYRELSESMEDLEM", founded),
            seat("Tidligere Medlem", "Bestyrelse", "BESTYRELSESMEDLEM", founded, "2019-12-31"),
        ],
        "virksomhedMetadata": {
            "nyesteNavn": {"navn": name, "periode": {"gyldigFra": "2020-01-01", "gyldigTil": None}},
            "nyesteBeliggenhedsadresse": {"vejnavn": "Vesterbrogade", "husnummerFra": rng.randrange(1, 200),
                                          "postnummer": 1620, "postdistrikt": "København V", "landekode": "DK"},
            "nyesteVirksomhedsform": {"kortBeskrivelse": "APS", "langBeskrivelse": "Anpartsselskab"},
            "nyesteHovedbranche": {"branchekode": "692000", "branchetekst": "Bogføring og revision; skatterådgivning"},
            "sammensatStatus": "Normal", "stiftelsesDato": founded,
            "sidstIndlaest": "2024-02-01T09:15:02.112Z",
        },
    }


def _gzip_json(body, status=200):
    response = Response(gzip.compress(json.dumps(body).encode()), status=status, mimetype="application/json")
    response.headers["Content-Encoding"] = "gzip"
    return response


def _error(status, kind, reason):
    return _gzip_json({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
                       "status": status}, status)


def blueprint():
    bp = Blueprint(PACKAGE, __name__, url_prefix=PREFIX)

    @bp.before_request
    def authenticate():
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (USERNAME, PASSWORD) or _state().oauth[PACKAGE].revoked:
            return _error(401, "security_exception", "unable to authenticate user for REST request")
        return None

    @bp.post("/cvr-permanent/virksomhed/_search")
    def search():
        body = request.get_json(silent=True)
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, dict):
            return _error(400, "parsing_exception", "Unknown key for a START_OBJECT")
        if "match_all" in query:
            found = list(_companies().values())
        else:
            wanted = str(((query.get("term") or {}).get("Vrvirksomhed.cvrNummer")) or "")
            found = [book for cvr, book in _companies().items() if cvr == wanted]
        size = int(body.get("size", 10))
        hits = [{"_index": "cvr-v-20220630", "_type": "_doc", "_id": cvr_number(book), "_score": 1.0,
                 "_source": {"Vrvirksomhed": document(book)}} for book in found[:size]]
        return _gzip_json({"took": 3, "timed_out": False,
                           "_shards": {"total": 6, "successful": 6, "skipped": 0, "failed": 0},
                           "hits": {"total": len(found), "max_score": 1.0 if hits else None, "hits": hits}})

    return bp


def control_blueprint():
    bp = Blueprint("virk_cvr_control", __name__, url_prefix="/_sandbox/virk")

    @bp.get("/companies")
    def companies():
        return jsonify([{"cvr": cvr, "company": book.spec.id, "name": book.spec.name}
                        for cvr, book in _companies().items()])

    return bp


def register(app, state):
    """Mount the CVR company index at ``/virk``; its steering rides on ``state.oauth`` (reset, revoke)."""
    state.oauth[PACKAGE] = Register()
    app.register_blueprint(blueprint())
    app.register_blueprint(control_blueprint())
