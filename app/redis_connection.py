"""The application's Redis connections (queues, locks, rate-limit budgets, login throttling).

Two clients on the same ``REDIS_URL``, because a web request and a worker want opposite
things from a Redis that stops answering (docs/operations.md, "Timeouts"):

* the **web** client (:func:`web_redis`) gives up after ``WEB_REDIS_TIMEOUT_SECONDS`` (to
  connect, and to answer) and retries a refused connection once, at once: a page or a login
  never hangs on a frozen Redis, it degrades (the login throttle lets the attempt through,
  "sync now" leaves the run queued in the database for the reaper);
* the **job** client (:func:`job_redis`) retries connection errors and timeouts with
  exponential backoff for about ``JOB_REDIS_OUTAGE_SECONDS``, and checks a connection that
  sat idle for ``JOB_REDIS_HEALTH_CHECK_SECONDS`` before using it: a worker busy with a sync
  rides out a Redis restart. RQ raises its socket timeout above its blocking dequeue itself.

:func:`redis_connection` answers the web client while answering a web request and the job
client everywhere else (workers, cron, commands). No connection is opened at start.
"""
from flask import current_app
from redis import Redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from app.extensions import in_web_request

#: the job client (kept under the historical key: everything outside a request uses it)
EXTENSION_KEY = "firmsync.redis"
WEB_EXTENSION_KEY = "firmsync.redis.web"
#: the errors that mean "Redis is unreachable or too slow right now" (a restart, a blip)
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError)
#: the job client's backoff: 0.25 s, 0.5 s, 1 s ... then every BACKOFF_CAP_SECONDS
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 10


def init_redis(app):
    """Create the (lazy) web and job clients for ``REDIS_URL``; no connection is opened here."""
    app.extensions[WEB_EXTENSION_KEY] = web_client(app.config)
    app.extensions[EXTENSION_KEY] = job_client(app.config)


def web_client(config):
    """A client for web requests: short connect and answer timeouts, one immediate retry."""
    timeout = float(config["WEB_REDIS_TIMEOUT_SECONDS"])
    return Redis.from_url(config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout,
                          retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))


def job_client(config):
    """A client for workers and commands: exponential backoff over about ``JOB_REDIS_OUTAGE_SECONDS``."""
    return Redis.from_url(
        config["REDIS_URL"], socket_connect_timeout=5, socket_keepalive=True,
        health_check_interval=int(float(config["JOB_REDIS_HEALTH_CHECK_SECONDS"])),
        retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=BACKOFF_BASE_SECONDS),
                    retries_for(float(config["JOB_REDIS_OUTAGE_SECONDS"])),
                    supported_errors=OUTAGE_ERRORS),
    )


def retries_for(seconds):
    """How many backoff steps (see :data:`BACKOFF_BASE_SECONDS`) add up to ``seconds``."""
    waited, retries = 0.0, 0
    while waited < seconds:
        waited += min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries)
        retries += 1
    return retries


def web_redis():
    """The current application's web client (short timeouts)."""
    return current_app.extensions[WEB_EXTENSION_KEY]


def job_redis():
    """The current application's job client (rides out outages)."""
    return current_app.extensions[EXTENSION_KEY]


def redis_connection():
    """The Redis client for the current context: the web client while answering a web request
    (:func:`app.extensions.in_web_request`), else the job client."""
    return web_redis() if in_web_request() else job_redis()
