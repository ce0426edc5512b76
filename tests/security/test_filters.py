"""List filters offer only what the user may see: an external contributor's Files filter names
no connection that serves no file of theirs (connection names often name other clients)."""
import re

import pytest

from app.extensions import db
from app.models import Connection
from tests.console_world import build_world, fresh_request_globals, log_in  # noqa: F401


@pytest.fixture
def world(db):
    return build_world()


def connection_choices(client):
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    return set(re.findall(r"(Alpha [^\"<]*?(?:Demo Books|spare connection))", page))


@pytest.mark.parametrize("role, expected", [
    ("admin", {"Alpha Demo Books", "Alpha spare connection"}),
    ("external", {"Alpha Demo Books"}),  # linked to the public file granted to them
])
def test_the_connection_filter_lists_what_the_role_may_see(client, world, role, expected):
    log_in(client, role)
    assert connection_choices(client) == expected


def test_an_external_contributor_does_not_see_a_connection_of_other_files(client, world):
    db.session.get(Connection, world.a_spare_connection).name = "Alpha Confidential Takeover Demo Books"
    db.session.commit()
    log_in(client, "external")
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    assert "Confidential Takeover" not in page
