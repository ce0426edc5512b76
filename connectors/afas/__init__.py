"""AFAS Profit: REST GetConnectors (JSON), one firm connection per environment and App Connector token.

Docs: https://help.afas.nl/help/NL/SE/App_Cnr_Rest_GET.htm (GetConnector REST/JSON) and ``App_Cnr_Rest_Call.htm``; spec:
``AFASSoftware/OASContent: OpenApiSpecs/profit/en/Mutaties.json`` (v6.6.9); facts: ../shared/docs/CONNECTORS.md
sections 3 and 26; quirks, guesses and decisions: connectors/afas/README.md.

Every read is ``GET /connectors/<GetConnector id>?skip=&take=&orderbyfieldids=&filterfieldids=&filtervalues=
&operatortypes=`` answering ``{"skip", "take", "rows"}``. The ids are the connection's (firms import custom
GetConnectors), the standard ``Profit_*`` ids by default.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

from marshmallow import Schema, fields, validate

from connectors import pagination, parsing
from connectors.auth import ApiKey
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget,
    RateLimited, Stream,
)
from connectors.http import vendor_error
from connectors.oauth import HeaderAuth

NAME = "AFAS"
DOCS_URL = "https://help.afas.nl/help/NL/SE/App_Cnr_Rest_GET.htm"
#: the spec's servers block: production, test, accept (and the course environments)
HOSTS = {"production": "rest", "test": "resttest", "accept": "restaccept", "course": "restcursus"}
#: AFAS answers 100 rows when ``take`` is absent (App_Cnr_Rest_GET.htm): always send it
PAGE_SIZE = 1000
#: operatortypes (the spec's enum): 1 is "=", 2 is ">="
EQUAL, AT_LEAST = 1, 2

#: GetConnector ids a connection may replace, with the standard ones (Mutaties.json) as defaults
STANDARD_CONNECTORS = {
    "administrations_connector": "Profit_Administrations",
    "accounts_connector": "Profit_Accounts",
    "periods_connector": "Profit_periods_per_administration",
    "balances_connector": "Profit_Period_balance",
    "transactions_connector": "Profit_Transactions",
    # GUESS: AFAS ships no standard GetConnector for deleted entries; the firm builds it on the log of the
    # financial mutations (help.afas.nl App_Cnnct_Deleted_Data.htm) with UnitId, Year, EntryNo, SeqNo, Deleted
    "deleted_connector": "Profit_Deleted_Transactions",
}
#: GUESS: "Sort" (Soort rekening) codes whose kind is certain; everything else is "other"
ACCOUNT_SORTS = {"deb": "asset", "kas": "asset", "bnk": "asset", "gir": "asset", "cre": "liability"}


def token_header(value):
    """``AfasToken <base64>`` from what the firm pasted: the token XML, its base64, or the bare data part.

    Base64 is mandatory since Profit 7 (help.afas.nl App_Cnr_Rest_Call.htm)."""
    text = parsing.text(value)
    if not text.startswith("<"):
        text = "".join(text.split())  # base64 copied from a mail or a PDF arrives wrapped
        try:
            if base64.b64decode(text, validate=True).lstrip().startswith(b"<token>"):
                return f"AfasToken {text}"
        except (binascii.Error, ValueError):
            pass
        text = f"<token><version>1</version><data>{text}</data></token>"  # the data part alone (64 hex digits)
    return "AfasToken " + base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class AfasToken(ApiKey):
    """The App Connector token in ``Authorization: AfasToken <base64 of the token XML>`` (no expiry, no renewal:
    a token revoked in Profit needs a new one)."""

    header: str = "Authorization"
    field: str = "token"

    def requests_auth(self, connector):
        token = connector.config.get(self.field) or connector.credentials.get(self.field)
        if not parsing.text(token):
            raise ConfigError("The AFAS connection has no App Connector token.")
        header = token_header(token)
        encoded = header.split(" ", 1)[1]
        if connector.http is not None and encoded not in connector.http.secrets:
            connector.http.secrets.append(encoded)  # the encoded token is the same secret: never in a message
        return HeaderAuth({self.header: header})


class AfasConfig(Schema):
    """An AFAS environment, its App Connector token and the GetConnector ids to read."""

    environment_id = fields.String(required=True, validate=validate.Regexp(r".*\d{5}"),
                                   metadata={"label": "Environment number (5 digits, e.g. 12345)"})
    token = fields.String(required=True, metadata={"secret": True, "label": "App Connector token"})
    environment_type = fields.String(load_default="production", validate=validate.OneOf(sorted(HOSTS)),
                                     metadata={"label": "Environment (production, test, accept or course)"})
    base_url = fields.String(load_default=None, allow_none=True,
                             metadata={"label": "REST URL (leave empty: the environment's own)"})
    administrations_connector = fields.String(load_default=STANDARD_CONNECTORS["administrations_connector"],
                                              metadata={"label": "GetConnector: administrations"})
    accounts_connector = fields.String(load_default=STANDARD_CONNECTORS["accounts_connector"],
                                       metadata={"label": "GetConnector: ledger accounts"})
    periods_connector = fields.String(load_default=STANDARD_CONNECTORS["periods_connector"],
                                      metadata={"label": "GetConnector: periods"})
    balances_connector = fields.String(load_default=STANDARD_CONNECTORS["balances_connector"],
                                       metadata={"label": "GetConnector: period balances"})
    transactions_connector = fields.String(load_default=STANDARD_CONNECTORS["transactions_connector"],
                                           metadata={"label": "GetConnector: financial mutations"})
    deleted_connector = fields.String(load_default=STANDARD_CONNECTORS["deleted_connector"], allow_none=True,
                                      metadata={"label": "GetConnector: deleted mutations (empty: none)"})


# --------------------------------------------------------------------------------------
# Reading AFAS's rows
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    year: int
    number: int
    start: date
    end: date


def as_int(value, what):
    """A whole number AFAS sends as a number or as text (``"2024"``, ``2024.0``)."""
    number = parsing.amount(value, what, NAME)
    if value in (None, "") or number != number.to_integral_value():
        raise DataError(f"AFAS sent a {what} that is not a whole number ({str(value)[:20]!r}).")
    return int(number)


def source_id(row):
    """A mutation line's key: year, journal entry number and its sequence number (EntryNo may restart per year)."""
    year, entry, line = (as_int(row[field], what) for field, what in
                         (("Year", "year"), ("EntryNo", "entry number"), ("SeqNo", "line number")))
    return f"{year}-{entry}-{line}"


