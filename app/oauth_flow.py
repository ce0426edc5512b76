"""The one OAuth flow of Firmsync: consent at the package, back to Firmsync, finish the purpose.

Used for firm-level packages (Exact Online, Demo Cloud: a new connection or a reconnect)
and dossier-level packages (Xero, XeroTB, QuickBooks, e-conomic: a new client file, a
reconnect, or re-establishing a file's sync with a fresh grant).

1. :func:`start` checks the actor's right, keeps a **flow record** (random ``state``, PKCE
   verifier, package, purpose, ids, 10-minute expiry) encrypted in Redis, puts only the
   flow's id in the user's session, and redirects to the package's consent page.
2. :func:`callback` (``/oauth/callback``) checks the state against the session's flow (a
   mismatch or an expired flow restarts with a clear message and changes nothing), handles a
   refused consent, exchanges the code (or reads e-conomic's grant token), lists the
   companies of the grant and asks the user to choose when there are several
   (``/oauth/choose``), then finishes the purpose; every step re-checks role and firm.

The package's declared auth strategy (:mod:`connectors.auth`, ``spec.auth``) does the
package's part: :meth:`~connectors.auth.AuthStrategy.consent_url` and
:meth:`~connectors.auth.AuthStrategy.callback` (an OAuth code exchange, or e-conomic's grant
token handed back by its installation page).

Where the OAuth app of a dossier-level package comes from: :func:`dossier_app_config`.
"""
import logging
import secrets as _secrets
import time

from flask import Blueprint, abort, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from app import audit
from app.access import can, can_see_dossier, current_actor
from app.crypto import keyring
from app.extensions import db
from app.models import Connection, ConnectionStatus, Dossier, Role, Scenario
from app.redis_connection import redis_connection
from app.secret_scrubbing import scrub_text
from app.services.connectors import WEB, connector_config, open_connector
from app.services.dossiers import create_dossier
from connectors import registry
from connectors.base import DOSSIER, FIRM, ConnectorError

log = logging.getLogger("firmsync.oauth")

blueprint = Blueprint("oauth", __name__, url_prefix="/oauth")

NEW_CONNECTION, RECONNECT, NEW_CLIENT, RE_ESTABLISH = "new_connection", "reconnect", "new_client", "re_establish"
PURPOSES = (NEW_CONNECTION, RECONNECT, NEW_CLIENT, RE_ESTABLISH)
#: a flow must come back from the package within this many seconds
FLOW_SECONDS = 10 * 60
#: the encrypted record outlives its expiry a little, so "expired" can be told apart from "unknown"
RECORD_SECONDS = 60 * 60
SESSION_KEY = "oauth_flow"
REDIS_PREFIX = "firmsync:oauth-flow:"

MISMATCH = ("This sign-in does not match the one Firmsync started (it may be an old link or another window). "
            "Nothing was changed; please start again.")
EXPIRED = "The sign-in took more than 10 minutes and has expired. Nothing was changed; please start again."

# --------------------------------------------------------------------------------------
# Packages
# --------------------------------------------------------------------------------------


def uses_consent(spec):
    """Is ``spec``'s package connected through a consent page (OAuth or e-conomic's installation page)?"""
    return spec.auth.consent


def secret_keys(spec):
    """Names of the secret fields of the package's configuration schema."""
    schema = spec.config_schema() if isinstance(spec.config_schema, type) else spec.config_schema
    return {name for name, field in getattr(schema, "fields", {}).items() if field.metadata.get("secret")}


