"""The firm dashboard (``/admin/``) and the Files list: counts and links per role, firm
isolation, staleness, filters, sync-now arrows, and SQL statement counts that do not grow
with the number of files."""
import re
from contextlib import contextmanager
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from admin_views.dossiers import ago
from app.extensions import db
from app.models import Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from app.time_zones import local_time
from tests.console_world import build_world, fresh_request_globals, log_in  # noqa: F401 - autouse fixture


@pytest.fixture
def world(app):
    return build_world()


def fail(dossier_id, message, status=RunStatus.FAILED):
    """Give the file a finished run with ``status`` and ``message`` (and that status)."""
    dossier = db.session.get(Dossier, dossier_id)
    link = dossier.active_link()
    if link is None:
        connection = db.session.scalars(db.select(Connection).where(Connection.firm_id == dossier.firm_id)).first()
        link = DossierLink(firm_id=dossier.firm_id, dossier_id=dossier.id, connection_id=connection.id, reference="X")
        db.session.add(link)
        db.session.flush()
    db.session.add(SyncRun(firm_id=dossier.firm_id, dossier_id=dossier.id, link_id=link.id, status=status,
                           message=message, finished_at=utcnow()))
    dossier.sync_status = status
    db.session.commit()


def tile(page, key):
    match = re.search(rf'href="([^"]+)"[^>]*id="tile-{key}" data-count="(\d+)"', page)
    assert match, f"no {key} tile"
    return match.group(1).replace("&amp;", "&"), int(match.group(2))


def listed_files(client, url):
    page = client.get(url).get_data(as_text=True)
    return set(re.findall(r'class="fs-dossier-link">([^<]+)<', page))


@contextmanager
def counted_statements():
    seen = []

    def count(*args):
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# -- dashboard ----------------------------------------------------------------------------


def test_admin_sees_the_firms_failures_and_never_another_firms(client, world):
    fail(world.a_public, "Alpha: the package refused the company")
    fail(world.a_private, "Alpha private: token expired", RunStatus.NEEDS_RECONNECT)
    fail(world.b_public, "Beta: secret failure")
    page = log_in(client, "admin").get("/admin/").get_data(as_text=True)
    assert "Alpha: the package refused the company" in page and "Alpha private: token expired" in page
    assert "Beta" not in page
    failed_url, failed = tile(page, "failed")
    reconnect_url, reconnect = tile(page, "needs_reconnect")
    assert (failed, reconnect) == (1, 1)
    assert listed_files(client, failed_url) == {"Alpha Public Ltd"}
    assert listed_files(client, reconnect_url) == {"Alpha Private Ltd"}


@pytest.mark.parametrize("role, failing", [("staff", {"Alpha Public Ltd", "Alpha Grouped Ltd"}), ("external", {"Alpha Public Ltd", "Alpha Grouped Ltd"})])
def test_other_roles_count_only_the_files_they_see(client, world, role, failing):
    for name in ("a_public", "a_private", "a_grouped"):
        fail(world.ids[name], f"{name} broke")
    page = log_in(client, role).get("/admin/").get_data(as_text=True)
    url, count = tile(page, "failed")
    assert count == len(failing)
    assert listed_files(client, url) == failing
    assert ("a_private broke" in page) is False


def test_pulse_users_have_no_dashboard(client, world):
    assert log_in(client, "pulse").get("/admin/").status_code == 403


def test_stale_means_an_active_link_and_no_successful_sync_for_36_hours(client, world):
    now = utcnow()
    public, private, grouped = (db.session.get(Dossier, world.ids[k]) for k in ("a_public", "a_private", "a_grouped"))
    public.last_synced_at = now - timedelta(hours=40)  # linked, old: stale
    grouped.last_synced_at = now - timedelta(hours=40)  # no link (a manual file): not stale
    private.last_synced_at = now - timedelta(hours=10)
    db.session.add(DossierLink(firm_id=private.firm_id, dossier_id=private.id, connection_id=world.a_spare_connection,
                               reference="C2"))
    db.session.commit()
    page = log_in(client, "admin").get("/admin/").get_data(as_text=True)
    url, count = tile(page, "stale")
    assert count == 1 and listed_files(client, url) == {"Alpha Public Ltd"}
    private.last_synced_at = now - timedelta(hours=37)
    db.session.commit()
    assert tile(client.get("/admin/").get_data(as_text=True), "stale")[1] == 2


def test_running_and_queued_tiles(client, world):
    for key, status in (("a_public", RunStatus.RUNNING), ("a_private", RunStatus.QUEUED), ("a_grouped", RunStatus.DEFERRED)):
        db.session.get(Dossier, world.ids[key]).sync_status = status
    db.session.commit()
    page = log_in(client, "admin").get("/admin/").get_data(as_text=True)
    assert tile(page, "running")[1] == 1
    url, queued = tile(page, "queued")
    assert queued == 2 and listed_files(client, url) == {"Alpha Private Ltd", "Alpha Grouped Ltd"}


