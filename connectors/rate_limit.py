"""API budgets shared by every worker, kept in Redis (ARCHITECTURE section 6, step 3).

A budget (:class:`connectors.base.RateBudget`) is counted per ``(package, scope)``: the
scope is the value the budget is counted for (a tenant reference, a connection id, a hash
of an API key, or ``"server"``). :meth:`RateLimiter.acquire` checks, atomically in one Lua
script and on the Redis server's clock:

1. a *blocked-until* time set by :meth:`RateLimiter.block` when the package answered 429
   with ``Retry-After`` (so every worker of the same budget waits, not only the one that
   got the 429);
2. the per-day count (UTC day);
3. the per-window count (a sliding log: never more than ``per_minute`` calls in any
   ``window_seconds`` span);
4. the concurrency cap: a semaphore of leases that expire, so a killed worker does not
   keep its slot for ever.

It answers a :class:`Permit`: either granted (``wait == 0``; pass it to
:meth:`RateLimiter.release` after the call) or how long to wait before asking again.
The caller decides whether to sleep (short waits) or defer the run (long waits).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

#: how long a caller should wait before asking again when only the concurrency cap is full
CONCURRENCY_POLL_SECONDS = 0.05

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window_ms = tonumber(ARGV[1])
local per_window = tonumber(ARGV[2])
local per_day = tonumber(ARGV[3])
local concurrency = tonumber(ARGV[4])
local lease_ms = tonumber(ARGV[5])
local lease = ARGV[6]
local poll_ms = tonumber(ARGV[7])

local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked > now then return {blocked - now, 0, 0} end

if per_day > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used >= per_day then
    local day_ms = 86400000
    return {day_ms - (now % day_ms), 1, 0}
  end
end

if per_window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window_ms)
  if redis.call('ZCARD', KEYS[2]) >= per_window then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {math.max(1, tonumber(oldest[2]) + window_ms - now), 0, 0}
  end
end

if concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  if redis.call('ZCARD', KEYS[4]) >= concurrency then
    return {poll_ms, 0, 1}
  end
  redis.call('ZADD', KEYS[4], now + lease_ms, lease)
  redis.call('PEXPIRE', KEYS[4], lease_ms * 2)
end

if per_window > 0 then
  redis.call('ZADD', KEYS[2], now, lease)
  redis.call('PEXPIRE', KEYS[2], window_ms + 1000)
end
if per_day > 0 then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 90000)
end
return {0, 0, 0}
"""

_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""


@dataclass(frozen=True)
class Permit:
    """The limiter's answer.

    ``wait`` is 0 when the call may go ahead (then ``lease`` must be released after the
    call), else the seconds to wait before asking again; ``daily`` says the day's budget
    is spent; ``concurrency`` says only the concurrency cap is full.
    """

    wait: float
    lease: str | None = None
    daily: bool = False
    concurrency: bool = False
    package: str = ""
    scope: str = ""

    @property
    def granted(self):
        return self.wait == 0


class RateLimiter:
    """Redis-backed budgets shared by every worker on every machine.

    ``redis`` is a redis-py client (``decode_responses`` either way). ``lease_seconds``
    bounds how long a concurrency slot is held when its worker dies without releasing it;
    it must exceed the longest request (the HTTP read timeout).
    """

    def __init__(self, redis, *, prefix="firmsync:rate", lease_seconds=90):
        self.redis = redis
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._block = redis.register_script(_BLOCK)

    def _key(self, package, scope, part):
        return f"{self.prefix}:{package}:{scope}:{part}"

    def _day_key(self, package, scope):
        return self._key(package, scope, "day:" + datetime.now(timezone.utc).strftime("%Y%m%d"))

    def acquire(self, package, scope, budget, *, lease_seconds=None) -> Permit:
        """Ask for one call under ``budget``; never blocks. See :class:`Permit`."""
        scope = str(scope)
        lease = uuid.uuid4().hex
        lease_ms = int((lease_seconds or self.lease_seconds) * 1000)
        wait_ms, daily, concurrency = self._acquire(
            keys=[
                self._key(package, scope, "blocked"),
                self._key(package, scope, "window"),
                self._day_key(package, scope),
                self._key(package, scope, "slots"),
            ],
            args=[
                int(budget.window_seconds * 1000),
                budget.per_minute or 0,
                budget.per_day or 0,
                budget.concurrency or 0,
                lease_ms,
                lease,
                int(CONCURRENCY_POLL_SECONDS * 1000),
            ],
        )
        if int(wait_ms) > 0:
            return Permit(wait=int(wait_ms) / 1000, daily=bool(daily), concurrency=bool(concurrency),
                          package=package, scope=scope)
        return Permit(wait=0, lease=lease if budget.concurrency else None, package=package, scope=scope)

    def release(self, permit: Permit):
        """Give back the concurrency slot of a granted permit (harmless when it had none)."""
        if permit.lease:
            self.redis.zrem(self._key(permit.package, permit.scope, "slots"), permit.lease)

    def block(self, package, scope, seconds):
        """Stop every caller of this budget for ``seconds`` (the package's ``Retry-After``)."""
        self._block(keys=[self._key(package, str(scope), "blocked")], args=[max(1, int(float(seconds) * 1000))])

    def usage(self, package, scope, budget):
        """``{"window": n, "day": n, "in_flight": n}`` right now (for status pages and tests)."""
        scope = str(scope)
        now = time.time() * 1000
        window_key = self._key(package, scope, "window")
        slots_key = self._key(package, scope, "slots")
        return {
            "window": self.redis.zcount(window_key, now - budget.window_seconds * 1000, "+inf"),
            "day": int(self.redis.get(self._day_key(package, scope)) or 0),
            "in_flight": self.redis.zcount(slots_key, now, "+inf"),
        }
