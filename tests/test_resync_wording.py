"""The "Resync selected" flash speaks proper English (and French and Dutch): one sync, two syncs."""
import pytest

from app.services import syncs
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def requested(monkeypatch):
    """Queue nothing for real: answer one run per file asked, as request_syncs would."""
    asked = []

    def fake(ids, trigger=None, actor=None):
        asked.extend(ids)
        return [[object() for _ in ids if _ != skip[0]], []]

    skip = [None]
    monkeypatch.setattr(syncs, "request_syncs", fake)
    fake.skip = skip
    return fake


def flash_after(client, ids):
    response = client.post("/admin/dossiers/action/", data={"action": "resync", "rowid": [str(i) for i in ids],
                                                            "csrf_token": csrf_token(client)}, follow_redirects=True)
    return response.get_data(as_text=True)


def test_one_sync_is_singular_and_skips_are_counted_in_words(client, world, requested):
    log_in(client, "admin")
    assert "1 sync queued." in flash_after(client, [world.a_public])
    requested.skip[0] = world.a_private
    page = flash_after(client, [world.a_public, world.a_private])
    assert "1 sync queued, 1 file skipped (no sync set up)." in page
