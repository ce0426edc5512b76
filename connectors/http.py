"""The one HTTP client every connector uses (ARCHITECTURE sections 5 and 6).

:class:`HttpClient` wraps a :class:`requests.Session` and, for every request:

* waits for the package's budgets in :class:`connectors.rate_limit.RateLimiter` (short
  waits are slept, long ones raise :class:`RateLimited` so the engine defers the run; with a
  ``park_after`` the sync parks sooner);
* answers a request from its :class:`connectors.response_journal.ResponseJournal` when it
  holds one (a parked run's resume) and records successful answers in it;
* applies timeouts (connect 10 s, read 60 s unless told otherwise);
* counts the calls it makes (:attr:`HttpClient.api_calls`);
* lets the connector (or a protocol transport: :mod:`connectors.soap`, :mod:`connectors.rpc`)
  interpret the answer first (``interpret(response) -> ConnectorError | None``: a SOAP fault
  sent as HTTP 500, an error inside a 200), then maps it to the typed errors through ONE
  table, :data:`STATUS_ERRORS`;
* retries 5xx answers, timeouts and connection errors with capped exponential backoff;
* writes messages for an accountant that name the package and never contain a secret.

Build one per connection with :func:`build_client`. :func:`vendor_error` and
:func:`match_fault` help an ``interpret`` hook turn a vendor's fault into a typed error.
"""
from __future__ import annotations

import email.utils
import hashlib
import json
import re
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlsplit

import requests

from connectors.base import (
    AuthError,
    ConfigError,
    ConnectorError,
    DataError,
    NotFoundError,
    PermissionError,
    RateLimited,
    TransientError,
)
from connectors.rate_limit import RateLimiter
from connectors.response_journal import full_url, journaled, request_key
from connectors.scrubbing import scrub_text, secret_values

#: (connect, read) seconds
DEFAULT_TIMEOUT = (10, 60)
DEFAULT_RETRY_AFTER = 60.0
RETRY = "retry"

#: status -> (error class, message for an accountant, action). ``"5xx"`` covers 500-599,
#: ``"4xx"`` every other client error. ``{package}`` is the package's display name.
STATUS_ERRORS = {
    401: (AuthError, "{package} no longer accepts the credentials of this connection. "
                     "An administrator must reconnect it.", None),
    403: (PermissionError, "{package} does not allow this connection to read this data. "
                           "Check the rights of the user who set up the connection in {package}.", None),
    404: (NotFoundError, "{package} could not find this company or record. It may have been removed "
                         "or is no longer shared with this connection.", None),
    409: (DataError, "{package} refused the request because its data is in an unexpected state.", None),
    422: (DataError, "{package} refused the request because its data is in an unexpected state.", None),
    429: (RateLimited, "{package} asked Firmsync to slow down. The sync will continue later.", RETRY),
    "5xx": (TransientError, "{package} had a problem on its side (HTTP {status}, {tries} tries). "
                            "The sync will try again.", RETRY),
    "4xx": (DataError, "{package} refused a request from Firmsync (HTTP {status}).", None),
}
TIMEOUT_MESSAGE = "{package} did not answer in time ({tries} tries). The sync will try again."
CONNECTION_MESSAGE = "Firmsync could not reach {package} ({tries} tries). The sync will try again."
BAD_JSON_MESSAGE = "{package} sent an answer Firmsync could not read."
#: an answer cut off or undecodable twice in a row (the first one is asked for again)
CUT_MESSAGE = "{package} sent an incomplete answer twice in a row (the connection was cut)."
#: a body that arrives cut or undecodable: asked for once more before it is a data error
CUT_ANSWER = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
WAIT_MESSAGE = "The {package} API budget for this connection is used up for now. The sync will continue later."
DAILY_MESSAGE = "The daily {package} API budget for this connection is used up. The sync will continue tomorrow."
#: a spent endpoint budget (:attr:`connectors.base.RateBudget.path`)
ENDPOINT_MESSAGE = ("{package} allows Firmsync to {what} {allowance} times a day, and they are used up. "
                    "The next one is possible at {when}; the sync will continue then.")

