"""Octopus (octopus.be, Inaras, Belgium): REST/JSON, one firm connection per Octopus user.

Docs: https://service.inaras.be/octopus-rest-api/swagger/ (OpenAPI 3.0.1, pinned in
../shared/specs/octopus/octopus_openapi_v51.9.17.json) and the login.octopus.be webservice manual;
facts: ../shared/docs/CONNECTORS.md sections 7 and 26; quirks, guesses and decisions: README.md.

Two 10-minute tokens: ``POST /authentication`` (header ``softwareHouseUuid``, body user/password) gives
the user's ``Token``; ``POST /dossiers?dossierId=`` gives the dossier's ``Dossiertoken``, sent as header
``dossierToken`` on every ``/dossiers/{id}/...`` call. :class:`OctopusLogin` signs each call with the
right one and renews both once after a refusal. Every operation has its own daily allowance ("Maximum
allowed calls per day" in each operation's description): declared as endpoint budgets in :data:`BUDGETS`.
"""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from marshmallow import Schema, fields, validate
from requests.auth import AuthBase

from connectors import parsing
from connectors.auth import SessionLogin
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, AuthError, BalanceRecord, CheckResult, CompanyRef, ConfigError, Connector,
    ConnectorSpec, DataError, DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget,
    RenewalRefused, Stream,
)
from connectors.oauth import SessionLogin as SessionCache

NAME = "Octopus"
DOCS_URL = "https://service.inaras.be/octopus-rest-api/swagger/"
BASE_URL = "https://service.inaras.be/octopus-rest-api/v1"
#: both tokens live 10 minutes (spec: POST /authentication and POST /dossiers descriptions)
TOKEN_SECONDS = 600
#: the vendor's timestamps ("2020-02-08 14:55:00.000") carry no zone: GUESS Belgian local time
VENDOR_ZONE = ZoneInfo("Europe/Brussels")
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S.000"
#: "no data synchronized: modifiedTimeStamp = 1980-01-01 00:00:00.000" (spec: getReportModifiedBooking)
EVERYTHING = "1980-01-01 00:00:00.000"
#: a bookmark is the server's time of the read minus this much, so a change committed while we read is not lost
OVERLAP = timedelta(minutes=5)
#: journal types of getReportModifiedBooking (1 = Buy, 2 = Sell, 3 = Financial, 4 = Divers) and their key letters
JOURNAL_TYPES = {1: "A", 2: "V", 3: "F", 4: "D"}
LANGUAGES = ("nl", "fr", "en", "de")
DOSSIER_CALL = re.compile(r"/dossiers/[^/]+/")

#: a rolling day: never more than the vendor's daily allowance in any 24 hours, whatever zone its day has
DAY = 86400


def daily(calls, path, name, label, method="GET", per="tenant"):
    return RateBudget(per_minute=calls, window_seconds=DAY, per=per, path=path, method=method, name=name,
                      label=label)


#: every call: a politeness cap (GUESS: the vendor publishes no per-minute limit); then each operation's
#: "Maximum allowed calls per day" from its description in the spec
BUDGETS = (
    RateBudget(per_minute=60, per="connection"),
    daily(150, r"/dossiers$", "dossiers", "list the dossiers", per="connection"),
    daily(150, r"/dossiers$", "dossier-tokens", "open a dossier", method="POST", per="connection"),
    daily(24, r"/dossiers/[^/]+/bookyears$", "bookyears", "read the book years"),
    daily(2, r"/dossiers/[^/]+/accounts$", "accounts", "read the full chart of accounts"),
    daily(48, r"/dossiers/[^/]+/accounts/modified$", "accounts-modified", "read the changed accounts"),
    daily(48, r"/accounts/amounts/modified$", "amounts-modified", "read the account balances"),
    daily(48, r"/bookings/modified$", "bookings-modified", "read the changed bookings"),
    daily(48, r"/buysellbookings/modified$", "buysell-modified", "read the changed purchase and sales bookings"),
    daily(48, r"/financialdiversbookings/modified$", "financialdivers-modified",
          "read the changed financial and miscellaneous bookings"),
)