def dossier_app_config(package):
    """The configuration (secret fields included) of Firmsync's app at a dossier-level package, or None.

    Each field of the package's config schema comes from the app setting
    ``OAUTH_<PACKAGE>_<FIELD>`` (environment ``FIRMSYNC_OAUTH_XERO_CLIENT_ID``,
    ``FIRMSYNC_OAUTH_XERO_CLIENT_SECRET``, ``FIRMSYNC_OAUTH_XERO_IDENTITY_URL``...; a package
    declaring ``spec.oauth_app`` uses that package's, as XeroTB uses Xero's). Outside
    production, a package with no setting at all points at the sandbox (``SANDBOX_URL``) with
    the app its spec declares in ``sandbox_config``. None when the package is not configured
    (it is then not offered).
    """
    cls = registry.get_connector(package)
    key = cls.spec.oauth_app or package
    schema = cls.spec.config_schema()
    prefix = f"OAUTH_{key.upper()}_"
    values = {name: current_app.config[prefix + name.upper()] for name in schema.fields
              if current_app.config.get(prefix + name.upper()) not in (None, "")}
    if not values and current_app.config.get("ENV_NAME") != "production" and cls.spec.sandbox_config:
        sandbox = current_app.config.get("SANDBOX_URL", "http://127.0.0.1:5050").rstrip("/")
        values = cls.spec.sandbox_settings(sandbox)
    if not values:
        return None
    try:
        return schema.dump(schema.load(values))
    except Exception:  # noqa: BLE001 - a half-configured app is "not configured"; the log says why
        log.warning("the %s app settings (%s*) are incomplete or invalid", package, prefix)
        return None


def dossier_packages():
    """Specs of the dossier-level packages Firmsync can connect (their app is configured)."""
    return [spec for spec in registry.specs(level=DOSSIER) if uses_consent(spec) and dossier_app_config(spec.key)]


def split_config(spec, values):
    """``(config, secrets)``: the non-secret and secret fields of ``values``."""
    hidden = secret_keys(spec)
    return ({k: v for k, v in values.items() if k not in hidden}, {k: v for k, v in values.items() if k in hidden})


def connection_config(connection):
    """The connection's config with its secret fields (stored in the credentials) put back."""
    return connector_config(registry.get_connector(connection.package).spec, connection)[0]


def consent_url(spec, config, redirect_uri, state, verifier):
    """The package's consent page for this flow."""
    return spec.auth.consent_url(registry.get_connector(spec.key), config, redirect_uri, state, verifier)


def grant_from(spec, config, args, redirect_uri, verifier):
    """The credentials of the grant the package sent back (AuthError when refused or rejected)."""
    return spec.auth.callback(registry.get_connector(spec.key), config, args, redirect_uri, verifier)


def grant_references(spec, config, credentials):
    """The companies the new grant reaches (the package is asked right away, in this request:
    the grant was just given, and the user chooses among them next)."""
    secrets = {k: v for k, v in config.items() if k in secret_keys(spec)}
    pending = Connection(package=spec.key, config={k: v for k, v in config.items() if k not in secrets},
                         credentials={**dict(credentials), **secrets})
    connector = open_connector(pending, purpose=WEB)
    return [{"reference": ref.reference, "name": ref.name} for ref in connector.list_references()]


# --------------------------------------------------------------------------------------
# Flow records (encrypted in Redis; the session holds the flow id only)
# --------------------------------------------------------------------------------------


def save_flow(flow):
    redis_connection().set(REDIS_PREFIX + flow["id"], keyring().encrypt(flow), ex=RECORD_SECONDS)


def load_flow(flow_id):
    """The flow record ``flow_id`` (None when unknown)."""
    raw = redis_connection().get(REDIS_PREFIX + str(flow_id or ""))
    return keyring().decrypt(raw.decode()) if raw else None


def discard_flow(flow):
    if flow:
        redis_connection().delete(REDIS_PREFIX + flow["id"])
    session.pop(SESSION_KEY, None)


def current_flow():
    return load_flow(session.get(SESSION_KEY))


# --------------------------------------------------------------------------------------
# Authorisation (every step)
# --------------------------------------------------------------------------------------


