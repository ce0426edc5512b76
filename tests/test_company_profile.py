"""Administration sync: the change banner's diff and adopting values (app/company_profile.py)."""
import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.exceptions import Forbidden

from app.access import actor_for
from app.company_profile import FIELDS, adopt, display, first_year_end, pending_changes
from app.models import AuditEvent, CompanyProfile, Connection, Dossier, DossierLink, Role
from connectors.registry import ROOT as PACKAGES
from connectors.base import CompanyProfileRecord
from connectors.companies_house import profile_record
from jobs.profiles import write_profile
from tests.conftest import logged_in, make_user

OFFICERS = [{"name": "HUGHES, Megan", "role": "Director", "start": "2015-03-01", "end": None},
            {"name": "PATEL, Owen", "role": "Secretary", "start": "2015-03-01", "end": "2019-01-31"}]
SHAREHOLDERS = [{"name": "Mr Thomas Price", "share": "50-75%", "natures_of_control": [], "start": "2015-04-01",
                 "end": None}]


def record(**changes):
    values = dict(name="NORTHWIND TRADING LTD", registration_number="09876543", legal_form="Private limited company",
                  status="Active", address={"line_1": "1 Sandbox Street", "city": "London", "postal_code": "EC1A 1AA"},
                  incorporation_date=date(2015, 2, 10), fiscal_year_end="03-31", officers=tuple(OFFICERS),
                  shareholders=tuple(SHAREHOLDERS))
    values.update(changes)
    return CompanyProfileRecord(**values)


@pytest.fixture
def world(db, firm):
    """A dossier with a Companies House administration link, and one user per role."""
    connection = Connection(firm_id=firm.id, package="companies_house", kind="administration", name="Companies House",
                            config={"base_url": "http://ch.invalid"}, credentials={"api_key": "ch-secret-key"})
    dossier = Dossier(firm_id=firm.id, name="Northwind Trading", country="GB", currency="GBP")
    db.session.add_all([connection, dossier])
    db.session.flush()
    link = DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id, kind="administration",
                       reference="09876543")
    db.session.add(link)
    db.session.commit()
    users = {role: make_user(f"{role}@alpha.test", firm, role) for role in (Role.ADMIN, Role.STAFF, Role.EXTERNAL,
                                                                           Role.PULSE)}
    users["support"] = make_user("support@firmsync.test", None, support=True)
    for role in (Role.EXTERNAL, Role.PULSE):
        dossier.users.append(users[role])
    db.session.commit()

    def sync(**changes):
        written = write_profile(db.session, link.id, record(**changes))
        db.session.commit()
        return written

    def actor(role):
        return actor_for(users[role], firm.id)

    return type("World", (), {"dossier": dossier, "link": link, "sync": staticmethod(sync),
                              "actor": staticmethod(actor), "users": users})


def fields_of(changes):
    return [change.field for change in changes]


def test_no_profile_no_banner(world):
    assert pending_changes(world.dossier) == []


def test_first_sync_offers_every_field_the_source_knows(world):
    world.sync()
    changes = pending_changes(world.dossier)
    # VAT, AGM date and capital are not in Companies House (None): never offered, never wiped
    assert fields_of(changes) == [f for f, _ in FIELDS if f not in ("vat_number", "agm_date", "capital")]
    name = changes[0]
    assert (name.label, name.adopted_value, name.source_value) == ("Name", "Northwind Trading", "NORTHWIND TRADING LTD")


def test_adopt_all_renames_the_dossier_sets_the_fiscal_year_end_and_clears_the_banner(world, db):
    world.sync()
    world.dossier.vat_number = "GB123456789"
    taken = adopt(world.actor(Role.ADMIN), world.dossier)
    db.session.commit()
    db.session.expire_all()
    dossier = db.session.get(Dossier, world.dossier.id)
    assert len(taken) == 9
    assert dossier.name == "NORTHWIND TRADING LTD"
    assert dossier.company_number == "09876543"
    assert dossier.vat_number == "GB123456789"  # kept: the source has no VAT number
    # first year end: the first 31 March at least six months after incorporation (2015-02-10)
    assert dossier.first_fiscal_year_end == date(2016, 3, 31)
    assert dossier.adopted_profile["officers"]["value"] == OFFICERS
    assert dossier.adopted_profile["name"]["version"] == 1
    assert pending_changes(dossier) == []
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "profile.adopted"))
    assert event.dossier_id == dossier.id and event.user_id == world.actor(Role.ADMIN).user_id
    assert event.changes["name"] == ["Northwind Trading", "NORTHWIND TRADING LTD"]
    assert "Companies House" in event.summary


def test_unchanged_resync_stores_no_version_and_shows_no_banner(world, db):
    world.sync()
    adopt(world.actor(Role.ADMIN), world.dossier)
    db.session.commit()
    assert world.sync() is False
    assert db.session.query(CompanyProfile).count() == 1
    assert pending_changes(world.dossier) == []


def test_source_change_brings_the_banner_back_with_the_changed_fields_only(world, db):
    world.sync()
    adopt(world.actor(Role.STAFF), world.dossier)
    db.session.commit()
    officers = OFFICERS + [{"name": "CLARKE, Fiona", "role": "Director", "start": "2025-01-01", "end": None}]
    assert world.sync(name="NORTHWIND TRADING GROUP LTD", officers=tuple(officers)) is True
    changes = pending_changes(world.dossier)
    assert fields_of(changes) == ["name", "officers"]
    assert changes[0].adopted_value == "NORTHWIND TRADING LTD"
    assert changes[0].source_value == "NORTHWIND TRADING GROUP LTD"
    assert changes[1].source_value == officers


