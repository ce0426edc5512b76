"""Yuki in the sandbox: SOAP 1.1 ASMX services at ``/yuki/<nl|be>/ws/<Service>.asmx`` over the generated books.

One administration per generated company (its GUID derived from the company id), all in one domain
(``two_domains``: split over two). ``Authenticate(accessKey)`` accepts the sandbox's API keys and opens a
session; every other call takes ``sessionID`` in its body. Faults are SOAP 1.1 ``soap:Fault`` on HTTP 500
with the texts of :data:`FAULT_TEXTS`. Each access key has a daily budget of :data:`DAILY_CALLS` calls
(every POST counts, Authenticate included); when spent the answer is the "Daily limit exceeded" fault.
``GET ...asmx?WSDL`` serves the WSDLs shipped in ``connectors/yuki/wsdl``. Answers follow those WSDLs
(the tests validate them with xmlschema).
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, Response, current_app, request
from lxml import etree

from connectors.emulation.books import BASE_MODIFIED, entry_of, iso_ts, parse_ts

PACKAGE = "yuki"
#: vendor variants (``sandbox.modes(yuki=[...])``)
MODES = {
    "session_expires_mid_sync": f"a session dies after {3} calls: the connector must re-authenticate once",
    "be_host": "the key belongs to the BE host: api.yukiworks.nl refuses it, api.yukiworks.be accepts it",
    "padded_codes": "GL account codes arrive space-padded (scheme, balances and transaction lines)",
    "two_domains": "the key reaches two domains: the second company onwards sits in the second domain",
    "no_rights": "the key may list the administrations but not read their books",
    "daily_limit_spent": "the day's call budget is already spent: every call faults",
}
NS = "http://www.theyukicompany.com/"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_DIR = Path(__file__).parent / "wsdl"
SERVICES = {"Accounting": {"Authenticate", "Domains", "SetCurrentDomain", "Administrations", "GLAccountBalance"},
            "AccountingInfo": {"Authenticate", "GetGLAccountScheme", "GetTransactionDetails", "GetPeriodDateTable",
                               "GetFinancialYearModifiedDate", "GetStartBalanceByGlAccount"}}
DAILY_CALLS = 1000
SESSION_CALLS_WHEN_EXPIRING = 3
#: the fault texts (GUESSES: the vendor publishes no fault list; see connectors/yuki/README.md)
FAULT_TEXTS = {
    "key": "Authentication failed: invalid access key.",
    "session": "Invalid SessionID: the session has expired or does not exist.",
    "rights": "The user has no rights for this administration.",
    "limit": "Daily limit exceeded.",
}
KIND_TYPES = {"asset": 1, "liability": 2, "equity": 3, "income": 4, "expense": 5}
BALANCE_SHEET = {"asset", "liability", "equity"}
DOMAIN_IDS = ("6d1b8f2e-0c4a-4b7e-9a51-3f2d7c9e1a01", "6d1b8f2e-0c4a-4b7e-9a51-3f2d7c9e1a02")

api = Blueprint("yuki", __name__, url_prefix="/yuki")


def administration_id(company_id):
    """The administration GUID of a generated company."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.firmsync/yuki/{company_id}"))


def line_guid(company_id, line_id):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://sandbox.firmsync/yuki/{company_id}/line/{line_id}"))


def _state():
    return current_app.extensions["sandbox"]


def _store():
    """This emulator's sessions and counters, forgotten at every sandbox reset (a reset makes a new
    ``state.calls`` counter, which the store remembers as its epoch)."""
    state = _state()
    with state.lock:
        store = state.__dict__.setdefault("_yuki", {})
        if store.get("epoch") is not state.calls:
            store.clear()
            store.update(epoch=state.calls, sessions={}, usage={}, ledgers={})
        return store


def _mode(name):
    return _state().mode(PACKAGE, name)


# -- envelopes ----------------------------------------------------------------------------------

def _xml(content, status=200):
    body = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENV}" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f"<soap:Body>{content}</soap:Body></soap:Envelope>")
    return Response(body.encode(), status=status, content_type="text/xml; charset=utf-8")


