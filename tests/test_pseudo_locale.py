"""Every console screen shows only translated text: a pseudo-locale check.

At test time a pseudo-locale (``eo``, a real CLDR locale no user picks) gets a catalogue
built from our French and Dutch catalogues: every msgid translated in *both* becomes
``⟦msgid⟧``; the same is done for Flask-Admin's own ``admin`` catalogue. Every console
screen is then rendered in that language for every role (administrator, support, staff,
external contributor, pulse user), and its visible text (text nodes,
``title``/``placeholder``/``aria-label``/``alt`` and button values; never scripts or styles)
is split into runs. A run is fine when it lies inside markers, is a value from the database
(any string stored in any table), a connector name, a language name, one of :func:`codes`
(identifiers and CLDR/tzdata words), or has no letters (amounts, dates as digits,
punctuation). Anything else
is English shown without a French or Dutch translation: the test names the string and the
screen. Why this approach: docs/figures-and-languages.md, "Checking that every string is
translated".
"""
import json
import os
import re
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones
from html.parser import HTMLParser

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from pathlib import Path
from sqlalchemy import String, Text, inspect, select

import flask_admin
from babel import Locale
from babel.dates import get_month_names
from app import i18n
from app.services import queues, webhooks
from app.extensions import db
from app.models import Dossier
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

PSEUDO = "eo"
OPEN, CLOSE = "\u27e6", "\u27e7"
VISIBLE_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
#: text that is the same in every language (names of things, not words to translate)
UNTRANSLATABLE = {"Firmsync", "English", "Français", "Nederlands", "EN", "FR", "NL", "CSV", "XLSX", "API", "ID",
                  "OAuth", "PDF", "JSON", "OK", "UTC", PSEUDO, PSEUDO.upper(), "×", "«", "»", "‹", "›", "…", "&times;"}
#: every role's view of the screens: support and administrators see every screen, staff and
#: externals a narrower console, pulse users only the portal (other screens answer 403 or redirect)
ROLES = ("admin", "support", "staff", "external", "pulse")
#: the gaps left when this check was written ("<url>\t<text>" a line): the test fails on any
#: gap not listed here, and on a listed gap that is gone (so the list only shrinks)
KNOWN_GAPS = Path(__file__).with_name("pseudo_locale_known_gaps.txt")
FLASK_ADMIN_CATALOGUES = Path(flask_admin.__file__).parent / "translations"


def _catalogue(path):
    with path.open("rb") as handle:
        return {m.id: m.string for m in read_po(handle) if m.id}


def _pseudo_catalogue(french, dutch, target):
    catalogue = Catalog(locale=PSEUDO)
    for msgid, fr in french.items():
        nl = dutch.get(msgid)
        if not fr or not nl:
            continue
        if isinstance(msgid, tuple):
            catalogue.add(msgid, tuple(f"{OPEN}{part}{CLOSE}" for part in (msgid[0], msgid[1])))
        else:
            catalogue.add(msgid, f"{OPEN}{msgid}{CLOSE}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        write_mo(out, catalogue)


@pytest.fixture
def pseudo_app(app, tmp_path):
    """``app`` speaking the pseudo-locale: our catalogue and Flask-Admin's, both marked."""
    ours = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]) / PSEUDO / "LC_MESSAGES" / "messages.mo"
    _pseudo_catalogue(_catalogue(i18n.SOURCE_CATALOGS / "fr/LC_MESSAGES/messages.po"),
                      _catalogue(i18n.SOURCE_CATALOGS / "nl/LC_MESSAGES/messages.po"), ours)
    _pseudo_catalogue(_catalogue(FLASK_ADMIN_CATALOGUES / "fr/LC_MESSAGES/admin.po"),
                      _catalogue(FLASK_ADMIN_CATALOGUES / "nl/LC_MESSAGES/admin.po"),
                      tmp_path / PSEUDO / "LC_MESSAGES" / "admin.mo")
    for admin in app.extensions["admin"]:
        admin.translations_path = str(tmp_path)
    app.config["LANGUAGES"] = [*app.config["LANGUAGES"], PSEUDO]
    return app


