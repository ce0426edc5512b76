"""Progress and heartbeat of a running sync, written beside its open transaction.

The sync's data goes into one long database transaction. What the console shows while it
runs (current stream, records so far, percent) and the heartbeat the reaper checks are
written elsewhere so they are visible before that commit:

* in the RQ job's ``meta`` and the Redis heartbeat hash (always);
* on the :class:`SyncRun` row through a **separate** database connection (best effort:
  SQLite allows one writer at a time, so while the sync holds the write lock these
  updates are skipped after a very short wait; PostgreSQL takes them at once).
"""
import logging
import threading
import time

from redis import exceptions as redis_errors
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from app.models import SyncRun
from app.models.base import utcnow
from app import locks

log = logging.getLogger("firmsync.jobs")


class SyncCancelled(Exception):
    """Raised inside a running sync when its cancellation was requested."""


def write_run_fields(engine, run_id, **values):
    """UPDATE the run row through its own short transaction; False when the database is busy."""
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                busy_ms = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()  # the session kind's
                conn.exec_driver_sql("PRAGMA busy_timeout = 50")
            try:
                conn.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))
                conn.commit()
            finally:
                if sqlite:
                    conn.rollback()
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")
        return True
    except OperationalError as exc:  # "database is locked": the sync's own transaction writes
        log.debug("run %s: progress not written to the database (%s)", run_id, exc.__class__.__name__)
        return False


def cancel_requested(engine, run_id):
    """Whether the run's row asks for cancellation (read through a separate connection)."""
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(select(SyncRun.cancel_requested).where(SyncRun.id == run_id)))
    except OperationalError:
        return False


#: the progress "stream" of a staged sync writing what it fetched (the file page shows
#: "Writing the data"; a package's stream never has this name)
WRITING = "writing"
#: the percent a staged sync's fetch ends at; writing fills the rest of the bar
FETCH_SHARE = 90


class Progress:
    """Counts records and publishes progress every ``every_records`` records or ``every_seconds``.

    Each publication also checks for cancellation and raises :class:`SyncCancelled`.
    """

    def __init__(self, engine, run_id, job=None, *, every_records=500, every_seconds=2.0, redis=None):
        self.engine = engine
        self.run_id = run_id
        self.job = job
        self.redis = redis
        self.every_records = every_records
        self.every_seconds = every_seconds
        self.records = 0
        self.stream = None
        self.percent = None
        self._stream_records = 0
        self._last_records = 0
        self._last_time = time.monotonic()
        #: False once SQLite said the database is busy: the sync's own transaction holds the
        #: write lock until its commit, so further tries would only wait (Redis still gets it)
        self._row_writable = True
        #: the part of the bar a stream with a known total fills (a staged sync's fetch: up to
        #: :data:`FETCH_SHARE`, its writing the rest)
        self._floor, self._top = 0, 100

    def staged(self):
        """A staged sync (:mod:`jobs.staging`): fetching fills the bar up to :data:`FETCH_SHARE`."""
        self._floor, self._top = 0, FETCH_SHARE

    def start_stream(self, name):
        self.stream = name
        self._stream_records = 0
        self.publish()

    def start_writing(self, total):
        """A staged sync has fetched everything and writes its ``total`` records: the stream
        becomes :data:`WRITING`, the records count again from 0, the bar goes on from
        :data:`FETCH_SHARE`."""
        self._floor, self._top = FETCH_SHARE, 100
        self.records = self._last_records = 0
        self.percent = FETCH_SHARE
        self.start_stream(WRITING)

    def tick(self, total=None):
        self.records += 1
        self._stream_records += 1
        if total:
            done = min(self._stream_records, total) * (self._top - self._floor) / total
            self.percent = min(99, self._floor + int(done))
        if (self.records - self._last_records >= self.every_records
                or time.monotonic() - self._last_time >= self.every_seconds):
            self.publish()

    def publish(self):
        """Publish progress and check for cancellation. Redis being away does not stop the
        sync (progress is display only; the row's ``cancel_requested`` is still read)."""
        self._last_records, self._last_time = self.records, time.monotonic()
        flagged = False
        try:
            if self.job is not None:
                self.job.meta.update(progress={"stream": self.stream, "records": self.records, "percent": self.percent})
                self.job.save_meta()
            flagged = locks.cancel_flagged(self.run_id, self.redis)
        except REDIS_OUTAGE as exc:
            log.warning("run %s: progress not published to Redis (%s)", self.run_id, exc.__class__.__name__)
        if self._row_writable:
            self._row_writable = write_run_fields(
                self.engine, self.run_id, progress_stream=self.stream, progress_records=self.records,
                progress_percent=self.percent, heartbeat_at=utcnow(),
            ) or self.engine.dialect.name != "sqlite"
        if flagged or cancel_requested(self.engine, self.run_id):
            raise SyncCancelled()


#: Redis being unreachable or too slow (a restart, a network blip)
REDIS_OUTAGE = (redis_errors.ConnectionError, redis_errors.TimeoutError)