def test_connections_needing_reconnect_show_a_button_for_admins_only(client, world):
    for key in ("a_connection", "b_connection"):
        db.session.get(Connection, world.ids[key]).status = ConnectionStatus.NEEDS_RECONNECT
    db.session.commit()
    page = log_in(client, "admin").get("/admin/").get_data(as_text=True)
    assert "Alpha Demo Books" in page and f'action="/oauth/reconnect/{world.a_connection}"' in page
    assert "Beta Demo Books" not in page
    client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)})
    staff_page = log_in(client, "staff").get("/admin/").get_data(as_text=True)
    assert "/oauth/reconnect/" not in staff_page


def test_the_last_nightly_run(client, world):
    page = log_in(client, "admin").get("/admin/").get_data(as_text=True)
    assert 'id="no-nightly"' in page
    link = db.session.get(DossierLink, world.a_link)
    b_link = db.session.get(DossierLink, world.b_link)
    started = utcnow() - timedelta(hours=3)
    for night, status, the_link in (("2025-03-01", RunStatus.FAILED, link), ("2025-03-02", RunStatus.SUCCEEDED, link),
                                    ("2025-03-02", RunStatus.FAILED, b_link), ("2025-03-03", RunStatus.FAILED, b_link)):
        db.session.add(SyncRun(firm_id=the_link.firm_id, dossier_id=the_link.dossier_id, link_id=the_link.id,
                               trigger=Trigger.NIGHTLY, nightly_key=f"{the_link.id}-{status}:{night}", status=status,
                               queued_at=started + timedelta(days=int(night[-1])),
                               finished_at=started + timedelta(days=int(night[-1]), minutes=5)))
    db.session.commit()
    page = client.get("/admin/").get_data(as_text=True)
    assert "2025-03-02" in page and "2025-03-03" not in page  # firm B's later night is not firm A's
    assert 'data-nightly="succeeded">1<' in page and 'data-nightly="failed">0<' in page


def test_the_dashboard_costs_the_same_statements_for_3_or_30_files(client, world):
    log_in(client, "admin")
    db.session.expire_all()
    with counted_statements() as few:
        client.get("/admin/")
    firm_id = world.alpha
    for number in range(27):
        dossier = Dossier(firm_id=firm_id, name=f"Extra {number:02d}", sync_status=RunStatus.FAILED)
        db.session.add(dossier)
        db.session.flush()
        fail(dossier.id, f"extra {number} failed")
    with counted_statements() as many:
        page = client.get("/admin/").get_data(as_text=True)
    assert "extra 26 failed" in page
    assert len(many) == len(few)


# -- the Files list -----------------------------------------------------------------------


def add_files(world, count):
    connection = db.session.get(Connection, world.a_connection)
    for number in range(count):
        dossier = Dossier(firm_id=world.alpha, name=f"Listed {number:03d}", number=f"L{number:03d}")
        db.session.add(dossier)
        db.session.flush()
        db.session.add(DossierLink(firm_id=world.alpha, dossier_id=dossier.id, connection_id=connection.id,
                                   reference=f"R{number}", reference_name=f"Company {number}"))
    db.session.commit()


def test_the_list_costs_the_same_statements_whatever_the_page_size(client, world):
    add_files(world, 47)
    log_in(client, "admin")
    db.session.expire_all()
    with counted_statements() as small:
        twenty = client.get("/admin/dossiers/?page_size=20").get_data(as_text=True)
    db.session.expire_all()
    with counted_statements() as large:
        fifty = client.get("/admin/dossiers/?page_size=50").get_data(as_text=True)
    assert twenty.count('class="fs-dossier-link"') == 20 and fifty.count('class="fs-dossier-link"') == 50
    assert "Company 46" in fifty and "Demo Books" in fifty  # reference and package columns
    assert len(large) == len(small)


def test_list_filters_by_package_connection_and_status(client, world):
    spare = world.a_spare_connection
    grouped = db.session.get(Dossier, world.a_grouped)
    db.session.add(DossierLink(firm_id=world.alpha, dossier_id=grouped.id, connection_id=spare, reference="S1"))
    grouped.sync_status = RunStatus.SUCCEEDED
    db.session.commit()
    log_in(client, "admin")
    assert listed_files(client, f"/admin/dossiers/?flt0_connection_is={spare}") == {"Alpha Grouped Ltd"}
    assert listed_files(client, f"/admin/dossiers/?flt0_connection_is={world.a_connection}") == {"Alpha Public Ltd"}
    assert listed_files(client, f"/admin/dossiers/?flt0_connection_is={world.b_connection}") == set()
    assert listed_files(client, "/admin/dossiers/?flt0_package_is=demo") == {"Alpha Public Ltd", "Alpha Grouped Ltd"}
    assert listed_files(client, "/admin/dossiers/?flt0_package_is=xero") == set()
    assert listed_files(client, "/admin/dossiers/?flt0_status_is=succeeded") == {"Alpha Grouped Ltd"}
    assert listed_files(client, "/admin/dossiers/?flt0_status_is=never") == {"Alpha Public Ltd", "Alpha Private Ltd"}
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    assert "Alpha spare connection" in page and "Beta spare connection" not in page  # filter choices are the firm's


