"""Yuki (Visma, NL and BE): SOAP 1.1 (ASMX) web services, one firm connection per access key.

Docs: https://documenter.getpostman.com/view/12207912/UVCBB51L (the vendor's Postman collection) and
support.yuki.nl "Accounting webservice"; facts: ../shared/docs/CONNECTORS.md sections 13 and 26; notes,
guesses and decisions: connectors/yuki/README.md.

Every call goes through zeep from the WSDLs shipped in ``wsdl/`` over the kit's HTTP client
(:mod:`connectors.soap`). Auth is a :class:`connectors.auth.SessionLogin`: :meth:`Yuki.login` calls
``Authenticate(accessKey)`` and the session id goes into the SOAP body of every call; a session fault is
an :class:`AuthError`, on which :meth:`Yuki.call` asks the declared strategy to renew once.
"""
from __future__ import annotations

import dataclasses
import threading
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree
from marshmallow import Schema, fields, validate

from connectors import parsing
from connectors.auth import SessionLogin
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, FiscalYearRecord, LedgerLineRecord, NotFoundError, OpeningBalanceRecord,
    PermissionError, RateBudget, RateLimited, RenewalRefused, Stream,
)
from connectors.soap import fault_interpreter, soap_client

NAME = "Yuki"
DOCS_URL = "https://documenter.getpostman.com/view/12207912/UVCBB51L"
#: the two hosts: same services, one per country (https://api.yukiworks.nl/ws/Accounting.asmx, .be)
HOSTS = {"nl": "https://api.yukiworks.nl/ws", "be": "https://api.yukiworks.be/ws"}
WSDL_DIR = Path(__file__).parent / "wsdl"
SERVICES = ("Accounting", "AccountingInfo")
#: GUESS: sessions live about 24 h (3rd-party client notes); we renew well before, and on any session fault
SESSION_SECONDS = 20 * 3600
#: GUESS: the largest ``numberOfRecords`` we ask of GetTransactionDetails (the vendor states no maximum)
PAGE_SIZE = 1000
#: financialMode 0 = commercial figures (1 = fiscal), support.yuki.be "GetTransactionDetails"
COMMERCIAL = 0
#: the daily budget resets at midnight in the vendor's time zone (GUESS: Europe/Amsterdam)
VENDOR_ZONE = ZoneInfo("Europe/Amsterdam")
#: GUESS: GlAccount ``type`` codes (undocumented) -> kind; anything else is "other"
#: the plans' daily calls (support.yuki.nl "Set up web services": free 1,000; "Yuki Webservice" 5,000; "Extended" 10,000)
PLANS = ("1000", "5000", "10000")
ACCOUNT_TYPES = {1: "asset", 2: "liability", 3: "equity", 4: "income", 5: "expense"}

#: SOAP faults -> typed errors (texts are GUESSES from public clients: the vendor publishes no fault list)
FAULTS = {
    "limit exceeded": RateLimited,        # "Daily limit exceeded" (1,000 calls a day per domain)
    "SessionID": AuthError,               # an expired or unknown session: renewed once
    "session expired": AuthError,
    "access key": AuthError,              # an invalid web service access key: reconnect
    "AccessKey": AuthError,
    "Authentication failed": AuthError,
    "no rights": PermissionError,         # the key may not read this administration
    "not authorized": PermissionError,
    "not authorised": PermissionError,
}


class YukiConfig(Schema):
    """A Yuki web service access key (domain or administration level) and the country's host."""

    api_key = fields.String(required=True, metadata={"secret": True, "label": "Web service access key"})
    region = fields.String(load_default="nl", validate=validate.OneOf(sorted(HOSTS)),
                           metadata={"label": "Yuki country (nl = api.yukiworks.nl, be = api.yukiworks.be)"})
    # the paid tiers ("Yuki Webservice" 5,000, "Extended" 10,000): the connection's daily budget (budgets_for)
    daily_calls = fields.String(load_default="1000", validate=validate.OneOf(list(PLANS)),
                                metadata={"label": "Calls a day in your Yuki plan (1000, 5000 or 10000)"})
    base_url = fields.String(load_default=None, allow_none=True,
                             metadata={"label": "Web service URL (leave empty: the country's host)"})


# --------------------------------------------------------------------------------------
# Reading Yuki's answers
# --------------------------------------------------------------------------------------


