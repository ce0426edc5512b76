"""Sage Business Cloud Accounting (API v3.1): one firm connection, every business of its grant.

Vendor docs: https://developer.sage.com/accounting/reference/ (specs in ../shared/specs/sage/).
Notes, quirks, the balance paths and the sandbox's modes: ``connectors/sage_bca/README.md``.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta
from functools import cached_property

from marshmallow import Schema, fields

from connectors import pagination, parsing
from connectors.auth import OAuth2Code
from connectors.base import (
    ACCOUNTING, FIRM, AccountRecord, BalanceRecord, CheckResult, CompanyRef, Connector, ConnectorSpec, DataError,
    DeletedRecord, FiscalYearRecord, LedgerLineRecord, NotFoundError, RateBudget, Stream,
)

PACKAGE = "Sage Accounting"
API_URL = "https://api.accounting.sage.com/v3.1"
DOCS_URL = "https://developer.sage.com/accounting/reference/"
#: list endpoints answer at most 200 items a page (the spec's items_per_page maximum)
PAGE_SIZE = 200
#: /trial_balance exists only for these countries (the reporting spec's "Endpoint Availability")
TRIAL_BALANCE_COUNTRIES = frozenset({"CA", "GB", "IE"})

# https://developer.sage.com/accounting/guides/authenticating/authentication/: 5-minute access tokens, refresh
# tokens that rotate on every use and lapse after 31 idle days; scopes are only "readonly" or "full_access"
SAGE_AUTH = OAuth2Code(
    authorize_url="https://www.sageone.com/oauth2/auth/central",
    token_url="https://oauth.accounting.sage.com/token",
    scopes=("readonly",),
    pkce=False,
    rotating_refresh_token=True,
    access_token_seconds=300,
    extra_authorize_params=(("filter", "apiv3.1"),),
    token_auth_method="client_secret_post",
)
#: 100 calls a minute and 2,500 a day per business
#: (https://knowledgelib.io/business/erp-integration/sage-business-cloud-api/2026; not on Sage's own site)
SAGE_BUDGET = RateBudget(per_minute=100, per_day=2500, per="tenant")

#: ledger_account_type ids (https://developer.sage.com/accounting/reference/accounting-setup/#tag/Ledger-Account-Types)
ACCOUNT_KINDS = {
    **dict.fromkeys(("CURRENT_ASSETS", "FIXED_ASSETS", "FUTURE_ASSETS", "BANK"), "asset"),
    **dict.fromkeys(("CURRENT_LIABILITY", "FUTURE_LIABILITY", "LINE_OF_CREDIT", "TAXES"), "liability"),
    "EQUITY": "equity",
    **dict.fromkeys(("SALES", "OTHER_INCOME"), "income"),
    **dict.fromkeys(("DIRECT_EXPENSES", "OVERHEADS", "DEPRECIATION"), "expense"),
}
#: "Sales Type A (4000)": the nominal code a link's displayed_as ends with
CODE_IN_NAME = re.compile(r"\((\w+)\)\s*$")


class SageConfig(Schema):
    """The Sage app a firm registers at developer.sage.com (one app serves all its businesses)."""

    client_id = fields.String(required=True, metadata={"label": "Client id"})
    client_secret = fields.String(required=True, metadata={"secret": True, "label": "Client secret"})
    base_url = fields.Url(load_default=API_URL, require_tld=False, metadata={"label": "Accounting API URL"})
    oauth_url = fields.Url(load_default=None, allow_none=True, require_tld=False,
                           metadata={"label": "Sign-in service URL (empty: Sage's own)"})


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

def amount(value, field):
    # the spec types amounts as doubles, the trial balance example sends strings ("804.39"): both are read
    return parsing.amount(value, field, PACKAGE)


def items_of(body, what):
    """``(items, more)`` of a list answer: the API's ``{"$items": [...], "$next": ...}`` or the spec's bare array."""
    # the v3.1 swagger declares list answers as bare arrays; the API sends the $items envelope
    # (https://developer.sage.com/accounting/guides/concepts/pagination/): both are read
    if isinstance(body, list):
        return body, len(body) == PAGE_SIZE
    if isinstance(body, dict) and isinstance(body.get("$items"), list):
        return body["$items"], bool(body.get("$next"))
    raise DataError(f"{PACKAGE} sent {what} Firmsync could not read.")


def nominal_code(account):
    """A ledger account's nominal code as text (an integer in the spec, a string in some answers)."""
    code = parsing.text(account.get("nominal_code"))
    if not code:
        match = CODE_IN_NAME.search(str(account.get("displayed_as") or ""))
        code = match.group(1) if match else ""
    if not code:
        raise DataError(f"{PACKAGE} sent a ledger account without a nominal code.")
    return code


