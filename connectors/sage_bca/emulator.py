"""Sage Business Cloud Accounting v3.1 in the sandbox, over the generated books (``connectors/sage_bca``).

Under ``/sage`` (a connection's ``oauth_url`` is ``<sandbox>/sage``, its ``base_url`` ``<sandbox>/sage/v3.1``):

* ``GET|POST /oauth2/auth/central`` (consent), ``POST /token``: authorisation code, 5-minute access
  tokens (the sandbox's ``token_seconds`` overrides), refresh tokens that rotate on every use;
* ``GET /v3.1/businesses`` (unpaged, no ``X-Business``), ``GET /v3.1/businesses/<id>``;
* with ``X-Business``: ``/financial_settings``, ``/ledger_accounts`` (``show_balance_details``,
  ``from_date``, ``to_date``), ``/ledger_entries`` (``updated_or_created_since`` inclusive, ``from_date``,
  ``to_date``, deleted entries flagged), ``/trial_balance`` (CA, GB and IE businesses only; 404 elsewhere);
  lists page with ``items_per_page`` (at most 200) and ``page`` in the ``$items`` envelope.

Each generated company is a business (its country is the company's). Errors are Sage's list of
``{"$severity", "$dataCode", "$message", "$source"}``. Limits: 100 calls a minute per business (or the
sandbox's ``budgets``) and :data:`DAILY_CALLS` a day per business, both answered 429 with ``Retry-After``
(a spent day: the seconds until 00:00 UTC).
"""
from __future__ import annotations

import uuid
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, current_app, g, jsonify, request

from connectors.emulation.books import iso_ts
from connectors.emulation.oauth_server import OAuthProvider

PACKAGE = "sage_bca"
PREFIX = "/sage"
DEFAULT_CLIENTS = {"sage-sandbox-client": "sage-sandbox-secret"}
ACCESS_SECONDS = 300
PER_MINUTE = 100
#: calls a day per business (tests lower it to spend the day quickly)
DAILY_CALLS = 2500
#: in mode ``tokens_die_early``, an access token stops working this many seconds after it was issued
EARLY_DEATH_SECONDS = 1
MAX_PAGE = 200
TRIAL_BALANCE_COUNTRIES = ("CA", "GB", "IE")
NAMESPACE = uuid.UUID("0c7e4c2a-5b8e-4f0c-9a7e-3d1b2c4e5f60")
#: vendor variants (``sandbox.modes(sage_bca=[...])``)
MODES = {
    "trial_balance_wrapped": "/trial_balance answers the reporting spec's TrialBalance definition: wrapped in "
                             "trial_balance{} with numbers (the default is its example: top level, strings)",
    "tokens_die_early": f"access tokens stop working {EARLY_DEATH_SECONDS} s after they were issued although the "
                        "token answer says 300 s (a token ended early): the client learns it from a 401",
}
#: generated account kinds -> Sage ledger account types
ACCOUNT_TYPES = {"asset": ("CURRENT_ASSETS", "Current Assets"), "liability": ("CURRENT_LIABILITY", "Current Liability"),
                 "equity": ("EQUITY", "Equity"), "income": ("SALES", "Sales"), "expense": ("OVERHEADS", "Overheads")}
CREATED = "2023-01-02T09:00:00Z"


def business_id(company_id):
    return uuid.uuid5(NAMESPACE, f"business:{company_id}").hex


def account_id(company_id, number):
    return uuid.uuid5(NAMESPACE, f"account:{company_id}:{number}").hex


def entry_id(company_id, line_id):
    return uuid.uuid5(NAMESPACE, f"entry:{company_id}:{line_id}").hex


class SageProvider(OAuthProvider):
    """Sage's grants plus its daily counts, the answers it computed, and the early deaths of ``tokens_die_early``."""

    def reset(self):
        super().reset()
        self.day_calls = Counter()
        self.cache = {}

    def _issue(self, client_id, grant=None):
        issued = super()._issue(client_id, grant)
        if self.state.mode(PACKAGE, "tokens_die_early"):
            with self.lock:
                self.access_tokens[issued["access_token"]] = time.time() + EARLY_DEATH_SECONDS
        return issued


def _state():
    return current_app.extensions["sandbox"]


def _provider():
    return _state().oauth[PACKAGE]


def _errors(status, code, message, retry_after=None):
    response = jsonify([{"$severity": "error", "$dataCode": code, "$message": message, "$source": ""}])
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    return response


def _link(path, ident, shown):
    return {"id": ident, "displayed_as": shown, "$path": f"/{path}/{ident}"}


# --------------------------------------------------------------------------------------
# OAuth
# --------------------------------------------------------------------------------------

oauth = Blueprint("sage_oauth", __name__, url_prefix=PREFIX)


@oauth.route("/oauth2/auth/central", methods=["GET", "POST"])
def authorize():
    return _provider().authorize()


@oauth.post("/token")
def token():
    return _provider().token()


# --------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------

api = Blueprint("sage_api", __name__, url_prefix=f"{PREFIX}/v3.1")


