"""The typed errors connectors raise (ARCHITECTURE section 5).

Every error carries a ``message`` written for an accountant ("Exact Online says the user
who set up this connection is blocked...") that never contains a secret, and an optional
``detail`` for the logs. The engine decides from the class alone: :class:`AuthError` asks
for a reconnect and is never retried, :class:`RateLimited` defers, :class:`TransientError`
is retried with a capped backoff, the others fail the run with nothing written.
"""
from __future__ import annotations



class ConnectorError(Exception):
    """Base of the typed errors. ``message`` is for an accountant; no secrets."""

    category = "error"
    retry = False

    def __init__(self, message, *, detail=None):
        super().__init__(message)
        self.message = message
        #: technical detail for logs (already scrubbed), never shown as the main message
        self.detail = detail


class AuthError(ConnectorError):
    """The grant or credentials no longer work: an administrator must reconnect."""

    category = "auth"


class RenewalRefused(AuthError):
    """Renewing the credentials failed (a refresh token refused or missing): renewing again
    cannot help, so :meth:`connectors.base.Connector.request` never retries it."""


class PermissionError(ConnectorError):  # noqa: A001 - the contract's name
    """The credentials work but may not read this company or resource."""

    category = "permission"


class NotFoundError(ConnectorError):
    """The reference (company, division...) no longer exists or is no longer shared."""

    category = "not_found"


class RateLimited(ConnectorError):
    """The package asked us to slow down; retry after ``retry_after`` seconds."""

    category = "rate_limited"
    retry = True

    def __init__(self, message, *, retry_after=60.0, daily=False, detail=None, own_budget=False):
        super().__init__(message, detail=detail)
        self.retry_after = float(retry_after)
        #: the day's budget is spent (defer until it resets)
        self.daily = daily
        #: raised by Firmsync's own client-side budget before the call was made (its turn in
        #: the budget), not by the package's answer
        self.own_budget = own_budget


class TransientError(ConnectorError):
    """5xx, timeouts, connection resets: retried with capped backoff."""

    category = "transient"
    retry = True


class DataError(ConnectorError):
    """The payload does not make sense: the run fails and nothing is written."""

    category = "data"


class ConfigError(ConnectorError):
    """The connection's configuration is incomplete or invalid."""

    category = "config"
