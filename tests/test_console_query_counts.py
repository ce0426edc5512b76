"""The console's SQL statements per request do not depend on the number of rows nor on the
page size (issue #7, measure 4): the Files list, the dashboard and a dossier page are
requested at two data sizes (and the list at two page sizes) and must cost exactly the same
number of statements. The data includes what used to cost a statement per row: file-owned
connections needing a reconnect (their Reconnect button), failures with messages, nightly runs.

Counting statements is not a timing assert: the counts are exact on SQLite and PostgreSQL.
"""
import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Connection, ConnectionStatus, Dossier, DossierLink, RunStatus, SyncRun, Trigger
from app.models.base import utcnow
from tests.conftest import recorded_statements
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 - autouse fixture

STATUSES = (RunStatus.FAILED, RunStatus.NEEDS_RECONNECT, RunStatus.SUCCEEDED, RunStatus.QUEUED, RunStatus.RUNNING, None)


@pytest.fixture
def world(app):
    return build_world()


def add_files(world, count, start=0):
    """``count`` files of firm A: every other one with its own connection (Xero-like, needing a
    reconnect), the others on the firm's connection; each with a nightly, a failed and a manual run."""
    firm_connection = db.session.get(Connection, world.a_connection)
    now = utcnow()
    for number in range(start, start + count):
        dossier = Dossier(firm_id=world.alpha, name=f"Bulk {number:03d}", number=f"B{number:03d}",
                          sync_status=STATUSES[number % len(STATUSES)],
                          last_synced_at=now - timedelta(hours=number * 7 % 72))
        db.session.add(dossier)
        db.session.flush()
        connection = firm_connection
        if number % 2:
            connection = Connection(firm_id=world.alpha, package="demo", kind="accounting", level="dossier",
                                    name=f"Own books {number}", owner_dossier_id=dossier.id, config={},
                                    credentials={"api_key": f"secret-{number}"}, status=ConnectionStatus.NEEDS_RECONNECT)
            db.session.add(connection)
            db.session.flush()
        link = DossierLink(firm_id=world.alpha, dossier_id=dossier.id, connection_id=connection.id,
                           reference=f"R{number}", reference_name=f"Company {number}")
        db.session.add(link)
        db.session.flush()
        night = now - timedelta(days=1)
        db.session.add_all([
            SyncRun(firm_id=world.alpha, dossier_id=dossier.id, link_id=link.id, trigger=Trigger.NIGHTLY,
                    nightly_key=f"{link.id}:{night:%Y-%m-%d}", status=RunStatus.SUCCEEDED, queued_at=night,
                    started_at=night, finished_at=night + timedelta(minutes=1)),
            SyncRun(firm_id=world.alpha, dossier_id=dossier.id, link_id=link.id, trigger=Trigger.MANUAL,
                    status=RunStatus.FAILED, message=f"Bulk {number} failed", queued_at=now, started_at=now,
                    finished_at=now),
        ])
    db.session.commit()


def statements_of(client, url):
    """The number of statements of one request for ``url`` (after a warm-up request)."""
    assert client.get(url).status_code == 200
    db.session.expire_all()
    with recorded_statements(db.engine) as seen:
        response = client.get(url)
    assert response.status_code == 200
    return len(seen), response.get_data(as_text=True)


def listed(page):
    return page.count('class="fs-dossier-link"')


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_files_list_costs_the_same_at_two_sizes_and_two_page_sizes(client, world, role):
    add_files(world, 6)
    log_in(client, role)
    small_20, page = statements_of(client, "/admin/dossiers/?page_size=20")
    small_50, _ = statements_of(client, "/admin/dossiers/?page_size=50")
    assert listed(page) == (9 if role == "admin" else 8)  # 3 + 6 files (staff: not the private one)
    add_files(world, 60, start=6)
    large_20, page = statements_of(client, "/admin/dossiers/?page_size=20")
    assert listed(page) == 20
    large_50, page = statements_of(client, "/admin/dossiers/?page_size=50")
    assert listed(page) == 50
    assert page.count('class="d-inline fs-reconnect"') >= 20  # file-owned grants: Reconnect without a query each
    assert small_20 == small_50 == large_20 == large_50


