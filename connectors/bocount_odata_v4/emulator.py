"""BoCount (Business Central) in the sandbox, over the generated books.

``/bocount/<instance>/api/v2.0/companies`` and ``.../companies(<id>)/<entity set>`` (API style),
``/bocount/<instance>/ODataV4/Company`` and ``.../Company('<name>')/<entity set>`` (OData v4 style),
answering ``accounts``, ``trialBalance`` (amounts as formatted strings, headings and totals
included), ``generalLedgerEntries`` (``$filter=lastModifiedDateTime ge ...``) and
``accountingPeriods`` in API v2.0 shapes, paged with ``@odata.nextLink`` (``$skiptoken``).
Basic auth: user ``FIRMSYNC`` with any sandbox API key as its web service access key; or a
bearer token from the Entra ID emulation ``POST /bocount/entra/<tenant>/oauth2/v2.0/token``
(client credentials). Budget per user: 6,000 calls per 300 s and 100 at once (429).
"""
from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections import Counter
from datetime import date, datetime, timezone
from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, jsonify, request

from connectors.emulation.books import CHART_PLAN

PACKAGE = "bocount_odata_v4"
PREFIX = "/bocount"
MODES = {
    "v1_shapes": "answers shaped like API v1.0 (G/L entry id an integer, no entryNumber; dateFilter a date-time)",
    "decimal_comma": "trial-balance amounts formatted in a nl-BE locale (1.234,56) instead of en-US (1,234.56)",
    "token_expires_mid_sync": "every Entra ID access token is refused after 5 calls",
}
#: rows per page (Business Central pages by 20,000; smaller here so paging is exercised)
PAGE = 100
USERS = {"FIRMSYNC"}
CLIENTS = {"bocount-sandbox-client": "bocount-sandbox-secret"}
SCOPE = "https://api.businesscentral.dynamics.com/.default"
TOKEN_SECONDS = 3599
CALLS_PER_TOKEN = 5
DEFAULT_BUDGET = {"per_minute": 6000, "window_seconds": 300}
CONCURRENCY = 100
_NS = uuid.UUID("5b0c6a1e-3d7f-4c2a-9e61-0b0c0a0d0e0f")
CATEGORY = {"asset": "Assets", "liability": "Liabilities", "equity": "Equity", "income": "Income", "expense": "Expense"}
DOCUMENT_TYPES = {"SALES": "Invoice", "PURCH": "Invoice", "BANK": "Payment", "MISC": "_x0020_"}
SYSTEM_TIME = "2024-01-02T08:00:00.000Z"


def _state():
    return current_app.extensions["sandbox"]


def guid(*parts):
    return str(uuid.uuid5(_NS, "/".join(str(p) for p in parts)))


def odata_error(code, message, status, **headers):
    response = jsonify({"error": {"code": code, "message": f"{message}  CorrelationId:  {guid('c', time.time())}."}})
    response.status_code = status
    response.headers.update(headers)
    return response


