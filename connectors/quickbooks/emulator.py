"""QuickBooks Online: Intuit's OAuth2 and the Accounting API v3 over the generated books (connector:
``connectors/quickbooks/__init__.py``).

Under ``/quickbooks`` (a connection's ``oauth_url`` is ``<sandbox>/quickbooks`` and its
``base_url`` ``<sandbox>/quickbooks/api/v3/company``):

* ``GET /connect/oauth2``: consent page where the user picks the company; ``POST`` decides
  and the callback carries ``code``, ``state`` and ``realmId``;
* ``POST /oauth2/v1/tokens/bearer``: authorization code and refresh tokens (rotating: each
  refresh token works once, as Intuit may rotate it);
* ``GET /api/v3/company/<realm>/companyinfo/<realm>``, ``query`` (``select * from Account ...
  STARTPOSITION n MAXRESULTS m``), ``reports/TrialBalance``, ``reports/GeneralLedger``,
  ``cdc?entities=&changedSince=`` (30 days back at most).

Each generated company is a realm; each generated entry is one transaction (SALES an
Invoice, PURCH a Bill, BANK a Deposit, MISC a JournalEntry, Id = entry number). Every
answer carries ``time``: the company's clock (the book's mutation clock), so CDC bookmarks
line up with the mutations. Report values are strings, as Intuit sends them. Errors come
as Intuit faults: 401 ``AuthenticationFailed`` (code 3200), 403 for a realm outside the
grant (3100), 400 ``ValidationFault`` for a bad query or an old ``changedSince``. Vendor
variants to switch on are listed in ``MODES``.
"""
from __future__ import annotations

import re
import zlib
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template_string, request

from connectors.emulation.books import entry_of, parse_ts
from connectors.emulation.oauth_server import AUTHORIZE_PARAMS, OAuthProvider

PACKAGE = "quickbooks"
PREFIX = "/quickbooks"
DEFAULT_CLIENTS = {"qbo-sandbox-client": "qbo-sandbox-secret"}
CDC_DAYS = 30
MAX_RESULTS = 1000
#: generated journals -> (entity, GeneralLedger txn_type label)
TRANSACTIONS = {"SALES": ("Invoice", "Invoice"), "PURCH": ("Bill", "Bill"), "BANK": ("Deposit", "Deposit"),
                "MISC": ("JournalEntry", "Journal Entry")}
CLASSIFICATIONS = {"asset": ("Asset", "Other Current Asset"), "liability": ("Liability", "Other Current Liability"),
                   "equity": ("Equity", "Equity"), "income": ("Revenue", "Income"), "expense": ("Expense", "Expense")}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
#: column key -> title of the GeneralLedger columns the sandbox can serve
LEDGER_COLUMNS = {"tx_date": "Date", "txn_type": "Transaction Type", "doc_num": "Num", "name": "Name",
                  "memo": "Memo/Description", "split_acc": "Split", "debt_amt": "Debit", "credit_amt": "Credit",
                  "subt_nat_amount": "Amount"}
DEFAULT_LEDGER_COLUMNS = ("tx_date", "txn_type", "doc_num", "name", "memo", "split_acc", "subt_nat_amount")
#: vendor variants (``/_sandbox/modes``, ``sandbox.modes(quickbooks=[...])`` in tests)
MODES = {
    "legacy_report_columns": "report columns as older and localized answers name them: GeneralLedger puts the key "
                             "in ColType (tx_date, debt_amt) without MetaData, titles in French with the number "
                             "column untitled; TrialBalance titles Débit/Crédit",
}
#: GeneralLedger titles of a French-language company (mode ``legacy_report_columns``; ``doc_num`` untitled)
LOCALIZED_LEDGER_TITLES = {"tx_date": "Date", "txn_type": "Type d'opération", "doc_num": "", "name": "Nom",
                           "memo": "Mémo/Description", "split_acc": "Ventilation", "debt_amt": "Débit",
                           "credit_amt": "Crédit", "subt_nat_amount": "Montant"}
_QUERY = re.compile(r"^\s*select\s+\*\s+from\s+(\w+)(.*?)(?:\s+startposition\s+(\d+))?(?:\s+maxresults\s+(\d+))?\s*$",
                    re.IGNORECASE)

CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Intuit: connect Firmsync</title></head><body>
<h1>QuickBooks</h1>
<p><strong>{{ client_id }}</strong> wants to connect to your QuickBooks company ({{ scope }}).</p>
<form method="post">
  {% for name, value in params.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
  <label>Company <select name="realm" id="realm">{% for realm, name in companies %}
    <option value="{{ realm }}">{{ name }}</option>{% endfor %}</select></label>
  <button type="submit" name="decision" value="allow" id="allow">Connect</button>
  <button type="submit" name="decision" value="deny" id="deny">Cancel</button>
</form></body></html>"""


def realm_id(company_id):
    """A 16-digit realm id derived from the sandbox company id."""
    return f"9130{zlib.crc32(company_id.encode()) % 10 ** 12:012d}"


def _state():
    return current_app.extensions["sandbox"]


def _provider():
    return _state().oauth[PACKAGE]


def _books():
    return {realm_id(book.spec.id): book for book in _state().books.values()}


def server_time(book):
    """The company's clock as Intuit writes times."""
    return datetime.fromtimestamp(book.clock, timezone.utc).isoformat()


def _fault(status, code, message, detail, fault_type="ValidationFault", book=None):
    time = server_time(book) if book else datetime.now(timezone.utc).isoformat()
    response = jsonify({"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": fault_type},
                        "time": time})
    response.status_code = status
    return response


class IntuitProvider(OAuthProvider):
    """Intuit's grants: the consent page picks a company, the callback adds ``realmId``."""

    def authorize(self):
        values = request.values
        if request.method == "GET" and values.get("client_id") in self.clients:
            params = {k: values[k] for k in AUTHORIZE_PARAMS if values.get(k)}
            companies = [(realm, book.spec.name) for realm, book in _books().items()]
            return render_template_string(CONSENT_PAGE, client_id=values["client_id"], scope=values.get("scope", ""),
                                          params=params, companies=companies)
        response = super().authorize()
        realm = values.get("realm")
        if request.method == "POST" and response.status_code == 302 and values.get("decision") == "allow":
            if realm not in _books():
                return "Pick one of your companies.", 400
            response = redirect(response.headers["Location"] + "&" + urlencode({"realmId": realm}))
        return response


# --------------------------------------------------------------------------------------
# Accounting API
# --------------------------------------------------------------------------------------

api = Blueprint(PACKAGE, __name__, url_prefix=f"{PREFIX}/api/v3/company/<company>")