def fault(kind, code="soap:Server"):
    return _xml(f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{escape(FAULT_TEXTS[kind])}</faultstring>"
                "<detail /></soap:Fault>", status=500)


def answer(operation, inner):
    return _xml(f'<{operation}Response xmlns="{NS}"><{operation}Result>{inner}</{operation}Result>'
                f"</{operation}Response>")


def _stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _code(number):
    text = str(number)
    return f"  {text}    " if _mode("padded_codes") else text


# -- books as Yuki sees them --------------------------------------------------------------------

def _book_of(admin):
    for book in _state().books.values():
        if administration_id(book.spec.id) == admin:
            return book
    return None


def _domain_of(book):
    books = list(_state().books)
    if _mode("two_domains") and books.index(book.spec.id) > 0:
        return DOMAIN_IDS[1]
    return DOMAIN_IDS[0]


def _ledger(book):
    """``(lines sorted by (date, id), {line id: date}, kinds by account)`` for the book's current state."""
    store = _store()
    key = (book.spec.id, book.mutations)
    with _state().lock:
        cached = store["ledgers"].get(book.spec.id)
        if cached and cached[0] == key:
            return cached[1]
    lines = sorted(book.all_lines(), key=lambda line: (line["date"], line["id"]))
    kinds = {a["number"]: a["type"] for a in book.accounts}
    value = (lines, kinds)
    with _state().lock:
        store["ledgers"][book.spec.id] = (key, value)
    return value


def _year_of(book, year_id):
    for start, end in book.fiscal_years:
        if start.year == year_id:
            return start, end
    return None


def _modified_in(book, start, end):
    """When anything dated in [start, end] last changed: the latest line change, or deletion."""
    lines, _ = _ledger(book)
    latest = 0
    for line in lines:
        if start.isoformat() <= line["date"] <= end.isoformat():
            latest = max(latest, parse_ts(line["modified_at"]))
    for line_id, deleted_at in book.deleted.items():
        if line_id <= book.line_count:
            base = next(row for row in book.base_entry(entry_of(line_id - 1)) if row["id"] == line_id)
            if start.isoformat() <= base["date"] <= end.isoformat():
                latest = max(latest, deleted_at)
    return datetime.strptime(iso_ts(latest or BASE_MODIFIED), "%Y-%m-%dT%H:%M:%SZ")


def _balances(book, day, *, sheet_only=False, before=False):
    """``{account: amount}`` at ``day``: balance-sheet accounts since the beginning, P&L accounts
    from the start of the financial year holding ``day`` (``before``: strictly before ``day``)."""
    lines, kinds = _ledger(book)
    year_start = next((start for start, end in book.fiscal_years if start <= day <= end), book.fiscal_years[0][0])
    totals = {}
    limit = day.isoformat()
    for line in lines:
        if line["date"] > limit or (before and line["date"] == limit):
            break
        kind = kinds.get(line["account"], "asset")
        if kind not in BALANCE_SHEET and (sheet_only or line["date"] < year_start.isoformat()):
            continue
        totals[line["account"]] = totals.get(line["account"], Decimal(0)) + Decimal(line["amount"])
    return {account: amount for account, amount in sorted(totals.items()) if amount}


# -- operations ---------------------------------------------------------------------------------

def op_authenticate(params, region):
    key = params.get("accessKey") or ""
    if key not in _state().api_keys or (_mode("be_host") and region != "be"):
        return fault("key")
    session = str(uuid.uuid4())
    with _state().lock:
        _store()["sessions"][session] = {"key": key, "domain": DOMAIN_IDS[0], "calls": 0}
    return answer("Authenticate", escape(session))


def op_domains(params, session):
    domains = DOMAIN_IDS if _mode("two_domains") else DOMAIN_IDS[:1]
    rows = "".join(f"<Domain ID={quoteattr(d)}><Name>Sandbox domain {n}</Name></Domain>"
                   for n, d in enumerate(domains, 1))
    return answer("Domains", f'<Domains xmlns="">{rows}</Domains>')


