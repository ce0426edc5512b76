"""The preview before a set-up replaces anything, the history choice, and the sync window
(app.services.setup_preview, app.services.links, app.services.sync_windows, the Sync tab)."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import g
from sqlalchemy import update, func, select

from app.access import actor_for
from app.extensions import db as _db
from app.models import (
    AuditEvent, Connection, Dossier, DossierLink, FiscalYear, LedgerLine, Period, PeriodBalance, Role, RunStatus,
    Scenario, SyncRun,
)
from app.models.dossier import History
from app.services import setup_preview
from app.services.bookkeeping import write_records
from app.services.links import ConfirmationNeeded, SetupError, set_up_sync
from app.services.sync_windows import ALL_HISTORY_YEARS, sync_window
from connectors.base import BalanceRecord, LedgerLineRecord
from tests.conftest import csrf_from, login, make_user, upload_monthly_balances


def month_ends(year, months):
    return [(date(year, m, 1) + timedelta(days=32)).replace(day=1) - timedelta(days=1) for m in months]


@pytest.fixture
def world(db, firm):
    """A manual monthly file with uploaded balances for every month of 2025 and for Jan-Feb 2026."""
    admin = make_user("admin@alpha.test", firm, Role.ADMIN)
    dossier = Dossier(firm=firm, name="Bakkerij Janssens", frequency="month")
    books = Connection(firm=firm, package="demo", kind="accounting", name="Demo Books",
                       config={"base_url": "http://127.0.0.1:9"}, credentials={"api_key": "k"},
                       references=[{"reference": "1", "name": "Bakkerij Janssens BV"}])
    db.session.add_all([dossier, books])
    db.session.flush()
    upload_monthly_balances(dossier, until=date(2026, 2, 28), amount="100")
    return {"admin": actor_for(admin, firm.id), "dossier": dossier, "books": books}


def balances(db, dossier_id):
    return db.session.scalar(select(func.count()).select_from(PeriodBalance).where(PeriodBalance.dossier_id == dossier_id))


def test_the_preview_names_the_uploaded_periods_replaced_and_the_periods_kept(app, world):
    preview = setup_preview.preview(world["dossier"], Scenario.KEEP, date(2026, 1, 1))
    assert [(p.start, p.end) for p in preview.uploaded_replaced] == [(date(2026, 1, 1), date(2026, 1, 31)),
                                                                      (date(2026, 2, 1), date(2026, 2, 28))]
    assert preview.synced_replaced == [] and len(preview.kept) == 12
    assert (preview.balances, preview.ledger_lines, preview.needs_confirmation) == (4, 0, True)
    with app.test_request_context():
        text = " ".join(preview.sentences())
    assert "Replaces 2 uploaded periods, Jan–Feb 2026, with the package's figures" in text
    assert "the package may have none for them yet" in text and "Keeps 12 periods before January 1, 2026" in text

    everything = setup_preview.preview(world["dossier"], Scenario.REPLACE)
    assert len(everything.uploaded_replaced) == 14 and everything.kept == [] and everything.balances == 28


def test_a_locked_year_is_kept_and_synced_data_needs_no_confirmation(db, world):
    year = db.session.scalar(select(FiscalYear).where(FiscalYear.start == date(2025, 1, 1)))
    year.locked = True
    db.session.execute(PeriodBalance.__table__.update().where(PeriodBalance.dossier_id == world["dossier"].id)
                       .values(origin_link_id=None))
    db.session.commit()
    preview = setup_preview.preview(world["dossier"], Scenario.REPLACE)
    assert len(preview.kept) == 12 and len(preview.uploaded_replaced) == 2

    link = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2025, 1, 1),
                       queue=False, confirmed=True)
    write_records(db.session, link.id, [BalanceRecord("550000", date(2026, 3, 31), Decimal("5"), "movement"),
                                        BalanceRecord("700000", date(2026, 3, 31), Decimal("-5"), "movement")])
    db.session.commit()
    synced_only = setup_preview.preview(world["dossier"], Scenario.SWITCH, date(2026, 1, 1))
    assert [p.end for p in synced_only.synced_replaced] == [date(2026, 3, 31)]
    assert synced_only.uploaded_replaced == [] and not synced_only.needs_confirmation


def test_an_unconfirmed_set_up_that_replaces_uploads_is_refused_and_writes_nothing(db, world):
    with pytest.raises(ConfirmationNeeded) as refused:
        set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2026, 1, 1),
                    queue=False, confirmed=False)
    db.session.rollback()
    assert "Replaces 2 uploaded periods, Jan–Feb 2026" in str(refused.value)
    assert balances(db, world["dossier"].id) == 28
    assert db.session.scalar(select(func.count()).select_from(DossierLink)) == 0


def test_a_confirmed_set_up_stores_the_history_and_audits_what_it_kept_and_replaced(db, world):
    with pytest.raises(SetupError, match="how much history"):
        set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False,
                    history="forever", confirmed=True)
    db.session.rollback()
    assert balances(db, world["dossier"].id) == 28
    link = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2026, 1, 1),
                       queue=False, confirmed=True, history=History.ALL)
    assert link.history == History.ALL and balances(db, world["dossier"].id) == 24
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.setup"))
    assert event.changes["history"] == "all" and event.changes["confirmed"] is True
    assert event.changes["preview"] == {
        "periods_kept": 12, "periods_replaced": 2,
        "uploaded_periods_replaced": [["2026-01-01", "2026-01-31"], ["2026-02-01", "2026-02-28"]],
        "ledger_lines_replaced": 0, "balances_replaced": 4, "opening_balances_replaced": 0,
    }


def test_uploads_left_empty_names_the_replaced_periods_the_package_did_not_fill(db, world):
    link = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.KEEP, date(2026, 1, 1),
                       queue=False, confirmed=True)
    assert setup_preview.uploads_left_empty(link) == []  # no run has succeeded yet
    db.session.add(SyncRun(firm_id=link.firm_id, dossier_id=link.dossier_id, link_id=link.id, trigger="setup",
                           status=RunStatus.SUCCEEDED))
    write_records(db.session, link.id, [BalanceRecord("550000", date(2026, 1, 31), Decimal("7"), "movement"),
                                        BalanceRecord("700000", date(2026, 1, 31), Decimal("-7"), "movement")])
    db.session.commit()
    assert [(p.start, p.end) for p in setup_preview.uploads_left_empty(link)] == [(date(2026, 2, 1), date(2026, 2, 28))]


def test_the_window_follows_the_history_choice():
    today = date(2026, 12, 6)
    link = DossierLink(valid_from=None, history=History.PREVIOUS_YEAR)
    window = sync_window(link, today)
    assert (window.start, window.end) == (date(2024, 1, 1), today)
    assert window.period_ends[0] == date(2024, 1, 31) and window.period_ends[-1] == date(2026, 11, 30)
    assert sync_window(DossierLink(history=History.TRANSFER_DATE), today).start == date(2026, 1, 1)
    assert sync_window(DossierLink(history=History.ALL), today).start == date(2026 - ALL_HISTORY_YEARS, 1, 1)
    keep = DossierLink(valid_from=date(2026, 1, 1), history=History.PREVIOUS_YEAR)
    assert sync_window(keep, today).start == date(2026, 1, 1)  # before the transfer date the file keeps its own
    keep.history = History.ALL
    assert sync_window(keep, today).start == date(2016, 1, 1)  # read for the opening balance only


def test_years_before_the_window_get_the_sums_of_their_lines_and_follow_them(db, world):
    this_year = date.today().year
    old = this_year - 3
    link = set_up_sync(world["admin"], world["dossier"], world["books"], "1", Scenario.REPLACE, queue=False,
                       history=History.TRANSFER_DATE, confirmed=True)  # window: this year only

    def line(source_id, day, account, amount):
        return LedgerLineRecord(source_id=source_id, booking_date=day, account=account, amount=Decimal(amount))

    write_records(db.session, link.id, [
        BalanceRecord("550000", date(this_year, 1, 31), Decimal("10"), "movement"),
        BalanceRecord("700000", date(this_year, 1, 31), Decimal("-10"), "movement"),
        line("A", date(old, 6, 3), "550000", "40"), line("B", date(old, 6, 3), "700000", "-40"),
        line("C", date(old, 6, 9), "550000", "2"), line("D", date(old, 6, 9), "700000", "-2"),
        line("E", date(this_year, 1, 5), "550000", "10"), line("F", date(this_year, 1, 5), "700000", "-10"),
    ])
    db.session.commit()
    rows = db.session.execute(
        select(Period.end, PeriodBalance.amount).join(Period, Period.id == PeriodBalance.period_id)
        .where(PeriodBalance.dossier_id == world["dossier"].id).order_by(Period.end, PeriodBalance.amount)).all()
    assert rows == [(date(old, 6, 30), Decimal("-42.00")), (date(old, 6, 30), Decimal("42.00")),
                    (date(this_year, 1, 31), Decimal("-10.00")), (date(this_year, 1, 31), Decimal("10.00"))]
    # a later run with a changed old line moves the sums it made
    write_records(db.session, link.id, [line("C", date(old, 6, 9), "550000", "3"),
                                        line("D", date(old, 6, 9), "700000", "-3")])
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(LedgerLine).where(LedgerLine.amount == Decimal("3"))) == 1

    def old_balances():
        return sorted(db.session.scalars(select(PeriodBalance.amount).join(Period, Period.id == PeriodBalance.period_id)
                                         .where(Period.end == date(old, 6, 30))))

    assert old_balances() == [Decimal("-43.00"), Decimal("43.00")]
    # a period where another source holds a balance (made by no link, as an upload's) is left alone
    db.session.execute(update(PeriodBalance).where(PeriodBalance.amount == Decimal("-43")).values(origin_link_id=None))
    write_records(db.session, link.id, [line("C", date(old, 6, 9), "550000", "4"),
                                        line("D", date(old, 6, 9), "700000", "-4")])
    db.session.commit()
    assert old_balances() == [Decimal("-43.00"), Decimal("43.00")]


# -- the Sync tab's preview step ---------------------------------------------------------


def log_in(client, email):
    response = login(client, email)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


def post_setup(client, dossier_id, connection_id, **form):
    g.pop("csrf_token", None)  # the test's app context outlives requests: no token cached from another session
    token = csrf_from(client.get(f"/admin/dossier-sync/?id={dossier_id}"))  # the tab's own form token
    return client.post("/admin/dossier-sync/setup", data={
        "csrf_token": token, "id": dossier_id, "scenario": "keep", "connection_id": connection_id,
        "reference": "1", "transfer_date": "2026-01-01", "history": "previous_year", **form}, follow_redirects=True)


def test_the_tab_previews_then_asks_for_the_confirmation_before_replacing_uploads(client, world):
    dossier_id, books_id = world["dossier"].id, world["books"].id
    log_in(client, "admin@alpha.test")
    tab = client.get(f"/admin/dossier-sync/?id={dossier_id}").get_data(as_text=True)
    assert 'name="history"' in tab and "All the package has (up to 10 years)" in tab

    preview = post_setup(client, dossier_id, books_id)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'id="setup-preview"' in html, html[:800]
    assert "Replaces 2 uploaded periods, Jan–Feb 2026, with the package&#39;s figures" in html
    assert 'name="replace_uploads"' in html and 'name="preview_seen" value="1"' in html
    assert balances(_db, dossier_id) == 28 and _db.session.scalar(select(func.count()).select_from(DossierLink)) == 0

    unticked = post_setup(client, dossier_id, books_id, preview_seen="1")
    assert "This set-up replaces uploaded figures" in unticked.get_data(as_text=True)
    _db.session.expire_all()
    assert balances(_db, dossier_id) == 28 and _db.session.scalar(select(func.count()).select_from(DossierLink)) == 0

    done = post_setup(client, dossier_id, books_id, preview_seen="1", replace_uploads="1", history="all")
    assert "is set up; its first sync is queued" in done.get_data(as_text=True)
    _db.session.expire_all()
    link = _db.session.scalars(select(DossierLink)).one()
    assert (link.scenario, link.valid_from, link.history) == ("keep", date(2026, 1, 1), "all")
    assert balances(_db, dossier_id) == 24
    assert "History: All the package has (up to 10 years)" in client.get(
        f"/admin/dossier-sync/?id={dossier_id}").get_data(as_text=True)
