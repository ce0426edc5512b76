"""``GET /healthz``: is this web process able to serve? (docs/operations.md, "Health").

JSON ``{"status", "database", "redis", "checked_at"}`` (see
:func:`app.services.health.liveness`), 200 when both the database and Redis answer, else
503. No login, no secrets: a load balancer or an uptime monitor calls it. It never waits
longer than the web timeouts (``DATABASE_CONNECT_TIMEOUT_SECONDS``,
``WEB_DATABASE_STATEMENT_TIMEOUT_SECONDS``, ``WEB_REDIS_TIMEOUT_SECONDS``).
"""
import logging

from flask import Blueprint, jsonify

from app.services.health import OK, liveness

blueprint = Blueprint("health", __name__)
log = logging.getLogger("firmsync.web")


@blueprint.route("/healthz")
def healthz():
    """Database and Redis reachable: 200; either not: 503 (with ``Retry-After``)."""
    answer = liveness()
    response = jsonify(answer)
    if answer["status"] != OK:
        log.warning("health check: database %s, redis %s", answer["database"], answer["redis"])
        response.status_code = 503
        response.headers["Retry-After"] = "10"
    return response
