"""The connector contract (ARCHITECTURE section 5).

A connector is a subclass of :class:`Connector` with a class attribute :attr:`Connector.spec`
(:class:`ConnectorSpec`) and methods that talk to one package's API:

* :meth:`Connector.check` tests the credentials and answers a :class:`CheckResult`;
* :meth:`Connector.list_references` lists the companies a dossier can be linked to;
* :meth:`Connector.streams` names the streams it offers, and :meth:`Connector.read`
  yields canonical records for one stream, starting from a bookmark.

A connector instance is built per use with a :class:`ConnectorContext`: the
connection's non-secret ``config``, its decrypted ``credentials``, the link's
``reference`` and ``options``, and the HTTP session (rate limited, counting calls) the
engine hands it. It must not import Flask or the app's models, so it can be run and
tested alone.

Errors: connectors raise only the typed errors below. Their ``message`` is written for an
accountant ("Exact Online says the user who set up this connection is blocked...") and
never contains a secret.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Iterator

from connectors.errors import (  # noqa: F401 - the contract's errors, importable from here too
    AuthError, ConfigError, ConnectorError, DataError, NotFoundError, PermissionError, RateLimited, TransientError,
)

# --------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------

ACCOUNTING = "accounting"
ADMINISTRATION = "administration"
FIRM = "firm"
DOSSIER = "dossier"

AUTH_OAUTH2 = "oauth2_authorization_code"
AUTH_API_KEY = "api_key"
AUTH_BASIC = "basic"
AUTH_ACCESS_KEY = "access_key"
AUTH_TOKEN_EXCHANGE = "token_exchange"
AUTH_SESSION = "session"
AUTH_NONE = "none"


@dataclass(frozen=True)
class RateBudget:
    """An API budget, enforced by :mod:`connectors.rate_limit` in Redis.

    ``per`` says what the budget is counted for: ``"tenant"`` (the link's reference,
    e.g. a Xero organisation or Exact division), ``"connection"`` (one credential),
    ``"key"`` (an API key shared by connections) or ``"ip"`` (this server).
    ``window_seconds`` lets a budget use a window other than the minute (Companies
    House: 600 per 300 s).
    """

    per_minute: int | None = None
    per_day: int | None = None
    concurrency: int | None = None
    per: str = "tenant"
    window_seconds: int = 60


@dataclass(frozen=True)
class OAuthSpec:
    """OAuth2 authorization-code endpoints of a package."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    #: the package returns a new refresh token on each refresh (persist it every time)
    rotating_refresh_token: bool = False
    #: the access token lifetime the package documents, in seconds
    access_token_seconds: int | None = None
    #: do not refresh before the token is about to expire (Exact rejects early refreshes)
    refresh_margin_seconds: int = 60
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    #: how the client authenticates at the token endpoint: client_secret_basic | client_secret_post
    token_auth_method: str = "client_secret_basic"


@dataclass(frozen=True)
class ConnectorSpec:
    """What a connector declares about its package.

    ``config_schema`` is a marshmallow schema class describing the connection form;
    fields with ``metadata={"secret": True}`` are stored encrypted, write-only in the
    console, and scrubbed from messages. ``base_url_setting`` names the config field
    holding the base URL (so tests and the sandbox can redirect the connector).
    """

    key: str
    display_name: str
    kind: str  # ACCOUNTING | ADMINISTRATION
    level: str  # FIRM | DOSSIER
    auth: str
    config_schema: Any
    api_version: str
    docs_url: str
    rate_budget: RateBudget = RateBudget()
    #: every budget a call counts against, when the package has several at once (Xero: per
    #: organisation AND per app); when declared, ``rate_budget`` is its first entry
    rate_budgets: tuple[RateBudget, ...] = ()
    oauth: OAuthSpec | None = None
    #: what the reference is called in the user's words ("division", "organisation"...)
    reference_label: str = "company"
    #: the user types the reference (Companies House) instead of picking it from a list
    reference_typed: bool = False
    base_url_setting: str = "base_url"
    #: True where the vendor documents nothing publicly and the module is built on best public facts
    undocumented: bool = False

    def __post_init__(self):
        if self.rate_budgets:
            object.__setattr__(self, "rate_budgets", tuple(self.rate_budgets))
            object.__setattr__(self, "rate_budget", self.rate_budgets[0])

    @property
    def budgets(self) -> tuple[RateBudget, ...]:
        """Every budget one API call counts against (``rate_budgets``, else ``(rate_budget,)``)."""
        return self.rate_budgets or (self.rate_budget,)


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
    """A ledger line deleted in the package (from a delete feed)."""

    source_id: str


