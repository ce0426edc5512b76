"""Data checks (app/services/data_checks.py): the package's balances against the synced ledger
lines, per account and period, and each period's trial balance; the result on the file page,
the dashboard and the sync history, with the firm and role checks of those screens."""
import re
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import (Account, AuditEvent, Connection, DossierLink, LedgerLine, Period, PeriodBalance,
                        RunStatus, SyncRun)
from app.services import data_checks
from app.services.data_checks import DIFFERENCES, IN_BALANCE, NOT_APPLICABLE, check_dossier, check_run
from jobs.data_checks import check as check_job
from tests.console_world import build_world, fresh_request_globals, log_in  # noqa: F401 (fixture)

D = Decimal
MONTHS = [(date(2024, 1, 1), date(2024, 1, 31)), (date(2024, 2, 1), date(2024, 2, 29))]


def books(dossier_id, year_id, link_id, *, balances, lines):
    """Two monthly periods, accounts 1000 (bank) and 7000 (sales); ``balances`` and ``lines`` are
    ``{(account, month index): [amounts]}`` written as the link's rows. Answers ids."""
    periods = [Period(dossier_id=dossier_id, fiscal_year_id=year_id, start=s, end=e) for s, e in MONTHS]
    accounts = {n: Account(dossier_id=dossier_id, number=n, name=name, kind=kind)
                for n, name, kind in (("1000", "Bank", "asset"), ("7000", "Sales", "income"))}
    db.session.add_all([*periods, *accounts.values()])
    db.session.flush()
    for (number, month), amount in balances.items():
        db.session.add(PeriodBalance(dossier_id=dossier_id, account_id=accounts[number].id,
                                     period_id=periods[month].id, amount=D(amount), origin_link_id=link_id))
    for index, ((number, month), amounts) in enumerate(lines.items()):
        for position, amount in enumerate(amounts):
            db.session.add(LedgerLine(dossier_id=dossier_id, link_id=link_id, source_id=f"l-{index}-{position}",
                                      account_id=accounts[number].id, period_id=periods[month].id,
                                      booking_date=MONTHS[month][0], amount=D(amount)))
    db.session.commit()
    return {"periods": [p.id for p in periods], "accounts": {n: a.id for n, a in accounts.items()}}


BALANCED = {("1000", 0): "150.00", ("7000", 0): "-150.00", ("1000", 1): "40.00", ("7000", 1): "-40.00"}
LINES = {("1000", 0): ["100.00", "50.00"], ("7000", 0): ["-100.00", "-50.00"], ("1000", 1): ["40.00"],
         ("7000", 1): ["-40.00"]}


@pytest.fixture
def world(app):
    return build_world()


def balance_row(world, number, month):
    return db.session.scalars(select(PeriodBalance).join(Account).join(Period).where(
        PeriodBalance.dossier_id == world.a_public, Account.number == number, Period.start == MONTHS[month][0])).one()


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------

def test_balances_that_match_their_lines_are_in_balance(world):
    books(world.a_public, world.a_year, world.a_link, balances=BALANCED, lines=LINES)
    result = check_dossier(world.a_public, world.a_run)
    assert result["status"] == IN_BALANCE
    assert result["cells"] == 4 and result["periods"] == 2
    assert result["differences_count"] == 0 and result["differences"] == [] and result["trial_balance"] == []


def test_a_balance_differing_from_its_lines_is_listed_with_both_amounts(world):
    books(world.a_public, world.a_year, world.a_link, balances={**BALANCED, ("1000", 1): "45.00", ("7000", 1): "-45.00"},
          lines=LINES)
    result = check_dossier(world.a_public, world.a_run)
    assert result["status"] == DIFFERENCES
    assert result["account_differences"] == 2 and result["trial_balance_differences"] == 0
    assert result["differences"] == [
        {"account": "1000", "name": "Bank", "period_end": "2024-02-29", "balance": "45.00", "lines": "40.00",
         "difference": "5.00"},
        {"account": "7000", "name": "Sales", "period_end": "2024-02-29", "balance": "-45.00", "lines": "-40.00",
         "difference": "-5.00"},
    ]


def test_a_balance_without_lines_and_lines_without_a_balance_both_differ(world):
    balances = {k: v for k, v in BALANCED.items() if k != ("7000", 1)}
    lines = {**LINES, ("1000", 1): []}
    books(world.a_public, world.a_year, world.a_link, balances={**balances, ("1000", 1): "-0.01"}, lines=lines)
    result = check_dossier(world.a_public, world.a_run)
    listed = {(d["account"], d["period_end"]): (d["balance"], d["lines"]) for d in result["differences"]}
    assert listed == {("1000", "2024-02-29"): ("-0.01", "0.00"), ("7000", "2024-02-29"): ("0.00", "-40.00")}
    # February's trial balance (the package's balances) sums to -0.01, not zero
    assert result["trial_balance"] == [{"period_end": "2024-02-29", "total": "-0.01"}]
    assert result["differences_count"] == 3