def xml_rows(result, tag):
    """The ``tag`` elements inside an XmlNode result (mixed content, one element in no namespace).

    zeep gives the ``any`` content as lxml elements; rows are matched by local name at any depth
    (the vendor resets the namespace with ``xmlns=""``; a namespaced variant is read the same).
    """
    return [element for node in _any_nodes(result) for element in node.iter()
            if isinstance(element.tag, str) and etree.QName(element).localname == tag]


def _any_nodes(result):
    if result is None:
        return []
    if isinstance(result, etree._Element):
        return [result]
    if isinstance(result, (list, tuple)):  # zeep unwraps a lone mixed ``any`` result into its list
        return [value for value in result if isinstance(value, etree._Element)]
    values = getattr(result, "_value_1", None)
    if values is None and isinstance(result, dict):
        values = result.get("_value_1")
    if values is None:
        return []
    values = values if isinstance(values, list) else [values]
    return [value for value in values if isinstance(value, etree._Element)]


def typed_rows(result, name):
    """The rows of a typed array result (``ArrayOfGlAccount``...): zeep may hand the array or its
    unwrapped list."""
    if result is None:
        return []
    if isinstance(result, (list, tuple)):
        return [row for row in result if row is not None]
    rows = getattr(result, name, None)
    if rows is None and isinstance(result, dict):
        rows = result.get(name)
    return [row for row in (rows or []) if row is not None]


def child_text(node, name):
    """The text of ``node``'s child called ``name`` (any namespace), None when absent."""
    for child in node:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return child.text or ""
    return None


def vendor_date(value, what):
    """An xs:dateTime zeep read (naive = the vendor's local day) or a text -> :class:`date`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parsing.day(value, what, NAME)


def stamp_of(value):
    """GetFinancialYearModifiedDate's answer as a stable bookmark string."""
    if isinstance(value, datetime):
        return value.isoformat()
    return parsing.text(value)


def month_ends(start, end):
    """Every month end from ``start``'s month up to ``end``, as (month start, month end)."""
    spans, first = [], start.replace(day=1)
    while first <= end:
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        spans.append((max(first, start), min(following - timedelta(days=1), end)))
        first = following
    return spans


class FinancialYear:
    """One Yuki financial year (``yearID``) and its dates."""

    def __init__(self, year_id, start, end):
        self.id, self.start, self.end = int(year_id), start, end

    def overlaps(self, window):
        return (window.end is None or self.start <= window.end) and (window.start is None or self.end >= window.start)


def account_record(row):
    code = parsing.text(getattr(row, "code", None))
    if not code:
        raise DataError("Yuki sent a general ledger account without a code.")
    # the vendor spells the name element "descripton" (GetGLAccountScheme, AccountingInfo.asmx?WSDL)
    name = parsing.text(getattr(row, "descripton", None) or getattr(row, "description", None)) or code
    return AccountRecord(number=code, name=name, kind=ACCOUNT_TYPES.get(getattr(row, "type", None), "other"),
                         source_id=code)


def ledger_line_record(node):
    line_id = parsing.text(child_text(node, "id"))
    account = parsing.text(child_text(node, "glAccountCode"))
    if not line_id or not account:
        raise DataError("Yuki sent a transaction line without its id or general ledger account.")
    return LedgerLineRecord(
        source_id=line_id,
        booking_date=parsing.day(child_text(node, "transactionDate"), "transaction date", NAME),
        account=account,
        # debit positive, credit negative, as Yuki reports them
        amount=parsing.amount(child_text(node, "transactionAmount"), "transaction amount", NAME),
        description=parsing.text(child_text(node, "description")),
        reference=parsing.text(child_text(node, "documentNumber")),
        journal=parsing.text(child_text(node, "journal")),
    )


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        for year in self.connector.years_in(window):
            yield FiscalYearRecord(start=year.start, end=year.end)


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        yuki = self.connector
        answer = yuki.call("AccountingInfo", "GetGLAccountScheme", administrationID=yuki.administration_id)
        seen = set()
        for row in typed_rows(answer, "GlAccount"):
            record = account_record(row)
            if record.number not in seen:
                seen.add(record.number)
                yield record


