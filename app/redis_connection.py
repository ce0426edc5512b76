"""The application's Redis connection (queues, locks, rate-limit budgets, login throttling)."""
from flask import current_app
from redis import Redis

EXTENSION_KEY = "firmsync.redis"


def init_redis(app):
    """Create the (lazy) Redis client for ``REDIS_URL``; no connection is opened here."""
    app.extensions[EXTENSION_KEY] = Redis.from_url(app.config["REDIS_URL"])


def redis_connection():
    """The Redis client of the current application."""
    return current_app.extensions[EXTENSION_KEY]