def ledger_line_record(row, period):
    dimensions = {key: parsing.text(row.get(field)) for key, field in
                  (("vat_code", "VatCode"), ("invoice", "InvoiceId")) if parsing.text(row.get(field))}
    return LedgerLineRecord(
        source_id=source_id(row),
        booking_date=parsing.day(row["EntryDate"], "entry date", NAME),
        account=parsing.text(row["AccountNo"]),
        amount=parsing.amount(row.get("AmtDebit"), "debit amount", NAME)
        - parsing.amount(row.get("AmtCredit"), "credit amount", NAME),
        booking_period_end=period.end if period else None,
        description=parsing.text(row.get("Description")),
        reference=parsing.text(row.get("VoucherNo")),
        journal=parsing.text(row.get("JournalId")),
        dimensions=dimensions,
        modified_at=parsing.moment(row["Modified"], "change date", NAME) if row.get("Modified") else None,
    )


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    """A year per ``Year`` of the periods GetConnector: its first period's start to its last period's end."""

    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        years = {}
        for period in self.connector.periods().values():
            first, last = years.get(period.year, (period.start, period.end))
            years[period.year] = (min(first, period.start), max(last, period.end))
        for start, end in sorted(years.values()):
            if (window.end is None or start <= window.end) and (window.start is None or end >= window.start):
                yield FiscalYearRecord(start=start, end=end)


