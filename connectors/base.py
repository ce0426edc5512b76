"""The connector contract (ARCHITECTURE section 5).

A package is one folder ``connectors/<folder>/`` whose ``__init__.py`` defines a subclass of
:class:`Connector` with a class attribute :attr:`Connector.spec` (:class:`ConnectorSpec`,
including its auth strategy from :mod:`connectors.auth`) and its streams, declared as
:class:`Stream` classes in :attr:`Connector.streams`:

* :meth:`Connector.check` tests the credentials and answers a :class:`CheckResult`;
* :meth:`Connector.list_references` lists the companies a dossier can be linked to;
* each :class:`Stream` yields canonical records from :meth:`Stream.records`, starting from
  a bookmark; :meth:`Connector.read` dispatches to it by name (nothing to write per package).

A connector instance is built per use with a :class:`ConnectorContext`: the connection's
non-secret ``config``, its decrypted ``credentials``, the link's ``reference`` and
``options``, and the HTTP client (rate limited, counting calls) the engine hands it. Calls go
through :meth:`Connector.request`, which signs them with the declared auth strategy and
renews the credentials once when the package refuses them. A connector must not import
Flask or the app's models, so it can be run and tested alone.

Errors: connectors raise only the typed errors of :mod:`connectors.errors` (importable from
here too). Their ``message`` is written for an accountant and never contains a secret.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, DecimalException
from functools import cached_property
from typing import Any, ClassVar, Iterator

from connectors.auth import AuthStrategy, OAuth2Code
from connectors.errors import (  # noqa: F401 - the contract's errors, importable from here too
    AuthError, ConfigError, ConnectorError, DataError, NotFoundError, PermissionError, RateLimited, RenewalRefused,
    TransientError,
)

# --------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------

ACCOUNTING = "accounting"
ADMINISTRATION = "administration"
FIRM = "firm"
DOSSIER = "dossier"


@dataclass(frozen=True)
class RateBudget:
    """An API budget, enforced by :mod:`connectors.rate_limit` in Redis.

    ``per`` says what the budget is counted for: ``"tenant"`` (the link's reference,
    e.g. a Xero organisation or Exact division), ``"connection"`` (one credential),
    ``"key"`` (an API key shared by connections) or ``"ip"`` (this server).
    ``window_seconds`` lets a budget use a window other than the minute (Companies
    House: 600 per 300 s).

    An **endpoint budget** (``path``, optionally ``method``) counts only the calls whose URL
    path matches, under its own counters (the scope plus ``name``): Octopus allows 2 reads of
    the chart a day and 48 of each modified feed, ``RateBudget(per_minute=2,
    window_seconds=86400, path=r"/dossiers/[^/]+/accounts$", method="GET", name="accounts",
    label="read the chart of accounts")``. A spent endpoint budget whose window is a day or
    more raises ``RateLimited(daily=True)`` naming ``label`` and the time of the next call.
    """

    per_minute: int | None = None
    per_day: int | None = None
    concurrency: int | None = None
    per: str = "tenant"
    window_seconds: int = 60
    #: an endpoint budget: a regular expression searched in the request's URL path; the
    #: budget counts only the calls whose path matches (None: every call)
    path: str | None = None
    #: with ``path``: the HTTP method the budget counts ("GET"; None: any method)
    method: str | None = None
    #: an endpoint budget's short name: its counters are kept under the scope plus this name
    name: str = ""
    #: what an endpoint budget allows, in the user's words ("read the chart of accounts")
    label: str = ""

    def applies_to(self, method, path) -> bool:
        """Does a ``method`` call to URL path ``path`` count against this budget?"""
        if self.method and method and self.method.upper() != str(method).upper():
            return False
        return self.path is None or re.search(self.path, path or "") is not None

    @property
    def day_long(self) -> bool:
        """A budget whose refusal lasts until tomorrow: a per-day count or a window of a day or more."""
        return bool(self.per_day) or bool(self.per_minute and self.window_seconds >= 86400)


#: :attr:`Assumption.confidence` levels, weakest first
GUESS = "guess"
THIRD_PARTY = "third_party"
VERIFIED = "verified"
CONFIDENCE_LEVELS = (GUESS, THIRD_PARTY, VERIFIED)
#: :attr:`ConnectorSpec.confidence` of a package built on the vendor's own documentation
DOCUMENTED = "documented"


@dataclass(frozen=True)
class Assumption:
    """One assumption about an undocumented vendor API, declared in the package's
    ``assumptions.py`` and read by its connector through :meth:`Connector.assumed`.

    ``value`` is what the connector uses (a path, a field name, a page size, a header name, a
    tuple of required fields...); ``source`` says where it comes from (a URL, ``owner/repo: path``,
    "CONNECTORS.md section 11"); ``confidence`` is :data:`VERIFIED` (the vendor's own words),
    :data:`THIRD_PARTY` (an integrator's guide or client library) or :data:`GUESS`. When the
    vendor's documentation arrives, correcting the package means editing this mapping only.
    """

    value: Any
    source: str
    confidence: str = GUESS
    note: str = ""

    def __post_init__(self):
        if self.confidence not in CONFIDENCE_LEVELS:
            raise ValueError(f"confidence must be one of {CONFIDENCE_LEVELS}, not {self.confidence!r}")


@dataclass(frozen=True)
class ConnectorSpec:
    """What a connector declares about its package.

    ``auth`` is the package's :class:`connectors.auth.AuthStrategy`. ``config_schema`` is a
    marshmallow schema class describing the connection form; fields with
    ``metadata={"secret": True}`` are stored encrypted, write-only in the console, and
    scrubbed from messages. ``base_url_setting`` names the config field holding the base
    URL (so tests and the sandbox can redirect the connector). ``sandbox_config`` is the
    configuration that points a connection at the package's emulator in the local sandbox
    (``{sandbox}`` stands for the sandbox's URL): development, the demo and the end-to-end
    tests use it, production never does.
    """

    key: str
    display_name: str
    kind: str  # ACCOUNTING | ADMINISTRATION
    level: str  # FIRM | DOSSIER
    auth: AuthStrategy
    config_schema: Any
    api_version: str
    docs_url: str
    rate_budget: RateBudget = RateBudget()
    #: every budget a call counts against, when the package has several at once (Xero: per
    #: organisation AND per app); when declared, ``rate_budget`` is its first entry
    rate_budgets: tuple[RateBudget, ...] = ()
    #: what the reference is called in the user's words ("division", "organisation"...)
    reference_label: str = "company"
    #: the user types the reference (Companies House) instead of picking it from a list
    reference_typed: bool = False
    base_url_setting: str = "base_url"
    #: True where the vendor documents nothing publicly and the module is built on best public facts
    undocumented: bool = False
    #: every assumption about the vendor's shapes (paths, field names, paging, limits), by name:
    #: ``{name: Assumption}``; the connector reads them with :meth:`Connector.assumed` (see
    #: "Undocumented packages" in docs/connectors.md). Empty for documented packages.
    assumptions: dict = field(default_factory=dict)
    #: the connection's configuration in the local sandbox (``{sandbox}``: its URL)
    sandbox_config: dict = field(default_factory=dict)
    #: a dossier-level package using another package's OAuth app (XeroTB uses Xero's): its key
    oauth_app: str | None = None
    #: the hosts the vendor documents for its API and login (``fnmatch`` patterns, e.g.
    #: ``"*.twinfield.com"``): in production a connection's URLs must name one of them; empty
    #: for a package whose server can be anywhere (Odoo, a per-accountant BoCount host)
    vendor_hosts: tuple[str, ...] = ()

    def __post_init__(self):
        if self.rate_budgets:
            object.__setattr__(self, "rate_budgets", tuple(self.rate_budgets))
            object.__setattr__(self, "rate_budget", self.rate_budgets[0])

    @property
    def budgets(self) -> tuple[RateBudget, ...]:
        """Every budget one API call counts against (``rate_budgets``, else ``(rate_budget,)``)."""
        return self.rate_budgets or (self.rate_budget,)

    def sandbox_settings(self, sandbox_url) -> dict:
        """:attr:`sandbox_config` for the sandbox at ``sandbox_url`` (``{sandbox}`` replaced)."""
        base = str(sandbox_url).rstrip("/")
        return {name: value.replace("{sandbox}", base) if isinstance(value, str) else value
                for name, value in self.sandbox_config.items()}

    @property
    def confidence(self) -> str:
        """How sure the package is of the vendor's shapes: the weakest :attr:`Assumption.confidence`
        of :attr:`assumptions` (:data:`GUESS` < :data:`THIRD_PARTY` < :data:`VERIFIED`), else
        :data:`DOCUMENTED` (a package built on the vendor's documentation or spec)."""
        levels = {a.confidence for a in self.assumptions.values()}
        weakest = next((level for level in CONFIDENCE_LEVELS if level in levels), None)
        if weakest is None:
            return GUESS if self.undocumented else DOCUMENTED
        return weakest

    @property
    def built_from_public_information(self) -> bool:
        """Show "Built from public information; tell us if your data looks wrong" for this package?
        (``undocumented``, or any assumption short of :data:`VERIFIED`)."""
        return self.undocumented or self.confidence in (GUESS, THIRD_PARTY)

    @property
    def oauth(self) -> OAuth2Code | None:
        """The OAuth2 endpoints when the package's auth strategy is :class:`OAuth2Code`."""
        return self.auth if isinstance(self.auth, OAuth2Code) else None


# --------------------------------------------------------------------------------------
# Canonical records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanyRef:
    """A company a dossier can be linked to."""

    reference: str
    name: str
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    references: int | None = None


@dataclass(frozen=True)
class AccountRecord:
    number: str
    name: str
    kind: str = "other"  # asset | liability | equity | income | expense | other
    source_id: str | None = None


@dataclass(frozen=True)
class FiscalYearRecord:
    start: date
    end: date


@dataclass(frozen=True)
class BalanceRecord:
    """An account's balance for the period ending ``period_end``.

    ``basis``: ``"movement"`` (net change in the period), ``"ytd"`` (cumulative from the
    start of the package's fiscal year), or ``"closing"`` (balance at period end since
    the beginning of time). The engine converts to movements.
    """

    account: str
    period_end: date
    amount: Decimal
    basis: str = "movement"
    period_start: date | None = None


@dataclass(frozen=True)
class LedgerLineRecord:
    source_id: str
    booking_date: date
    account: str
    amount: Decimal
    #: the package's booking period as its last day (decides the dossier period); None: use booking_date
    booking_period_end: date | None = None
    description: str = ""
    reference: str = ""
    journal: str = ""
    dimensions: dict = field(default_factory=dict)
    modified_at: datetime | None = None


@dataclass(frozen=True)
class DeletedRecord:
    """A ledger line deleted in the package (from a delete feed).

    With ``entry=True``, ``source_id`` is the prefix shared by every line of a deleted entry
    (a package that reports deletions per transaction, e.g. Twinfield's ``"VRK:2024001:"``):
    every line of the link whose source id starts with it is deleted.
    """

    source_id: str
    entry: bool = False


@dataclass(frozen=True)
class OpeningBalanceRecord:
    account: str
    date: date
    amount: Decimal


@dataclass(frozen=True)
class CompanyProfileRecord:
    """The canonical company record every administration package fills (one per sync).

    Each register fills what it has and leaves the rest ``None`` (never offered, never
    wiping what the firm typed; see ``docs/administration-sync.md``):

    * identity: ``name``, ``registration_number`` (the register's own number: the company
      number at Companies House, the enterprise number in Belgium, the CVR number in
      Denmark), ``vat_number``;
    * ``legal_form``, ``status`` (readable labels), ``address`` (``line_1``, ``line_2``,
      ``city``, ``region``, ``postal_code``, ``country``), ``incorporation_date``;
    * ``fiscal_year_end`` ("MM-DD"), ``agm_date`` (the statutory annual meeting, "MM-DD"
      or the register's words), ``capital`` (``{"amount": "18550.00", "currency": "EUR"}``);
    * ``officers``: ``{"name", "role", "start", "end"}`` (ISO dates; ``role`` the mandate as
      the register names it, e.g. "Director", "Bestyrelsesmedlem");
    * ``shareholders``: ``{"name", "share", "start", "end"}`` plus, where known, ``shares``
      (a count) and ``percentage`` (a decimal string);
    * ``extra``: what only one register has (SIC codes, industry, previous names, ...).

    :meth:`as_dict` leaves the fields added after Companies House (``agm_date``,
    ``capital``) out while they are ``None``, so existing snapshots keep their hash.
    """

    name: str
    registration_number: str | None = None
    vat_number: str | None = None
    legal_form: str | None = None
    status: str | None = None
    address: dict = field(default_factory=dict)
    incorporation_date: date | None = None
    fiscal_year_end: str | None = None  # "MM-DD"
    officers: tuple = ()  # ({"name", "role", "start", "end"}, ...)
    shareholders: tuple = ()  # ({"name", "share", "shares"?, "percentage"?, "start"?, "end"?}, ...)
    extra: dict = field(default_factory=dict)
    agm_date: str | None = None
    capital: dict | None = None  # {"amount": decimal string, "currency": ISO code}

    #: fields left out of :meth:`as_dict` while ``None`` (stable hashes for older snapshots)
    OPTIONAL_FIELDS: ClassVar[tuple] = ("agm_date", "capital")

    def as_dict(self):
        data = dataclasses.asdict(self)
        data["officers"] = list(self.officers)
        data["shareholders"] = list(self.shareholders)
        if self.incorporation_date:
            data["incorporation_date"] = self.incorporation_date.isoformat()
        for name in self.OPTIONAL_FIELDS:
            if data.get(name) is None:
                data.pop(name, None)
        return data


class Stream:
    """A stream a connector offers, declared as a class in :attr:`Connector.streams`.

    ``name`` is what bookmarks and progress are stored under; ``record_type`` the canonical
    record class it yields; ``primary_key`` the record field that identifies a record;
    ``replication_key`` the field the bookmark follows (a stream with one is incremental: it
    takes ``state.bookmark`` and reports a new one through :meth:`StreamState.advance`);
    ``paginator`` names the :mod:`connectors.pagination` helper the stream pages with.

    An instance is made per read with the connector (:attr:`connector`) and its
    :meth:`records` yields the records.
    """

    name: ClassVar[str]
    record_type: ClassVar[type]
    primary_key: ClassVar[str | None] = None
    replication_key: ClassVar[str | None] = None
    paginator: ClassVar[Any] = None
    incremental: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.incremental = cls.replication_key is not None

    def __init__(self, connector):
        self.connector = connector

    def records(self, state: "StreamState", window: "SyncWindow") -> Iterator[Any]:
        """Yield the stream's canonical records for the connector's reference, from ``state.bookmark``."""
        raise NotImplementedError


@dataclass
class StreamState:
    """Passed to :meth:`Connector.read`: the bookmark to start from and progress hooks.

    A connector calls :meth:`advance` with the new bookmark once records up to it have
    been yielded; the engine persists it only after those records are committed.
    ``total`` may be set when the connector knows how many records will come (for the
    progress bar).
    """

    bookmark: Any = None
    new_bookmark: Any = None
    total: int | None = None

    def advance(self, bookmark):
        self.new_bookmark = bookmark


@dataclass
class SyncWindow:
    """The date range the engine wants: fiscal years overlapping it, periods ending in it."""

    start: date | None = None
    end: date | None = None
    period_ends: tuple[date, ...] = ()


# --------------------------------------------------------------------------------------
# Connector
# --------------------------------------------------------------------------------------


@dataclass
class ConnectorContext:
    """Everything a connector instance may use.

    ``http`` is a :class:`connectors.http.HttpClient` (rate limited, counting calls,
    mapping status codes to typed errors). ``save_credentials`` is called with the new
    credentials dict when a token is refreshed (the engine persists it in its own
    committed transaction under the connection lock before the call returns).
    ``load_credentials`` re-reads the committed credentials (another worker may have
    refreshed them); ``lock`` is a factory of the per-connection lock (a context manager)
    held around a token refresh. Both default to working on ``credentials`` alone.
    """

    config: dict
    credentials: dict
    reference: str | None = None
    options: dict = field(default_factory=dict)
    http: Any = None
    save_credentials: Any = None
    connection_id: int | None = None
    load_credentials: Any = None
    lock: Any = None


class Connector:
    """Base class of every connector. See the module docstring for the contract.

    A subclass declares :attr:`spec` and :attr:`streams` and implements :meth:`check` and
    :meth:`list_references`; everything else has a working default.
    """

    spec: ClassVar[ConnectorSpec]
    #: the streams, in the order the engine reads them (fiscal years and accounts first)
    streams: ClassVar[tuple[type[Stream], ...]] = ()

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.config = context.config
        self.credentials = context.credentials
        self.reference = context.reference
        self.options = context.options or {}
        self.http = context.http
        if self.http is not None:
            if getattr(self.http, "error_message", None) is None:
                self.http.error_message = self.error_message
            if getattr(self.http, "interpret", None) is None and \
                    type(self).interpret_response is not Connector.interpret_response:
                self.http.interpret = self.interpret_response

    # -- required -------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Test the connection; answer a human message (raise AuthError for bad credentials)."""
        raise NotImplementedError

    def list_references(self) -> list[CompanyRef]:
        """The companies this connection can reach (the dossier's sync reference)."""
        raise NotImplementedError

    # -- streams --------------------------------------------------------------------
    @classmethod
    def stream(cls, name: str) -> type[Stream]:
        """The declared stream called ``name`` (:class:`ConfigError` when there is none)."""
        for stream in cls.streams:
            if stream.name == name:
                return stream
        raise ConfigError(f"{cls.spec.display_name} has no stream called {name!r}.")

    def read(self, stream: str, state: StreamState, window: SyncWindow) -> Iterator[Any]:
        """Yield canonical records of ``stream`` for :attr:`reference`, from ``state.bookmark``.

        A payload that breaks a stream's parsing (a missing key, a value of the wrong type)
        becomes a :class:`DataError` naming the stream: the run fails and nothing is written.
        """
        records = self.stream(stream)(self).records(state, window)
        try:
            yield from records
        except (KeyError, IndexError, TypeError, ValueError, DecimalException) as exc:
            raise DataError(f"{self.spec.display_name} sent {stream.replace('_', ' ')} Firmsync could not read.",
                            detail=f"{type(exc).__name__}: {exc}"[:200]) from None

    # -- calls ----------------------------------------------------------------------
    def renewing(self, send):
        """``send()``, and once more after the declared auth strategy renewed the credentials
        when the package refused them (:class:`AuthError`). A refused renewal
        (:class:`RenewalRefused`) and a second refusal stand. Every transport uses this: HTTP
        calls through :meth:`request`, SOAP and session calls directly."""
        try:
            return send()
        except RenewalRefused:
            raise  # the renewal itself was refused: a second one cannot help
        except AuthError:
            if not self.spec.auth.renew(self):
                raise
        return send()

    def request(self, method, url, *, headers=None, **kwargs):
        """One HTTP call signed by the declared auth strategy (:attr:`ConnectorSpec.auth`), renewed
        once after a refusal (:meth:`renewing`). Other keyword arguments go to
        :meth:`connectors.http.HttpClient.request`.
        """
        return self.renewing(lambda: self.http.request(method, url, headers=headers,
                                                       auth=self.spec.auth.requests_auth(self), **kwargs))

    def get_json(self, url, **kwargs):
        """GET ``url`` with :meth:`request` and decode its JSON (amounts as :class:`Decimal`); an
        unreadable body is asked for once more before it is a data error (a cut answer heals)."""
        return self.http.read_json(lambda: self.request("GET", url, **kwargs))

    # -- assumptions (undocumented packages) ---------------------------------------
    @classmethod
    def assumed(cls, name):
        """The value of the declared assumption ``name`` (:attr:`ConnectorSpec.assumptions`).

        A package built from public information reads every vendor shape through this, so the
        vendor's documentation corrects it in one place (``assumptions.py``)."""
        try:
            return cls.spec.assumptions[name].value
        except KeyError:
            raise ConfigError(f"{cls.spec.display_name} declares no assumption called {name!r}.") from None

    def expect_fields(self, row, fields, what):
        """``row`` (a decoded JSON object) with every name of ``fields``; otherwise the run fails
        with a :class:`DataError` naming the first missing field (and the fields the vendor did
        send), so nothing is written and the diagnostic shows the real shape.

        :param fields: the field names the package's assumptions expect.
        :param what: the object in the user's words ("GL account", "book year").
        """
        if not isinstance(row, dict):
            raise unexpected_shape(self.spec.display_name, what, None,
                                   f"a {type(row).__name__} instead of an object")
        missing = [name for name in fields if name not in row]
        if missing:
            raise unexpected_shape(self.spec.display_name, what, missing[0],
                                   f"fields sent: {', '.join(sorted(map(str, row))[:20]) or 'none'}")
        return row

    def expect_list(self, value, what, key=None):
        """``value`` (or ``value[key]``) when it is a JSON list, else an unexpected-shape
        :class:`DataError` naming ``key`` (or the shape that came instead)."""
        if key is not None:
            if not isinstance(value, dict) or key not in value:
                raise unexpected_shape(self.spec.display_name, what, key, "the answer has no such field")
            value = value[key]
        if not isinstance(value, list):
            raise unexpected_shape(self.spec.display_name, what, key,
                                   f"a {type(value).__name__} instead of a list")
        return value

    # -- hooks (optional) -----------------------------------------------------------
    @staticmethod
    def error_message(response) -> str | None:
        """Turn the package's error body into a sentence for an accountant (None: nothing useful)."""
        return None

    def interpret_response(self, response) -> ConnectorError | None:
        """Classify an answer before the kit's status table: an error hidden in a 200, a SOAP
        fault sent as HTTP 500... Answer the typed error, or None to let the table decide."""
        return None

    @classmethod
    def oauth_endpoints(cls, config) -> OAuth2Code:
        """The OAuth2 endpoints for a connection's ``config``: the spec's, with paths joined to
        the connection's base URL. Override where they depend on the config (a regional host)."""
        return cls.spec.auth.joined_to(config.get(cls.spec.base_url_setting))

    @classmethod
    def budgets_for(cls, config) -> tuple[RateBudget, ...]:
        """The budgets of a connection with ``config``: the spec's, unless the package lets a
        connection declare a larger one (a paid tier: Yuki's 5,000 or 10,000 calls a day)."""
        return cls.spec.budgets

    @classmethod
    def grant_details(cls, args) -> dict:
        """Credentials the consent callback's query adds to the grant (QuickBooks' realm id)."""
        return {}

    def login(self) -> tuple[str, float]:
        """For :class:`connectors.auth.SessionLogin`: log in; answer ``(token, lifetime seconds)``."""
        raise NotImplementedError

    def session_auth(self, token):
        """For :class:`connectors.auth.SessionLogin`: the auth object carrying ``token`` (a bearer header)."""
        from connectors.oauth import BearerAuth

        return BearerAuth(lambda: token)

    def lookup_reference(self, reference: str) -> CompanyRef:
        """For typed references: confirm ``reference`` exists and return its name."""
        raise NotImplementedError

    # -- credentials ----------------------------------------------------------------
    @cached_property
    def tokens(self):
        """The :class:`connectors.oauth.TokenManager` of this connection's OAuth grant.

        Uses the context's ``load_credentials``, ``save_credentials`` and ``lock``; without
        them it works on (and updates) ``context.credentials`` in memory.
        """
        from connectors.oauth import TokenManager

        context, strategy = self.context, self.spec.auth

        def load():
            return context.load_credentials() if context.load_credentials else context.credentials

        def save(creds):
            if context.save_credentials:
                context.save_credentials(creds)
            context.credentials = self.credentials = creds

        return TokenManager(self.oauth_endpoints(self.config), self.config.get(strategy.client_id_field),
                            self.config.get(strategy.client_secret_field), load_credentials=load,
                            save_credentials=save, lock=context.lock or contextlib.nullcontext,
                            package=self.spec.display_name)

    @cached_property
    def session(self):
        """The :class:`connectors.oauth.SessionLogin` cache of a session-login package."""
        from connectors.oauth import SessionLogin

        return SessionLogin(self.login, margin_seconds=self.spec.auth.margin_seconds)

    @property
    def base_url(self):
        return (self.config.get(self.spec.base_url_setting) or "").rstrip("/")


#: the message of an answer the package's assumptions do not cover (:func:`unexpected_shape`)
UNEXPECTED_FIELD = ("{package} sent {what} without the field “{field}” Firmsync expects; nothing was written. "
                    "This package is built from public information: download the diagnostic from the "
                    "connection page and send it to support or to {package}.")
UNEXPECTED_SHAPE = ("{package} sent {what} in a shape Firmsync does not expect ({shape}); nothing was written. "
                    "This package is built from public information: download the diagnostic from the "
                    "connection page and send it to support or to {package}.")


def unexpected_shape(package, what, field_name, detail="") -> DataError:
    """The :class:`DataError` of an answer an undocumented package's assumptions do not cover,
    naming the missing field (or, with ``field_name`` None, the shape that came instead)."""
    if field_name is not None:
        message = UNEXPECTED_FIELD.format(package=package, what=_with_article(what), field=field_name)
    else:
        message = UNEXPECTED_SHAPE.format(package=package, what=_with_article(what), shape=detail)
    return DataError(message, detail=f"unexpected shape: {what}: {detail}"[:200])


def _with_article(what):
    return what if what.split(" ")[0] in ("a", "an", "the") else ("an " if what[:1] in "aeiouAEIOU" else "a ") + what