class _ByChangedYear(Stream):
    """A stream re-read per financial year, only for the years whose
    ``GetFinancialYearModifiedDate`` moved since the bookmark ``{"years": {yearID: stamp}}``
    (Yuki has no modified-since filter: https://documenter.getpostman.com/view/12207912/UVCBB51L)."""

    replication_key = "year_modified"

    def records(self, state, window):
        yuki = self.connector
        marks = dict((state.bookmark or {}).get("years") or {})
        for year in yuki.years_in(window):
            stamp = yuki.year_modified(year.id)
            if marks.get(str(year.id)) == stamp:
                continue  # nothing booked or changed in this year since the last read
            yield from self.year_records(year, window)
            marks[str(year.id)] = stamp
            state.advance({"years": dict(marks)})
        state.advance({"years": marks})

    def year_records(self, year, window):
        raise NotImplementedError


class OpeningBalances(_ByChangedYear):
    """Each changed year's opening per account, from ``GetStartBalanceByGlAccount``: the engine
    starts the dossier's opening balance at the transfer date from it."""

    name, record_type = "opening_balances", OpeningBalanceRecord

    def year_records(self, year, window):
        for code, amount in self.connector.start_balances(year.id).items():
            if amount:
                yield OpeningBalanceRecord(account=code, date=year.start, amount=amount)


class Balances(_ByChangedYear):
    """Movements per month from ``GLAccountBalance`` at each month end (a balance at a date:
    balance-sheet accounts cumulative, P&L accounts from the year's start) and the year's
    opening from ``GetStartBalanceByGlAccount``."""

    name, record_type = "balances", BalanceRecord

    def year_records(self, year, window):
        yuki, admin = self.connector, self.connector.administration_id
        previous = dict(yuki.start_balances(year.id))
        last = min(year.end, window.end) if window.end else year.end
        for first, end in month_ends(year.start, last):
            answer = yuki.call("Accounting", "GLAccountBalance", administrationID=admin,
                               transactionDate=datetime.combine(end, time()))
            current = {}
            for node in xml_rows(answer, "GLAccount"):
                code = parsing.text(node.get("Code"))
                amount = parsing.amount(child_text(node, "Amount"), "account balance", NAME)
                current[code] = current.get(code, Decimal(0)) + amount
            for code in sorted(set(current) | set(previous)):
                movement = current.get(code, Decimal(0)) - previous.get(code, Decimal(0))
                if movement:
                    yield BalanceRecord(account=code, period_end=end, period_start=first, amount=movement,
                                        basis="movement")
            previous = current


