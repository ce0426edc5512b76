"""Twinfield (Wolters Kluwer): SOAP 1.1 ProcessXml on the organisation's cluster, OAuth2/OpenID Connect.

Vendor docs: https://developers.twinfield.com/documentation/api/
Notes, quirks, assumptions (GUESS) and the sandbox's modes: ``connectors/twinfield/README.md``.

One connection is one Twinfield organisation (an OAuth grant); its offices are the references.
Data comes from ``ProcessXmlString`` on ``<cluster>/webservices/processxml.asmx`` (offices, chart,
browses), years and periods from ``PeriodService.svc`` and deletions from
``DeletedTransactionsService.svc``, the cluster being what the access-token validation call
names (``twf.clusterUrl``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from xml.sax.saxutils import escape

import requests
from requests.auth import HTTPBasicAuth
from lxml import etree
from zeep import xsd
from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, RenewalRefused, Stream,
    TransientError,
)
from connectors.http import vendor_error
from connectors.scrubbing import scrub_text
from connectors.soap import soap_client

PACKAGE = "Twinfield"
TWF = "http://www.twinfield.com/"
#: the OpenID Connect server (https://developers.twinfield.com/documentation/api/authentication/openid-connect-auth)
LOGIN_URL = "https://login.twinfield.com/auth/authentication"
DOCS_URL = "https://developers.twinfield.com/documentation/api/"
#: the ProcessXml WSDL shipped with the package (a minimal copy of Wolters Kluwer's, MIT: README.md)
WSDL_DIR = Path(__file__).parent / "wsdl"
WSDL = WSDL_DIR / "processxml.wsdl"
SCOPES = ("openid", "twf.user", "twf.organisation", "twf.organisationUser", "offline_access")
TOKEN_TIMEOUT = (10, 30)
#: ProcessXml answers are parsed without entities or network
_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "huge_tree": False}

#: SOAP faults (https://forums.invantive.com/t/wat-is-de-levensduur-van-een-oauth-access-token-op-twinfield/1412):
#: code 354 is an expired or
#: revoked access token; any other "access denied" is an authorisation problem, never transient
FAULTS = {"354": AuthError, "Access denied": AuthError, "Token invalid": AuthError}

#: browse codes (https://developers.twinfield.com/documentation/api/ "Browse data")
LINES_BROWSE = "030_1"
BALANCES_BROWSE = "040_1"
#: the fields the connector asks of the GL-transactions browse
LINE_FIELDS = ("fin.trs.head.office", "fin.trs.head.yearperiod", "fin.trs.head.date", "fin.trs.head.code",
               "fin.trs.head.number", "fin.trs.line.dim1", "fin.trs.line.basevaluesigned",
               "fin.trs.line.description", "fin.trs.line.invnumber", "fin.trs.line.dim2")
BALANCE_FIELDS = ("fin.trs.head.office", "fin.trs.head.yearperiod", "fin.trs.line.dim1",
                  "fin.trs.line.basevaluesigned")
#: dimension types of the general ledger: balance sheet, profit and loss
DIMENSION_TYPES = {"BAS": "other", "PNL": "expense"}
#: regular periods; Twinfield also has period 0 (opening) and 13 to 55 (closing), see README "Decisions"
PERIODS = range(1, 13)
LAST_PERIOD = 55
#: the data-contract namespaces of the .svc queries (https://accounting.twinfield.com/webservices/documentation/
#: #/ApiReference/Miscellaneous/Period and .../Transactions/DeletedTransactions)
PERIOD_SERVICE = ("PeriodService", "http://schemas.datacontract.org/2004/07/Twinfield.WebServices.PeriodService")
DELETED_SERVICE = ("DeletedTransactionsService",
                   "http://schemas.datacontract.org/2004/07/Twinfield.WebServices.DeletedTransactionsService")


class TwinfieldConfig(Schema):
    """The OpenID Connect client a firm registers at developers.twinfield.com."""

    client_id = fields.String(required=True, metadata={"label": "Client id"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})
    login_url = fields.Url(load_default=LOGIN_URL, require_tld=False, metadata={"label": "Login server URL"})


# --------------------------------------------------------------------------------------
# Auth: OpenID Connect, then the cluster from the access-token validation call
# --------------------------------------------------------------------------------------


def login_base(config):
    return ((config or {}).get("login_url") or LOGIN_URL).rstrip("/")


def validation_url(config):
    # GET accesstokenvalidation?token= names the organisation's cluster in twf.clusterUrl
    # (https://developers.twinfield.com/documentation/api/authentication/openid-connect-auth)
    return f"{login_base(config)}/connect/accesstokenvalidation"


def client_auth(config):
    """HTTP basic with the client id and secret: the validation call answers only the token's own client
    (https://wktaaeu.my.site.com/nlcommunity/articles/en_US/Knowledge/Setting-up-OAuth-2-0-Which-endpoint-do-I-need-for-my-request)."""
    config = config or {}
    return HTTPBasicAuth(str(config.get("client_id") or ""), str(config.get("client_secret") or ""))


def cluster_of(body):
    """``twf.clusterUrl`` of an access-token validation answer (DataError when absent)."""
    cluster = str((body or {}).get("twf.clusterUrl") or "").strip().rstrip("/") if isinstance(body, dict) else ""
    if not cluster.startswith(("https://", "http://")):
        raise DataError("Twinfield did not say which server (cluster) holds this organisation.")
    return cluster


@dataclass(frozen=True)
class TwinfieldOAuth2Code(OAuth2Code):
    """OAuth2 code grant whose callback also asks which cluster holds the organisation, and whose
    renewal validates the new token again (the validation names the cluster)."""

    def renew(self, connector):
        super().renew(connector)
        connector.cluster(fresh=True)
        return True

    def callback(self, connector_class, config, args, redirect_uri, verifier=None):
        grant = super().callback(connector_class, config, args, redirect_uri, verifier)
        secrets = [grant.get("access_token"), grant.get("refresh_token"), (config or {}).get("client_secret")]
        try:
            answer = requests.get(validation_url(config), params={"token": grant["access_token"]},
                                  auth=client_auth(config), timeout=TOKEN_TIMEOUT)
        except requests.RequestException as exc:
            raise TransientError("Firmsync could not reach Twinfield to finish the connection. Please try again.",
                                 detail=type(exc).__name__) from None
        if answer.status_code != 200:
            raise AuthError("Twinfield did not accept the new access. Please connect again.",
                            detail=scrub_text(f"accesstokenvalidation -> {answer.status_code}", secrets))
        try:
            body = answer.json()
        except ValueError:
            body = None
        return {**grant, "cluster_url": cluster_of(body)}


TWINFIELD_AUTH = TwinfieldOAuth2Code(
    authorize_url=f"{LOGIN_URL}/connect/authorize",
    token_url=f"{LOGIN_URL}/connect/token",
    scopes=SCOPES,
    # the vendor's OpenID Connect sample sends no PKCE (GUESS that none is needed: README "Assumptions")
    pkce=False,
    # the refresh token is long-lived and not rotated (CONNECTORS.md section 10)
    rotating_refresh_token=False,
    access_token_seconds=3600,
    token_auth_method="client_secret_basic",
)

#: fair use (https://developers.twinfield.com/documentation/api/ "Fair Use Policy"): per organisation
#: (here: per connection, one grant = one organisation) with one concurrent call advised; the per-minute figure
#: is a GUESS (README); every call this connector makes is a "query" costing 1 credit
ORGANISATION_BUDGET = RateBudget(per_minute=500, concurrency=1, per="connection")
#: per ClientId 1,000 credits a minute (counted per connection: one grant of the firm's client)
CLIENT_BUDGET = RateBudget(per_minute=1000, per="connection")

SANDBOX = {"client_id": "twinfield-sandbox-client", "client_secret": "twinfield-sandbox-secret",
           "login_url": "{sandbox}/twinfield/auth/authentication"}


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


def parse_xml(text, what):
    """A ProcessXml answer (XML inside the SOAP string: parsed a second time) -> its root element."""
    try:
        return etree.fromstring(str(text or "").encode(), etree.XMLParser(**_PARSER_OPTIONS))
    except (etree.XMLSyntaxError, ValueError):
        raise DataError(f"Twinfield sent {what} Firmsync could not read.") from None


def refused(root):
    """The vendor's message when an element of the answer carries ``result="0"``, else None."""
    # errors come as result="0" with msg attributes inside a 200, not as SOAP faults
    # (https://developers.twinfield.com/documentation/api/ "Process XML")
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("result") == "0":
            messages = [e.get("msg") for e in element.iter() if isinstance(e.tag, str) and e.get("msg")
                        and e.get("msgtype", "error") == "error"]
            return (messages or [element.get("msg") or "request refused"])[0]
    return None


def offices(root):
    """``<offices><office name=".." shortname="..">CODE</office>`` -> [CompanyRef]."""
    found = []
    for office in root.iter("office"):
        code = parsing.text(office.text)
        if code:
            found.append(CompanyRef(code, parsing.text(office.get("name")) or parsing.text(office.get("shortname"))
                                    or code, details={"shortname": parsing.text(office.get("shortname"))}))
    return found


def dimensions(root, dimtype):
    """``<dimensions><dimension name="..">CODE</dimension>`` -> [AccountRecord]."""
    for dimension in root.iter("dimension"):
        code = parsing.text(dimension.text)
        if code:
            yield AccountRecord(number=code, name=parsing.text(dimension.get("name")) or code,
                                kind=DIMENSION_TYPES[dimtype], source_id=f"{dimtype}:{code}")


def browse_rows(root):
    """The rows of a browse answer as ``(key, {field: text})``: cells are mapped by their ``field``
    attribute, never by position or label (rows may carry more cells than the header, CONNECTORS.md s26)."""
    for row in root.iter("tr"):
        cells = {td.get("field"): (td.text or "").strip() for td in row.findall("td") if td.get("field")}
        key = row.find("key")
        keys = {etree.QName(k).localname: (k.text or "").strip() for k in key} if key is not None else {}
        yield keys, cells


def year_period(value):
    """``"2024/04"`` -> ``(2024, 4)``."""
    year, _, period = str(value or "").strip().partition("/")
    try:
        return int(year), int(period)
    except ValueError:
        raise DataError(f"Twinfield sent a booking period Firmsync could not read ({str(value)[:20]!r}).") from None


def browse_date(value, field):
    # browse dates come as YYYYMMDD, as third-party clients read them
    # (https://developers.twinfield.com/documentation/api/ "Browse data")
    text = str(value or "").strip()
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return parsing.day(text[:10], field, PACKAGE)


def moment_day(value, field):
    """A zeep ``dateTime`` (or its text, with or without time and offset) -> its date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parsing.day(str(value or "").strip()[:10], field, PACKAGE)


def add_months(day, months):
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


# --------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------


def list_request(kind, **options):
    return f"<list><type>{escape(kind)}</type>" + "".join(
        f"<{name}>{escape(str(value))}</{name}>" for name, value in options.items()) + "</list>"


def browse_request(code, office, wanted, first, last):
    """A ``<columns>`` browse of ``office`` for booking periods ``first``..``last`` ("YYYY/PP")."""
    filters = {"fin.trs.head.office": ("equal", office, ""),
               "fin.trs.head.yearperiod": ("between", first, last)}
    columns = []
    for number, field in enumerate(dict.fromkeys([*filters, *wanted]), start=1):
        operator, low, high = filters.get(field, ("none", "", ""))
        columns.append(f'<column id="{number}"><field>{field}</field><visible>true</visible>'
                       f"<ask>{'true' if field in filters else 'false'}</ask><operator>{operator}</operator>"
                       f"<from>{escape(low)}</from><to>{escape(high)}</to></column>")
    return f'<columns code="{code}">{"".join(columns)}</columns>'


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


def window_years(window):
    """The Twinfield years that may hold the window: from the year before its start to its end's."""
    end = window.end or date.today()
    start = window.start or date(end.year - 2, 1, 1)
    return range(start.year - 1, end.year + 1)


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        for calendar in self.connector.calendars(window):
            yield FiscalYearRecord(start=calendar.start, end=calendar.end)


class Accounts(Stream):
    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        books, seen = self.connector, set()
        for dimtype in DIMENSION_TYPES:
            root = books.process(list_request("dimensions", office=books.office, dimtype=dimtype), "accounts")
            for record in dimensions(root, dimtype):
                if record.number not in seen:
                    seen.add(record.number)
                    yield record


class Balances(Stream):
    """Movements per account and period from the annual-report browse, one call per year."""

    name, record_type, primary_key = "balances", BalanceRecord, None

    def records(self, state, window):
        books = self.connector
        for calendar in books.calendars(window):
            year = calendar.year
            root = books.browse(BALANCES_BROWSE, BALANCE_FIELDS, f"{year}/01", f"{year}/{LAST_PERIOD:02d}")
            totals = {}
            for _, cells in browse_rows(root):
                _, period = year_period(cells["fin.trs.head.yearperiod"])
                if period < 1:  # period 0 holds the opening balance carried from the year before
                    continue
                key = (calendar.period_end(period), parsing.text(cells["fin.trs.line.dim1"]))
                totals[key] = totals.get(key, 0) + parsing.amount(cells["fin.trs.line.basevaluesigned"],
                                                                  "basevaluesigned", PACKAGE)
            for (end, account), amount in sorted(totals.items()):
                yield BalanceRecord(account=account, period_end=end, amount=amount, basis="movement",
                                    period_start=end.replace(day=1))


class LedgerLines(Stream):
    """Every transaction line of the window's years, read period by period (``fin.trs.head.yearperiod``)."""

    name, record_type, primary_key = "ledger_lines", LedgerLineRecord, "source_id"

    def records(self, state, window):
        books = self.connector
        for calendar in books.calendars(window):
            year = calendar.year
            ranges = [(f"{year}/{p:02d}", f"{year}/{p:02d}") for p in PERIODS]
            ranges.append((f"{year}/13", f"{year}/{LAST_PERIOD}"))
            for first, last in ranges:
                root = books.browse(LINES_BROWSE, LINE_FIELDS, first, last)
                for keys, cells in browse_rows(root):
                    yield books.line_record(keys, cells, calendar)


class DeletedTransactions(Stream):
    """Transactions deleted in Twinfield, each as the prefix of its lines' source ids (``journal:number:``)."""

    name, record_type, primary_key = "deleted", DeletedRecord, "source_id"

    def records(self, state, window):
        books = self.connector
        calendars = books.calendars(window)
        if not calendars:
            return
        # GUESS (README): DateFrom may filter on the transaction's or the deletion's date; the start of the
        # window's first year covers what the dossier holds either way
        deleted = books.query(*DELETED_SERVICE, "GetDeletedTransactions", CompanyCode=books.office,
                              DateFrom=datetime.combine(calendars[0].start, datetime.min.time()))
        for item in deleted or ():
            journal, number = parsing.text(item["Daybook"]), parsing.text(item["TransactionNumber"])
            if not (journal and number):
                raise DataError("Twinfield reported a deleted transaction without its journal or number.")
            # a transaction read in this run exists: its number was given again after the deletion
            if (journal, number) not in books.entries_read:
                yield DeletedRecord(f"{journal}:{number}:", entry=True)


@dataclass(frozen=True)
class YearCalendar:
    """A Twinfield year of an office from the period service: its label, bounds and period ends."""

    year: int
    start: date
    end: date
    period_ends: dict

    def period_end(self, period):
        """The end of booking period ``period``: 0 (opening) the day before the year, closing periods its end."""
        if period < 1:
            return self.start - timedelta(days=1)
        return self.period_ends.get(period, self.end)


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class Twinfield(Connector):
    spec = ConnectorSpec(
        key="twinfield",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=FIRM,
        auth=TWINFIELD_AUTH,
        config_schema=TwinfieldConfig,
        api_version="ProcessXml",
        docs_url=DOCS_URL,
        rate_budgets=(ORGANISATION_BUDGET, CLIENT_BUDGET),
        reference_label="office",
        base_url_setting="login_url",
        sandbox_config=SANDBOX,
        # the login server and the organisations' clusters (api.accounting*.twinfield.com)
        vendor_hosts=("login.twinfield.com", "*.twinfield.com"),
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines, DeletedTransactions)

    @classmethod
    def oauth_endpoints(cls, config):
        base = login_base(config)
        if base == LOGIN_URL:
            return cls.spec.auth
        return dataclasses.replace(cls.spec.auth, authorize_url=f"{base}/connect/authorize",
                                   token_url=f"{base}/connect/token")

    # -- cluster and SOAP -----------------------------------------------------------
    @property
    def office(self):
        if not self.reference:
            raise ConfigError("This dossier is not linked to a Twinfield office yet.")
        return self.reference

    def cluster(self, *, fresh=False):
        """The organisation's cluster URL: from the credentials, else (or when ``fresh``) validated anew."""
        cluster = None if fresh else self.credentials.get("cluster_url")
        if cluster:
            return str(cluster).rstrip("/")
        token = self.tokens.access_token()
        answer = self.http.get(validation_url(self.config), params={"token": token}, auth=client_auth(self.config))
        cluster = cluster_of(self.http.json_of(answer))
        if cluster != self.credentials.get("cluster_url"):
            # keep it with the grant: a numbered cluster (api.accounting2...) stays the organisation's
            self.tokens.save_credentials({**(self.tokens.load_credentials() or self.credentials),
                                          "cluster_url": cluster})
        self.__dict__.pop("client", None)
        self.__dict__.pop("services", None)
        return cluster

    @cached_property
    def client(self):
        return soap_client(str(WSDL), self.http, faults=FAULTS,
                           service_address=f"{self.cluster()}/webservices/processxml.asmx")

    @cached_property
    def services(self):
        """The zeep clients of the ``.svc`` services, by name, on the organisation's cluster."""
        return {}

    def authorised(self, call):
        """``call()`` with the connection's token: fault 354 (token expired or revoked) refreshes it
        once, validates it again (which names the cluster) and calls again; a second refusal asks
        for a reconnection."""
        try:
            return self.renewing(call)
        except RenewalRefused:
            raise
        except AuthError as again:
            raise AuthError("Twinfield refused the connection's access again after renewing it. "
                            "An administrator must reconnect it.", detail=again.detail) from None

    def _call(self, xml, office):
        header = {"Header": {"AccessToken": self.tokens.access_token(), "CompanyCode": office, "CompanyId": None}}
        return self.client.service.ProcessXmlString(xmlRequest=xml, _soapheaders=header)

    def query(self, service, namespace, name, **fields):
        """``Query`` on ``<cluster>/webservices/<service>.svc`` with the ``Authentication`` header (the .svc
        services' header, https://github.com/pronamic/wp-twinfield PeriodsService); the query is typed by xsi:type."""
        def call():
            if service not in self.services:
                self.services[service] = soap_client(str(WSDL_DIR / f"{service}.wsdl"), self.http, faults=FAULTS,
                                                     service_address=f"{self.cluster()}/webservices/{service}.svc")
            client = self.services[service]
            kind = client.get_type(f"{{{namespace}}}{name}")
            header = client.get_element(f"{{{TWF}}}Authentication")(AccessToken=self.tokens.access_token(),
                                                                     CompanyCode=self.office)
            return client.service.Query(xsd.AnyObject(kind, kind(**fields)), _soapheaders=[header])
        return self.authorised(call)

    def process(self, xml, what, office=None):
        """``ProcessXmlString`` with the connection's token and ``office``; the answer's parsed root."""
        office = office if office is not None else self.reference
        result = self.authorised(lambda: self._call(xml, office))
        root = parse_xml(result, what)
        said = refused(root)
        if said:
            raise vendor_error(PACKAGE, DataError, said, detail="result=0")
        return root

    def browse(self, code, wanted, first, last):
        return self.process(browse_request(code, self.office, wanted, first, last), f"browse {code}", self.office)

    # -- years ----------------------------------------------------------------------
    @cached_property
    def entries_read(self):
        """``(journal, number)`` of every transaction this connector read (the deleted stream skips them)."""
        return set()

    @cached_property
    def _calendars(self):
        return {}

    def calendars(self, window):
        """The office's Twinfield years overlapping the window, from the period service (one ``GetYears``,
        then one ``GetPeriods`` per year, cached); a year of which no period has an end date is left out."""
        if "years" not in self._calendars:
            years = self.query(*PERIOD_SERVICE, "GetYears")
            self._calendars["years"] = sorted({int(y) for y in (years or ()) if str(y).strip().lstrip("-").isdigit()})
        found = []
        for year in self._calendars["years"]:
            if year not in window_years(window):
                continue
            if year not in self._calendars:
                self._calendars[year] = self._calendar(year)
            if self._calendars[year] is not None:
                found.append(self._calendars[year])
        return found

    def _calendar(self, year):
        ends = {}
        for period in self.query(*PERIOD_SERVICE, "GetPeriods", Year=year) or ():
            number, end = period["Number"], period["EndDate"]
            if number is not None and int(number) >= 1 and end is not None:
                ends[int(number)] = moment_day(end, "EndDate")
        if not ends:
            return None
        last = max(ends.values())  # closing periods (13 and later) end with the year
        # a year is twelve months back from its last period's end (GUESS for a long first year: README)
        return YearCalendar(year=year, start=add_months(last + timedelta(days=1), -12), end=last,
                            period_ends={n: e for n, e in ends.items() if n <= max(PERIODS)} or ends)

    def line_record(self, keys, cells, calendar):
        _, period = year_period(cells["fin.trs.head.yearperiod"])
        journal = parsing.text(cells.get("fin.trs.head.code") or keys.get("code"))
        number = parsing.text(cells.get("fin.trs.head.number") or keys.get("number"))
        line = parsing.text(keys.get("line"))
        if not (journal and number and line):
            raise DataError("Twinfield sent a transaction line without its journal, number or line number.")
        self.entries_read.add((journal, number))
        dimension = parsing.text(cells.get("fin.trs.line.dim2"))
        return LedgerLineRecord(
            source_id=f"{journal}:{number}:{line}",
            booking_date=browse_date(cells["fin.trs.head.date"], "fin.trs.head.date"),
            account=parsing.text(cells["fin.trs.line.dim1"]),
            amount=parsing.amount(cells["fin.trs.line.basevaluesigned"], "basevaluesigned", PACKAGE),
            booking_period_end=calendar.period_end(period),
            description=parsing.text(cells.get("fin.trs.line.description")),
            reference=parsing.text(cells.get("fin.trs.line.invnumber")),
            journal=journal,
            dimensions={"dim2": dimension} if dimension else {},
        )

    # -- contract -------------------------------------------------------------------
    def list_references(self):
        # GUESS: the office list needs no CompanyCode (https://developers.twinfield.com/documentation/api/ "Offices")
        return offices(self.process(list_request("offices"), "the list of offices", office=""))

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(False, "Twinfield accepted the sign-in, but this organisation has no office.", 0)
        if self.reference and self.reference not in {ref.reference for ref in references}:
            raise NotFoundError(f"The Twinfield office {self.reference} is no longer in this organisation.")
        return CheckResult(True, f"Connected to Twinfield: {len(references)} office(s) available.", len(references))
