"""Authentication helpers: OAuth2 authorization code (with PKCE and rotating refresh
tokens), API key headers, basic auth and session logins.

OAuth credentials are a plain dict: ``access_token``, ``refresh_token``, ``expires_at``
(UNIX seconds) and whatever else the token endpoint returned (``token_type``, ``scope``...).

:class:`TokenManager` is the only place that refreshes a token. It refreshes under the
per-connection lock, re-reads the stored credentials inside the lock (another worker may
have refreshed already), and saves a rotated refresh token *before* it hands out the new
access token: a rotating grant works only once, so losing the new refresh token would
lose the connection.
"""
from __future__ import annotations

import contextlib
import dataclasses
import secrets as _secrets
import threading
import time

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from requests.auth import AuthBase, HTTPBasicAuth

from connectors.errors import AuthError, RenewalRefused, TransientError
from connectors.scrubbing import scrub_text

#: (connect, read) seconds for token endpoint calls
TOKEN_TIMEOUT = (10, 30)


def new_code_verifier():
    """A fresh PKCE code verifier (RFC 7636: 43 to 128 characters)."""
    return _secrets.token_urlsafe(64)[:96]


def _session(oauth, client_id, client_secret=None, redirect_uri=None):
    return OAuth2Session(
        client_id, client_secret, scope=" ".join(oauth.scopes) or None, redirect_uri=redirect_uri,
        code_challenge_method="S256" if oauth.pkce else None,
        token_endpoint_auth_method=oauth.token_auth_method,
    )


def _oauth_spec(spec, base_url=None):
    """The OAuth endpoints (:class:`connectors.auth.OAuth2Code`) of ``spec``, with paths ("/oauth/token") joined to ``base_url``."""
    oauth = getattr(spec, "oauth", None) or spec
    if base_url:
        joined = {name: base_url.rstrip("/") + getattr(oauth, name)
                  for name in ("authorize_url", "token_url") if getattr(oauth, name).startswith("/")}
        oauth = dataclasses.replace(oauth, **joined)
    return oauth


def authorization_url(spec, client_id, redirect_uri, state, code_verifier=None, *, base_url=None):
    """The URL of the package's consent page (PKCE S256 when ``spec.oauth.pkce``).

    ``spec`` is a :class:`connectors.base.ConnectorSpec` or its :class:`connectors.auth.OAuth2Code`.
    Endpoints given as paths are joined to ``base_url`` (the connection's configured base
    URL: the sandbox). The caller keeps ``state`` and ``code_verifier`` in the user's session.
    """
    oauth = _oauth_spec(spec, base_url)
    session = _session(oauth, client_id, redirect_uri=redirect_uri)
    url, _ = session.create_authorization_url(
        oauth.authorize_url, state=state, code_verifier=code_verifier if oauth.pkce else None,
        **dict(oauth.extra_authorize_params),
    )
    return url


def _with_expiry(token, now):
    creds = {k: v for k, v in dict(token).items() if v is not None}
    if creds.get("expires_in"):  # on our clock (Authlib would use the wall clock)
        creds["expires_at"] = int(now) + int(creds["expires_in"])
    if "expires_at" in creds:
        creds["expires_at"] = int(creds["expires_at"])
    creds.pop("expires_in", None)
    return creds


def exchange_code(spec, client_id, client_secret, code, redirect_uri, code_verifier=None, *, base_url=None,
                  clock=time.time, package=None):
    """Trade the authorization ``code`` for credentials (a dict, see the module docstring).

    Raises :class:`AuthError` when the package refuses the code.
    """
    oauth = _oauth_spec(spec, base_url)
    package = package or getattr(spec, "display_name", "The package")
    session = _session(oauth, client_id, client_secret, redirect_uri=redirect_uri)
    try:
        token = session.fetch_token(
            oauth.token_url, grant_type="authorization_code", code=code, redirect_uri=redirect_uri,
            code_verifier=code_verifier if oauth.pkce else None, timeout=TOKEN_TIMEOUT,
        )
    except OAuthError as exc:
        raise AuthError(f"{package} did not accept the authorization. Please connect again.",
                        detail=scrub_text(f"{exc.error}: {exc.description}", [code, client_secret])) from None
    except requests.RequestException as exc:
        raise TransientError(f"Firmsync could not reach {package} to finish the connection. Please try again.",
                             detail=scrub_text(type(exc).__name__)) from None
    return _with_expiry(token, clock())


