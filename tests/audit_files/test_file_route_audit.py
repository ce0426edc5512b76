"""Audit files through the file route: a file linked to a package built from public information
(WingsOnline here) takes an XAF/FEC/SAF-T on its Sync tab with the manual path's checks, preview,
locks and background import, and the link's transfer date holds as in a sync."""
import io
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Account, AuditEvent, Connection, DossierLink, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance,
    Scenario,
)
from benchmarks.audit_file_samples import as_bytes, sample_books, xaf
from tests.audit_files.test_import import XAF
from tests.conftest import login
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

XAF_2023 = as_bytes(xaf(sample_books(2023), "3.2"))


@pytest.fixture
def world(app):
    """Firm A's grouped file linked to WingsOnline from 2024-01-01 (scenario "keep"), with the
    fiscal years 2023 and 2024."""
    world = build_world()
    wings = Connection(firm_id=world.alpha, package="wings_online", kind="accounting", name="Wings office",
                       config={"base_url": "https://ws.wings.example", "username": "Wings8x"},
                       credentials={"password": "Wings-secret-7d"})
    db.session.add(wings)
    db.session.flush()
    link = DossierLink(firm_id=world.alpha, dossier_id=world.a_grouped, connection_id=wings.id, reference="DOS042",
                       scenario=Scenario.KEEP, valid_from=date(2024, 1, 1))
    db.session.add_all([link, FiscalYear(dossier_id=world.a_grouped, start=date(2023, 1, 1), end=date(2023, 12, 31),
                                         origin="manual"),
                        FiscalYear(dossier_id=world.a_grouped, start=date(2024, 1, 1), end=date(2024, 12, 31),
                                   origin="manual")])
    db.session.commit()
    world.ids["wings_link"] = link.id
    return world


def upload(client, dossier_id, data, filename="books.xaf", **form):
    return client.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(client), "id": dossier_id, "kind": "audit_file",
        "file": (io.BytesIO(data), filename), **form}, content_type="multipart/form-data", follow_redirects=True)


def lines(dossier_id, before=None):
    db.session.expire_all()
    query = select(func.count()).select_from(LedgerLine).where(LedgerLine.dossier_id == dossier_id)
    if before is not None:
        query = query.where(LedgerLine.booking_date < before)
    return db.session.scalar(query)


def test_a_file_route_file_previews_and_takes_an_audit_file_on_its_sync_tab(client, world):
    log_in(client, "staff")
    page = client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
    assert 'id="file-route"' in page and 'value="audit_file"' in page and 'name="preview"' in page
    assert "nothing dated before the transfer date is written" in page

    preview = upload(client, world.a_grouped, XAF, preview="1").get_data(as_text=True)
    assert "Checked, nothing written: XAF 3.2" in preview and lines(world.a_grouped) == 0
    done = upload(client, world.a_grouped, XAF).get_data(as_text=True)
    assert "Uploaded XAF 3.2 of Bakkerij Janssens B.V." in done and "(10 lines added, 0 changed, 0 removed)" in done
    assert lines(world.a_grouped) == 10
    # uploaded figures are the file's own (no link origin); the link stays active
    assert db.session.scalar(select(func.count()).select_from(LedgerLine).where(
        LedgerLine.dossier_id == world.a_grouped, LedgerLine.link_id.is_not(None))) == 0
    assert db.session.get(DossierLink, world.wings_link).ended_at is None
    again = upload(client, world.a_grouped, XAF).get_data(as_text=True)
    assert "(0 lines added, 0 changed, 0 removed)" in again and lines(world.a_grouped) == 10
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "data.upload_audit_file")).all()
    assert len(events) == 2 and {e.dossier_id for e in events} == {world.a_grouped}

    # the same checks as the manual path: an unbalanced file is refused, nothing changes
    bad = upload(client, world.a_grouped, XAF.replace(b"<amnt>500.41</amnt>", b"<amnt>500.40</amnt>"),
                 "v2.xaf").get_data(as_text=True)
    assert "Nothing was uploaded:" in bad and "booking VK/2 does not balance" in bad
    assert lines(world.a_grouped) == 10


def test_who_may_upload_an_audit_file_through_the_file_route(client, world):
    external = client.application.test_client()
    log_in(external, "external")
    assert external.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(external), "id": world.a_grouped, "kind": "audit_file",
        "file": (io.BytesIO(XAF), "books.xaf")}, content_type="multipart/form-data").status_code == 403
    outsider = client.application.test_client()
    login(outsider, "admin@beta.test")
    assert outsider.post("/admin/dossier-sync/upload", data={
        "csrf_token": csrf_token(outsider), "id": world.a_grouped, "kind": "audit_file",
        "file": (io.BytesIO(XAF), "books.xaf")}, content_type="multipart/form-data").status_code == 404
    # a file linked to a documented package (Demo) still refuses audit files
    log_in(client, "admin")
    answer = upload(client, world.a_public, XAF).get_data(as_text=True)
    assert "revert it to a manual file" in answer
    assert lines(world.a_grouped) == 0 and lines(world.a_public) == 0


