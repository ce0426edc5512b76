"""e-conomic: the installation (consent) page and the legacy REST API over the generated books (``connectors/economic/__init__.py``).

Under ``/e-conomic`` (a connection's ``base_url`` is ``<sandbox>/e-conomic/api`` and its
``consent_url`` ``<sandbox>/e-conomic/secure/api1/requestaccess.aspx``):

* ``GET /secure/api1/requestaccess.aspx?appPublicToken=&redirectUrl=``: the page where the
  customer picks an agreement and adds the app; ``POST`` redirects to ``redirectUrl`` with
  ``token=<agreement grant token>`` (nothing on cancel);
* ``GET /api/self``, ``/api/accounts``, ``/api/accounting-years``, ``.../periods``,
  ``.../periods/<n>/totals``, ``.../entries``: collections with ``pagination``
  (``skippages``/``pagesize`` up to 1,000, ``nextPage`` links), ISO dates, numbers.

Every call needs ``X-AppSecretToken`` (the app's secret) and ``X-AgreementGrantToken`` (a
grant issued here); otherwise 401 in e-conomic's error shape. Each generated company is an
agreement; periods are months, and totals and entries follow the entry date (e-conomic
books by date). Accounting-year ids are the ``year`` with ``/`` written ``_6_``.
"""
from __future__ import annotations

import secrets
import threading
import uuid
import zlib
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, g, jsonify, redirect, render_template_string, request

from connectors.emulation.books import month_end

PACKAGE = "economic"
PREFIX = "/e-conomic"
#: {app public token: app secret token}
DEFAULT_APPS = {"economic-sandbox-public": "economic-sandbox-secret"}
MAX_PAGE = 1000
DEFAULT_PAGE = 20
ENTRY_TYPES = {"SALES": "customerInvoice", "PURCH": "supplierInvoice", "BANK": "financeVoucher",
               "MISC": "financeVoucher"}

CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>e-conomic: add app</title></head><body>
<h1>e-conomic</h1>
<p>The app <strong>Firmsync</strong> asks for access to your agreement.</p>
<form method="post">
  <input type="hidden" name="appPublicToken" value="{{ app }}">
  <input type="hidden" name="redirectUrl" value="{{ redirect_url }}">
  <label>Agreement <select name="agreement" id="agreement">{% for number, name in agreements %}
    <option value="{{ number }}">{{ number }} {{ name }}</option>{% endfor %}</select></label>
  <button type="submit" name="decision" value="allow" id="allow">Add app</button>
  <button type="submit" name="decision" value="deny" id="deny">Cancel</button>
</form></body></html>"""


def agreement_number(company_id):
    return 700_000 + zlib.crc32(company_id.encode()) % 300_000


def year_id(start, end):
    """e-conomic's ``year``: ``2024`` for a calendar year, ``2023/2024`` otherwise."""
    return str(start.year) if start.year == end.year else f"{start.year}/{end.year}"


def _state():
    return current_app.extensions["sandbox"]


def _grants():
    return _state().oauth[PACKAGE]


def _agreements():
    return {agreement_number(book.spec.id): book for book in _state().books.values()}


class Grants:
    """The agreement grant tokens issued by the installation page (reset and revoked like OAuth grants)."""

    def __init__(self, apps):
        self.apps = dict(apps)
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.tokens = {}  # grant token -> agreement number

    def revoke_all(self):
        self.reset()

    def issue(self, agreement):
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = agreement
        return token

    def agreement(self, app_secret, grant):
        if not app_secret or app_secret not in self.apps.values():
            return None
        with self.lock:
            return self.tokens.get(grant or "")


def error(status, message, code, hint=""):
    response = jsonify({"message": message, "errorCode": code, "developerHint": hint, "logId": uuid.uuid4().hex[:16],
                        "httpStatusCode": status, "logTime": datetime.now(timezone.utc).isoformat()})
    response.status_code = status
    return response


# --------------------------------------------------------------------------------------
# Installation page
# --------------------------------------------------------------------------------------

consent = Blueprint("economic_consent", __name__, url_prefix=f"{PREFIX}/secure/api1")


