"""Countries and currencies are chosen from lists (issue #18; admin_views/country_currency.py).

The Firm screen's country, a file's country and currency (Files screen) and the new-client
wizard's are selects of ISO codes named in the reader's language; the server accepts a code
from the list and refuses any other (a forged form) with a message naming it, changing nothing.
"""
import re

import pytest

from admin_views.country_currency import country_codes, currency_codes
from app.extensions import db
from app.models import Dossier, Firm
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 - autouse


@pytest.fixture
def world(db):
    return build_world()


def choose_language(client, locale):
    client.post("/locale", data={"csrf_token": csrf_token(client), "locale": locale, "next": "/admin/"})


def firm_form(client, **values):
    return {"name": "Alpha Accountants", "country": "BE", "timezone": "Europe/Brussels", "nightly_time": "02:00",
            "default_locale": "en", "csrf_token": csrf_token(client), **values}


def dossier_form(client, **values):
    return {"name": "Alpha Public Ltd", "country": "BE", "currency": "EUR", "frequency": "month",
            "csrf_token": csrf_token(client), **values}


def selected(page, field):
    return re.search(rf'<select[^>]*id="{field}"[^>]*>.*?<option selected value="([^"]+)">([^<]*)</option>', page, re.S).groups()


def test_the_lists_are_real_countries_and_currencies_of_today():
    assert {"BE", "NL", "FR", "GB", "LU", "DE"} <= country_codes()
    assert len(country_codes()) == 250 and "XK" in country_codes()  # ISO 3166-1, and Kosovo
    assert not {"EU", "UN", "ZZ", "YU", "AC", "001"} & country_codes()  # regions, gone countries, reserved codes
    assert {"EUR", "GBP", "USD", "CHF"} <= currency_codes() and "BEF" not in currency_codes()


def test_names_follow_the_readers_language(client, world):
    log_in(client, "admin")
    expected = {"en": ("Belgium", "EUR – Euro"), "fr": ("Belgique", "EUR – euro"), "nl": ("België", "EUR – Euro")}
    for locale, (country, currency) in expected.items():
        choose_language(client, locale)
        firm_page = client.get(f"/admin/firms/edit/?id={world.alpha}").get_data(as_text=True)
        assert selected(firm_page, "country") == ("BE", country)
        file_page = client.get(f"/admin/dossiers/edit/?id={world.a_public}").get_data(as_text=True)
        assert selected(file_page, "currency") == ("EUR", currency)
        assert selected(file_page, "country") == ("BE", country)


def test_a_country_from_the_list_is_saved_and_a_forged_one_refused(client, world):
    log_in(client, "admin")
    url = f"/admin/firms/edit/?id={world.alpha}"
    assert client.post(url, data=firm_form(client, country="NL")).status_code == 302
    db.session.expire_all()
    assert db.session.get(Firm, world.alpha).country == "NL"

    refused = client.post(url, data=firm_form(client, country="XX", name="Forged"))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "“XX” is not a country Firmsync knows" in page
    db.session.expire_all()
    firm = db.session.get(Firm, world.alpha)
    assert (firm.country, firm.name) == ("NL", "Alpha Accountants")


def test_a_files_currency_from_the_list_is_saved_and_forged_codes_refused(client, world):
    log_in(client, "admin")
    url = f"/admin/dossiers/edit/?id={world.a_public}"
    assert client.post(url, data=dossier_form(client, country="gb", currency="GBP")).status_code == 302
    db.session.expire_all()
    dossier = db.session.get(Dossier, world.a_public)
    assert (dossier.country, dossier.currency) == ("GB", "GBP")

    for field, forged, message in (("currency", "BEF", "“BEF” is not a currency Firmsync knows"),
                                   ("country", "YU", "“YU” is not a country Firmsync knows")):
        refused = client.post(url, data=dossier_form(client, name="Forged", **{field: forged}))
        assert refused.status_code == 200 and message in refused.get_data(as_text=True)
    db.session.expire_all()
    dossier = db.session.get(Dossier, world.a_public)
    assert (dossier.name, dossier.country, dossier.currency) == ("Alpha Public Ltd", "GB", "GBP")


def test_the_new_client_wizard_refuses_a_forged_currency(client, world):
    log_in(client, "admin")
    before = db.session.query(Dossier).count()
    answer = client.post("/admin/new-client/", data={
        "name": "Garage Peeters", "country": "BE", "currency": "XYZ", "frequency": "month", "source": "manual",
        "csrf_token": csrf_token(client)})
    assert answer.status_code == 200 and "“XYZ” is not a currency Firmsync knows" in answer.get_data(as_text=True)
    assert db.session.query(Dossier).count() == before