class OctopusConfig(Schema):
    """An Octopus user (main user, webservice module active) and the software house id Octopus issued."""

    software_house_uuid = fields.String(required=True, metadata={"secret": True, "label": "Software house id (UUID)"})
    user = fields.String(required=True, metadata={"label": "Octopus user"})
    password = fields.String(required=True, metadata={"secret": True, "label": "Password"})
    language = fields.String(load_default="nl", validate=validate.OneOf(LANGUAGES),
                             metadata={"label": "Language of account names (nl, fr, en or de)"})
    base_url = fields.String(load_default=BASE_URL, metadata={"label": "API URL"})


# --------------------------------------------------------------------------------------
# Auth: the user's Token on firm calls, the dossier's dossierToken on dossier calls
# --------------------------------------------------------------------------------------


def token_header(connector, url):
    """``dossierToken`` on ``/dossiers/{id}/...``, ``Token`` elsewhere (sending ``Token`` to a dossier call
    answers 401, errorCode -79 "Empty access token": CONNECTORS.md section 7); fetched when missing."""
    if DOSSIER_CALL.search(urlsplit(str(url)).path):
        return "dossierToken", connector.dossier_session.token()
    return "Token", connector.session.token()


class OctopusTokens(AuthBase):
    """Signs a request with :func:`token_header`; :meth:`Octopus.request` fetches the token before the
    call, so a token call never runs inside another call."""

    def __init__(self, connector):
        self.connector = connector

    def __call__(self, request):
        name, token = token_header(self.connector, request.url)
        request.headers[name] = token
        return request


@dataclass(frozen=True)
class OctopusLogin(SessionLogin):
    """:class:`SessionLogin` with a second, per-dossier token; a refusal renews both."""

    def requests_auth(self, connector):
        return OctopusTokens(connector)

    def renew(self, connector):
        connector.dossier_session.invalidate()
        return super().renew(connector)


# --------------------------------------------------------------------------------------
# Reading Octopus's answers
# --------------------------------------------------------------------------------------


