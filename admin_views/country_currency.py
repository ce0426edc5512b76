"""Country and currency fields: a select of ISO codes named in the reader's language.

A country is an ISO 3166-1 alpha-2 code (``BE``), a currency an ISO 4217 code (``EUR``), as
the database stores them. The names come from the CLDR data Babel ships, in the language of
the request (:func:`flask_babel.get_locale`): "Belgique", "België", "Belgium". The server
refuses any code not in the list (a forged form included) with a message naming it.

* countries: the territories CLDR names that have a currency, less the codes that are not
  countries (:data:`NOT_COUNTRIES`): the 249 of ISO 3166-1 and Kosovo (``XK``, the code the EU
  and banks use); regions ("Europe"), codes no longer in use (``YU``) are not in the list;
* currencies: the currencies that are legal tender in one of them today (``BEF`` is not).
"""
import unicodedata
from datetime import date
from functools import cache

from babel import Locale
from babel.core import get_global
from babel.numbers import get_territory_currencies
from flask_babel import get_locale, gettext
from wtforms import SelectField
from wtforms.validators import ValidationError

ENGLISH = Locale.parse("en")
#: CLDR territories with a currency that are not ISO 3166-1 countries: the European Union,
#: "unknown region" and the codes ISO reserves for islands and postal unions (AC, CP, DG, EA, IC, TA)
NOT_COUNTRIES = frozenset({"AC", "CP", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "ZZ"})


@cache
def country_codes():
    """The ISO 3166-1 alpha-2 codes offered (a frozenset)."""
    named = {code for code in ENGLISH.territories if len(code) == 2 and code.isalpha()}
    return frozenset(named & set(get_global("territory_currencies"))) - NOT_COUNTRIES


@cache
def currency_codes():
    """The ISO 4217 codes offered: legal tender in some country today (a frozenset; computed
    once per process)."""
    today = date.today()
    return frozenset(code for country in country_codes() for code in get_territory_currencies(country, today))


def _locale():
    return get_locale() or ENGLISH


def _sort_key(text):
    """Alphabetical order whatever the accents: "Égypte" between "Équateur" and "Espagne"."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()


def country_choices():
    """``[(code, name)]`` of every country, by name in the reader's language."""
    locale = _locale()
    names = {code: locale.territories.get(code) or ENGLISH.territories[code] for code in country_codes()}
    return sorted(names.items(), key=lambda item: _sort_key(item[1]))


def currency_choices():
    """``[(code, "EUR – euro")]`` of every currency, by code, named in the reader's language."""
    locale = _locale()
    return [(code, f"{code} – {locale.currencies.get(code) or ENGLISH.currencies.get(code, code)}")
            for code in sorted(currency_codes())]


class CodeSelectField(SelectField):
    """A select of ISO codes; a code not in the list is refused with :meth:`refusal` (the code named)."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, choices=self.code_choices, **kwargs)

    def process_formdata(self, valuelist):
        """The submitted code, trimmed and in capitals (``be`` is ``BE``)."""
        super().process_formdata([value.strip().upper() for value in valuelist])

    @staticmethod
    def code_choices():
        """``[(code, name)]``, in the reader's language."""
        raise NotImplementedError

    @staticmethod
    def known_codes():
        """The codes of :meth:`code_choices`, as a set."""
        raise NotImplementedError

    @staticmethod
    def refusal(code):
        """The message for ``code``, which is not in the list."""
        raise NotImplementedError

    def pre_validate(self, form):
        """Refuse a code not in the list; an empty one is left to ``DataRequired`` ("This field is required.")."""
        if self.data and self.data not in self.known_codes():
            raise ValidationError(self.refusal(self.data))


class CountryField(CodeSelectField):
    """A country: ``BE``, shown as "Belgium" / "Belgique" / "België"."""

    code_choices, known_codes = staticmethod(country_choices), staticmethod(country_codes)

    @staticmethod
    def refusal(code):
        return gettext("“%(code)s” is not a country Firmsync knows; choose a country from the list.", code=code)


class CurrencyField(CodeSelectField):
    """A currency: ``EUR``, shown as "EUR – euro"."""

    code_choices, known_codes = staticmethod(currency_choices), staticmethod(currency_codes)

    @staticmethod
    def refusal(code):
        return gettext("“%(code)s” is not a currency Firmsync knows; choose a currency from the list.", code=code)
