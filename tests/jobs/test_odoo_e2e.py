"""Odoo end to end: real ``flask worker`` processes, the sandbox's Odoo servers and the writer.

A first sync whose trial balance is Odoo's, a no-change resync that writes nothing, a move reset to draft,
a revoked API key and a malformed answer, each through the engine as the nightly run would meet them.
"""
from datetime import date

import pytest

from app import figures
from app.models import Connection, ConnectionStatus, DossierLink, FiscalYear, RunStatus, Trigger
from app.services.syncs import request_sync
from connectors.odoo import Odoo, emulator
from tests.jobs.conftest import bookkeeping_snapshot, finished, line_count

pytestmark = pytest.mark.slow

COMPANY = "c-1003"  # the small one: 40 lines


def odoo_config(sandbox, version=19, protocol="auto"):
    """The spec's sandbox config on server ``version``, the API key apart (a secret: credentials)."""
    config = {**Odoo.spec.sandbox_settings(sandbox.url), "base_url": f"{sandbox.url}/odoo/{version}",
              "protocol": protocol}
    return {k: v for k, v in config.items() if k != "api_key"}, {"api_key": config["api_key"]}


@pytest.fixture
def odoo_dossier(linked_dossier, sandbox, redis_db):  # redis_db: a clean queue per test
    def _make(name="Northwind Trading", version=19, protocol="auto"):
        config, key = odoo_config(sandbox, version, protocol)
        reference = f"{emulator.DATABASE}:{sorted(sandbox.state.books).index(COMPANY) + 1}"
        return linked_dossier(package="odoo", reference=reference, name=name, config=config, credentials=key)
    return _make


def sync(db, workers, dossier_id, what, trigger=Trigger.MANUAL):
    queued = request_sync(dossier_id, trigger)
    return workers.wait_for(lambda: finished(db, queued.id), timeout=180, what=what)


def closing_cells(db, dossier_id, year_start):
    """The dossier's closing trial balance at the end of the year starting ``year_start``: {number: amount}."""
    db.session.expire_all()
    year = db.session.query(FiscalYear).filter_by(dossier_id=dossier_id, start=year_start).one()
    balance = figures.trial_balance(dossier_id, year, "closing")
    return {row.number: row.cells[-1] for row in balance.rows if row.cells[-1]}, balance


def test_a_first_sync_is_odoos_trial_balance_and_a_quiet_night_writes_nothing(db, sandbox, workers, odoo_dossier):
    # Odoo 16 over XML-RPC here; the other tests (and tests/jobs/test_packages_e2e.py) run Odoo 19 over JSON-2
    dossier = odoo_dossier(version=16, protocol="xmlrpc")
    workers.start()
    first = sync(db, workers, dossier.id, "the first Odoo sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    book = sandbox.state.books[COMPANY]
    in_window = [line for line in book.all_lines() if line["date"] >= "2024-01-01"]
    assert first.lines_inserted == line_count(db, dossier.id) == len(in_window) > 0

    start, end = date(2024, 1, 1), date(2024, 12, 31)
    cells, balance = closing_cells(db, dossier.id, start)
    odoo_tb = emulator.trial_balance_of(book, start, end)
    assert cells == {code: amount for code, (_, _, amount) in odoo_tb.items() if amount}
    assert balance.balanced and not any(row.account_id is None for row in balance.rows)  # no computed line

    before, calls = bookkeeping_snapshot(db, dossier.id), sandbox.calls("/odoo")
    night = sync(db, workers, dossier.id, "the no-change night", trigger=Trigger.NIGHTLY)
    assert night.status == RunStatus.SUCCEEDED, night.message
    assert night.changed is False and night.lines_inserted == night.lines_updated == night.lines_deleted == 0
    assert bookkeeping_snapshot(db, dossier.id) == before
    assert night.api_calls == sandbox.calls("/odoo") - calls


def test_a_move_reset_to_draft_leaves_the_dossier_at_the_next_sync(db, sandbox, workers, odoo_dossier):
    dossier = odoo_dossier()
    workers.start()
    first = sync(db, workers, dossier.id, "the first Odoo sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    lines = line_count(db, dossier.id)

    book = sandbox.state.books[COMPANY]
    entry = next(line["entry_id"] for line in book.all_lines() if line["date"] >= "2024-02-01")
    reset = [line["id"] for line in book.all_lines() if line["entry_id"] == entry]
    sandbox.mutate(COMPANY, delete_ids=reset)  # the move is reset to draft in Odoo
    done = sync(db, workers, dossier.id, "the sync after the reset")
    assert done.status == RunStatus.SUCCEEDED, f"{done.message}\n{workers.logs()}"
    assert done.lines_deleted == len(reset) and line_count(db, dossier.id) == lines - len(reset)
    cells, _ = closing_cells(db, dossier.id, date(2024, 1, 1))
    odoo_tb = emulator.trial_balance_of(book, date(2024, 1, 1), date(2024, 12, 31))
    assert cells == {code: amount for code, (_, _, amount) in odoo_tb.items() if amount}


def test_a_malformed_answer_fails_the_run_and_a_revoked_key_needs_a_reconnect_both_leaving_the_data(
        db, sandbox, workers, odoo_dossier):
    dossier = odoo_dossier()
    workers.start()
    first = sync(db, workers, dossier.id, "the first Odoo sync")
    assert first.status == RunStatus.SUCCEEDED, f"{first.message}\n{workers.logs()}"
    before = bookkeeping_snapshot(db, dossier.id)

    sandbox.mutate(COMPANY, add=2)
    sandbox.fault("malformed", path="/odoo/19/json/2/account.move.line/search_read", count=50)
    broken = sync(db, workers, dossier.id, "the sync with a malformed answer")
    assert broken.status == RunStatus.FAILED, f"{broken.message}\n{workers.logs()}"
    assert "Odoo" in broken.message and broken.error_category == "data"
    assert bookkeeping_snapshot(db, dossier.id) == before

    sandbox.reset()
    sandbox.fault("revoke", path="/odoo")  # the user deleted the API key in Odoo
    refused = sync(db, workers, dossier.id, "the sync with a revoked key")
    assert refused.status == RunStatus.NEEDS_RECONNECT, f"{refused.message}\n{workers.logs()}"
    assert "API key" in refused.message and "demo-key" not in refused.message
    link = db.session.query(DossierLink).filter_by(dossier_id=dossier.id).one()
    assert db.session.get(Connection, link.connection_id).status == ConnectionStatus.NEEDS_RECONNECT
    assert bookkeeping_snapshot(db, dossier.id) == before
