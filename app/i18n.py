"""Languages: the console and portal in English, French and Dutch.

* **Which language.** :func:`select_locale` answers, per request: the user's own choice
  (``User.locale``, set with the navbar picker through ``POST /locale``), else the choice
  made before logging in (kept in the session), else the browser's best match among
  ``LANGUAGES``, else the firm's default language, else ``BABEL_DEFAULT_LOCALE``.
* **Catalogs.** Our strings live in ``app/translations/<lang>/LC_MESSAGES/messages.po``.
  :func:`compile_catalogs` writes the ``.mo`` files at application start into
  ``<instance>/translations`` (the temporary folder if that is read-only) when they are
  missing or older than their ``.po`` (no build step; the source tree may be read-only). Flask-Admin's own strings use its bundled
  catalogs.
* **Numbers and dates.** :func:`amount` and :func:`day` format for the request's locale
  (``1,234.56`` in English, ``1.234,56`` in Dutch, ``1 234,56`` in French, as CLDR has it);
  both are available in every template.

Updating a catalog after changing strings (``python -m`` so that ``babel.cfg`` can use
:func:`extract_connector_labels` from the working tree; ``-w 100`` is the catalogs' width)::

    .venv/bin/python -m babel.messages.frontend extract -F babel.cfg -k _l -k N_ -k lazy_gettext -o /tmp/messages.pot .
    .venv/bin/pybabel update -w 100 -i /tmp/messages.pot -d app/translations
"""
import ast
import logging
import os
import tempfile
from decimal import Decimal
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, has_request_context, request, session
from flask_babel import Babel, format_date, format_decimal, get_locale, refresh
from flask_login import current_user

babel = Babel()
log = logging.getLogger("firmsync.i18n")

SOURCE_CATALOGS = Path(__file__).resolve().parent / "translations"
#: session key of the language chosen before logging in
SESSION_LOCALE_KEY = "locale"
#: how each language calls itself, for the picker
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "nl": "Nederlands"}
AMOUNT_FORMAT = "#,##0.00"


def N_(text):  # noqa: N802 (the usual gettext marker name)
    """Mark ``text`` for the catalogs without translating it here (it is translated where shown)."""
    return text


#: strings shown translated but defined without a marker elsewhere (status labels of
#: ``admin_views.formatting``), listed here so ``pybabel extract`` keeps them in the catalogs
UNMARKED_ELSEWHERE = (
    N_("Synced"), N_("Active"), N_("Syncing"), N_("Queued"), N_("Waiting for the package"),
    N_("Needs reconnect"), N_("Failed"), N_("Cancelled"), N_("Disabled"), N_("Never synced"),
    N_("Result of earlier years"),
    # role names (app.models.firm.Role.LABELS)
    N_("Administrator"), N_("Staff contributor"), N_("External contributor"), N_("Pulse user"),
)


#: keys of a connector schema field's ``metadata`` shown to users (translated where shown)
SCHEMA_TEXT_KEYS = ("label", "description")


def extract_connector_labels(fileobj, keywords, comment_tags, options):
    """Babel extraction method (``babel.cfg``) for the connectors' configuration forms.

    Connectors import neither the application nor Flask, so their schema fields carry plain
    English in ``metadata={"label": ..., "description": ...}``; this yields those strings
    (``(line, None, text, [])``) so the catalogs hold them, and
    :mod:`admin_views.connection_forms` translates them when it builds a form. It also yields
    each package's ``reference_label`` (its word for a company: "organisation", "division"),
    which the console translates where it shows it.
    """
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if (isinstance(node, ast.keyword) and node.arg == "reference_label" and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str) and node.value.value):
            yield node.value.lineno, None, node.value.value, []  # the package's word for a company
            continue
        if not (isinstance(node, ast.keyword) and node.arg == "metadata" and isinstance(node.value, ast.Dict)):
            continue
        for key, value in zip(node.value.keys, node.value.values):
            if (isinstance(key, ast.Constant) and key.value in SCHEMA_TEXT_KEYS
                    and isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value):
                yield value.lineno, None, value.value, []


def languages():
    """The language codes users may choose, from ``LANGUAGES``."""
    return list(current_app.config["LANGUAGES"])


def select_locale():
    """The language of the current request (see the module docstring for the order)."""
    if not has_request_context():  # jobs and commands: the default language
        return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    allowed = languages()
    if getattr(current_user, "is_authenticated", False) and current_user.locale in allowed:
        return current_user.locale
    if session.get(SESSION_LOCALE_KEY) in allowed:
        return session[SESSION_LOCALE_KEY]
    browser = request.accept_languages.best_match(allowed)
    if browser:
        return browser
    return _firm_locale(allowed) or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def _firm_locale(allowed):
    from app.access import current_actor
    from app.extensions import db
    from app.models import Firm

    actor = current_actor() if getattr(current_user, "is_authenticated", False) else None
    firm = db.session.get(Firm, actor.firm_id) if actor and actor.firm_id else None
    return firm.default_locale if firm is not None and firm.default_locale in allowed else None


def locale_code():
    """The current language code (``"en"`` outside a request)."""
    locale = get_locale() if has_request_context() else None
    return locale.language if locale is not None else "en"


def amount(value):
    """``value`` (a Decimal, number or None) with two decimals for the current locale; '' for None."""
    if value is None:
        return ""
    return format_decimal(Decimal(value), format=AMOUNT_FORMAT)


def day(value, style="medium"):
    """A date for the current locale (``Mar 31, 2024``, ``31 mars 2024``, ``31 mrt 2024``)."""
    return format_date(value, style) if value is not None else ""


def compile_catalogs(source=SOURCE_CATALOGS, target=None):
    """Write ``<target>/<lang>/LC_MESSAGES/messages.mo`` for every ``.po`` under ``source``.

    A ``.mo`` is (re)written only when missing or older than its ``.po``, through a
    temporary file and an atomic rename (several workers may start at once). Answers the
    list of languages compiled now.
    """
    compiled = []
    for po_path in sorted(Path(source).glob("*/LC_MESSAGES/*.po")):
        relative = po_path.relative_to(source)
        mo_path = Path(target) / relative.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=relative.parts[0])
        handle, temporary = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                write_mo(out, catalog)
            os.replace(temporary, mo_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        compiled.append(relative.parts[0])
    if compiled:
        log.info("compiled translations: %s", ", ".join(compiled))
    return compiled


def init_app(app):
    """Compile the catalogs into the instance folder and bind Flask-Babel to ``app``."""
    target = Path(app.instance_path) / "translations"
    try:
        compile_catalogs(SOURCE_CATALOGS, target)
    except OSError:  # a read-only instance folder: compile into the temporary folder instead
        target = Path(tempfile.gettempdir()) / f"firmsync-translations-{os.getuid()}"
        log.warning("instance folder not writable; translations compiled into %s", target)
        compile_catalogs(SOURCE_CATALOGS, target)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    babel.init_app(app, locale_selector=select_locale)
    # the language is chosen afresh for every request, even when an application context
    # outlives one request (tests, CLI)
    app.before_request(refresh)
    app.jinja_env.globals.update(amount=amount, day=day, locale_code=locale_code, language_names=LANGUAGE_NAMES)
