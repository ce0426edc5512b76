"""Twinfield in the sandbox: its OpenID Connect login server and ProcessXml (SOAP 1.1) on a cluster.

Under ``/twinfield`` (a connection's ``login_url`` is ``<sandbox>/twinfield/auth/authentication``):

* ``GET|POST /auth/authentication/connect/authorize``, ``POST .../connect/token`` (client by HTTP
  basic; the refresh token is long-lived and does not rotate), ``GET .../connect/accesstokenvalidation?token=``
  (JSON with ``twf.clusterUrl``: this sandbox's own cluster, ``<sandbox>/twinfield/api.accounting``,
  or ``api.accounting2`` in mode ``numbered_cluster``);
* ``POST /<cluster>/webservices/processxml.asmx``: ``ProcessXmlString`` with the ``Header``
  (``AccessToken``, ``CompanyCode``); ``GET ...?wsdl`` serves the package's WSDL copy;
* ``POST /<cluster>/webservices/PeriodService.svc`` (``Query`` of ``GetYears``, ``GetPeriods``) and
  ``DeletedTransactionsService.svc`` (``GetDeletedTransactions``), WCF style: the ``Authentication``
  header, the query named by its ``xsi:type``, the answer a ``Result`` typed the same way. Periods 1 to
  12 are the fiscal year's months, with period 0 (opening, no end date) and 13 (closing, the year's end);
  a deleted transaction is an entry of which the sandbox deleted lines, deleted "today", and
  ``DateFrom`` filters on its deletion date (GUESS).

ProcessXml requests answered: ``<list><type>offices</type></list>``, ``<list><type>dimensions</type>
<office/><dimtype>BAS|PNL</dimtype></list>`` and browses ``<columns code="030_1|030_3|040_1">`` filtered on
``fin.trs.head.office`` and ``fin.trs.head.yearperiod``. The answer is XML inside the SOAP string;
anything else gets ``result="0"`` with a ``msg``. Each generated company is one office of the
organisation; a Twinfield year is a fiscal year, labelled with the calendar year it starts in (GUESS).

Errors as the vendor sends them: an invalid or expired token is a SOAP fault (HTTP 500, "Access
denied. Token invalid (code 354)"), fair-use credits (a query 1, anything else 3; per organisation,
1,000 a minute unless the sandbox's ``budgets`` say otherwise) and more than one call at a time per
organisation are 429 with ``Retry-After``.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, Response, current_app, jsonify, request
from lxml import etree

from connectors.emulation.books import entry_of
from connectors.emulation.oauth_server import OAuthProvider

PACKAGE = "twinfield"
PREFIX = "/twinfield"
DEFAULT_CLIENTS = {"twinfield-sandbox-client": "twinfield-sandbox-secret"}
CLUSTERS = ("api.accounting", "api.accounting2")
WSDL = Path(__file__).parent / "wsdl" / "processxml.wsdl"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DATA_CONTRACTS = "http://schemas.datacontract.org/2004/07/Twinfield.WebServices."
SVC_QUERIES = {"PeriodService": ("GetYears", "GetPeriods"), "DeletedTransactionsService": ("GetDeletedTransactions",)}
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TWF = "http://www.twinfield.com/"
CREDITS_PER_MINUTE = 1000
#: an access token's last call in mode token_expires_mid_sync
CALLS_PER_TOKEN = 4
#: vendor variants (``sandbox.modes(twinfield=[...])``)
MODES = {
    "numbered_cluster": "the organisation lives on a numbered cluster (api.accounting2): accesstokenvalidation names "
                        "it and the default cluster refuses the organisation",
    "extra_browse_cells": "browse rows carry more cells than the header, in another order than the header's",
    "token_expires_mid_sync": f"every access token stops working after {CALLS_PER_TOKEN} SOAP calls (fault 354)",
    "browse_refused": "every browse answers result=\"0\" with a msg (as for a user without rights to it)",
}
JOURNAL_CODES = {"SALES": "VRK", "PURCH": "INK", "BANK": "BNK", "MISC": "MEMO"}
QUERY_ROOTS = ("list", "read", "columns", "accountcode", "accountcodes")
_PARSER = {"resolve_entities": False, "no_network": True}


def office_code(book):
    return book.spec.id.upper().replace("-", "")


def _state():
    return current_app.extensions["sandbox"]


def _provider():
    return _state().oauth[PACKAGE]


class TwinfieldProvider(OAuthProvider):
    """Twinfield's grants plus its fair-use counters (credits and running calls per organisation)."""

    def reset(self):
        super().reset()
        self.fair_lock = threading.Lock()
        self.credits = defaultdict(deque)  # grant -> deque of (moment, credits)
        self.running = Counter()
        self.token_calls = Counter()

    def spend(self, grant, credits, per_minute, window=60.0):
        """Seconds to wait when ``credits`` more would exceed the organisation's minute, else 0."""
        now = time.monotonic()
        with self.fair_lock:
            log = self.credits[grant]
            while log and log[0][0] <= now - window:
                log.popleft()
            if sum(c for _, c in log) + credits > per_minute:
                return max(1, int(log[0][0] + window - now) + 1) if log else int(window)
            log.append((now, credits))
            return 0