def test_user_override_brings_the_banner_back(world, db):
    world.sync()
    adopt(world.actor(Role.ADMIN), world.dossier)
    db.session.commit()
    world.dossier.name = "Northwind (our spelling)"
    world.dossier.first_fiscal_year_end = date(2016, 12, 31)
    db.session.commit()
    changes = pending_changes(world.dossier)
    assert fields_of(changes) == ["name", "fiscal_year_end"]
    assert changes[1].adopted_value == "12-31" and changes[1].source_value == "03-31"


def test_adopt_one_field_leaves_the_others_pending(world, db):
    world.sync()
    taken = adopt(world.actor(Role.EXTERNAL), world.dossier, ["name"])
    db.session.commit()
    assert taken == ["name"]
    assert world.dossier.name == "NORTHWIND TRADING LTD"
    assert world.dossier.first_fiscal_year_end is None
    remaining = fields_of(pending_changes(world.dossier))
    assert "name" not in remaining and "fiscal_year_end" in remaining and "officers" in remaining


def test_adopting_the_year_end_keeps_the_year_of_an_existing_first_year_end(world, db):
    world.dossier.first_fiscal_year_end = date(2020, 12, 31)
    world.sync()
    adopt(world.actor(Role.ADMIN), world.dossier, ["fiscal_year_end"])
    assert world.dossier.first_fiscal_year_end == date(2020, 3, 31)


@pytest.mark.parametrize("role", [Role.PULSE, "support"])
def test_pulse_and_support_may_not_adopt(world, db, role):
    world.sync()
    with pytest.raises(Forbidden):
        adopt(world.actor(role), world.dossier)
    db.session.rollback()
    assert db.session.get(Dossier, world.dossier.id).name == "Northwind Trading"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "profile.adopted")) is None


def test_staff_without_access_and_another_firm_may_not_adopt(world, db, other_firm, firm):
    world.sync()
    world.dossier.private = True
    db.session.commit()
    limited = make_user("limited@alpha.test", firm, Role.STAFF, multi_file_access=False)
    outsider = make_user("admin@beta.test", other_firm, Role.ADMIN)
    for user in (limited, outsider):
        with pytest.raises(Forbidden):
            adopt(actor_for(user), world.dossier)


def test_unknown_field_is_refused(world):
    world.sync()
    with pytest.raises(ValueError):
        adopt(world.actor(Role.ADMIN), world.dossier, ["password"])


def test_first_year_end_rules():
    assert first_year_end("03-31", incorporation_date="2015-02-10") == date(2016, 3, 31)
    assert first_year_end("12-31", incorporation_date=date(2015, 2, 10)) == date(2015, 12, 31)
    assert first_year_end("02-29", current=date(2023, 12, 31)) == date(2023, 2, 28)
    assert first_year_end("06-30", today=date(2025, 7, 1)) == date(2026, 6, 30)


def test_display_is_written_for_an_accountant():
    assert display("fiscal_year_end", "03-31") == "31 March"
    assert display("address", {"line_1": "1 Sandbox Street", "city": "London"}) == "1 Sandbox Street, London"
    assert display("officers", OFFICERS).startswith("2 officers (1 current)")
    assert display("vat_number", None) == "—"
    assert display("previous_names", [{"name": "HARBOUR OVENS LTD", "start": "2014-03-01", "end": "2019-05-20"},
                                      {"name": "BRISTOL BREAD LTD", "start": None, "end": "2014-03-01"},
                                      {"name": "QUAY BAKES LTD", "start": None, "end": None}]) == (
        "HARBOUR OVENS LTD (2014-03-01 – 2019-05-20); BRISTOL BREAD LTD (… – 2014-03-01); QUAY BAKES LTD")


# --------------------------------------------------------------------------------------
# The Company tab of the dossier page
# --------------------------------------------------------------------------------------

DISSOLVED = PACKAGES / "companies_house" / "fixtures" / "company_profile_dissolved.json"


def company_rows(client, dossier_id, locale="en"):
    """``{data-field: (label, value, note)}`` of the extra rows in the Company details table."""
    html = client.get(f"/admin/dossier/?id={dossier_id}", headers={"Accept-Language": locale}).get_data(as_text=True)
    table = re.search(r'<table class="table table-sm" id="company-profile">(.*?)</table>', html, re.S).group(1)
    return {field: (label, value, note) for field, label, value, note in re.findall(
        r'<tr data-field="(\w+)"><th class="w-25">(.*?)</th><td>(.*?)</td><td class="text-muted small">(.*?)</td></tr>',
        table)}


def test_the_company_tab_shows_when_a_company_ceased_and_its_previous_names(world, db, client):
    # a Companies House profile as the vendor documents it, through the connector and the profile store
    write_profile(db.session, world.link.id, profile_record(json.loads(DISSOLVED.read_text())))
    db.session.commit()
    logged_in(client, world.users[Role.STAFF])
    rows = company_rows(client, world.dossier.id)
    assert rows == {
        "date_of_cessation": ("Ceased on", "2023-09-12", "from Companies House, version 1"),
        "previous_names": ("Previous names", "HARBOUR OVENS LTD (2014-03-01 – 2019-05-20); "
                           "BRISTOL BREAD COMPANY LIMITED (2011-06-14 – 2014-03-01)", "from Companies House, version 1"),
    }
    assert [label for label, _, _ in company_rows(client, world.dossier.id, "nl").values()] == [
        "Opgeheven op", "Vorige namen"]
    assert [label for label, _, _ in company_rows(client, world.dossier.id, "fr").values()] == [
        "Date de cessation", "Anciennes dénominations"]


def test_the_company_tab_has_no_ceased_or_previous_names_rows_for_an_active_company(world, client):
    world.sync()
    logged_in(client, world.users[Role.STAFF])
    assert company_rows(client, world.dossier.id) == {}