def key_id(value, what):
    """The ``id`` of a key object (``{"id": 12}``); plain numbers are accepted too."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or str(value).strip() == "":
        raise DataError(f"Octopus sent {what} without its key.")
    return str(int(str(value).strip()))


def kind_of(number):
    """The Belgian minimum chart (PCMN/MAR, KB 12 September 1983) classes: 1 equity and long-term debts,
    2-3 fixed assets and stock, 4 receivables (40-41) and payables, 5 cash, 6 expenses, 7 income."""
    head = str(number).lstrip()[:2]
    if not head[:1].isdigit():
        return "other"
    first = head[0]
    if first == "1":
        return "liability" if head in ("16", "17") else "equity"
    if first in "235" or head in ("40", "41"):
        return "asset"
    if first == "4":
        return "other" if head == "49" else "liability"
    return {"6": "expense", "7": "income"}.get(first, "other")


def description(value, language):
    """A multilingual description (``description_NL/FR/EN/DE``) in ``language``, else the first other
    language that has one; a plain string is taken as it is."""
    if not isinstance(value, dict):
        return parsing.text(value)
    order = [language.upper()] + [code.upper() for code in LANGUAGES if code != language]
    for code in order:
        found = parsing.text(value.get(f"description_{code}"))
        if found:
            return found
    return ""


def stamp(moment):
    """A vendor timestamp ("2020-02-08 14:55:00.000", Belgian local time) for an aware ``moment``."""
    return moment.astimezone(VENDOR_ZONE).strftime(STAMP_FORMAT)


class BookYear:
    """A book year with its periods: ``{period key: (start, end)}`` keyed by the full ``bookyearPeriod``
    (200001) and, as amounts and bookings may send it, by its number within the year (1)."""

    def __init__(self, row):
        self.id = key_id(row.get("bookyearKey"), "a book year")
        self.start = parsing.day(row.get("startDate"), "book year start", NAME)
        self.end = parsing.day(row.get("endDate"), "book year end", NAME)
        self.periods = {}
        for period in row.get("periods") or []:
            number = int(period["bookyearPeriod"])
            span = (parsing.day(period["startDate"], "period start", NAME),
                    parsing.day(period["endDate"], "period end", NAME))
            self.periods[number] = span
            self.periods.setdefault(number % 100, span)

    def period(self, number):
        span = self.periods.get(int(number))
        if span is None:
            raise DataError(f"Octopus sent period {number} of a book year ({self.start} to {self.end}) that has no "
                            "such period.")
        return span

    def overlaps(self, window):
        return (window.end is None or self.start <= window.end) and (window.start is None or self.end >= window.start)


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        for year in self.connector.book_years():
            if year.overlaps(window):
                yield FiscalYearRecord(start=year.start, end=year.end)


class Accounts(Stream):
    """The full chart (``accounts?bookyearId=``, 2 calls a day) of the newest book year in the window, once
    per year; afterwards only ``accounts/modified`` since the bookmark ``{"since", "years"}``: the dossier
    keeps the chart between runs, so the 2-a-day read is never repeated for a year already read."""

    name, record_type, primary_key, replication_key = "accounts", AccountRecord, "number", "modified"

    def records(self, state, window):
        octopus, mark = self.connector, dict(state.bookmark or {})
        read = set(mark.get("years") or [])
        years = [year for year in octopus.book_years() if year.overlaps(window)]
        newest = max(years, key=lambda year: year.start, default=None)
        seen = set()
        if mark.get("since"):
            changes, moment = octopus.feed("accounts/modified", {"modifiedTimeStamp": mark["since"]}, "modified")
            for row in changes.get("modified") or []:
                yield from octopus.account_records([row], seen)
        else:
            moment = octopus.server_time
        if newest is not None and newest.id not in read:
            # a book year not read yet (the first run, a new year): its chart; older years come through their lines
            rows, _ = octopus.dossier_json("accounts", {"bookyearId": newest.id}, missing=[])
            yield from octopus.account_records(rows, seen)
            read.add(newest.id)
        state.advance({"since": stamp(moment - OVERLAP), "years": sorted(read)})


class Balances(Stream):
    """Per-period balances from ``accounts/amounts/modified`` since 1980 (the whole set, one call a run out
    of 48 a day): the writer replaces a period's balances, so every period needs all its accounts. GUESS:
    ``balance`` is the account's movement in the period (no trial-balance endpoint exists)."""

    name, record_type = "balances", BalanceRecord

    def records(self, state, window):
        octopus = self.connector
        years = {year.id: year for year in octopus.book_years()}
        body, _ = octopus.feed("accounts/amounts/modified", {"modifiedTimeStamp": EVERYTHING}, "amounts")
        amounts = {}
        for listed, zero in (("deleted", True), ("modified", False)):
            for row in body.get(listed) or []:
                key = row.get("accountAmountKey") or {}
                period_key = key.get("bookyearPeriodKey") or {}
                year = years.get(key_id(period_key.get("bookyearKey"), "an account balance's book year"))
                if year is None:
                    continue  # a book year the dossier no longer lists
                start, end = year.period(period_key["bookyearPeriodNr"])
                account = key_id((key.get("accountKey") or {}), "an account balance's account")
                value = 0 if zero else parsing.amount(row.get("balance"), "balance", NAME)
                amounts[(account, end)] = (start, value)
        for (account, end), (start, value) in sorted(amounts.items()):
            yield BalanceRecord(account=account, period_end=end, period_start=start, amount=value, basis="movement")


