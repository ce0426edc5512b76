"""Odoo (16 to 19): the external API of one Odoo server, one firm connection per login and API key.

Docs: https://www.odoo.com/documentation/19.0/developer/reference/external_api.html (JSON-2, 19+) and
https://www.odoo.com/documentation/18.0/developer/reference/external_api.html (XML-RPC / JSON-RPC, up to 18);
facts: ../shared/docs/CONNECTORS.md sections 8 and 26; quirks and decisions: connectors/odoo/README.md.

The server's version (``common.version``) picks the protocol: JSON-2 (``POST /json/2/<model>/<method>``, bearer
API key, ``X-Odoo-Database``) from 19, ``execute_kw`` over XML-RPC (or JSON-RPC) before. Everything above
:meth:`Odoo.execute` is one code path: named arguments, the same ORM methods, the same answers. Calls go through
the kit's client (:mod:`connectors.rpc` for the RPC protocols). The reference is ``<database>:<company id>``.
"""
from __future__ import annotations

import calendar
import contextlib
import hashlib
from array import array
from bisect import bisect_left, bisect_right
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property

from marshmallow import Schema, fields, validate

from connectors import parsing
from connectors.auth import SessionLogin
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, OpeningBalanceRecord,
    PermissionError, RateBudget, RenewalRefused, Stream,
)
from connectors.http import vendor_text
from connectors.rpc import JsonRpcTransport, XmlRpcTransport

NAME = "Odoo"
DOCS_URL = "https://www.odoo.com/documentation/19.0/developer/reference/external_api.html"
ODOO_COM = "https://www.odoo.com"
PROTOCOLS = ("auto", "json2", "jsonrpc", "xmlrpc")
#: JSON-2 exists from 19.0 (https://www.odoo.com/documentation/19.0/developer/reference/external_api.html)
JSON2_FROM = 19
#: ``read_group`` gave way to ``formatted_read_group`` in 19.0 (odoo/odoo: odoo/orm/models.py)
FORMATTED_READ_GROUP_FROM = 19
#: lines per ``search_read`` page, ids per ``search`` page, groups per grouped read (our choice: Odoo sets no maximum)
PAGE_SIZE = 2000
ID_PAGE_SIZE = 50_000
GROUP_PAGE_SIZE = 5000
#: posted line ids are checked for disappearance per block of this many id values (see LedgerLines)
ID_BLOCK = 1000
#: a write committed late (a long transaction) keeps its start time as ``write_date``: re-read this far back
OVERLAP = timedelta(minutes=10)
#: Odoo writes datetimes as UTC text (odoo/tools/misc.py DEFAULT_SERVER_DATETIME_FORMAT)
SERVER_DATETIME = "%Y-%m-%d %H:%M:%S"
#: ``account_type`` (16+) or ``internal_group`` (before) -> our kind: the part before the first "_"
KINDS = {"asset": "asset", "liability": "liability", "equity": "equity", "income": "income",
         "expense": "expense", "off": "other"}
#: P&L types: ``include_initial_balance`` is False for these (odoo/addons/account/models/account_account.py)
PROFIT_AND_LOSS_TYPES = {"income", "income_other", "expense", "expense_depreciation", "expense_direct_cost"}
UNAFFECTED_EARNINGS = "equity_unaffected"
COMPANY_FIELDS = ("name", "vat", "company_registry", "currency_id", "fiscalyear_last_day", "fiscalyear_last_month",
                  "account_fiscal_country_id")
#: lock dates by version: 16-17 ``period_lock_date``/``fiscalyear_lock_date``; 18 adds hard, sale, purchase, tax
LOCK_DATE_FIELDS = ("fiscalyear_lock_date", "period_lock_date", "hard_lock_date", "sale_lock_date",
                    "purchase_lock_date", "tax_lock_date")
LINE_FIELDS = ("date", "move_id", "move_name", "journal_id", "account_id", "partner_id", "name", "ref", "balance",
               "amount_currency", "currency_id", "parent_state", "write_date")

# -- errors --------------------------------------------------------------------------------
KEY_REFUSED = ("Odoo refused the login e-mail and API key of this connection. An administrator must create a new "
               "API key in Odoo (My Profile > Account Security > New API Key) and enter it with the user's e-mail.")
NO_ACCOUNTING_ACCESS = ("The Odoo user lacks access to Accounting: give them the Accounting / Auditor rights "
                        "(Settings > Users > Accounting).")