class Accounts(Stream):
    """The chart (no UnitId in the standard connector: an environment's chart; a custom connector that carries
    ``UnitId`` is narrowed to the linked administration)."""

    name, record_type, primary_key = "accounts", AccountRecord, "number"

    def records(self, state, window):
        afas, seen = self.connector, set()
        for row in afas.rows("accounts_connector", order=("Account",)):
            if "UnitId" in row and row["UnitId"] is not None and str(row["UnitId"]) != afas.unit:
                continue
            number = parsing.text(row["Account"])
            if not number:
                raise DataError("AFAS sent a ledger account without a number.")
            if number in seen:
                continue
            seen.add(number)
            yield AccountRecord(number=number, name=parsing.text(row.get("Description")) or number,
                                kind=ACCOUNT_SORTS.get(parsing.text(row.get("Sort")).lower(), "other"),
                                source_id=number)


class Balances(Stream):
    """Each period's movement per account from the period balances (``Balance`` = debit - credit of the period),
    up to the window's end.

    Rows of a period the period table does not hold (0: the opening, 13 and later: closing entries) count in the
    year's first or last period."""

    name, record_type = "balances", BalanceRecord

    def records(self, state, window):
        afas = self.connector
        totals = {}
        for row in afas.rows("balances_connector", filters=(("UnitId", EQUAL, afas.unit),),
                             order=("Year", "Period", "AccountNr")):
            period = afas.period_of(row["Year"], row["Period"], "period balance")
            if window.end and period.end > window.end:
                continue  # the periods before the window stay: the opening at a transfer date is taken from them
            if "Balance" in row and row["Balance"] is not None:
                amount = parsing.amount(row["Balance"], "period balance", NAME)
            else:
                amount = parsing.amount(row.get("Debit"), "debit", NAME) - \
                    parsing.amount(row.get("Credit"), "credit", NAME)
            key = (period, parsing.text(row["AccountNr"]))
            totals[key] = totals.get(key, Decimal(0)) + amount
        for (period, account), amount in sorted(totals.items(), key=lambda item: (item[0][0].end, item[0][1])):
            if amount:
                yield BalanceRecord(account=account, period_end=period.end, period_start=period.start, amount=amount,
                                    basis="movement")


class LedgerLines(Stream):
    """Mutations changed since the bookmark: ``Modified >=`` its stamp, ordered by Modified, EntryNo, SeqNo."""

    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "Modified"

    def records(self, state, window):
        afas, seen = self.connector, {}
        for row, bookmark in afas.changed_rows("transactions_connector", "Modified", state.bookmark,
                                               order=("EntryNo", "SeqNo")):
            record = ledger_line_record(row, afas.period_of(row["Year"], row["Period"], "mutation", strict=False))
            if seen.get(record.source_id) != record.modified_at:  # a line changed mid-read comes again: it wins
                seen[record.source_id] = record.modified_at
                yield record
            state.advance(bookmark)


