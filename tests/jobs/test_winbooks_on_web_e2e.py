"""Winbooks On Web end to end: real ``flask worker`` processes, the sandbox's emulator of the assumed API.

The first sync (the exchange token exchanged once, rotating refresh tokens saved), a no-change resync that
writes nothing, an access token dying (refreshed, then the run goes on), a revoked access (the connection
needs a new exchange token), and an answer the assumptions do not cover (the run fails naming the field,
writes nothing, and the connection's diagnostic shows the shape that came, with no value).
"""
import json
from datetime import date

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Connection, ConnectionStatus, DossierLink, Role, RunStatus, Trigger
from app.services import diagnostics
from app.services.syncs import request_sync
from connectors.winbooks_on_web import WinbooksOnWeb
from tests.conftest import logged_in, make_user
from tests.console_world import fresh_request_globals  # noqa: F401 - autouse: a fresh `g` per request
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count

pytestmark = pytest.mark.slow

FOLDER = "c-1003"  # 20 accounts, about 40 lines, book years 2023 and 2024
SECRETS = ("exchange_token",)


@pytest.fixture
def winbooks_dossier(linked_dossier, sandbox, db):
    settings = WinbooksOnWeb.spec.sandbox_settings(sandbox.url)
    dossier = linked_dossier(package="winbooks_on_web", reference=FOLDER, name="Northwind Trading",
                             config={k: v for k, v in settings.items() if k not in SECRETS},
                             credentials={k: settings[k] for k in SECRETS})
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    link.valid_from = date(2023, 1, 1)  # both book years in the window
    db.session.commit()
    return dossier


def sync(db, workers, dossier_id, what):
    queued = request_sync(dossier_id, Trigger.MANUAL)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)


def connection_of(db, dossier):
    db.session.expire_all()
    return db.session.get(Connection, db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
                          .connection_id)


def book_lines(sandbox):
    return sum(1 for _ in sandbox.state.books[FOLDER].all_lines())


def test_first_sync_resync_token_expiry_and_revoked_access(db, sandbox, workers, winbooks_dossier):
    dossier = winbooks_dossier
    workers.start()
    first = sync(db, workers, dossier.id, "the first Winbooks sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    assert first.lines_inserted == line_count(db, dossier.id) == book_lines(sandbox)
    assert first.accounts_count == len(sandbox.state.books[FOLDER].accounts) and first.balances_count > 0
    assert sandbox.stats()["token_grants"]["winbooks_on_web"] == 1  # the exchange token, once
    stored = connection_of(db, dossier).credentials
    assert stored["refresh_token"] and stored["exchanged"] and stored["exchange_token"] == "demo-exchange-token"
    before = bookkeeping_snapshot(db, dossier.id)

    again = sync(db, workers, dossier.id, "the no-change Winbooks resync")
    assert again.status == RunStatus.SUCCEEDED, again.message
    assert again.changed is False and again.lines_inserted == again.lines_updated == again.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before
    assert sandbox.stats()["token_grants"]["winbooks_on_web"] == 1  # the stored access token was reused

    connection = connection_of(db, dossier)
    connection.credentials = {**connection.credentials, "access_token": "expired-by-winbooks"}
    db.session.commit()
    renewed = sync(db, workers, dossier.id, "the Winbooks sync with an expired access token")
    assert renewed.status == RunStatus.SUCCEEDED, f"{renewed.message}\n{workers.logs()}"
    assert sandbox.stats()["token_refreshes"]["winbooks_on_web"] == 1
    rotated = connection_of(db, dossier).credentials
    assert rotated["refresh_token"] != stored["refresh_token"]  # the rotated refresh token was saved
    assert bookkeeping_snapshot(db, dossier.id) == before

    sandbox.fault("revoke")
    revoked = sync(db, workers, dossier.id, "the Winbooks sync after the revoke")
    assert revoked.status == RunStatus.NEEDS_RECONNECT, f"{revoked.message}\n{workers.logs()}"
    assert "new exchange token" in revoked.message and "demo-exchange-token" not in revoked.message
    assert connection_of(db, dossier).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before


def test_an_unexpected_shape_fails_naming_the_field_and_the_diagnostic_holds_the_evidence(
        app, client, db, firm, other_firm, sandbox, workers, winbooks_dossier):
    dossier = winbooks_dossier
    sandbox.modes(winbooks_on_web=["renamed_amount"])
    workers.start()
    failed = sync(db, workers, dossier.id, "the Winbooks sync meeting an unexpected shape")
    assert failed.status == RunStatus.FAILED, f"{failed.message}\n{workers.logs()}"
    assert "“AmountEUR”" in failed.message and "diagnostic" in failed.message
    assert line_count(db, dossier.id) == 0 and not bookkeeping_snapshot(db, dossier.id)["Account"]

    connection = connection_of(db, dossier)
    kept = diagnostics.last(connection)
    assert kept["run_id"] == failed.id and kept["run_status"] == RunStatus.FAILED
    assert kept["assumptions"]["ledger_fields"]["confidence"] == "guess"
    lines = [r for r in kept["requests"] if r["path"].endswith("/ExecuteCriteria")]
    assert lines and lines[0]["status"] == 200 and lines[0]["shape"][0]["Amount"] == "number"
    assert "AmountEUR" not in lines[0]["shape"][0]
    token = next(r for r in kept["requests"] if r["path"].endswith("/OAuth20/Token"))
    assert token["shape"]["access_token"] == "string"
    text = json.dumps(kept)
    stored = connection.credentials
    for secret in (stored["access_token"], stored["refresh_token"], "demo-exchange-token", "admin@demo.firmsync.test"):
        assert secret not in text
    first_line = next(sandbox.state.books[FOLDER].all_lines())
    assert first_line["description"] not in text and f'"{first_line["account"]}"' not in text

    # the console: administrators of the firm only, audited
    staff = logged_in(app.test_client(), make_user("staff@alpha.test", firm, Role.STAFF))
    assert staff.get(f"/admin/connections/diagnostic/?id={connection.id}").status_code == 403
    outsider = logged_in(app.test_client(), make_user("admin@beta.test", other_firm, Role.ADMIN))
    assert outsider.get(f"/admin/connections/diagnostic/?id={connection.id}").status_code == 404
    logged_in(client, make_user("admin@alpha.test", firm, Role.ADMIN))
    page = client.get(f"/admin/connections/details/?id={connection.id}").get_data(as_text=True)
    assert "Built from public information; tell us if your data looks wrong." in page
    assert "download-diagnostic" in page
    answer = client.get(f"/admin/connections/diagnostic/?id={connection.id}")
    assert answer.status_code == 200 and "attachment" in answer.headers["Content-Disposition"]
    assert answer.get_json()["run_id"] == failed.id
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "download_diagnostic")).all()
    assert [(e.object_id, e.firm_id) for e in events] == [(str(connection.id), firm.id)]