def op_set_current_domain(params, session):
    domain = params.get("domainID") or ""
    if domain not in (DOMAIN_IDS if _mode("two_domains") else DOMAIN_IDS[:1]):
        return fault("rights")
    session["domain"] = domain
    return answer("SetCurrentDomain", f'<Domain xmlns="" ID={quoteattr(domain)} />')


def op_administrations(params, session):
    rows = []
    for book in _state().books.values():
        if _domain_of(book) != session["domain"]:
            continue
        spec = book.spec
        rows.append(f"<Administration ID={quoteattr(administration_id(spec.id))}><Name>{escape(spec.name)}</Name>"
                    f"<Country>{escape(spec.country)}</Country><VATNumber>{escape(spec.vat_number)}</VATNumber>"
                    f"<StartDate>{book.fiscal_years[0][0].isoformat()}</StartDate>"
                    f"<DomainID>{session['domain']}</DomainID><Active>true</Active></Administration>")
    return answer("Administrations", f'<Administrations xmlns="">{"".join(rows)}</Administrations>')


def op_gl_account_balance(params, book):
    day = _day(params["transactionDate"])
    _, kinds = _ledger(book)
    names = {a["number"]: a["name"] for a in book.accounts}
    rows = "".join(
        f'<GLAccount Code={quoteattr(_code(account))} '
        f'BalanceType="{"B" if kinds.get(account) in BALANCE_SHEET else "W"}">'
        f"<Description>{escape(names.get(account, account))}</Description><Amount>{amount}</Amount></GLAccount>"
        for account, amount in _balances(book, day).items())
    return answer("GLAccountBalance", f'<GLAccountBalance xmlns="">{rows}</GLAccountBalance>')


def op_gl_account_scheme(params, book):
    rows = "".join(f"<GlAccount><code>{escape(_code(a['number']))}</code><type>{KIND_TYPES.get(a['type'], 0)}</type>"
                   f"<subtype>0</subtype><isEnabled>true</isEnabled><descripton>{escape(a['name'])}</descripton>"
                   "</GlAccount>" for a in book.accounts)
    return answer("GetGLAccountScheme", rows)


def op_transaction_details(params, book):
    start, end = _day(params["StartDate"]).isoformat(), _day(params["EndDate"]).isoformat()
    account = (params.get("GLAccountCode") or "").strip()
    size, first = int(params["numberOfRecords"]), int(params["startRecord"])
    lines, _ = _ledger(book)
    chosen = [line for line in lines if start <= line["date"] <= end and (not account or line["account"] == account)]
    rows = []
    for line in chosen[max(first, 1) - 1: max(first, 1) - 1 + size]:
        rows.append(f"<TransactionInfo><id>{line_guid(book.spec.id, line['id'])}</id>"
                    f"<transactionDate>{line['date']}T00:00:00</transactionDate>"
                    f"<description>{escape(line['description'])}</description>"
                    f"<transactionAmount>{line['amount']}</transactionAmount>"
                    f"<currency>{book.spec.currency}</currency>"
                    f"<glAccountCode>{escape(_code(line['account']))}</glAccountCode>"
                    f"<documentNumber>{escape(line['reference'])}</documentNumber>"
                    f"<journal>{escape(line['journal'])}</journal></TransactionInfo>")
    return answer("GetTransactionDetails", f'<TransactionDetails xmlns="">{"".join(rows)}</TransactionDetails>')


def op_period_date_table(params, book):
    year = _year_of(book, int(params["yearID"]))
    if year is None:
        return answer("GetPeriodDateTable", "")
    start, end = year
    return answer("GetPeriodDateTable", f"<name>{escape(book.spec.name)}</name><period>{start}T00:00:00</period>"
                                        f"<wholePeriod>{start}T00:00:00 {end}T00:00:00</wholePeriod>"
                                        "<ISO8601Period>false</ISO8601Period>")


def op_year_modified(params, book):
    year = _year_of(book, int(params["yearID"]))
    moment = _modified_in(book, *year) if year else datetime(1, 1, 1)
    return answer("GetFinancialYearModifiedDate", _stamp(moment))