WRONG_DATABASE = ("Odoo has no database called {database} on this server: an administrator must check the "
                  "database name.")
NOT_ON_PLAN = ("Odoo's external API is not available on this database's plan: Odoo opens it on the Custom plan "
               "only. The database's owner must change plan before Firmsync can sync it.")
REFUSED = "Odoo refused a request from Firmsync ({name})."
#: exception names and XML-RPC fault codes (odoo/addons/base/controllers/rpc.py: 3 AccessDenied, 4 AccessError)
AUTH_NAMES = {"AccessDenied", "Unauthorized", "SessionExpiredException"}
ACCESS_NAMES = {"AccessError", "Forbidden"}
FAULT_NAMES = {2: "odoo.exceptions.UserError", 3: "odoo.exceptions.AccessDenied", 4: "odoo.exceptions.AccessError"}
NO_ACCOUNTING_APP = ("Odoo's Accounting (or Invoicing) app is not installed in this database, so there are no "
                     "books to sync.")
PLAN_WORDS = ("custom plan", "pricing plan", "external api is not available", "not available on your plan")


def odoo_error(name, code, text, database=""):
    """The typed error for an Odoo exception (its name, XML-RPC fault code or HTTP status, its text)."""
    short = str(name or "").rsplit(".", 1)[-1]
    said = vendor_text(text)
    lowered = str(said or "").lower()
    if any(words in lowered for words in PLAN_WORDS):
        error = ConfigError(NOT_ON_PLAN)
    elif "database" in lowered and ("does not exist" in lowered or "not found" in lowered):
        error = ConfigError(WRONG_DATABASE.format(database=database or "(none)"))
    elif short in AUTH_NAMES or code in (3, 100, 401):
        error = AuthError(KEY_REFUSED)
    elif short in ACCESS_NAMES or code in (4, 403):
        error = PermissionError(NO_ACCOUNTING_ACCESS)
    elif short == "KeyError" and "account." in lowered:  # an unknown model: the app is not installed
        error = ConfigError(NO_ACCOUNTING_APP)
    elif short == "MissingError" or code == 404:
        error = NotFoundError("Odoo no longer has the company or record Firmsync asked for.")
    elif isinstance(code, int) and code >= 500:
        error = DataError(REFUSED.format(name=short or f"HTTP {code}"))
    else:
        error = DataError(REFUSED.format(name=short or f"fault {code}"))
    if said:
        error.message = f"{error.message} Odoo says: \u201c{said}\u201d"
        error.args = (error.message,)
    error.detail = f"{short or 'fault'} {code}"
    return error


class OdooXmlRpc(XmlRpcTransport):
    """The kit's XML-RPC transport, with Odoo's faults named by :func:`odoo_error`."""

    database = ""

    def fault_error(self, fault):
        text = str(fault.faultString or "").strip()
        if text.startswith("Traceback"):  # code 1: the traceback's last line names the exception
            name = text.splitlines()[-1].split(":", 1)[0]
        else:
            name = FAULT_NAMES.get(fault.faultCode, "")
        return odoo_error(name, fault.faultCode, text, self.database)


class OdooJsonRpc(JsonRpcTransport):
    """The kit's JSON-RPC transport, with Odoo's errors named by :func:`odoo_error`."""

    database = ""

    def error_for(self, error):
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        text = data.get("message") or data.get("debug") or error.get("message")
        return odoo_error(data.get("name"), error.get("code"), text, self.database)


class OdooConfig(Schema):
    """An Odoo server, the user's login e-mail and API key; no database: list them on odoo.com."""

    base_url = fields.Url(required=True, require_tld=False,
                          metadata={"label": "Odoo URL (https://yourcompany.odoo.com)"})
    database = fields.String(load_default="", metadata={
        "label": "Database name (leave empty to list every database of your odoo.com account)"})
    login = fields.String(required=True, metadata={"label": "Login e-mail of the Odoo user"})
    api_key = fields.String(required=True, metadata={"secret": True, "label": "API key"})
    protocol = fields.String(load_default="auto", validate=validate.OneOf(PROTOCOLS), metadata={
        "label": "Protocol (auto: JSON-2 from Odoo 19, XML-RPC before)"})
    odoo_com_url = fields.Url(load_default=ODOO_COM, require_tld=False,
                              metadata={"label": "odoo.com address (database list)"})


# -- small readers -------------------------------------------------------------------------------