# --------------------------------------------------------------------------------------
# login server
# --------------------------------------------------------------------------------------

login = Blueprint("twinfield_login", __name__, url_prefix=f"{PREFIX}/auth/authentication/connect")


@login.route("/authorize", methods=["GET", "POST"])
def authorize():
    return _provider().authorize()


@login.post("/token")
def token():
    return _provider().token()


def cluster_url():
    name = CLUSTERS[1] if _state().mode(PACKAGE, "numbered_cluster") else CLUSTERS[0]
    return f"{request.host_url.rstrip('/')}{PREFIX}/{name}"


@login.get("/accesstokenvalidation")
def accesstokenvalidation():
    provider, access = _provider(), request.args.get("token", "")
    auth = request.authorization
    # the client proves it owns the token with HTTP basic (client id and secret)
    if auth is None or auth.type != "basic" or provider.clients.get(auth.username) != auth.password:
        return jsonify({"Message": "Authorization has been denied for this request."}), 401
    if not provider.valid_bearer(f"Bearer {access}"):
        return jsonify({"Message": "The access token is invalid or expired."}), 400
    with provider.lock:
        expires, grant = provider.access_tokens[access], provider.grants.get(access)
    return jsonify({"iss": f"{request.host_url.rstrip('/')}{PREFIX}/auth/authentication", "exp": int(expires),
                    "aud": "twf.organisation", "client_id": auth.username,
                    "scope": ["openid", "twf.user", "twf.organisation", "twf.organisationUser", "offline_access"],
                    "sub": grant, "twf.organisationId": grant, "twf.organisationUserCode": "FIRMSYNC",
                    "twf.clusterUrl": cluster_url()})


# --------------------------------------------------------------------------------------
# ProcessXml
# --------------------------------------------------------------------------------------

cluster = Blueprint("twinfield_cluster", __name__, url_prefix=PREFIX)


def envelope(body, status=200):
    content = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ENV}" '
               'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
               f"<soap:Body>{body}</soap:Body></soap:Envelope>")
    return Response(content, status=status, content_type="text/xml; charset=utf-8")


def fault(reason, code="soap:Server"):
    return envelope(f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{escape(reason)}</faultstring>"
                    "<detail /></soap:Fault>", 500)


def too_many(wait, said):
    response = Response(said, status=429, content_type="text/plain; charset=utf-8")
    response.headers["Retry-After"] = str(int(wait))
    return response


def answer(result):
    return envelope(f'<ProcessXmlStringResponse xmlns="{TWF}"><ProcessXmlStringResult>{escape(result)}'
                    "</ProcessXmlStringResult></ProcessXmlStringResponse>")


@cluster.route("/<name>/webservices/processxml.asmx", methods=["GET", "POST"])
def processxml(name):
    if name not in CLUSTERS:
        return Response("Not found", status=404)
    if request.method == "GET":
        return Response(WSDL.read_bytes(), content_type="text/xml; charset=utf-8")
    try:
        root = etree.fromstring(request.get_data(), etree.XMLParser(**_PARSER))
        header = root.find(f"{{{ENV}}}Header/{{{TWF}}}Header")
        call = root.find(f"{{{ENV}}}Body/{{{TWF}}}ProcessXmlString")
        if call is None:
            raise ValueError("no ProcessXmlString")
        xml = call.findtext(f"{{{TWF}}}xmlRequest") or ""
    except (etree.XMLSyntaxError, ValueError):
        return fault("Server was unable to read request.", "soap:Client")
    access = (header.findtext(f"{{{TWF}}}AccessToken") if header is not None else "") or ""
    office = (header.findtext(f"{{{TWF}}}CompanyCode") if header is not None else "") or ""
    try:
        request_root = etree.fromstring(xml.encode(), etree.XMLParser(**_PARSER))
    except etree.XMLSyntaxError:
        request_root = None
    credits = 1 if request_root is None or request_root.tag in QUERY_ROOTS else 3
    if request_root is None:
        return guarded(name, access, credits,
                       lambda: answer('<result result="0" msg="The XML request could not be read."/>'))
    return guarded(name, access, credits, lambda: answer(process(request_root, office)))


