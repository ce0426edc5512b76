"""The "Download diagnostic" of packages built from public information (docs/connectors.md,
"Undocumented packages").

A sync of a package whose spec is :attr:`connectors.base.ConnectorSpec.built_from_public_information`
records, through the kit's :class:`connectors.http.ShapeRecorder`, every request's path,
status, response header names and response shape (keys and types only: no value, no query
string, no secret). At the end of the run, successful or not, :func:`keep` stores that record
in **Redis** under ``firmsync:diagnostic:connection:<id>`` for :data:`TTL_SECONDS` (the last
run of the connection wins): it is evidence for a support ticket, not data of the firm, so it
needs no table and no migration and expires by itself. :func:`last` reads it back for the
connection page's download (firm and role are checked by the console, and the download is
audited there).
"""
from __future__ import annotations

import json

from app.models.base import utcnow
from app.redis_connection import redis_connection
from connectors.http import ShapeRecorder
from connectors.registry import get_connector

#: how long a run's diagnostic is kept (30 days)
TTL_SECONDS = 30 * 24 * 3600
#: requests recorded per run (the rest are counted as ``dropped``)
REQUEST_LIMIT = 300


def key_for(connection_id) -> str:
    """The Redis key of a connection's last diagnostic."""
    return f"firmsync:diagnostic:connection:{int(connection_id)}"


def wanted(spec) -> bool:
    """Does a connection of ``spec`` keep a diagnostic (a package built from public information)?"""
    return bool(getattr(spec, "built_from_public_information", False))


def attach_recorder(http, spec):
    """Give ``http`` (a :class:`connectors.http.HttpClient`) a fresh recorder when ``spec`` wants one."""
    if http is not None and wanted(spec):
        http.recorder = ShapeRecorder(limit=REQUEST_LIMIT)
    return http


def keep(connection, run, http):
    """Store the requests ``http`` recorded during ``run`` as ``connection``'s last diagnostic.

    Does nothing when the client has no recorder. Never raises (a diagnostic must not change
    a run's outcome)."""
    recorder = getattr(http, "recorder", None)
    if recorder is None or connection is None:
        return None
    try:
        spec = get_connector(connection.package).spec
        document = {
            "package": spec.key,
            "package_name": spec.display_name,
            "api_version": spec.api_version,
            "confidence": spec.confidence,
            "assumptions": {name: {"confidence": a.confidence, "source": a.source}
                            for name, a in sorted(spec.assumptions.items())},
            "connection_id": connection.id,
            "run_id": getattr(run, "id", None),
            "run_status": getattr(run, "status", None),
            "error_category": getattr(run, "error_category", None),
            "recorded_at": utcnow().isoformat(timespec="seconds") + "Z",
            **recorder.as_dict(),
        }
        redis_connection().set(key_for(connection.id), json.dumps(document), ex=TTL_SECONDS)
        return document
    except Exception:  # noqa: BLE001 - Redis down, unknown package: the run's outcome stands
        return None


def last(connection) -> dict | None:
    """The last diagnostic kept for ``connection``, or None (none yet, or expired)."""
    raw = redis_connection().get(key_for(connection.id))
    return json.loads(raw) if raw else None