@consent.route("/requestaccess.aspx", methods=["GET", "POST"])
def request_access():
    values = request.values
    app, redirect_url = values.get("appPublicToken"), values.get("redirectUrl")
    if app not in _grants().apps or not redirect_url:
        return "Unknown app or missing redirectUrl.", 400
    if request.method == "GET":
        agreements = [(number, book.spec.name) for number, book in _agreements().items()]
        return render_template_string(CONSENT_PAGE, app=app, redirect_url=redirect_url, agreements=agreements)
    parts = urlsplit(redirect_url)
    query = parse_qsl(parts.query)
    if values.get("decision") == "allow":
        try:
            agreement = int(values.get("agreement", ""))
        except ValueError:
            agreement = None
        if agreement not in _agreements():
            return "Pick one of your agreements.", 400
        query.append(("token", _grants().issue(agreement)))
    return redirect(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), "")))


# --------------------------------------------------------------------------------------
# REST API
# --------------------------------------------------------------------------------------

api = Blueprint(PACKAGE, __name__, url_prefix=f"{PREFIX}/api")


@api.before_request
def _authenticate():
    agreement = _grants().agreement(request.headers.get("X-AppSecretToken"), request.headers.get("X-AgreementGrantToken"))
    if agreement is None:
        return error(401, "You are not authorized to access this resource.", "E01010",
                     "Supply valid X-AppSecretToken and X-AgreementGrantToken headers.")
    g.economic_book = _agreements()[agreement]
    g.economic_agreement = agreement
    return None


