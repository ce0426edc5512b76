"""Read a connector's stream ahead of the writer, in a thread.

A sync spends its time in two places that do not depend on each other page by page: waiting
for the package to answer (network, the vendor's own work, budget sleeps) and writing what
came back into the database. Read serially they add up; with :func:`read_ahead` the next pages
are fetched and parsed while the current ones are written, so a sync takes about the longer of
the two instead of their sum (``docs/benchmarks.md``, measure 1).

Guarantees:

* **bounded memory**: at most ``depth`` chunks of ``chunk_size`` records wait in the queue;
* **same order, same errors**: records arrive in the order the connector yields them; an
  exception raised by the connector (``RateLimited``, ``AuthError``, ...) is raised in the
  consuming thread at the point where the records before it have been consumed;
* **no orphan thread**: when the consumer stops early (an error in the writer, a
  cancellation), the reader is told to stop and the generator is closed in its own thread.

On SQLite the consumer is the run's spool (:mod:`jobs.staging`), not the writer: the
overlap then saves little, but the connector runs the same way on both databases.

The reader thread runs inside its own Flask application context (the connector's token
callbacks open their own database sessions through ``db.engine``); it never touches the
sync's session.
"""
from __future__ import annotations

import contextlib
import queue
import threading

#: records per hand-over between the threads (one queue operation per chunk, not per record)
CHUNK_SIZE = 500
#: chunks the reader may be ahead of the writer
DEPTH = 8
#: how often a blocked reader looks whether the consumer went away
_POLL_SECONDS = 0.2

_DONE = object()


class _Failure:
    """An exception raised by the connector, carried to the consuming thread."""

    def __init__(self, exc):
        self.exc = exc


def read_ahead(make_records, *, app=None, chunk_size=CHUNK_SIZE, depth=DEPTH):
    """Yield the records of ``make_records()`` (a zero-argument callable answering an iterator),
    produced in a background thread up to ``depth`` chunks ahead.

    ``app`` is the Flask application whose context the reader thread pushes (None: no
    context). With ``depth == 0`` the records are read in the calling thread, as before.
    """
    if depth <= 0:
        yield from make_records()
        return
    handover = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                handover.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        records = None
        try:
            with app.app_context() if app is not None else contextlib.nullcontext():
                records = make_records()
                _pump(records, put, stop, chunk_size)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(exc))
            return
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
        put(_DONE)

    reader = threading.Thread(target=produce, name="firmsync-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = handover.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield from item
    finally:
        stop.set()
        reader.join(timeout=5)


def _pump(records, put, stop, chunk_size):
    chunk = []
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= chunk_size:
                if not put(chunk):
                    return
                chunk = []
            if stop.is_set():
                return
    finally:  # the records read before a failure still reach the consumer, before the failure
        if chunk and not stop.is_set():
            put(chunk)
