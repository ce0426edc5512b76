"""The one builder of connectors (ARCHITECTURE section 5): :func:`open_connector`.

Every connector instance in Firmsync comes from here, whatever needs it (a sync job, a
connection check, a reference refresh, the OAuth set-up), so each one gets the same:

* the connection's config with its secret fields (stored encrypted with the credentials)
  put back, and the decrypted credentials;
* the HTTP client of :mod:`connectors.http`, counted against the package's shared Redis
  budgets for the right scope (the link's reference, the connection, the API key);
* token load and save under the **per-connection lock**: a refreshed (rotated) token is
  committed in its own transaction before it is used, and another worker's newer token
  is re-read rather than refreshed again;
* the **wait policy of its purpose** (:data:`PURPOSES`): a sync job may sleep out a short
  budget window, a web request never waits on a vendor's budget.

A connection that is not saved yet (the OAuth set-up, before the grant is stored) keeps
refreshed tokens on the object itself, and the caller stores them with it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app import locks
from app.extensions import db
from app.models import Connection
from app.redis_connection import redis_connection
from app.services.outbound import check_outbound
from connectors.base import ConnectorContext
from connectors.http import budget_scope, build_client, secrets_for
from connectors.registry import get_connector


@dataclass(frozen=True)
class WaitPolicy:
    """How long a connector built for a purpose may wait on the vendor.

    ``max_wait`` (seconds) is the longest budget or ``Retry-After`` wait slept before the
    call gives up with :class:`connectors.base.RateLimited` (None: the package's own,
    :func:`connectors.http.budget_wait`); ``max_retries`` bounds retries of 5xx answers,
    time-outs and short 429s.
    """

    max_wait: float | None
    max_retries: int


SYNC = "sync"
JOB = "job"
WEB = "web"
#: purpose -> wait policy. ``sync``: the sync job (waits out a budget window, then defers);
#: ``job``: a short console job (test, refresh the list); ``web``: inside a web request
#: (never sleeps on a budget: a spent one answers at once)
PURPOSES = {
    SYNC: WaitPolicy(max_wait=None, max_retries=3),
    JOB: WaitPolicy(max_wait=5.0, max_retries=2),
    WEB: WaitPolicy(max_wait=0.0, max_retries=1),
}


def open_connector(connection, reference=None, *, purpose=SYNC, options=None):
    """A connector instance for ``connection`` (an :class:`app.models.Connection`).

    :param reference: the company inside the package (a link's sync reference); None for
        connection-wide calls (check, list the companies).
    :param purpose: a key of :data:`PURPOSES` (the wait policy).
    :param options: the link's package options.
    """
    policy = PURPOSES[purpose]
    cls = get_connector(connection.package)
    config, credentials = connector_config(cls.spec, connection)
    check_outbound(cls.spec, config)
    budgets = tuple(cls.budgets_for(config))
    # the connection's own budgets (a paid tier) count instead of the spec's
    spec = cls.spec if budgets == cls.spec.budgets else dataclasses.replace(cls.spec, rate_budgets=budgets)
    scope = budget_scope(spec, reference=reference, connection_id=connection.id,
                         api_key=credentials.get("api_key") or config.get("api_key"))
    http = build_client(spec, redis=redis_connection(), tenant=scope, max_wait=policy.max_wait,
                        max_retries=policy.max_retries, secrets=secrets_for(spec, config, credentials))
    if purpose == SYNC:  # a package built from public information records its answers' shapes
        from app.services.diagnostics import attach_recorder

        attach_recorder(http, cls.spec)
    saved = connection.id is not None
    connection_id = connection.id
    return cls(ConnectorContext(
        config=config, credentials=credentials, reference=reference, options=dict(options or {}), http=http,
        connection_id=connection_id,
        save_credentials=credentials_saver(connection_id) if saved else _keep_on(connection),
        load_credentials=credentials_loader(connection_id) if saved else None,
        lock=(lambda: locks.connection_lock(connection_id)) if saved else None,
    ))


def open_link_connector(link, *, purpose=SYNC):
    """:func:`open_connector` for a dossier link: its connection, reference and options."""
    return open_connector(link.connection, link.reference, purpose=purpose, options=link.options)


def connector_config(spec, connection):
    """``(config, credentials)`` for a connector: the connection's config with its secret
    config fields (stored encrypted in ``credentials``) put back, and the credentials."""
    config = dict(connection.config or {})
    credentials = dict(connection.credentials or {})
    schema = spec.config_schema() if isinstance(spec.config_schema, type) else spec.config_schema
    for name, schema_field in getattr(schema, "fields", {}).items():
        if schema_field.metadata.get("secret") and name in credentials and not config.get(name):
            config[name] = credentials[name]
    return config, credentials


def connection_secrets(connection):
    """Every secret value of ``connection`` (to scrub from messages), even for an unknown package."""
    try:
        spec = get_connector(connection.package).spec
    except KeyError:
        from app.secret_scrubbing import secret_values

        return secret_values(connection.credentials or {})
    return secrets_for(spec, connection.config, connection.credentials)


def credentials_saver(connection_id):
    """A ``save_credentials(new)`` callback: commits in its own session, under the connection lock.

    The caller's transaction stays open and untouched: a rotated refresh token is durable
    before the new access token is used, even if a sync later rolls back.
    """
    def save_credentials(new_credentials):
        with locks.connection_lock(connection_id), Session(db.engine) as own:
            own.get(Connection, connection_id).credentials = dict(new_credentials)
            own.commit()

    return save_credentials


def credentials_loader(connection_id):
    """A ``load_credentials()`` callback reading the committed credentials (another worker may have refreshed)."""
    def load_credentials():
        with Session(db.engine) as own:
            return dict(own.get(Connection, connection_id).credentials or {})

    return load_credentials


def _keep_on(connection):
    """For a connection not saved yet: refreshed credentials go onto the object, saved with it."""
    def save_credentials(new_credentials):
        connection.credentials = dict(new_credentials)

    return save_credentials
