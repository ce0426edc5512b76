"""Stage a sync's records in a spool file before writing them (SQLite).

SQLite lets one connection write at a time, and a sync writes its data in one transaction
(an interrupted run leaves the dossier exactly as before). Streamed straight into the
writer, that transaction would hold the database's write lock for the whole fetch (minutes
of waiting for the package), and every console change behind it would fail after the web's
busy timeout. Staged, a run first reads every stream into a :class:`Spool` (no write lock,
no open transaction), then replays the spool into the writer and commits once: the lock is
held only for the writing, seconds instead of minutes (``docs/sync-engine.md``, "Staging on
SQLite"; measured in ``docs/operations.md``, "When to move to PostgreSQL").

PostgreSQL does not need it (its writers lock rows, not the database): there the records
keep streaming into the writer while the next pages are fetched (:mod:`jobs.read_ahead`).
The setting ``SYNC_STAGE_BEFORE_WRITE`` decides: ``"auto"`` (SQLite only), true or false.

A spool is a file per run in ``<instance>/sync-spool/`` (owner-only, like the database
beside it), named after its dossier and run. Records go in as compact tuples of their field
values, pickled in chunks of :data:`CHUNK_RECORDS` (memory stays bounded whatever the size of
the company); only the process that wrote a spool reads it back. The file is removed in every
outcome; one left by a killed worker is swept by the next staged run: a leftover of the same
dossier at once (that run holds the dossier's lock, so no live run owns it), any other after
:data:`SWEEP_AFTER_HOURS` (removing a file a live process still reads does not disturb it).
"""
from __future__ import annotations

import dataclasses
import logging
import operator
import os
import pickle
import tempfile
import time
from pathlib import Path

from flask import current_app

from app import locks
from app.instance_files import private_folder
from connectors.base import (AccountRecord, BalanceRecord, CompanyProfileRecord, DeletedRecord, FiscalYearRecord,
                             LedgerLineRecord, OpeningBalanceRecord)

log = logging.getLogger("firmsync.jobs")

#: the folder under the instance folder that holds the spools of running syncs
SPOOL_FOLDER = "sync-spool"
SUFFIX = ".spool"
#: records pickled together (one read or write of the file per chunk)
CHUNK_RECORDS = 2000
#: a spool of another dossier this old is a killed worker's leftover
SWEEP_AFTER_HOURS = 24
#: the canonical records a spool stores as field tuples (their index is the tuple's tag)
RECORD_TYPES = (AccountRecord, FiscalYearRecord, BalanceRecord, LedgerLineRecord, DeletedRecord,
                OpeningBalanceRecord, CompanyProfileRecord)
_TAGS = {record_type: tag for tag, record_type in enumerate(RECORD_TYPES)}
#: per tag, what reads a record's field values as a tuple (every record type has several fields)
_VALUES_OF = tuple(operator.attrgetter(*(field.name for field in dataclasses.fields(record_type)))
                   for record_type in RECORD_TYPES)
#: the tag of any other object (pickled as it is)
_OTHER = -1


def stage_before_write(engine):
    """Whether a sync on ``engine`` stages its records first: ``SYNC_STAGE_BEFORE_WRITE``
    ``"auto"`` (the default: on SQLite), or a true/false value (``1``/``0``, ``true``/``false``,
    ``yes``/``no``, ``on``/``off`` from the environment)."""
    value = locks.setting("SYNC_STAGE_BEFORE_WRITE", "auto")
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "auto":
            return engine.dialect.name == "sqlite"
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"SYNC_STAGE_BEFORE_WRITE must be auto, true or false, not {value!r}")
    return bool(value)


def spool_folder():
    """``<instance>/sync-spool`` (created owner-only when missing)."""
    return private_folder(Path(current_app.instance_path) / SPOOL_FOLDER)


def _prefix(dossier_id):
    return f"dossier-{dossier_id}-run-"


def sweep(folder, dossier_id=None, *, older_than_hours=SWEEP_AFTER_HOURS, now=None):
    """Remove the spools left by killed workers from ``folder``: every spool of ``dossier_id``
    (call it holding that dossier's lock) and any spool not touched for ``older_than_hours``.
    Answers the names removed."""
    now = time.time() if now is None else now
    mine = _prefix(dossier_id) if dossier_id is not None else None
    removed = []
    for path in Path(folder).glob(f"dossier-*{SUFFIX}"):
        try:
            stale = now - path.stat().st_mtime > older_than_hours * 3600
            if stale or (mine is not None and path.name.startswith(mine)):
                path.unlink()
                removed.append(path.name)
        except FileNotFoundError:  # another worker swept it first
            continue
    if removed:
        log.info("removed %d spool(s) left by stopped syncs: %s", len(removed), ", ".join(sorted(removed)))
    return removed


class Spool:
    """A run's records on disk, in the order they came: :meth:`add` them, then :meth:`replay`.

    Use it as a context manager: the file is removed when the block ends, however it ends.
    ``count`` is the number of records added.
    """

    def __init__(self, folder, dossier_id, run_id, *, chunk_records=CHUNK_RECORDS):
        descriptor, name = tempfile.mkstemp(prefix=f"{_prefix(dossier_id)}{run_id}-", suffix=SUFFIX, dir=folder)
        self.path = Path(name)  # mkstemp: owner-only (0600)
        self.file = os.fdopen(descriptor, "w+b")
        self.chunk_records = chunk_records
        self.count = 0
        self._chunk = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def add(self, record):
        """Append ``record`` (any canonical record; other objects are pickled as they are)."""
        tag = _TAGS.get(type(record))
        if tag is None:
            self._chunk.append((_OTHER, record))
        else:
            self._chunk.append((tag, _VALUES_OF[tag](record)))
        self.count += 1
        if len(self._chunk) >= self.chunk_records:
            self._write_chunk()

    def _write_chunk(self):
        if self._chunk:
            pickle.dump(self._chunk, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self._chunk = []

    def replay(self):
        """Yield the records added, in their order (one chunk in memory at a time)."""
        self._write_chunk()
        self.file.flush()
        self.file.seek(0)
        while True:
            try:
                chunk = pickle.load(self.file)
            except EOFError:
                return
            for tag, values in chunk:
                yield values if tag == _OTHER else RECORD_TYPES[tag](*values)

    def close(self):
        """Close and remove the file (also when it is already gone)."""
        try:
            self.file.close()
        finally:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