class EntraTenant:
    """Client-credential tokens of the emulated Entra ID; ``revoke_all`` also refuses the web
    service keys (the administrator withdrew Firmsync's access)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.tokens = {}  # token -> [expires at, calls]
            self.revoked = False
            self.inflight = Counter()

    def revoke_all(self):
        with self.lock:
            self.tokens.clear()
            self.revoked = True

    def issue(self, seconds):
        token = "bc-at-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = [time.time() + seconds, 0]
        return token

    def accepts(self, token, limit=None):
        with self.lock:
            held = self.tokens.get(token)
            if held is None or held[0] < time.time() or (limit is not None and held[1] >= limit):
                return False
            held[1] += 1
            return True


def _tenant():
    return _state().oauth[PACKAGE]


# --------------------------------------------------------------------------------------
# Entra ID (client credentials)
# --------------------------------------------------------------------------------------

entra = Blueprint("bocount_entra", __name__, url_prefix=f"{PREFIX}/entra/<directory>/oauth2/v2.0")


def _entra_error(code, description, status):
    response = jsonify({"error": code, "error_description": description, "error_codes": [7000215],
                        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
                        "trace_id": guid("t", time.time()), "correlation_id": guid("c", time.time())})
    response.status_code = status
    return response


@entra.post("/token")
def token(directory):
    form = request.form
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id, secret = request.authorization.username, request.authorization.password
    clients = {**CLIENTS, **(current_app.config["SANDBOX"].get("oauth_clients") or {})}
    if form.get("grant_type") != "client_credentials":
        return _entra_error("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.", 400)
    if client_id not in clients or clients[client_id] != secret or _tenant().revoked:
        return _entra_error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
    if form.get("scope") != SCOPE:
        return _entra_error("invalid_scope", "AADSTS70011: The provided value for scope is not valid.", 400)
    seconds = int(current_app.config["SANDBOX"].get("token_seconds") or TOKEN_SECONDS)
    with _state().lock:
        _state().token_grants[PACKAGE] += 1
    return jsonify({"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds,
                    "access_token": _tenant().issue(seconds)})


# --------------------------------------------------------------------------------------
# Business Central
# --------------------------------------------------------------------------------------

api = Blueprint("bocount", __name__, url_prefix=f"{PREFIX}/<instance>")


def _user():
    """The caller (user name or token's app), or None when Business Central refuses it."""
    tenant, auth = _tenant(), request.authorization
    if auth is not None and auth.type == "basic":
        if not tenant.revoked and str(auth.username).upper() in USERS and auth.password in _state().api_keys:
            return str(auth.username).upper()
        return None
    if auth is not None and auth.type == "bearer":
        limit = CALLS_PER_TOKEN if _state().mode(PACKAGE, "token_expires_mid_sync") else None
        return "app" if tenant.accepts(auth.token, limit) else None
    return None


@api.before_request
def authenticate():
    user = _user()
    if user is None:
        return odata_error("Authentication_InvalidCredentials", "The server has rejected the client credentials.", 401,
                           **{"WWW-Authenticate": 'Basic realm=""'})
    wait = _state().spend(PACKAGE, user)
    if wait:  # 6,000 calls per 5 minutes per user
        return odata_error("Application_TooManyRequests", "Too many requests reached.", 429,
                           **{"Retry-After": str(int(wait))})
    tenant = _tenant()
    with tenant.lock:
        if tenant.inflight[user] >= CONCURRENCY:  # 100 simultaneous requests per user
            return odata_error("Application_TooManyRequests", "Too many requests reached. Maximum (100).", 429,
                               **{"Retry-After": "1"})
        tenant.inflight[user] += 1
    g.bocount_user = user
    return None


@api.teardown_request
def release(exc=None):
    user = g.pop("bocount_user", None)
    if user is not None:
        tenant = _tenant()
        with tenant.lock:
            tenant.inflight[user] -= 1


def _page(rows, context):
    skip = int(request.args.get("$skiptoken") or 0)
    body = {"@odata.context": f"{request.host_url.rstrip('/')}{request.script_root}{context}", "value": rows[skip:skip + PAGE]}
    if skip + PAGE < len(rows):
        args = {k: v for k, v in request.args.items() if k != "$skiptoken"} | {"$skiptoken": str(skip + PAGE)}
        body["@odata.nextLink"] = request.base_url + "?" + urlencode(args, safe="$,'():")
    return jsonify(body)


def _company_row(book):
    company = {"id": guid(book.spec.id), "systemVersion": "24.0.16410.18056", "name": book.spec.name,
               "displayName": book.spec.name, "businessProfileId": ""}
    if not _state().mode(PACKAGE, "v1_shapes"):
        company.update(timestamp=12345, systemCreatedAt=SYSTEM_TIME, systemCreatedBy=guid("user"),
                       systemModifiedAt=SYSTEM_TIME, systemModifiedBy=guid("user"))
    return company


@api.get("/api/v2.0/companies")
def companies(instance):
    return _page([_company_row(book) for book in _state().books.values()], "/$metadata#companies")


@api.get("/ODataV4/Company")
def odata_companies(instance):
    return _page([{"@odata.etag": 'W/"JzQ0OzEn"', "Name": book.spec.name, "Evaluation_Company": False,
                   "Display_Name": book.spec.name, "Id": guid(book.spec.id), "Business_Profile_Id": ""}
                  for book in _state().books.values()], "/$metadata#Company")


@api.get("/api/v2.0/companies(<company>)/<service>")
def company_service(instance, company, service):
    book = next((b for b in _state().books.values() if guid(b.spec.id) == company), None)
    return _service(book, service, f"/$metadata#companies({company})/{service}")


@api.get("/ODataV4/Company(<name>)/<service>")
def odata_company_service(instance, name, service):
    name = name[1:-1].replace("''", "'") if name.startswith("'") and name.endswith("'") else name
    book = next((b for b in _state().books.values() if b.spec.name == name), None)
    return _service(book, service, f"/$metadata#Company('{name}')/{service}")


def _service(book, service, context):
    if book is None:
        return odata_error("BadRequest_NotFound", "The specified resource does not exist.", 404)
    answer = SERVICES.get(service)
    if answer is None:
        return odata_error("BadRequest_NotFound", f"No HTTP resource was found that matches the request URI "
                                                  f"'{service}'.", 404)
    return _page(answer(book), context)


# -- data --------------------------------------------------------------------------------


def chart(book):
    """The book's posting accounts with a heading and an end-total per kind (as Business Central's charts)."""
    rows = []
    for kind, first, _last, _share, _names in CHART_PLAN:
        head = first // 1000
        members = [a for a in book.accounts if a["type"] == kind]
        if not members:
            continue
        rows.append({"number": f"{head}0000", "name": CATEGORY[kind].upper(), "kind": kind, "type": "Heading",
                     "members": ()})
        rows += [{"number": a["number"], "name": a["name"], "kind": kind, "type": "Posting", "members": ()}
                 for a in members]
        rows.append({"number": f"{head}9999", "name": f"TOTAL {CATEGORY[kind].upper()}", "kind": kind,
                     "type": "End-Total", "members": tuple(a["number"] for a in members)})
    return rows


def accounts(book):
    v1 = _state().mode(PACKAGE, "v1_shapes")
    rows = []
    for account in chart(book):
        row = {"id": guid(book.spec.id, account["number"]), "number": account["number"],
               "displayName": account["name"], "category": CATEGORY[account["kind"]], "subCategory": "",
               "blocked": False, "lastModifiedDateTime": SYSTEM_TIME}
        if not v1:
            row = {"@odata.etag": 'W/"JzE5OzEn"', **row, "accountType": account["type"],
                   "directPosting": account["type"] == "Posting", "netChange": 0,
                   "consolidationTranslationMethod": "Average_x0020_Rate_x0020__x0028_Manual_x0029_",
                   "consolidationDebitAccount": "", "consolidationCreditAccount": "", "excludeFromConsolidation": False}
        rows.append(row)
    return rows


def accounting_periods(book):
    rows = []
    for start, end in book.fiscal_years:
        month = start
        while month <= end:
            rows.append({"@odata.etag": 'W/"JzE5OzEn"', "id": guid(book.spec.id, "period", month),
                         "startingDate": month.isoformat(), "name": month.strftime("%B"),
                         "newFiscalYear": month == start, "closed": False, "dateLocked": False,
                         "lastModifiedDateTime": SYSTEM_TIME})
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return rows


_lines_cache = {}


def current_lines(book):
    """The book's current lines, cached until the next mutation."""
    key = (book.spec.id, book.seed, book.mutations, book.clock)
    if key not in _lines_cache:
        _lines_cache.clear()
        _lines_cache[key] = list(book.all_lines())
    return _lines_cache[key]


def formatted(value):
    """An amount as Business Central's trial balance writes it ('' for zero)."""
    if not value:
        return ""
    text = f"{value:,.2f}"
    if _state().mode(PACKAGE, "decimal_comma"):
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def _split(amount):
    return (formatted(amount), "") if amount > 0 else ("", formatted(-amount))


_DATE_RANGE = re.compile(r"dateFilter\s+ge\s+(\d{4}-\d\d-\d\d).*dateFilter\s+le\s+(\d{4}-\d\d-\d\d)")


def trial_balance(book):
    match = _DATE_RANGE.search(request.args.get("$filter", ""))
    first, last = (date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))) if match else \
        (date(1900, 1, 1), date.today())
    change, balance = Counter(), Counter()
    for line in current_lines(book):
        day, amount = date.fromisoformat(line["date"]), Decimal(line["amount"])
        if day <= last:
            balance[line["account"]] += amount
            if day >= first:
                change[line["account"]] += amount
    v1 = _state().mode(PACKAGE, "v1_shapes")
    rows = []
    for account in chart(book):
        members = account["members"] or (account["number"],)
        net = sum((change[n] for n in members), Decimal(0))
        at_date = sum((balance[n] for n in members), Decimal(0))
        heading = account["type"] == "Heading"
        debit, credit = ("", "") if heading else _split(net)
        debit_at, credit_at = ("", "") if heading else _split(at_date)
        rows.append({"number": account["number"], "accountId": guid(book.spec.id, account["number"]),
                     "accountType": account["type"], "display": account["name"], "totalDebit": debit,
                     "totalCredit": credit, "balanceAtDateDebit": debit_at, "balanceAtDateCredit": credit_at,
                     "dateFilter": f"{last.isoformat()}T00:00:00Z" if v1 else last.isoformat()})
    return rows


