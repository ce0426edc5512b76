"""Exact Online: the REST API of ``connectors/exact_online/`` (one emulator serves BE, FR and NL).

Base URL ``/exact-online`` (what a connection's ``base_url`` points at):

* OAuth2 at ``/api/oauth2/auth`` (consent page) and ``/api/oauth2/token`` (client id and secret
  in the form); access tokens live 10 minutes, refresh tokens rotate (each works once).
* ``/api/v1/current/Me``; ``/api/v1/<division>/system/Divisions`` and ``system/AllDivisions``;
  ``financial/FinancialPeriods``, ``financial/GLAccounts``, ``financial/ReportingBalance``
  (``$filter=ReportingYear eq Y``), 60 rows a page with ``$skiptoken``;
  ``sync/Financial/TransactionLines`` and ``sync/Deleted`` (``$filter=Timestamp gt NL``,
  ``$select`` mandatory, 1,000 rows a page); OData-v2 envelopes ``{"d": {"results", "__next"}}``,
  MS-JSON dates, ``X-RateLimit-*`` headers.
* Errors in Exact's shapes: 401 for a bad token; 403 with a ``Reason`` header and an OData error
  body for a division outside the grant (``NoDivisionAccess``) or a blocked user, an expired
  password or an unvalidated e-mail address (set with the control below).

Controls: ``POST /_sandbox/exact-online/divisions/<code>/remove`` takes a division out of the
grant; ``POST /_sandbox/exact-online/user`` with ``{"problem": "blocked" | "password_expired" |
"email_not_validated" | null}`` makes every data call fail like Exact does.

Modes (``MODES``; ``POST /_sandbox/modes {"exact_online": [...]}``): ``current_division_fields``
answers the division lists the way the live API does (see ``MODES``).
"""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, request

from connectors.emulation.books import parse_ts
from connectors.companies_house.emulator import company_number
from connectors.emulation.oauth_server import OAuthProvider

PACKAGE = "exact_online"
DISPLAY_NAME = "Exact Online"
PREFIX = "/exact-online"
DEFAULT_CLIENTS = {"exact-sandbox-client": "exact-sandbox-secret"}
FIRST_DIVISION = 2_100_001
PAGE_SIZE = 60
SYNC_PAGE_SIZE = 1000
#: a Timestamp is ``modified seconds * TS_FACTOR + line id``: a row version growing with every change
TS_FACTOR = 10 ** 8
ENTITY_TRANSACTION_LINES = 1
_NAMESPACE = uuid.UUID("0e7a1c55-5a4d-4b0c-9d8e-3f2a1b0c9d8e")
_TIMESTAMP = re.compile(r"Timestamp\s+gt\s+(\d+)L?", re.IGNORECASE)
_YEAR = re.compile(r"ReportingYear\s+eq\s+(\d+)", re.IGNORECASE)
#: control value -> (Reason header, Exact's text)
USER_PROBLEMS = {
    "blocked": ("BlockedUser", "Forbidden - User is blocked"),
    "password_expired": ("", "Your password has expired. Please change your password."),
    "email_not_validated": ("", "The e-mail address of this user has not been validated yet."),
}
#: vendor variants (``/_sandbox/modes``, ``sandbox.modes(exact_online=[...])`` in tests)
MODES = {
    "current_division_fields": "system/(All)Divisions answer as live Exact does: ChamberOfCommerceNumber (not "
                               "ChamberOfCommerce), space-padded Country, Currency and VATNumber, __metadata, "
                               "$select applied and a 400 for a property the division entity does not have",
}
#: the properties of Exact's division entities that the sandbox serves in ``current_division_fields``
DIVISION_PROPERTIES = ("Code", "Description", "Country", "Currency", "VATNumber", "ChamberOfCommerceNumber",
                       "ChamberOfCommerceEstablishment", "Hid", "Status", "Customer", "CustomerName", "Main")


class ExactGrant(OAuthProvider):
    """Exact's OAuth server plus what the grant covers: divisions removed from it and user problems."""

    def reset(self):
        super().reset()
        self.removed_divisions = set()
        self.user_problem = None


