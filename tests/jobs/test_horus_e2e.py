"""Horus end to end: real ``flask worker`` processes and the sandbox's emulator of one customer's own API host.

The first sync (on a grant the consent gave), a no-change resync that writes nothing, an access token that
expired (refreshed once, the rotated pair saved, the run goes on), an answer the assumptions do not cover
(the run fails naming the field, writes nothing, and the diagnostic holds the shape), and revoked access
(the connection needs reconnecting).
"""
import time
from datetime import date

import pytest

from app.demo_seed import consent_grant
from app.models import Connection, ConnectionStatus, DossierLink, RunStatus, Trigger
from app.services import diagnostics
from app.services.syncs import request_sync
from connectors.horus import Horus
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count

pytestmark = pytest.mark.slow

FOLDER = "c-1003"
SECRETS = ("client_secret",)


@pytest.fixture
def horus_dossier(linked_dossier, sandbox, db):
    settings = Horus.spec.sandbox_settings(sandbox.url)
    grant = consent_grant(Horus.spec, settings)  # a user clicking "Allow" on the customer host's consent page
    credentials = {**{k: settings[k] for k in SECRETS}, **grant}
    dossier = linked_dossier(package="horus", reference=FOLDER, name="Northwind Trading",
                             config={k: v for k, v in settings.items() if k not in SECRETS}, credentials=credentials)
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


def test_first_sync_resync_token_expiry_unexpected_shape_and_revoked_access(db, sandbox, workers, horus_dossier):
    dossier = horus_dossier
    workers.start()
    first = sync(db, workers, dossier.id, "the first Horus sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    book = sandbox.state.books[FOLDER]
    assert first.lines_inserted == line_count(db, dossier.id) == sum(1 for _ in book.all_lines())
    assert first.accounts_count == len(book.accounts) and first.balances_count > 0
    assert sandbox.calls("/horus/fidu-demo/api/v1/accounthistories") >= 1
    before = bookkeeping_snapshot(db, dossier.id)

    again = sync(db, workers, dossier.id, "the no-change Horus resync")
    assert again.status == RunStatus.SUCCEEDED and again.changed is False, again.message
    assert again.lines_inserted == again.lines_updated == again.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before
    assert sandbox.stats()["token_refreshes"].get("horus", 0) == 0  # the stored access token was still good

    connection = connection_of(db, dossier)
    stored = connection.credentials
    connection.credentials = {**stored, "access_token": "expired-by-horus", "expires_at": time.time() - 5}
    db.session.commit()
    renewed = sync(db, workers, dossier.id, "the Horus sync with an expired access token")
    assert renewed.status == RunStatus.SUCCEEDED, f"{renewed.message}\n{workers.logs()}"
    assert sandbox.stats()["token_refreshes"]["horus"] == 1
    rotated = connection_of(db, dossier).credentials
    assert rotated["refresh_token"] != stored["refresh_token"] and rotated["access_token"] != "expired-by-horus"
    assert bookkeeping_snapshot(db, dossier.id) == before

    sandbox.modes(horus=["signed_amount"])
    sandbox.mutate(FOLDER, add=1)
    odd = sync(db, workers, dossier.id, "the Horus sync meeting a signed amount")
    assert odd.status == RunStatus.FAILED and "“debit”" in odd.message, f"{odd.message}\n{workers.logs()}"
    assert bookkeeping_snapshot(db, dossier.id) == before  # nothing written, not even the new line
    kept = diagnostics.last(connection_of(db, dossier))
    lines = [r for r in kept["requests"] if r["path"].endswith("/accounthistories")]
    assert kept["run_id"] == odd.id and lines[0]["shape"]["data"][0]["amount"] == "number"
    current = connection_of(db, dossier).credentials
    for secret in ("horus-sandbox-secret", current["access_token"], current["refresh_token"]):
        assert secret not in str(kept)

    sandbox.modes(horus=[])
    sandbox.fault("revoke")
    revoked = sync(db, workers, dossier.id, "the Horus sync after the access was revoked")
    assert revoked.status == RunStatus.NEEDS_RECONNECT, f"{revoked.message}\n{workers.logs()}"
    assert "horus-sandbox-secret" not in revoked.message
    assert connection_of(db, dossier).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before
