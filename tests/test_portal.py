"""The client portal (``/portal/``): a pulse user sees the files granted to them, read-only,
with the last sync time and the key figures; never the console."""
from datetime import date, datetime

import pytest
from sqlalchemy import delete

from app.extensions import db
from app.models import Account, Dossier, FiscalYear, OpeningBalance, Period, PeriodBalance
from app.portal import key_figures
from tests.console_world import build_world, fresh_request_globals, log_in  # noqa: F401 - autouse fixture


@pytest.fixture
def world(app):
    return build_world()


def book(dossier_id):
    """A fiscal year 2024 with revenue 1,000, expenses 300 and assets 900 + opening 500."""
    db.session.execute(delete(FiscalYear).where(FiscalYear.dossier_id == dossier_id))
    year = FiscalYear(dossier_id=dossier_id, start=date(2024, 1, 1), end=date(2024, 12, 31))
    old = FiscalYear(dossier_id=dossier_id, start=date(2023, 1, 1), end=date(2023, 12, 31))
    db.session.add_all([year, old])
    db.session.flush()
    period = Period(dossier_id=dossier_id, fiscal_year_id=year.id, start=date(2024, 1, 1), end=date(2024, 1, 31))
    old_period = Period(dossier_id=dossier_id, fiscal_year_id=old.id, start=date(2023, 1, 1), end=date(2023, 1, 31))
    accounts = {kind: Account(dossier_id=dossier_id, number=number, name=kind, kind=kind)
                for kind, number in (("income", "700000"), ("expense", "600000"), ("asset", "550000"))}
    db.session.add_all([period, old_period, *accounts.values()])
    db.session.flush()
    db.session.add_all([
        PeriodBalance(dossier_id=dossier_id, account_id=accounts["income"].id, period_id=period.id, amount=-1000),
        PeriodBalance(dossier_id=dossier_id, account_id=accounts["expense"].id, period_id=period.id, amount=300),
        PeriodBalance(dossier_id=dossier_id, account_id=accounts["asset"].id, period_id=period.id, amount=900),
        PeriodBalance(dossier_id=dossier_id, account_id=accounts["income"].id, period_id=old_period.id, amount=-77),
        OpeningBalance(dossier_id=dossier_id, account_id=accounts["asset"].id, date=date(2024, 1, 1), amount=500),
    ])
    db.session.commit()


def test_key_figures_of_the_latest_fiscal_year(world):
    book(world.a_public)
    figures = key_figures(world.a_public, today=date(2025, 2, 1))
    assert figures["year"].start == date(2024, 1, 1)
    assert (figures["revenue"], figures["expenses"], figures["result"]) == (1000, 300, 700)
    assert figures["balance_sheet_total"] == 1400
    assert key_figures(world.a_private) is None


def test_a_pulse_user_sees_only_the_granted_files_and_their_figures(client, world):
    book(world.a_public)
    book(world.a_grouped)
    db.session.get(Dossier, world.a_public).last_synced_at = datetime(2025, 2, 3, 4, 5)
    db.session.commit()
    page = log_in(client, "pulse").get("/portal/").get_data(as_text=True)
    assert "Alpha Public Ltd" in page and "2025-02-03 05:05 CET" in page  # the firm's time zone
    assert 'data-figure="revenue">1,000.00 EUR' in page and 'data-figure="balance_sheet_total">1,400.00 EUR' in page
    for hidden in ("Alpha Private Ltd", "Alpha Grouped Ltd", "Beta Public Ltd"):
        assert hidden not in page
    assert page.count('class="card dossier-card"') == 1


def test_a_pulse_user_never_reaches_the_console(client, world):
    log_in(client, "pulse")
    for url in ("/admin/", "/admin/dossiers/", f"/admin/dossier/?id={world.a_public}", "/admin/connections/"):
        assert client.get(url).status_code == 403, url


def test_the_portal_needs_a_login(client, world):
    response = client.get("/portal/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_portal_opens_on_the_latest_year_with_figures_and_shows_the_year_before(client, world):
    """Issue #18 item 7: a new, still empty year (2025, started) is not shown; 2024 is, with 2023 beside it."""
    book(world.a_public)
    empty = FiscalYear(dossier_id=world.a_public, start=date(2025, 1, 1), end=date(2025, 12, 31))
    db.session.add(empty)
    db.session.commit()
    figures = key_figures(world.a_public, today=date(2025, 6, 1))
    assert figures["year"].start == date(2024, 1, 1)
    assert figures["previous"]["year"].start == date(2023, 1, 1) and figures["previous"]["revenue"] == 77
    page = log_in(client, "pulse").get("/portal/").get_data(as_text=True)
    assert 'data-year="previous"' in page and 'data-previous="revenue">77.00 EUR' in page
    assert 'data-figure="revenue">1,000.00 EUR' in page


def test_a_file_without_figures_says_so(client, world):
    assert db.session.query(FiscalYear).filter_by(dossier_id=world.a_public).count()  # years, but no balances
    assert key_figures(world.a_public, today=date(2025, 6, 1)) is None
    page = log_in(client, "pulse").get("/portal/").get_data(as_text=True)
    assert "No fiscal year of this file has figures yet." in page