#: error class -> message for an accountant, for an error a vendor reports in its body (a SOAP
#: fault, an XML-RPC fault, a JSON-RPC error) rather than with an HTTP status; see :func:`vendor_error`
FAULT_MESSAGES = {
    AuthError: STATUS_ERRORS[401][1],
    PermissionError: STATUS_ERRORS[403][1],
    NotFoundError: STATUS_ERRORS[404][1],
    RateLimited: STATUS_ERRORS[429][1],
    TransientError: "{package} had a problem on its side. The sync will try again.",
    ConfigError: "{package} refused the settings of this connection. An administrator must check them.",
    DataError: "{package} refused a request from Firmsync.",
}
#: longest vendor sentence quoted in a message (tracebacks and long bodies are cut)
VENDOR_TEXT_LIMIT = 300


def status_rule(status):
    """The :data:`STATUS_ERRORS` entry for an HTTP status (None for success)."""
    if status < 400:
        return None
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    return STATUS_ERRORS["5xx"] if status >= 500 else STATUS_ERRORS["4xx"]


def parse_retry_after(value, default=DEFAULT_RETRY_AFTER, now=None):
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); ``default`` when absent."""
    if value is None or str(value).strip() == "":
        return float(default)
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return float(default)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


#: request headers a redirect to another host keeps; every other one may carry a credential
#: (an API key, a tenant or business id, a session token) and is dropped
REDIRECT_SAFE_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "user-agent", "connection",
                                   "content-type", "content-length"})


class VendorSession(requests.Session):
    """A requests session that, when a vendor redirects to another host, drops every header
    but :data:`REDIRECT_SAFE_HEADERS` (requests itself drops only ``Authorization``), and
    reads the environment's proxy and CA settings once per scheme and host (requests reads
    them on every request: about 1 ms each, a tenth of a journal page's cost)."""

    def __init__(self):
        super().__init__()
        self._environment_settings = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        if key not in self._environment_settings:
            self._environment_settings[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings = self._environment_settings[key]
        return {**settings, "proxies": dict(settings["proxies"])}

    def rebuild_auth(self, prepared_request, response):
        if urlsplit(response.request.url).hostname != urlsplit(prepared_request.url).hostname:
            for name in list(prepared_request.headers):
                if name.lower() not in REDIRECT_SAFE_HEADERS:
                    del prepared_request.headers[name]
        super().rebuild_auth(prepared_request, response)


def shape_of(value, depth=0, *, max_depth=6, max_keys=60):
    """The shape of a decoded JSON value: keys and types only, never a value.

    An object becomes ``{key: shape}`` (at most ``max_keys`` keys, then ``"…": "more keys"``),
    a list ``[shape of its first item]`` (``[]`` when empty), a scalar its JSON type name
    (``"string"``, ``"number"``, ``"boolean"``, ``"null"``). Deeper than ``max_depth``: ``"…"``.
    """
    if isinstance(value, dict):
        if depth >= max_depth:
            return "object"
        shape = {}
        for index, key in enumerate(value):
            if index >= max_keys:
                shape["…"] = "more keys"
                break
            shape[str(key)[:80]] = shape_of(value[key], depth + 1, max_depth=max_depth, max_keys=max_keys)
        return shape
    if isinstance(value, list):
        if depth >= max_depth:
            return "list"
        return [shape_of(value[0], depth + 1, max_depth=max_depth, max_keys=max_keys)] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if value is None:
        return "null"
    return "string"


class ShapeRecorder:
    """A bounded record of a connection's requests for a support ticket: method, URL path (no
    query string, no host), status, the names of the response headers and the shape of a JSON
    body (:func:`shape_of`: keys and types only). It never keeps a value, a header value, a
    query string or a request body, so it holds no secret and no figure.

    Set on :attr:`HttpClient.recorder`; keeps the first ``limit`` requests and counts the rest
    in :attr:`dropped`. A body that is not JSON is recorded as its content type and size.
    """

    def __init__(self, limit=200):
        self.limit = limit
        self.entries = []
        self.dropped = 0

    def record(self, method, url, response):
        """Note one answer (called by :class:`HttpClient` for every response it receives)."""
        if len(self.entries) >= self.limit:
            self.dropped += 1
            return
        entry = {"method": str(method).upper(), "path": urlsplit(str(url)).path,
                 "status": int(response.status_code),
                 "headers": sorted({name for name in response.headers})[:40]}
        content = response.content or b""
        try:
            entry["shape"] = shape_of(json.loads(content)) if content else None
        except ValueError:
            entry["shape"] = {"content_type": (response.headers.get("Content-Type") or "").split(";")[0][:60],
                              "bytes": len(content)}
        self.entries.append(entry)

    def as_dict(self):
        """``{"requests": [...], "dropped": n}``: JSON-ready."""
        return {"requests": list(self.entries), "dropped": self.dropped}


class HttpClient:
    """A rate-limited, counting, error-mapping HTTP client for one connection.

    :param package: the package's display name, used in messages.
    :param session: a :class:`requests.Session` (a new one when omitted).
    :param limiter: a :class:`RateLimiter`, or None for no shared budget (tests, one-off checks).
    :param budget: the :class:`connectors.base.RateBudget` to count against.
    :param budget_key: ``(package key, scope value)`` under which the budget is counted.
    :param budgets: instead of ``budget``, several: ``[(scope value, RateBudget), ...]``
        all counted under ``budget_key``'s package key for every call (the first is the
        one a 429 blocks; ``budget_key`` follows it). An endpoint budget (a
        :class:`connectors.base.RateBudget` with ``path``) counts only the calls whose method
        and URL path match; when one that lasts a day is spent, the call raises
        ``RateLimited(daily=True)`` with ``retry_after``, ``resume_at`` (aware UTC) and
        ``budget`` (its name), saying when the next call is possible (:data:`ENDPOINT_MESSAGE`).
    :param secrets: values that must never appear in a message.
    :param error_message: ``error_message(response) -> str | None`` turning a vendor error
        body into a sentence (the connector's hook); appended to the standard message.
    :param interpret: ``interpret(response) -> ConnectorError | None``, run on every answer
        (any status, 200 included) BEFORE :data:`STATUS_ERRORS`. It returns a typed error
        instance (not raised) when the answer is an error the status alone does not tell: a
        SOAP authentication fault sent as HTTP 500 (an :class:`AuthError`, never retried as a
        5xx would be), an error inside a 200. The client then scrubs its message and detail
        and acts on its class: a :class:`RateLimited` is handled like a 429 (its
        ``retry_after`` blocks the shared budget; short waits are slept and the request
        retried, unless ``daily``), any other error with ``retry`` (a :class:`TransientError`)
        is retried with backoff like a 5xx, everything else is raised at once. When the
        retries are spent the returned error itself is raised. None (or the hook returning
        None) leaves the status table in charge. A hook that fails with anything but a
        :class:`ConnectorError` is ignored (the table decides), like a broken ``error_message``;
        one that raises a :class:`ConnectorError` counts as returning it.
    :param auth: a :class:`requests.auth.AuthBase` (or tuple) applied to every request.
    :param timeout: ``(connect, read)`` seconds.
    :param max_retries: retries after the first try for 5xx, timeouts, connection errors
        and short 429s; then :class:`TransientError` / :class:`RateLimited`.
    :param backoff: first backoff in seconds (doubles each retry, capped at ``backoff_cap``).
    :param max_wait: longest wait (seconds) the client sleeps for a budget or a
        ``Retry-After``; longer waits raise :class:`RateLimited` so the run is deferred.
    :param sleep: the sleep function (tests inject a fake one).
    :param journal: a :class:`connectors.response_journal.ResponseJournal` (a parked sync's
        resume): a request it holds an answer for is answered from it (no budget spent, not
        counted in :attr:`api_calls`); every successful live answer to a request that is not a
        credential exchange is recorded in it. None: every request goes to the package.
    :param park_after: with a journal, the longest budget wait (seconds) slept before the
        client **parks** instead: it raises :class:`RateLimited` (with ``parked`` set) so the
        job ends, keeps the journal and runs again when the budget allows (docs/sync-engine.md
        "Parking"). None: waits up to ``max_wait`` are slept.
    """

    def __init__(self, package, *, session=None, limiter=None, budget=None, budget_key=None, budgets=None,
                 secrets=(), error_message=None, auth=None, timeout=DEFAULT_TIMEOUT, max_retries=3, backoff=0.5,
                 backoff_cap=8.0, max_wait=5.0, sleep=time.sleep, interpret=None, journal=None, park_after=None):
        self.package = package
        self.session = session or VendorSession()
        package_key, scope = budget_key or (package, "default")
        if budgets:
            self.budgets = tuple((str(s), b) for s, b in budgets)
            scope, budget = self.budgets[0]
        else:
            self.budgets = ((str(scope), budget),) if budget is not None else ()
        self.limiter = limiter if (limiter is not None and self.budgets) else None
        self.budget = budget
        #: ``(package key, scope)`` of the first budget (the one a 429 blocks)
        self.budget_key = (package_key, scope)
        self.secrets = [s for s in secrets if s]
        self.error_message = error_message
        #: ``interpret(response) -> ConnectorError | None``, consulted before the status table
        self.interpret = interpret
        self.auth = auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.max_wait = max_wait
        self.sleep = sleep
        #: HTTP requests sent (including retries), for the SyncRun's "API calls" count
        self.api_calls = 0
        #: an optional :class:`ShapeRecorder` noting every answer's path, status and shape
        #: (set for packages built from public information; the "Download diagnostic")
        self.recorder = None
        #: the :class:`connectors.response_journal.ResponseJournal` answering and recording requests, or None
        self.journal = journal
        #: budget waits longer than this park the run (None: sleep up to ``max_wait``)
        self.park_after = park_after

    # -- public ----------------------------------------------------------------------
    def request(self, method, url, *, params=None, json=None, data=None, headers=None, auth=None,
                timeout=None, interpret=None) -> requests.Response:
        """Send one request (retrying as described) and return the successful response.

        ``interpret`` is a hook for this request only (a protocol transport passes its fault
        interpreter here rather than changing the shared client): it runs first, then the
        client's own :attr:`interpret`; the first error returned wins (see the class
        docstring for what the client does with it). Otherwise raises the typed error of
        :data:`STATUS_ERRORS` for an error status.
        """
        key = self._journal_key(method, url, params, json, data)
        if key is not None:
            replayed = self.journal.lookup(key, method, full_url(url, params))
            if replayed is not None:
                return replayed
        tries, cut = 0, False
        while True:
            tries += 1
            permit = self._wait_for_budget(method, url)
            try:
                self.api_calls += 1
                response = self.session.request(
                    method, url, params=params, json=json, data=data, headers=headers,
                    auth=auth if auth is not None else self.auth, timeout=timeout or self.timeout,
                )
            except CUT_ANSWER as exc:  # the body was cut mid-way or cannot be decoded: once more
                if not cut:
                    cut = True
                    continue
                raise DataError(self._text(CUT_MESSAGE), detail=self._detail(method, url, exc)) from None
            except requests.Timeout as exc:
                if tries <= self.max_retries:
                    self._backoff(tries)
                    continue
                raise TransientError(self._text(TIMEOUT_MESSAGE, tries=tries), detail=self._detail(method, url, exc))
            except requests.ConnectionError as exc:
                if tries <= self.max_retries:
                    self._backoff(tries)
                    continue
                raise TransientError(self._text(CONNECTION_MESSAGE, tries=tries),
                                     detail=self._detail(method, url, exc))
            finally:
                if permit is not None:
                    self.limiter.release(permit)

            if self.recorder is not None:
                try:
                    self.recorder.record(method, url, response)
                except Exception:  # noqa: BLE001 - a diagnostic never breaks a call
                    pass
            error = self._interpreted(response, interpret, method, url)
            if error is not None:
                if isinstance(error, RateLimited):
                    if self._pause_for(error.retry_after, tries, may_wait=not error.daily):
                        continue
                elif error.retry and tries <= self.max_retries:
                    self._backoff(tries)
                    continue
                raise error

            rule = status_rule(response.status_code)
            if rule is None:
                if key is not None:
                    self.journal.record(key, response)
                return response
            error_class, template, action = rule
            if error_class is RateLimited:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if self._pause_for(retry_after, tries):
                    continue
                raise RateLimited(self._message(template, response, tries), retry_after=retry_after,
                                  detail=self._detail(method, url, response.status_code))
            if action == RETRY and tries <= self.max_retries:
                self._backoff(tries)
                continue
            raise error_class(self._message(template, response, tries),
                              detail=self._detail(method, url, response.status_code))

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)

    def get_json(self, url, **kwargs):
        """GET ``url`` and decode its JSON body; a body that is not JSON (a truncated answer) is
        asked for once more, then :class:`DataError`."""
        return self._json_request("GET", url, **kwargs)

    def post_json(self, url, **kwargs):
        """POST to ``url`` and decode its JSON body (unreadable once: sent once more, as for a 5xx)."""
        return self._json_request("POST", url, **kwargs)

    def _json_request(self, method, url, **kwargs):
        return self.read_json(lambda: self.request(method, url, **kwargs))

    def read_json(self, send):
        """The decoded JSON of the response ``send()`` returns; a body that cannot be read (a
        truncated answer) is asked for once more with ``send()``, then :class:`DataError`.
        Connectors that sign their own requests pass their call here."""
        try:
            return self.json_of(send())
        except DataError as exc:
            if not getattr(exc, "unreadable", False):
                raise
        return self.json_of(send())

    def json_of(self, response):
        """The decoded JSON body of ``response``, numbers with a fraction as :class:`Decimal`
        (money never passes through a float); :class:`DataError` when it cannot be read."""
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            error = DataError(self._text(BAD_JSON_MESSAGE),
                              detail=self._detail(response.request.method, response.url,
                                                  f"{exc} (received {len(response.content or b'')} bytes)"))
            error.unreadable = True  # get_json/post_json ask once more
            raise error from None

    def scrub(self, text):
        """``text`` without this client's secrets or anything shaped like a credential."""
        return scrub_text(text, self.secrets)

    # -- internals -------------------------------------------------------------------
    def _journal_key(self, method, url, params, json, data):
        """The journal key of a request, or None without a journal or for a credential exchange."""
        if self.journal is None or not journaled(url):
            return None
        return request_key(method, url, params=params, json=json, data=data)

    def _longest_sleep(self):
        """The longest budget wait slept: ``max_wait``, or ``park_after`` when the client parks sooner."""
        if self.park_after is not None and self.park_after < self.max_wait:
            return max(0.0, float(self.park_after))
        return self.max_wait

    def _wait_for_budget(self, method=None, url=None):
        if self.limiter is None:
            return None
        path = urlsplit(str(url)).path if url is not None else None
        budgets = [(scope, budget) for scope, budget in self.budgets
                   if url is None or budget.applies_to(method, path)]
        if not budgets:
            return None
        longest = self._longest_sleep()
        while True:
            permit = self.limiter.acquire_all(self.budget_key[0], budgets)
            if permit.granted:
                return permit
            spent = self._spent_endpoint_budget(budgets) if permit.wait > self.max_wait or permit.daily else None
            if spent is not None:
                raise self._endpoint_spent(spent, permit.wait)
            if permit.wait > longest or permit.daily:
                template = DAILY_MESSAGE if permit.daily else WAIT_MESSAGE
                error = RateLimited(self._text(template), retry_after=permit.wait, daily=permit.daily,
                                    own_budget=True)
                error.parked = not permit.daily and permit.wait <= self.max_wait
                raise error
            self.sleep(permit.wait)

    def daily_usage(self):
        """``(calls counted today, calls allowed a day)`` of the first budget with a daily count
        (every worker's calls for this connection's scope), or None without one or without Redis."""
        if self.limiter is None:
            return None
        for scope, budget in self.budgets:
            if budget.per_day and not budget.path:
                try:
                    return self.limiter.usage(self.budget_key[0], scope, budget)["day"], budget.per_day
                except Exception:  # noqa: BLE001 - a figure for a message, never a new failure
                    return None
        return None

    def _spent_endpoint_budget(self, budgets):
        """The first day-long endpoint budget of ``budgets`` that is used up, as ``(scope, budget)``, or None."""
        for scope, budget in budgets:
            if not (budget.path and budget.day_long):
                continue
            usage = self.limiter.usage(self.budget_key[0], scope, budget)
            if (budget.per_day and usage["day"] >= budget.per_day) or \
                    (budget.per_minute and budget.window_seconds >= 86400 and usage["window"] >= budget.per_minute):
                return scope, budget
        return None

    def _endpoint_spent(self, spent, wait):
        """The deferral for a spent endpoint budget: ``RateLimited(daily=True)`` whose message says
        when the next call is possible; ``resume_at`` (aware UTC) and ``budget`` (its name) ride along."""
        _, budget = spent
        resume_at = datetime.now(timezone.utc) + timedelta(seconds=wait)
        allowance = budget.per_day or budget.per_minute
        what = budget.label or f"call {budget.name or 'this endpoint'}"
        error = RateLimited(self._text(ENDPOINT_MESSAGE, allowance=allowance, what=what,
                                       when=resume_at.strftime("%Y-%m-%d %H:%M UTC")),
                            retry_after=wait, daily=True, own_budget=True)
        error.resume_at = resume_at
        error.budget = budget.name
        return error

    def _interpreted(self, response, interpret, method, url):
        """The first error the per-request hook, then the client's hook, returns for
        ``response`` (scrubbed, with a detail), or None."""
        for hook in (interpret, self.interpret):
            if hook is None:
                continue
            try:
                error = hook(response)
            except ConnectorError as raised:
                error = raised
            except Exception:  # a broken hook must not hide the real answer: the table decides
                error = None
            if error is None:
                continue
            if not isinstance(error, ConnectorError):
                raise TypeError(f"interpret hooks return a ConnectorError or None, not {type(error).__name__}")
            error.message = self.scrub(error.message)
            error.args = (error.message,)
            status = response.status_code
            error.detail = self._detail(method, url, f"{status} {error.detail}" if error.detail else status)
            return error
        return None

    def _pause_for(self, retry_after, tries, may_wait=True):
        """After a "slow down" answer: block the shared budget for ``retry_after`` seconds and
        tell whether to retry (a short wait, retries left; slept here when there is no limiter,
        otherwise the budget wait does it)."""
        if self.limiter is not None:
            self.limiter.block(*self.budget_key, retry_after)
        if may_wait and retry_after <= self.max_wait and tries <= self.max_retries:
            if self.limiter is None:
                self.sleep(retry_after)
            return True
        return False

    def _backoff(self, tries):
        self.sleep(min(self.backoff_cap, self.backoff * (2 ** (tries - 1))))

    def _text(self, template, **values):
        return self.scrub(template.format(package=self.package, **values))

    def _message(self, template, response, tries):
        message = template.format(package=self.package, status=response.status_code, tries=tries)
        vendor = None
        if self.error_message is not None:
            try:
                vendor = self.error_message(response)
            except Exception:  # a broken error body must not hide the real error
                vendor = None
        if vendor:
            message = f"{message} {self.package} says: \u201c{vendor.strip()}\u201d"
        return self.scrub(message)

    def _detail(self, method, url, what):
        # the path only: query strings may carry keys
        return self.scrub(f"{method} {urlsplit(str(url)).path} -> {what}")


