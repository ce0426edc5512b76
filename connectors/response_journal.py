"""The response journal: answers a resumed sync's requests from the attempt that parked.

A sync that runs out of API budget **parks** (docs/sync-engine.md "Parking"): the job ends,
its transaction is rolled back and RQ runs it again when the budget allows. The next attempt
asks the package the same requests again, from the same committed bookmarks; the journal
lets :class:`connectors.http.HttpClient` answer those from what the earlier attempts
received, without spending budget, so a first sync spread over several budget windows (or
days) resumes where it stopped.

* :func:`request_key` names a request: method, URL with its query string and a hash of its
  body. Never a header (the credentials travel there), and only the hash of it is kept.
* :func:`journaled` tells which requests may be kept: never a token request, a login or a
  session request; :func:`without_credentials` what of an answer may be kept: a credential
  it names is blanked (a JSON string in the answer to a GET) or the answer is not kept.
* :class:`ResponseJournal` keeps the answers (status, the headers that hold no credential,
  the body compressed) in a spill file, with only a small index in memory, and hands out each
  recorded answer once per attempt (a request asked twice is asked live the second time).

Connectors import neither :mod:`app` nor Flask: the job saves the journal's new entries to the
database (:mod:`app.services.response_stages`) and loads them into the next attempt's journal.
"""
from __future__ import annotations

import hashlib
import json as jsonlib
import re
import tempfile
import threading
import zlib
from collections import deque
from datetime import timedelta
from typing import NamedTuple
from urllib.parse import urlencode

import requests
from requests.structures import CaseInsensitiveDict

from connectors.scrubbing import SECRET_KEY_PATTERN

#: answers up to this many compressed bytes stay in memory; the rest spills to a temp file
SPILL_AFTER_BYTES = 4 * 1024 * 1024
#: a URL path naming a credential exchange: its answer is never kept
CREDENTIAL_PATH = re.compile(r"(?i)(token|oauth|login|logon|signin|sign-in|authenticat|authori[sz]|session)")
#: a body field that carries a credential (JSON key, form field or XML element): see :func:`without_credentials`
CREDENTIAL_NAMES = (rb"(?:access_?token|refresh_?token|id_?token|bearer|client_?secret|password|api_?key|"
                    rb"session_?(?:id|token|key)|auth_?token)")
CREDENTIAL_FIELD = re.compile(rb"(?i)[\"'<:]\s*" + CREDENTIAL_NAMES + rb"\s*[\"'>]")
#: a credential-named JSON key with a string value: in an answer to a GET (a read, never a sign-in)
#: the value is blanked in the kept copy rather than the answer refused (Xero's Organisation
#: carries an ``APIKey``; refusing it made every resume of a parked run ask for it again)
CREDENTIAL_JSON_STRING = re.compile(rb'(?i)("' + CREDENTIAL_NAMES + rb'"\s*:\s*)"(?:[^"\\]|\\.)*"')
#: a word every :data:`CREDENTIAL_FIELD` match contains (lower case): a body without any
#: skips the regex, which costs about 20 times more on a page of journals
CREDENTIAL_WORDS = (b"token", b"bearer", b"secret", b"password", b"key", b"session")
#: zlib level of kept bodies: level 1 compresses a page of JSON about twice as fast as the
#: default, for a few % more bytes
COMPRESSION_LEVEL = 1
#: response headers never kept (besides any whose name looks like a credential)
DROPPED_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization", "www-authenticate",
                             "proxy-authenticate", "content-encoding", "transfer-encoding", "content-length"})


class Entry(NamedTuple):
    """One kept answer: where its compressed body lies in the spill, its status and headers."""

    offset: int
    length: int
    status: int
    headers: dict


class StoredAnswer(NamedTuple):
    """A kept answer as saved to (and loaded from) the database: ``body`` is zlib-compressed."""

    key: str
    status: int
    headers: dict
    body: bytes


def request_key(method, url, params=None, json=None, data=None):
    """The journal key of a request: the SHA-256 of its method, its URL with the query string
    (``params`` encoded as :mod:`requests` sends them) and the SHA-256 of its body.

    Headers never count (credentials travel there), so the same request sent with a
    refreshed token has the same key.
    """
    if json is not None:
        body = jsonlib.dumps(json, sort_keys=True, separators=(",", ":"), default=str).encode()
    elif isinstance(data, (bytes, bytearray)):
        body = bytes(data)
    elif isinstance(data, str):
        body = data.encode()
    elif data is not None:
        body = repr(sorted(data.items()) if isinstance(data, dict) else data).encode()
    else:
        body = b""
    text = f"{str(method).upper()}\n{full_url(url, params)}\n{hashlib.sha256(body).hexdigest()}"
    return hashlib.sha256(text.encode()).hexdigest()


def full_url(url, params=None):
    """``url`` with ``params`` encoded into its query string, as :mod:`requests` sends it.

    A mapping or list of pairs is encoded here (``None`` values left out, as requests does):
    preparing a whole request costs about a third of a millisecond a call."""
    url = str(url)
    if not params:
        return url
    if isinstance(params, dict):
        params = params.items()
    if not isinstance(params, (str, bytes)):
        pairs = [(name, value) for name, value in params if value is not None]
        return f"{url}{'&' if '?' in url else '?'}{urlencode(pairs, doseq=True)}" if pairs else url
    return requests.Request("GET", url, params=params).prepare().url