def test_an_unbalanced_trial_balance_is_reported_even_when_lines_agree(world):
    unbalanced = {**BALANCED, ("1000", 0): "151.00"}
    books(world.a_public, world.a_year, world.a_link, balances=unbalanced, lines={**LINES, ("1000", 0): ["100", "51"]})
    result = check_dossier(world.a_public, world.a_run)
    assert result["status"] == DIFFERENCES and result["account_differences"] == 0
    assert result["trial_balance"] == [{"period_end": "2024-01-31", "total": "1.00"}]


def test_only_the_links_own_rows_and_the_windows_periods_are_compared(world):
    ids = books(world.a_public, world.a_year, world.a_link, balances=BALANCED, lines=LINES)
    # a line of another link (or an upload) in the same cell is not this link's data
    other = DossierLink(firm_id=world.alpha, dossier_id=world.a_public, connection_id=world.a_spare_connection,
                        reference="C2", kind="accounting", ended_at=datetime(2024, 6, 1))
    db.session.add(other)
    db.session.flush()
    db.session.add(LedgerLine(dossier_id=world.a_public, link_id=other.id, source_id="other-1",
                              account_id=ids["accounts"]["1000"], period_id=ids["periods"][0],
                              booking_date=date(2024, 1, 3), amount=D("999.00")))
    db.session.commit()
    assert check_dossier(world.a_public, world.a_run)["status"] == IN_BALANCE
    # a run in 2027 asks balances from 1 January 2025: the 2024 periods are before its window
    db.session.get(SyncRun, world.a_run).started_at = datetime(2027, 3, 1)
    db.session.commit()
    result = check_dossier(world.a_public, world.a_run)
    assert result["status"] == NOT_APPLICABLE and result["reason"] == data_checks.NO_FIGURES
    assert result["checked_from"] == "2025-01-01"


@pytest.mark.parametrize("package, reason", [("xero", data_checks.LINES_ONLY), ("xero_tb", data_checks.BALANCES_ONLY),
                                              ("no_such_package", data_checks.UNKNOWN_PACKAGE)])
def test_packages_without_both_balances_and_lines_are_not_applicable(world, package, reason):
    books(world.a_public, world.a_year, world.a_link, balances={("1000", 0): "5.00"}, lines={})
    db.session.get(Connection, world.a_connection).package = package
    db.session.commit()
    result = check_dossier(world.a_public, world.a_run)
    assert (result["status"], result["reason"]) == (NOT_APPLICABLE, reason)


def test_a_file_without_a_bookkeeping_link_is_not_applicable(world):
    result = check_dossier(world.a_private)
    assert (result["status"], result["reason"]) == (NOT_APPLICABLE, data_checks.NO_LINK)


def test_the_listed_differences_are_capped_but_the_count_is_not(world, monkeypatch):
    monkeypatch.setattr(data_checks, "MAX_LISTED", 1)
    books(world.a_public, world.a_year, world.a_link, balances={("1000", 0): "1.00", ("1000", 1): "2.00"}, lines={})
    result = check_dossier(world.a_public, world.a_run)
    assert result["account_differences"] == 2 and len(result["differences"]) == 1
    assert result["differences"][0]["period_end"] == "2024-01-31"


def test_the_job_stores_the_result_on_a_succeeded_run_and_audits_differences(world):
    books(world.a_public, world.a_year, world.a_link, balances={**BALANCED, ("7000", 0): "-140.00"}, lines=LINES)
    assert check_job(world.a_run) == DIFFERENCES
    db.session.expire_all()
    run = db.session.get(SyncRun, world.a_run)
    assert run.data_check_status == DIFFERENCES and run.data_check["differences_count"] == 2
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sync.data_check")).one()
    assert event.dossier_id == world.a_public and event.firm_id == world.alpha


def test_a_run_that_did_not_succeed_is_not_checked(world):
    books(world.a_public, world.a_year, world.a_link, balances=BALANCED, lines=LINES)
    db.session.get(SyncRun, world.a_run).status = RunStatus.FAILED
    db.session.commit()
    assert check_run(world.a_run) is None and check_job(999_999) is None
    assert db.session.get(SyncRun, world.a_run).data_check_status is None


def test_the_check_is_a_few_aggregate_statements(world):
    from tests.conftest import recorded_statements

    books(world.a_public, world.a_year, world.a_link, balances={**BALANCED, ("1000", 1): "41.00"}, lines=LINES)
    with recorded_statements(db.engine) as seen:
        check_dossier(world.a_public, world.a_run)
    assert len(seen) <= 6, seen
    assert not any("FROM ledger_line" in s and "sum(" not in s.lower() for s in seen)