def _collection(items):
    """One page of ``items`` from ``skippages``/``pagesize``, with e-conomic's ``pagination`` links."""
    try:
        skip = int(request.args.get("skippages", 0))
        size = int(request.args.get("pagesize", DEFAULT_PAGE))
    except ValueError:
        return error(400, "skippages and pagesize must be numbers.", "E04000")
    if size > MAX_PAGE or size < 1:
        return error(400, f"The pagesize must be between 1 and {MAX_PAGE}.", "E04000")
    page = items[skip * size:(skip + 1) * size]
    last = max(0, (len(items) - 1) // size)

    def link(n):
        return request.base_url + "?" + urlencode({"skippages": n, "pagesize": size})

    pagination = {"maxPageSizeAllowed": MAX_PAGE, "skipPages": skip, "pageSize": size, "results": len(items),
                  "resultsWithoutFilter": len(items), "firstPage": link(0), "lastPage": link(last)}
    if skip < last:
        pagination["nextPage"] = link(skip + 1)
    return jsonify({"collection": page, "pagination": pagination, "self": request.url})


def _root():
    return request.host_url.rstrip("/") + PREFIX + "/api"


def _years(book):
    """``{url id: (year, start, end)}``: e-conomic writes ``/`` in a year id as ``_6_`` in URLs."""
    return {year_id(start, end).replace("/", "_6_"): (year_id(start, end), start, end)
            for start, end in book.fiscal_years}


def _year_row(url_id, year, start, end):
    base = f"{_root()}/accounting-years/{url_id}"
    return {"year": year, "fromDate": start.isoformat(), "toDate": end.isoformat(), "closed": False,
            "periods": f"{base}/periods", "entries": f"{base}/entries", "totals": f"{base}/totals", "self": base}


def _periods(start, end):
    found, month = [], start
    while month <= end:
        found.append((len(found) + 1, month, month_end(month)))
        month = month_end(month) + timedelta(days=1)
    return found


def _year_or_404(book, url_id):
    return _years(book).get(url_id)


@api.get("/self")
def self_():
    book, number = g.economic_book, g.economic_agreement
    return jsonify({
        "agreementNumber": number, "agreementType": {"agreementTypeNumber": 1, "name": "Sandbox"},
        "userName": "Sandra Sandbox", "signupDate": "2023-01-02",
        "user": {"loginId": "sandra", "email": "sandra@sandbox.invalid", "name": "Sandra Sandbox",
                 "agreementNumber": number},
        "company": {"name": book.spec.name, "country": book.spec.country, "vatNumber": book.spec.vat_number,
                    "addressLine1": "Sandkassevej 1", "city": "Sandby", "zip": "1000"},
        "settings": {"baseCurrency": book.spec.currency, "internationalLedger": False},
        "application": {"appNumber": 1, "name": "Firmsync", "appPublicToken": next(iter(_grants().apps))},
        "canSendElectronicInvoice": False, "modules": [], "self": f"{_root()}/self",
    })


@api.get("/accounts")
def accounts():
    book = g.economic_book
    rows = []
    for account in book.accounts:
        balance_sheet = account["type"] in ("asset", "liability", "equity")
        rows.append({"accountNumber": int(account["number"]), "name": account["name"],
                     "accountType": "status" if balance_sheet else "profitAndLoss",
                     "debitCredit": "debit" if account["type"] in ("asset", "expense") else "credit",
                     "balance": 0.0, "blockDirectEntries": False, "barred": False,
                     "accountingYears": f"{_root()}/accounts/{account['number']}/accounting-years",
                     "self": f"{_root()}/accounts/{account['number']}"})
    first = book.accounts[0]
    rows.insert(0, {"accountNumber": int(first["number"]) - 1, "name": "BALANCE SHEET", "accountType": "heading",
                    "debitCredit": "debit", "balance": 0.0, "blockDirectEntries": True, "barred": False,
                    "self": f"{_root()}/accounts/{int(first['number']) - 1}"})
    return _collection(rows)


@api.get("/accounting-years")
def accounting_years():
    return _collection([_year_row(url_id, *values) for url_id, values in _years(g.economic_book).items()])


@api.get("/accounting-years/<url_id>")
def accounting_year(url_id):
    found = _year_or_404(g.economic_book, url_id)
    if not found:
        return error(404, "The accounting year was not found.", "E04040")
    return jsonify(_year_row(url_id, *found))


@api.get("/accounting-years/<url_id>/periods")
def periods(url_id):
    found = _year_or_404(g.economic_book, url_id)
    if not found:
        return error(404, "The accounting year was not found.", "E04040")
    year, start, end = found
    base = f"{_root()}/accounting-years/{url_id}"
    return _collection([{"periodNumber": n, "fromDate": s.isoformat(), "toDate": e.isoformat(), "barred": False,
                         "closed": False, "accountingYear": {"year": year, "self": base},
                         "entries": f"{base}/periods/{n}/entries", "totals": f"{base}/periods/{n}/totals",
                         "self": f"{base}/periods/{n}"} for n, s, e in _periods(start, end)])


def _lines_between(book, start, end):
    return [line for line in book.all_lines() if start <= date.fromisoformat(line["date"]) <= end]


@api.get("/accounting-years/<url_id>/periods/<int:number>/totals")
def period_totals(url_id, number):
    found = _year_or_404(g.economic_book, url_id)
    spans = {n: (s, e) for n, s, e in _periods(found[1], found[2])} if found else {}
    if number not in spans:
        return error(404, "The accounting year period was not found.", "E04040")
    start, end = spans[number]
    totals = defaultdict(Decimal)
    for line in _lines_between(g.economic_book, start, end):
        totals[int(line["account"])] += Decimal(line["amount"])
    return _collection([{"account": {"accountNumber": account, "self": f"{_root()}/accounts/{account}"},
                         "totalInBaseCurrency": float(total), "fromDate": start.isoformat(), "toDate": end.isoformat(),
                         "self": f"{_root()}/accounting-years/{url_id}/periods/{number}/totals"}
                        for account, total in sorted(totals.items()) if total])


@api.get("/accounting-years/<url_id>/entries")
def entries(url_id):
    book = g.economic_book
    found = _year_or_404(book, url_id)
    if not found:
        return error(404, "The accounting year was not found.", "E04040")
    rows = []
    for line in sorted(_lines_between(book, found[1], found[2]), key=lambda l: l["id"]):
        row = {"entryNumber": line["id"], "account": {"accountNumber": int(line["account"]),
                                                      "self": f"{_root()}/accounts/{line['account']}"},
               "amount": float(Decimal(line["amount"])), "amountInBaseCurrency": float(Decimal(line["amount"])),
               "currency": book.spec.currency, "date": line["date"], "text": line["description"],
               "entryType": ENTRY_TYPES[line["journal"]], "voucherNumber": line["entry_id"],
               "self": f"{_root()}/entries/{line['id']}"}
        if line["dimensions"].get("cost_centre"):
            number = int(line["dimensions"]["cost_centre"].lstrip("CC"))
            row["departmentalDistribution"] = {"departmentalDistributionNumber": number,
                                               "self": f"{_root()}/departmental-distributions/{number}"}
        rows.append(row)
    return _collection(rows)


def register(app, state):
    """Mount e-conomic's installation page and REST API under ``/e-conomic``."""
    settings = app.config["SANDBOX"]
    state.oauth[PACKAGE] = Grants(settings.get("oauth_clients") or DEFAULT_APPS)
    app.register_blueprint(consent)
    app.register_blueprint(api)
