"""Login, logout, firm switching and login throttling."""
import logging
from urllib.parse import urljoin, urlparse

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from sqlalchemy import func, select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from app.access import SESSION_FIRM_KEY, current_actor
from app.extensions import db, login_manager
from app.models import User
from app.models.base import utcnow
from app.redis_connection import redis_connection

blueprint = Blueprint("auth", __name__)
log = logging.getLogger("firmsync.auth")


def init_app(app):
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "strong"

    @app.context_processor
    def inject_actor():
        return {"actor": current_actor() if current_user.is_authenticated else None}


@login_manager.user_loader
def load_user(user_id):
    return db.session.get(User, int(user_id))


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("E-mail"), validators=[DataRequired()])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired()])


def safe_next(target):
    """Return ``target`` if it stays on this site, else None (never redirect off-site)."""
    # browsers drop tabs and newlines inside URLs and read a backslash as a slash
    if not target or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    host = urlparse(request.host_url)
    resolved = urlparse(urljoin(request.host_url, target))
    if resolved.scheme not in ("http", "https") or resolved.netloc != host.netloc:
        return None
    if target.startswith("//") or urlparse(target).netloc:
        return None
    # the normalised path of "/.//evil.example" or "/a/..//evil.example" is "//evil.example": another host
    if not resolved.path.startswith("/") or resolved.path.startswith("//"):
        return None
    return resolved.path + (("?" + resolved.query) if resolved.query else "")


class LoginThrottle:
    """Fixed-window counters of failed logins per account and per client address (Redis).

    If Redis cannot be reached the throttle lets the attempt through (logged): the
    password check still applies, and an outage of Redis must not lock every user out.
    """

    def __init__(self, email, address):
        self.keys = {
            f"firmsync:login-failures:account:{email}": current_app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
            f"firmsync:login-failures:address:{address}": current_app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        }
        self.window = current_app.config["LOGIN_THROTTLE_WINDOW_SECONDS"]

    def blocked(self):
        try:
            values = redis_connection().mget(list(self.keys))
        except RedisError:
            log.warning("login throttle unavailable (Redis unreachable)")
            return False
        return any(v is not None and int(v) >= limit for v, limit in zip(values, self.keys.values()))

    def failed(self):
        try:
            pipe = redis_connection().pipeline()
            for key in self.keys:
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
            pipe.execute()
        except RedisError:
            log.warning("login throttle unavailable (Redis unreachable)")

    def succeeded(self):
        try:
            redis_connection().delete(next(iter(self.keys)))
        except RedisError:
            pass


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.landing"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        throttle = LoginThrottle(email, request.remote_addr or "unknown")
        if throttle.blocked():
            flash(gettext("Too many failed attempts. Please wait 15 minutes and try again."), "danger")
            return render_template("auth/login.html", form=form), 429
        user = db.session.scalar(select(User).where(func.lower(User.email) == email))
        if user is None or not user.check_password(form.password.data) or not user.is_active:
            throttle.failed()
            flash(gettext("Unknown e-mail or wrong password."), "danger")
            status = 401
        else:
            throttle.succeeded()
            session.clear()
            login_user(user)
            user.last_login_at = utcnow()
            db.session.commit()
            first = sorted(user.memberships, key=lambda m: m.firm_id)
            if first:
                session[SESSION_FIRM_KEY] = first[0].firm_id
            return redirect(safe_next(request.args.get("next")) or url_for("auth.landing"))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@blueprint.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@blueprint.route("/landing")
@login_required
def landing():
    """Send each user where they belong: console, or the portal for pulse users."""
    actor = current_actor()
    if actor is None:
        logout_user()
        flash("Your account has no access to any firm.", "warning")
        return redirect(url_for("auth.login"))
    if actor.uses_console:
        return redirect(url_for("admin.index"))
    return redirect(url_for("portal.index"))


@blueprint.route("/switch-firm/<int:firm_id>", methods=["POST"])
@login_required
def switch_firm(firm_id):
    if current_user.membership_for(firm_id) is None and not current_user.is_support:
        abort(403)
    session[SESSION_FIRM_KEY] = firm_id
    return redirect(url_for("auth.landing"))


@blueprint.route("/locale", methods=["POST"])
def set_locale():
    """The language picker: store ``locale`` for the user (or, logged out, the session).

    An empty value goes back to the browser's language; a language Firmsync does not
    offer answers 400.
    """
    from app.i18n import SESSION_LOCALE_KEY, languages

    choice = (request.form.get("locale") or "").strip()
    if choice and choice not in languages():
        abort(400)
    if current_user.is_authenticated:
        current_user.locale = choice or None
        db.session.commit()
    if choice:
        session[SESSION_LOCALE_KEY] = choice
    else:
        session.pop(SESSION_LOCALE_KEY, None)
    return redirect(safe_next(request.form.get("next")) or url_for("auth.landing"))
