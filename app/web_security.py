"""HTTP response hardening for every page and answer (OWASP ASVS V14.4).

* **Content-Security-Policy** without ``'unsafe-inline'`` scripts: scripts come from this
  server, and the few inline ones carry the request's nonce (``{{ csp_nonce() }}`` in our
  templates, ``admin_csp_nonce_attribute`` in Flask-Admin's); no inline event handlers.
  Styles may be inline (Bootstrap's components set ``style`` attributes). No frames, plugins
  or foreign ``<base>``. flask-talisman writes the header and makes the nonce.
* **HSTS** in production (answers that came over HTTPS, directly or through a trusted proxy).
* ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  same-origin``.
* ``Cache-Control: no-store`` on everything but static files: console and portal pages hold
  a firm's figures and must not stay in a shared or back-button cache.
* ``Server: Firmsync``, without a version (the development server would name itself and Python's).
* A request whose query string or form holds a NUL character answers 400: no text of Firmsync
  has one, and PostgreSQL refuses it in a query (a failure instead of an answer).
* A form whose CSRF token is missing, wrong or older than ``WTF_CSRF_TIME_LIMIT`` answers 400
  with a page that says nothing was saved, in the user's language.
"""
from flask import abort, render_template, request
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFError

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
}
HSTS_SECONDS = 365 * 24 * 3600

talisman = Talisman()


def init_app(app):
    """Bind the headers to ``app`` (before the console, so its templates get the nonce)."""
    production = app.config.get("ENV_NAME") == "production"
    talisman.init_app(
        app,
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["script-src"],
        force_https=False,  # the TLS proxy redirects; a redirect here would loop behind an untrusted one
        strict_transport_security=production,
        strict_transport_security_max_age=HSTS_SECONDS,
        session_cookie_secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
        session_cookie_http_only=True,
        frame_options="DENY",
        referrer_policy="same-origin",
    )

    app.before_request(refuse_nul_characters)

    @app.after_request
    def no_store_and_no_version(response):
        if not (request.endpoint or "").endswith("static"):
            response.headers["Cache-Control"] = "no-store"
        response.headers["Server"] = "Firmsync"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.errorhandler(CSRFError)
    def form_refused(error):
        return render_template("auth/form_expired.html"), 400


def refuse_nul_characters():
    """400 for a NUL character in any query or form value or name."""
    if any("\x00" in key or "\x00" in value for key, value in request.values.items(multi=True)):
        abort(400)


def csp_nonce():
    """The current request's script nonce (for Flask-Admin's ``csp_nonce_generator``)."""
    return getattr(request, "csp_nonce", "")