def account_record(row):
    kind = ACCOUNT_KINDS.get(str((row.get("ledger_account_type") or {}).get("id") or "").upper(), "other")
    code = nominal_code(row)
    name = parsing.text(row.get("name") or row.get("display_name") or row.get("displayed_as")) or code
    return AccountRecord(number=code, name=name, kind=kind, source_id=row.get("id"))


def fiscal_years(settings, start, end):
    """The fiscal years overlapping ``start``..``end``: each ends on the day and month of ``year_end_date``."""
    year_end = parsing.day(settings.get("year_end_date"), "financial year end", PACKAGE)

    def end_in(year):
        try:
            return year_end.replace(year=year)
        except ValueError:  # 29 February
            return date(year, 2, 28)

    years, year = [], start.year - 1
    while True:
        first, last = end_in(year - 1) + timedelta(days=1), end_in(year)
        if first > end:
            return years
        if last >= start:
            years.append(FiscalYearRecord(start=first, end=last))
        year += 1


def day_start(day):
    return f"{day.isoformat()}T00:00:00Z"


def day_end(day):
    # the spec types these from_date/to_date as date-time; Sage's guides send dates: a day's bounds read
    # the same either way (README "Spec deviations")
    return f"{day.isoformat()}T23:59:59Z"


def periods(window):
    """``(start, end)`` of each period the engine asks for (a period starts the day after the previous one ends)."""
    ends = sorted(window.period_ends)
    if not ends:
        return []
    first = window.start if window.start and window.start <= ends[0] else ends[0].replace(day=1)
    return list(zip([first] + [e + timedelta(days=1) for e in ends[:-1]], ends))


def trial_balance_rows(body):
    """The ledger accounts of a trial balance, in both shapes the reporting spec describes."""
    # the example is top level with string amounts; the TrialBalance definition wraps it in trial_balance{}
    # with doubles (../shared/specs/sage/sage-accounting-v3.1-reporting.swagger.json): accept both
    if isinstance(body, dict) and isinstance(body.get("trial_balance"), dict):
        body = body["trial_balance"]
    if not isinstance(body, dict) or not isinstance(body.get("ledger_accounts"), list):
        raise DataError(f"{PACKAGE} sent a trial balance Firmsync could not read.")
    return body["ledger_accounts"]


# --------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------


class FiscalYears(Stream):
    name, record_type, primary_key = "fiscal_years", FiscalYearRecord, "start"

    def records(self, state, window):
        end = window.end or date.today()
        yield from fiscal_years(self.connector.get("/financial_settings"), window.start or end, end)


class Accounts(Stream):
    name, record_type, primary_key, paginator = "accounts", AccountRecord, "number", pagination.cursor

    def records(self, state, window):
        for row in self.connector.chart:
            yield account_record(row)


class LedgerLines(Stream):
    """Ledger entries changed since the bookmark (``updated_or_created_since`` is inclusive: the entries of the
    bookmark's second are read again, never missed)."""

    name, record_type, primary_key, replication_key = "ledger_lines", LedgerLineRecord, "source_id", "updated_at"
    paginator = pagination.cursor

    def records(self, state, window):
        sage = self.connector
        codes, feed = sage.codes, sage.changes(state.bookmark, window)
        for row in feed:
            if not row.get("deleted"):
                yield self._line(row, codes)
        if feed.bookmark:
            state.advance(feed.bookmark)

    @staticmethod
    def _line(row, codes):
        account = row.get("ledger_account") or {}
        transaction = row.get("transaction") or {}
        return LedgerLineRecord(
            source_id=str(row["id"]),
            booking_date=parsing.day(row.get("date"), "ledger entry date", PACKAGE),
            account=codes.get(account.get("id")) or nominal_code(account),
            amount=amount(row.get("debit"), "debit") - amount(row.get("credit"), "credit"),
            description=parsing.text(row.get("description")),
            reference=parsing.text(transaction.get("reference") or transaction.get("displayed_as")),
            journal=parsing.text((row.get("journal_code") or {}).get("displayed_as")
                                 or (transaction.get("transaction_type") or {}).get("id")),
            modified_at=parsing.moment(row["updated_at"], "change", PACKAGE) if row.get("updated_at") else None,
        )


class Deleted(Stream):
    """Entries the same feed flags ``deleted: true``; after ``ledger_lines`` in one run it costs no call."""

    name, record_type, primary_key, replication_key = "deleted", DeletedRecord, "source_id", "updated_at"
    paginator = pagination.cursor

    def records(self, state, window):
        feed = self.connector.changes(state.bookmark, window).complete()
        for entry_id in feed.deleted:
            yield DeletedRecord(source_id=entry_id)
        if feed.bookmark:
            state.advance(feed.bookmark)