def guarded(name, access, credits, respond):
    """``respond()`` when the token, the cluster, the organisation's credits and its one running call allow."""
    provider, state = _provider(), _state()
    if not provider.valid_bearer(f"Bearer {access}"):
        return fault("Access denied. Token invalid (code 354).")
    if state.mode(PACKAGE, "token_expires_mid_sync"):
        with provider.fair_lock:
            provider.token_calls[access] += 1
            spent = provider.token_calls[access] > CALLS_PER_TOKEN
        if spent:
            with provider.lock:
                provider.access_tokens.pop(access, None)
            return fault("Access denied. Token invalid (code 354).")
    expected = CLUSTERS[1] if state.mode(PACKAGE, "numbered_cluster") else CLUSTERS[0]
    if name != expected:  # GUESS: the vendor documents no answer for a call on another cluster
        return fault("Access denied. The organisation is not available on this cluster.", "soap:Client")
    grant = provider.grant_of(f"Bearer {access}")
    per_minute = int((state.budgets.get(PACKAGE) or {}).get("per_minute") or CREDITS_PER_MINUTE)
    wait = provider.spend(grant, credits, per_minute)
    if wait:
        with state.lock:
            state.rejected[PACKAGE] += 1
        return too_many(wait, "Fair use: the organisation's credits for this minute are used up.")
    with provider.fair_lock:
        busy = provider.running[grant] >= 1
        if not busy:
            provider.running[grant] += 1
    if busy:
        with state.lock:
            state.rejected[PACKAGE] += 1
        return too_many(1, "Fair use: one concurrent call per organisation.")
    try:
        return respond()
    finally:
        with provider.fair_lock:
            provider.running[grant] -= 1


@cluster.post("/<name>/webservices/<service>.svc")
def wcf_service(name, service):
    """A ``Query`` on a WCF service: the concrete query is the body element's ``xsi:type``."""
    if name not in CLUSTERS or service not in SVC_QUERIES:
        return Response("Not found", status=404)
    try:
        root = etree.fromstring(request.get_data(), etree.XMLParser(**_PARSER))
        header = root.find(f"{{{ENV}}}Header/{{{TWF}}}Authentication")
        query = root.find(f"{{{ENV}}}Body/{{{TWF}}}Query")
        if query is None:
            raise ValueError("no Query")
        prefix, _, kind = (query.get(f"{{{XSI}}}type") or "").rpartition(":")
        namespace = query.nsmap.get(prefix or None, "")
    except (etree.XMLSyntaxError, ValueError):
        return fault("The message could not be processed.", "s:Client")
    if kind not in SVC_QUERIES[service] or namespace != DATA_CONTRACTS + service:
        return fault(f"Unknown query {kind or 'without xsi:type'}.", "s:Client")
    access = (header.findtext(f"{{{TWF}}}AccessToken") if header is not None else "") or ""
    office = (header.findtext(f"{{{TWF}}}CompanyCode") if header is not None else "") or ""
    fields = {etree.QName(child).localname: (child.text or "").strip() for child in query}
    return guarded(name, access, 1, lambda: wcf_answer(service, kind, office, fields))


def wcf_answer(service, kind, office, fields):
    book = _book(fields.get("CompanyCode") or office)
    if book is None:
        return fault(f"Office {office} does not exist or you have no access to it.", "s:Client")
    body = {"GetYears": period_years, "GetPeriods": periods_of, "GetDeletedTransactions": deleted_transactions}[kind]
    return envelope(f'<Result xmlns="{TWF}" xmlns:i="{XSI}" xmlns:a="{DATA_CONTRACTS}{service}" '
                    f'i:type="a:{kind}Result">{body(book, fields)}</Result>')


def period_years(book, fields):
    return "<a:Years>" + "".join(f"<a:int>{start.year}</a:int>" for start, _ in book.fiscal_years) + "</a:Years>"