_MODIFIED = re.compile(r"lastModifiedDateTime\s+(ge|gt)\s+(\S+)")


def _moment(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ledger_entries(book):
    match = _MODIFIED.search(request.args.get("$filter", ""))
    v1 = _state().mode(PACKAGE, "v1_shapes")
    rows = []
    for line in current_lines(book):
        modified = _moment(line["modified_at"])
        if match and not (modified >= _moment(match.group(2)) if match.group(1) == "ge" else
                          modified > _moment(match.group(2))):
            continue
        amount = Decimal(line["amount"])
        row = {"id": line["id"] if v1 else guid(book.spec.id, "entry", line["id"]), "entryNumber": line["id"],
               "postingDate": line["date"], "documentNumber": line["reference"],
               "documentType": DOCUMENT_TYPES[line["journal"]], "accountId": guid(book.spec.id, line["account"]),
               "accountNumber": line["account"], "description": line["description"],
               "debitAmount": float(amount) if amount > 0 else 0, "creditAmount": float(-amount) if amount < 0 else 0,
               "lastModifiedDateTime": modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        if v1:
            del row["entryNumber"]
            row["dimensions"] = []
        else:
            row.update({"@odata.etag": 'W/"JzE5OzEn"', "additionalCurrencyDebitAmount": 0,
                        "additionalCurrencyCreditAmount": 0})
        rows.append(row)
    rows.sort(key=lambda r: r.get("entryNumber", r["id"]))  # the table's key: Entry No.
    return rows


SERVICES = {"accounts": accounts, "trialBalance": trial_balance, "generalLedgerEntries": ledger_entries,
            "accountingPeriods": accounting_periods}


def register(app, state):
    """Mount Business Central at ``/bocount/<instance>`` and its Entra ID at ``/bocount/entra``."""
    state.oauth[PACKAGE] = EntraTenant()
    state.initial_budgets.setdefault(PACKAGE, dict(DEFAULT_BUDGET))
    state.budgets.setdefault(PACKAGE, dict(DEFAULT_BUDGET))
    app.register_blueprint(entra)
    app.register_blueprint(api)
