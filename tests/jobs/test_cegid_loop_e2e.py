"""Cegid Loop end to end: real ``flask worker`` processes and the sandbox's emulator of the assumed API.

The first sync (lines read per journal and fiscal year, 100 rows a call; balances derived from them), a
no-change resync that writes nothing, an answer the assumptions do not cover (the run fails naming the
field, writes nothing, and the diagnostic holds the shape), and a deactivated API key (the connection
needs reconnecting). Two fixed keys have no token to expire: the token-expiry case does not apply.
"""
from datetime import date

import pytest

from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.services import diagnostics
from app.services.syncs import request_sync
from connectors.cegid_loop import CegidLoop
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count

pytestmark = pytest.mark.slow

DOSSIER = "c-1003"
SECRETS = ("subscription_key", "api_key")


@pytest.fixture
def cegid_dossier(linked_dossier, sandbox, db):
    settings = CegidLoop.spec.sandbox_settings(sandbox.url)
    dossier = linked_dossier(package="cegid_loop", reference=DOSSIER, name="Northwind Trading",
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


def test_first_sync_resync_unexpected_shape_and_revoked_key(db, sandbox, workers, cegid_dossier):
    dossier = cegid_dossier
    workers.start()
    first = sync(db, workers, dossier.id, "the first Cegid Loop sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    book = sandbox.state.books[DOSSIER]
    assert first.lines_inserted == line_count(db, dossier.id) == sum(1 for _ in book.all_lines())
    assert first.accounts_count == len(book.accounts) and first.balances_count > 0
    assert sandbox.calls("/EcritureComptable") >= 4 * 2  # one window (or more pages) per journal and year
    before = bookkeeping_snapshot(db, dossier.id)

    again = sync(db, workers, dossier.id, "the no-change Cegid Loop resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False, again.message
    assert again.lines_inserted == again.lines_updated == again.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before

    sandbox.modes(cegid_loop=["amount_field"])
    sandbox.mutate(DOSSIER, add=1)
    odd = sync(db, workers, dossier.id, "the Cegid Loop sync meeting a signed amount")
    assert odd.status == RunStatus.FAILED and "“debit”" in odd.message, f"{odd.message}\n{workers.logs()}"
    assert bookkeeping_snapshot(db, dossier.id) == before  # nothing written, not even the new line
    kept = diagnostics.last(connection_of(db, dossier))
    entries = [r for r in kept["requests"] if r["path"].endswith("/EcritureComptable") and r["shape"]]
    assert kept["run_id"] == odd.id and entries[0]["shape"][0]["montant"] == "number"
    assert "debit" not in entries[0]["shape"][0]
    for secret in ("demo-subscription-key", "demo-key:demo-secret", "demo-secret"):
        assert secret not in str(kept)

    sandbox.modes(cegid_loop=[])
    sandbox.fault("revoke")
    revoked = sync(db, workers, dossier.id, "the Cegid Loop sync after the key was deactivated")
    assert revoked.status == RunStatus.NEEDS_RECONNECT, f"{revoked.message}\n{workers.logs()}"
    assert "demo-secret" not in revoked.message
    assert connection_of(db, dossier).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before