def _grant():
    return current_app.extensions["sandbox"].oauth[PACKAGE]


def _divisions():
    """``{division code: Book}`` in the sandbox's company order."""
    books = current_app.extensions["sandbox"].books
    return {FIRST_DIVISION + index: book for index, book in enumerate(books.values())}


def ms_date(day):
    moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return f"/Date({int(moment.timestamp() * 1000)})/"


def ms_datetime(text):
    return f"/Date({parse_ts(text) * 1000})/"


def odata_error(text, status, reason=""):
    response = jsonify({"error": {"code": "", "message": {"lang": "", "value": text}}})
    response.status_code = status
    if reason:
        response.headers["Reason"] = reason
    return response


def periods(book):
    """``[(FinYear, FinPeriod, start, end)]``: monthly periods of the book's fiscal years."""
    found = []
    for start, end in book.fiscal_years:
        month, number = start, 1
        while month <= end:
            following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
            found.append((start.year, number, month, following - timedelta(days=1)))
            month, number = following, number + 1
    return found


def line_guid(division, line_id):
    return str(uuid.uuid5(_NAMESPACE, f"{division}:{line_id}"))


def _envelope(rows, following=None):
    body = {"results": rows}
    if following:
        body["__next"] = following
    return jsonify({"d": body})


def _page(rows, size=PAGE_SIZE):
    """One page of ``rows`` from ``$skiptoken`` (a row index) with the ``__next`` link."""
    start = int(request.args.get("$skiptoken") or 0)
    chunk = rows[start:start + size]
    following = None
    if start + size < len(rows):
        args = {k: v for k, v in request.args.items() if k != "$skiptoken"} | {"$skiptoken": str(start + size)}
        following = request.base_url + "?" + urlencode(args, safe="$,'")
    return _envelope(chunk, following)


def chamber_of_commerce_number(book):
    """A Belgian division's enterprise number is its VAT number's digits; others take the Companies House number."""
    if book.spec.vat_number.startswith("BE"):
        return book.spec.vat_number[2:]
    return company_number(book)


def _account_code(number):
    return str(number).rjust(9)  # Exact right-aligns codes


def _balance_type(kind):
    return ("W" if kind in ("income", "expense") else "B"), ("D" if kind in ("asset", "expense") else "C")


def _since():
    token = request.args.get("$skiptoken")
    if token:
        return int(token.rstrip("L"))
    match = _TIMESTAMP.search(request.args.get("$filter", ""))
    return int(match.group(1)) if match else 0


def _sync_next(last):
    args = {k: v for k, v in request.args.items() if k != "$skiptoken"} | {"$skiptoken": f"{last}L"}
    return request.base_url + "?" + urlencode(args, safe="$,'")