class Balances(Stream):
    """Movements per period: ``/trial_balance`` in CA, GB and IE; elsewhere ``ledger_accounts?show_balance_details``.

    Balances follow from the ledger entries: when the change feed since the bookmark holds nothing new, no
    period is read again (a quiet night costs no balance call); otherwise every period of the window is."""

    name, record_type, replication_key, paginator = "balances", BalanceRecord, "updated_at", pagination.cursor

    def records(self, state, window):
        sage = self.connector
        feed = sage.changes(state.bookmark, window)
        if state.bookmark and not feed.complete().changed:
            state.advance(feed.bookmark)
            return
        read = self._trial_balance if sage.country() in TRIAL_BALANCE_COUNTRIES else self._balance_details
        for start, end in periods(window):
            for code, movement in read(start, end):
                if movement:
                    yield BalanceRecord(account=code, period_end=end, period_start=start, amount=movement)
        if feed.read and feed.bookmark:  # the ledger lines' read of this run tells up to when these balances hold
            state.advance(feed.bookmark)

    def _trial_balance(self, start, end):
        sage = self.connector
        codes = sage.codes
        body = sage.get("/trial_balance", {"from_date": start.isoformat(), "to_date": end.isoformat()})
        for row in trial_balance_rows(body):
            code = codes.get(row.get("id")) or nominal_code(row)
            yield code, amount(row.get("debit"), "trial balance debit") - amount(row.get("credit"),
                                                                                "trial balance credit")

    def _balance_details(self, start, end):
        # no /trial_balance outside CA, GB and IE: the chart's balance_details for the period
        # (https://developer.sage.com/accounting/reference/accounting-setup/#tag/Ledger-Accounts)
        params = {"show_balance_details": "true", "from_date": day_start(start), "to_date": day_end(end)}
        for row in self.connector.pages("/ledger_accounts", params, "ledger accounts"):
            details = row.get("balance_details") or {}
            if "debits" in details or "credits" in details:
                movement = amount(details.get("debits"), "debits") - amount(details.get("credits"), "credits")
            else:
                sign = -1 if str(details.get("credit_or_debit") or "").lower() == "credit" else 1
                movement = sign * amount(details.get("balance"), "balance")
            yield nominal_code(row), movement


class ChangeFeed:
    """One read of ``ledger_entries?updated_or_created_since=`` (every page) from a bookmark
    ``{"since": <updated_at>, "ids": [entries changed at that moment]}``. It remembers the deleted entries,
    whether anything changed after the bookmark, and the next bookmark, so that ``deleted`` and ``balances``
    reuse the read of ``ledger_lines``."""

    def __init__(self, sage, bookmark, window):
        self.sage, self.window = sage, window
        bookmark = bookmark or {}
        self.since, self.known = bookmark.get("since"), set(bookmark.get("ids") or ())
        self.deleted, self.changed, self.bookmark, self.read = [], False, dict(bookmark) or None, False

    def __iter__(self):
        params = {"attributes": "all"}
        if self.since:
            params["updated_or_created_since"] = self.since
        if self.window.start:
            params["from_date"] = day_start(self.window.start)
        since = parsing.moment(self.since, "change", PACKAGE) if self.since else None
        latest, latest_text, at_latest, deleted, changed = since, self.since, set(self.known), [], False
        for row in self.sage.pages("/ledger_entries", params, "ledger entries"):
            text = row.get("updated_at") or row.get("created_at")
            moment = parsing.moment(text, "change", PACKAGE) if text else None
            # anything after the bookmark, or at its moment but not seen then, is a change
            changed = changed or since is None or (moment is not None and (
                moment > since or (moment == since and str(row["id"]) not in self.known)))
            # Sage promises no order within the answer: the latest change is kept, the bookmark moves at the end
            if moment is not None and (latest is None or moment > latest):
                latest, latest_text, at_latest = moment, text, set()
            if moment is not None and moment == latest:
                at_latest.add(str(row["id"]))
            if row.get("deleted"):
                deleted.append(str(row["id"]))
            yield row
        self.deleted, self.changed, self.read = deleted, changed, True
        if latest_text:
            self.bookmark = {"since": latest_text, "ids": sorted(at_latest)}

    def complete(self):
        """This feed, read to its end (no call when it was read already)."""
        if not self.read:
            for _ in self:
                pass
        return self


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