@api.before_request
def _authenticate_and_limit():
    provider, state = _provider(), _state()
    header = request.headers.get("Authorization")
    if not provider.valid_bearer(header):
        return _errors(401, "AuthenticationFailed", "The access token is missing, expired or revoked.")
    if request.endpoint == "sage_api.businesses":
        return None
    business = request.headers.get("X-Business") or (request.view_args or {}).get("business", "")
    book = next((b for b in state.books.values() if business_id(b.spec.id) == business), None)
    if book is None:
        return _errors(403, "AccessDenied", "You do not have access to this business.")
    with provider.lock:
        if provider.day_calls[business] >= DAILY_CALLS:
            now = datetime.now(timezone.utc)
            midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
            return _errors(429, "TooManyRequests", "The daily request limit for this business is reached.",
                           max(1, (midnight - now).total_seconds()))
        provider.day_calls[business] += 1
    wait = state.spend(PACKAGE, business)
    if wait:
        return _errors(429, "TooManyRequests", "Too many requests for this business in a minute.", wait)
    g.sage_book = book
    return None


def _page(rows, path):
    try:
        size = min(max(int(request.args.get("items_per_page", 20)), 1), MAX_PAGE)
        page = max(int(request.args.get("page", 1)), 1)
    except ValueError:
        return _errors(422, "InvalidParameter", "items_per_page and page must be numbers.")
    items = rows[(page - 1) * size: page * size]
    query = {k: v for k, v in request.args.items() if k not in ("page", "items_per_page")}
    following = "&".join(f"{k}={v}" for k, v in query.items())

    def link(number):
        return f"/{path}?page={number}&items_per_page={size}" + (f"&{following}" if following else "")

    return jsonify({"$total": len(rows), "$page": page, "$next": link(page + 1) if page * size < len(rows) else None,
                    "$back": link(page - 1) if page > 1 else None, "$itemsPerPage": size, "$items": items})


def _day(name):
    value = request.args.get(name)
    return date.fromisoformat(value[:10]) if value else None


def _cached(book, key, compute):
    provider = _provider()
    key = (book.spec.id, book.mutations, *key)
    with provider.lock:
        if key in provider.cache:
            return provider.cache[key]
    value = compute()
    with provider.lock:
        if len(provider.cache) > 64:
            provider.cache.clear()
        provider.cache[key] = value
    return value


@api.get("/businesses")
def businesses():
    rows = [_link("businesses", business_id(b.spec.id), b.spec.name) for b in _state().books.values()]
    return jsonify({"$total": len(rows), "$page": 1, "$next": None, "$back": None,
                    "$items_per_page": 2147483647, "$items": rows})


@api.get("/businesses/<business>")
def business(business):
    book = g.sage_book
    return jsonify({**_link("businesses", business, book.spec.name), "name": book.spec.name,
                    "created_at": CREATED, "updated_at": CREATED, "address_line_1": "1 High Street",
                    "city": "London" if book.spec.country == "GB" else "Brussel", "postal_code": "1000",
                    "country": {"id": book.spec.country, "displayed_as": book.spec.country},
                    "is_demo": False, "subscriptions": []})


@api.get("/financial_settings")
def financial_settings():
    book = g.sage_book
    return jsonify({"$path": "/financial_settings", "year_end_date": book.fiscal_years[-1][1].isoformat(),
                    "accounts_start_date": book.fiscal_years[0][0].isoformat(),
                    "base_currency": _link("currencies", book.spec.currency, book.spec.currency),
                    "multi_currency_enabled": False, "use_live_exchange_rates": False, "accounting_type": "accrual",
                    "tax_number": book.spec.vat_number, "updated_at": CREATED})


def _account(book, account):
    type_id, type_name = ACCOUNT_TYPES[account["type"]]
    return {**_link("ledger_accounts", account_id(book.spec.id, account["number"]),
                    f"{account['name']} ({account['number']})"),
            "created_at": CREATED, "updated_at": CREATED, "name": account["name"], "display_name": account["name"],
            "nominal_code": int(account["number"]), "included_in_chart": True,
            "ledger_account_type": _link("ledger_account_types", type_id, type_name),
            "visible_in_journals": True, "visible_in_reporting": True, "is_control_account": False}


def _movements(book, start, end):
    """``{account: [opening, debits, credits]}`` of the lines dated up to ``end`` (opening: before ``start``)."""
    totals = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])
    for line in book.all_lines():
        day = date.fromisoformat(line["date"])
        if day > end:
            continue
        value = Decimal(line["amount"])
        if day < start:
            totals[line["account"]][0] += value
        else:
            totals[line["account"]][1 if value > 0 else 2] += abs(value)
    return dict(totals)