def test_sync_arrows_and_last_sync_for_roles_that_may_sync(client, world):
    public = db.session.get(Dossier, world.a_public)
    public.last_synced_at = utcnow() - timedelta(hours=3, minutes=5)
    db.session.commit()
    page = log_in(client, "admin").get("/admin/dossiers/").get_data(as_text=True)
    assert f'data-dossier="{world.a_public}"' in page and 'action="/admin/dossier/sync"' in page
    assert ">3 h ago<" in page and f'title="{local_time(public.last_synced_at, zone=ZoneInfo("Europe/Brussels"))}"' in page
    client.post("/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)})
    external = log_in(client, "external").get("/admin/dossiers/").get_data(as_text=True)
    assert "Alpha Public Ltd" in external and 'action="/admin/dossier/sync"' not in external


def test_ago_words():
    now = utcnow()
    assert ago(None) == "never"
    assert ago(now - timedelta(seconds=20), now) == "just now"
    assert ago(now - timedelta(minutes=12), now) == "12 min ago"
    assert ago(now - timedelta(hours=3), now) == "3 h ago"
    assert ago(now - timedelta(days=5), now) == "5 days ago"


# -- support sees all firms: Firm column, Firm filter, firm picker (issue #18 item 6) ---------------------


def pick_firm(client, firm_id, next_url="/admin/"):
    from tests.console_world import csrf_token

    return client.post("/admin/pick-firm", data={"csrf_token": csrf_token(client), "firm_id": firm_id,
                                                  "next": next_url})


def test_support_gets_a_firm_column_and_filter_on_the_files_list(client, world):
    log_in(client, "support")
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    assert re.search(r"<th[^>]*>\s*(<a[^>]*>)?\s*Firm", page)
    assert "Alpha Accountants" in page and "Beta Boekhouding" in page and 'id="firm-picker"' in page
    beta_only = listed_files(client, f"/admin/dossiers/?flt0_firm_is={world.beta}")
    assert beta_only == {"Beta Public Ltd", "Beta Private Ltd", "Beta Grouped Ltd"}


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_other_roles_get_no_firm_column_filter_or_picker(client, world, role):
    log_in(client, role)
    page = client.get("/admin/dossiers/").get_data(as_text=True)
    assert "Beta Boekhouding" not in page and 'id="firm-picker"' not in page
    assert not re.search(r"<th[^>]*>\s*(<a[^>]*>)?\s*Firm\b", page)
    # the filter's argument does not widen what they see
    assert listed_files(client, f"/admin/dossiers/?flt0_firm_is={world.beta}") == set()
    assert pick_firm(client, world.beta).status_code == 403
    assert "Beta Public Ltd" not in client.get("/admin/").get_data(as_text=True)


def test_the_firm_support_picks_scopes_the_dashboard_and_the_list_and_is_kept(client, world):
    fail(world.a_public, "Alpha is broken")
    fail(world.b_public, "Beta is broken")
    log_in(client, "support")
    everything = client.get("/admin/").get_data(as_text=True)
    assert tile(everything, "failed")[1] == 2 and "Alpha is broken" in everything and "Beta is broken" in everything
    assert re.search(r'class="fs-firm">Beta Boekhouding<', everything)  # the failures' Firm column
    response = pick_firm(client, world.beta, "/admin/dossiers/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/dossiers/")
    page = client.get("/admin/").get_data(as_text=True)
    assert tile(page, "failed")[1] == 1 and "Beta is broken" in page and "Alpha is broken" not in page
    assert re.search(rf'<option value="{world.beta}" selected>Beta Boekhouding', page)
    url, _ = tile(page, "failed")
    assert listed_files(client, url) == {"Beta Public Ltd"}
    assert "Alpha Public Ltd" not in listed_files(client, "/admin/dossiers/")
    # "All firms" again
    pick_firm(client, "")
    assert tile(client.get("/admin/").get_data(as_text=True), "failed")[1] == 2


def test_picking_an_unknown_firm_or_a_foreign_next_is_refused(client, world):
    log_in(client, "support")
    assert pick_firm(client, "999999").status_code == 404
    assert pick_firm(client, "abc").status_code == 404
    response = pick_firm(client, world.alpha, "https://evil.example/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
