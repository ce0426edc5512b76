"""Trial balance, ledger drill-down and the result/equity chart (app.figures and the dossier page)."""
import re
from xml.etree import ElementTree
from datetime import date, timedelta
from decimal import Decimal

import pytest

from app import figures
from app.extensions import db
from app.models import Account, Dossier, FiscalYear, LedgerLine, OpeningBalance, Period, PeriodBalance
from tests.console_world import build_world, fresh_request_globals, log_in  # noqa: F401 (fixture)

D = Decimal
QUARTERS = [(date(2024, 1, 1), date(2024, 3, 31)), (date(2024, 4, 1), date(2024, 6, 30)),
            (date(2024, 7, 1), date(2024, 9, 30)), (date(2024, 10, 1), date(2024, 12, 31))]
ACCOUNTS = [("1000", "Bank", "asset"), ("1400", "Receivables", "asset"), ("1600", "Payables", "liability"),
            ("0100", "Share capital", "equity"), ("7000", "Sales", "income"), ("6000", "Office costs", "expense")]
#: 2023 (one yearly period) and the four quarters of 2024: net movements, debit positive
MOVEMENTS = {
    "2023": {"1000": "1300", "0100": "-1000", "7000": "-500", "6000": "200"},
    "Q1": {"1000": "400", "7000": "-600", "6000": "200"},
    "Q2": {"1000": "-100", "6000": "100"},
    "Q3": {"1400": "250", "7000": "-250"},
    "Q4": {"1000": "50", "1600": "-80", "6000": "30"},
}


def build_books(dossier_id, year_2024_id):
    """Accounts, a 2023 year with one period, the 2024 quarters and their balances; answers ids."""
    year_2023 = FiscalYear(dossier_id=dossier_id, start=date(2023, 1, 1), end=date(2023, 12, 31))
    db.session.add(year_2023)
    db.session.flush()
    periods = {"2023": Period(dossier_id=dossier_id, fiscal_year_id=year_2023.id, start=date(2023, 1, 1),
                              end=date(2023, 12, 31))}
    for name, (start, end) in zip(("Q1", "Q2", "Q3", "Q4"), QUARTERS):
        periods[name] = Period(dossier_id=dossier_id, fiscal_year_id=year_2024_id, start=start, end=end)
    accounts = {number: Account(dossier_id=dossier_id, number=number, name=name, kind=kind)
                for number, name, kind in ACCOUNTS}
    db.session.add_all([*periods.values(), *accounts.values()])
    db.session.flush()
    for period, amounts in MOVEMENTS.items():
        for number, amount in amounts.items():
            db.session.add(PeriodBalance(dossier_id=dossier_id, account_id=accounts[number].id,
                                         period_id=periods[period].id, amount=D(amount)))
    db.session.commit()
    return {"periods": {k: p.id for k, p in periods.items()}, "accounts": {k: a.id for k, a in accounts.items()},
            "year_2023": year_2023.id}


def add_lines(dossier_id, account_id, period_id, count, *, journal="BANK", start=date(2024, 1, 2), prefix="line"):
    for index in range(count):
        db.session.add(LedgerLine(dossier_id=dossier_id, source_id=f"{prefix}-{account_id}-{period_id}-{index}",
                                  account_id=account_id, period_id=period_id,
                                  booking_date=start + timedelta(days=index % 60), amount=D("10.00"),
                                  description=f"{prefix} {index}", reference=f"REF{index:03d}", journal=journal))
    db.session.commit()


@pytest.fixture
def world(app):
    world = build_world()
    world.ids["books"] = build_books(world.a_public, world.a_year)
    return world


def year_2024(world):
    return db.session.get(FiscalYear, world.a_year)


def column(balance, number):
    return [row.cells for row in balance.rows if row.number == number][0]


# --------------------------------------------------------------------------------------
# The numbers
# --------------------------------------------------------------------------------------

def test_movement_view_has_the_period_movements_year_totals_and_balances(world):
    balance = figures.trial_balance(world.a_public, year_2024(world), "movement")
    assert [p.end for p in balance.periods] == [end for _, end in QUARTERS]
    assert column(balance, "1000") == [D("400.00"), D("-100.00"), D("0.00"), D("50.00")]
    assert column(balance, "6000") == [D("200.00"), D("100.00"), D("0.00"), D("30.00")]
    assert {row.number: row.total for row in balance.rows} == {
        "1000": D("350.00"), "1400": D("250.00"), "1600": D("-80.00"), "7000": D("-850.00"), "6000": D("330.00")}
    # share capital did not move in 2024: left out of the movement view
    assert [group.kind for group in balance.groups] == ["asset", "liability", "income", "expense"]
    assert balance.groups[0].subtotals == [D("400.00"), D("-100.00"), D("250.00"), D("50.00")]
    assert balance.totals == [D("0.00")] * 4 and balance.total == D("0.00") and balance.balanced


