"""Times in the viewer's firm's time zone (docs/console.md, "Times and time zones").

Stored times stay naive UTC; the console and the portal show them in the firm's zone with its
abbreviation; support sees UTC until it picks a firm; the Firm screen offers the IANA zones
and refuses any other value.
"""
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Dossier, Firm, SyncRun
from app.time_zones import local_time, zone_names
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 (fixture)

BRUSSELS, NEW_YORK = ZoneInfo("Europe/Brussels"), ZoneInfo("America/New_York")


#: (stored naive UTC time, zone, what the console shows)
SHOWN = [
    (datetime(2026, 12, 6, 2, 14), BRUSSELS, "2026-12-06 03:14 CET"),  # winter: UTC+1
    (datetime(2026, 7, 6, 2, 14), BRUSSELS, "2026-07-06 04:14 CEST"),  # summer: UTC+2
    (datetime(2026, 12, 6, 2, 14), NEW_YORK, "2026-12-05 21:14 EST"),  # the day before, UTC-5
    (datetime(2026, 7, 6, 2, 14), NEW_YORK, "2026-07-05 22:14 EDT"),
    # the night Brussels moves its clocks forward (29 March 2026, 01:00 UTC): 02:00-03:00 never happens
    (datetime(2026, 3, 29, 0, 59), BRUSSELS, "2026-03-29 01:59 CET"),
    (datetime(2026, 3, 29, 1, 0), BRUSSELS, "2026-03-29 03:00 CEST"),
    # and back (25 October 2026, 01:00 UTC): 02:30 happens twice, once in each abbreviation
    (datetime(2026, 10, 25, 0, 30), BRUSSELS, "2026-10-25 02:30 CEST"),
    (datetime(2026, 10, 25, 1, 30), BRUSSELS, "2026-10-25 02:30 CET"),
    (datetime(2026, 3, 8, 6, 59), NEW_YORK, "2026-03-08 01:59 EST"),
    (datetime(2026, 3, 8, 7, 0), NEW_YORK, "2026-03-08 03:00 EDT"),
]


def test_a_stored_utc_time_is_shown_in_the_zone_with_its_abbreviation_and_the_choices_are_real_zones():
    """One test for the whole table (each test of this module builds an app: see the autouse fixture)."""
    assert [local_time(stored, zone=zone) for stored, zone, _shown in SHOWN] == [shown for _s, _z, shown in SHOWN]
    names = zone_names()
    assert {"Europe/Brussels", "America/New_York", "UTC"} <= set(names)
    assert "localtime" not in names and not any(name.startswith(("posix/", "right/")) for name in names)


@pytest.fixture
def world(app):
    return build_world()


def started_cell(client, run_id):
    """The text of run ``run_id``'s page (Sync runs, details: queued, started, finished)."""
    page = client.get(f"/admin/runs/details/?id={run_id}").get_data(as_text=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_console_shows_times_in_the_firms_zone_and_follows_its_change(client, world):
    run = db.session.get(SyncRun, world.a_run)
    run.started_at, run.finished_at = datetime(2026, 1, 15, 1, 30), datetime(2026, 7, 15, 1, 30)
    db.session.commit()
    log_in(client, "admin")
    row = started_cell(client, world.a_run)
    assert "2026-01-15 02:30 CET" in row and "2026-07-15 03:30 CEST" in row and " UTC" not in row
    audit = client.get("/admin/audit/").get_data(as_text=True)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", audit)

    db.session.get(Firm, world.alpha).timezone = "America/New_York"
    db.session.commit()
    row = started_cell(client, world.a_run)
    assert "2026-01-14 20:30 EST" in row and "2026-07-14 21:30 EDT" in row
    assert db.session.get(SyncRun, world.a_run).started_at == datetime(2026, 1, 15, 1, 30)  # stored as it was


def test_the_file_page_and_the_portal_show_the_firms_zone(app, client, world):
    db.session.get(Firm, world.alpha).timezone = "America/New_York"
    db.session.get(Dossier, world.a_public).last_synced_at = datetime(2025, 1, 1, 2, 1)
    db.session.commit()
    page = log_in(client, "admin").get(f"/admin/dossier/?id={world.a_public}").get_data(as_text=True)
    assert "2024-12-31 21:01 EST" in page  # the last sync: 2025-01-01 02:01 UTC
    portal = log_in(app.test_client(), "pulse").get("/portal/").get_data(as_text=True)
    assert "2024-12-31 21:01 EST" in portal and "UTC" not in portal


def test_support_sees_utc_until_it_picks_a_firm(client, world):
    db.session.get(Firm, world.beta).timezone = "America/New_York"
    db.session.commit()
    log_in(client, "support")
    assert "2025-01-01 02:00 UTC" in started_cell(client, world.a_run)
    token = csrf_token(client)
    client.post("/admin/pick-firm", data={"csrf_token": token, "firm_id": str(world.alpha)})
    assert "2025-01-01 03:00 CET" in started_cell(client, world.a_run)
    client.post("/admin/pick-firm", data={"csrf_token": token, "firm_id": str(world.beta)})
    assert "2024-12-31 21:00 EST" in started_cell(client, world.b_run)
    client.post("/admin/pick-firm", data={"csrf_token": token, "firm_id": ""})
    assert "2025-01-01 02:00 UTC" in started_cell(client, world.a_run)


def firm_form(client, firm_id, **changes):
    page = client.get(f"/admin/firms/edit/?id={firm_id}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(client),
            "name": "Alpha Accountants", "country": "BE", "timezone": "Europe/Brussels", "nightly_time": "02:00",
            "default_locale": "en"}
    data.update(changes)
    return page, client.post(f"/admin/firms/edit/?id={firm_id}", data=data)


def test_an_administrator_chooses_the_zone_from_the_list_and_nothing_else(client, world):
    log_in(client, "admin")
    page, response = firm_form(client, world.alpha, timezone="America/New_York")
    assert re.search(r'<select[^>]*name="timezone"', page) and '<option selected value="Europe/Brussels">' in page
    assert response.status_code == 302
    assert db.session.get(Firm, world.alpha).timezone == "America/New_York"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "Firm")
                               .order_by(AuditEvent.id.desc())).first()
    assert event.changes["timezone"] == ["Europe/Brussels", "America/New_York"]

    for bad in ("Mars/Olympus_Mons", "posix/Europe/Brussels", "", "localtime"):
        _page, response = firm_form(client, world.alpha, timezone=bad)
        assert response.status_code == 200  # the form again, with its error
        db.session.expire_all()
        assert db.session.get(Firm, world.alpha).timezone == "America/New_York"


@pytest.mark.parametrize("role", ["staff", "external"])
def test_only_administrators_change_the_zone(client, world, role):
    log_in(client, role)
    _page, response = firm_form(client, world.alpha, timezone="Asia/Tokyo")
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Firm, world.alpha).timezone == "Europe/Brussels"
