"""Xero: identity, OAuth2 and the Accounting API 2.0 over the generated books (``connectors/xero/__init__.py``).

Under ``/xero`` (a connection's ``identity_url`` is ``<sandbox>/xero`` and its ``base_url``
``<sandbox>/xero/api.xro/2.0``):

* ``GET /identity/connect/authorize``: consent page listing the organisations; ``POST`` decides;
* ``POST /connect/token``: authorization code (PKCE checked) and rotating refresh tokens;
* ``GET /connections``, ``DELETE /connections/<id>`` (the organisation leaves the grant);
* ``GET /api.xro/2.0/Organisation``, ``Accounts``, ``Journals?offset=`` (100 per page by
  JournalNumber, ``If-Modified-Since``), ``Reports/TrialBalance?date=``.

Each generated company is an organisation (tenantId derived from its id). Responses are
shaped as in Xero's OpenAPI spec: MS-JSON dates, numbers in journals, strings in reports.
Errors: 401 problem JSON for a bad token, 403 ``AuthenticationUnsuccessful`` for a missing
or disconnected ``xero-tenant-id``, 429 with ``Retry-After`` and ``X-Rate-Limit-Problem``
(``minute``, ``appminute``, ``day``, ``concurrent``) from per-tenant limits (60/min unless
the sandbox's ``budgets`` say otherwise, 5,000/day, 5 concurrent) and the app's limit per
grant (``per_connection`` of the budget, 10,000/min by default).
"""
from __future__ import annotations

import functools
import threading
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime

from flask import Blueprint, current_app, g, jsonify, render_template_string, request

from connectors.emulation.books import BASE_MODIFIED, month_end, name_uuid, parse_ts
from connectors.emulation.oauth_server import AUTHORIZE_PARAMS, OAuthProvider

PACKAGE = "xero"
PREFIX = "/xero"
DEFAULT_CLIENTS = {"xero-sandbox-client": "xero-sandbox-secret"}
JOURNALS_PAGE = 100
PER_MINUTE, PER_DAY, CONCURRENT = 60, 5000, 5
#: Xero's "App Minute Limit" across all organisations (https://developer.xero.com/faq/limits)
APP_PER_MINUTE = 10_000
NAMESPACE = uuid.UUID("5b0c8a9e-7f4d-4c1e-9a53-2d6f0e1b7c44")
#: vendor variants (``/_sandbox/modes``, ``sandbox.modes(xero=[...])`` in tests)
MODES = {
    "backdated_journals": "every 7th journal was created a year before the journals around it (backdated and "
                          "converted journals): CreatedDateUTC is not monotonic in JournalNumber, and "
                          "If-Modified-Since filters on it as Xero does",
    "unnamed_connections": "GET /connections answers without tenantName (as for some grants)",
}
#: how much earlier a backdated journal was created
BACKDATED_BY = 365 * 86400

#: generated account kinds -> (Xero Type, Class, trial balance section)
ACCOUNT_TYPES = {
    "asset": ("CURRENT", "ASSET", "Assets"),
    "liability": ("CURRLIAB", "LIABILITY", "Liabilities"),
    "equity": ("EQUITY", "EQUITY", "Equity"),
    "income": ("REVENUE", "REVENUE", "Revenue"),
    "expense": ("EXPENSE", "EXPENSE", "Expenses"),
}
JOURNAL_SOURCES = {"SALES": "ACCREC", "PURCH": "ACCPAY", "BANK": "CASHREC", "MISC": "MANJOURNAL"}
SECTIONS = ("Revenue", "Expenses", "Assets", "Liabilities", "Equity")

CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Xero: connect Firmsync</title></head><body>
<h1>Xero</h1>
<p><strong>{{ client_id }}</strong> wants to access your organisations ({{ scope }}).</p>
<form method="post">
  {% for name, value in params.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
  <ul>{% for org in organisations %}<li><label><input type="checkbox" checked disabled> {{ org }}</label></li>{% endfor %}</ul>
  <button type="submit" name="decision" value="allow" id="allow">Allow access</button>
  <button type="submit" name="decision" value="deny" id="deny">Cancel</button>
</form></body></html>"""


@functools.lru_cache(maxsize=1024)
def tenant_id(company_id):
    return name_uuid(NAMESPACE, f"tenant:{company_id}")


@functools.lru_cache(maxsize=100_000)
def account_id(company_id, number):
    return name_uuid(NAMESPACE, f"account:{company_id}:{number}")


@functools.lru_cache(maxsize=1024)
def connection_id(company_id):
    return name_uuid(NAMESPACE, f"connection:{company_id}")


@functools.lru_cache(maxsize=1024)
def tracking_id(name):
    return name_uuid(NAMESPACE, name)


def ms_date(day):
    return ms_datetime(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))


def ms_datetime(moment):
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


class XeroProvider(OAuthProvider):
    """Xero's grants plus its per-tenant limits and disconnected organisations."""

    def reset(self):
        super().reset()
        self.disconnected = set()
        self.day_calls = Counter()
        self.running = defaultdict(int)
        self.limit_lock = threading.Lock()

    def authorize(self):
        if request.method == "GET" and request.values.get("client_id") in self.clients:
            params = {k: request.values[k] for k in AUTHORIZE_PARAMS if request.values.get(k)}
            names = [book.spec.name for book in _state().books.values()]
            return render_template_string(CONSENT_PAGE, client_id=request.values["client_id"],
                                          scope=request.values.get("scope", ""), params=params, organisations=names)
        return super().authorize()


def _state():
    return current_app.extensions["sandbox"]


def _provider():
    return _state().oauth[PACKAGE]


def _problem(status, title, detail):
    response = jsonify({"Type": None, "Title": title, "Status": status, "Detail": detail,
                        "Instance": str(uuid.uuid4()), "Extensions": {}})
    response.status_code = status
    return response


def _too_many(problem, retry_after):
    response = jsonify({"Title": "Too Many Requests", "Status": 429, "Detail": f"Rate limit exceeded: {problem}"})
    response.status_code = 429
    response.headers["Retry-After"] = str(int(retry_after))
    response.headers["X-Rate-Limit-Problem"] = problem
    return response


def _envelope(**payload):
    return jsonify({"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "Firmsync sandbox",
                    "DateTimeUTC": ms_datetime(datetime.now(timezone.utc)).replace("+0000", ""), **payload})


# --------------------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------------------

identity = Blueprint("xero_identity", __name__, url_prefix=PREFIX)


@identity.before_request
def _bearer_only():
    if request.endpoint in ("xero_identity.authorize", "xero_identity.token"):
        return None
    if not _provider().valid_bearer(request.headers.get("Authorization")):
        return _problem(401, "Unauthorized", "TokenExpired: token expired or invalid")
    return None


@identity.route("/identity/connect/authorize", methods=["GET", "POST"], endpoint="authorize")
def authorize():
    return _provider().authorize()


@identity.post("/connect/token", endpoint="token")
def token():
    return _provider().token()


@identity.get("/connections")
def connections():
    provider, state = _provider(), _state()
    rows = [
        {"id": connection_id(book.spec.id), "tenantId": tenant_id(book.spec.id),
         "tenantType": "ORGANISATION", "tenantName": book.spec.name,
         "createdDateUtc": "2024-01-02T09:00:00.0000000", "updatedDateUtc": "2024-01-02T09:00:00.0000000"}
        for book in state.books.values() if tenant_id(book.spec.id) not in provider.disconnected
    ]
    if state.mode(PACKAGE, "unnamed_connections"):
        for row in rows:
            del row["tenantName"]
    return jsonify(rows)


@identity.delete("/connections/<connection>")
def disconnect(connection):
    for book in _state().books.values():
        if connection_id(book.spec.id) == connection:
            _provider().disconnected.add(tenant_id(book.spec.id))
            return "", 204
    return "", 404


# --------------------------------------------------------------------------------------
# accounting API
# --------------------------------------------------------------------------------------

api = Blueprint("xero_api", __name__, url_prefix=f"{PREFIX}/api.xro/2.0")


@api.before_request
def _authenticate_and_limit():
    provider, state = _provider(), _state()
    if not provider.valid_bearer(request.headers.get("Authorization")):
        return _problem(401, "Unauthorized", "TokenExpired: token expired or invalid")
    tenant = request.headers.get("xero-tenant-id", "")
    book = next((b for b in state.books.values() if tenant_id(b.spec.id) == tenant), None)
    if book is None or tenant in provider.disconnected:
        return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
    with provider.limit_lock:
        if provider.day_calls[tenant] >= PER_DAY:
            return _too_many("day", 3600)
        if provider.running[tenant] >= CONCURRENT:
            return _too_many("concurrent", 1)
        provider.day_calls[tenant] += 1
        provider.running[tenant] += 1
    g.xero_tenant = tenant
    wait, refused = state.spend_naming(PACKAGE, tenant, provider.grant_of(request.headers.get("Authorization")))
    if wait:
        return _too_many("minute" if "tenant" in refused else "appminute", wait)
    g.xero_book = book
    return None


@api.teardown_request
def _release(_exc=None):
    tenant = g.pop("xero_tenant", None)
    if tenant is not None:
        provider = _provider()
        with provider.limit_lock:
            provider.running[tenant] -= 1


def _chart(book):
    return {account["number"]: account for account in book.accounts}


def _year_end(book):
    return book.fiscal_years[0][1]


@api.get("/Organisation")
def organisation():
    book = g.xero_book
    year_end = _year_end(book)
    return _envelope(Organisations=[{
        "OrganisationID": tenant_id(book.spec.id), "APIKey": book.spec.id.upper().replace("-", ""),
        "Name": book.spec.name, "LegalName": book.spec.name, "PaysTax": True, "Version": "GLOBAL",
        "OrganisationType": "COMPANY", "BaseCurrency": book.spec.currency, "CountryCode": book.spec.country,
        "IsDemoCompany": False, "OrganisationStatus": "ACTIVE", "TaxNumber": book.spec.vat_number,
        "FinancialYearEndDay": year_end.day, "FinancialYearEndMonth": year_end.month,
        "SalesTaxBasis": "ACCRUALS", "SalesTaxPeriod": "QUARTERLY1", "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive", "CreatedDateUTC": "/Date(1704186000000)/",
        "OrganisationEntityType": "COMPANY", "Timezone": "UTC", "ShortCode": "!" + book.spec.id[-4:],
        "Edition": "BUSINESS", "Class": "PREMIUM", "Addresses": [], "Phones": [], "ExternalLinks": [],
        "PaymentTerms": {},
    }])


def _account_type(account):
    """Xero's Type of a generated account (its bank accounts are BANK)."""
    return "BANK" if account["name"].startswith("Bank account") else ACCOUNT_TYPES[account["type"]][0]


def _account(book, account):
    xero_type, xero_class = _account_type(account), ACCOUNT_TYPES[account["type"]][1]
    row = {"AccountID": account_id(book.spec.id, account["number"]), "Code": account["number"],
           "Name": account["name"], "Status": "ACTIVE", "Type": xero_type, "TaxType": "NONE", "Class": xero_class,
           "EnablePaymentsToAccount": False, "ShowInExpenseClaims": False, "HasAttachments": False,
           "UpdatedDateUTC": "/Date(1704186000000+0000)/", "AddToWatchlist": False}
    if xero_type == "BANK":
        row.update(BankAccountType="BANK", BankAccountNumber="0000" + account["number"], CurrencyCode=book.spec.currency)
    return row


@api.get("/Accounts")
def accounts():
    book = g.xero_book
    return _envelope(Accounts=[_account(book, account) for account in book.accounts])


def journal_created(number, lines, backdated=False):
    """A journal's CreatedDateUTC as UNIX seconds (mode ``backdated_journals``: every 7th a year earlier)."""
    created = parse_ts(lines[0]["modified_at"])
    return created - BACKDATED_BY if backdated and number % 7 == 3 else created


def _journal(book, number, lines, chart, created):
    first = lines[0]
    journal_lines = []
    for line in lines:
        account = chart[line["account"]]
        amount = Decimal(line["amount"])
        row = {"JournalLineID": name_uuid(NAMESPACE, f"line:{book.spec.id}:{line['id']}"),
               "AccountID": account_id(book.spec.id, account["number"]), "AccountCode": account["number"],
               "AccountType": _account_type(account), "AccountName": account["name"],
               "Description": line["description"], "NetAmount": float(amount), "GrossAmount": float(amount),
               "TaxAmount": 0.0, "TrackingCategories": []}
        if line["dimensions"].get("cost_centre"):
            row["TrackingCategories"] = [{
                "TrackingCategoryID": tracking_id("tracking:cost_centre"),
                "TrackingOptionID": tracking_id(f"option:{line['dimensions']['cost_centre']}"),
                "Name": "Cost centre", "Option": line["dimensions"]["cost_centre"]}]
        journal_lines.append(row)
    return {"JournalID": name_uuid(NAMESPACE, f"journal:{book.spec.id}:{number}"),
            "JournalDate": ms_date(date.fromisoformat(first["date"])), "JournalNumber": number,
            "CreatedDateUTC": ms_datetime(datetime.fromtimestamp(created, timezone.utc)), "Reference": first["reference"],
            "SourceID": name_uuid(NAMESPACE, f"source:{book.spec.id}:{number}"),
            "SourceType": JOURNAL_SOURCES[first["journal"]], "JournalLines": journal_lines}


def journal_entries(book, offset, since=None, backdated=False):
    """``(JournalNumber, lines, created)`` after ``offset`` (created at or after ``since``, UNIX seconds), in order.

    Journal n is generated entry n-1; entries added through the sandbox's mutations follow.
    Xero journals never change: changed or deleted generated lines are not emulated here.
    With ``backdated``, creation times are not monotonic, so ``since`` is checked journal by journal.
    """
    start = max(offset, 0) if backdated else max(offset, (since - BASE_MODIFIED) if since else 0, 0)
    for entry in range(start, book.entry_count):
        lines = book.base_entry(entry)
        created = journal_created(entry + 1, lines, backdated)
        if not since or created >= since:
            yield entry + 1, lines, created
    added = defaultdict(list)
    for line in sorted(book.added.values(), key=lambda line: line["id"]):
        added[line["entry_id"]].append(line)
    for number, lines in sorted(added.items()):
        created = journal_created(number, lines, backdated)
        if number > offset and (not since or created >= since):
            yield number, lines, created


@api.get("/Journals")
def journals():
    book = g.xero_book
    try:
        offset = int(request.args.get("offset", 0))
    except ValueError:
        return jsonify({"ErrorNumber": 10, "Type": "ValidationException", "Message": "offset must be a number"}), 400
    since = None
    if request.headers.get("If-Modified-Since"):
        since = _parse_since(request.headers["If-Modified-Since"])
        if since is None:
            return jsonify({"ErrorNumber": 10, "Type": "ValidationException",
                            "Message": "If-Modified-Since is not a date"}), 400
    chart, page = _chart(book), []
    for number, lines, created in journal_entries(book, offset, since, _state().mode(PACKAGE, "backdated_journals")):
        page.append(_journal(book, number, lines, chart, created))
        if len(page) == JOURNALS_PAGE:
            break
    return _envelope(Journals=page)


def _parse_since(value):
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def _fiscal_year_start(book, day):
    """Xero's fiscal year start for ``day`` (the year-end day/month repeats every year)."""
    year_end = _year_end(book)
    end = month_end(date(day.year, year_end.month, 1))
    if end < day:
        end = month_end(date(day.year + 1, year_end.month, 1))
    return month_end(date(end.year - 1, year_end.month, 1)) + timedelta(days=1)


@api.get("/Reports/TrialBalance")
def trial_balance():
    book = g.xero_book
    try:
        as_at = date.fromisoformat(request.args.get("date") or date.today().isoformat())
    except ValueError:
        return jsonify({"ErrorNumber": 10, "Type": "ValidationException", "Message": "date is not a date"}), 400
    year_start, chart = _fiscal_year_start(book, as_at), _chart(book)
    totals = defaultdict(Decimal)
    for line in book.all_lines():
        day = date.fromisoformat(line["date"])
        kind = chart[line["account"]]["type"]
        if day <= as_at and (kind in ("asset", "liability", "equity") or day >= year_start):
            totals[line["account"]] += Decimal(line["amount"])
        elif day < year_start and kind in ("income", "expense"):  # earlier years' result sits in equity
            totals["_retained"] += Decimal(line["amount"])
    retained = next((a["number"] for a in book.accounts if a["type"] == "equity"), None)
    if retained and totals.get("_retained"):
        totals[retained] += totals["_retained"]
    totals.pop("_retained", None)
    sections = defaultdict(list)
    for account in book.accounts:
        amount = totals.get(account["number"])
        if not amount:
            continue
        aid = account_id(book.spec.id, account["number"])
        values = [f"{account['name']} ({account['number']})", "", "",
                  f"{amount:.2f}" if amount > 0 else "", f"{-amount:.2f}" if amount < 0 else ""]
        sections[ACCOUNT_TYPES[account["type"]][2]].append(
            {"RowType": "Row", "Cells": [{"Value": v, "Attributes": [{"Value": aid, "Id": "account"}]} for v in values]})
    debit = sum((v for v in totals.values() if v > 0), Decimal(0))
    credit = -sum((v for v in totals.values() if v < 0), Decimal(0))
    rows = [{"RowType": "Header", "Cells": [{"Value": v} for v in ("Account", "Debit", "Credit", "YTD Debit", "YTD Credit")]}]
    rows += [{"RowType": "Section", "Title": title, "Rows": sections[title]} for title in SECTIONS if sections[title]]
    rows.append({"RowType": "Section", "Title": "", "Rows": [{"RowType": "SummaryRow", "Cells": [
        {"Value": "Total"}, {"Value": ""}, {"Value": ""}, {"Value": f"{debit:.2f}"}, {"Value": f"{credit:.2f}"}]}]})
    label = f"{as_at.day} {as_at.strftime('%B %Y')}"
    return _envelope(Reports=[{"ReportID": "TrialBalance", "ReportName": "Trial Balance", "ReportType": "TrialBalance",
                               "ReportTitles": ["Trial Balance", book.spec.name, f"As at {label}"],
                               "ReportDate": label, "UpdatedDateUTC": ms_datetime(datetime.now(timezone.utc)),
                               "Fields": [], "Rows": rows}])


def register(app, state):
    """Mount Xero's identity, OAuth and accounting API under ``/xero``."""
    settings = app.config["SANDBOX"]
    provider = XeroProvider(PACKAGE, "Xero", state, clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
                            access_seconds=settings.get("token_seconds") or 1800, rotating=True)
    state.oauth[PACKAGE] = provider
    # Xero's 60 calls a minute per organisation and 10,000 per app (here: per grant), unless
    # the sandbox was given other budgets
    state.initial_budgets.setdefault(PACKAGE, {"per_minute": PER_MINUTE, "per_connection": APP_PER_MINUTE})
    state.budgets.setdefault(PACKAGE, dict(state.initial_budgets[PACKAGE]))
    app.register_blueprint(identity)
    app.register_blueprint(api)