def periods_of(book, fields):
    year = int(fields.get("Year") or 0)
    bounds = next(((s, e) for s, e in book.fiscal_years if s.year == year), None)
    if bounds is None:
        return "<a:Periods />"
    start, end = bounds
    rows = ['<a:Period><a:EndDate i:nil="true" /><a:Name>Beginbalans</a:Name><a:Number>0</a:Number>'
            "<a:Open>true</a:Open></a:Period>"]
    for number in range(1, 13):
        month = date(start.year + (start.month + number - 2) // 12, (start.month + number - 2) % 12 + 1, 1)
        period_end = date(month.year + month.month // 12, month.month % 12 + 1, 1).toordinal() - 1
        rows.append(f"<a:Period><a:EndDate>{date.fromordinal(period_end).isoformat()}T00:00:00</a:EndDate>"
                    f"<a:Name>{month.strftime('%B')}</a:Name><a:Number>{number}</a:Number>"
                    "<a:Open>true</a:Open></a:Period>")
    rows.append(f"<a:Period><a:EndDate>{end.isoformat()}T00:00:00</a:EndDate><a:Name>Afsluiting</a:Name>"
                "<a:Number>13</a:Number><a:Open>false</a:Open></a:Period>")
    return f"<a:Periods>{''.join(rows)}</a:Periods>"


def deleted_transactions(book, fields):
    today = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    since = (fields.get("DateFrom") or "")[:10]
    if since and today.date().isoformat() < since:
        return "<a:DeletedTransactions />"
    entries = {}
    for line_id in sorted(book.deleted):
        if line_id > book.line_count:  # an added entry deleted again: the sandbox keeps no copy of it
            continue
        line = next(l for l in book.base_entry(entry_of(line_id - 1)) if l["id"] == line_id)
        entries.setdefault((JOURNAL_CODES[line["journal"]], line["entry_id"]), line["date"])
    rows = "".join(f"<a:DeletedTransaction><a:Daybook>{journal}</a:Daybook><a:DeletionDate>{today.isoformat()}"
                   "</a:DeletionDate><a:ReasonForDeletion>Dubbel geboekt</a:ReasonForDeletion>"
                   f"<a:TransactionDate>{booked}T00:00:00</a:TransactionDate><a:TransactionNumber>{number}"
                   "</a:TransactionNumber><a:User>FIRMSYNC</a:User></a:DeletedTransaction>"
                   for (journal, number), booked in sorted(entries.items()))
    return f"<a:DeletedTransactions>{rows}</a:DeletedTransactions>"


def _book(office):
    return next((b for b in _state().books.values() if office_code(b) == office), None)


def process(root, office):
    """The ProcessXml answer (a string of XML) to ``root``."""
    if root.tag == "list" and root.findtext("type") == "offices":
        rows = "".join(f"<office name={quoteattr(b.spec.name)} shortname={quoteattr(b.spec.name[:16])}>"
                       f"{escape(office_code(b))}</office>" for b in _state().books.values())
        return f'<offices result="1">{rows}</offices>'
    if root.tag == "list" and root.findtext("type") == "dimensions":
        code, dimtype = root.findtext("office") or office, root.findtext("dimtype") or ""
        book = _book(code)
        if book is None or dimtype not in ("BAS", "PNL"):
            said = f"Office {code} or dimension type {dimtype} is unknown."
            return f"<dimensions result=\"0\" msg={quoteattr(said)} />"
        kinds = ("asset", "liability", "equity") if dimtype == "BAS" else ("income", "expense")
        rows = "".join(f"<dimension name={quoteattr(a['name'])} shortname={quoteattr(a['name'][:16])}>{a['number']}"
                       "</dimension>" for a in book.accounts if a["type"] in kinds)
        return f'<dimensions result="1">{rows}</dimensions>'
    if root.tag == "columns":
        return browse(root, office)
    return (f'<{etree.QName(root).localname} result="0" msg="This request is not supported by the sandbox." />')


def _columns(root):
    """``{field: (operator, from, to)}`` and the visible fields, in request order."""
    found, visible = {}, []
    for column in root.findall("column"):
        field = (column.findtext("field") or "").strip()
        found[field] = ((column.findtext("operator") or "none").strip(), (column.findtext("from") or "").strip(),
                        (column.findtext("to") or "").strip())
        if (column.findtext("visible") or "true").strip() == "true":
            visible.append(field)
    return found, visible


def year_period(book, period_end):
    """The Twinfield ``YYYY/PP`` of a generated period end."""
    day = date.fromisoformat(period_end)
    for start, end in book.fiscal_years:
        if start <= day <= end:
            return f"{start.year}/{(day.year - start.year) * 12 + day.month - start.month + 1:02d}"
    year = book.fiscal_years[0][0] if day < book.fiscal_years[0][0] else book.fiscal_years[-1][0]
    return f"{year.year}/{(day.year - year.year) * 12 + day.month - year.month + 1:02d}"


_INDEX = {}
_INDEX_LOCK = threading.Lock()


def _lines_by_period(book):
    """``{"YYYY/PP": [(line, line number in its transaction)]}``, rebuilt after each mutation."""
    key = (id(book), book.mutations, book.spec.id)
    with _INDEX_LOCK:
        if key not in _INDEX:
            by_entry, index = defaultdict(list), defaultdict(list)
            for line in book.all_lines():
                by_entry[line["entry_id"]].append(line)
            for lines in by_entry.values():
                for number, line in enumerate(sorted(lines, key=lambda l: l["id"]), start=1):
                    index[year_period(book, line["period_end"])].append((line, number))
            _INDEX.clear()
            _INDEX[key] = index
        return _INDEX[key]


def browse(root, office):
    code = root.get("code", "")
    state = _state()
    columns, visible = _columns(root)
    wanted = columns.get("fin.trs.head.office", ("equal", office, ""))[1] or office
    book = _book(wanted)
    if code not in ("030_1", "030_3", "040_1"):
        return f'<browse result="0" msg="Browse code {escape(code)} does not exist." />'
    if book is None:
        return f'<browse result="0" msg="Office {escape(wanted)} does not exist or you have no access to it." />'
    if state.mode(PACKAGE, "browse_refused"):
        return f'<browse result="0" code="{code}" msg="You have no rights to browse {code}." />'
    operator, low, high = columns.get("fin.trs.head.yearperiod", ("none", "", ""))
    if operator != "between" or not low:
        return f'<browse result="0" code="{code}" msg="Option fin.trs.head.yearperiod is mandatory." />'
    high = high or low
    extra = state.mode(PACKAGE, "extra_browse_cells")
    th = "".join(f'<td label="{escape(f)}" hideforuser="false" type="String">{escape(f)}</td>' for f in visible)
    rows = []
    if code == "040_1":
        totals = defaultdict(Decimal)
        for (period_end, account), amount in book.movements().items():
            period = year_period(book, period_end)
            if low <= period <= high:
                totals[(period, account)] += amount
        for (period, account), amount in sorted(totals.items()):
            cells = {"fin.trs.head.office": office_code(book), "fin.trs.head.yearperiod": period,
                     "fin.trs.line.dim1": account, "fin.trs.line.basevaluesigned": f"{amount:.2f}"}
            rows.append(_row("", cells, visible, extra))
    else:
        for period, lines in sorted(_lines_by_period(book).items()):
            if not low <= period <= high:
                continue
            for line, number in lines:
                journal = JOURNAL_CODES[line["journal"]]
                cells = {"fin.trs.head.office": office_code(book), "fin.trs.head.yearperiod": period,
                         "fin.trs.head.date": line["date"].replace("-", ""), "fin.trs.head.code": journal,
                         "fin.trs.head.number": str(line["entry_id"]), "fin.trs.line.dim1": line["account"],
                         "fin.trs.line.basevaluesigned": f"{Decimal(line['amount']):.2f}",
                         "fin.trs.line.description": line["description"], "fin.trs.line.invnumber": line["reference"],
                         "fin.trs.line.dim2": line["dimensions"].get("cost_centre", "")}
                key = (f"<key><office>{office_code(book)}</office><code>{journal}</code>"
                       f"<number>{line['entry_id']}</number><line>{number}</line></key>")
                rows.append(_row(key, cells, visible, extra))
    return (f'<browse result="1" first="1" last="{len(rows)}" total="{len(rows)}" office="{office_code(book)}" '
            f'code="{code}"><th>{th}</th>{"".join(rows)}</browse>')


def _row(key, cells, visible, extra):
    fields = [f for f in visible if f in cells]
    if extra:  # more cells than the header, and not in the header's order
        fields = list(reversed(fields))
        cells = {**cells, "fin.trs.head.inpdate": "20250101", "fin.trs.head.modified": "20250101120000"}
        fields = ["fin.trs.head.inpdate", *fields, "fin.trs.head.modified"]
    tds = "".join(f'<td field="{f}" hideforuser="false" type="String">{escape(cells[f])}</td>' for f in fields)
    return f"<tr>{key}{tds}</tr>"


def register(app, state):
    """Mount Twinfield's login server and clusters under ``/twinfield``."""
    settings = app.config["SANDBOX"]
    provider = TwinfieldProvider(PACKAGE, "Twinfield", state,
                                 clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
                                 access_seconds=settings.get("token_seconds") or 3600, rotating=False)
    state.oauth[PACKAGE] = provider
    app.register_blueprint(login)
    app.register_blueprint(cluster)
