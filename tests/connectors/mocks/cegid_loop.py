"""Cegid Loop mocks: dossier BOULMART with one entity, two fiscal years, six accounts, two journals and six
entry lines, in the shapes connectors/cegid_loop/assumptions.py assumes (Cegid publishes prose only);
fixtures in connectors/cegid_loop/fixtures/*.json. ``EcritureComptable`` answers the lines of the
``journalCode`` and ``datePiece`` range in its filter, ``skip``/``take`` at a time."""
import re
from datetime import date
from urllib.parse import parse_qs, urlparse

from connectors.base import SyncWindow
from tests.connectors.mocks import fixture

KEY = "cegid_loop"
DOSSIER = "BOULMART"
API_KEY = "loop-key-77:loop-secret-3f9a1c"
SUBSCRIPTION_KEY = "apim-sub-5e0b92"


def config():
    return {"base_url": "https://api.cegid.com/loop-api-publiques", "subscription_key": SUBSCRIPTION_KEY,
            "api_key": API_KEY, "dossiers": DOSSIER}


def credentials():
    return {}


def reference():
    return DOSSIER


def window():
    return SyncWindow(start=date(2024, 1, 1), end=date(2024, 12, 31))


def _query(request):
    return {name: values[0] for name, values in parse_qs(urlparse(request.url).query).items()}


def paged(rows):
    """A requests-mock ``json`` callback answering ``rows`` ``skip``/``take`` at a time."""
    def answer(request, context):
        query = _query(request)
        skip, take = int(query.get("skip", 0)), int(query.get("take", 100))
        return rows[skip:skip + take]
    return answer


def entries(request, context):
    """The fixture's lines matching the request's filter (journal and date range), paged."""
    text = _query(request).get("filter", "")
    journal = re.search(r'journalCode=="([^"]*)"', text)
    low = re.search(r'datePiece>="([^"]*)"', text)
    high = re.search(r'datePiece<="([^"]*)"', text)
    rows = [row for row in fixture(KEY, "entries")
            if (not journal or row["journalCode"] == journal.group(1))
            and (not low or row["datePiece"] >= low.group(1)) and (not high or row["datePiece"] <= high.group(1))]
    return paged(rows)(request, context)


def register(requests_mock, base_url):
    for path, name in (("etablissementComplet", "entity"), ("compte", "accounts"), ("journal", "journals"),
                       ("exercice", "fiscal_years")):
        requests_mock.get(f"{base_url}/{path}?codeDossier={DOSSIER}", json=paged(fixture(KEY, name)))
    requests_mock.get(f"{base_url}/EcritureComptable?codeDossier={DOSSIER}", json=entries)
