"""Octopus in the sandbox: ``/octopus/octopus-rest-api/v1`` over the generated books, in the shapes of the
vendor's OpenAPI spec (the tests validate every answer against it).

One dossier per generated company (``dossierKey.id`` = the company id's digits), one book year per fiscal
year with monthly periods (``bookyearPeriod`` = start year x 100 + n). ``POST /authentication`` takes header
``softwareHouseUuid`` = :data:`SOFTWARE_HOUSE` and ``{"user", "password"}`` with a sandbox API key as
password; ``POST /dossiers?dossierId=`` answers ``{"Dossiertoken"}``. Both tokens live ``token_seconds``
(default 600). Each operation allows :data:`DAILY_LIMITS` calls per dossier (the dossier list and dossier
tokens: per user) per Brussels day; over it: 429 with ``Retry-After`` until midnight. The feeds answer 404
"No modified ... found" when nothing changed. Journals: PURCH = 1 (A1), SALES = 2 (V1), BANK = 3 (F1),
MISC = 4 (D1); each entry is a document, ``documentSequenceNr`` = its entry id.
"""
from __future__ import annotations

import re
import secrets
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from connectors.emulation.books import BASE_MODIFIED, entry_of, lines_in, parse_ts

PACKAGE = "octopus"
#: vendor variants (``sandbox.modes(octopus=[...])``)
MODES = {
    "tokens_expire_mid_sync": "every token (user and dossier) dies after 3 calls: the connector must renew both",
    "short_period_numbers": "amounts and bookings send the period's number in its year (1..12), not 202301",
    "names_without_dutch": "account descriptions come in French and English only (no description_NL)",
    "numbers_as_strings": "amounts come as strings (\"1234.50\") instead of JSON numbers",
}
SOFTWARE_HOUSE = "6f1e0a52-3c7b-4d8e-9a1f-0c2b4e6d8f10"
USER = "demo-user"
ZONE = ZoneInfo("Europe/Brussels")
STAMP = "%Y-%m-%d %H:%M:%S.000"
#: generated data was last modified then (mutations get the real time they were first seen)
GENERATED_AT = datetime(2025, 1, 1, tzinfo=ZONE)
CALLS_PER_TOKEN_WHEN_EXPIRING = 3
#: "Maximum allowed calls per day" of each operation (from the spec's descriptions)
DAILY_LIMITS = {"getDossiers": 150, "connectDossier": 150, "getBookyears": 24, "getAccounts": 2,
                "getModifiedAccounts": 48, "getModifiedAccountAmounts": 48, "getReportModifiedBooking": 48}
JOURNAL_TYPE = {"PURCH": 1, "SALES": 2, "BANK": 3, "MISC": 4}
#: generated account numbers (1000-8999 by kind) as Belgian six-digit accounts of the same kind
PREFIX = {"asset": "55", "liability": "44", "equity": "10", "income": "70", "expense": "61"}

api = Blueprint("octopus", __name__, url_prefix="/octopus/octopus-rest-api/v1")