def journaled(url):
    """Whether requests to ``url`` may be answered from (and kept in) a journal: not a token,
    login, OAuth or session request."""
    return CREDENTIAL_PATH.search(requests.utils.urlparse(str(url)).path or "") is None


def kept_headers(headers):
    """The response headers worth keeping: none that may carry a credential or a cookie, none
    describing the transfer (the kept body is already decoded)."""
    return {str(name): str(value) for name, value in (headers or {}).items()
            if name.lower() not in DROPPED_HEADERS and not SECRET_KEY_PATTERN.search(name)
            and "cookie" not in name.lower() and "session" not in name.lower()}


def without_credentials(method, body):
    """``body`` as it may be kept: as is when it names no credential field; for a GET, with the
    value of every credential-named JSON string field blanked (``""``); None (not to be kept)
    when a credential is named any other way (XML, a form, a value that is not a string, an
    answer to a POST)."""
    if not holds_credential(body):
        return body
    if method.upper() != "GET":
        return None
    blanked, count = CREDENTIAL_JSON_STRING.subn(rb'\1""', body)
    return blanked if count == len(CREDENTIAL_FIELD.findall(body)) else None


def holds_credential(body):
    """Whether an answer's body names a credential field (a token, a password, a session id)."""
    if not body:
        return False
    lowered = body.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS) and CREDENTIAL_FIELD.search(body) is not None


class ResponseJournal:
    """The answers of one sync run's attempts, for :class:`connectors.http.HttpClient`.

    ``lookup(key)`` returns a :class:`requests.Response` rebuilt from an answer an earlier
    attempt kept (each one is handed out once), or None; ``record(key, response)`` keeps a
    successful live answer for the next attempt (never for this one: a request this attempt
    asks again, e.g. after an unreadable body, goes to the package). :meth:`load` adds answers saved by earlier attempts; :meth:`new_answers` yields
    the ones recorded live in this attempt (what the job saves when it parks). Thread-safe:
    the read-ahead thread and the job's thread share it.
    """

    def __init__(self, spill_after=SPILL_AFTER_BYTES):
        self._spill = tempfile.SpooledTemporaryFile(max_size=spill_after)
        self._index: dict[str, deque] = {}
        self._new: list[tuple[str, Entry]] = []
        self._lock = threading.Lock()
        #: answers handed out from the journal in this attempt
        self.replayed = 0

    # -- the client's side --------------------------------------------------------------
    def lookup(self, key, method="GET", url=""):
        """The kept answer for ``key`` as a :class:`requests.Response`, or None (ask live)."""
        with self._lock:
            queue = self._index.get(key)
            if not queue:
                return None
            entry = queue.popleft()
            self._spill.seek(entry.offset)
            body = zlib.decompress(self._spill.read(entry.length))
            self.replayed += 1
        return _response(method, url, entry, body)

    def record(self, key, response):
        """Keep a successful live answer, its credentials blanked or, where they cannot be,
        not at all (:func:`without_credentials`). Returns whether it was kept."""
        body = without_credentials(response.request.method if response.request is not None else "POST",
                                   response.content or b"")
        if body is None:
            return False
        self._add(key, int(response.status_code), kept_headers(response.headers),
                  zlib.compress(body, COMPRESSION_LEVEL), new=True)
        return True

    # -- the job's side -----------------------------------------------------------------
    def load(self, answers):
        """Add answers saved by earlier attempts (:class:`StoredAnswer`, in their order)."""
        for answer in answers:
            self._add(answer.key, int(answer.status), dict(answer.headers or {}), bytes(answer.body), new=False)

    def new_answers(self):
        """Every answer recorded live in this attempt, as :class:`StoredAnswer` (body compressed)."""
        with self._lock:
            entries = list(self._new)
        for key, entry in entries:
            with self._lock:
                self._spill.seek(entry.offset)
                body = self._spill.read(entry.length)
            yield StoredAnswer(key, entry.status, entry.headers, body)

    @property
    def recorded(self):
        """How many answers this attempt fetched live and kept (new pages)."""
        return len(self._new)

    def close(self):
        """Drop the spill file."""
        self._spill.close()

    def _add(self, key, status, headers, compressed, *, new):
        with self._lock:
            self._spill.seek(0, 2)
            entry = Entry(self._spill.tell(), len(compressed), status, headers)
            self._spill.write(compressed)
            if new:  # answered by a later attempt only: a request asked again now goes live
                self._new.append((key, entry))
            else:
                self._index.setdefault(key, deque()).append(entry)


def _response(method, url, entry, body):
    """A :class:`requests.Response` carrying a kept answer, as the connector would have received it."""
    response = requests.Response()
    response.status_code = entry.status
    response.headers = CaseInsensitiveDict(entry.headers)
    response._content = body
    response._content_consumed = True
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    response.url = str(url)
    response.reason = "OK (replayed)"
    response.elapsed = timedelta(0)
    request = requests.PreparedRequest()
    request.method, request.url, request.headers = str(method).upper(), str(url), CaseInsensitiveDict()
    response.request = request
    return response