class DeletedLines(Stream):
    """Deleted mutation lines from the log GetConnector (GUESS: see :data:`STANDARD_CONNECTORS`), ``Deleted >=``
    the bookmark; nothing when the connection names no such GetConnector."""

    name, record_type, primary_key, replication_key = "deleted_lines", DeletedRecord, "source_id", "Deleted"

    def records(self, state, window):
        afas, seen = self.connector, set()
        if not afas.connector_id("deleted_connector", required=False):
            return
        for row, bookmark in afas.changed_rows("deleted_connector", "Deleted", state.bookmark,
                                               order=("EntryNo", "SeqNo")):
            if source_id(row) not in seen:
                seen.add(source_id(row))
                yield DeletedRecord(source_id=source_id(row))
            state.advance(bookmark)


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class Afas(Connector):
    spec = ConnectorSpec(
        key="afas",
        display_name=NAME,
        kind=ACCOUNTING,
        level=FIRM,
        auth=AfasToken(),
        config_schema=AfasConfig,
        api_version="Profit REST GetConnectors (Mutaties.json 6.6.9)",
        docs_url=DOCS_URL,
        # AFAS publishes no rate limit (503 + retry_after during maintenance): this is Firmsync's own courtesy budget
        rate_budget=RateBudget(per_minute=300, per="connection"),
        reference_label="administration",
        sandbox_config={"environment_id": "12345", "environment_type": "production",
                        "token": "<token><version>1</version><data>demo-key</data></token>",
                        "base_url": "{sandbox}/afas/12345/ProfitRestServices"},
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines, DeletedLines)

    def __init__(self, context):
        super().__init__(context)
        self._periods = None

    @property
    def base_url(self):
        configured = parsing.text(self.config.get("base_url"))
        if configured:
            return configured.rstrip("/")
        number = re.search(r"\d{5}", parsing.text(self.config.get("environment_id")))  # "12345" or "O12345AA"
        kind = parsing.text(self.config.get("environment_type") or "production").lower()
        if not number or kind not in HOSTS:
            raise ConfigError("The AFAS connection needs its environment number (5 digits) and type "
                              "(production, test or accept).")
        return f"https://{number.group()}.{HOSTS[kind]}.afas.online/ProfitRestServices"

    @property
    def unit(self):
        """The linked administration (``AdminId``, the ``UnitId`` of the financial rows)."""
        if not self.reference:
            raise ConfigError("This dossier is not linked to an AFAS administration yet.")
        return str(self.reference)

    def connector_id(self, setting, required=True):
        value = parsing.text(self.config.get(setting, STANDARD_CONNECTORS[setting]))
        if required and not value:
            raise ConfigError(f"The AFAS connection names no GetConnector for {setting.split('_')[0]}.")
        return value

    # -- reading ---------------------------------------------------------------------
    def page(self, setting, *, skip, take, filters=(), order=()):
        """One page of a GetConnector: its ``rows`` (DataError when the answer has none)."""
        params = {"skip": skip, "take": take}
        if order:  # "must be used to prevent reordered results" (the spec's orderbyfieldids)
            params["orderbyfieldids"] = ",".join(order)
        if filters:  # several filters are comma-separated and AND-ed (help.afas.nl App_Cnr_Rest_GET.htm)
            params["filterfieldids"] = ",".join(field for field, _, _ in filters)
            params["filtervalues"] = ",".join(str(value) for _, _, value in filters)
            params["operatortypes"] = ",".join(str(operator) for _, operator, _ in filters)
        connector = self.connector_id(setting)
        body = self.get_json(f"{self.base_url}/connectors/{connector}", params=params)
        rows = body.get("rows") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise DataError(f"AFAS sent an answer without rows for GetConnector {connector}.")
        return rows

    def rows(self, setting, *, filters=(), order=()):
        """Every row of a GetConnector, ``skip``/``take`` paged in a stable order."""
        def fetch(offset, limit):
            return self.page(setting, skip=offset, take=limit, filters=filters, order=order)

        return pagination.offsets(fetch, page_size=PAGE_SIZE, package=NAME)

    def changed_rows(self, setting, stamp_field, bookmark, *, order):
        """``(row, bookmark)`` for the linked administration's rows whose ``stamp_field`` is at least the
        bookmark's, in stamp order. Each page asks ``stamp >= the last stamp seen``: a row changed during the read
        (it moves to the end) never shifts an unread one out of sight, as a plain ``skip`` would. The last stamp's
        rows come again (the caller drops repeats); only a page entirely of one stamp skips the rows read."""

        def fetch(cursor):
            stamp, skip = cursor or ((bookmark or {}).get("stamp"), 0)
            filters = [("UnitId", EQUAL, self.unit)] + ([(stamp_field, AT_LEAST, stamp)] if stamp else [])
            rows = self.page(setting, skip=skip, take=PAGE_SIZE, filters=filters, order=(stamp_field, *order))
            stamps = [parsing.text(row.get(stamp_field)) for row in rows]
            if not all(stamps):
                raise DataError(f"AFAS sent a row without {stamp_field} from GetConnector "
                                f"{self.connector_id(setting)}: its filter needs that field.")
            if len(rows) < PAGE_SIZE:
                following = None
            elif stamps[-1] == stamps[0] == (stamp or stamps[0]):
                following = (stamps[-1], skip + len(rows))  # one stamp fills the page: skip what was read
            else:
                following = (stamps[-1], 0)
            return [(row, {"stamp": row[stamp_field]}) for row in rows], following

        return pagination.cursor(fetch, package=NAME)

    def periods(self):
        """``{(year, period): Period}`` of the linked administration (read once per run)."""
        if self._periods is None:
            periods = {}
            for row in self.rows("periods_connector", filters=(("Unit", EQUAL, self.unit),), order=("Year", "Period")):
                if "Unit" in row and row["Unit"] is not None and str(row["Unit"]) != self.unit:
                    continue  # a connector that ignores the filter
                key = (as_int(row["Year"], "year"), as_int(row["Period"], "period"))
                periods[key] = Period(*key, parsing.day(row["DateFrom"], "period start", NAME),
                                      parsing.day(row["DateTo"], "period end", NAME))
            self._periods = periods
        return self._periods

    def period_of(self, year, number, what, strict=True):
        year, number = as_int(year, "year"), as_int(number, "period")
        periods = self.periods()
        if (year, number) in periods:
            return periods[(year, number)]
        numbers = sorted(n for y, n in periods if y == year)
        if numbers:
            return periods[(year, numbers[0] if number < numbers[0] else numbers[-1])]
        if not strict:
            return None
        raise DataError(f"AFAS sent a {what} for {year} period {number}, a year the administration's period table "
                        "does not hold.")

    # -- references ------------------------------------------------------------------------
    def list_references(self):
        references = {}
        for row in self.rows("administrations_connector", order=("AdminId",)):
            admin = parsing.text(row.get("AdminId"))
            if admin and admin not in references:
                name = parsing.text(row.get("AdminNm")) or admin
                details = {"environment": parsing.text(self.config.get("environment_id"))}
                if parsing.text(row.get("AdminCd")):
                    details["code"] = parsing.text(row["AdminCd"])
                references[admin] = CompanyRef(admin, name, details)
        return list(references.values())

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(False, "Connected to AFAS, but the App Connector reaches no administration.", 0)
        return CheckResult(True, f"Connected to AFAS: {len(references)} administration"
                                 f"{'s' if len(references) != 1 else ''} available.", len(references))

    def lookup_reference(self, reference):
        for ref in self.list_references():
            if ref.reference == str(reference):
                return ref
        raise NotFoundError("The AFAS administration linked to this dossier is no longer reachable with this token.")

    # -- errors ------------------------------------------------------------------------
    def interpret_response(self, response):
        """AFAS's answers the status alone does not tell (the spec's responses)."""
        if response.status_code == 401:  # "valid token but no access to this endpoint": also a revoked token
            getconnector = urlsplit(response.url).path.rsplit("/connectors/", 1)[-1] if "/connectors/" in \
                response.url else "the API"
            return AuthError(f"AFAS refused the App Connector token for GetConnector {getconnector}: the token was "
                             "revoked in Profit, or this GetConnector is not part of the App connector. An "
                             "administrator must check the App connector and reconnect with its token.")
        if response.status_code == 503:  # maintenance: retry_after seconds in the body (and Retry-After)
            body = self._body(response)
            wait = body.get("retry_after", response.headers.get("Retry-After"))
            if str(wait).strip().isdigit():
                said = body["error"].get("message") if isinstance(body.get("error"), dict) else None
                return vendor_error(NAME, RateLimited, said or "AFAS Online is in maintenance.",
                                    retry_after=int(str(wait).strip()))
        return None  # a plain 503 is retried as any 5xx

    @staticmethod
    def _body(response):
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    @classmethod
    def error_message(cls, response):
        """AFAS's own sentence: ``externalMessage`` (500) or ``error.message`` (503)."""
        body = cls._body(response)
        said = body.get("externalMessage") or body.get("message")
        if not said and isinstance(body.get("error"), dict):
            said = body["error"].get("message")
        return said.strip().splitlines()[0][:300] if isinstance(said, str) and said.strip() else None
