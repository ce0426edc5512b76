"""Files Firmsync keeps under ``instance/`` (development keys, the SQLite database): readable
by their owner only (OWASP ASVS V8.3), created that way rather than tightened afterwards."""
import os
from pathlib import Path


def private_folder(path):
    """Create the folder ``path`` owner-only if it does not exist yet (an existing folder, which
    may be shared such as ``/tmp``, is left as it is); answer it."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)
    return path


def write_private(path, text):
    """Write ``text`` to a new file ``path`` that only its owner may read or write (its folder is
    created owner-only when missing, never changed when it exists)."""
    path = Path(path)
    private_folder(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def private_sqlite(database_uri):
    """For a ``sqlite:///<file>`` URI, create the empty database file owner-only before SQLite does
    (which would make it readable by everyone under the usual umask); other URIs are left alone."""
    prefix = "sqlite:///"
    if not database_uri.startswith(prefix) or database_uri in (prefix, "sqlite://"):
        return
    path = Path(database_uri[len(prefix):].split("?", 1)[0])
    if path.name and not path.exists():
        write_private(path, "")
