"""Encryption of secrets at rest.

Connection credentials and secret configuration are stored through :class:`EncryptedJSON`,
a column type that serialises a value to JSON and encrypts it with a
:class:`cryptography.fernet.MultiFernet` built from ``ENCRYPTION_KEYS`` (comma-separated
Fernet keys, the first one current). Older keys stay listed until ``flask crypto
rotate-keys`` has re-encrypted every row with the current key.
"""
import json
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy.types import Text, TypeDecorator

from app.instance_files import write_private

EXTENSION_KEY = "firmsync.keyring"


class Keyring:
    """The MultiFernet of one application, with the list of keys it was built from."""

    def __init__(self, keys):
        keys = [k.strip() for k in keys if k and k.strip()]
        if not keys:
            raise ValueError("ENCRYPTION_KEYS is empty: set at least one Fernet key")
        self.fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, value):
        """Encrypt a JSON-serialisable value; returns text safe for a TEXT column."""
        return self.fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token):
        """Decrypt text made by :meth:`encrypt` with any listed key."""
        try:
            return json.loads(self.fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ValueError(
                "a stored secret cannot be decrypted with the configured ENCRYPTION_KEYS"
            ) from None

    def rotate(self, token):
        """Re-encrypt ``token`` with the current (first) key."""
        return self.fernet.rotate(token.encode()).decode()


def init_keyring(app):
    """Build the app's keyring from ``ENCRYPTION_KEYS``.

    In development only, a missing key is generated once and kept in
    ``instance/encryption.key`` so a newcomer's ``make run`` works out of the box.
    """
    raw = app.config.get("ENCRYPTION_KEYS")
    if not raw:
        if not (app.debug or app.config.get("ENV_NAME") == "development"):
            raise RuntimeError("FIRMSYNC_ENCRYPTION_KEYS must be set outside development")
        path = Path(app.instance_path) / "encryption.key"
        if not path.exists():
            write_private(path, Fernet.generate_key().decode())
        raw = path.read_text().strip()
    app.extensions[EXTENSION_KEY] = Keyring(raw.split(","))


def keyring():
    """The keyring of the current application."""
    return current_app.extensions[EXTENSION_KEY]


class AlreadyEncrypted(str):
    """A Fernet token written as is by :class:`EncryptedJSON` (used by key rotation)."""


class EncryptedJSON(TypeDecorator):
    """A JSON value stored encrypted (Fernet token in a TEXT column)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, AlreadyEncrypted):
            return str(value)
        return keyring().encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else keyring().decrypt(value)


def rotate_all(db):
    """Re-encrypt every encrypted column of every row with the current key.

    Returns the number of values rewritten. Works below the ORM so rows are not
    decrypted into Python objects and nothing is logged.
    """
    from sqlalchemy import select, update

    count = 0
    ring = keyring()
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, EncryptedJSON)]
        if not columns:
            continue
        pk = list(table.primary_key.columns)[0]
        raw = [c.name for c in columns]
        plain = table.c
        rows = db.session.execute(
            select(pk, *[plain[n].cast(Text).label(n) for n in raw])
        ).all()
        for row in rows:
            values = {n: ring.rotate(getattr(row, n)) for n in raw if getattr(row, n)}
            if values:
                db.session.execute(
                    update(table).where(pk == row[0]).values(
                        **{n: AlreadyEncrypted(v) for n, v in values.items()}
                    )
                )
                count += len(values)
    db.session.commit()
    return count