@api.before_request
def _authenticate():
    if not _provider().valid_bearer(request.headers.get("Authorization")):
        response = jsonify({"fault": {"error": [{
            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "detail": "Token expired or invalid", "code": "3200"}], "type": "AUTHENTICATION"},
            "time": datetime.now(timezone.utc).isoformat()})
        response.status_code = 401
        return response
    if (request.view_args or {}).get("company") not in _books():
        return _fault(403, "3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                      "This app is not connected to that company.", "SERVICE")
    return None


def _accounts(book):
    """The chart as Intuit Account entities (Id = position, AcctNum = the generated number)."""
    rows = []
    for position, account in enumerate(book.accounts, start=1):
        classification, account_type = CLASSIFICATIONS[account["type"]]
        if account["name"].startswith("Bank account"):
            account_type = "Bank"
        rows.append({"Id": str(position), "SyncToken": "0", "Name": account["name"], "AcctNum": account["number"],
                     "FullyQualifiedName": account["name"], "SubAccount": False, "Active": True,
                     "Classification": classification, "AccountType": account_type,
                     "CurrentBalance": 0, "CurrentBalanceWithSubAccounts": 0,
                     "CurrencyRef": {"value": book.spec.currency, "name": book.spec.currency},
                     "domain": "QBO", "sparse": False,
                     "MetaData": {"CreateTime": "2023-01-02T09:00:00-08:00", "LastUpdatedTime": "2023-01-02T09:00:00-08:00"}})
    return rows


def _account_ids(book):
    return {row["AcctNum"]: row for row in _accounts(book)}


@api.get("/companyinfo/<realm>")
def company_info(company, realm):
    book = _books()[company]
    if realm != company:
        return _fault(400, "610", "Object Not Found", "Something you're trying to use has been made inactive.", book=book)
    start = book.fiscal_years[0][0]
    return jsonify({"CompanyInfo": {
        "Id": "1", "SyncToken": "3", "CompanyName": book.spec.name, "LegalName": book.spec.name,
        "CompanyAddr": {"Id": "1", "Line1": "1 Sandbox Street", "City": "Sandbox", "Country": book.spec.country,
                        "PostalCode": "1000"},
        "CompanyStartDate": start.isoformat(), "FiscalYearStartMonth": MONTHS[book.spec.fy_start_month - 1],
        "Country": book.spec.country, "SupportedLanguages": "en", "DefaultTimeZone": "UTC",
        "NameValue": [{"Name": "NeoEnabled", "Value": "true"}], "domain": "QBO", "sparse": False,
        "MetaData": {"CreateTime": "2023-01-02T09:00:00-08:00", "LastUpdatedTime": server_time(book)},
    }, "time": server_time(book)})


@api.get("/query")
def query(company):
    book = _books()[company]
    match = _QUERY.match(request.args.get("query", ""))
    if not match or match.group(1).lower() != "account":
        return _fault(400, "4000", "Error parsing query", "QueryParserError: the sandbox answers select * from Account",
                      book=book)
    start, limit = int(match.group(3) or 1), min(int(match.group(4) or 100), MAX_RESULTS)
    rows = _accounts(book)[start - 1:start - 1 + limit]
    result = {"Account": rows, "startPosition": start, "maxResults": len(rows)} if rows else {}
    return jsonify({"QueryResponse": result, "time": server_time(book)})


def _dates():
    try:
        return date.fromisoformat(request.args["start_date"]), date.fromisoformat(request.args["end_date"])
    except (KeyError, ValueError):
        return None, None


def _header(book, name, start, end, columns):
    return {"Time": server_time(book), "ReportName": name, "ReportBasis": request.args.get("accounting_method", "Accrual"),
            "StartPeriod": start.isoformat(), "EndPeriod": end.isoformat(), "Currency": book.spec.currency,
            "Option": [{"Name": "NoReportData", "Value": "false" if columns else "true"}]}


def _money(amount):
    return f"{amount:.2f}" if amount else ""


@api.get("/reports/TrialBalance")
def trial_balance(company):
    book = _books()[company]
    start, end = _dates()
    if start is None:
        return _fault(400, "2010", "Invalid date", "start_date and end_date are required as YYYY-MM-DD", book=book)
    kinds = {a["number"]: a["type"] for a in book.accounts}
    totals = defaultdict(Decimal)
    for line in book.all_lines():
        day = date.fromisoformat(line["date"])
        if day > end:
            continue
        if kinds[line["account"]] in ("asset", "liability", "equity") or day >= start:
            totals[line["account"]] += Decimal(line["amount"])
        else:  # results of earlier years sit in retained earnings
            totals["_retained"] += Decimal(line["amount"])
    retained = next(a["number"] for a in book.accounts if a["type"] == "equity")
    totals[retained] += totals.pop("_retained", Decimal(0))
    accounts = _account_ids(book)
    rows, debit, credit = [], Decimal(0), Decimal(0)
    for account in book.accounts:
        amount = totals.get(account["number"])
        if not amount:
            continue
        row = accounts[account["number"]]
        debit, credit = debit + max(amount, 0), credit + max(-amount, 0)
        rows.append({"ColData": [{"value": row["FullyQualifiedName"], "id": row["Id"]},
                                 {"value": _money(max(amount, 0))}, {"value": _money(max(-amount, 0))}]})
    rows.append({"Summary": {"ColData": [{"value": "TOTAL"}, {"value": f"{debit:.2f}"}, {"value": f"{credit:.2f}"}]},
                 "type": "Section", "group": "GrandTotal"})
    debit, credit = ("Débit", "Crédit") if _state().mode(PACKAGE, "legacy_report_columns") else ("Debit", "Credit")
    return jsonify({"Header": _header(book, "TrialBalance", start, end, rows),
                    "Columns": {"Column": [{"ColTitle": "", "ColType": "Account"},
                                           {"ColTitle": debit, "ColType": "Money"},
                                           {"ColTitle": credit, "ColType": "Money"}]},
                    "Rows": {"Row": rows}})


def _ledger_cell(key, line):
    amount = Decimal(line["amount"])
    label = TRANSACTIONS[line["journal"]][1]
    cells = {
        "tx_date": {"value": line["date"]},
        "txn_type": {"value": label, "id": str(line["entry_id"])},
        "doc_num": {"value": line["reference"]},
        "name": {"value": ""},
        "memo": {"value": line["description"]},
        "split_acc": {"value": "-Split-"},
        "debt_amt": {"value": _money(max(amount, 0))},
        "credit_amt": {"value": _money(max(-amount, 0))},
        "subt_nat_amount": {"value": f"{amount:.2f}"},
    }
    return cells[key]


@api.get("/reports/GeneralLedger")
def general_ledger(company):
    book = _books()[company]
    start, end = _dates()
    if start is None:
        return _fault(400, "2010", "Invalid date", "start_date and end_date are required as YYYY-MM-DD", book=book)
    keys = [k for k in (request.args.get("columns") or "").split(",") if k] or list(DEFAULT_LEDGER_COLUMNS)
    unknown = [k for k in keys if k not in LEDGER_COLUMNS]
    if unknown:
        return _fault(400, "2010", "Invalid column", f"Unknown column(s): {', '.join(unknown)}", book=book)
    by_account = defaultdict(list)
    for line in book.all_lines():
        if start <= date.fromisoformat(line["date"]) <= end:
            by_account[line["account"]].append(line)
    accounts = _account_ids(book)
    sections = []
    for account in book.accounts:
        lines = sorted(by_account.get(account["number"], ()), key=lambda l: (l["date"], l["entry_id"], l["id"]))
        if not lines:
            continue
        row = accounts[account["number"]]
        blank = [{"value": ""} for _ in keys[1:]]
        sections.append({
            "Header": {"ColData": [{"value": row["FullyQualifiedName"], "id": row["Id"]}, *blank]},
            "Rows": {"Row": [{"ColData": [{"value": "Beginning Balance"}, *blank]}, *[
                {"ColData": [_ledger_cell(key, line) for key in keys], "type": "Data"} for line in lines]]},
            "Summary": {"ColData": [{"value": f"Total for {row['FullyQualifiedName']}"}, *blank]},
            "type": "Section"})
    if _state().mode(PACKAGE, "legacy_report_columns"):
        columns = [{"ColType": k, "ColTitle": LOCALIZED_LEDGER_TITLES[k]} for k in keys]
    else:
        columns = [{"ColTitle": LEDGER_COLUMNS[k], "ColType": "Money" if "amt" in k or "amount" in k else "String",
                    "MetaData": [{"Name": "ColKey", "Value": k}]} for k in keys]
    return jsonify({"Header": _header(book, "GeneralLedger", start, end, sections), "Columns": {"Column": columns},
                    "Rows": {"Row": sections}})


def _entry_lines(book, entry_id):
    """The generated lines of transaction ``entry_id`` (1-based), or the added ones."""
    if entry_id <= book.entry_count:
        return book.base_entry(entry_id - 1)
    return [line for line in book.added.values() if line["entry_id"] == entry_id]


@api.get("/cdc")
def cdc(company):
    book = _books()[company]
    entities = [e for e in (request.args.get("entities") or "").split(",") if e]
    try:
        since = datetime.fromisoformat(request.args["changedSince"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return _fault(400, "2010", "Invalid changedSince", "changedSince must be a date and time", book=book)
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    now = datetime.fromtimestamp(book.clock, timezone.utc)
    if since < now - timedelta(days=CDC_DAYS):
        return _fault(400, "2010", "Invalid changedSince", "changedSince cannot be more than 30 days ago", book=book)
    since_ts = since.timestamp()
    with book._lock:
        changed = {}  # entry id -> last change (seconds)
        for line in list(book.changed.values()) + list(book.added.values()):
            if parse_ts(line["modified_at"]) >= since_ts:
                changed[line["entry_id"]] = max(changed.get(line["entry_id"], 0), parse_ts(line["modified_at"]))
        for line_id, deleted_at in book.deleted.items():
            if deleted_at >= since_ts and line_id <= book.line_count:
                entry = entry_of(line_id - 1) + 1
                changed[entry] = max(changed.get(entry, 0), deleted_at)
        deleted_ids = set(book.deleted)
    found = defaultdict(list)
    for entry_id, moment in sorted(changed.items()):
        lines = _entry_lines(book, entry_id)
        if not lines:
            continue
        entity = TRANSACTIONS[lines[0]["journal"]][0]
        when = datetime.fromtimestamp(moment, timezone.utc).isoformat()
        if all(line["id"] in deleted_ids for line in lines):
            found[entity].append({"Id": str(entry_id), "status": "Deleted", "domain": "QBO",
                                  "MetaData": {"LastUpdatedTime": when}})
        else:
            found[entity].append({"Id": str(entry_id), "SyncToken": "1", "TxnDate": lines[0]["date"], "domain": "QBO",
                                  "sparse": False, "MetaData": {"CreateTime": when, "LastUpdatedTime": when}})
    queries = [{name: found[name], "startPosition": 1, "maxResults": len(found[name])}
               for name in entities if found.get(name)]
    return jsonify({"CDCResponse": [{"QueryResponse": queries}], "time": server_time(book)})


def register(app, state):
    """Mount Intuit's OAuth and the QuickBooks Online API under ``/quickbooks``."""
    settings = app.config["SANDBOX"]
    provider = IntuitProvider(PACKAGE, "QuickBooks", state, clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
                              access_seconds=settings.get("token_seconds") or 3600, rotating=True)
    state.oauth[PACKAGE] = provider
    oauth = Blueprint("quickbooks_oauth", __name__, url_prefix=PREFIX)
    oauth.add_url_rule("/connect/oauth2", "authorize", provider.authorize, methods=["GET", "POST"])
    oauth.add_url_rule("/oauth2/v1/tokens/bearer", "token", provider.token, methods=["POST"])
    app.register_blueprint(oauth)
    app.register_blueprint(api)
