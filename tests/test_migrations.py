"""The Alembic migrations build exactly the model's schema, on SQLite and on PostgreSQL.

Each test gets an empty database of the session's kind: a new SQLite file, or a new schema
in the PostgreSQL database named by ``FIRMSYNC_TEST_DATABASE_URL`` (reached through
``search_path``, so it starts empty even though the session's tables live in ``public``).
"""
import logging
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db as _db
from config import normalise_database_url


@pytest.fixture
def logging_kept():
    """Alembic's env.py runs ``logging.config.fileConfig``, which disables every existing
    logger; put the logging setup back so later tests still see their log records."""
    manager = logging.Logger.manager
    disabled = {name: logger.disabled for name, logger in manager.loggerDict.items()
                if isinstance(logger, logging.Logger)}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            logger.disabled = disabled.get(name, False)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def empty_database_url(database_url, tmp_path):
    """The URL of an empty database of the session's kind; removed afterwards."""
    url = normalise_database_url(database_url)
    if url.startswith("sqlite"):
        yield "sqlite:///" + str(tmp_path / "migrated.db")
        return
    schema = f"migration_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def migrated_app(empty_database_url, redis_url, logging_kept):
    """An app on the empty database after ``flask db upgrade``."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=empty_database_url, REDIS_URL=redis_url)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()


def test_upgrade_creates_exactly_the_models_tables(migrated_app):
    tables = set(inspect(_db.engine).get_table_names())

    assert tables - {"alembic_version"} == set(_db.metadata.tables)
    assert "alembic_version" in tables


def test_migrations_match_the_models(migrated_app):
    with _db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = compare_metadata(context, _db.metadata)

    assert drift == [], f"the models differ from the migrations; generate one: {drift}"


def test_one_head_and_the_database_is_at_it(migrated_app):
    config = migrated_app.extensions["migrate"].migrate.get_config()
    heads = ScriptDirectory.from_config(config).get_heads()

    assert len(heads) == 1, f"several Alembic heads: {heads} (merge them)"
    with _db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)
