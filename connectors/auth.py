"""Auth strategies: how a package authenticates, declared as :attr:`ConnectorSpec.auth`.

A connector never writes its own auth plumbing: it declares one strategy, and the kit

* signs every call (:meth:`AuthStrategy.requests_auth`, used by :meth:`Connector.request`);
* renews once after a refusal (:meth:`AuthStrategy.renew`: an OAuth refresh, a new session
  login) and retries the call, so a token revoked early costs one retry, not a failed sync;
* runs the consent step of the packages whose credentials come from a page in the user's
  browser (:attr:`AuthStrategy.consent`): :meth:`AuthStrategy.consent_url` sends the user
  there, :meth:`AuthStrategy.callback` turns the callback's query into credentials.

The strategies:

* :class:`OAuth2Code`: OAuth2 authorisation code, PKCE and rotating refresh tokens (Xero,
  QuickBooks, Exact Online, Sage...);
* :class:`AgreementGrant`: an installation page hands back a grant token (e-conomic);
* :class:`ApiKey`: a key in a header; :class:`Basic`: HTTP basic auth;
* :class:`SessionLogin`: a login call gives a short-lived session token (Yuki, Octopus);
  :class:`TokenExchange`: a long-lived token is exchanged for a short-lived one (Winbooks);
* :class:`NoAuth`.

Strategies read the connection's config and credentials through the connector; they hold
no state themselves (a spec is shared by every connection of a package).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from requests.auth import HTTPBasicAuth

from connectors.errors import AuthError, ConfigError
from connectors.oauth import BearerAuth, HeaderAuth, authorization_url, exchange_code

OAUTH2 = "oauth2_authorization_code"
AGREEMENT_GRANT = "agreement_grant"
API_KEY = "api_key"
BASIC = "basic"
SESSION = "session"
TOKEN_EXCHANGE = "token_exchange"
NONE = "none"


class AuthStrategy:
    """Base of the strategies. ``kind`` names it; ``consent`` says whether a browser consent
    step gives the credentials (the console then offers "Connect" instead of a key form)."""

    kind: ClassVar[str] = NONE
    consent: ClassVar[bool] = False
    #: the consent step uses PKCE (the flow keeps a code verifier)
    pkce: bool = False

    def requests_auth(self, connector):
        """The :mod:`requests` auth object signing ``connector``'s calls (None: unsigned)."""
        return None

    def renew(self, connector) -> bool:
        """After the package refused the credentials: renew them if this strategy can (True),
        else False and the refusal stands (:class:`AuthError`: reconnect)."""
        return False

    def consent_url(self, connector_class, config, redirect_uri, state, verifier=None) -> str:
        """The package's consent page for a new grant (strategies with ``consent`` only)."""
        raise NotImplementedError(f"{self.kind} has no consent step")

    def callback(self, connector_class, config, args, redirect_uri, verifier=None) -> dict:
        """The credentials from the consent callback's query ``args`` (AuthError when refused)."""
        raise NotImplementedError(f"{self.kind} has no consent step")


@dataclass(frozen=True)
class OAuth2Code(AuthStrategy):
    """OAuth2 authorisation code grant. Endpoints given as paths ("/oauth/token") are joined to
    the connection's base URL; a connector whose endpoints depend on its config (a regional
    host, the sandbox) overrides :meth:`connectors.base.Connector.oauth_endpoints`.

    Access tokens are refreshed by :class:`connectors.oauth.TokenManager` under the
    per-connection lock; a rotated refresh token is saved before it is used.
    """

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
    #: the config fields holding the app's client id and secret
    client_id_field: str = "client_id"
    client_secret_field: str = "client_secret"

    kind: ClassVar[str] = OAUTH2
    consent: ClassVar[bool] = True

    def requests_auth(self, connector):
        return BearerAuth(connector.tokens)

    def renew(self, connector):
        connector.tokens.access_token(force_refresh=True)
        return True

    def consent_url(self, connector_class, config, redirect_uri, state, verifier=None):
        endpoints = connector_class.oauth_endpoints(config)
        return authorization_url(endpoints, config.get(self.client_id_field), redirect_uri, state, verifier)

    def callback(self, connector_class, config, args, redirect_uri, verifier=None):
        if args.get("error"):
            raise AuthError(f"{connector_class.spec.display_name} did not grant access "
                            f"({str(args.get('error'))[:60]}). Please connect again.")
        grant = exchange_code(connector_class.oauth_endpoints(config), config.get(self.client_id_field),
                              config.get(self.client_secret_field), args.get("code", ""), redirect_uri, verifier,
                              package=connector_class.spec.display_name)
        return {**grant, **connector_class.grant_details(args)}

    def joined_to(self, base_url):
        """These endpoints with paths joined to ``base_url`` (absolute URLs stay as they are)."""
        if not base_url:
            return self
        joined = {name: base_url.rstrip("/") + getattr(self, name)
                  for name in ("authorize_url", "token_url") if getattr(self, name).startswith("/")}
        return dataclasses.replace(self, **joined)


