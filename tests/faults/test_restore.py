"""The restore procedure of docs/operations.md ("Backups and restore"), exercised: sync a small
company, back the database up, restore it into a fresh database, sync on top of the restored
data after the company changed, and compare with a clean sync of the same company (no line
duplicated, none lost). The backup commands are the guide's: the SQLite online backup API, or
``pg_dump --format=custom`` and ``pg_restore --no-owner`` into a new PostgreSQL database.

The encryption keys are part of the backup: the restored credentials open only with them.
"""
import glob
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.models import Connection, LedgerLine, RunStatus, SyncRun, Trigger
from app.services.syncs import request_sync
from jobs.sync import run
from tests.faults.conftest import business_values

COMPANY = "c-1003"  # 40 lines, 20 accounts: the sandbox's smallest ledger


def postgresql_binary(name):
    """``name`` from the newest ``/usr/lib/postgresql/<version>/bin`` (as scripts/test.sh picks the server)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    assert found, f"{name} is not installed (Debian package postgresql-client)"
    return found[-1]


def libpq_url(url):
    """The SQLAlchemy URL as libpq reads it (``postgresql://``, no driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def back_up_and_restore(database_url, folder):
    """Back ``database_url`` up and restore it into a fresh database; answer the new URL and a
    function that removes it."""
    if database_url.startswith("sqlite"):
        source = make_url(database_url).database
        backup, restored = folder / "firmsync-backup.db", folder / "firmsync-restored.db"
        for origin, copy in ((source, backup), (backup, restored)):  # the online backup API, both ways
            with sqlite3.connect(origin) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
            src.close(), dst.close()
        return f"sqlite:///{restored}", lambda: None
    dump = folder / "firmsync.dump"
    subprocess.run([postgresql_binary("pg_dump"), "--format=custom", f"--file={dump}", libpq_url(database_url)],
                   check=True, capture_output=True)
    name = f"firmsync_restored_{secrets.token_hex(4)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    restored = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    subprocess.run([postgresql_binary("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={libpq_url(restored)}",
                    str(dump)], check=True, capture_output=True)

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return restored, drop


def sync(dossier_id):
    queued = request_sync(dossier_id, Trigger.MANUAL)
    run(queued.id)
    db.session.expire_all()
    done = db.session.get(SyncRun, queued.id)
    assert done.status == RunStatus.SUCCEEDED, done.message
    return done


def test_a_restored_database_syncs_on_top_without_duplicates_or_lost_lines(app, _schema, sandbox, linked_dossier,
                                                                           clean_sync_snapshot, tmp_path):
    settings = dict(config={"base_url": f"{sandbox.url}/demo"}, credentials={"api_key": "demo-key"})
    dossier_id = linked_dossier(package="demo", reference=COMPANY, name="Northwind (restored)", **settings).id
    control_id = linked_dossier(package="demo", reference=COMPANY, name="Northwind (never restored)", **settings).id
    assert sync(dossier_id).lines_inserted > 0
    sync(control_id)
    db.session.commit()

    restored_url, drop = back_up_and_restore(_schema["database_url"], tmp_path)
    try:
        sandbox.mutate(COMPANY, add=7, change=3)  # the company moves on after the backup
        restored = create_app("testing", SQLALCHEMY_DATABASE_URI=restored_url, REDIS_URL=_schema["redis_url"])
        with restored.app_context():
            again = sync(dossier_id)
            assert again.lines_inserted >= 7 and again.lines_updated >= 1  # on top: only the changes
            healed = business_values(db, dossier_id)
            source_ids = [row[0] for row in db.session.query(LedgerLine.source_id).filter_by(dossier_id=dossier_id)]
            assert len(source_ids) == len(set(source_ids))
            db.session.remove()
        # the credentials came back encrypted: another key cannot open them (keep the keys with the backup)
        strange = create_app("testing", SQLALCHEMY_DATABASE_URI=restored_url, REDIS_URL=_schema["redis_url"],
                             ENCRYPTION_KEYS=Fernet.generate_key().decode())
        with strange.app_context():
            with pytest.raises(ValueError, match="cannot be decrypted"):
                db.session.query(Connection).first().credentials  # noqa: B018 - reading decrypts
            db.session.remove()
        for engine_app in (restored, strange):
            with engine_app.app_context():
                db.engine.dispose()
    finally:
        drop()
    sync(control_id)  # the same two syncs without the backup and restore in between
    assert healed == business_values(db, control_id)
    clean = clean_sync_snapshot("demo", COMPANY, **settings)
    for part in ("lines", "accounts", "fiscal_years", "balances"):  # nothing lost or doubled, as a clean sync has them
        assert healed[part] == clean[part], part