def vendor_error(package, error_class, said=None, *, detail=None, retry_after=None) -> ConnectorError:
    """A typed error (an instance, not raised) for an error a vendor reports in its body.

    The message is :data:`FAULT_MESSAGES`' sentence for ``error_class`` (or its nearest base
    class there) with ``package`` filled in, plus ``<package> says: "<said>"`` when the vendor
    gave a sentence: only its first line, or the last line of a traceback, cut at
    :data:`VENDOR_TEXT_LIMIT` characters. It is not scrubbed here: the :class:`HttpClient`
    scrubs what an ``interpret`` hook returns. ``retry_after`` is for :class:`RateLimited`.
    """
    template = next((FAULT_MESSAGES[cls] for cls in error_class.__mro__ if cls in FAULT_MESSAGES),
                    FAULT_MESSAGES[DataError])
    message = template.format(package=package, status="", tries=1)
    said = vendor_text(said)
    if said:
        message = f"{message} {package} says: \u201c{said}\u201d"
    if issubclass(error_class, RateLimited):
        return error_class(message, retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after,
                           detail=detail)
    return error_class(message, detail=detail)


def vendor_text(text, limit=VENDOR_TEXT_LIMIT):
    """The sentence of a vendor's error text worth showing: its first non-empty line, or the
    last one when the text is a traceback; None when there is none."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "\u2026"


def match_fault(table, codes=(), text=""):
    """The error class a connector's fault table gives a vendor fault, or None.

    ``table`` maps keys to :class:`ConnectorError` subclasses. A key matches when it equals
    one of ``codes`` compared as text (``354`` matches ``"354"``; codes are what the protocol
    calls codes: a SOAP faultcode and subcodes, an XML-RPC faultCode, a JSON-RPC error code
    or exception name); otherwise a ``str`` key matches when it occurs as a whole word,
    ignoring case, in ``text`` (the fault's sentence): ``"354"`` matches "Token invalid (code
    354)" but not "code 3541". Code matches win over text matches; within each, the table's
    order decides.
    """
    if not table:
        return None
    wanted = {str(code) for code in codes if code is not None and str(code) != ""}
    for key, error_class in table.items():
        if str(key) in wanted:
            return error_class
    for key, error_class in table.items():
        if isinstance(key, str) and key and text and \
                re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", str(text), re.IGNORECASE):
            return error_class
    return None


def secrets_for(spec, config=None, credentials=None):
    """Every secret value of a connection: secret config fields and secret-looking credential keys."""
    config, credentials = config or {}, credentials or {}
    found = secret_values(config) + secret_values(credentials)
    schema = spec.config_schema() if isinstance(spec.config_schema, type) else spec.config_schema
    for name, schema_field in getattr(schema, "fields", {}).items():
        if schema_field.metadata.get("secret") and config.get(name):
            found.append(str(config[name]))
    return sorted(set(found))


def budget_scope(spec, *, reference=None, connection_id=None, api_key=None):
    """The value a connection's budget is counted for, following ``spec.rate_budget.per``;
    for a spec with several budgets (``spec.rate_budgets``), a tuple with one value per
    budget, in the same order, all distinct. Pass it to :func:`build_client` as ``tenant``.

    An API key is hashed: secrets never end up in Redis key names.
    """
    budgets = spec_budgets(spec)
    scopes = [_scope_for(budget.per, reference=reference, connection_id=connection_id, api_key=api_key)
              for budget in budgets]
    if len(scopes) == 1:
        return scopes[0]
    return _distinct(scopes, budgets)


def spec_budgets(spec):
    """Every budget of ``spec`` (:attr:`connectors.base.ConnectorSpec.budgets`; any object
    with a ``rate_budget`` will do)."""
    return getattr(spec, "budgets", None) or (spec.rate_budget,)


def _scope_for(per, *, reference, connection_id, api_key):
    if per == "ip":
        return "server"
    if per == "key" and api_key:
        return "key-" + hashlib.sha256(str(api_key).encode()).hexdigest()[:16]
    if per == "tenant" and reference:
        return f"tenant-{reference}"
    if connection_id is not None:
        return f"connection-{connection_id}"
    return f"tenant-{reference}" if reference else "default"


def _distinct(scopes, budgets):
    """``scopes`` where an endpoint budget's scope gets its ``name`` appended (its own counters), and a
    value already used by an earlier budget gets the budget's ``per`` appended (two budgets
    counted for one scope would share, and double, their counters)."""
    seen, result = set(), []
    for scope, budget in zip(scopes, budgets):
        name = getattr(budget, "name", "")
        if name and not scope.endswith(f".{name}"):  # an endpoint budget keeps its own counters
            scope = f"{scope}.{name}"
        if scope in seen:
            scope = f"{scope}.{budget.per}"
        while scope in seen:
            scope += "+"
        seen.add(scope)
        result.append(scope)
    return tuple(result)


#: the longest a worker sleeps for a budget window to reopen (a minute's budget, plus slack)
MAX_BUDGET_SLEEP = 65.0


def budget_wait(budget):
    """How long a worker may sleep for ``budget`` to let the next call through.

    Waiting out one window of a per-minute budget (at most about a minute) keeps a client
    without a response journal moving under Xero's or Exact's 60 calls a minute. The sync job
    gives its client a journal and a shorter ``park_after`` (``SYNC_PARK_AFTER_SECONDS``): it
    parks instead of sleeping and resumes from the kept answers (docs/sync-engine.md
    "Parking"). Longer waits (a daily budget, a long ``Retry-After``) always defer the run.
    ``budget`` may also be a sequence of budgets (the longest of their waits).
    """
    if isinstance(budget, (tuple, list)):
        return max((budget_wait(b) for b in budget), default=budget_wait(None))
    window = budget.window_seconds if budget is not None and budget.per_minute else 0
    return min(MAX_BUDGET_SLEEP, window + 5.0) if window else 5.0


def build_client(spec, *, redis=None, tenant=None, secrets=(), error_message=None, auth=None,
                 session=None, sleep=time.sleep, max_retries=3, timeout=DEFAULT_TIMEOUT, max_wait=None,
                 limiter=None, interpret=None) -> HttpClient:
    """The :class:`HttpClient` for one connection of the package described by ``spec``.

    :param redis: a redis-py client; its :class:`RateLimiter` enforces every budget of
        ``spec.budgets`` for each call (None: no shared budget, e.g. in unit tests).
    :param tenant: the value(s) the budgets are counted for: what :func:`budget_scope`
        answers (a tuple, one per budget, when the spec has several). A single string for
        a spec with several budgets counts the first under it and the others under it
        with their ``per`` appended.
    :param secrets: values to scrub from messages (see :func:`secrets_for`).
    :param error_message: the connector's vendor-error hook; when omitted the connector
        sets its own :meth:`connectors.base.Connector.error_message` on the client.
    :param max_wait: longest budget wait slept in the worker; default :func:`budget_wait`
        of the spec's budgets.
    :param limiter: a ready :class:`RateLimiter` instead of building one on ``redis``.
    :param interpret: the client's ``interpret(response) -> ConnectorError | None`` hook,
        consulted before the status table (see :class:`HttpClient`).
    """
    budgets = spec_budgets(spec)
    if max_wait is None:
        max_wait = budget_wait(budgets)
    if limiter is None and redis is not None:
        limiter = RateLimiter(redis)
    if isinstance(tenant, (tuple, list)):
        if len(tenant) != len(budgets):
            raise ValueError(f"{spec.key}: one budget scope per budget is needed")
        scopes = _distinct([str(t) for t in tenant], budgets)
    else:
        scopes = _distinct([tenant or "default"] * len(budgets), budgets)
    return HttpClient(
        spec.display_name, session=session, limiter=limiter, budgets=list(zip(scopes, budgets)),
        budget_key=(spec.key, scopes[0]), secrets=secrets, error_message=error_message,
        auth=auth, timeout=timeout, max_retries=max_retries, max_wait=max_wait, sleep=sleep, interpret=interpret,
    )