@dataclass(frozen=True)
class OpeningBalanceRecord:
    account: str
    date: date
    amount: Decimal


@dataclass(frozen=True)
class CompanyProfileRecord:
    name: str
    registration_number: str | None = None
    vat_number: str | None = None
    legal_form: str | None = None
    status: str | None = None
    address: dict = field(default_factory=dict)
    incorporation_date: date | None = None
    fiscal_year_end: str | None = None  # "MM-DD"
    officers: tuple = ()  # ({"name", "role", "start", "end"}, ...)
    shareholders: tuple = ()  # ({"name", "share"}, ...)
    extra: dict = field(default_factory=dict)

    def as_dict(self):
        data = dataclasses.asdict(self)
        data["officers"] = list(self.officers)
        data["shareholders"] = list(self.shareholders)
        if self.incorporation_date:
            data["incorporation_date"] = self.incorporation_date.isoformat()
        return data


@dataclass
class StreamDef:
    """A stream a connector offers.

    ``record_type`` is the canonical record class it yields; ``incremental`` streams take a
    bookmark and report a new one through :meth:`StreamState.advance`.
    """

    name: str
    record_type: type
    incremental: bool = False
    primary_key: str | None = None


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
    """Base class of every connector module. See the module docstring for the contract."""

    spec: ClassVar[ConnectorSpec]

    def __init__(self, context: ConnectorContext):
        self.context = context
        self.config = context.config
        self.credentials = context.credentials
        self.reference = context.reference
        self.options = context.options or {}
        self.http = context.http
        if self.http is not None and getattr(self.http, "error_message", None) is None:
            self.http.error_message = self.error_message

    # -- required -------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Test the connection; answer a human message (raise AuthError for bad credentials)."""
        raise NotImplementedError

    def list_references(self) -> list[CompanyRef]:
        """The companies this connection can reach (the dossier's sync reference)."""
        raise NotImplementedError

    def streams(self) -> list[StreamDef]:
        """The streams this connector offers, in the order the engine should read them."""
        raise NotImplementedError

    def read(self, stream: str, state: StreamState, window: SyncWindow) -> Iterator[Any]:
        """Yield canonical records of ``stream`` for :attr:`reference`, from ``state.bookmark``."""
        raise NotImplementedError

    # -- optional -------------------------------------------------------------------
    @staticmethod
    def error_message(response) -> str | None:
        """Turn the package's error body into a sentence for an accountant (None: nothing useful)."""
        return None

    def token_manager(self, client_id, client_secret):
        """A :class:`connectors.oauth.TokenManager` for this connection's OAuth grant.

        Uses the context's ``load_credentials``, ``save_credentials`` and ``lock``; without
        them it works on (and updates) ``context.credentials`` in memory.
        """
        import contextlib

        from connectors.oauth import TokenManager

        context = self.context

        def load():
            return context.load_credentials() if context.load_credentials else context.credentials

        def save(creds):
            if context.save_credentials:
                context.save_credentials(creds)
            context.credentials = self.credentials = creds

        return TokenManager(self.spec, client_id, client_secret, load_credentials=load, save_credentials=save,
                            lock=context.lock or contextlib.nullcontext, base_url=self.base_url)

    def lookup_reference(self, reference: str) -> CompanyRef:
        """For typed references: confirm ``reference`` exists and return its name."""
        raise NotImplementedError

    @property
    def base_url(self):
        return (self.config.get(self.spec.base_url_setting) or "").rstrip("/")
