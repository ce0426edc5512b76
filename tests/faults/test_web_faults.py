"""The web under infrastructure faults (issue #23 items 8, 9, 10, 12): it degrades, it never
answers 500 and never hangs.

* database away: every page, ``/login`` included, answers the 503 "briefly unavailable" page
  in the visitor's language (JSON under ``/api/``), with ``Retry-After``;
* a SQLite write lock held by another process: reads and logins still answer (WAL), a write answers 503
  after the web busy timeout, and works again once the lock is gone;
* Redis away: pages load, "sync now" leaves the run queued in the database and says so;
* Redis frozen: a login still completes (short web timeouts);
* sessions get the web or the job timeouts;
* ``scripts/supervise.sh`` restarts a worker that exits and stops its whole process group.

Each fault is private to its test: a PostgreSQL port nobody listens on, a SQLite file of the
test's own, a redis-server of the test's own; the suite's Redis and database are never stopped.
"""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext
from redis import Redis
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from app import create_app
from app.extensions import db
from app.models import Connection, Dossier, DossierLink, Firm, Role, RunStatus, SyncRun
from app.redis_connection import init_redis
from app.unavailable import database_unavailable
from tests.conftest import PASSWORD, csrf_from, login, make_user
from tests.console_world import build_world, csrf_token, fresh_request_globals, log_in  # noqa: F401 - fixture
from tests.test_healthz import database_away_app, redis_away  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


def poll(predicate, timeout=20, what="the condition"):
    """Poll ``predicate`` every 50 ms until it is true (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def unavailable_title(language):
    with force_locale(language):
        return gettext("Firmsync is briefly unavailable")


# ---------------------------------------------------------------- database away

def test_with_the_database_away_every_page_answers_503_in_the_visitors_language(redis_url, tmp_path, monkeypatch):
    down = database_away_app(redis_url, tmp_path, monkeypatch)
    client = down.test_client()
    page = client.get("/login", headers={"Accept-Language": "fr"})
    assert page.status_code == 200  # the login form itself needs no database
    refused = client.post("/login", headers={"Accept-Language": "fr"},
                          data={"email": "admin@alpha.test", "password": PASSWORD, "csrf_token": csrf_from(page)})
    from flask_login.utils import _create_identifier

    browser = {"Accept-Language": "nl", "User-Agent": "Firmsync test browser"}
    with down.test_request_context("/", headers=browser, environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        identifier = _create_identifier()  # Flask-Login's "strong" session protection checks it
    with client.session_transaction() as session:  # someone logged in before the database went away
        session.update({"_user_id": "1:0", "_fresh": True, "_id": identifier})
    console = client.get("/admin/", headers=browser)
    for response, language in ((refused, "fr"), (console, "nl")):
        html = response.get_data(as_text=True)
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        assert f'<html lang="{language}">' in html
        with down.test_request_context():
            assert unavailable_title(language) in html
        assert "psycopg" not in html and "s3cret" not in html
    api = client.get("/api/v1/dossiers", headers={"Authorization": "Bearer fsk_" + "x" * 43})
    assert api.status_code == 503 and api.get_json()["code"] == 503 and api.headers["Retry-After"]


@pytest.mark.parametrize("error, unavailable", [
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")), True),
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("unable to open database file")), True),
    (OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: x")), False),
    (ProgrammingError("SELECT 1", {}, sqlite3.ProgrammingError("Cannot operate on a closed cursor")), False),
])
def test_only_outages_are_called_unavailable(error, unavailable):
    assert database_unavailable(error) is unavailable


# ---------------------------------------------------------------- a SQLite write lock held by another process

HOLD_THE_WRITE_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE firm SET name = name")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
"""


@pytest.fixture
def private_sqlite_app(redis_url, tmp_path, monkeypatch):
    """An application on a SQLite file of this test's own, with a linked file and an administrator."""
    monkeypatch.setenv("FIRMSYNC_INSTANCE_PATH", str(tmp_path))
    path = tmp_path / "private.db"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}", REDIS_URL=redis_url,
                     WEB_SQLITE_BUSY_TIMEOUT_SECONDS=0.3)
    with app.app_context():
        db.create_all()
        firm = Firm(name="Private Firm")
        db.session.add(firm)
        db.session.commit()
        make_user("admin@private.test", firm, Role.ADMIN)
        connection = Connection(firm_id=firm.id, package="demo", kind="accounting", name="Demo Books",
                                config={"base_url": "http://127.0.0.1:9/api"}, credentials={"api_key": "k"})
        dossier = Dossier(firm_id=firm.id, name="Locked Ltd")
        db.session.add_all([connection, dossier])
        db.session.flush()
        db.session.add(DossierLink(firm_id=firm.id, dossier_id=dossier.id, connection_id=connection.id,
                                   reference="C1", scenario="replace"))
        db.session.commit()
        app.dossier_id = dossier.id
        db.session.remove()
    yield app, path
    Redis.from_url(redis_url).flushdb()