class LedgerLines(Stream):
    """``bookyears/{id}/bookings/modified``: each book year in the window read once per journal type from
    1980 (the vendor's prescribed first sync), then every year and journal at once (``-1``) since the
    bookmark ``{"since", "years"}``; deleted documents remove all their lines."""

    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "modified"

    def records(self, state, window):
        octopus, mark = self.connector, dict(state.bookmark or {})
        read = list(mark.get("years") or [])
        started = None
        if mark.get("since"):
            body, started = octopus.bookings("-1", "-1", mark["since"])
            yield from octopus.booking_records(body)
        for year in octopus.book_years():
            if year.id in read or not year.overlaps(window):
                continue
            for journal_type in JOURNAL_TYPES:
                body, moment = octopus.bookings(year.id, journal_type, EVERYTHING)
                started = started or moment
                yield from octopus.booking_records(body)
            read.append(year.id)
            state.advance({"since": mark.get("since") or stamp(started - OVERLAP), "years": list(read)})
        state.advance({"since": stamp((started or octopus.server_time) - OVERLAP), "years": list(read)})


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class Octopus(Connector):
    spec = ConnectorSpec(
        key="octopus",
        display_name=NAME,
        kind=ACCOUNTING,
        level=FIRM,
        auth=OctopusLogin(margin_seconds=60),
        config_schema=OctopusConfig,
        api_version="Octopus Rest API 1.0 (OpenAPI v51.9.17)",
        docs_url=DOCS_URL,
        rate_budgets=BUDGETS,
        reference_label="dossier",
        sandbox_config={"software_house_uuid": "6f1e0a52-3c7b-4d8e-9a1f-0c2b4e6d8f10", "user": "demo-user",
                        "password": "demo-key", "language": "nl", "base_url": "{sandbox}/octopus/octopus-rest-api/v1"},
    )
    streams = (FiscalYears, Accounts, Balances, LedgerLines)

    def __init__(self, context):
        super().__init__(context)
        self._years = None
        #: the server's clock (its Date header) at the last answer, else ours
        self._server_time = None

    @property
    def base_url(self):
        return (parsing.text(self.config.get("base_url")) or BASE_URL).rstrip("/")

    @property
    def language(self):
        language = parsing.text(self.config.get("language")).lower()
        return language if language in LANGUAGES else "nl"

    @property
    def server_time(self):
        return self._server_time or datetime.now(timezone.utc)

    # -- tokens ------------------------------------------------------------------------
    def login(self):
        values = {**self.config, **self.credentials}
        uuid, user, password = (parsing.text(values.get(name)) for name in ("software_house_uuid", "user", "password"))
        if not (uuid and user and password):
            raise ConfigError("The Octopus connection needs the software house id, a user and a password.")
        try:
            answer = self.http.post_json(f"{self.base_url}/authentication", headers={"softwareHouseUuid": uuid},
                                         json={"user": user, "password": password})
        except AuthError as exc:
            raise RenewalRefused(
                "Octopus did not accept the user, password or software house id of this connection. An administrator "
                "must check them (the user must be a main user with the webservice module active).",
                detail=exc.detail) from None
        token = parsing.text((answer or {}).get("token"))
        if not token:
            raise RenewalRefused("Octopus did not give Firmsync a session for this user.")
        self.http.secrets.append(token)
        return token, TOKEN_SECONDS

    @cached_property
    def dossier_session(self):
        return SessionCache(self.connect_dossier, margin_seconds=60)

    def connect_dossier(self):
        """``POST /dossiers?dossierId=`` -> ``Dossiertoken`` (that spelling; the header is ``dossierToken``)."""
        answer = self.http.json_of(self.request("POST", f"{self.base_url}/dossiers",
                                                params={"dossierId": self.dossier_id}))
        answer = answer if isinstance(answer, dict) else {}
        token = parsing.text(next((answer[key] for key in ("Dossiertoken", "dossierToken", "dossiertoken")
                                   if answer.get(key)), ""))
        if not token:
            raise DataError("Octopus did not give Firmsync access to this dossier.")
        self.http.secrets.append(token)
        return token, TOKEN_SECONDS

    @property
    def dossier_id(self):
        if not self.reference:
            raise ConfigError("This dossier is not linked to an Octopus dossier yet.")
        return int(str(self.reference).strip())

    # -- calls -------------------------------------------------------------------------
    def request(self, method, url, *, headers=None, **kwargs):
        """:meth:`Connector.request` (signed by the declared :class:`OctopusLogin`, renewed once after a
        refusal), with the token ``url`` needs fetched first: the login or dossier-token call is its own
        call, counted and retried on its own, never nested inside this one."""
        def send():
            token_header(self, url)
            return self.http.request(method, url, headers=headers, auth=self.spec.auth.requests_auth(self), **kwargs)

        return self.renewing(send)

    def dossier_json(self, path, params=None, *, missing=None):
        """``GET /dossiers/{id}/<path>`` -> ``(body, server time)``; a 404 answers ``missing`` when given
        (the feeds answer 404 "No modified ... found" when nothing changed: CONNECTORS.md section 7)."""
        self.dossier_session.token()  # a 404 of the dossier itself (it is gone) is not an empty feed
        try:
            response = self.request("GET", f"{self.base_url}/dossiers/{self.dossier_id}/{path}", params=params,
                                    interpret=self._clock)
        except NotFoundError:
            if missing is None:
                raise
            return missing, self.server_time
        return self.http.json_of(response), self.server_time

    def _clock(self, response):
        """Every answer's ``Date`` (the server's clock: bookmarks follow it, not ours); never an error."""
        self._server_time = response_time(response) or datetime.now(timezone.utc)
        return None

    def feed(self, path, params, what):
        body, moment = self.dossier_json(path, params, missing={})
        if not isinstance(body, dict):
            raise DataError(f"Octopus sent {what} Firmsync could not read.")
        return body, moment

    def bookings(self, year_id, journal_type, since):
        return self.feed(f"bookyears/{year_id}/bookings/modified",
                         {"journalTypeId": journal_type, "modifiedTimeStamp": since}, "bookings")

    def book_years(self):
        """The dossier's book years (one ``bookyears`` call a run, of 24 a day), oldest first."""
        if self._years is None:
            rows, _ = self.dossier_json("bookyears", missing=[])
            if not isinstance(rows, list):
                raise DataError("Octopus sent book years Firmsync could not read.")
            self._years = sorted((BookYear(row) for row in rows), key=lambda year: year.start)
        return self._years

    def account_records(self, rows, seen):
        if not isinstance(rows, list):
            raise DataError("Octopus sent accounts Firmsync could not read.")
        for row in rows:
            number = key_id((row.get("accountKey") or {}), "an account")
            if number in seen:
                continue
            seen.add(number)
            yield AccountRecord(number=number, name=description(row.get("description"), self.language) or number,
                                kind=kind_of(number), source_id=number)

    def booking_records(self, body):
        years = {year.id: year for year in self.book_years()}
        for document in body.get("deletedBookings") or []:
            yield DeletedRecord(source_id=document_id(document, "journalSequenceNr") + ":", entry=True)
        for row in body.get("modifiedBookings") or []:
            year = years.get(key_id(row.get("bookyearKey"), "a booking's book year"))
            if year is None:
                raise DataError("Octopus sent a booking in a book year it does not list.")
            _, period_end = year.period(row["bookyearPeriodeNr"])
            centre = row.get("costCentreKey")
            yield LedgerLineRecord(
                source_id=f"{document_id(row, 'journalNr')}:{int(row['lineSequenceNr'])}",
                booking_date=parsing.day(row.get("documentDate"), "document date", NAME),
                booking_period_end=period_end,
                account=key_id(row.get("accountKey"), "a booking line's account"),
                # GUESS: debit positive, credit negative, as the vendor's account amounts
                amount=parsing.amount(row.get("bookingAmount"), "booking amount", NAME),
                description=parsing.text(row.get("comment")),
                reference=parsing.text(row.get("reference")),
                journal=f"{JOURNAL_TYPES.get(int(row['journalType']), '')}{int(row['journalNr'])}",
                dimensions={"cost_centre": key_id(centre, "a cost centre")} if centre else {},
            )

    # -- references --------------------------------------------------------------------
    def list_references(self):
        rows = self.get_json(f"{self.base_url}/dossiers")
        if not isinstance(rows, list):
            raise DataError("Octopus sent a list of dossiers Firmsync could not read.")
        refs = []
        for row in rows:
            dossier = key_id(row.get("dossierKey"), "a dossier")
            details = {name: parsing.text(row.get(field)) for name, field in
                       (("vat_number", "vatNr"), ("country", "country"), ("language", "languageCode"))
                       if parsing.text(row.get(field))}
            refs.append(CompanyRef(dossier, parsing.text(row.get("dossierDescription")) or f"Dossier {dossier}",
                                   details))
        return refs

    def check(self):
        references = self.list_references()
        if not references:
            return CheckResult(False, "Connected to Octopus, but this user reaches no dossier.", 0)
        return CheckResult(True, f"Connected to Octopus: {len(references)} dossier"
                                 f"{'s' if len(references) != 1 else ''} available.", len(references))

    @staticmethod
    def error_message(response):
        """``ErrorResult``: ``errorMessage`` (the user's language), else ``technicalInfo`` (all that recorded
        400/401 answers carry: CONNECTORS.md section 26)."""
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return parsing.text(body.get("errorMessage")) or parsing.text(body.get("technicalInfo")) or None


def document_id(row, journal_field):
    """``<book year>:<journal type>:<journal nr>:<document nr>``: a document's lines share it."""
    return (f"{key_id(row.get('bookyearKey'), 'a booking book year')}:{int(row['journalType'])}:"
            f"{int(row[journal_field])}:{int(row['documentSequenceNr'])}")


def response_time(response):
    """The server's clock from an answer's ``Date`` header (None when absent or unreadable)."""
    try:
        moment = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
