"""Twinfield (Wolters Kluwer): SOAP 1.1 ProcessXml on the organisation's cluster, OAuth2/OpenID Connect.

Vendor docs: https://developers.twinfield.com/documentation/api/
Notes, quirks, assumptions (GUESS) and the sandbox's modes: ``connectors/twinfield/README.md``.

One connection is one Twinfield organisation (an OAuth grant); its offices are the references.
Every call is ``ProcessXmlString`` on ``<cluster>/webservices/processxml.asmx``, the cluster
being what the access-token validation call names (``twf.clusterUrl``).
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from xml.sax.saxutils import escape

import requests
from requests.auth import HTTPBasicAuth
from lxml import etree
from marshmallow import Schema, fields

from connectors import parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, RenewalRefused, Stream,
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
WSDL = Path(__file__).with_name("processxml.wsdl")
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


def add_months(day, months):
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def period_end(year_start, period):
    """The last day of ``period`` (1 to 12; later closing periods: the year's end) of the year from ``year_start``."""
    return add_months(year_start, min(max(period, 1), 12)) - timedelta(days=1)


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
        books = self.connector
        for year in window_years(window):
            start = books.year_start(year)
            if start is not None:
                yield FiscalYearRecord(start=start, end=add_months(start, 12) - timedelta(days=1))


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
        for year in window_years(window):
            start = books.year_start(year)
            if start is None:
                continue
            root = books.browse(BALANCES_BROWSE, BALANCE_FIELDS, f"{year}/01", f"{year}/{LAST_PERIOD:02d}")
            totals = {}
            for _, cells in browse_rows(root):
                _, period = year_period(cells["fin.trs.head.yearperiod"])
                if period < 1:  # period 0 holds the opening balance carried from the year before
                    continue
                key = (period_end(start, period), parsing.text(cells["fin.trs.line.dim1"]))
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
        for year in window_years(window):
            start = books.year_start(year)
            if start is None:
                continue
            ranges = [(f"{year}/{p:02d}", f"{year}/{p:02d}") for p in PERIODS]
            ranges.append((f"{year}/13", f"{year}/{LAST_PERIOD}"))
            for first, last in ranges:
                root = books.browse(LINES_BROWSE, LINE_FIELDS, first, last)
                for keys, cells in browse_rows(root):
                    yield books.line_record(keys, cells, start)


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
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines)

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
        return cluster

    @cached_property
    def client(self):
        return soap_client(str(WSDL), self.http, faults=FAULTS,
                           service_address=f"{self.cluster()}/webservices/processxml.asmx")

    def _call(self, xml, office):
        header = {"Header": {"AccessToken": self.tokens.access_token(), "CompanyCode": office, "CompanyId": None}}
        return self.client.service.ProcessXmlString(xmlRequest=xml, _soapheaders=header)

    def process(self, xml, what, office=None):
        """``ProcessXmlString`` with the connection's token and ``office``; the answer's parsed root.

        Fault 354 (token expired or revoked) refreshes the token once, validates it again (which
        names the cluster) and resends; a second refusal asks for a reconnection.
        """
        office = office if office is not None else self.reference
        try:
            result = self.renewing(lambda: self._call(xml, office))
        except RenewalRefused:
            raise
        except AuthError as again:
            raise AuthError("Twinfield refused the connection's access again after renewing it. "
                            "An administrator must reconnect it.", detail=again.detail) from None
        root = parse_xml(result, what)
        said = refused(root)
        if said:
            raise vendor_error(PACKAGE, DataError, said, detail="result=0")
        return root

    def browse(self, code, wanted, first, last):
        return self.process(browse_request(code, self.office, wanted, first, last), f"browse {code}", self.office)

    # -- years ----------------------------------------------------------------------
    @cached_property
    def _year_starts(self):
        return {}

    def year_start(self, year):
        """The first day of Twinfield year ``year`` of the office, derived from its transactions
        (README "Decisions": each line's date minus its period's months; the most common wins), or
        None when the year has no transaction."""
        if year not in self._year_starts:
            votes = Counter()
            for first, last in ((f"{year}/01", f"{year}/01"), (f"{year}/01", f"{year}/12")):
                root = self.browse(LINES_BROWSE, ("fin.trs.head.yearperiod", "fin.trs.head.date"), first, last)
                for _, cells in browse_rows(root):
                    _, period = year_period(cells["fin.trs.head.yearperiod"])
                    booked = browse_date(cells["fin.trs.head.date"], "fin.trs.head.date")
                    if 1 <= period <= 12:
                        votes[add_months(booked.replace(day=1), 1 - period)] += 1
                if votes:
                    break
            self._year_starts[year] = votes.most_common(1)[0][0] if votes else None
        return self._year_starts[year]

    def line_record(self, keys, cells, start):
        _, period = year_period(cells["fin.trs.head.yearperiod"])
        journal = parsing.text(cells.get("fin.trs.head.code") or keys.get("code"))
        number = parsing.text(cells.get("fin.trs.head.number") or keys.get("number"))
        line = parsing.text(keys.get("line"))
        if not (journal and number and line):
            raise DataError("Twinfield sent a transaction line without its journal, number or line number.")
        dimension = parsing.text(cells.get("fin.trs.line.dim2"))
        return LedgerLineRecord(
            source_id=f"{journal}:{number}:{line}",
            booking_date=browse_date(cells["fin.trs.head.date"], "fin.trs.head.date"),
            account=parsing.text(cells["fin.trs.line.dim1"]),
            amount=parsing.amount(cells["fin.trs.line.basevaluesigned"], "basevaluesigned", PACKAGE),
            booking_period_end=period_end(start, period) if period else start - timedelta(days=1),
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
