"""The public REST API, ``/api/v1`` (docs/api.md), with its OpenAPI document.

:func:`init_api` binds it to an application: a flask-smorest :class:`Api` whose document is
generated from :mod:`app.api.schemas` and served at ``/api/v1/openapi.json`` (a plain
reference page at ``/api/v1/docs``). Every call is authenticated by a bearer token
(:mod:`app.services.api_tokens`), never by the console's session cookie, so the blueprint is
exempt from CSRF; every call is rate limited per token (:mod:`app.api.rate_limit`) and
logged with the token's id.
"""
import logging

from flask import current_app, g, request
from flask_smorest import Api, abort

from app.api.resources import blueprint
from app.api.schemas import LinkSchema
from app.services.api_tokens import authenticate

log = logging.getLogger("firmsync.api")

API_SETTINGS = {
    "API_TITLE": "Firmsync API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
}


class FirmsyncApi(Api):
    """flask-smorest's Api answering JSON errors on the API's own paths only (the console keeps its pages)."""

    def _register_error_handlers(self):
        """Nothing app-wide: :mod:`app.api.resources` registers the handler on the API blueprint."""


def init_api(app):
    """Bind the API to ``app`` (called once by ``create_app``)."""
    from app.extensions import csrf

    for key, value in API_SETTINGS.items():
        app.config.setdefault(key, value)
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "Read a firm's synced data, start syncs and follow them. See docs/api.md."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })
    api = FirmsyncApi(app)
    api.spec.components.schema("Link", schema=LinkSchema)
    csrf.exempt(blueprint)
    api.register_blueprint(blueprint)
    app.add_url_rule("/api/v1/docs", "api_reference_page", _reference_page)

    def _api_routing_error(error):
        """An unknown path or method under ``/api/`` answers JSON like the API; an unknown page
        elsewhere gets the plain 404 page in the visitor's language (console screens draw their own)."""
        if request.path.startswith("/api/"):
            return api.handle_http_exception(error)
        if error.code == 404:
            from app.unavailable import not_found_response

            return not_found_response()
        return error

    app.register_error_handler(404, _api_routing_error)
    app.register_error_handler(405, _api_routing_error)
    return api


def _reference_page():
    """A human page listing the operations of the OpenAPI document (no script, no CDN)."""
    from markupsafe import escape

    api = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    spec = api.spec.to_dict()
    items = []
    for path, operations in sorted(spec["paths"].items()):
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                items.append(f"<li><code>{method.upper()} {escape(path)}</code> — "
                             f"{escape(operation.get('summary', ''))}</li>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Firmsync API</title></head>"
            f"<body><h1>Firmsync API {escape(spec['info']['version'])}</h1>"
            f"<p>Machine-readable document: <a href=\"/api/v1/openapi.json\">openapi.json</a>. "
            f"Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>"
            f"<ul>{''.join(items)}</ul></body></html>")


@blueprint.before_request
def _authenticate():
    """Bearer token only: a session cookie never authenticates an API call."""
    from app.api.rate_limit import take

    header = request.headers.get("Authorization", "")
    scheme, _, text = header.partition(" ")
    caller = authenticate(text.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        abort(401, message="Send a valid, unexpired API token as 'Authorization: Bearer <token>'.",
              headers={"WWW-Authenticate": 'Bearer realm="firmsync"'})
    allowed, headers = take(caller.token_id)
    g.api_rate_headers = headers
    if not allowed:
        abort(429, message="Too many calls with this token: wait Retry-After seconds.", headers=headers)
    g.api_caller = caller
    log.info("api call by API key #%s of firm %s: %s %s", caller.token_id, caller.firm_id, request.method, request.path)


@blueprint.after_request
def _rate_headers(response):
    for name, value in getattr(g, "api_rate_headers", {}).items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "private, no-cache")
    return response