def test_closing_view_carries_opening_balances_and_starts_income_and_expenses_at_zero(world):
    balance = figures.trial_balance(world.a_public, year_2024(world), "closing")
    assert column(balance, "1000") == [D("1700.00"), D("1600.00"), D("1600.00"), D("1650.00")]
    assert column(balance, "1400") == [D("0.00"), D("0.00"), D("250.00"), D("250.00")]
    assert column(balance, "0100") == [D("-1000.00")] * 4
    assert column(balance, "7000") == [D("-600.00"), D("-600.00"), D("-850.00"), D("-850.00")]  # year to date
    assert column(balance, "6000") == [D("200.00"), D("300.00"), D("300.00"), D("330.00")]
    earlier = [row for row in balance.rows if row.account_id is None]
    assert [(row.name, row.kind, row.cells) for row in earlier] == [
        ("Result of earlier years", "equity", [D("-300.00")] * 4)]
    assert balance.totals == [D("0.00")] * 4 and balance.balanced


def test_an_opening_balance_replaces_everything_before_its_date(world):
    books = world.books
    db.session.add(OpeningBalance(dossier_id=world.a_public, account_id=books["accounts"]["1000"],
                                  date=date(2024, 1, 1), amount=D("5000.00")))
    db.session.commit()
    balance = figures.trial_balance(world.a_public, year_2024(world), "closing")
    # 5000 at the transfer date, the 1300 of 2023 is already in it
    assert column(balance, "1000") == [D("5400.00"), D("5300.00"), D("5300.00"), D("5350.00")]
    assert balance.totals == [D("3700.00")] * 4 and not balance.balanced


def test_a_one_sided_booking_shows_as_a_difference_in_its_period(world):
    books = world.books
    db.session.add(PeriodBalance(dossier_id=world.a_public, account_id=books["accounts"]["1400"],
                                 period_id=books["periods"]["Q2"], amount=D("12.34")))
    db.session.commit()
    balance = figures.trial_balance(world.a_public, year_2024(world), "movement")
    assert balance.totals == [D("0.00"), D("12.34"), D("0.00"), D("0.00")]
    assert [p.end for p in balance.differences] == [date(2024, 6, 30)]
    closing = figures.trial_balance(world.a_public, year_2024(world), "closing")
    assert closing.totals == [D("0.00"), D("12.34"), D("12.34"), D("12.34")]


def test_the_trial_balance_uses_a_fixed_number_of_queries(world, app):
    from sqlalchemy import event

    statements = []
    year = year_2024(world)
    year.start  # loaded before counting

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        figures.trial_balance(world.a_public, year, "closing")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # periods, movements, openings, earlier movements, accounts: never one per cell
    assert len(statements) <= 5
    assert sum("GROUP BY" in s for s in statements) == 2


def test_result_and_equity_per_period_and_the_chart_points(world):
    year = year_2024(world)
    points = figures.result_and_equity(figures.trial_balance(world.a_public, year, "movement"),
                                       figures.trial_balance(world.a_public, year, "closing"))
    assert [(p.period_end.month, p.result, p.equity) for p in points] == [
        (3, D("400.00"), D("1700.00")), (6, D("-100.00"), D("1600.00")),
        (9, D("250.00"), D("1850.00")), (12, D("-30.00"), D("1820.00"))]
    svg = str(figures.chart_svg(points))
    ElementTree.fromstring(svg)  # well-formed
    assert svg.startswith("<svg") and "<script" not in svg and "http" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    bars = re.findall(r'class="fs-result" data-period="([\d-]+)" data-value="([-\d.]+)"', svg)
    dots = re.findall(r'class="fs-equity" data-period="([\d-]+)" data-value="([-\d.]+)"', svg)
    assert bars == [("2024-03-31", "400.00"), ("2024-06-30", "-100.00"), ("2024-09-30", "250.00"),
                    ("2024-12-31", "-30.00")]
    assert [value for _, value in dots] == ["1700.00", "1600.00", "1850.00", "1820.00"]
    # a higher equity is drawn higher up (smaller y); a loss bar is red, a profit green
    ys = [float(y) for y in re.findall(r'class="fs-equity"[^>]*cy="([\d.]+)"', svg)]
    assert ys[2] < ys[3] < ys[0] < ys[1]
    assert 'data-value="-100.00"' in svg and 'fill="#c62828"' in svg and 'fill="#2e7d32"' in svg


