"""Languages: catalogs compiled at start, the /locale picker, browser fallback, number formats."""
import os
import re
from datetime import date
from decimal import Decimal

import pytest
from babel.messages.pofile import read_po
from flask_babel import force_locale

from app import i18n
from app.extensions import db
from app.models import Dossier, User
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)
from tests.test_figures import build_books


@pytest.fixture
def world(app):
    world = build_world()
    world.ids["books"] = build_books(world.a_public, world.a_year)
    db.session.get(Dossier, world.a_public).sync_status = "succeeded"
    db.session.commit()
    return world


def choose(client, locale, next_url="/admin/"):
    return client.post("/locale", data={"csrf_token": csrf_token(client), "locale": locale, "next": next_url})


def figures_page(client, world):
    return client.get(f"/admin/dossier/?id={world.a_public}&view=closing").get_data(as_text=True)


def bank_row(html):
    row = re.search(r'<tr data-account="1000">(.*?)</tr>', html, re.S).group(1)
    return re.findall(r'class="text-body">([^<]+)</a>', row)


def user_locale(user_id):
    db.session.expire_all()
    return db.session.get(User, user_id).locale


# --------------------------------------------------------------------------------------
# Catalogs
# --------------------------------------------------------------------------------------

def test_catalogs_are_complete_and_keep_their_placeholders():
    for language in ("fr", "nl"):
        with (i18n.SOURCE_CATALOGS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle)
        messages = [m for m in catalog if m.id]
        assert len(messages) > 100
        for message in messages:
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings), f"{language}: {ids[0]!r} is not translated"
            wanted = set(re.findall(r"%\(\w+\)[sd]", ids[-1]))
            for string in strings:
                assert set(re.findall(r"%\(\w+\)[sd]", string)) <= wanted | set(re.findall(r"%\(\w+\)[sd]", ids[0]))


def test_mo_files_are_compiled_when_missing_or_stale(tmp_path):
    assert sorted(i18n.compile_catalogs(i18n.SOURCE_CATALOGS, tmp_path)) == ["fr", "nl"]
    mo = tmp_path / "nl" / "LC_MESSAGES" / "messages.mo"
    assert mo.stat().st_size > 1000
    assert i18n.compile_catalogs(i18n.SOURCE_CATALOGS, tmp_path) == []  # up to date: nothing to do
    po = i18n.SOURCE_CATALOGS / "nl" / "LC_MESSAGES" / "messages.po"
    old = po.stat().st_mtime - 60  # older than its source, whenever the source was last written
    os.utime(mo, (old, old))
    assert i18n.compile_catalogs(i18n.SOURCE_CATALOGS, tmp_path) == ["nl"]


def test_the_app_compiles_its_catalogs_into_the_instance_folder(app):
    target = app.config["BABEL_TRANSLATION_DIRECTORIES"]
    assert target.startswith(app.instance_path)
    for language in ("fr", "nl"):
        assert os.path.exists(os.path.join(target, language, "LC_MESSAGES", "messages.mo"))


def test_amounts_and_dates_follow_the_locale(app):
    with app.test_request_context("/"):
        for locale, number, day in (("en", "-1,234.56", "Mar 31, 2024"), ("nl", "-1.234,56", "31 mrt 2024"),
                                    ("fr", "-1\u202f234,56", "31 mars 2024")):
            with force_locale(locale):
                assert i18n.amount(Decimal("-1234.56")) == number
                assert i18n.day(date(2024, 3, 31)) == day
        assert i18n.amount(None) == ""


# --------------------------------------------------------------------------------------
# Choosing the language
# --------------------------------------------------------------------------------------

def test_the_picker_switches_labels_and_number_formats(client, world):
    log_in(client, "staff")
    english = figures_page(client, world)
    assert ">Figures<" in english and bank_row(english)[0] == "1,700.00" and ">Synced<" in english
    assert 'id="language-picker"' in english and 'value="nl"' in english

    response = choose(client, "nl", f"/admin/dossier/?id={world.a_public}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/dossier/?id={world.a_public}")
    assert user_locale(world.user_staff) == "nl"
    dutch = figures_page(client, world)
    assert ">Cijfers<" in dutch and ">Eindsaldi<" in dutch and "Resultaat vorige boekjaren" in dutch
    assert bank_row(dutch) == ["1.700,00", "1.600,00", "1.600,00", "1.650,00"]
    assert ">Gesynchroniseerd<" in dutch  # the sync status badge
    assert "mrt 2024" in dutch  # period headings
    assert "Lijst" in client.get("/admin/dossiers/").get_data(as_text=True)  # Flask-Admin's own catalog

    choose(client, "fr")
    french = figures_page(client, world)
    assert ">Chiffres<" in french and bank_row(french)[0] == "1\u202f700,00"
    ledger = client.get(f"/admin/dossier/ledger?id={world.a_public}").get_data(as_text=True)
    assert "Écritures" in ledger and "Tous les comptes" in ledger

    choose(client, "en")
    assert bank_row(figures_page(client, world))[0] == "1,700.00"