def authorise(actor, purpose, spec, *, connection=None, dossier=None):
    """Abort (403/404) unless ``actor`` may run ``purpose`` for ``spec`` (and the row given)."""
    if actor is None or not actor.uses_console or actor.role is None:
        abort(403)
    if purpose == NEW_CONNECTION:
        if actor.role != Role.ADMIN or spec.level != FIRM:
            abort(403)
    elif purpose == NEW_CLIENT:
        if not can(actor, "create_dossiers") or spec.level != DOSSIER:
            abort(403)
    elif purpose == RECONNECT:
        if connection is None or connection.firm_id != actor.firm_id:
            abort(404)
        if connection.level == FIRM:
            if actor.role != Role.ADMIN:
                abort(403)
        else:
            if connection.owner_dossier_id is None or not can_see_dossier(actor, connection.owner_dossier_id):
                abort(404)
            if not can(actor, "setup_sync", connection.owner_dossier_id):
                abort(403)
    elif purpose == RE_ESTABLISH:
        if dossier is None or dossier.firm_id != actor.firm_id or not can_see_dossier(actor, dossier.id):
            abort(404)
        if not can(actor, "setup_sync", dossier.id) or spec.level != DOSSIER:
            abort(403)
    else:
        abort(400)


def _rows_of(flow):
    connection = db.session.get(Connection, flow["connection_id"]) if flow.get("connection_id") else None
    dossier = db.session.get(Dossier, flow["dossier_id"]) if flow.get("dossier_id") else None
    return connection, dossier


def _check_flow_actor(flow):
    """The flow belongs to this user and firm, and the user still may finish it."""
    actor = current_actor()
    if actor is None or actor.user_id != flow["user_id"] or actor.firm_id != flow["firm_id"]:
        abort(403)
    connection, dossier = _rows_of(flow)
    if flow.get("connection_id") and connection is None or flow.get("dossier_id") and dossier is None:
        abort(404)
    authorise(actor, flow["purpose"], registry.get_connector(flow["package"]).spec,
              connection=connection, dossier=dossier)
    return actor, connection, dossier


# --------------------------------------------------------------------------------------
# Starting
# --------------------------------------------------------------------------------------


def start(purpose, package, *, connection_id=None, dossier_id=None, config=None, details=None):
    """Begin a flow for the current actor and answer the redirect to the package's consent page.

    :param purpose: ``new_connection`` (firm-level: ``config`` holds the form's values, secrets
        included, and ``details["name"]``), ``reconnect`` (``connection_id``), ``new_client``
        (``details``: the client file's fields) or ``re_establish`` (``dossier_id``).
    The actor's right is checked here (403/404) and again at every later step.
    """
    actor = current_actor()
    spec = registry.get_connector(package).spec
    connection = db.session.get(Connection, connection_id) if connection_id else None
    dossier = db.session.get(Dossier, dossier_id) if dossier_id else None
    authorise(actor, purpose, spec, connection=connection, dossier=dossier)
    if purpose == RECONNECT:
        config = connection_config(connection)
    elif spec.level == DOSSIER:
        config = dossier_app_config(package)
        if config is None:
            flash(f"{spec.display_name} is not set up on this Firmsync server yet. Ask your administrator.", "error")
            return redirect(url_for("admin.index"))
    discard_flow(current_flow())
    now = time.time()
    flow = {
        "id": _secrets.token_urlsafe(16), "state": _secrets.token_urlsafe(32), "package": package,
        "purpose": purpose, "user_id": actor.user_id, "firm_id": actor.firm_id,
        "connection_id": connection_id, "dossier_id": dossier_id, "config": dict(config or {}),
        "details": dict(details or {}), "created_at": now, "expires_at": now + FLOW_SECONDS,
        "redirect_uri": url_for("oauth.callback", _external=True),
    }
    flow["verifier"] = _pkce_verifier(spec)
    try:
        target = consent_url(spec, flow["config"], flow["redirect_uri"], flow["state"], flow["verifier"])
    except ConnectorError as error:
        flash(error.message, "error")
        return redirect(restart_url(flow))
    save_flow(flow)
    session[SESSION_KEY] = flow["id"]
    return redirect(target)


def _pkce_verifier(spec):
    from connectors.oauth import new_code_verifier

    return new_code_verifier() if spec.auth.pkce else None