# --------------------------------------------------------------------------------------
# Ledger lines
# --------------------------------------------------------------------------------------

def test_ledger_filters_and_pages(world):
    books = world.books
    bank, sales = books["accounts"]["1000"], books["accounts"]["7000"]
    q1, q2 = books["periods"]["Q1"], books["periods"]["Q2"]
    add_lines(world.a_public, bank, q1, 5, journal="BANK")
    add_lines(world.a_public, bank, q2, 3, journal="BANK", start=date(2024, 4, 2))
    add_lines(world.a_public, sales, q1, 4, journal="SALES", prefix="invoice")
    page = figures.ledger_page(world.a_public, account_id=bank, period_id=q1)
    assert page.total == 5 and page.amount == D("50.00") and page.pages == 1
    assert figures.ledger_page(world.a_public, journal="SALES").total == 4
    assert figures.ledger_page(world.a_public, text="INVOICE 3").total == 1  # case-insensitive, description
    assert figures.ledger_page(world.a_public, text="ref00").total == 12  # reference
    assert figures.ledger_page(world.a_public, text="100%").total == 0  # % is a character, not a wildcard
    second = figures.ledger_page(world.a_public, page=2, page_size=5)
    assert (second.total, second.pages, second.page, len(second.lines)) == (12, 3, 2, 5)
    assert figures.ledger_page(world.a_public, page=99, page_size=5).page == 3
    assert figures.ledger_page(world.b_public).total == 0  # only the dossier's own lines
    assert figures.journals(world.a_public) == ["BANK", "SALES"]


# --------------------------------------------------------------------------------------
# Through the console
# --------------------------------------------------------------------------------------

