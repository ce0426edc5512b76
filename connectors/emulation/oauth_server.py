"""A small OAuth2 authorization server for emulated packages.

Authorization code grant with a real HTML consent page ("Allow"/"Deny"), PKCE (S256 and
plain) verified at the token endpoint, client authentication by HTTP basic or form
fields, and refresh tokens that rotate where the package rotates them: the old refresh
token works once, then answers ``invalid_grant``.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from urllib.parse import urlencode

from flask import Blueprint, jsonify, redirect, render_template_string, request

CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ package }}: authorize Firmsync</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:4rem auto}button{font-size:1rem;margin-right:1rem}</style>
</head><body>
<h1>{{ package }}</h1>
<p><strong>{{ client_id }}</strong> asks to read your accounting data{% if scope %} ({{ scope }}){% endif %}.</p>
<form method="post">
  {% for name, value in params.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
  <button type="submit" name="decision" value="allow" id="allow">Allow</button>
  <button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>"""

AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                    "code_challenge_method")


class OAuthProvider:
    """The grants of one emulated package. Thread safe."""

    def __init__(self, package, display_name, state, *, clients, access_seconds=1800, rotating=True):
        self.package = package
        self.display_name = display_name
        self.state = state
        self.clients = dict(clients)
        self.access_seconds = access_seconds
        self.rotating = rotating
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.codes = {}
            self.access_tokens = {}  # token -> expires at (time.time())
            self.refresh_tokens = {}  # token -> {"client_id", "used", "grant"}
            self.grants = {}  # access token -> grant id (one per consent, kept across refreshes)

    def revoke_all(self):
        """The user revoked the app: every access and refresh token stops working."""
        with self.lock:
            self.access_tokens.clear()
            self.refresh_tokens.clear()
            self.grants.clear()

    def valid_bearer(self, header):
        if not header or not header.startswith("Bearer "):
            return False
        with self.lock:
            expires = self.access_tokens.get(header[7:].strip())
        return expires is not None and expires > time.time()

    def grant_of(self, header):
        """The grant (one user's consent: a connection) a bearer token belongs to, or None."""
        if not header or not header.startswith("Bearer "):
            return None
        with self.lock:
            return self.grants.get(header[7:].strip())

    def _issue(self, client_id, grant=None):
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        grant = grant or secrets.token_hex(8)
        with self.lock:
            self.access_tokens[access] = time.time() + self.access_seconds
            self.grants[access] = grant
            self.refresh_tokens[refresh] = {"client_id": client_id, "used": False, "grant": grant}
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                "expires_in": self.access_seconds}

    # -- routes ------------------------------------------------------------------------
    def blueprint(self, name, url_prefix):
        """Routes ``/oauth/authorize`` and ``/oauth/token`` under ``url_prefix``."""
        bp = Blueprint(name, __name__, url_prefix=url_prefix)
        bp.add_url_rule("/oauth/authorize", "authorize", self.authorize, methods=["GET", "POST"])
        bp.add_url_rule("/oauth/token", "token", self.token, methods=["POST"])
        return bp

    def authorize(self):
        values = request.values
        client_id, redirect_uri = values.get("client_id"), values.get("redirect_uri")
        if client_id not in self.clients or not redirect_uri:
            return "Unknown application or missing redirect_uri.", 400
        if values.get("response_type") != "code":
            return "Only response_type=code is supported.", 400
        params = {k: values[k] for k in AUTHORIZE_PARAMS if values.get(k)}
        if request.method == "GET":
            return render_template_string(CONSENT_PAGE, package=self.display_name, client_id=client_id,
                                          scope=values.get("scope"), params=params)
        answer = {"state": values.get("state")} if values.get("state") else {}
        if values.get("decision") != "allow":
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            with self.lock:
                self.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                    "challenge": values.get("code_challenge"),
                                    "method": values.get("code_challenge_method") or "plain",
                                    "expires": time.time() + 600}
            answer["code"] = code
        separator = "&" if "?" in redirect_uri else "?"
        return redirect(redirect_uri + separator + urlencode(answer))

    def _client(self):
        if request.authorization and request.authorization.type == "basic":
            client_id, secret = request.authorization.username, request.authorization.password
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        if client_id in self.clients and secrets.compare_digest(self.clients[client_id], secret or ""):
            return client_id
        return None

    def token(self):
        client_id = self._client()
        if client_id is None:
            return _error("invalid_client", 401)
        grant = request.form.get("grant_type")
        if grant == "authorization_code":
            with self.lock:
                data = self.codes.pop(request.form.get("code", ""), None)
            if (data is None or data["client_id"] != client_id or data["expires"] < time.time()
                    or data["redirect_uri"] != request.form.get("redirect_uri")):
                return _error("invalid_grant")
            if data["challenge"] and not _pkce_ok(data, request.form.get("code_verifier", "")):
                return _error("invalid_grant", description="PKCE verification failed")
            self.state.token_grants[self.package] += 1
            return jsonify(self._issue(client_id))
        if grant == "refresh_token":
            self.state.token_refreshes[self.package] += 1
            refresh = request.form.get("refresh_token", "")
            with self.lock:
                data = self.refresh_tokens.get(refresh)
                if data is None or data["used"] or data["client_id"] != client_id:
                    return _error("invalid_grant")
                if self.rotating:
                    data["used"] = True
            issued = self._issue(client_id, data.get("grant"))
            if not self.rotating:
                with self.lock:
                    self.refresh_tokens.pop(issued["refresh_token"], None)
                issued["refresh_token"] = refresh
            return jsonify(issued)
        return _error("unsupported_grant_type")


def _pkce_ok(data, verifier):
    if data["method"] == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        expected = verifier
    return secrets.compare_digest(expected, data["challenge"])


def _error(code, status=400, description=None):
    body = {"error": code}
    if description:
        body["error_description"] = description
    return jsonify(body), status