#: how long the Redis copy of an attempt's API calls is kept (the reaper reads it long before)
ATTEMPT_CALLS_TTL = 7 * 24 * 3600


def attempt_calls_key(run_id):
    """The Redis key of the running attempt's API calls so far (see :class:`Heartbeat`)."""
    return f"{locks.PREFIX}:attempt-api-calls:{int(run_id)}"


def recorded_attempt_calls(run, redis):
    """The API calls the heartbeat last recorded for ``run``'s current attempt: the larger of
    the row's ``attempt_api_calls`` and the Redis copy (SQLite often refuses the row write
    while the sync holds its write lock; Redis may have lost its data)."""
    try:
        in_redis = int(redis.get(attempt_calls_key(run.id)) or 0)
    except (REDIS_OUTAGE + (ValueError,)):
        in_redis = 0
    return max(run.attempt_api_calls or 0, in_redis)


def lease_holder(run_id):
    """The name run ``run_id``'s rate-limit leases are taken under
    (:meth:`connectors.rate_limit.RateLimiter.release_holder` frees them when it died)."""
    return f"sync-run-{int(run_id)}"


def hold_leases(http, run_id, rank):
    """Take the concurrency slots of ``http`` (a :class:`connectors.http.HttpClient`) under
    the run's name, so the reaper can free them at once when the run's worker died; the run
    also waits in its budgets' lines under that name, at ``rank`` (its queue's)."""
    limiter = getattr(http, "limiter", None)
    if limiter is not None:
        limiter.holder = lease_holder(run_id)
        limiter.rank = rank


class Heartbeat(threading.Thread):
    """A daemon thread that keeps a running sync's dossier lock and heartbeat fresh.

    Every ``interval`` seconds it extends the lock to ``lock_seconds`` and records a beat,
    with the attempt's API calls so far (``calls()``, when given): on the run row
    (``attempt_api_calls``) and in Redis (:func:`attempt_calls_key`), so the reaper can add
    the calls of an attempt whose worker died to the run's ``api_calls``. Starting the
    heartbeat sets the Redis copy to 0 (a previous attempt's count is not counted again;
    ``jobs.sync`` resets the row's when it marks the run running).
    If the process dies, both stop: the lock expires and the reaper sees the silence.

    Redis outages are ridden out: a beat that cannot reach Redis is skipped. When Redis is
    back and the lock is no longer ours, a lock nobody holds (Redis restarted without its
    data) is taken again; a lock another run holds sets :attr:`lost_lock`, and the sync
    rolls back instead of committing (:class:`jobs.sync.LostLock`).
    """

    def __init__(self, run_id, lock, *, redis, engine, interval=10.0, lock_seconds=60, calls=None):
        super().__init__(name=f"sync-heartbeat-{run_id}", daemon=True)
        self.run_id, self.lock, self.redis, self.engine = run_id, lock, redis, engine
        self.interval, self.lock_seconds = interval, lock_seconds
        #: ``calls() -> int``: the attempt's API calls so far (None: not recorded)
        self.calls = calls
        self._stop_event = threading.Event()
        self.lost_lock = False

    def start(self):
        """Set the Redis copy of the attempt's calls to 0, then start beating."""
        if self.calls is not None:
            self._record_calls_in_redis(0)
        super().start()

    def run(self):
        while not self._stop_event.wait(self.interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - one failed beat must not end the heartbeat
                log.warning("run %s: heartbeat failed", self.run_id, exc_info=True)

    def beat(self):
        try:
            locks.beat(self.run_id, self.redis)
            self.lock.extend(self.lock_seconds, replace_ttl=True)
        except REDIS_OUTAGE as exc:
            log.warning("run %s: heartbeat skipped (Redis unavailable: %s)", self.run_id, exc.__class__.__name__)
        except Exception:  # the lock expired: take it back unless another run holds it now
            if not self._take_back():
                self.lost_lock = True
                log.warning("run %s: lost its dossier lock", self.run_id)
        if self.calls is None:
            write_run_fields(self.engine, self.run_id, heartbeat_at=utcnow())
            return
        calls = int(self.calls() or 0)
        self._record_calls_in_redis(calls)
        write_run_fields(self.engine, self.run_id, heartbeat_at=utcnow(), attempt_api_calls=calls)

    def _record_calls_in_redis(self, calls):
        try:
            self.redis.set(attempt_calls_key(self.run_id), int(calls), ex=ATTEMPT_CALLS_TTL)
        except redis_errors.RedisError as exc:  # a figure for the reaper: never a reason to stop the sync
            log.warning("run %s: API calls not recorded in Redis (%s)", self.run_id, exc.__class__.__name__)

    def _take_back(self):
        """Set the lock again with this run's token if nobody holds it; True when it is ours."""
        try:
            token = self.lock.local.token
            if token is None:
                return False
            taken = self.redis.set(self.lock.name, token, nx=True, px=int(self.lock_seconds * 1000))
            if taken:
                log.info("run %s: dossier lock taken back (it had vanished from Redis)", self.run_id)
            return bool(taken)
        except REDIS_OUTAGE:
            return True  # not known yet: the next beat decides

    def stop(self):
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