def value(raw):
    """Odoo answers ``False`` for an empty field: None then."""
    return None if raw is False else raw


def label(raw):
    return parsing.text(value(raw))


def many2one(raw):
    """``[id, display name]`` (or ``False``) -> ``(id, name)`` / ``(None, "")``."""
    raw = value(raw)
    if isinstance(raw, (list, tuple)) and raw:
        return int(raw[0]), parsing.text(raw[1] if len(raw) > 1 else "")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw, ""
    return None, ""


def server_moment(text):
    return datetime.strptime(str(text)[:19], SERVER_DATETIME).replace(tzinfo=timezone.utc)


def year_end(year, month, day):
    """The fiscal year end in calendar ``year`` (a 29 February end is the month's last day otherwise)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def month_end(day):
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def block_digest(ids):
    return hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:12]


# -- streams -------------------------------------------------------------------------------------

class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        for start, end in self.connector.fiscal_years(window):
            yield FiscalYearRecord(start=start, end=end)


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        seen = set()
        for account in self.connector.chart.values():
            if account["code"] and account["code"] not in seen:
                seen.add(account["code"])
                yield AccountRecord(number=account["code"], name=account["name"] or account["code"],
                                    kind=account["kind"], source_id=str(account["id"]))


class OpeningBalances(Stream):
    """Each fiscal year's opening as Odoo's trial balance shows it ("initial balance" at the year's start):
    balance-sheet accounts everything before; P&L accounts zero; the unaffected-earnings account its own
    lines plus every earlier year's result (odoo/enterprise account_reports: trial balance)."""

    name, record_type = "opening_balances", OpeningBalanceRecord

    def records(self, state, window):
        for start, amounts in self.connector.openings(window):
            for code, amount in sorted(amounts.items()):
                yield OpeningBalanceRecord(account=code, date=start, amount=amount)


class Balances(Stream):
    """Movements per account and month: one grouped sum on posted ``account.move.line``. Every month read is
    sent, a month left without movements as a zero (the writer replaces a month's balances only when it
    gets one)."""

    name, record_type = "balances", BalanceRecord

    def records(self, state, window):
        odoo = self.connector
        monthly, start = odoo.monthly(window), odoo.first_start(window)
        months = {month for _, month in monthly}
        for (code, month), amount in sorted(monthly.items()):
            yield BalanceRecord(account=code, period_end=month_end(month), period_start=month, amount=amount,
                                basis="movement")
        placeholder = min((a["code"] for a in odoo.chart.values() if a["code"]), default=None)
        month, last = start, window.end or datetime.now(timezone.utc).date()
        while month is not None and placeholder and month_end(month) <= last:
            if month not in months:
                yield BalanceRecord(account=placeholder, period_end=month_end(month), period_start=month,
                                    amount=Decimal(0), basis="movement")
            month = month_end(month) + timedelta(days=1)


class LedgerLines(Stream):
    """Posted lines of the window's fiscal years changed since the bookmark (``write_date``), paged by id;
    then every posted id (the window's or not: a year leaving the window stays in the dossier), whose
    digest per block of :data:`ID_BLOCK` ids tells which stored lines left the books (their move reset to
    draft, cancelled, or deleted after a reset): those come as :class:`DeletedRecord`. Odoo keeps no
    trace of a deleted line, so the ids are the only witness (odoo/addons/account/models/account_move.py)."""

    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "write_date"

    def records(self, state, window):
        odoo = self.connector
        before = state.bookmark or {}
        high_water = odoo.latest_write_date()  # read first: a line changed later is read again next time
        since = before.get("write_date")
        if since:
            since = (server_moment(since) - OVERLAP).strftime(SERVER_DATETIME)
        yielded = array("q")  # ascending: lines come by id
        for row in odoo.lines(since, odoo.first_start(window)):
            yield odoo.line_record(row)
            yielded.append(int(row["id"]))
        tally = {"blocks": {}, "max_id": 0}
        for line_id in self.gone(odoo.posted_ids(), before, yielded, tally):
            yield DeletedRecord(source_id=str(line_id))
        state.advance({"write_date": high_water or before.get("write_date"), "max_id": tally["max_id"],
                       "blocks": tally["blocks"]})

    @staticmethod
    def gone(posted_ids, before, yielded, tally):
        """The ids of lines stored before (or read in this run) that are no longer posted. ``tally`` gets
        the new digests per block and the largest posted id. A block whose digest (over the ids known last
        time) changed lost a line: every id of it up to last time's largest id that is not posted now is
        gone (ids never stored cost the writer nothing)."""
        old_blocks, old_max = before.get("blocks") or {}, int(before.get("max_id") or 0)
        blocks, seen = tally["blocks"], set()

        def close(block, ids):
            seen.add(block)
            blocks[str(block)] = block_digest(ids)
            first, last = block * ID_BLOCK, (block + 1) * ID_BLOCK - 1
            known, gone = set(ids), set()
            old = old_blocks.get(str(block))
            if old is not None and block_digest([i for i in ids if i <= old_max]) != old:
                gone.update(i for i in range(first, min(last, old_max) + 1) if i not in known)
            gone.update(i for i in yielded[bisect_left(yielded, first):bisect_right(yielded, last)] if i not in known)
            return sorted(gone)

        current, block = [], None
        for line_id in posted_ids:
            tally["max_id"] = max(tally["max_id"], line_id)
            if block is not None and line_id // ID_BLOCK != block:
                yield from close(block, current)
                current = []
            block = line_id // ID_BLOCK
            current.append(line_id)
        if block is not None:
            yield from close(block, current)
        # blocks without any posted line now: everything known in them is gone
        empty = {int(key) for key in old_blocks} | {i // ID_BLOCK for i in yielded}
        for block in sorted(empty - seen):
            first, last = block * ID_BLOCK, (block + 1) * ID_BLOCK - 1
            gone = set(range(first, min(last, old_max) + 1)) if str(block) in old_blocks else set()
            gone.update(yielded[bisect_left(yielded, first):bisect_right(yielded, last)])
            yield from sorted(gone)


# -- connector -----------------------------------------------------------------------------------

class Odoo(Connector):
    spec = ConnectorSpec(
        key="odoo",
        display_name=NAME,
        kind=ACCOUNTING,
        level=FIRM,
        auth=SessionLogin(margin_seconds=60),
        config_schema=OdooConfig,
        api_version="16.0 to 19.0 (JSON-2 from 19, XML-RPC / JSON-RPC execute_kw before)",
        docs_url=DOCS_URL,
        # GUESS: Odoo documents no limit (self-hosted has none); we stay gentle with a shared server
        rate_budget=RateBudget(per_minute=300, per="connection"),
        reference_label="company",
        sandbox_config={"base_url": "{sandbox}/odoo/19", "database": "firmsync", "login": "admin@firmsync.test",
                        "api_key": "demo-key", "protocol": "auto", "odoo_com_url": "{sandbox}/odoo/www"},
    )
    streams = (FiscalYears, Accounts, OpeningBalances, Balances, LedgerLines)

    def __init__(self, context):
        super().__init__(context)
        self._databases = None
        self._chosen_database = None

    # -- where ----------------------------------------------------------------------------------
    @property
    def database(self):
        if self._chosen_database is not None:
            return self._chosen_database
        if self.reference:
            return self.reference.rsplit(":", 1)[0]
        return parsing.text(self.config.get("database"))

    @property
    def company_id(self):
        if not self.reference or ":" not in self.reference:
            raise ConfigError("This dossier is not linked to an Odoo company yet.")
        try:
            return int(self.reference.rsplit(":", 1)[1])
        except ValueError:
            raise ConfigError(f"The Odoo reference {self.reference} is not <database>:<company id>.") from None

    @property
    def server_url(self):
        """The database's server: the connection's URL, or the one odoo.com lists for the database."""
        if not parsing.text(self.config.get("database")) and self.database:
            url = self.database_urls().get(self.database)
            if url:
                return url.rstrip("/")
        return self.base_url

    @property
    def api_key(self):
        key = parsing.text(self.config.get("api_key") or self.credentials.get("api_key"))
        if not key:
            raise ConfigError("The Odoo connection has no API key.")
        return key

    # -- protocol ---------------------------------------------------------------------------------
    @cached_property
    def version(self):
        """The server's major version: ``common.version``'s ``server_version_info`` ([17, 0, 0, "final", 0, ""])."""
        transport = OdooXmlRpc(self.http, f"{self.server_url}/xmlrpc/2/common")
        try:
            answer = transport.call("version")
        except NotFoundError:  # no XML-RPC any more (Odoo 22+): GET /web/version (same page, "Common service")
            answer = self.http.json_of(self.http.request("GET", f"{self.server_url}/web/version"))
            answer = {"server_version_info": answer.get("version_info"), "server_version": answer.get("version")}
        info = answer.get("server_version_info") if isinstance(answer, dict) else None
        major = info[0] if isinstance(info, (list, tuple)) and info else str(answer.get("server_version", ""))
        try:  # "saas~17.4" on Odoo Online
            return int(str(major).replace("saas~", "").split(".")[0])
        except ValueError:
            raise DataError(f"Odoo answered a version Firmsync could not read ({str(major)[:40]}).") from None

    @property
    def protocol(self):
        chosen = parsing.text(self.config.get("protocol") or "auto").lower()
        if chosen not in PROTOCOLS:
            raise ConfigError("The Odoo connection's protocol must be auto, json2, jsonrpc or xmlrpc.")
        if chosen == "auto":
            return "json2" if self.version >= JSON2_FROM else "xmlrpc"
        if chosen == "json2" and self.version < JSON2_FROM:
            raise ConfigError(f"This Odoo server runs version {self.version}: JSON-2 needs Odoo 19 or later.")
        return chosen

    def login(self):
        """RPC: ``common.authenticate`` gives the user id; JSON-2: ``res.users/context_get`` checks the key."""
        login = parsing.text(self.config.get("login"))
        try:
            if self.protocol == "json2":
                uid = (self._json2("res.users", "context_get", {}) or {}).get("uid")
            else:
                uid = self._rpc_common("authenticate", self.database, login, self.api_key, {})
        except AuthError as exc:  # keep Odoo's own sentence when it gave one
            message = exc.message if KEY_REFUSED in exc.message else KEY_REFUSED
            raise RenewalRefused(message, detail=exc.detail) from None
        if not uid:  # authenticate answers False for a wrong login or key
            raise RenewalRefused(KEY_REFUSED, detail="authenticate: False")
        return str(uid), 12 * 3600

    def _rpc_common(self, method, *args):
        if self.protocol == "jsonrpc":
            transport = OdooJsonRpc(self.http, f"{self.server_url}/jsonrpc")
            transport.database = self.database
            return transport.call("common", method, *args)
        transport = OdooXmlRpc(self.http, f"{self.server_url}/xmlrpc/2/common")
        transport.database = self.database
        return transport.call(method, *args)

    def _json2(self, model, method, params, *, url=None, database=None):
        body = {key: val for key, val in params.items() if val is not None}
        headers = {"Authorization": f"bearer {self.api_key}", "Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Firmsync"}
        database = self.database if database is None else database
        if database:
            headers["X-Odoo-Database"] = database
        response = self.http.request("POST", f"{url or self.server_url}/json/2/{model}/{method}", json=body,
                                     headers=headers, interpret=lambda r: self._json2_error(r, database))
        return self.http.json_of(response)

    @staticmethod
    def _json2_error(response, database):
        """JSON-2 errors: 4xx/5xx with ``{"name", "message", "arguments", "context", "debug"}``."""
        if response.status_code < 400:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or "name" not in body:
            return None
        error = odoo_error(body.get("name"), response.status_code, body.get("message"), database)
        if response.status_code >= 500 and isinstance(error, DataError) and not body.get("message"):
            return None  # a bare server error: the status table retries it
        return error

    def execute(self, model, method, **params):
        """One ORM method with named arguments, over the server's protocol (renewed once when refused)."""
        return self.renewing(lambda: self._send(model, method, params))

    def _send(self, model, method, params):
        if self.protocol == "json2":
            return self._json2(model, method, params)
        uid = int(self.session.token())
        args = (self.database, uid, self.api_key, model, method, [], {k: v for k, v in params.items() if v is not None})
        if self.protocol == "jsonrpc":
            transport = OdooJsonRpc(self.http, f"{self.server_url}/jsonrpc")
            transport.database = self.database
            return transport.call("object", "execute_kw", *args)
        transport = OdooXmlRpc(self.http, f"{self.server_url}/xmlrpc/2/object")
        transport.database = self.database
        return transport.call("execute_kw", *args)

    # -- references -------------------------------------------------------------------------------
    def database_urls(self):
        """``{database: url}`` of the odoo.com account (``odoo.database`` ``list``, JSON-2 on odoo.com)."""
        if self._databases is None:
            url = parsing.text(self.config.get("odoo_com_url") or ODOO_COM).rstrip("/")
            answer = self._json2("odoo.database", "list", {}, url=url, database="")
            found = {}
            # GUESS: the shape is not documented: names, or objects with a name ("db"/"name") and maybe a URL
            for item in answer if isinstance(answer, list) else (answer or {}).get("databases", []):
                if isinstance(item, str):
                    found[item] = None
                elif isinstance(item, dict):
                    name = label(item.get("db") or item.get("database") or item.get("name"))
                    if name:
                        found[name] = label(item.get("url")) or None
            self._databases = found
        return self._databases

    def companies(self):
        """The database's companies (``res.company`` ``search_read``), with the fields this version has."""
        have = self.fields_of("res.company")
        wanted = [name for name in COMPANY_FIELDS + LOCK_DATE_FIELDS if name in have]
        return self.execute("res.company", "search_read", domain=[], fields=wanted, order="id")

    def list_references(self):
        configured = parsing.text(self.config.get("database"))
        databases = [configured] if configured else sorted(self.database_urls())
        refs = []
        for database in databases:
            with self.in_database(database):
                for company in self.companies():
                    ref = self.company_ref(database, company)
                    if not configured:  # many databases start with a company called "My Company": say which
                        ref = CompanyRef(ref.reference, f"{ref.name} ({database})", ref.details)
                    refs.append(ref)
        return refs

    @contextlib.contextmanager
    def in_database(self, database):
        """Work on ``database`` (a fiduciary's key reaches several): its own server version, fields and login."""
        self._chosen_database = database
        self._forget_database()
        try:
            yield
        finally:
            self._chosen_database = None
            self._forget_database()

    def _forget_database(self):
        for name in ("version", "_fields"):
            self.__dict__.pop(name, None)
        self.session.invalidate()

    def company_ref(self, database, company):
        _, currency = many2one(company.get("currency_id"))
        _, country = many2one(company.get("account_fiscal_country_id"))
        details = {"database": database, "company_id": company["id"], "vat_number": label(company.get("vat")),
                   "registration_number": label(company.get("company_registry")), "currency": currency,
                   "fiscal_country": country}
        if value(company.get("fiscalyear_last_month")):
            details["fiscal_year_end"] = (f"{int(company['fiscalyear_last_month']):02d}-"
                                          f"{int(company.get('fiscalyear_last_day') or 31):02d}")
        for name in LOCK_DATE_FIELDS:
            if value(company.get(name)):
                details[name] = label(company[name])
        return CompanyRef(f"{database}:{company['id']}", label(company.get("name")) or database,
                          {k: v for k, v in details.items() if v not in ("", None)})

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(False, "Connected to Odoo, but this user reaches no company.", 0)
        return CheckResult(True, f"Connected to Odoo: {len(references)} compan"
                                 f"{'ies' if len(references) != 1 else 'y'} available.", len(references))

    # -- the linked company -----------------------------------------------------------------------
    def fields_of(self, model):
        """``fields_get`` of ``model`` (once per run): field names differ between versions, never assume."""
        cache = self.__dict__.setdefault("_fields", {})
        if model not in cache:
            cache[model] = self.execute(model, "fields_get", attributes=["type"]) or {}
        return cache[model]

    @property
    def company_context(self):
        """Records of another company than the user's default are only visible when allowed in the context."""
        return {"allowed_company_ids": [self.company_id], "lang": "en_US"}

    @cached_property
    def company(self):
        rows = [row for row in self.companies() if row.get("id") == self.company_id]
        if not rows:
            raise NotFoundError(f"The Odoo company {self.reference} linked to this dossier is no longer reachable "
                                "with this user.")
        return rows[0]

    @cached_property
    def chart(self):
        """``{account id: {id, code, name, kind, pnl, unaffected}}`` of the company's accounts."""
        have = self.fields_of("account.account")
        # company_ids (shared accounts) from 18, company_id before; code per company from 18 (code_store)
        if "company_ids" in have:
            domain = [["company_ids", "in", [self.company_id]]]
        else:
            domain = [["company_id", "=", self.company_id]]
        kind_field = next((f for f in ("account_type", "internal_group") if f in have), None)
        wanted = ["code", "name"] + [f for f in (kind_field, "include_initial_balance") if f]
        rows = self.execute("account.account", "search_read", domain=domain, fields=wanted, order="id",
                            context=self.company_context)
        chart = {}
        for row in rows:
            account_type = label(row.get(kind_field)) if kind_field else ""
            pnl = account_type in PROFIT_AND_LOSS_TYPES or account_type in ("income", "expense")
            if "include_initial_balance" in row and value(row["include_initial_balance"]) is not None:
                pnl = not row["include_initial_balance"]
            chart[int(row["id"])] = {
                "id": int(row["id"]), "code": label(row.get("code")), "name": label(row.get("name")),
                "kind": KINDS.get(account_type.split("_")[0], "other"), "pnl": pnl,
                "unaffected": account_type == UNAFFECTED_EARNINGS}
        return chart

    def code_of(self, account_id):
        account = self.chart.get(account_id)
        if account is None or not account["code"]:
            raise DataError(f"Odoo sent a journal item on account {account_id}, which is not in the company's chart.")
        return account["code"]

    @property
    def posted(self):
        return [["company_id", "=", self.company_id], ["parent_state", "=", "posted"]]

    def first_posted_date(self):
        rows = self.execute("account.move.line", "search_read", domain=self.posted, fields=["date"], order="date",
                            limit=1, context=self.company_context)
        return parsing.day(rows[0]["date"], "date", NAME) if rows else None

    def fiscal_years(self, window):
        """``[(start, end)]`` from the year of the first posted move to the one holding the window's end
        (``fiscalyear_last_day``/``_month``); only those overlapping the window."""
        if "_years" not in self.__dict__:
            month = int(value(self.company.get("fiscalyear_last_month")) or 12)
            day = int(value(self.company.get("fiscalyear_last_day")) or 31)
            first = self.first_posted_date()
            last = window.end or datetime.now(timezone.utc).date()
            years = []
            if first is not None:
                end = year_end(first.year, month, day)
                if end < first:
                    end = year_end(first.year + 1, month, day)
                while True:
                    start = year_end(end.year - 1, month, day) + timedelta(days=1)
                    years.append((start, end))
                    if end >= last:
                        break
                    end = year_end(end.year + 1, month, day)
            self._years = years
        return [(s, e) for s, e in self._years
                if (window.end is None or s <= window.end) and (window.start is None or e >= window.start)]

    # -- grouped sums -----------------------------------------------------------------------------
    def grouped(self, domain, by_month):
        """``[(account id, month start or None, balance)]``: ``read_group`` (up to 18) or
        ``formatted_read_group`` (19+) on posted lines, paged by ``limit``/``offset`` over the groups in
        their default order (the groupby's; an ``orderby`` naming ``date:month`` is refused by 16)."""
        groupby = ["account_id", "date:month"] if by_month else ["account_id"]
        offset, found = 0, []
        while True:
            if self.version >= FORMATTED_READ_GROUP_FROM:
                groups = self.execute("account.move.line", "formatted_read_group", domain=domain, groupby=groupby,
                                      aggregates=["balance:sum"], offset=offset, limit=GROUP_PAGE_SIZE,
                                      context=self.company_context)
            else:
                groups = self.execute("account.move.line", "read_group", domain=domain, fields=["balance:sum"],
                                      groupby=groupby, offset=offset, limit=GROUP_PAGE_SIZE, lazy=False,
                                      context=self.company_context)
            for group in groups:
                account_id, _ = many2one(group.get("account_id"))
                month = self._month_of(group) if by_month else None
                amount = group.get("balance:sum", group.get("balance"))
                found.append((account_id, month, parsing.amount(value(amount), "balance", NAME)))
            if len(groups) < GROUP_PAGE_SIZE:
                return found
            offset += GROUP_PAGE_SIZE

    @staticmethod
    def _month_of(group):
        raw = group.get("date:month")
        if isinstance(raw, (list, tuple)) and raw:  # 19: ["2024-01-01", "January 2024"]
            return parsing.day(raw[0], "month", NAME).replace(day=1)
        period = (group.get("__range") or {}).get("date:month") or {}  # 16-18: label + __range{from, to}
        if period.get("from"):
            return parsing.day(period["from"], "month", NAME).replace(day=1)
        # older answers without __range: the English label (we ask with lang en_US)
        return datetime.strptime(parsing.text(raw), "%B %Y").date()

    def first_start(self, window):
        years = self.fiscal_years(window)
        return years[0][0] if years else None

    def monthly(self, window):
        """``{(account code, month start): movement}`` over the window's fiscal years."""
        cache = self.__dict__.setdefault("_monthly", {})
        key = (window.start, window.end)
        if key not in cache:
            start = self.first_start(window)
            sums = {}
            if start is not None:
                domain = self.posted + [["date", ">=", start.isoformat()]]
                if window.end:
                    domain.append(["date", "<=", window.end.isoformat()])
                for account_id, month, amount in self.grouped(domain, by_month=True):
                    code = self.code_of(account_id)
                    sums[(code, month)] = sums.get((code, month), Decimal(0)) + amount
            cache[key] = sums
        return cache[key]

    def openings(self, window):
        """``[(fiscal year start, {code: initial balance})]`` as Odoo's trial balance computes them."""
        years = self.fiscal_years(window)
        if not years:
            return []
        totals = {}  # code -> everything posted before the year's start
        domain = self.posted + [["date", "<", years[0][0].isoformat()]]
        for account_id, _, amount in self.grouped(domain, by_month=False):
            code = self.code_of(account_id)
            totals[code] = totals.get(code, Decimal(0)) + amount
        pnl = {a["code"] for a in self.chart.values() if a["pnl"]}
        unaffected = next((a["code"] for a in self.chart.values() if a["unaffected"]), None)
        monthly, result = self.monthly(window), []
        for start, end in years:
            # without an unaffected-earnings account the dossier shows earlier results on a line of its own
            opening = {code: (Decimal(0) if code in pnl else amount) for code, amount in totals.items()
                       if unaffected or code not in pnl}
            if unaffected:
                earlier = sum((amount for code, amount in totals.items() if code in pnl), Decimal(0))
                opening[unaffected] = totals.get(unaffected, Decimal(0)) + earlier
            result.append((start, opening))
            for (code, month), amount in monthly.items():
                if start <= month <= end:
                    totals[code] = totals.get(code, Decimal(0)) + amount
        return result

    # -- ledger ---------------------------------------------------------------------------------
    def latest_write_date(self):
        rows = self.execute("account.move.line", "search_read", domain=[["company_id", "=", self.company_id]],
                            fields=["write_date"], order="write_date desc, id desc", limit=1,
                            context=self.company_context)
        return label(rows[0].get("write_date")) if rows else None

    def lines(self, since, first_day):
        """Posted lines from ``first_day`` (the window's first fiscal year; none without posted moves), with
        ``write_date >= since``, by id pages (``id > last``)."""
        if first_day is None:
            return
        have = self.fields_of("account.move.line")
        wanted = [name for name in LINE_FIELDS if name in have]
        last = 0
        while True:
            domain = self.posted + [["date", ">=", first_day.isoformat()], ["id", ">", last]]
            if since:
                domain.append(["write_date", ">=", since])
            rows = self.execute("account.move.line", "search_read", domain=domain, fields=wanted, order="id",
                                limit=PAGE_SIZE, context=self.company_context)
            rows = sorted(rows, key=lambda row: int(row["id"]))
            yield from rows
            if len(rows) < PAGE_SIZE:
                return
            last = int(rows[-1]["id"])

    def posted_ids(self):
        """Every posted line id of the company, ascending (``search``, paged by ``id > last``)."""
        last = 0
        while True:
            ids = self.execute("account.move.line", "search", domain=self.posted + [["id", ">", last]], order="id",
                               limit=ID_PAGE_SIZE, context=self.company_context)
            ids = sorted(int(i) for i in ids)
            yield from ids
            if len(ids) < ID_PAGE_SIZE:
                return
            last = ids[-1]

    @cached_property
    def currency(self):
        return many2one(self.company.get("currency_id"))[1]

    def line_record(self, row):
        account_id, _ = many2one(row.get("account_id"))
        _, move = many2one(row.get("move_id"))
        _, journal = many2one(row.get("journal_id"))
        _, partner = many2one(row.get("partner_id"))
        _, currency = many2one(row.get("currency_id"))
        dimensions = {}
        if partner:
            dimensions["partner"] = partner
        if currency and currency != self.currency:  # multi-currency: the foreign amount is kept
            dimensions["currency"] = currency
            dimensions["amount_currency"] = str(parsing.amount(value(row.get("amount_currency")), "amount", NAME))
        written = value(row.get("write_date"))
        return LedgerLineRecord(
            source_id=str(row["id"]), booking_date=parsing.day(row["date"], "date", NAME),
            account=self.code_of(account_id),
            amount=parsing.amount(value(row.get("balance")), "balance", NAME),  # debit positive, credit negative
            description=label(row.get("name")) or label(row.get("ref")),
            reference=label(row.get("move_name")) or move, journal=journal, dimensions=dimensions,
            modified_at=server_moment(written) if written else None)