def restart_url(flow):
    """Where the user starts this purpose again."""
    purpose = flow.get("purpose")
    if purpose == NEW_CONNECTION:
        return url_for("connections.create_view", package=flow.get("package"))
    if purpose == NEW_CLIENT:
        return url_for("new_client.index")
    if purpose == RE_ESTABLISH and flow.get("dossier_id"):
        return url_for("dossiers.details_view", id=flow["dossier_id"])
    if purpose == RECONNECT:
        connection = db.session.get(Connection, flow.get("connection_id") or 0)
        if connection is not None and connection.level == DOSSIER:
            return url_for("dossiers.details_view", id=connection.owner_dossier_id)
        return url_for("connections.index_view")
    return url_for("admin.index")


# --------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------


@blueprint.before_request
def _logged_in():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return None


@blueprint.post("/reconnect/<int(max=2147483647):connection_id>")
def reconnect(connection_id):
    """Run the consent again for this connection (same row: its dossiers keep working)."""
    connection = db.session.get(Connection, connection_id)
    actor = current_actor()
    if connection is None or actor is None or connection.firm_id != actor.firm_id:
        abort(404)
    if not uses_consent(registry.get_connector(connection.package).spec):
        authorise(actor, RECONNECT, registry.get_connector(connection.package).spec, connection=connection)
        flash("This connection does not use a sign-in at the package: enter its new credentials here.", "info")
        return redirect(url_for("connections.edit_view", id=connection.id))
    return start(RECONNECT, connection.package, connection_id=connection.id)


@blueprint.post("/re-establish/<int(max=2147483647):dossier_id>")
def re_establish(dossier_id):
    """Re-establish a file's sync with a fresh grant at a dossier-level package (scenario 3)."""
    package = request.form.get("package", "")
    if package not in {spec.key for spec in registry.specs(level=DOSSIER)}:
        abort(400)
    return start(RE_ESTABLISH, package, dossier_id=dossier_id)


@blueprint.get("/callback")
def callback():
    """Where every package sends the user back after the consent page."""
    flow = current_flow()
    if flow is None:
        flash(MISMATCH, "error")
        return redirect(url_for("admin.index"))
    if not _secrets.compare_digest(str(request.args.get("state", "")), flow["state"]):
        # a link from elsewhere (any site can send the browser here): the pending flow stays, so the
        # package's genuine answer still completes it
        flash(MISMATCH, "error")
        return redirect(restart_url(flow))
    if flow.get("grant"):  # the genuine answer, replayed
        discard_flow(flow)
        flash(MISMATCH, "error")
        return redirect(restart_url(flow))
    if time.time() > flow["expires_at"]:
        discard_flow(flow)
        flash(EXPIRED, "error")
        return redirect(restart_url(flow))
    _check_flow_actor(flow)
    spec = registry.get_connector(flow["package"]).spec
    error = request.args.get("error")
    if error or not (request.args.get("code") or request.args.get("token")):
        discard_flow(flow)
        refused = error in (None, "", "access_denied")
        flash(f"Consent was refused in {spec.display_name}; nothing was changed." if refused else
              f"{spec.display_name} did not give access; nothing was changed. Please try again.", "error")
        return redirect(restart_url(flow))
    try:
        grant = grant_from(spec, flow["config"], request.args, flow["redirect_uri"], flow.get("verifier"))
    except ConnectorError as failure:
        discard_flow(flow)
        flash(_scrub(failure.message, flow), "error")
        return redirect(restart_url(flow))
    flow["grant"] = grant
    return _after_grant(flow, spec)


def _after_grant(flow, spec):
    """List the grant's companies; ask when there are several and a choice is needed."""
    credentials = {**split_config(spec, flow["config"])[1], **flow["grant"]}
    try:
        references = grant_references(spec, flow["config"], credentials)
    except ConnectorError as error:
        references, problem = None, _scrub(error.message, flow)
    else:
        problem = None
    needs_choice = flow["purpose"] in (NEW_CLIENT, RE_ESTABLISH)
    if needs_choice and not references:
        discard_flow(flow)
        flash(problem or gettext("%(package)s accepted the sign-in, but shared no %(thing)s with Firmsync. Nothing "
                                 "was changed.", package=spec.display_name, thing=gettext(spec.reference_label)), "error")
        return redirect(restart_url(flow))
    flow["references"] = references or []
    flow["expires_at"] = time.time() + FLOW_SECONDS
    if needs_choice and len(references) > 1:
        save_flow(flow)
        return redirect(url_for("oauth.choose"))
    chosen = references[0] if needs_choice else None
    return _finish(flow, spec, chosen, problem)