@api.get("/ledger_accounts")
def ledger_accounts():
    book = g.sage_book
    rows = [_account(book, account) for account in book.accounts]
    if request.args.get("show_balance_details") == "true":
        start, end = _day("from_date"), _day("to_date")
        if not (start and end):
            return _errors(422, "InvalidParameter", "show_balance_details requires from_date and to_date.")
        totals = _cached(book, ("movements", start, end), lambda: _movements(book, start, end))
        for row, account in zip(rows, book.accounts):
            _, debits, credits = totals.get(account["number"], (0, Decimal(0), Decimal(0)))
            balance = debits - credits
            row["balance_details"] = {"from_date": start.isoformat(), "to_date": end.isoformat(),
                                      "debits": float(debits), "credits": float(credits),
                                      "balance": float(abs(balance)),
                                      "credit_or_debit": "credit" if balance < 0 else "debit"}
    return _page(rows, "ledger_accounts")


def _entry(book, line, chart, deleted_at=None):
    value = Decimal(line["amount"])
    account = chart[line["account"]]
    changed = iso_ts(deleted_at) if deleted_at else line["modified_at"]
    return {**_link("ledger_entries", entry_id(book.spec.id, line["id"]), line["description"]),
            "created_at": line["modified_at"] if not deleted_at else changed, "updated_at": changed,
            "date": line["date"], "debit": float(value) if value > 0 else 0.0,
            "credit": float(-value) if value < 0 else 0.0,
            "ledger_account": _link("ledger_accounts", account_id(book.spec.id, account["number"]),
                                    f"{account['name']} ({account['number']})"),
            "transaction": {**_link("transactions", uuid.uuid5(NAMESPACE, f"tx:{book.spec.id}:{line['entry_id']}").hex,
                                    line["reference"]), "reference": line["reference"]},
            "description": line["description"], "deleted": bool(deleted_at)}


def _entries(book, since, start, end):
    chart = {account["number"]: account for account in book.accounts}
    after = (since - 1, 2 ** 62) if since is not None else None
    rows = [_entry(book, line, chart) for line in book.lines_after(after, 10 ** 9)
            if (start is None or line["date"] >= start.isoformat())
            and (end is None or line["date"] <= end.isoformat())]
    for line_id, deleted_at in sorted(book.deleted.items()):
        if since is None or deleted_at >= since:
            try:
                line = book._current_line(line_id) or {}
            except StopIteration:
                line = {}
            line = line or next(iter(book.all_lines()))
            rows.append(_entry(book, {**line, "id": line_id}, chart, deleted_at))
    return rows


@api.get("/ledger_entries")
def ledger_entries():
    book = g.sage_book
    since_text = request.args.get("updated_or_created_since")
    try:
        since = int(datetime.fromisoformat(since_text.replace("Z", "+00:00")).timestamp()) if since_text else None
        start, end = _day("from_date"), _day("to_date")
    except ValueError:
        return _errors(422, "InvalidParameter", "The date filters must be dates.")
    rows = _cached(book, ("entries", since, start, end), lambda: _entries(book, since, start, end))
    return _page(rows, "ledger_entries")


@api.get("/trial_balance")
def trial_balance():
    book = g.sage_book
    if book.spec.country not in TRIAL_BALANCE_COUNTRIES:
        return _errors(404, "RecordNotFound", "This endpoint is not available in this region.")
    try:
        start, end = _day("from_date"), _day("to_date")
    except ValueError:
        return _errors(422, "InvalidParameter", "from_date and to_date must be dates.")
    if not (start and end):
        return _errors(422, "InvalidParameter", "from_date and to_date are required.")
    wrapped = _state().mode(PACKAGE, "trial_balance_wrapped")
    totals = _cached(book, ("movements", start, end), lambda: _movements(book, start, end))

    def side(value):
        debit, credit = (value, Decimal(0)) if value > 0 else (Decimal(0), -value)
        if wrapped:
            return {"debit": float(debit), "credit": float(credit)}
        return {"debit": str(debit), "credit": str(credit)}

    rows = []
    for account in book.accounts:
        if account["number"] not in totals:
            continue
        opening, debits, credits = totals[account["number"]]
        rows.append({**_link("ledger_accounts", account_id(book.spec.id, account["number"]),
                             f"{account['name']} ({account['number']})"),
                     "opening_balance": side(opening), "closing_balance": side(opening + debits - credits),
                     "debit": float(debits) if wrapped else str(debits),
                     "credit": float(credits) if wrapped else str(credits)})
    body = {"from_date": start.isoformat(), "to_date": end.isoformat(), "ledger_accounts": rows}
    return jsonify({"trial_balance": body} if wrapped else body)


def register(app, state):
    """Mount Sage's sign-in service and Accounting API under ``/sage``."""
    settings = app.config["SANDBOX"]
    state.oauth[PACKAGE] = SageProvider(PACKAGE, "Sage Accounting", state,
                                        clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
                                        access_seconds=settings.get("token_seconds") or ACCESS_SECONDS, rotating=True)
    state.initial_budgets.setdefault(PACKAGE, {"per_minute": PER_MINUTE})
    state.budgets.setdefault(PACKAGE, dict(state.initial_budgets[PACKAGE]))
    app.register_blueprint(oauth)
    app.register_blueprint(api)