@pytest.mark.parametrize("locale", ["de", "EN", "nl_NL", "<script>", "x" * 50])
def test_unknown_locales_are_refused(client, world, locale):
    log_in(client, "staff")
    choose(client, "nl")
    assert choose(client, locale).status_code == 400
    assert user_locale(world.user_staff) == "nl"


def test_the_user_choice_wins_over_the_browser_and_empty_goes_back_to_it(client, world):
    log_in(client, "admin")
    choose(client, "nl")
    html = client.get(f"/admin/dossier/?id={world.a_public}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert ">Cijfers<" in html
    choose(client, "")
    assert user_locale(world.user_admin) is None
    html = client.get(f"/admin/dossier/?id={world.a_public}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert ">Chiffres<" in html


def test_the_login_page_follows_the_browser_then_the_visitor_choice(client, app):
    assert "Inloggen" in client.get("/login", headers={"Accept-Language": "nl-BE,nl;q=0.9"}).get_data(as_text=True)
    assert "Se connecter" in client.get("/login", headers={"Accept-Language": "fr-BE"}).get_data(as_text=True)
    assert ">Log in<" in client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    response = choose(client, "fr", "/login")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert "Mot de passe" in client.get("/login", headers={"Accept-Language": "nl"}).get_data(as_text=True)


def test_the_picker_never_redirects_off_site(client, world):
    log_in(client, "staff")
    response = choose(client, "nl", "https://evil.example/")
    assert response.status_code == 302 and "evil.example" not in response.headers["Location"]


# --------------------------------------------------------------------------------------
# Console screens: dashboard, menu, Files list, poller, Sync tab, wizard
# --------------------------------------------------------------------------------------

def menu_entries(html):
    """The menu's texts in order: top-level entries, category names and the entries of each category."""
    nav = re.search(r'<ul class="nav navbar-nav mr-auto"[^>]*>(.*?)<ul class="nav navbar-nav navbar-right">', html, re.S).group(1)
    entries = re.findall(r'<a class="[^"]*(?:nav-link|dropdown-item)[^"]*"[^>]*>(.*?)</a>', nav, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", entry)).strip() for entry in entries]


@pytest.mark.parametrize("locale, dashboard, menu, tile, nightly", [
    ("en", "Dashboard", ["Clients", "Files", "Add new client", "Synchronisations", "Sync runs", "Connections"],
     "Syncs failing", "Last nightly run"),
    ("fr", "Tableau de bord", ["Clients", "Dossiers", "Ajouter un client", "Synchronisations",
                               "Synchronisations effectuées", "Connexions"],
     "Synchronisations en échec", "Dernière synchronisation nocturne"),
    ("nl", "Dashboard", ["Klanten", "Dossiers", "Nieuwe klant toevoegen", "Synchronisaties",
                         "Uitgevoerde synchronisaties", "Verbindingen"],
     "Mislukte synchronisaties", "Laatste nachtelijke synchronisatie"),
])
def test_the_dashboard_and_the_menu_follow_the_language(client, world, locale, dashboard, menu, tile, nightly):
    log_in(client, "admin")
    choose(client, locale)
    html = client.get("/admin/").get_data(as_text=True)
    assert f'<h1 class="h3">{dashboard}</h1>' in html
    entries = menu_entries(html)
    assert [name for name in entries if name in menu] == menu, entries  # each category before its entries
    assert re.search(rf'id="tile-failed"[^>]*>\s*<div class="card-body py-2">\s*<div class="h3 mb-0">\d+</div>\s*'
                     rf'<div class="small text-muted">{tile}</div>', html)
    assert nightly in html


def test_the_files_list_is_translated_and_its_filter_links_stay_the_same(client, world):
    log_in(client, "admin")
    choose(client, "nl")
    dashboard = client.get("/admin/").get_data(as_text=True)
    stale_link = re.search(r'<a href="([^"]+)"[^>]*id="tile-stale"', dashboard).group(1)
    assert "flt0_stale_is=yes" in stale_link.replace("&amp;", "&")  # the English argument, whatever the language
    files = client.get("/admin/dossiers/?flt0_status_is=succeeded").get_data(as_text=True)
    assert ">Ondernemingsnummer<" not in files  # not a list column
    assert re.search(r"<th[^>]*>\s*(<a[^>]*>)?\s*Pakket", files)  # column label
    assert "In de wachtrij of wachtend" in files  # a status filter option


def test_the_poller_texts_the_sync_tab_and_the_wizard_are_translated(client, world):
    import json

    log_in(client, "admin")
    choose(client, "fr")
    page = client.get(f"/admin/dossier/?id={world.a_public}").get_data(as_text=True)
    texts = json.loads(re.search(r'<script type="application/json" id="sync-progress-texts">(.*?)</script>', page, re.S).group(1))
    assert texts["waiting"] == "En attente d'un processus pour lancer la synchronisation."
    assert texts["syncing_stream"] == "Synchronisation {stream}\u00a0: {records} enregistrements"  # no-break space
    assert texts["done"] == "{label}. Rechargez la page pour voir les nouvelles données."
    sync_tab = client.get(f"/admin/dossier-sync/?id={world.a_public}").get_data(as_text=True)
    assert "Synchronisation actuelle" in sync_tab and ">Historique<" in sync_tab
    wizard = client.get("/admin/new-client/").get_data(as_text=True)
    assert "Ajouter un client" in wizard and "Nom du client" in wizard and "Enregistrer et continuer" in wizard

    choose(client, "en")
    page = client.get(f"/admin/dossier/?id={world.a_public}").get_data(as_text=True)
    texts = json.loads(re.search(r'id="sync-progress-texts">(.*?)</script>', page, re.S).group(1))
    assert texts["syncing"] == "Syncing: {records} records"


# --------------------------------------------------------------------------------------
# Error pages and confirmations (docs/figures-and-languages.md)
# --------------------------------------------------------------------------------------

def test_console_error_pages_use_the_console_layout_and_language(client, world):
    log_in(client, "staff")
    choose(client, "fr")
    forbidden = client.get("/admin/groups/")
    html = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403
    assert '<h1 class="h3" id="error-403">Non autorisé</h1>' in html and 'id="current-user"' in html  # the console's navbar
    missing = client.get("/admin/dossier/?id=999999")
    assert missing.status_code == 404 and '<h1 class="h3" id="error-404">Introuvable</h1>' in missing.get_data(as_text=True)
    choose(client, "nl")
    assert "Niet toegestaan" in client.get("/admin/groups/").get_data(as_text=True)


def test_revert_to_manual_asks_for_confirmation(client, world):
    log_in(client, "admin")
    choose(client, "fr")
    page = client.get(f"/admin/dossier-sync/?id={world.a_public}").get_data(as_text=True)
    button = re.search(r'<button[^>]*id="revert-button"[^>]*>', page, re.S).group(0)
    assert 'data-confirm="Repasser ce dossier en dossier manuel\u202f?' in button


def test_console_lists_show_times_without_microseconds(client, world):
    log_in(client, "admin")
    for url in ("/admin/firms/", "/admin/groups/", "/admin/audit/", "/admin/links/"):
        html = client.get(url).get_data(as_text=True)
        assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", html), url
        assert not re.search(r"\d\d:\d\d:\d\d(?!\.)", re.sub(r"<script.*?</script>", "", html, flags=re.S)), url
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", client.get("/admin/groups/").get_data(as_text=True))


@pytest.mark.parametrize("language, title", [("fr", "Page introuvable"), ("nl", "Pagina niet gevonden"),
                                             ("en", "Page not found")])
def test_an_unknown_address_gets_a_plain_404_page_in_the_visitors_language(client, language, title):
    answer = client.get("/admin/no-such-screen/", headers={"Accept-Language": language})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 404 and f'id="not-found">{title}</h1>' in page and f'lang="{language}"' in page
    assert 'href="/admin/"' in page and "Werkzeug" not in page