def test_enqueue_check_queues_the_job_once_per_run(world, redis_db):
    from app.services.queues import MAINTENANCE_QUEUE, get_queue

    job = data_checks.enqueue_check(world.a_run)
    assert job.id == f"data-check-{world.a_run}" and job.func_name == "jobs.data_checks.check"
    assert job.args == (world.a_run,) and job.origin == MAINTENANCE_QUEUE
    assert job.id in get_queue(MAINTENANCE_QUEUE).job_ids


# --------------------------------------------------------------------------------------
# The console: file page, dashboard, sync history (firm and role checks of those screens)
# --------------------------------------------------------------------------------------

def checked_world(world, balances):
    """Firm A's public file synced by its run, checked; firm B's public file checked in balance."""
    books(world.a_public, world.a_year, world.a_link, balances=balances, lines=LINES)
    check_run(world.a_run)
    books(world.b_public, world.b_year, world.b_link, balances=BALANCED, lines=LINES)
    check_run(world.b_run)


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def test_the_file_page_lists_the_differences_with_both_amounts(world, client):
    checked_world(world, {**BALANCED, ("1000", 1): "45.00", ("7000", 1): "-45.00"})
    html = page(log_in(client, "admin"), f"/admin/dossier/?id={world.a_public}")
    card = html.split('id="data-check"', 1)[1].split('id="data-check-trial-balance"', 1)[0]
    assert 'data-check="differences"' in html and "2 differences" in card
    row = card.split('data-account="1000" data-period="2024-02-29"', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row) == ["1000 Bank", "2024-02-29", "45.00", "40.00", "5.00"]
    history = html.split('id="sync-history"', 1)[1]
    assert f'data-run="{world.a_run}"' in history and 'data-check="differences"' in history


def test_the_file_page_says_in_balance(world, client):
    checked_world(world, BALANCED)
    html = page(log_in(client, "external"), f"/admin/dossier/?id={world.a_public}")  # granted to the external
    assert 'class="badge badge-success fs-data-check" data-check="in_balance"' in html
    assert "In balance" in html and "2 periods checked" in html and 'id="data-check-differences"' not in html


def test_a_file_never_checked_shows_no_check(world, client):
    html = page(log_in(client, "admin"), f"/admin/dossier/?id={world.a_public}")
    assert 'id="data-check"' not in html


def test_the_dashboard_counts_the_files_whose_newest_check_differs(world, client):
    checked_world(world, {**BALANCED, ("1000", 0): "1.00"})
    admin = log_in(client, "admin")
    tile = page(admin, "/admin/").split('id="tile-data_differences"', 1)[1]
    assert tile.startswith(' data-count="1"')
    # the runs list behind the tile shows firm A's run with differences, not firm B's
    home = page(admin, "/admin/")
    url = re.search(r'<a href="([^"]+)"[^>]*\s+id="tile-data_differences"', home).group(1).replace("&amp;", "&")
    runs = page(admin, url)
    assert "Alpha Public Ltd" in runs and "Beta Public Ltd" not in runs and 'data-check="differences"' in runs
    # a newer run in balance of the same file clears the tile
    newer = SyncRun(firm_id=world.alpha, dossier_id=world.a_public, link_id=world.a_link, status="succeeded",
                    started_at=datetime(2025, 1, 2), data_check_status=IN_BALANCE, data_check={"status": IN_BALANCE})
    db.session.add(newer)
    db.session.commit()
    assert page(admin, "/admin/").split('id="tile-data_differences"', 1)[1].startswith(' data-count="0"')
    # the filter keeps the runs whose check found differences only
    filtered, everything = page(admin, url), page(admin, "/admin/runs/")
    assert 'data-check="in_balance"' in everything and 'data-check="in_balance"' not in filtered
    assert 'data-check="differences"' in filtered


@pytest.mark.parametrize("role, count", [("staff", 1), ("external", 1), ("support", 1)])
def test_the_dashboard_tile_counts_only_visible_files(world, client, role, count):
    checked_world(world, {**BALANCED, ("1000", 0): "1.00"})
    # firm A's public file differs (granted to the external; staff see every non-private file);
    # firm B's file is in balance, so support (every firm) counts one file too
    tile = page(log_in(client, role), "/admin/").split('id="tile-data_differences"', 1)[1]
    assert tile.startswith(f' data-count="{count}"')


def test_another_firm_sees_neither_the_check_nor_the_runs(world, client):
    checked_world(world, {**BALANCED, ("1000", 0): "1.00"})
    from tests.conftest import login

    login(client, "admin@beta.test")
    assert client.get(f"/admin/dossier/?id={world.a_public}").status_code == 404
    assert page(client, "/admin/").split('id="tile-data_differences"', 1)[1].startswith(' data-count="0"')
    runs = page(client, "/admin/runs/?flt0_0=differences")
    assert "Alpha Public Ltd" not in runs


def test_queueing_quietly_never_raises(world, monkeypatch, caplog):
    def refuse(run_id):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(data_checks, "enqueue_check", refuse)
    data_checks.enqueue_check_quietly(world.a_run)
    assert "data check not queued" in caplog.text