@blueprint.route("/choose", methods=["GET", "POST"])
def choose():
    """Ask which organisation (company, agreement) the file syncs with; never the first silently."""
    flow = current_flow()
    if flow is None or not flow.get("grant"):
        flash(MISMATCH, "error")
        return redirect(url_for("admin.index"))
    if time.time() > flow["expires_at"]:
        discard_flow(flow)
        flash(EXPIRED, "error")
        return redirect(restart_url(flow))
    _check_flow_actor(flow)
    spec = registry.get_connector(flow["package"]).spec
    if request.method == "POST":
        chosen = next((r for r in flow["references"] if r["reference"] == request.form.get("reference")), None)
        if chosen is not None:
            return _finish(flow, spec, chosen, None)
        flash(gettext("Choose one %(thing)s.", thing=gettext(spec.reference_label)), "error")
    admin = current_app.extensions["firmsync.admin"]
    return admin.index_view.render("admin/oauth/choose.html", spec=spec, references=flow["references"],
                                   details=flow.get("details") or {})


# --------------------------------------------------------------------------------------
# Finishing each purpose
# --------------------------------------------------------------------------------------


def _finish(flow, spec, chosen, problem):
    actor, connection, dossier = _check_flow_actor(flow)
    discard_flow(flow)
    finish = {NEW_CONNECTION: _finish_new_connection, RECONNECT: _finish_reconnect,
              NEW_CLIENT: _finish_new_client, RE_ESTABLISH: _finish_re_establish}[flow["purpose"]]
    try:
        target = finish(flow, spec, actor, connection=connection, dossier=dossier, chosen=chosen, problem=problem)
    except HTTPException:
        db.session.rollback()
        raise
    except Exception:
        db.session.rollback()
        log.exception("finishing the %s flow for %s failed", flow["purpose"], flow["package"])
        flash("Firmsync could not finish the connection; nothing was changed. Please try again.", "error")
        return redirect(restart_url(flow))
    return redirect(target)


def _finish_new_connection(flow, spec, actor, *, chosen, problem, **_):
    config, secrets = split_config(spec, flow["config"])
    name = (flow["details"].get("name") or spec.display_name).strip()[:200]
    connection = Connection(firm_id=actor.firm_id, package=spec.key, kind=spec.kind, level=FIRM, name=name,
                            config=config, credentials={**secrets, **flow["grant"]}, status=ConnectionStatus.ACTIVE)
    _remember_references(connection, flow)
    db.session.add(connection)
    db.session.flush()
    changes = {"name": [None, name], "package": [None, spec.key], **{k: [None, v] for k, v in config.items()},
               **{k: [audit.SECRET_MARK, audit.SECRET_MARK] for k in [*secrets, "grant"]}}
    audit.record(actor, "create", connection, summary=f"Added connection {name} ({spec.display_name}) after consent",
                 changes=changes)
    db.session.commit()
    found = len(connection.references or [])
    flash(gettext("%(name)s is connected to %(package)s.", name=name, package=spec.display_name) + " " + (
          problem or ngettext("%(num)d company found.", "%(num)d companies found.", found)),
          "success" if not problem else "warning")
    return url_for("connections.details_view", id=connection.id)