class Grants:
    """The sandbox's ``revoke`` fault and reset reach Octopus's tokens through ``state.oauth``."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.tokens, self.usage, self.seen, self.revoked = {}, {}, {}, False

    def revoke_all(self):
        self.tokens.clear()
        self.revoked = True


def _state():
    return current_app.extensions["sandbox"]


def _grants():
    return _state().oauth[PACKAGE]


def _mode(name):
    return _state().mode(PACKAGE, name)


def _error(status, text, code=None):
    body = {"technicalInfo": text} if code is None else {"errorCode": code, "errorMessage": text, "technicalInfo": text}
    return jsonify(body), status


def _issue(kind, dossier=None):
    token = secrets.token_urlsafe(24)
    seconds = current_app.config["SANDBOX"].get("token_seconds") or 600
    with _state().lock:
        _grants().tokens[token] = {"kind": kind, "dossier": dossier, "expires": time.time() + seconds, "calls": 0}
    return token


def _holder(header, kind):
    """The token record of ``header`` when it is a live ``kind`` token, else None (counting its use)."""
    with _state().lock:
        token = _grants().tokens.get(request.headers.get(header) or "")
        if token is None or token["kind"] != kind or token["expires"] < time.time():
            return None
        token["calls"] += 1
        if _mode("tokens_expire_mid_sync") and token["calls"] > CALLS_PER_TOKEN_WHEN_EXPIRING:
            return None
        return token


def _spend(operation, who):
    """Count one call of ``operation`` for ``who`` today (Brussels); the 429 answer when over the limit."""
    now = datetime.now(ZONE)
    key = (operation, who, now.date())
    with _state().lock:
        used = _grants().usage.get(key, 0)
        if used >= DAILY_LIMITS[operation]:
            midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=ZONE)
            response = jsonify({"technicalInfo": f"Maximum allowed calls per day reached for {operation}"})
            response.status_code = 429
            response.headers["Retry-After"] = str(max(1, int((midnight - now).total_seconds())))
            return response
        _grants().usage[key] = used + 1
    return None


# -- books as Octopus shows them ------------------------------------------------------------

def dossier_id(company_id):
    return int(re.sub(r"\D", "", company_id))


def _book(dossier):
    for book in _state().books.values():
        if dossier_id(book.spec.id) == int(dossier):
            return book
    return None


def account_number(book, number):
    kind = next((a["type"] for a in book.accounts if a["number"] == number), "asset")
    return int(PREFIX.get(kind, "49") + f"{int(number):04d}")


def _years(book):
    """``[(bookyear id, start, end, [(bookyearPeriod, start, end)])]``: monthly periods."""
    years = []
    for index, (start, end) in enumerate(book.fiscal_years, 1):
        periods, first, n = [], start, 1
        while first <= end:
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            periods.append((start.year * 100 + n, first, following - timedelta(days=1)))
            first, n = following, n + 1
        years.append((index, start, end, periods))
    return years


def _locate(book, period_end):
    """``(bookyear id, period key)`` of the period ending ``period_end`` (an ISO date)."""
    for year_id, _, _, periods in _years(book):
        for number, _, end in periods:
            if end.isoformat() == period_end:
                return year_id, (number % 100 if _mode("short_period_numbers") else number)
    return None


def _real_time(book, artificial):
    """When a line changed, on the real clock: generated data at :data:`GENERATED_AT`, a mutation when the
    emulator first saw it (at the latest the next request after it)."""
    if artificial < BASE_MODIFIED + book.entry_count + 3600:
        return GENERATED_AT
    seen = _grants().seen.setdefault(book.spec.id, {})
    with _state().lock:
        return seen.setdefault(artificial, datetime.now(ZONE).replace(microsecond=0))


def _observe(book):
    """Stamp the book's latest mutation with the time it is first seen."""
    if book.mutations:
        _real_time(book, book.clock)


def _money(value):
    value = Decimal(value)
    return f"{value:.2f}" if _mode("numbers_as_strings") else float(value)


