"""CSV exports never hand a spreadsheet a formula (https://owasp.org/www-community/attacks/CSV_Injection)."""
import csv
import io

import pytest

from app.extensions import db
from app.models import Dossier, SyncRun
from tests.console_world import build_world, fresh_request_globals, log_in  # noqa: F401

HOSTILE = ['=HYPERLINK("http://evil.test","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\tTAB=1", "\rCR=1"]


@pytest.fixture
def world(db):
    return build_world()


def exported_cells(client, screen):
    response = client.get(f"/admin/{screen}/export/csv/")
    assert response.status_code == 200
    return [cell for row in csv.reader(io.StringIO(response.get_data(as_text=True))) for cell in row]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_cell_that_starts_like_a_formula_is_exported_as_text(client, world, hostile):
    db.session.get(Dossier, world.a_public).name = hostile
    db.session.get(SyncRun, world.a_run).message = hostile
    db.session.commit()
    log_in(client, "admin")
    for screen in ("dossiers", "runs"):
        cells = exported_cells(client, screen)
        assert "'" + hostile in cells, screen
        assert hostile not in cells, screen


def test_ordinary_cells_are_exported_unchanged(client, world):
    log_in(client, "admin")
    name = db.session.get(Dossier, world.a_public).name
    assert name in exported_cells(client, "dossiers")
