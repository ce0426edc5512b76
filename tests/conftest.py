"""Shared fixtures.

The database is SQLite (a file, so RQ worker processes share it) unless
``FIRMSYNC_TEST_DATABASE_URL`` names a PostgreSQL database (``make test`` runs the suite
once on each). Redis is the server named by ``FIRMSYNC_TEST_REDIS_URL``; without it a
private ``redis-server`` is started on a free loopback port for the session.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, text

from app import create_app
from app.extensions import db as _db
from app.models import Firm, Membership, Role, User

pytest_plugins = ["tests.fixtures_sandbox", "tests.fixtures_worker"]

SHARED = Path(__file__).resolve().parents[2] / "shared"
PASSWORD = "correct horse battery"


#: fixtures through which a test reaches the database
DATABASE_FIXTURES = {"_schema", "app", "db", "empty_database_url"}


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL pass (``make test`` runs the suite twice), keep only the tests that
    touch the database: the others (connector parsing, sandbox, rate limiter) do not depend
    on it and already ran on the SQLite pass. They are reported as deselected."""
    if not os.environ.get("FIRMSYNC_TEST_DATABASE_URL"):
        return
    keep, dropped = [], []
    for item in items:
        (keep if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@contextmanager
def recorded_statements(engine, keep=lambda statement: True):
    """``with recorded_statements(engine) as seen:`` collects the SQL statements run on
    ``engine`` inside the block for which ``keep(statement)`` is true. Rows streamed with
    ``COPY`` through the driver (``app.services.bookkeeping.insert_rows`` on PostgreSQL) are not seen."""
    seen = []

    def record(conn, cursor, statement, *args):
        if keep(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def shared_path(*parts):
    """A path under ``../shared``; skips the calling test when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} is not present on this machine (vendor specs and data live there)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("FIRMSYNC_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: run the suite with `make test`, which installs it")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="firmsync-redis-")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("FIRMSYNC_TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "firmsync-test.db")


@pytest.fixture(scope="session")
def _schema(database_url, redis_url, tmp_path_factory):
    """Create the schema once per session (tests empty the tables after themselves)."""
    instance = tmp_path_factory.mktemp("instance")
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=_normalise(database_url), REDIS_URL=redis_url)
    with app.app_context():
        _db.drop_all()
        _db.create_all()
    return {"database_url": _normalise(database_url), "redis_url": redis_url, "instance": str(instance)}


def _normalise(url):
    from config import normalise_database_url

    return normalise_database_url(url)


@pytest.fixture
def app(_schema):
    """A fresh application on the session's database; every table is emptied afterwards."""
    os.environ["FIRMSYNC_INSTANCE_PATH"] = _schema["instance"]
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=_schema["database_url"],
        REDIS_URL=_schema["redis_url"],
    )
    with app.app_context():
        yield app
        _db.session.remove()
        _empty_all_tables()
        from app.redis_connection import redis_connection

        redis_connection().flushdb()


def _empty_all_tables():
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in _db.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(_db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def db(app):
    return _db


def make_user(email, firm=None, role=Role.ADMIN, *, support=False, can_create_files=False,
              multi_file_access=True, password=PASSWORD):
    """Create a user (and their membership in ``firm``) and commit."""
    user = User(email=email, name=email.split("@")[0].title(), is_support=support)
    user.set_password(password)
    _db.session.add(user)
    if firm is not None:
        _db.session.add(Membership(user=user, firm=firm, role=role, can_create_files=can_create_files,
                                   multi_file_access=multi_file_access))
    _db.session.commit()
    return user


@pytest.fixture
def firm(db):
    firm = Firm(name="Alpha Accountants")
    db.session.add(firm)
    db.session.commit()
    return firm


@pytest.fixture
def other_firm(db):
    firm = Firm(name="Beta Boekhouding")
    db.session.add(firm)
    db.session.commit()
    return firm


def upload_monthly_balances(dossier, until, accounts=("550000", "700000"), amount="80"):
    """Give the manual monthly ``dossier`` uploaded fiscal years 2025 and 2026 and, for every
    month end up to ``until``, an uploaded movement of ``amount`` on the first account and its
    opposite on the second (as a CSV upload writes them); commits."""
    from datetime import date
    from decimal import Decimal

    from sqlalchemy import select

    from app.models import FiscalYear, Period
    from app.services import fiscal_years
    from app.services.bookkeeping import write_records
    from connectors.base import BalanceRecord

    for year in (2025, 2026):
        _db.session.add(FiscalYear(dossier_id=dossier.id, start=date(year, 1, 1), end=date(year, 12, 31),
                                   origin="manual"))
    _db.session.flush()
    fiscal_years.ensure_periods(_db.session, dossier)
    ends = [p.end for p in _db.session.scalars(select(Period).where(Period.dossier_id == dossier.id)
                                               .order_by(Period.end)) if p.end <= until]
    debit, credit = accounts
    write_records(_db.session, None, [record for end in ends for record in (
        BalanceRecord(debit, end, Decimal(amount), "movement"), BalanceRecord(credit, end, -Decimal(amount), "movement"))],
        dossier_id=dossier.id)
    _db.session.commit()


def login(client, email, password=PASSWORD):
    """Log in through the real form (CSRF token included) and return the response."""
    page = client.get("/login")
    token = csrf_from(page)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def logged_in(client, user):
    """Log ``user`` in through the real form; returns the client (fails when refused)."""
    response = login(client, user.email)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def csrf_from(response):
    """Extract the first CSRF token rendered in a page."""
    import re

    html = response.get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def as_user(client):
    """``as_user(email)`` logs the test client in and returns it."""
    def _login(email, password=PASSWORD):
        response = login(client, email, password)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return _login