class TokenManager:
    """Hands out a valid access token for one OAuth connection, refreshing when needed.

    :param spec: the :class:`connectors.base.ConnectorSpec` (its ``oauth`` part is used).
    :param client_id: the app's client id; ``client_secret`` its secret.
    :param load_credentials: ``() -> dict``: the *committed* credentials, re-read whenever the
        access token in hand is about to expire or was refused (not on every call: a page
        fetch must not cost a database read and a decryption).
    :param save_credentials: ``(dict) -> None``: persist new credentials in the caller's own
        committed transaction before returning.
    :param lock: ``() -> context manager`` held around a refresh (one per connection; the
        engine passes a Redis lock, see :func:`redis_lock`).
    :param clock: ``() -> UNIX seconds``.
    :param base_url: joined to endpoint paths of the spec (see :func:`authorization_url`).
    """

    def __init__(self, spec, client_id, client_secret, *, load_credentials, save_credentials,
                 lock=contextlib.nullcontext, clock=time.time, package=None, base_url=None):
        self.oauth = _oauth_spec(spec, base_url)
        self.package = package or getattr(spec, "display_name", "The package")
        self.client_id = client_id
        self.client_secret = client_secret
        self.load_credentials = load_credentials
        self.save_credentials = save_credentials
        self.lock = lock
        self.clock = clock
        #: refreshes this manager made (for tests and run statistics)
        self.refreshes = 0
        #: the credentials read last, reused while their access token stays fresh
        self._in_hand = None

    def _fresh(self, creds):
        if not creds or not creds.get("access_token"):
            return False
        expires_at = creds.get("expires_at")
        if expires_at is None:
            return True
        return float(expires_at) - self.clock() >= self.oauth.refresh_margin_seconds

    def access_token(self, *, force_refresh=False) -> str:
        """A valid access token; refreshes (under the lock) only when it is about to expire.

        ``force_refresh`` refreshes even a token that looks valid (after a 401), unless
        another worker already replaced it.
        """
        if not force_refresh and self._fresh(self._in_hand):
            return self._in_hand["access_token"]
        in_hand, self._in_hand = (self._in_hand or {}).get("access_token"), None
        creds = self.load_credentials() or {}
        if self._fresh(creds) and not force_refresh:
            self._in_hand = creds
            return creds["access_token"]
        stale_access = in_hand or creds.get("access_token")  # the token the package refused
        with self.lock():
            creds = self.load_credentials() or {}
            if self._fresh(creds) and (not force_refresh or creds.get("access_token") != stale_access):
                return creds["access_token"]
            return self._refresh(creds)

    def _refresh(self, creds):
        refresh_token = creds.get("refresh_token")
        if not refresh_token:
            raise self._expired("no refresh token stored")
        try:
            token = self._call_token_endpoint(refresh_token)
        except OAuthError as exc:
            if exc.error != "invalid_grant":
                raise RenewalRefused(self._expired_message(),
                                     detail=self._scrub(f"{exc.error}: {exc.description}")) from None
            # another process may have rotated the grant between our read and our call
            latest = self.load_credentials() or {}
            if latest.get("refresh_token") and latest.get("refresh_token") != refresh_token:
                if self._fresh(latest):
                    return latest["access_token"]
                try:
                    token = self._call_token_endpoint(latest["refresh_token"])
                    creds, refresh_token = latest, latest["refresh_token"]
                except OAuthError as again:
                    raise self._expired(f"{again.error}") from None
            else:
                raise self._expired("invalid_grant") from None
        new_creds = {**creds, **_with_expiry(token, self.clock())}
        if not token.get("refresh_token"):
            new_creds["refresh_token"] = refresh_token
        self.save_credentials(new_creds)
        return new_creds["access_token"]

    def _call_token_endpoint(self, refresh_token):
        session = _session(self.oauth, self.client_id, self.client_secret)
        try:
            token = session.refresh_token(self.oauth.token_url, refresh_token=refresh_token, timeout=TOKEN_TIMEOUT)
        except requests.RequestException as exc:
            raise TransientError(f"{self.package} did not answer when Firmsync renewed the connection's access. "
                                 "The sync will try again.", detail=type(exc).__name__) from None
        self.refreshes += 1
        return token

    def _expired_message(self):
        return (f"The connection to {self.package} has expired or was revoked. "
                "An administrator must reconnect it.")

    def _expired(self, detail):
        return RenewalRefused(self._expired_message(), detail=self._scrub(detail))

    def _scrub(self, text):
        creds = self.load_credentials() or {}
        return scrub_text(text, [self.client_secret, creds.get("access_token"), creds.get("refresh_token")])


def redis_lock(redis, name, *, timeout=60, blocking_timeout=30):
    """A lock factory for :class:`TokenManager`: ``redis_lock(r, f"connection:{id}")``.

    ``timeout`` frees the lock when its holder dies; ``blocking_timeout`` bounds the wait.
    """
    return lambda: redis.lock(f"firmsync:lock:{name}", timeout=timeout, blocking_timeout=blocking_timeout)


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>`` with a token from :class:`TokenManager` (or a callable)."""

    def __init__(self, token):
        self.token = token

    def __call__(self, request):
        token = self.token.access_token() if hasattr(self.token, "access_token") else self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        return request


class HeaderAuth(AuthBase):
    """Fixed headers on every request (API keys: ``HeaderAuth({"X-Api-Key": key})``)."""

    def __init__(self, headers):
        self.headers = dict(headers)

    def __call__(self, request):
        request.headers.update(self.headers)
        return request


def api_key_header(name, value):
    """An auth object sending the API key ``value`` in header ``name``."""
    return HeaderAuth({name: value})


def basic_auth(username, password):
    """HTTP basic auth."""
    return HTTPBasicAuth(username, password)


class SessionLogin:
    """Caches a session token obtained by a login call until shortly before it expires.

    ``login() -> (token, lifetime_seconds)`` performs the package's login request. Thread safe.
    """

    def __init__(self, login, *, margin_seconds=30, clock=time.time):
        self.login = login
        self.margin_seconds = margin_seconds
        self.clock = clock
        self._token = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self):
        """The cached session token, logging in again when it is missing or about to expire."""
        with self._lock:
            if self._token is None or self._expires_at - self.clock() < self.margin_seconds:
                token, lifetime = self.login()
                self._token, self._expires_at = token, self.clock() + float(lifetime)
            return self._token

    def invalidate(self):
        """Forget the session (after the package answered that it expired)."""
        with self._lock:
            self._token = None
