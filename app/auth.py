"""Login (with the optional TOTP second factor), logout, revocable sessions, login throttling,
the account page, accepting invitations, firm switching and the language picker.

The decisions (session versions, backoff, proxies, passwords, invitations, TOTP) are written
down in ``docs/security-accounts.md``.
"""
import hashlib
import logging
import math
import time
from types import SimpleNamespace
from urllib.parse import urljoin, urlparse

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import check_password_hash
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from app.access import SESSION_FIRM_KEY, current_actor
from app.extensions import db, login_manager
from app.i18n import N_
from app.models import Role, User
from app.models.base import utcnow
from app.models.firm import dummy_password_hash
from app.redis_connection import redis_connection
from app.services import accounts

blueprint = Blueprint("auth", __name__)
log = logging.getLogger("firmsync.auth")

#: session key of a login waiting for its second factor: {"user": get_id(), "next": ..., "at": clock()}
PENDING_LOGIN_KEY = "pending_login"
#: seconds a login may wait for its second factor
PENDING_LOGIN_SECONDS = 5 * 60
#: session key of the TOTP secret being enrolled (saved on the user once a code proves it)
TOTP_ENROLMENT_KEY = "totp_enrolment"
#: the role names of ``Role.LABELS``, shown translated on the invitation page
ROLE_LABELS_FOR_CATALOGS = (N_("Administrator"), N_("Staff contributor"), N_("External contributor"), N_("Pulse user"))


def init_app(app):
    """Bind Flask-Login, trust the configured proxies' forwarded headers, expose ``actor``."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "strong"

    x_for, x_proto = int(app.config["PROXY_FIX_X_FOR"] or 0), int(app.config["PROXY_FIX_X_PROTO"] or 0)
    if x_for or x_proto:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for, x_proto=x_proto)

    @app.context_processor
    def inject_actor():
        return {"actor": current_actor() if current_user.is_authenticated else None}


@login_manager.user_loader
def load_user(session_user_id):
    """The user of a session whose id (``"<id>:<session_version>"``, see ``User.get_id``) is
    still current: raising ``User.session_version`` ends every older session."""
    user_id, _, version = str(session_user_id).partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or version != str(user.session_version or 0):
        return None
    return user


def clock():
    """Seconds since the epoch: the login throttle's clock (tests move it forward)."""
    return time.time()


def client_address():
    """The client's address: the connection's, or the one a trusted proxy forwarded."""
    return request.remote_addr or "unknown"


class StrongPassword:
    """WTForms validator: the password rules of :func:`app.services.accounts.password_problem`.

    A form may name the person the password is for in ``form.person`` (anything with ``email``
    and ``name``, such as a :class:`User`): their e-mail and name then count as easy guesses. Empty fields are left to other validators.
    """

    def __call__(self, form, field):
        if not field.data:
            return
        person = getattr(form, "person", None)
        known = (person.email, person.name) if person is not None else ()
        email_field = getattr(form, "email", None)
        if email_field is not None and email_field.data:
            known += (email_field.data,)
        problem = accounts.password_problem(field.data, *known)
        if problem:
            raise ValidationError(str(problem))


def password_description():
    return lazy_gettext("At least %(count)d characters, not a common password.", count=accounts.PASSWORD_MIN_LENGTH)


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("E-mail"), validators=[DataRequired()])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired()])


class CodeForm(FlaskForm):
    code = StringField(lazy_gettext("Code from your authenticator app"), validators=[DataRequired(), Length(max=12)])


class NameForm(FlaskForm):
    name = StringField(lazy_gettext("Name"), validators=[DataRequired(), Length(max=200)])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(lazy_gettext("Current password"), validators=[DataRequired()])
    new_password = PasswordField(lazy_gettext("New password"), validators=[DataRequired(), StrongPassword()],
                                 description=password_description())
    confirm = PasswordField(lazy_gettext("New password again"), validators=[
        DataRequired(), EqualTo("new_password", message=lazy_gettext("The two passwords differ."))])


class TwoFactorOffForm(FlaskForm):
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired()])
    code = StringField(lazy_gettext("Code from your authenticator app"), validators=[DataRequired(), Length(max=12)])


