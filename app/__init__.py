"""Firmsync application factory."""
import logging
import os
import secrets
from pathlib import Path

from urllib.parse import urlsplit

from flask import Flask, redirect, url_for

from app.instance_files import private_folder, private_sqlite, write_private
from config import CONFIGS, environment_overrides

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config_name=None, **overrides):
    """Create and configure a Flask application.

    ``config_name`` picks a class of :mod:`config` (default: ``$FIRMSYNC_ENV`` or
    ``development``); the environment then overrides it, and ``overrides`` win last
    (tests use them). Nothing runs at import time: every extension, the console and the
    blueprints are bound here.
    """
    config_name = config_name or os.environ.get("FIRMSYNC_ENV", "development")
    app = Flask(
        __name__,
        instance_path=os.environ.get("FIRMSYNC_INSTANCE_PATH", str(PROJECT_ROOT / "instance")),
    )
    app.config.from_object(CONFIGS[config_name])
    app.config["ENV_NAME"] = config_name
    app.config.update(environment_overrides())
    app.config.update(overrides)
    _fill_local_defaults(app)

    from app import extensions
    from app.crypto import init_keyring
    from app.redis_connection import init_redis

    extensions.db.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=str(PROJECT_ROOT / "migrations"))
    extensions.csrf.init_app(app)
    app.wsgi_app = extensions.mark_web_requests(app.wsgi_app)  # web sessions get the web timeouts
    with app.app_context():
        extensions.configure_engine(extensions.db.engine, app.config)
    init_keyring(app)
    init_redis(app)

    from app import auth, cli, i18n, oauth_flow, portal

    auth.init_app(app)
    i18n.init_app(app)
    from app import time_zones

    time_zones.init_app(app)  # local_time() in templates: times in the viewer's firm's zone
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(portal.blueprint)
    app.register_blueprint(oauth_flow.blueprint)
    from app.api import init_api

    init_api(app)  # the public API, /api/v1 (docs/api.md)
    cli.init_app(app)

    from app import web_security

    web_security.init_app(app)

    from app import unavailable

    unavailable.init_app(app)  # database or Redis away: a 503 page, never a 500
    from app import health

    app.register_blueprint(health.blueprint)  # GET /healthz

    from admin_views import init_admin

    init_admin(app)

    from app.secret_scrubbing import install_log_filter

    install_log_filter(app)

    @app.route("/")
    def home():
        return redirect(url_for("auth.landing"))

    return app


def _fill_local_defaults(app):
    """Development conveniences: a SQLite file and a session key kept under ``instance/``."""
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        private_folder(app.instance_path)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(Path(app.instance_path) / "firmsync.db")
    private_sqlite(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["ENV_NAME"] == "production" and not urlsplit(app.config["REDIS_URL"]).password:
        raise RuntimeError("REDIS_URL must carry a password in production (redis://:<password>@host:6379/0): "
                           "the queues hold every sync's work")
    if not app.config.get("SECRET_KEY"):
        if app.config["ENV_NAME"] == "production":
            raise RuntimeError("FIRMSYNC_SECRET_KEY must be set in production")
        path = Path(app.instance_path) / "secret.key"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(48))
        app.config["SECRET_KEY"] = path.read_text().strip()
    from app.extensions import engine_options

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    logging.getLogger("firmsync").setLevel(logging.INFO)