def test_a_year_before_the_transfer_date_is_refused_and_nothing_is_written(client, world):
    log_in(client, "staff")
    for extra in ({"preview": "1"}, {}):
        answer = upload(client, world.a_grouped, XAF_2023, **extra).get_data(as_text=True)
        assert "Nothing was uploaded:" in answer
        assert ("lies before 2024-01-01, the transfer date of the sync with Wings office: figures before that date "
                "keep their source, so nothing would be written.") in answer
    assert lines(world.a_grouped) == 0
    assert db.session.scalar(select(func.count()).select_from(OpeningBalance)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "data.upload_audit_file")) == 0


def test_nothing_dated_before_the_transfer_date_is_written_and_earlier_figures_keep_their_source(client, world):
    """A transfer date inside the file's year (2024-02-01): January's lines, balances and the
    opening balance of 2024-01-01 are not written, January keeps what it had."""
    from app.services.bookkeeping import SyncWriter
    from connectors.base import BalanceRecord, LedgerLineRecord

    writer = SyncWriter(db.session, None, dossier_id=world.a_grouped)
    writer.write(LedgerLineRecord(source_id="earlier:1", booking_date=date(2024, 1, 10), account="1300",
                                  amount=Decimal("99.00"), description="From the earlier source"))
    writer.write(LedgerLineRecord(source_id="earlier:2", booking_date=date(2024, 1, 10), account="8000",
                                  amount=Decimal("-99.00"), description="From the earlier source"))
    for account, amount in (("1300", "99.00"), ("8000", "-99.00")):
        writer.write(BalanceRecord(account=account, period_end=date(2024, 1, 31), amount=Decimal(amount),
                                   basis="movement"))
    writer.finish()
    db.session.get(DossierLink, world.wings_link).valid_from = date(2024, 2, 1)
    db.session.commit()

    log_in(client, "staff")
    done = upload(client, world.a_grouped, XAF).get_data(as_text=True)
    assert "Uploaded XAF 3.2" in done and "(7 lines added, 0 changed, 0 removed)" in done
    assert "3 lines dated before the sync&#39;s transfer date were not written." in done
    db.session.expire_all()
    january = db.session.scalars(select(LedgerLine.source_id).where(
        LedgerLine.dossier_id == world.a_grouped, LedgerLine.booking_date < date(2024, 2, 1))).all()
    assert sorted(january) == ["earlier:1", "earlier:2"]
    assert lines(world.a_grouped) == 9
    assert db.session.scalar(select(func.count()).select_from(OpeningBalance).where(
        OpeningBalance.dossier_id == world.a_grouped)) == 0
    balances = dict(db.session.execute(
        select(Account.number, PeriodBalance.amount).join(Account, Account.id == PeriodBalance.account_id)
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == world.a_grouped, Period.end == date(2024, 1, 31))).all())
    assert balances == {"1300": Decimal("99.00"), "8000": Decimal("-99.00")}  # the file's January is not written
    february = dict(db.session.execute(
        select(Account.number, PeriodBalance.amount).join(Account, Account.id == PeriodBalance.account_id)
        .join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == world.a_grouped, Period.end == date(2024, 2, 29))).all())
    assert february == {"1000": Decimal("1210.00"), "1300": Decimal("-1210.00")}
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "data.upload_audit_file")).one()
    assert event.changes["lines_before_transfer_date"] == 3


def test_an_audit_file_into_a_locked_fiscal_year_is_refused(client, world):
    year = db.session.scalar(select(FiscalYear).where(FiscalYear.dossier_id == world.a_grouped,
                                                      FiscalYear.start == date(2024, 1, 1)))
    year.locked = True
    db.session.commit()
    log_in(client, "staff")
    answer = upload(client, world.a_grouped, XAF).get_data(as_text=True)
    assert "Nothing was uploaded:" in answer and "The fiscal year 2024-01-01 to 2024-12-31 is locked" in answer
    assert lines(world.a_grouped) == 0
    assert db.session.scalar(select(func.count()).select_from(Account).where(
        Account.dossier_id == world.a_grouped)) == 0


def test_a_background_import_through_the_file_route_shows_its_progress(client, world, workers):
    log_in(client, "staff")
    page = upload(client, world.a_grouped, XAF, background="1").get_data(as_text=True)
    assert "is being imported in the background" in page and 'id="audit-file-task"' in page
    workers.start(burst=True)

    def finished():
        state = client.get(f"/admin/dossier-sync/audit-file-task?id={world.a_grouped}").get_json()
        return state if state["state"] in ("done", "failed") else None

    state = workers.wait_for(finished, what="the background import")
    assert state["ok"] is True and "Uploaded XAF 3.2" in state["message"]
    assert lines(world.a_grouped) == 10
    assert "Uploaded XAF 3.2" in client.get(f"/admin/dossier-sync/?id={world.a_grouped}").get_data(as_text=True)
