"""WingsOnline end to end: real ``flask worker`` processes and the sandbox's emulator of the guessed API.

The first sync, a no-change resync that writes nothing, a revoked API user (the connection needs
reconnecting), and an answer the guesses do not cover (the run fails naming the field, writes nothing, and
the diagnostic holds the shape). Basic auth has no token to expire: the token-expiry case does not apply.
"""
from datetime import date

import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.services import diagnostics
from app.services.syncs import request_sync
from connectors.wings_online import WingsOnline
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count

pytestmark = pytest.mark.slow

DOSSIER = "c-1003"
SECRETS = ("password",)


@pytest.fixture
def wings_dossier(linked_dossier, sandbox, db):
    settings = WingsOnline.spec.sandbox_settings(sandbox.url)
    dossier = linked_dossier(package="wings_online", reference=DOSSIER, name="Northwind Trading",
                             config={k: v for k, v in settings.items() if k not in SECRETS},
                             credentials={k: settings[k] for k in SECRETS})
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    link.valid_from = date(2023, 1, 1)
    db.session.commit()
    return dossier


def sync(db, workers, dossier_id, what):
    queued = request_sync(dossier_id, Trigger.MANUAL)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)


def connection_of(db, dossier):
    db.session.expire_all()
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    return db.session.get(Connection, link.connection_id)


def test_first_sync_resync_unexpected_shape_and_revoked_access(db, sandbox, workers, wings_dossier):
    dossier = wings_dossier
    workers.start()
    first = sync(db, workers, dossier.id, "the first WingsOnline sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    book_lines = sum(1 for _ in sandbox.state.books[DOSSIER].all_lines())
    assert first.lines_inserted == line_count(db, dossier.id) == book_lines
    assert first.accounts_count > 0 and first.balances_count > 0
    before = bookkeeping_snapshot(db, dossier.id)

    again = sync(db, workers, dossier.id, "the no-change WingsOnline resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False, again.message
    assert bookkeeping_snapshot(db, dossier.id) == before

    sandbox.modes(wings_online=["dutch_fields"])
    sandbox.mutate(DOSSIER, add=1)
    odd = sync(db, workers, dossier.id, "the WingsOnline sync meeting Dutch field names")
    assert odd.status == RunStatus.FAILED and "“account”" in odd.message, f"{odd.message}\n{workers.logs()}"
    assert bookkeeping_snapshot(db, dossier.id) == before  # nothing written, not even the new line
    kept = diagnostics.last(connection_of(db, dossier))
    entries = [r for r in kept["requests"] if r["path"].endswith("/entries")]
    assert kept["run_id"] == odd.id and entries[0]["shape"]["items"][0]["bedrag"] == "string"
    assert "demo-wings-password" not in str(kept) and "Wings8demo" not in str(kept)

    sandbox.modes(wings_online=[])
    sandbox.fault("revoke")
    revoked = sync(db, workers, dossier.id, "the WingsOnline sync after the revoke")
    assert revoked.status == RunStatus.NEEDS_RECONNECT, f"{revoked.message}\n{workers.logs()}"
    assert "demo-wings-password" not in revoked.message
    assert connection_of(db, dossier).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before