class NewAccountForm(FlaskForm):
    name = StringField(lazy_gettext("Your name"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(lazy_gettext("Choose a password"), validators=[DataRequired(), StrongPassword()],
                             description=password_description())
    confirm = PasswordField(lazy_gettext("The same password again"), validators=[
        DataRequired(), EqualTo("password", message=lazy_gettext("The two passwords differ."))])


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
    """Failed logins per (account, address) and per address, with exponential backoff (Redis).

    The first failures are free; from ``LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_ADDRESS`` failures
    of one account from one address (or ``LOGIN_FREE_FAILURES_PER_ADDRESS`` of any accounts
    from one address) each attempt from that address must wait ``LOGIN_BACKOFF_SECONDS``,
    doubled at every further failure, at most ``LOGIN_BACKOFF_MAX_SECONDS``. The account
    itself is never locked: its owner logs in from another address, or after the wait.
    A success forgets the (account, address) failures. Accounts appear in Redis only as
    hashes, whether they exist or not.

    If Redis cannot be reached the throttle lets the attempt through (logged): the
    password check still applies, and an outage of Redis must not lock every user out.
    """

    def __init__(self, email, address):
        config = current_app.config
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        self.account_key = f"firmsync:login-failures:account-address:{account}:{address}"
        self.free_failures = {
            self.account_key: int(config["LOGIN_FREE_FAILURES_PER_ACCOUNT_AND_ADDRESS"]),
            f"firmsync:login-failures:address:{address}": int(config["LOGIN_FREE_FAILURES_PER_ADDRESS"]),
        }

    def wait(self):
        """Seconds before the next attempt from this address for this account may be checked."""
        try:
            pipe = redis_connection().pipeline()
            for key in self.free_failures:
                pipe.hget(key, "until")
            until = pipe.execute()
        except RedisError:
            log.warning("login throttle unavailable (Redis unreachable)")
            return 0
        now = clock()
        return max([float(value) - now for value in until if value is not None] + [0])

    def failed(self):
        config = current_app.config
        try:
            connection = redis_connection()
            now = clock()
            for key, free in self.free_failures.items():
                failures = connection.hincrby(key, "failures", 1)
                if failures >= free:
                    doublings = min(failures - free, 32)
                    delay = min(int(config["LOGIN_BACKOFF_SECONDS"]) * 2 ** doublings,
                                int(config["LOGIN_BACKOFF_MAX_SECONDS"]))
                    connection.hset(key, "until", now + delay)
                connection.expire(key, int(config["LOGIN_FAILURES_KEPT_SECONDS"]))
        except RedisError:
            log.warning("login throttle unavailable (Redis unreachable)")

    def succeeded(self):
        try:
            redis_connection().delete(self.account_key)
        except RedisError:
            pass


def too_many_attempts(wait, template, **context):
    """The 429 page of a throttled attempt (with ``Retry-After``)."""
    flash(gettext("Too many failed attempts. Please wait a few minutes and try again."), "danger")
    response = current_app.make_response((render_template(template, **context), 429))
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def password_matches(user, password):
    """Does ``password`` open ``user``'s active account? Hashes once whether or not the
    account exists, so a failure takes the same time for a known and an unknown e-mail."""
    if user is None or not user.password_hash:
        check_password_hash(dummy_password_hash(), password)
        return False
    return user.check_password(password) and user.is_active


def complete_login(user, target=None):
    """Start ``user``'s session in their first firm, note the login, go to ``target``."""
    session.clear()
    login_user(user)
    now = utcnow()
    first = sorted(user.memberships, key=lambda m: m.firm_id)  # read before the change: no autoflush
    user.last_login_at = now
    if first:
        first[0].last_login_at = now
        session[SESSION_FIRM_KEY] = first[0].firm_id
    _commit_login_time(user)
    return redirect(target or url_for("auth.landing"))


def _commit_login_time(user):
    """Record the login time, unless the database is too busy to take a write (SQLite while a
    long sync commits): the person is logged in anyway, the time is only a note."""
    from sqlalchemy.exc import DBAPIError

    from app.unavailable import database_unavailable

    try:
        db.session.commit()
    except DBAPIError as exc:
        if not database_unavailable(exc):
            raise
        db.session.rollback()
        current_app.logger.warning("user %s logged in; the login time was not recorded (database busy)", user.id)


def keep_signed_in(user):
    """After ``user.end_sessions()`` (committed): keep this browser's session, end the others."""
    firm_id = session.get(SESSION_FIRM_KEY)
    login_user(user)
    if firm_id is not None:
        session[SESSION_FIRM_KEY] = firm_id


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.landing"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        throttle = LoginThrottle(email, client_address())
        wait = throttle.wait()
        if wait:
            return too_many_attempts(wait, "auth/login.html", form=form)
        user = accounts.find_user(email)
        if not password_matches(user, form.password.data):
            throttle.failed()
            flash(gettext("Unknown e-mail or wrong password."), "danger")
            status = 401
        else:
            target = safe_next(request.args.get("next"))
            if user.totp_secret:  # the failures are forgotten only once the code is right too
                session.clear()
                session[PENDING_LOGIN_KEY] = {"user": user.get_id(), "next": target, "at": clock()}
                return redirect(url_for("auth.login_code"))
            throttle.succeeded()
            return complete_login(user, target)
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@blueprint.route("/login/code", methods=["GET", "POST"])
def login_code():
    """The second step of a login with a TOTP second factor."""
    pending = session.get(PENDING_LOGIN_KEY) or {}
    user = load_user(pending.get("user", ""))
    if user is None or not user.totp_secret or clock() - pending.get("at", 0) > PENDING_LOGIN_SECONDS:
        session.pop(PENDING_LOGIN_KEY, None)
        return redirect(url_for("auth.login"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        throttle = LoginThrottle(user.email, client_address())
        wait = throttle.wait()
        if wait:
            return too_many_attempts(wait, "auth/login_code.html", form=form)
        step = accounts.totp_step(user.totp_secret, form.code.data, after=user.totp_last_step)
        if step is None or not user.is_active:
            throttle.failed()
            flash(gettext("That code is not right. Enter the current code from your authenticator app."), "danger")
            status = 401
        else:
            throttle.succeeded()
            user.totp_last_step = step
            return complete_login(user, pending.get("next"))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login_code.html", form=form), status


@blueprint.route("/logout", methods=["POST"])
def logout():
    """Log out, ending every session of the user (a copied session cookie stops working too)."""
    if current_user.is_authenticated:
        current_user.end_sessions()
        db.session.commit()
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


@blueprint.route("/switch-firm/<int(max=2147483647):firm_id>", methods=["POST"])
@login_required
def switch_firm(firm_id):
    membership = current_user.membership_for(firm_id)
    if membership is None and not current_user.is_support:
        abort(403)
    if membership is not None:
        membership.last_login_at = utcnow()
        db.session.commit()
    session[SESSION_FIRM_KEY] = firm_id
    return redirect(url_for("auth.landing"))


# -- the account page ------------------------------------------------------------------------

def render_account(name_form=None, password_form=None, status=200):
    name_form = name_form or NameForm(formdata=None, data={"name": current_user.name})
    password_form = password_form or PasswordChangeForm(formdata=None)
    return render_template("auth/account.html", name_form=name_form, password_form=password_form), status


@blueprint.route("/account")
@login_required
def account():
    """The user's own account: name, password, second factor."""
    return render_account()


@blueprint.route("/account/name", methods=["POST"])
@login_required
def change_name():
    form = NameForm()
    if not form.validate_on_submit():
        return render_account(name_form=form, status=400)
    current_user.name = form.name.data.strip()
    db.session.commit()
    flash(gettext("Your name has been saved."), "success")
    return redirect(url_for("auth.account"))


@blueprint.route("/account/password", methods=["POST"])
@login_required
def change_password():
    """Change one's own password (the current one is required); every other session ends."""
    form = PasswordChangeForm()
    form.person = current_user
    if not form.validate_on_submit():
        return render_account(password_form=form, status=400)
    throttle = LoginThrottle(current_user.email, client_address())
    wait = throttle.wait()
    if wait:
        return too_many_attempts(wait, "auth/account.html", name_form=NameForm(formdata=None, data={"name": current_user.name}),
                                 password_form=form)
    if not current_user.check_password(form.current_password.data):
        throttle.failed()
        form.current_password.errors.append(gettext("This is not your current password."))
        return render_account(password_form=form, status=400)
    user = current_user._get_current_object()
    user.set_password(form.new_password.data)
    db.session.commit()
    keep_signed_in(user)
    flash(gettext("Your password has been changed. You were logged out everywhere else."), "success")
    return redirect(url_for("auth.account"))


@blueprint.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor():
    """Turn the TOTP second factor on (scan, then prove with a code) or off (password and code)."""
    user = current_user._get_current_object()
    if not user.totp_secret and not user.may_use_two_factor:
        abort(403)
    status = 200
    if user.totp_secret:
        form = TwoFactorOffForm()
        if form.validate_on_submit():
            step = accounts.totp_step(user.totp_secret, form.code.data, after=user.totp_last_step)
            if not user.check_password(form.password.data) or step is None:
                flash(gettext("Wrong password or code."), "danger")
                status = 400
            else:
                user.totp_secret = None
                user.totp_last_step = None
                db.session.commit()
                flash(gettext("Two-step login is off."), "success")
                return redirect(url_for("auth.account"))
        return render_template("auth/two_factor.html", form=form, enabled=True), status
    secret = session.get(TOTP_ENROLMENT_KEY) or accounts.new_totp_secret()
    session[TOTP_ENROLMENT_KEY] = secret
    form = CodeForm()
    if form.validate_on_submit():
        step = accounts.totp_step(secret, form.code.data)
        if step is None:
            flash(gettext("That code is not right. Enter the current code from your authenticator app."), "danger")
            status = 400
        else:
            user.totp_secret = secret
            user.totp_last_step = step
            user.end_sessions()
            db.session.commit()
            session.pop(TOTP_ENROLMENT_KEY, None)
            keep_signed_in(user)
            flash(gettext("Two-step login is on: from now on you log in with your password and a code."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/two_factor.html", form=form, enabled=False, secret=secret,
                           uri=accounts.totp_uri(secret, user.email)), status


# -- invitations ---------------------------------------------------------------------------

@blueprint.route("/invitation/<token>", methods=["GET", "POST"])
def invitation(token):
    """Accept (or decline) an invitation to join a firm.

    The invited person logs in with their account and accepts; someone without an account
    chooses their name and password here. The link works once, until it expires.
    """
    pending = accounts.pending_invitation(token)
    if pending is None:
        return render_template("auth/invitation.html", invitation=None), 404
    role = gettext(Role.LABELS.get(pending.role, pending.role))
    if current_user.is_authenticated:
        if current_user.email.lower() != pending.email:
            return render_template("auth/invitation.html", invitation=pending, role=role, other_account=True), 403
        if request.method == "POST" and FlaskForm().validate_on_submit():
            if request.form.get("answer") == "decline":
                db.session.delete(pending)
                db.session.commit()
                flash(gettext("You declined the invitation."), "info")
                return redirect(url_for("auth.landing"))
            membership = accounts.accept(pending, current_user)
            membership.last_login_at = utcnow()
            db.session.commit()
            session[SESSION_FIRM_KEY] = membership.firm_id
            flash(gettext("You joined %(firm)s.", firm=membership.firm.name), "success")
            return redirect(url_for("auth.landing"))
        return render_template("auth/invitation.html", invitation=pending, role=role, form=FlaskForm())
    if accounts.find_user(pending.email) is not None:
        return render_template("auth/invitation.html", invitation=pending, role=role, log_in_first=True)
    form = NewAccountForm()
    form.person = SimpleNamespace(email=pending.email, name="")
    if form.validate_on_submit():
        user = User(email=pending.email, name=form.name.data.strip())
        user.set_password(form.password.data)
        db.session.add(user)
        db.session.flush()
        accounts.accept(pending, user)
        return complete_login(user)
    return render_template("auth/invitation.html", invitation=pending, role=role, form=form,
                           new_account=True), 400 if request.method == "POST" else 200


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