def _finish_reconnect(flow, spec, actor, *, connection, problem, **_):
    kept = {k: v for k, v in (connection.credentials or {}).items() if k in secret_keys(spec)}
    connection.credentials = {**kept, **flow["grant"]}
    connection.status = ConnectionStatus.ACTIVE
    _remember_references(connection, flow)
    audit.record(actor, "connection.reconnect", connection, summary=f"Reconnected {connection.name} ({spec.display_name})",
                 changes={"grant": [audit.SECRET_MARK, audit.SECRET_MARK], "status": [None, ConnectionStatus.ACTIVE]})
    message = gettext("%(name)s is reconnected.", name=connection.name)
    category = "success"
    if connection.level == DOSSIER:
        reachable = {r["reference"] for r in flow["references"]}
        lost = [l for l in connection_links(connection) if l.reference not in reachable]
        if flow["references"] and lost:
            message += " " + gettext("Careful: the new sign-in does not reach %(company)s (%(thing)s); re-establish "
                                     "the file's sync to pick another.", thing=gettext(spec.reference_label),
                                     company=lost[0].reference_name or lost[0].reference)
            category = "warning"
    if problem:
        message, category = f"{message} {problem}", "warning"
    db.session.commit()
    flash(message, category)
    return restart_url({"purpose": RECONNECT, "connection_id": connection.id})


def connection_links(connection):
    from app.models import DossierLink

    return db.session.scalars(db.select(DossierLink).where(DossierLink.connection_id == connection.id,
                                                           DossierLink.ended_at.is_(None))).all()


def _remember_references(connection, flow):
    from app.models.base import utcnow

    if flow.get("references"):
        connection.references = flow["references"]
        connection.references_refreshed_at = utcnow()


def _dossier_connection(flow, spec, actor, dossier, chosen):
    config, secrets = split_config(spec, flow["config"])
    connection = Connection(
        firm_id=actor.firm_id, package=spec.key, kind=spec.kind, level=DOSSIER, owner_dossier_id=dossier.id,
        name=f"{spec.display_name} – {chosen['name']}"[:200], config=config,
        credentials={**secrets, **flow["grant"]}, status=ConnectionStatus.ACTIVE,
    )
    _remember_references(connection, flow)
    db.session.add(connection)
    db.session.flush()
    audit.record(actor, "create", connection, dossier_id=dossier.id,
                 summary=f"Connected file {dossier} to {spec.display_name} {spec.reference_label} {chosen['name']}",
                 changes={"package": [None, spec.key], "grant": [audit.SECRET_MARK, audit.SECRET_MARK]})
    return connection


def _finish_new_client(flow, spec, actor, *, chosen, **_):

    dossier = create_dossier(actor, flow["details"])
    connection = _dossier_connection(flow, spec, actor, dossier, chosen)
    link_and_queue(actor, dossier, connection, chosen)
    flash(f"The file {dossier} was created and is linked to {spec.display_name} ({chosen['name']}). "
          "The first sync is queued; fiscal years fill in when it has run.", "success")
    return url_for("dossier.index", id=dossier.id)  # the file page, with the set-up run's live progress


def _finish_re_establish(flow, spec, actor, *, dossier, chosen, **_):
    connection = _dossier_connection(flow, spec, actor, dossier, chosen)
    link_and_queue(actor, dossier, connection, chosen)
    flash(f"The sync of {dossier} was re-established with {spec.display_name} ({chosen['name']}); "
          "a full sync is queued.", "success")
    return url_for("dossiers.details_view", id=dossier.id)


def link_and_queue(actor, dossier, connection, chosen):
    """Link ``dossier`` to ``chosen`` through ``connection`` and queue the setup sync (commits).

    Goes through :mod:`app.services.links`: a dossier without an active link of that kind is set
    up with scenario (B) "replace"; one with an active link is re-established (scenario 3).
    """
    from app.services.links import set_up_sync, switch_sync
    from app.services.syncs import active_run

    reference, name = str(chosen["reference"]), chosen.get("name")
    if connection.kind == "accounting" and dossier.active_link("accounting") is not None:
        link = switch_sync(actor, dossier, Scenario.RE_ESTABLISH, connection, reference, reference_name=name)
    else:
        link = set_up_sync(actor, dossier, connection, reference, Scenario.REPLACE, reference_name=name)
    return active_run(link.id)


def _scrub(message, flow):
    values = [str(v) for v in {**flow.get("config", {}), **(flow.get("grant") or {})}.values() if isinstance(v, str)]
    sensitive = [v for v in values if len(v) >= 8 and not v.startswith("http")]
    return scrub_text(message, sensitive)