class VisibleText(HTMLParser):
    """The visible text runs of a page, and the attributes a user reads."""

    SKIP = {"script", "style", "template", "noscript"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.runs, self._skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        attrs = dict(attrs)
        for name in VISIBLE_ATTRIBUTES:
            if attrs.get(name):
                self.runs.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.runs.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.runs.append(data)


def codes():
    """Data that reads the same in every language, each for a reason (not words to translate)."""
    cldr, zones = Locale.parse(PSEUDO), available_timezones()
    return {
        # webhook event names: identifiers of the API, sent as such in every payload (docs/api.md)
        *webhooks.EVENTS,
        # RQ queue names on System health: the names workers are started with
        *queues.WORKER_QUEUES,
        # month names of dates Babel formats for the pseudo-locale ("1 Jan 2024"): CLDR's, not ours
        *get_month_names("abbreviated", locale=PSEUDO).values(), *get_month_names("wide", locale=PSEUDO).values(),
        # country and currency codes and names in the pseudo-locale's words (pickers): CLDR's, not ours
        *cldr.territories, *cldr.territories.values(), *cldr.currencies, *cldr.currencies.values(),
        # time-zone abbreviations after times ("02:14 CET") and IANA zone identifiers in the time-zone
        # picker ("Europe/Brussels", shown by parts): tzdata's, the same in every language
        *{datetime(2024, month, 1, tzinfo=ZoneInfo(zone)).tzname() for zone in zones for month in (1, 7)},
        *zones, *{part for zone in zones for part in zone.split("/")},
    }


def data_values():
    """Every string stored in the database, the connectors' display names and :func:`codes`."""
    values = set(codes())
    for mapper in db.Model.registry.mappers:
        table = mapper.local_table
        for column in table.columns:
            if isinstance(column.type, (String, Text)):
                try:
                    values.update(str(v) for v in db.session.scalars(select(column).distinct()) if v)
                except Exception:  # noqa: BLE001 - an encrypted or odd column: not shown as text anyway
                    db.session.rollback()
    from connectors import registry

    for spec in registry.specs():
        values.update({spec.key, spec.display_name})
    return {v.strip() for v in values if v and v.strip()}


def _is_json(text):
    text = text.strip()
    if not text.startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def untranslated(html, known):
    """The runs of ``html`` that are neither marked translations nor data values."""
    parser = VisibleText()
    parser.feed(html)
    runs = [run.replace("\\u27e6", OPEN).replace("\\u27e7", CLOSE) for run in parser.runs if not _is_json(run)]
    # a translated string may hold markup (several text nodes) or other translated strings:
    # remove marked text across the whole page, innermost first
    text, previous = "\n\n".join(runs), None
    while text != previous:
        previous, text = text, re.sub(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}", " ", text)
    found = []
    for run in text.split("\n\n"):
        rest = run
        if rest.strip() in known:
            continue
        for value in sorted(known, key=len, reverse=True):
            if len(value) > 2 and value in rest:
                rest = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", rest)
        for piece in re.split(r"\s{2,}|\n|[·|•:()\[\],;/]", rest):
            piece = " ".join(word for word in piece.split() if word not in UNTRANSLATABLE)
            piece = piece.strip(" .-–—'\"?!%+#*@")
            if re.search(r"[^\W\d_]{2,}", piece) and piece not in UNTRANSLATABLE:
                found.append(piece)
    return found


def screen_urls(app, world):
    """The console's screens: every menu view, create and edit forms, the file page, errors."""
    urls = ["/admin/", f"/admin/dossier/?id={world.a_public}", f"/admin/dossier-sync/?id={world.a_public}",
            f"/admin/dossier/ledger?id={world.a_public}", "/admin/no-such-screen/", "/portal/"]
    for admin in app.extensions["admin"]:
        for view in admin._views:
            if view.url in ("/admin", "/admin/dossier", "/admin/dossier-sync"):
                continue
            urls.append(f"{view.url}/")
            model = getattr(view, "model", None)
            if model is None:
                continue
            if getattr(view, "can_create", False):
                urls.append(f"{view.url}/new/")
            key = inspect(model).primary_key[0]
            first = db.session.scalars(select(key).order_by(key)).first()
            if first is not None and getattr(view, "can_edit", False):
                urls.append(f"{view.url}/edit/?id={first}")
    return urls


def screen(url):
    """``url`` without its row id (ids differ between databases and runs)."""
    return re.sub(r"id=\d+", "id=<id>", url)


def test_every_screen_shows_only_translated_text(pseudo_app, client):
    """Admin and support see, on every screen, only text with a French and Dutch translation."""
    world = build_world()
    db.session.get(Dossier, world.a_public).sync_status = "succeeded"
    db.session.commit()
    known = data_values()
    problems = {}

    login = client.get("/login", headers={"Accept-Language": PSEUDO}).get_data(as_text=True)
    problems.update({("(anonymous)", "/login", s): 1 for s in untranslated(login, known)})
    for role in ROLES:
        log_in(client, role)
        home = "/portal/" if role == "pulse" else "/admin/"
        client.post("/locale", data={"csrf_token": csrf_token(client), "locale": PSEUDO, "next": home})
        response = client.get(home)
        assert OPEN in response.get_data(as_text=True), f"the pseudo-locale is not in use for {role}"
        for url in screen_urls(pseudo_app, world):
            response = client.get(url)
            if response.status_code in (302, 303) or not response.mimetype == "text/html":
                continue
            for string in untranslated(response.get_data(as_text=True), known):
                problems[(role, url, string)] = 1
        client.post("/logout", data={"csrf_token": csrf_token(client)})

    found = {f"{screen(url)}\t{string}" for _role, url, string in problems}
    if os.environ.get("PSEUDO_LOCALE_WRITE_GAPS"):  # rewrite the list (after reading the new gaps!)
        KNOWN_GAPS.write_text("".join(f"{line}\n" for line in sorted(found)), encoding="utf-8")
    known = set(KNOWN_GAPS.read_text(encoding="utf-8").splitlines()) - {""} if KNOWN_GAPS.exists() else set()
    new = sorted(found - known)
    fixed = sorted(known - found)
    report = "\n".join(f"  {role:11} {url:40} {string!r}" for role, url, string in sorted(problems)
                       if f"{screen(url)}\t{string}" in new)
    assert not new, f"{len(new)} strings shown without a French or Dutch translation (screen, string):\n{report}"
    assert not fixed, ("these strings are translated now: remove them from "
                       f"{KNOWN_GAPS.name}:\n" + "\n".join(fixed))


def test_every_connection_form_label_has_a_french_and_dutch_translation(app):
    """The labels of every package's connection form (read from its schema by
    ``app.i18n.extract_connector_labels`` for the catalogs) are translated in both languages,
    and the form shows them translated."""
    from admin_views.connection_forms import connection_form_class
    from connectors import registry

    french = _catalogue(i18n.SOURCE_CATALOGS / "fr/LC_MESSAGES/messages.po")
    dutch = _catalogue(i18n.SOURCE_CATALOGS / "nl/LC_MESSAGES/messages.po")
    missing = set()
    for spec in registry.specs():
        for key, field in spec.config_schema().fields.items():
            if field.dump_only or key == "name":
                continue
            for text in (field.metadata.get("label") or key.replace("_", " ").capitalize(),
                         field.metadata.get("description")):
                if text and not (french.get(text) and dutch.get(text)):
                    missing.add(f"{spec.key}.{key}: {text!r}")
    assert not missing, "connection form labels without a French or Dutch translation:\n" + "\n".join(sorted(missing))

    demo = next(spec for spec in registry.specs() if spec.key == "demo")
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        form = connection_form_class(demo)(meta={"csrf": False})
        labels = {str(form[key].label.text) for key in demo.config_schema().fields if key in form}
    assert dutch["Base URL"] in labels and "Base URL" not in labels, labels


def test_connector_labels_are_extracted_from_schema_metadata():
    """``babel.cfg``'s extractor yields the label and description of ``metadata=`` dicts, nothing else."""
    import io

    source = io.BytesIO(b'fields.String(metadata={"label": "Base URL", "description": "Given by the vendor",\n'
                        b'                        "secret": True}, data_key="x")\n'
                        b'label = "not a label"\nfields.Url(metadata={"label": ""})\n')
    found = list(i18n.extract_connector_labels(source, [], [], {}))
    assert found == [(1, None, "Base URL", []), (1, None, "Given by the vendor", [])]