def _since(text, default=None):
    if not text:
        return default
    try:
        return datetime.strptime(text.strip()[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE)
    except ValueError:
        return None


def _entry_first_ids(book, lines):
    firsts = {}
    for line in lines:
        entry = line["entry_id"]
        if entry not in firsts:
            firsts[entry] = lines_in(entry - 1) + 1 if entry <= book.entry_count else min(
                row["id"] for row in book.added.values() if row["entry_id"] == entry)
    return firsts


def _booking(book, line, first_ids):
    year_id, period = _locate(book, line["period_end"])
    row = {"bookyearKey": {"id": year_id}, "journalType": JOURNAL_TYPE[line["journal"]], "journalNr": 1,
           "documentSequenceNr": line["entry_id"], "lineSequenceNr": line["id"] - first_ids[line["entry_id"]] + 1,
           "bookyearPeriodeNr": period, "documentDate": line["date"], "expiryDate": line["date"],
           "currencyCode": book.spec.currency, "exchangeRate": 1.0, "comment": line["description"],
           "reference": line["reference"], "accountKey": account_number(book, line["account"]),
           "bookingAmount": _money(line["amount"]), "documentAmount": _money(line["amount"])}
    if line["dimensions"].get("cost_centre"):
        row["costCentreKey"] = {"id": int(line["dimensions"]["cost_centre"][2:])}
    return row


# -- endpoints -----------------------------------------------------------------------------

@api.post("/authentication")
def authenticate():
    body = request.get_json(silent=True) or {}
    if request.headers.get("softwareHouseUuid") != SOFTWARE_HOUSE or body.get("user") != USER \
            or body.get("password") not in _state().api_keys or _grants().revoked:
        return _error(401, "Invalid credentials or softwarehouse Uuid provided")
    return jsonify({"token": _issue("user")})


@api.get("/dossiers")
def dossiers():
    token = _holder("Token", "user")
    if token is None:
        return _error(401, "Invalid or expired token presented, unauthorized")
    refused = _spend("getDossiers", USER)
    if refused:
        return refused
    return jsonify([{"dossierKey": {"id": dossier_id(b.spec.id)}, "dossierDescription": b.spec.name,
                     "vatNr": b.spec.vat_number, "country": b.spec.country, "languageCode": "NL"}
                    for b in _state().books.values()])


@api.post("/dossiers")
def connect_dossier():
    token = _holder("Token", "user")
    if token is None:
        return _error(401, "Invalid or expired token presented, unauthorized")
    refused = _spend("connectDossier", USER)
    if refused:
        return refused
    try:
        book = _book(int(request.args.get("dossierId", "")))
    except ValueError:
        return _error(400, "Invalid or missing parameters passed")
    if book is None:
        return _error(404, "Dossier not found", code=404)
    return jsonify({"Dossiertoken": _issue("dossier", dossier_id(book.spec.id))})


def _dossier(dossier, operation):
    """``(book, None)`` for a live dossier token of ``dossier`` within the day's calls, else ``(None, answer)``."""
    if request.headers.get("Token") and not request.headers.get("dossierToken"):
        return None, _error(401, "Empty access token", code=-79)
    token = _holder("dossierToken", "dossier")
    if token is None or token["dossier"] != int(dossier):
        return None, _error(401, "Invalid or expired token presented, unauthorized")
    refused = _spend(operation, int(dossier))
    if refused:
        return None, refused
    book = _book(dossier)
    _observe(book)
    return book, None


@api.get("/dossiers/<int:dossier>/bookyears")
def bookyears(dossier):
    book, refused = _dossier(dossier, "getBookyears")
    if refused:
        return refused
    return jsonify([{"bookyearKey": {"id": year_id}, "bookyearDescription": f"{start.year}",
                     "startDate": start.isoformat(), "endDate": end.isoformat(), "closed": False,
                     "periods": [{"bookyearPeriod": n, "startDate": s.isoformat(), "endDate": e.isoformat()}
                                 for n, s, e in periods]}
                    for year_id, start, end, periods in _years(book)])


def _account(book, account, year_id):
    names = {"description_FR": f"{account['name']} (FR)", "description_EN": account["name"]}
    if not _mode("names_without_dutch"):
        names = {"description_NL": f"{account['name']} (NL)", **names}
    number = account_number(book, account["number"])
    return {"accountKey": {"bookyearKey": {"id": year_id}, "id": number, "accountNumberKey": {"id": number}},
            "description": names, "vatRecupPercentage": 100.0, "costCentreType": 0}


@api.get("/dossiers/<int:dossier>/accounts")
def accounts(dossier):
    book, refused = _dossier(dossier, "getAccounts")
    if refused:
        return refused
    try:
        year_id = int(request.args["bookyearId"])
    except (KeyError, ValueError):
        return _error(400, "Invalid or missing parameters passed")
    if year_id not in {y[0] for y in _years(book)}:
        return _error(404, "No accounts found", code=404)
    return jsonify([_account(book, a, year_id) for a in book.accounts])


@api.get("/dossiers/<int:dossier>/accounts/modified")
def accounts_modified(dossier):
    book, refused = _dossier(dossier, "getModifiedAccounts")
    if refused:
        return refused
    if _since(request.args.get("modifiedTimeStamp")) is None:
        return _error(400, "Invalid or missing parameters passed")
    if _since(request.args["modifiedTimeStamp"]) < GENERATED_AT:
        year_id = _years(book)[-1][0]
        return jsonify({"modified": [_account(book, a, year_id) for a in book.accounts], "deleted": []})
    return _error(404, "No modified accounts found", code=404)  # the generated chart never changes


@api.get("/dossiers/<int:dossier>/accounts/amounts/modified")
def amounts_modified(dossier):
    book, refused = _dossier(dossier, "getModifiedAccountAmounts")
    if refused:
        return refused
    since = _since(request.args.get("modifiedTimeStamp"), default=datetime(1980, 1, 1, tzinfo=ZONE))
    if since is None:
        return _error(400, "Invalid or missing parameters passed")
    rows = []
    if since < GENERATED_AT or any(_real_time(book, parse_ts(line["modified_at"])) >= since
                                   for line in list(book.changed.values()) + list(book.added.values())) \
            or any(_real_time(book, moment) >= since for moment in book.deleted.values()):
        for (period_end, number), amount in book.movements().items():
            located = _locate(book, period_end)
            if located is None:
                continue
            year_id, period = located
            rows.append({"accountAmountKey": {
                "bookyearPeriodKey": {"bookyearKey": {"id": year_id}, "bookyearPeriodNr": period},
                "accountKey": {"bookyearKey": {"id": year_id}, "id": account_number(book, number)}},
                "balance": _money(amount)})
    if not rows:
        return _error(404, "No modified account amounts found", code=404)
    return jsonify({"modified": rows, "deleted": []})


@api.get("/dossiers/<int:dossier>/bookyears/<int(signed=True):year_id>/bookings/modified")
def bookings_modified(dossier, year_id):
    book, refused = _dossier(dossier, "getReportModifiedBooking")
    if refused:
        return refused
    since = _since(request.args.get("modifiedTimeStamp"))
    try:
        journal_type = int(request.args["journalTypeId"])
    except (KeyError, ValueError):
        return _error(400, "Invalid or missing parameters passed")
    if since is None:
        return _error(400, "Invalid or missing parameters passed")
    years = {y[0]: y for y in _years(book)}
    if year_id != -1 and year_id not in years:
        return _error(400, "Invalid or missing parameters passed")

    def wanted(line):
        located = _locate(book, line["period_end"])
        return located is not None and (year_id == -1 or located[0] == year_id) and \
            (journal_type == -1 or JOURNAL_TYPE[line["journal"]] == journal_type)

    lines = [line for line in book.all_lines()
             if wanted(line) and _real_time(book, parse_ts(line["modified_at"])) >= since]
    firsts = _entry_first_ids(book, lines)
    deleted, documents = [], set()
    for line_id, moment in sorted(book.deleted.items()):
        if _real_time(book, moment) < since or line_id > book.line_count:
            continue
        entry = next(row for row in book.base_entry(entry_of(line_id - 1))
                     if row["id"] == line_id)
        if not wanted(entry) or entry["entry_id"] in documents:
            continue
        documents.add(entry["entry_id"])
        deleted.append({"bookyearKey": {"id": _locate(book, entry["period_end"])[0]},
                        "journalType": JOURNAL_TYPE[entry["journal"]], "journalSequenceNr": 1,
                        "documentSequenceNr": entry["entry_id"]})
    if not lines and not deleted:
        return _error(404, "No modified bookings found", code=404)
    return jsonify({"modifiedBookings": [_booking(book, line, firsts) for line in lines], "deletedBookings": deleted})


def register(app, state):
    """Mount Octopus under ``/octopus/octopus-rest-api/v1``."""
    state.oauth[PACKAGE] = Grants()
    app.register_blueprint(api)