@pytest.mark.parametrize("role", ["admin", "staff", "support"])
def test_dashboard_costs_the_same_at_two_sizes(client, world, role):
    add_files(world, 6)
    log_in(client, role)
    few, page = statements_of(client, "/admin/")
    assert 'id="tile-failed"' in page
    add_files(world, 60, start=6)
    many, page = statements_of(client, "/admin/")
    assert "Bulk 61 failed" in page  # the newest failure (of a failing file) is listed
    assert many == few


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_dossier_page_costs_the_same_at_two_sizes(client, world, role):
    add_files(world, 6)
    log_in(client, role)
    owned = db.session.scalar(db.select(Dossier.id).where(Dossier.name == "Bulk 001"))
    few, page = statements_of(client, f"/admin/dossier/?id={owned}")
    assert "Bulk 001" in page
    add_files(world, 60, start=6)
    for _ in range(30):  # a longer history for the same file
        run = db.session.scalar(db.select(SyncRun).where(SyncRun.dossier_id == owned).limit(1))
        db.session.add(SyncRun(firm_id=run.firm_id, dossier_id=owned, link_id=run.link_id, status=RunStatus.SUCCEEDED,
                               started_at=utcnow(), finished_at=utcnow()))
    db.session.commit()
    many, _ = statements_of(client, f"/admin/dossier/?id={owned}")
    assert many == few


def test_the_dashboard_counts_match_the_files(client, world):
    """The tiles are derived from one count per status plus the stale count: check the figures."""
    add_files(world, 12)
    log_in(client, "admin")
    page = client.get("/admin/").get_data(as_text=True)
    files = db.session.scalars(db.select(Dossier).where(Dossier.firm_id == world.alpha)).all()
    expected = {"failed": sum(f.sync_status == RunStatus.FAILED for f in files),
                "needs_reconnect": sum(f.sync_status == RunStatus.NEEDS_RECONNECT for f in files),
                "running": sum(f.sync_status == RunStatus.RUNNING for f in files),
                "queued": sum(f.sync_status in (RunStatus.QUEUED, RunStatus.DEFERRED) for f in files),
                "stale": sum(1 for f in files if f.last_synced_at is not None and f.active_link() is not None
                             and f.last_synced_at < utcnow() - timedelta(hours=36))}
    assert expected["stale"] > 0 and expected["failed"] > 0
    for key, count in expected.items():
        assert re.search(rf'id="tile-{key}" data-count="{count}"', page), key


def test_row_actions_work_and_follow_the_role(client, world):
    """The list's view/edit/delete icons (rendered by DossierView.row_actions) lead where they say."""
    add_files(world, 3)
    target = db.session.scalar(db.select(Dossier.id).where(Dossier.name == "Bulk 000"))
    log_in(client, "admin")
    page = client.get("/admin/dossiers/?page_size=50").get_data(as_text=True)
    details = re.search(rf'href="(/admin/dossiers/details/\?[^"]*id={target})"', page).group(1)
    assert client.get(details.replace("&amp;", "&")).status_code == 200
    assert re.search(rf'href="/admin/dossiers/edit/\?[^"]*id={target}"', page)
    form = re.search(rf'<form class="icon" method="POST" action="(/admin/dossiers/delete/)">'
                     rf'<input id="id" name="id" type="hidden" value="{target}">'
                     r'<input id="url" name="url" type="hidden" value="([^"]*)">'
                     r'<input id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)">', page)
    assert form, "no delete form for the file"
    response = client.post(form.group(1), data={"id": str(target), "url": form.group(2).replace("&amp;", "&"),
                                                 "csrf_token": form.group(3)})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Dossier, target) is None
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    log_in(client, "external")
    external = client.get("/admin/dossiers/").get_data(as_text=True)
    assert "Alpha Public Ltd" in external
    assert "/admin/dossiers/edit/" not in external and "/admin/dossiers/delete/" not in external
    assert "/admin/dossiers/details/" in external