@dataclass(frozen=True)
class AgreementGrant(AuthStrategy):
    """An installation page hands back a long-lived grant token (e-conomic's agreement grant).

    The app's public id goes to the page with the callback URL (which carries ``state``,
    since such pages have no state parameter of their own); the callback's ``token_param``
    becomes the credential ``credential``. Calls send the app's secret and the grant in the
    ``headers`` named: ``(header, config or credential field)``.
    """

    consent_page: str
    headers: tuple[tuple[str, str], ...]
    app_id_field: str = "app_public_id"
    consent_page_field: str = "consent_url"
    token_param: str = "token"
    credential: str = "agreement_grant_token"

    kind: ClassVar[str] = AGREEMENT_GRANT
    consent: ClassVar[bool] = True

    def requests_auth(self, connector):
        values = {**connector.config, **connector.credentials}
        missing = [field for _, field in self.headers if not values.get(field)]
        if missing:
            raise ConfigError(f"The {connector.spec.display_name} connection lacks {', '.join(missing)}.")
        return HeaderAuth({header: str(values[field]) for header, field in self.headers})

    def consent_url(self, connector_class, config, redirect_uri, state, verifier=None):
        public = (config or {}).get(self.app_id_field)
        if not public:
            raise ConfigError(f"The {connector_class.spec.display_name} connection has no app public token.")
        parts = urlsplit(redirect_uri)
        redirect = urlunsplit((parts.scheme, parts.netloc, parts.path,
                               urlencode(parse_qsl(parts.query) + [("state", state)]), ""))
        page = config.get(self.consent_page_field) or self.consent_page
        return f"{page}?{urlencode({'appPublicToken': public, 'redirectUrl': redirect})}"

    def callback(self, connector_class, config, args, redirect_uri, verifier=None):
        token = str((args or {}).get(self.token_param) or "").strip()
        if not token:
            raise AuthError(f"{connector_class.spec.display_name} did not grant Firmsync access. Please connect "
                            "again and accept on the package's page.")
        return {self.credential: token}


@dataclass(frozen=True)
class ApiKey(AuthStrategy):
    """An API key from config field ``field`` sent in ``header`` (with an optional ``prefix``)."""

    header: str = "X-Api-Key"
    field: str = "api_key"
    prefix: str = ""

    kind: ClassVar[str] = API_KEY

    def requests_auth(self, connector):
        key = connector.config.get(self.field) or connector.credentials.get(self.field)
        if not key:
            raise ConfigError(f"The {connector.spec.display_name} connection has no {self.field.replace('_', ' ')}.")
        return HeaderAuth({self.header: f"{self.prefix}{key}"})


@dataclass(frozen=True)
class Basic(AuthStrategy):
    """HTTP basic auth from config fields (``password_field`` None: an empty password, as
    Companies House takes its API key as the user name)."""

    username_field: str = "username"
    password_field: str | None = "password"

    kind: ClassVar[str] = BASIC

    def requests_auth(self, connector):
        values = {**connector.config, **connector.credentials}
        username = values.get(self.username_field)
        if not username:
            raise ConfigError(f"The {connector.spec.display_name} connection has no "
                              f"{self.username_field.replace('_', ' ')}.")
        return HTTPBasicAuth(str(username), str(values.get(self.password_field) or "") if self.password_field else "")


@dataclass(frozen=True)
class SessionLogin(AuthStrategy):
    """A login call gives a short-lived session token; the connector implements
    :meth:`connectors.base.Connector.login` (``-> (token, lifetime seconds)``) and, for HTTP
    packages, :meth:`connectors.base.Connector.session_auth` (default: a bearer header). The
    token is kept per connector instance and renewed by logging in again."""

    #: log in again this many seconds before the session's end
    margin_seconds: int = 30

    kind: ClassVar[str] = SESSION

    def requests_auth(self, connector):
        return connector.session_auth(connector.session.token())

    def renew(self, connector):
        connector.session.invalidate()
        connector.session.token()
        return True


@dataclass(frozen=True)
class TokenExchange(SessionLogin):
    """A long-lived token is exchanged for a short-lived one (the connector's ``login`` does the
    exchange); otherwise as :class:`SessionLogin`."""

    kind: ClassVar[str] = TOKEN_EXCHANGE


@dataclass(frozen=True)
class NoAuth(AuthStrategy):
    """Unsigned calls (public registers)."""

    kind: ClassVar[str] = NONE