def data_blueprint():
    bp = Blueprint(PACKAGE, __name__, url_prefix=PREFIX + "/api/v1")

    @bp.before_request
    def authenticate():
        grant = _grant()
        if not grant.valid_bearer(request.headers.get("Authorization")):
            return odata_error("Unauthorized", 401)
        if grant.user_problem:
            reason, text = USER_PROBLEMS[grant.user_problem]
            return odata_error(text, 401 if not reason else 403, reason)
        division = (request.view_args or {}).get("company")
        if division is not None and (division not in _divisions() or division in grant.removed_divisions):
            return odata_error(f"Forbidden - No access to division {division}.", 403, "NoDivisionAccess")
        return None

    @bp.get("/current/Me")
    def me():
        current = next(code for code in _divisions() if code not in _grant().removed_divisions)
        return _envelope([{"__metadata": {"uri": request.base_url, "type": "Exact.Web.Api.Models.Current.Me"},
                           "UserID": str(uuid.uuid5(_NAMESPACE, "user")), "CurrentDivision": current,
                           "FullName": "Sandra Sandbox", "UserName": "sandra@sandbox.invalid",
                           "Email": "sandra@sandbox.invalid", "LanguageCode": "en-GB"}])

    def divisions(company):
        removed = _grant().removed_divisions
        if current_app.extensions["sandbox"].mode(PACKAGE, "current_division_fields"):
            return current_divisions(removed)
        return _page([{"Code": code, "Description": book.spec.name, "Country": book.spec.country,
                       "Currency": book.spec.currency, "VATNumber": book.spec.vat_number,
                       "ChamberOfCommerce": None, "Status": 1}
                      for code, book in _divisions().items() if code not in removed])

    def current_divisions(removed):
        """Mode ``current_division_fields``: the live API's names, padding and ``$select``."""
        entity = "AllDivision" if request.path.endswith("/AllDivisions") else "Division"
        selected = [name.strip() for name in request.args.get("$select", "").split(",") if name.strip()]
        unknown = [name for name in selected if name not in DIVISION_PROPERTIES]
        if unknown:
            return odata_error(f"'{unknown[0]}' is not a member of type 'Exact.Web.Api.Models.System.{entity}'", 400)
        rows = []
        for code, book in _divisions().items():
            if code in removed:
                continue
            row = {"Code": code, "Description": book.spec.name, "Country": book.spec.country.ljust(3),
                   "Currency": book.spec.currency.ljust(4), "VATNumber": f"{book.spec.vat_number} ",
                   "ChamberOfCommerceNumber": chamber_of_commerce_number(book),
                   "ChamberOfCommerceEstablishment": None, "Hid": code - FIRST_DIVISION + 1, "Status": 1,
                   "Customer": str(uuid.uuid5(_NAMESPACE, book.spec.id)), "CustomerName": book.spec.name,
                   "Main": code == FIRST_DIVISION}
            metadata = {"uri": f"{request.base_url}({code})", "type": f"Exact.Web.Api.Models.System.{entity}"}
            rows.append({"__metadata": metadata} | {name: row[name] for name in (selected or DIVISION_PROPERTIES)})
        return _page(rows)

    bp.add_url_rule("/<int:company>/system/Divisions", "divisions", divisions)
    bp.add_url_rule("/<int:company>/system/AllDivisions", "all_divisions", divisions)

    @bp.get("/<int:company>/financial/FinancialPeriods")
    def financial_periods(company):
        book = _divisions()[company]
        return _page([{"Division": company, "FinYear": year, "FinPeriod": number,
                       "StartDate": ms_date(start), "EndDate": ms_date(end)}
                      for year, number, start, end in periods(book)])

    @bp.get("/<int:company>/financial/GLAccounts")
    def gl_accounts(company):
        rows = []
        for account in _divisions()[company].accounts:
            balance_type, side = _balance_type(account["type"])
            rows.append({"ID": str(uuid.uuid5(_NAMESPACE, f"{company}:{account['id']}")), "Division": company,
                         "Code": _account_code(account["number"]), "Description": account["name"],
                         "BalanceType": balance_type, "BalanceSide": side})
        return _page(rows)

    @bp.get("/<int:company>/financial/ReportingBalance")
    def reporting_balance(company):
        book = _divisions()[company]
        match = _YEAR.search(request.args.get("$filter", ""))
        if not match:
            return odata_error("Filter on ReportingYear is mandatory for this endpoint.", 400)
        year = int(match.group(1))
        period_of = {end.isoformat(): (fin_year, number) for fin_year, number, _, end in periods(book)}
        rows = []
        for (period_end, account), amount in book.movements().items():
            fin_year, number = period_of[period_end]
            if fin_year == year:
                rows.append({"Division": company, "ReportingYear": fin_year, "ReportingPeriod": number,
                             "GLAccountCode": _account_code(account), "Amount": float(amount),
                             "AmountDebit": float(max(amount, 0)), "AmountCredit": float(max(-amount, 0)),
                             "Status": 50})
        return _page(rows)

    @bp.get("/<int:company>/sync/Financial/TransactionLines")
    def transaction_lines(company):
        if not request.args.get("$select"):
            return odata_error("$select is mandatory for sync endpoints.", 400)
        book = _divisions()[company]
        since = _since()
        after = (since // TS_FACTOR, since % TS_FACTOR) if since else None
        period_of = {end.isoformat(): (fin_year, number) for fin_year, number, _, end in periods(book)}
        lines = book.lines_after(after, SYNC_PAGE_SIZE)
        rows = []
        for line in lines:
            fin_year, number = period_of[line["period_end"]]
            rows.append({
                "Timestamp": parse_ts(line["modified_at"]) * TS_FACTOR + line["id"],
                "ID": line_guid(company, line["id"]), "Division": company,
                "Date": ms_date(date.fromisoformat(line["date"])), "FinancialYear": fin_year,
                "FinancialPeriod": number, "GLAccountCode": _account_code(line["account"]),
                "AmountDC": float(line["amount"]), "Description": line["description"],
                "EntryNumber": line["entry_id"], "YourRef": line["reference"], "InvoiceNumber": None,
                "JournalCode": line["journal"], "CostCenter": line["dimensions"].get("cost_centre"),
                "CostUnit": None, "Modified": ms_datetime(line["modified_at"]),
            })
        following = _sync_next(rows[-1]["Timestamp"]) if len(rows) == SYNC_PAGE_SIZE else None
        return _envelope(rows, following)

    @bp.get("/<int:company>/sync/Deleted")
    def deleted(company):
        if not request.args.get("$select"):
            return odata_error("$select is mandatory for sync endpoints.", 400)
        book = _divisions()[company]
        since = _since()
        after = (since // TS_FACTOR, since % TS_FACTOR) if since else None
        rows = [{"Timestamp": parse_ts(row["deleted_at"]) * TS_FACTOR + row["id"], "Division": company,
                 "EntityType": ENTITY_TRANSACTION_LINES, "EntityKey": line_guid(company, row["id"]),
                 "DeletedDate": ms_datetime(row["deleted_at"])}
                for row in book.deleted_after(after, SYNC_PAGE_SIZE)]
        following = _sync_next(rows[-1]["Timestamp"]) if len(rows) == SYNC_PAGE_SIZE else None
        return _envelope(rows, following)

    @bp.after_request
    def rate_limit_headers(response):
        state = current_app.extensions["sandbox"]
        budget = state.budgets.get(PACKAGE) or {}
        tenant = (request.view_args or {}).get("company")
        if budget.get("per_minute") and tenant is not None:
            with state.lock:
                used = len(state.windows.get((PACKAGE, tenant), ()))
            response.headers["X-RateLimit-Minutely-Limit"] = str(budget["per_minute"])
            response.headers["X-RateLimit-Minutely-Remaining"] = str(max(0, int(budget["per_minute"]) - used))
        return response

    return bp


def control_blueprint():
    bp = Blueprint("exact_online_control", __name__, url_prefix="/_sandbox/exact-online")

    @bp.post("/divisions/<int:code>/remove")
    def remove_division(code):
        _grant().removed_divisions.add(code)
        return jsonify({"removed": sorted(_grant().removed_divisions)})

    @bp.post("/user")
    def user_problem():
        problem = (request.get_json(force=True) or {}).get("problem")
        if problem is not None and problem not in USER_PROBLEMS:
            return jsonify({"error": f"problem must be one of {', '.join(USER_PROBLEMS)} or null"}), 400
        _grant().user_problem = problem
        return jsonify({"problem": problem})

    @bp.get("/divisions")
    def list_divisions():
        return jsonify([{"code": code, "company": book.spec.id, "name": book.spec.name}
                        for code, book in _divisions().items()])

    return bp


def register(app, state):
    """Mount Exact Online at ``/exact-online`` (OAuth, data API) and its controls."""
    settings = app.config["SANDBOX"]
    grant = ExactGrant(PACKAGE, DISPLAY_NAME, state, clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
                       access_seconds=settings.get("token_seconds") or 600, rotating=True)
    state.oauth[PACKAGE] = grant
    oauth = Blueprint("exact_online_oauth", __name__, url_prefix=PREFIX + "/api/oauth2")
    oauth.add_url_rule("/auth", "authorize", grant.authorize, methods=["GET", "POST"])
    oauth.add_url_rule("/token", "token", grant.token, methods=["POST"])
    app.register_blueprint(oauth)
    app.register_blueprint(data_blueprint())
    app.register_blueprint(control_blueprint())