class SageAccounting(Connector):
    spec = ConnectorSpec(
        key="sage_bca",
        display_name=PACKAGE,
        kind=ACCOUNTING,
        level=FIRM,
        auth=SAGE_AUTH,
        config_schema=SageConfig,
        api_version="3.1",
        docs_url=DOCS_URL,
        rate_budget=SAGE_BUDGET,
        reference_label="business",
        sandbox_config={"client_id": "sage-sandbox-client", "client_secret": "sage-sandbox-secret",
                        "base_url": "{sandbox}/sage/v3.1", "oauth_url": "{sandbox}/sage"},
    )
    streams = (FiscalYears, Accounts, LedgerLines, Deleted, Balances)

    @classmethod
    def oauth_endpoints(cls, config):
        # a stand-in sign-in service (the sandbox) serves both endpoints under its oauth_url
        oauth_url = ((config or {}).get("oauth_url") or "").rstrip("/")
        if not oauth_url:
            return cls.spec.auth
        return dataclasses.replace(cls.spec.auth, authorize_url=f"{oauth_url}/oauth2/auth/central",
                                   token_url=f"{oauth_url}/token")

    @staticmethod
    def error_message(response):
        # errors are a list of {"$severity", "$dataCode", "$message", "$source"}
        # (https://developer.sage.com/accounting/guides/concepts/response_codes/)
        try:
            body = response.json()
        except ValueError:
            return None
        first = body[0] if isinstance(body, list) and body else body
        if not isinstance(first, dict):
            return None
        return parsing.text(first.get("$message") or first.get("message"))[:200] or None

    # -- calls ----------------------------------------------------------------------
    def get(self, path, params=None, business=None):
        """GET ``path`` of the accounting API for the linked business (or ``business``)."""
        # every call names its business in X-Business
        # (https://developer.sage.com/accounting/guides/concepts/best-practices/)
        business = business or self.reference
        if not business:
            raise NotFoundError(f"This dossier is not linked to a {PACKAGE} business yet.")
        return self.get_json(f"{self.base_url}{path}", params=params, headers={"X-Business": business})

    def pages(self, path, params, what):
        """Every item of a paged list: ``items_per_page`` 200, ``page`` 1, 2, ... while ``$next`` says there is more."""
        def fetch(page):
            items, more = items_of(self.get(path, {**params, "items_per_page": PAGE_SIZE, "page": page}), what)
            return items, page + 1 if more else None

        return pagination.cursor(fetch, start=1, package=PACKAGE)

    @cached_property
    def chart(self):
        """The business's ledger accounts (read once per connector)."""
        return list(self.pages("/ledger_accounts", {"attributes": "all"}, "ledger accounts"))

    @cached_property
    def codes(self):
        """Nominal codes by ledger account id (entries and trial balances name their account by id)."""
        return {row.get("id"): nominal_code(row) for row in self.chart if row.get("id")}

    def changes(self, bookmark, window):
        """The :class:`ChangeFeed` from ``bookmark`` (one per bookmark and window for this connector)."""
        feeds = self.__dict__.setdefault("_feeds", {})
        bookmark = bookmark or {}
        key = (bookmark.get("since"), tuple(bookmark.get("ids") or ()), window.start)
        if key not in feeds or not feeds[key].read:
            feeds[key] = ChangeFeed(self, bookmark, window)
        return feeds[key]

    @cached_property
    def business(self):
        """The linked business's record (``GET /businesses/{id}``, the user API)."""
        return self.get(f"/businesses/{self.reference}")

    def country(self):
        # the business's country decides the balance path; the spec's Country has only id and displayed_as
        country = self.business.get("country") or {}
        return parsing.text(country.get("id") if isinstance(country, dict) else country).upper()

    # -- contract -------------------------------------------------------------------
    def list_references(self):
        # /businesses belongs to the user API: no X-Business; it answers unpaged (§26 of CONNECTORS.md)
        body = self.get_json(f"{self.base_url}/businesses")
        rows, _ = items_of(body, "a list of businesses")
        return [CompanyRef(reference=row["id"],
                           name=parsing.text(row.get("name") or row.get("displayed_as")) or row["id"])
                for row in rows if row.get("id")]

    def check(self):
        references = self.list_references()
        if self.reference:
            if self.reference not in {ref.reference for ref in references}:
                raise NotFoundError(f"The {PACKAGE} business linked to this dossier is no longer shared with "
                                    "Firmsync. Reconnect and pick the business again.")
            name = self.business.get("name") or self.business.get("displayed_as") or self.reference
            return CheckResult(True, f"Connected to {PACKAGE} business {name}.", references=len(references))
        if not references:
            return CheckResult(False, f"{PACKAGE} accepted the sign-in, but the user has no business.", references=0)
        return CheckResult(True, f"Connected to {PACKAGE}: {len(references)} business(es) available.",
                           references=len(references))

