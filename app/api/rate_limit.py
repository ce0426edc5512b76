"""Per-token rate limits in Redis: ``API_RATE_LIMIT`` calls per window of
``API_RATE_LIMIT_WINDOW_SECONDS``, the window starting at the token's first call in it.

Every answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds until the window ends); past the limit the API answers 429 with ``Retry-After``.
The counter lives in Redis, so every web process shares one budget per token.
"""
from flask import current_app

from app.redis_connection import redis_connection

DEFAULT_LIMIT = 600
DEFAULT_WINDOW = 60


def take(token_id):
    """Count one call of ``token_id``; return ``(allowed, headers)``."""
    limit = int(current_app.config.get("API_RATE_LIMIT", DEFAULT_LIMIT))
    window = int(current_app.config.get("API_RATE_LIMIT_WINDOW_SECONDS", DEFAULT_WINDOW))
    key = f"firmsync:api-rate:{int(token_id)}"
    redis = redis_connection()
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, window, nx=True)  # the first call of a window starts it
    pipe.ttl(key)
    used, _, reset = pipe.execute()
    reset = max(0, int(reset))
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - used)),
               "RateLimit-Reset": str(reset)}
    if used > limit:
        headers["Retry-After"] = str(max(1, reset))
        return False, headers
    return True, headers
