"""Redis locks, heartbeats and cancel flags of the sync pipeline.

* The **dossier lock** makes sure one sync per dossier runs at a time. Its value is the
  run's token (``run:<run_id>:<random>``) so the reaper can tell whose lock it is; it
  expires after ``SYNC_LOCK_SECONDS`` unless the running job's heartbeat extends it, so a
  killed worker never blocks a dossier for long.
* The **trigger lock** is a short lock around "is a run already queued? else create one",
  so two simultaneous "sync now" clicks give one run.
* The **connection lock** serialises token refreshes of one connection (a rotating refresh
  token may be used once only).
* **Heartbeats** (a Redis hash ``run id -> epoch seconds``) tell the reaper a run is alive
  even while its database transaction keeps the row from being updated (SQLite).
* **Cancel flags** let a running job notice a cancellation without a database read.
* :func:`bounded_lock_wait` keeps a database session (the reaper's) from waiting forever on a
  row lock held by a frozen process.
"""
import secrets
import threading
import time
from contextlib import contextmanager

from flask import current_app
from redis.lock import Lock

from app.redis_connection import redis_connection

PREFIX = "firmsync:sync"
HEARTBEATS_KEY = f"{PREFIX}:heartbeats"


def setting(name, default):
    """A sync setting from the app config (``SYNC_*``), with its default.

    Values from the environment (``FIRMSYNC_SYNC_HEARTBEAT_SECONDS=5``) arrive as text and
    are read like the default: a number, or a comma-separated list of numbers.
    """
    value = current_app.config.get(name, default)
    if isinstance(value, str) and not isinstance(default, str):
        numbers = [float(part) for part in value.split(",") if part.strip()]
        if isinstance(default, (tuple, list)):
            return tuple(numbers)
        return type(default)(numbers[0]) if isinstance(default, (int, float)) else numbers[0]
    return value


def dossier_lock_key(dossier_id):
    return f"{PREFIX}:dossier-lock:{int(dossier_id)}"


def run_token(run_id):
    """A fresh lock token naming the run that holds the lock."""
    return f"run:{int(run_id)}:{secrets.token_hex(8)}"


def token_run_id(token):
    """The run id in a lock token (bytes or str), or None."""
    if isinstance(token, bytes):
        token = token.decode()
    parts = (token or "").split(":")
    return int(parts[1]) if len(parts) == 3 and parts[0] == "run" and parts[1].isdigit() else None


def dossier_lock(dossier_id, redis=None, timeout=None):
    """The (not yet acquired) Redis lock of one dossier's sync."""
    redis = redis or redis_connection()
    return Lock(redis, dossier_lock_key(dossier_id), timeout=timeout or setting("SYNC_LOCK_SECONDS", 60),
                thread_local=False)  # the heartbeat thread extends it


def dossier_lock_holder(dossier_id, redis=None):
    """The run id holding the dossier lock, or None."""
    redis = redis or redis_connection()
    return token_run_id(redis.get(dossier_lock_key(dossier_id)))


def release_dossier_lock_of(dossier_id, run_id, redis=None):
    """Delete the dossier lock if (and only if) ``run_id`` holds it. Returns True when deleted."""
    redis = redis or redis_connection()
    key = dossier_lock_key(dossier_id)
    script = redis.register_script(
        "local v = redis.call('get', KEYS[1]) "
        "if v and string.find(v, ARGV[1], 1, true) == 1 then return redis.call('del', KEYS[1]) end "
        "return 0"
    )
    return bool(script(keys=[key], args=[f"run:{int(run_id)}:"]))


@contextmanager
def trigger_lock(dossier_id, redis=None):
    """A short lock around check-and-create of a dossier's run (race-safe "sync now")."""
    redis = redis or redis_connection()
    lock = Lock(redis, f"{PREFIX}:trigger-lock:{int(dossier_id)}", timeout=10, blocking_timeout=10)
    if not lock.acquire():
        raise TimeoutError(f"could not lock dossier {dossier_id} to queue its sync")
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: nothing to release
            pass


_held = threading.local()


@contextmanager
def connection_lock(connection_id, redis=None, timeout=30, blocking_timeout=60):
    """The per-connection lock under which tokens are refreshed and persisted.

    Re-entrant within one thread: ``save_credentials`` called by a token manager that
    already holds the lock does not wait for itself.
    """
    held = _held.__dict__.setdefault("connections", set())
    if connection_id in held:
        yield
        return
    redis = redis or redis_connection()
    lock = Lock(redis, f"{PREFIX}:connection-lock:{int(connection_id)}", timeout=timeout,
                blocking_timeout=blocking_timeout)
    if not lock.acquire():
        raise TimeoutError(f"could not lock connection {connection_id} to refresh its token")
    held.add(connection_id)
    try:
        yield
    finally:
        held.discard(connection_id)
        try:
            lock.release()
        except Exception:
            pass


def beat(run_id, redis=None, at=None):
    """Record that run ``run_id`` is alive now (epoch seconds)."""
    redis = redis or redis_connection()
    redis.hset(HEARTBEATS_KEY, str(int(run_id)), str(at if at is not None else time.time()))


def last_beat(run_id, redis=None):
    """Epoch seconds of the run's last heartbeat, or None."""
    redis = redis or redis_connection()
    value = redis.hget(HEARTBEATS_KEY, str(int(run_id)))
    return float(value) if value else None


def forget_beat(run_id, redis=None):
    (redis or redis_connection()).hdel(HEARTBEATS_KEY, str(int(run_id)))


def cancel_flag_key(run_id):
    return f"{PREFIX}:cancel:{int(run_id)}"


def flag_cancel(run_id, redis=None):
    (redis or redis_connection()).set(cancel_flag_key(run_id), "1", ex=7 * 24 * 3600)


def cancel_flagged(run_id, redis=None):
    return bool((redis or redis_connection()).exists(cancel_flag_key(run_id)))


def clear_cancel_flag(run_id, redis=None):
    (redis or redis_connection()).delete(cancel_flag_key(run_id))


@contextmanager
def bounded_lock_wait(session, milliseconds):
    """Within the block, every transaction of ``session`` waits at most ``milliseconds`` for a
    row lock (PostgreSQL ``SET LOCAL lock_timeout``; it then raises ``OperationalError``, which
    the caller catches to skip that row). SQLite already bounds its waits (``busy_timeout``)."""
    from sqlalchemy import event

    target = session() if hasattr(session, "registry") else session  # a scoped_session: this thread's

    def _limit(_session, _transaction, connection):
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")

    if target.in_transaction():
        _limit(target, None, target.connection())
    event.listen(target, "after_begin", _limit)
    try:
        yield
    finally:
        event.remove(target, "after_begin", _limit)