def op_start_balance(params, book):
    year = _year_of(book, int(params["bookyear"]))
    rows = ""
    if year is not None:
        names = {a["number"]: a["name"] for a in book.accounts}
        rows = "".join(f"<AccountStartBalance><accountID>{escape(_code(account))}</accountID>"
                       f"<startBalance>{amount}</startBalance>"
                       f"<accountDescription>{escape(names.get(account, account))}</accountDescription>"
                       "</AccountStartBalance>"
                       for account, amount in _balances(book, year[0], sheet_only=True, before=True).items())
    return answer("GetStartBalanceByGlAccount", rows)


SESSION_OPERATIONS = {"Domains": op_domains, "SetCurrentDomain": op_set_current_domain,
                      "Administrations": op_administrations}
BOOK_OPERATIONS = {"GLAccountBalance": op_gl_account_balance, "GetGLAccountScheme": op_gl_account_scheme,
                   "GetTransactionDetails": op_transaction_details, "GetPeriodDateTable": op_period_date_table,
                   "GetFinancialYearModifiedDate": op_year_modified, "GetStartBalanceByGlAccount": op_start_balance}


def _day(text):
    return date.fromisoformat(str(text).strip()[:10])


def _spend(key):
    """Count one call against ``key``'s budget of the day; False when it is spent."""
    store, today = _store(), datetime.utcnow().date().isoformat()
    with _state().lock:
        used = store["usage"].get((key, today), 0)
        if _mode("daily_limit_spent") or used >= DAILY_CALLS:
            return False
        store["usage"][(key, today)] = used + 1
        return True


@api.get("/<region>/ws/<service>.asmx")
def wsdl(region, service):
    if service not in SERVICES or "wsdl" not in {k.lower() for k in request.args}:
        return Response("Not found", status=404)
    return Response((WSDL_DIR / f"{service}.wsdl").read_bytes(), content_type="text/xml; charset=utf-8")


@api.post("/<region>/ws/<service>.asmx")
def endpoint(region, service):
    if region not in ("nl", "be") or service not in SERVICES:
        return Response("Not found", status=404)
    try:
        envelope = etree.fromstring(request.get_data(), etree.XMLParser(resolve_entities=False, no_network=True))
        call = envelope.find(f"{{{ENV}}}Body")[0]
    except (etree.XMLSyntaxError, TypeError, IndexError):
        return _xml("<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Bad request</faultstring>"
                    "</soap:Fault>", status=500)
    operation = etree.QName(call).localname
    action = (request.headers.get("SOAPAction") or "").strip('"')
    if operation not in SERVICES[service] or action != NS + operation:
        return _xml("<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Server did not recognize the value "
                    f"of HTTP Header SOAPAction: {escape(action)}.</faultstring></soap:Fault>", status=500)
    params = {etree.QName(child).localname: (child.text or "") for child in call}
    if operation == "Authenticate":
        if not _spend(params.get("accessKey") or ""):
            return fault("limit", "soap:Client")
        return op_authenticate(params, region)
    with _state().lock:
        session = _store()["sessions"].get(params.get("sessionID") or "")
    if session is None:
        return fault("session")
    if not _spend(session["key"]):
        return fault("limit", "soap:Client")
    session["calls"] += 1
    if _mode("session_expires_mid_sync") and session["calls"] > SESSION_CALLS_WHEN_EXPIRING:
        with _state().lock:
            _store()["sessions"].pop(params.get("sessionID"), None)
        return fault("session")
    if operation in SESSION_OPERATIONS:
        return SESSION_OPERATIONS[operation](params, session)
    book = _book_of(params.get("administrationID") or "")
    if book is None or _domain_of(book) != session["domain"] or _mode("no_rights"):
        return fault("rights")
    return BOOK_OPERATIONS[operation](params, book)


def register(app, state):
    """Mount Yuki under ``/yuki/nl/ws`` and ``/yuki/be/ws``."""
    app.register_blueprint(api)
