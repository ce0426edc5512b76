"""The change banner compares normalised values (app/company_profile.py): equal values written differently
give no banner, a name in the register's capitals is shown (never a silent rename) and a register number
different from the file's own is a warning that "use all" leaves out."""
from datetime import date

import pytest

from app.company_profile import adopt, comparable, display, month_day, pending_changes
from app.models import Role
from tests.conftest import logged_in
from tests.test_company_profile import world  # noqa: F401 - the fixture: a Companies House link and every role


@pytest.mark.parametrize("written", ["12-31", "31-12", "31/12", "--12-31", "31 December", "31 december",
                                     "31 décembre", "31 DEC", " 31  December "])
def test_a_year_end_written_any_usual_way_is_the_same_day(written):
    assert month_day(written) == "12-31"
    assert comparable("fiscal_year_end", written) == comparable("fiscal_year_end", "12-31")


def test_what_cannot_be_read_as_a_day_stays_text():
    assert month_day("end of year") is None and month_day("31-13") is None and month_day("02-30") is None
    assert comparable("fiscal_year_end", "End of  year") == "end of year"


def test_case_whitespace_numbers_amounts_and_order_do_not_count():
    assert comparable("legal_form", " Private  limited company") == comparable("legal_form", "PRIVATE LIMITED COMPANY")
    assert comparable("vat_number", "be 0456.789.012") == comparable("vat_number", "BE0456789012")
    assert comparable("registration_number", "0456 789 012") == comparable("registration_number", "0456.789.012")
    assert comparable("capital", {"amount": "18550", "currency": "eur"}) == comparable(
        "capital", {"amount": "18550.00", "currency": "EUR"})
    one = [{"name": "PEETERS, Sofie", "role": "Director", "start": "2015-03-01", "end": None},
           {"name": "Maes, Jan", "role": "Secretary", "start": "2016-01-01", "end": None}]
    other = [{"name": "Maes,  Jan", "role": "secretary", "start": "2016-01-01"},
             {"name": "Peeters, Sofie", "role": "Director", "start": "2015-03-01", "end": None}]
    assert comparable("officers", one) == comparable("officers", other)
    assert comparable("officers", one) != comparable("officers", other[:1])


def test_no_banner_for_a_year_end_the_file_already_has(world, db):  # noqa: F811
    world.dossier.first_fiscal_year_end = date(2024, 3, 31)
    db.session.commit()
    world.sync()
    assert "fiscal_year_end" not in [c.field for c in pending_changes(world.dossier)]


def test_a_name_in_capitals_is_shown_with_a_warning_and_use_all_does_not_rename(world, db):  # noqa: F811
    world.dossier.name = "Northwind Trading Ltd"
    db.session.commit()
    world.sync()
    [name] = [c for c in pending_changes(world.dossier) if c.field == "name"]
    assert name.source_value == "NORTHWIND TRADING LTD" and "Only the capitals" in name.warning
    taken = adopt(world.actor(Role.ADMIN), world.dossier)
    db.session.commit()
    assert "name" not in taken and world.dossier.name == "Northwind Trading Ltd"
    assert [c.field for c in pending_changes(world.dossier)] == ["name"]  # still shown
    assert adopt(world.actor(Role.ADMIN), world.dossier, ["name"]) == ["name"]  # its own button renames
    assert world.dossier.name == "NORTHWIND TRADING LTD"


def test_another_register_number_is_a_warning_before_adopting(world, db):  # noqa: F811
    world.dossier.company_number = "01234567"
    db.session.commit()
    world.sync()
    [number] = [c for c in pending_changes(world.dossier) if c.field == "registration_number"]
    assert "09876543" in number.warning and "01234567" in number.warning
    adopt(world.actor(Role.ADMIN), world.dossier)
    db.session.commit()
    assert world.dossier.company_number == "01234567"  # "use all" left it out
    assert [c.field for c in pending_changes(world.dossier)] == ["registration_number"]


def test_the_same_number_written_differently_gives_no_banner(world, db):  # noqa: F811
    world.dossier.company_number = "0987 6543"
    db.session.commit()
    world.sync()
    assert "registration_number" not in [c.field for c in pending_changes(world.dossier)]


def test_capital_agm_and_holdings_read_for_an_accountant():
    assert display("capital", {"amount": "18550.00", "currency": "EUR"}) == "18550.00 EUR"
    assert display("shareholders", [{"name": "Sofie Peeters", "shares": 60, "percentage": "60"},
                                    {"name": "Mr Thomas Price", "share": "50-75%"},
                                    {"name": "Søren Holm", "percentage": "33.33"}]) == (
        "Sofie Peeters 60 shares (60%); Mr Thomas Price 50-75%; Søren Holm 33.33%")


def test_the_banner_shows_the_warning_next_to_the_value(world, db, client):  # noqa: F811
    world.dossier.name = "Northwind Trading Ltd"
    db.session.commit()
    world.sync()
    logged_in(client, world.users[Role.STAFF])
    html = client.get(f"/admin/dossier/?id={world.dossier.id}").get_data(as_text=True)
    assert '<div class="small text-danger fs-profile-warning">Only the capitals or spaces differ.' in html


def test_the_company_tab_shows_shares_and_percentages(world, db, client):  # noqa: F811
    holders = ({"name": "Sofie Peeters", "share": None, "shares": 60, "percentage": "60"},
               {"name": "Mr Thomas Price", "share": "50-75%", "natures_of_control": [], "start": "2015-04-01"})
    world.sync(shareholders=holders)
    logged_in(client, world.users[Role.STAFF])
    html = client.get(f"/admin/dossier/?id={world.dossier.id}").get_data(as_text=True)
    assert "<tr><td>Sofie Peeters</td><td>60 shares (60%)</td>" in html
    assert "<tr><td>Mr Thomas Price</td><td>50-75%</td><td>2015-04-01</td>" in html