class LedgerLines(_ByChangedYear):
    """Every line of a changed year from ``GetTransactionDetails`` over the year's dates, paged by
    ``startRecord``/``numberOfRecords``; ids are de-duplicated in case a page shifts under us."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"

    def year_records(self, year, window):
        yuki, seen, start = self.connector, set(), 1
        while True:
            answer = yuki.call("AccountingInfo", "GetTransactionDetails", administrationID=yuki.administration_id,
                               GLAccountCode="", StartDate=datetime.combine(year.start, time()),
                               EndDate=datetime.combine(year.end, time()), financialMode=COMMERCIAL,
                               dataGroups="", numberOfRecords=PAGE_SIZE, startRecord=start, searchValues="")
            rows = xml_rows(answer, "TransactionInfo")
            for node in rows:
                record = ledger_line_record(node)
                if record.source_id not in seen:
                    seen.add(record.source_id)
                    yield record
            if len(rows) < PAGE_SIZE:
                return
            start += PAGE_SIZE
            if start > 10_000_000:
                raise DataError("Yuki's transaction pages seem to loop.")


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class Yuki(Connector):
    spec = ConnectorSpec(
        key="yuki",
        display_name=NAME,
        kind=ACCOUNTING,
        level=FIRM,
        auth=SessionLogin(margin_seconds=300),
        config_schema=YukiConfig,
        api_version="ws (SOAP 1.1, Accounting.asmx and AccountingInfo.asmx)",
        docs_url=DOCS_URL,
        # 1,000 calls a day per domain (support.yuki.nl "Set up web services"); a key belongs to one domain
        rate_budget=RateBudget(per_day=1000, per="key"),
        reference_label="administration",
        vendor_hosts=("api.yukiworks.nl", "api.yukiworks.be"),
        sandbox_config={"api_key": "demo-key", "region": "nl", "daily_calls": "1000",
                        "base_url": "{sandbox}/yuki/nl/ws"},
    )
    streams = (FiscalYears, Accounts, OpeningBalances, Balances, LedgerLines)

    @classmethod
    def budgets_for(cls, config):
        """The connection's plan: ``daily_calls`` (1,000 / 5,000 / 10,000 calls a day, "Yuki Webservice"
        and "Extended" tiers) is the daily budget per key; anything else counts the free 1,000."""
        plan = str((config or {}).get("daily_calls") or "").strip()
        per_day = int(plan) if plan in PLANS else cls.spec.rate_budget.per_day
        if per_day == cls.spec.rate_budget.per_day:
            return cls.spec.budgets
        return (dataclasses.replace(cls.spec.rate_budget, per_day=per_day),)

    def __init__(self, context):
        super().__init__(context)
        self._clients = {}
        self._clients_lock = threading.Lock()
        #: the domain the reference lives in (None: the key's current domain) and the session it was set on
        self._domain = None
        self._domain_session = None
        self._modified = {}
        self._starts = {}
        self._years = None

    @property
    def base_url(self):
        configured = parsing.text(self.config.get("base_url"))
        if configured:
            return configured.rstrip("/")
        region = parsing.text(self.config.get("region") or "nl").lower()
        if region not in HOSTS:
            raise ConfigError("The Yuki connection's country must be nl or be.")
        return HOSTS[region]

    # -- SOAP --------------------------------------------------------------------------
    def client(self, service):
        """The zeep client of ``service`` (its shipped WSDL), posting through the kit's client."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = soap_client(str(WSDL_DIR / f"{service}.wsdl"), self.http,
                                                     service_address=f"{self.base_url}/{service}.asmx",
                                                     faults=FAULTS, interpret_faults=self._interpret)
            return self._clients[service]

    def _interpret(self, response):
        error = fault_interpreter(NAME, FAULTS)(response)
        if isinstance(error, RateLimited):
            # the day's calls are spent: nothing helps before the vendor's midnight (GUESS: Amsterdam time)
            now = datetime.now(VENDOR_ZONE)
            midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=VENDOR_ZONE)
            error.retry_after, error.daily = max(60.0, (midnight - now).total_seconds()), True
        return error

    def call(self, service, operation, **arguments):
        """One operation with the session id in its body; a session fault renews the session once
        through the declared strategy (:class:`connectors.auth.SessionLogin`) and sends it again."""
        return self.renewing(lambda: self._send(service, operation, arguments))

    def _send(self, service, operation, arguments):
        session = self.session.token()
        if self._domain and self._domain_session != session:
            # a new session starts in the key's default domain (GUESS): enter the reference's domain again
            self.client("Accounting").service.SetCurrentDomain(sessionID=session, domainID=self._domain)
            self._domain_session = session
        return getattr(self.client(service).service, operation)(sessionID=session, **arguments)

    def login(self):
        key = parsing.text(self.config.get("api_key"))
        if not key:
            raise ConfigError("The Yuki connection has no web service access key.")
        try:
            session = self.client("Accounting").service.Authenticate(accessKey=key)
        except AuthError as exc:
            raise RenewalRefused(
                f"Yuki did not accept the web service access key of this connection ({self.base_url}). An "
                "administrator must check the key in Yuki (Settings > Web services) and the country (NL or BE).",
                detail=exc.detail) from None
        session = parsing.text(session)
        if not session:
            raise RenewalRefused("Yuki did not open a session for the web service access key. An administrator "
                                 "must check the key in Yuki (Settings > Web services).")
        self.http.secrets.append(session)  # the session id is a credential too: never in a message
        self._domain_session = None
        return session, SESSION_SECONDS

    # -- references ------------------------------------------------------------------------
    def domains(self):
        """``[(domain id, name)]`` the key reaches (``Domains``)."""
        answer = self.call("Accounting", "Domains")
        return [(parsing.text(node.get("ID")), parsing.text(child_text(node, "Name")))
                for node in xml_rows(answer, "Domain") if parsing.text(node.get("ID"))]

    def administrations(self):
        """``[CompanyRef]`` of the current domain (``Administrations``)."""
        refs = []
        for node in xml_rows(self.call("Accounting", "Administrations"), "Administration"):
            guid = parsing.text(node.get("ID"))
            if not guid:
                continue
            details = {key: parsing.text(child_text(node, tag)) for key, tag in
                       (("country", "Country"), ("vat_number", "VATNumber"), ("company_number", "CoCNumber"),
                        ("domain_id", "DomainID")) if parsing.text(child_text(node, tag))}
            refs.append(CompanyRef(guid, parsing.text(child_text(node, "Name")) or guid, details))
        return refs

    def enter_domain(self, domain_id):
        session = self.session.token()
        self.call("Accounting", "SetCurrentDomain", domainID=domain_id)
        self._domain, self._domain_session = domain_id, session

    def list_references(self):
        """Every administration of every domain the key reaches: one domain, ``Administrations``
        alone; several (a portal key), ``SetCurrentDomain`` then ``Administrations`` for each."""
        domains = self.domains()
        if len(domains) <= 1:
            return self.administrations()
        found = {}
        for domain_id, domain_name in domains:
            self.enter_domain(domain_id)
            for ref in self.administrations():
                found.setdefault(ref.reference, CompanyRef(ref.reference, ref.name,
                                                           {**ref.details, "domain_id": domain_id,
                                                            "domain": domain_name}))
        return list(found.values())

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(False, "Connected to Yuki, but this access key reaches no administration.", 0)
        return CheckResult(True, f"Connected to Yuki: {len(references)} administration"
                                 f"{'s' if len(references) != 1 else ''} available.", len(references))

    @cached_property
    def administration_id(self):
        """The linked administration, after entering its domain when the key reaches several."""
        if not self.reference:
            raise ConfigError("This dossier is not linked to a Yuki administration yet.")
        if any(ref.reference == self.reference for ref in self.administrations()):
            return self.reference
        for domain_id, _ in self.domains():
            self.enter_domain(domain_id)
            if any(ref.reference == self.reference for ref in self.administrations()):
                return self.reference
        raise NotFoundError("The Yuki administration linked to this dossier is no longer reachable with this "
                            "access key.")

    # -- financial years -------------------------------------------------------------------
    def years_in(self, window):
        """The financial years overlapping ``window``, probed with ``GetPeriodDateTable`` per
        ``yearID`` (GUESS: the calendar year the financial year starts in; no list operation exists)."""
        if self._years is None:
            today = datetime.now(timezone.utc).date()
            first = (window.start or date(today.year - 2, 1, 1)).year - 1
            last = (window.end or today).year
            years = []
            for year_id in range(first, last + 1):
                year = self._year(year_id)
                if year is not None:
                    years.append(year)
            self._years = sorted(years, key=lambda y: y.start)
        return [year for year in self._years if year.overlaps(window)]

    def _year(self, year_id):
        answer = self.call("AccountingInfo", "GetPeriodDateTable", administrationID=self.administration_id,
                           yearID=year_id)
        if answer is None:
            return None
        whole = parsing.text(getattr(answer, "wholePeriod", None)).split()
        if len(whole) >= 2:  # "2021-01-01T00:00:00 2021-12-31T00:00:00": the year's first and last day
            return FinancialYear(year_id, parsing.day(whole[0], "year start", NAME),
                                 parsing.day(whole[1], "year end", NAME))
        if getattr(answer, "period", None):
            start = vendor_date(answer.period, "year start")
            return FinancialYear(year_id, start, date(start.year + 1, start.month, 1) - timedelta(days=1))
        return None  # no such financial year in this administration

    def year_modified(self, year_id):
        """``GetFinancialYearModifiedDate``: when anything in the year last changed (one call per year and run)."""
        if year_id not in self._modified:
            self._modified[year_id] = stamp_of(self.call(
                "AccountingInfo", "GetFinancialYearModifiedDate", administrationID=self.administration_id,
                yearID=year_id))
        return self._modified[year_id]

    def start_balances(self, year_id):
        """``{account: Decimal}`` at the year's start (``GetStartBalanceByGlAccount``, commercial;
        one call per year and run, shared by the opening and balance streams)."""
        if year_id not in self._starts:
            answer = self.call("AccountingInfo", "GetStartBalanceByGlAccount", administrationID=self.administration_id,
                               bookyear=year_id, financialMode=COMMERCIAL)
            starts = {}
            for row in typed_rows(answer, "AccountStartBalance"):
                code = parsing.text(getattr(row, "accountID", None))
                if code:
                    starts[code] = starts.get(code, Decimal(0)) + parsing.amount(
                        getattr(row, "startBalance", None), "start balance", NAME)
            self._starts[year_id] = starts
        return self._starts[year_id]