def test_a_sqlite_write_lock_of_another_process_gives_503_never_500_and_nothing_is_lost(private_sqlite_app):
    app, path = private_sqlite_app
    client = app.test_client()
    assert login(client, "admin@private.test").status_code == 302
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_WRITE_LOCK, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert client.get("/admin/").status_code == 200  # reading is never blocked (WAL)
        token = csrf_token(client)
        blocked = client.post("/admin/dossier/sync", data={"csrf_token": token, "id": app.dossier_id})
        assert blocked.status_code == 503 and blocked.headers["Retry-After"]
        assert "Firmsync is briefly unavailable" in blocked.get_data(as_text=True)
        other = app.test_client()
        assert login(other, "admin@private.test").status_code == 302  # logged in; only its time is not noted
        assert other.get("/admin/").status_code == 200
    finally:
        holder.communicate("release\n", timeout=10)
    with app.app_context():
        assert db.session.query(SyncRun).count() == 0  # the refused press wrote nothing
    assert client.post("/admin/dossier/sync", data={"csrf_token": csrf_token(client), "id": app.dossier_id}
                       ).status_code == 302
    assert login(app.test_client(), "admin@private.test").status_code == 302
    with app.app_context():
        assert [run.status for run in db.session.query(SyncRun)] == [RunStatus.QUEUED]


def test_web_requests_and_jobs_get_their_own_session_timeouts(app, db, client):
    def settings():
        db.session.commit()  # the next statement checks a connection out again
        if db.engine.dialect.name == "postgresql":
            return [db.session.execute(text("SHOW lock_timeout")).scalar(),
                    db.session.execute(text("SHOW statement_timeout")).scalar()]
        return db.session.execute(text("PRAGMA busy_timeout")).scalar()

    app.add_url_rule("/_test/session-timeouts", "session_timeouts", lambda: {"seen": settings()})
    web = client.get("/_test/session-timeouts").get_json()["seen"]
    with app.test_request_context("/"):  # pushed by hand, as jobs and commands do: not a web request
        job = settings()
        db.session.commit()
    if db.engine.dialect.name == "postgresql":
        assert (web, job) == (["5s", "30s"], ["1min", "30min"])
    else:
        assert (web, job) == (5000, 60000)


# ---------------------------------------------------------------- Redis away or frozen

@pytest.fixture
def world(app):
    return build_world()


def test_with_redis_away_pages_load_and_sync_now_queues_in_the_database(client, world, redis_away, redis_url):
    log_in(client, "admin")
    for url in ("/admin/", "/admin/dossiers/", f"/admin/dossier/?id={world.a_public}", "/admin/runs/"):
        assert client.get(url).status_code == 200, url
    response = client.post("/admin/dossier/sync", data={"csrf_token": csrf_token(client), "id": world.a_public},
                           follow_redirects=True)
    assert response.status_code == 200
    assert "the sync will start as soon as it is back" in response.get_data(as_text=True)
    db.session.expire_all()
    queued = db.session.query(SyncRun).filter_by(dossier_id=world.a_public, status=RunStatus.QUEUED).all()
    assert len(queued) == 1  # a queued run without a job: the reaper enqueues it when Redis is back
    assert not Redis.from_url(redis_url).exists(f"rq:job:sync-run-{queued[0].id}")


def test_a_login_completes_while_redis_is_frozen(app, _schema, private_redis):
    firm = Firm(name="Frozen Firm")
    db.session.add(firm)
    db.session.commit()
    make_user("admin@frozen.test", firm, Role.ADMIN)
    # a web process of its own (its Redis is the private server), so the login runs in a thread
    web = create_app("testing", SQLALCHEMY_DATABASE_URI=_schema["database_url"], REDIS_URL=private_redis.url)
    answers = []
    os.kill(private_redis.proc.pid, signal.SIGSTOP)
    try:
        attempt = threading.Thread(
            target=lambda: answers.append(login(web.test_client(), "admin@frozen.test").status_code), daemon=True)
        attempt.start()
        attempt.join(30)  # a bound for a broken build; the web timeouts make it take about two seconds
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)
    assert answers == [302], "the login hung on a frozen Redis"


# ---------------------------------------------------------------- the supervisor of `make run`

FAKE_WORKER = """
echo "start $$" >> "$STARTS"
sleep 300 &
echo $! >> "$LEFT_BEHIND"
[ "$(wc -l < "$STARTS")" -ge 3 ] && wait
exit 3
"""


def gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, waiting to be reaped


def test_supervise_restarts_an_exiting_worker_and_stops_its_whole_process_group(tmp_path):
    starts, left_behind = tmp_path / "starts", tmp_path / "left-behind"
    env = dict(os.environ, STARTS=str(starts), LEFT_BEHIND=str(left_behind), SUPERVISE_RESTART_DELAY="0.05",
               SUPERVISE_STOP_SECONDS="5")
    supervisor = subprocess.Popen(
        ["bash", "-c", 'source scripts/supervise.sh; supervise worker bash -c "$0"', FAKE_WORKER],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        poll(lambda: starts.exists() and len(starts.read_text().splitlines()) == 3, what="the third start")
        poll(lambda: left_behind.exists() and len(left_behind.read_text().split()) == 3, what="the third child")
        children = [int(pid) for pid in left_behind.read_text().split()]
        # what the two exited runs left in their process group (a worker's scheduler) was stopped
        poll(lambda: gone(children[0]) and gone(children[1]), what="the leftovers of exited runs")
        assert not gone(children[2])
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=15)
        assert supervisor.returncode == 0
        poll(lambda: gone(children[2]), what="the running worker's group to stop")
        assert output.count("supervise: worker exited (status 3), restarting") == 2
        assert "supervise: worker stopped" in output
    finally:
        try:
            os.killpg(supervisor.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
