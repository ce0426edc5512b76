"""Demo Cloud: the Demo Books data behind OAuth2 (connector ``connectors/demo_oauth.py``).

Authorization code with PKCE at ``/demo-cloud/oauth/authorize`` and ``/demo-cloud/oauth/token``;
access tokens last 30 minutes; refresh tokens rotate (each works once). Data at
``/demo-cloud/api/v1`` with ``Authorization: Bearer``, shaped like Demo Books.
"""
from flask import current_app, request

from connectors.demo.emulator import data_blueprint, error
from connectors.emulation.oauth_server import OAuthProvider

PACKAGE = "demo_oauth"
DISPLAY_NAME = "Demo Cloud"
DEFAULT_CLIENTS = {"demo-cloud-client": "demo-cloud-secret"}


def _bearer():
    provider = current_app.extensions["sandbox"].oauth[PACKAGE]
    if not provider.valid_bearer(request.headers.get("Authorization")):
        return error("invalid_token", "The access token is invalid or has expired", 401)
    return None


def register(app, state):
    """Mount the Demo Cloud OAuth server and data API under ``/demo-cloud``."""
    settings = app.config["SANDBOX"]
    provider = OAuthProvider(
        PACKAGE, DISPLAY_NAME, state, clients=settings.get("oauth_clients") or DEFAULT_CLIENTS,
        access_seconds=settings.get("token_seconds") or 1800, rotating=True,
    )
    state.oauth[PACKAGE] = provider
    app.register_blueprint(provider.blueprint("demo_oauth_auth", "/demo-cloud"))
    app.register_blueprint(data_blueprint(PACKAGE, "/demo-cloud/api/v1", _bearer))