def test_the_figures_tab_shows_the_trial_balance_and_chart(client, world):
    log_in(client, "staff")
    html = client.get(f"/admin/dossier/?id={world.a_public}&year={world.a_year}&view=closing").get_data(as_text=True)
    assert 'id="tab-figures" role="tabpanel"' in html and 'class="tab-pane active" id="tab-figures"' in html
    assert 'data-view="closing"' in html
    row = re.search(r'<tr data-account="1000">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r">([-\d,.]+)</a>", row) == ["1,700.00", "1,600.00", "1,600.00", "1,650.00"]
    assert f"account={world.books['accounts']['1000']}" in row and f"period={world.books['periods']['Q1']}" in row
    totals = re.search(r'<tr id="trial-balance-totals"[^>]*data-balanced="yes">(.*?)</tr>', html, re.S).group(1)
    assert len(re.findall(r'data-period="[^"]+">0.00</td>', totals)) == 4
    assert "Result of earlier years" in html and 'id="figures-chart"' in html
    assert 'class="fs-equity" data-period="2024-12-31" data-value="1820.00"' in html
    # movement view by default, with a year column; the older year can be chosen
    plain = client.get(f"/admin/dossier/?id={world.a_public}").get_data(as_text=True)
    assert 'data-view="movement"' in plain and 'class="tab-pane active" id="tab-company"' in plain
    older = client.get(f"/admin/dossier/?id={world.a_public}&year={world.books['year_2023']}").get_data(as_text=True)
    assert re.search(r'<tr data-account="1000">.*?>1,300.00</a>', older, re.S)


def test_a_difference_is_highlighted(client, world):
    db.session.add(PeriodBalance(dossier_id=world.a_public, account_id=world.books["accounts"]["1400"],
                                 period_id=world.books["periods"]["Q2"], amount=D("12.34")))
    db.session.commit()
    html = log_in(client, "admin").get(f"/admin/dossier/?id={world.a_public}&view=movement").get_data(as_text=True)
    assert 'data-balanced="no"' in html and 'id="trial-balance-difference"' in html
    assert re.search(r'fs-difference" data-period="2024-06-30">12.34</td>', html)


def test_the_ledger_drill_down_page(client, world):
    books = world.books
    add_lines(world.a_public, books["accounts"]["1000"], books["periods"]["Q1"], 55)
    add_lines(world.a_public, books["accounts"]["7000"], books["periods"]["Q1"], 2, journal="SALES", prefix="invoice")
    log_in(client, "external")  # granted the public file
    url = f"/admin/dossier/ledger?id={world.a_public}&account={books['accounts']['1000']}&period={books['periods']['Q1']}"
    html = client.get(url).get_data(as_text=True)
    assert "55 lines" in html and html.count("<tr data-line=") == figures.LEDGER_PAGE_SIZE
    assert "Page 1 of 2" in html and 'id="ledger-total">550.00' in html
    last = client.get(url + "&page=2").get_data(as_text=True)
    assert last.count("<tr data-line=") == 5
    sales = client.get(f"/admin/dossier/ledger?id={world.a_public}&journal=SALES&q=invoice").get_data(as_text=True)
    assert sales.count("<tr data-line=") == 2 and "7000 Sales" in sales and "Page 1 of" not in sales


@pytest.mark.parametrize("role, dossier, status", [
    ("admin", "b_public", 404),  # another firm's file
    ("external", "a_private", 404),  # not granted
    ("staff", "a_private", 404),
    ("pulse", "a_public", 403),  # the portal, not the console
    ("external", "a_public", 200),
    ("support", "a_public", 200),
])
def test_drill_down_scoping(client, world, role, dossier, status):
    log_in(client, role)
    assert client.get(f"/admin/dossier/ledger?id={world.ids[dossier]}").status_code == status


def test_ids_of_another_dossier_are_refused(client, world):
    other = build_books(world.b_public, world.b_year)
    log_in(client, "admin")
    base = f"/admin/dossier/ledger?id={world.a_public}"
    assert client.get(f"{base}&account={other['accounts']['1000']}").status_code == 404
    assert client.get(f"{base}&period={other['periods']['Q1']}").status_code == 404
    assert client.get(f"{base}&account=abc").status_code == 404
    assert client.get(f"/admin/dossier/?id={world.a_public}&year={world.b_year}").status_code == 404


# --------------------------------------------------------------------------------------
# The year the tab opens on, and the previous year beside it (issue #18, item 7)
# --------------------------------------------------------------------------------------

def test_the_tab_opens_on_the_latest_year_with_figures_not_a_newer_empty_one(client, world):
    empty = FiscalYear(dossier_id=world.a_public, start=date(2025, 1, 1), end=date(2025, 12, 31))
    db.session.add(empty)
    db.session.flush()
    db.session.add(Period(dossier_id=world.a_public, fiscal_year_id=empty.id, start=date(2025, 1, 1),
                          end=date(2025, 3, 31)))  # a period, but no balances yet
    db.session.commit()
    assert figures.year_of(world.a_public).id == world.a_year
    log_in(client, "staff")
    html = client.get(f"/admin/dossier/?id={world.a_public}&tab=figures").get_data(as_text=True)
    assert re.search(rf'<option value="{world.a_year}" selected>', html)
    assert 'data-period="2024-12-31"' in html and 'id="no-balances"' not in html
    # the empty year can still be chosen, and says it has no figures (other years do)
    chosen = client.get(f"/admin/dossier/?id={world.a_public}&year={empty.id}").get_data(as_text=True)
    assert 'id="no-balances"' in chosen and 'id="no-figures-any-year"' not in chosen


def test_the_previous_year_shows_beside_the_chosen_one(client, world):
    earlier = figures.comparatives(world.a_public, year_2024(world), "movement")
    assert earlier.year.id == world.books["year_2023"]
    assert earlier.kinds["income"] == D("-500.00") and earlier.total == 0
    log_in(client, "staff")
    html = client.get(f"/admin/dossier/?id={world.a_public}&tab=figures").get_data(as_text=True)
    assert 'id="comparative-year"' in html and "Previous year" in html
    bank = re.search(r'<tr data-account="1000">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'fs-comparative">1,300.00</td>', bank)
    payables = re.search(r'<tr data-account="1600">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'fs-comparative">0.00</td>', payables)  # not in 2023's books
    closing = client.get(f"/admin/dossier/?id={world.a_public}&year={world.a_year}&view=closing").get_data(as_text=True)
    capital = re.search(r'<tr data-account="0100">(.*?)</tr>', closing, re.S).group(1)
    assert re.search(r'fs-comparative">-1,000.00</td>', capital)
    # the oldest year has nothing before it: no comparative column
    oldest = client.get(f"/admin/dossier/?id={world.a_public}&year={world.books['year_2023']}").get_data(as_text=True)
    assert 'id="comparative-year"' not in oldest


def test_a_file_without_figures_in_any_year_says_so(client, world):
    other = db.session.get(Dossier, world.a_public)
    bare = Dossier(firm_id=other.firm_id, name="Bare file", frequency="month")
    db.session.add(bare)
    db.session.flush()
    db.session.add(FiscalYear(dossier_id=bare.id, start=date(2024, 1, 1), end=date(2024, 12, 31)))
    db.session.commit()
    log_in(client, "admin")
    html = client.get(f"/admin/dossier/?id={bare.id}&tab=figures").get_data(as_text=True)
    assert 'id="no-figures-any-year"' in html and "No fiscal year of this file has figures yet." in html
