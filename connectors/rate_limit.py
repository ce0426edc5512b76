"""API budgets shared by every worker, kept in Redis (ARCHITECTURE section 6, step 3).

A budget (:class:`connectors.base.RateBudget`) is counted per ``(package, scope)``: the
scope is the value the budget is counted for (a tenant reference, a connection id, a hash
of an API key, or ``"server"``). A call may count against several budgets at once (Xero:
per organisation and per connection); :meth:`RateLimiter.acquire_all` checks all of them,
atomically in one Lua script and on the Redis server's clock, and counts the call against
all or none:

1. a *blocked-until* time set by :meth:`RateLimiter.block` when the package answered 429
   with ``Retry-After`` (so every worker of the same budget waits, not only the one that
   got the 429);
2. the per-day count (UTC day);
3. the per-window count (a sliding log: never more than ``per_minute`` calls in any
   ``window_seconds`` span);
4. the concurrency cap: a semaphore of leases that expire, so a killed worker does not
   keep its slot for ever (and :meth:`RateLimiter.release_holder` frees at once the slots of
   a holder, a sync run, known to be dead).

It answers a :class:`Permit`: either granted (``wait == 0``; pass it to
:meth:`RateLimiter.release` after the call, which frees the slots and re-stamps the
window entries with the time the answer came) or how long to wait before asking again
(the longest wait of the full budgets).
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
local lease = ARGV[1]
local poll_ms = tonumber(ARGV[2])
local count = math.floor(#KEYS / 4)

-- first every budget is checked; nothing is counted unless all of them have room
local wait, daily, concurrency_only = 0, 0, 1
for i = 0, count - 1 do
  local blocked_key, window_key, day_key, slots_key = KEYS[i*4+1], KEYS[i*4+2], KEYS[i*4+3], KEYS[i*4+4]
  local window_ms, per_window, per_day = tonumber(ARGV[i*5+3]), tonumber(ARGV[i*5+4]), tonumber(ARGV[i*5+5])
  local concurrency = tonumber(ARGV[i*5+6])
  local this_wait, is_daily, is_slot = 0, 0, 0
  local blocked = tonumber(redis.call('GET', blocked_key) or '0')
  if blocked > now then this_wait = blocked - now end
  if per_day > 0 then
    local used = tonumber(redis.call('GET', day_key) or '0')
    if used >= per_day then
      local day_ms = 86400000
      this_wait = math.max(this_wait, day_ms - (now % day_ms))
      is_daily = 1
    end
  end
  if per_window > 0 then
    redis.call('ZREMRANGEBYSCORE', window_key, '-inf', now - window_ms)
    if redis.call('ZCARD', window_key) >= per_window then
      local oldest = redis.call('ZRANGE', window_key, 0, 0, 'WITHSCORES')
      this_wait = math.max(this_wait, tonumber(oldest[2]) + window_ms - now, 1)
    end
  end
  if concurrency > 0 then
    redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now)
    if this_wait == 0 and redis.call('ZCARD', slots_key) >= concurrency then
      this_wait = poll_ms
      is_slot = 1
    end
  end
  if this_wait > 0 then
    if is_daily == 1 then daily = 1 end
    if is_slot == 0 then concurrency_only = 0 end
    wait = math.max(wait, this_wait)
  end
end
if wait > 0 then return {wait, daily, concurrency_only} end

-- then all of them are counted, under one lease id
for i = 0, count - 1 do
  local window_key, day_key, slots_key = KEYS[i*4+2], KEYS[i*4+3], KEYS[i*4+4]
  local window_ms, per_window, per_day = tonumber(ARGV[i*5+3]), tonumber(ARGV[i*5+4]), tonumber(ARGV[i*5+5])
  local concurrency, lease_ms = tonumber(ARGV[i*5+6]), tonumber(ARGV[i*5+7])
  if concurrency > 0 then
    redis.call('ZADD', slots_key, now + lease_ms, lease)
    redis.call('PEXPIRE', slots_key, lease_ms * 2)
  end
  if per_window > 0 then
    redis.call('ZADD', window_key, now, lease)
    redis.call('PEXPIRE', window_key, window_ms + lease_ms)
  end
  if per_day > 0 then
    redis.call('INCR', day_key)
    redis.call('EXPIRE', day_key, 90000)
  end
end
-- a holder's key (one more KEY after the budgets'): the slots keys its leases are in
if #KEYS % 4 == 1 then
  local holder_key, longest = KEYS[#KEYS], 0
  for i = 0, count - 1 do
    if tonumber(ARGV[i*5+6]) > 0 then
      redis.call('SADD', holder_key, KEYS[i*4+4])
      longest = math.max(longest, tonumber(ARGV[i*5+7]))
    end
  end
  if longest > 0 then redis.call('PEXPIRE', holder_key, longest * 2) end
end
return {0, 0, 0}
"""

#: after the call: free the concurrency slots and re-stamp the window entries with the
#: time the answer arrived (the request reached the package at the latest then), so the
#: package never sees more than the budget in any window even when a request was slow
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = ARGV[1]
for i = 1, #KEYS do
  local ttl_ms = tonumber(ARGV[i + 1])
  if ttl_ms == 0 then
    redis.call('ZREM', KEYS[i], lease)
  else
    redis.call('ZADD', KEYS[i], now, lease)
    redis.call('PEXPIRE', KEYS[i], ttl_ms)
  end
end
return 1
"""

#: free every concurrency slot whose lease starts with ARGV[1] (a holder's prefix) in the
#: slots keys KEYS[2..]; KEYS[1], the holder's list of those keys, goes too
_RELEASE_HOLDER = """
local prefix = ARGV[1]
local freed = 0
for i = 2, #KEYS do
  for _, lease in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    if string.sub(lease, 1, #prefix) == prefix then
      freed = freed + redis.call('ZREM', KEYS[i], lease)
    end
  end
end
redis.call('DEL', KEYS[1])
return freed
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
    """The limiter's answer for one call, covering every budget it counts against.

    ``wait`` is 0 when the call may go ahead (then pass the permit to
    :meth:`RateLimiter.release` after the call), else the seconds to wait before asking
    again: the longest wait of the budgets that are full. ``daily`` says a day's budget is
    spent; ``concurrency`` says only concurrency caps are full. ``held`` lists the
    ``(scope, budget)`` pairs the granted call was counted against, under ``lease``.
    """

    wait: float
    lease: str | None = None
    daily: bool = False
    concurrency: bool = False
    package: str = ""
    scope: str = ""
    held: tuple = ()

    @property
    def granted(self):
        return self.wait == 0


class RateLimiter:
    """Redis-backed budgets shared by every worker on every machine.

    ``redis`` is a redis-py client (``decode_responses`` either way). ``lease_seconds``
    bounds how long a concurrency slot is held when its worker dies without releasing it;
    it must exceed the longest request (the HTTP read timeout).

    ``holder`` (optional, may be set later) names who takes the slots (a sync run): its
    leases are then recognisable, and :meth:`release_holder` frees them at once when that
    holder is known to be dead, instead of letting them run out their ``lease_seconds``.
    """

    def __init__(self, redis, *, prefix="firmsync:rate", lease_seconds=90, holder=None):
        self.redis = redis
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self.holder = holder
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._release_holder = redis.register_script(_RELEASE_HOLDER)
        self._block = redis.register_script(_BLOCK)

    def _key(self, package, scope, part):
        return f"{self.prefix}:{package}:{scope}:{part}"

    def _holder_key(self, holder):
        return f"{self.prefix}:holder:{holder}"

    def _day_key(self, package, scope):
        return self._key(package, scope, "day:" + datetime.now(timezone.utc).strftime("%Y%m%d"))

    def acquire(self, package, scope, budget, *, lease_seconds=None) -> Permit:
        """Ask for one call under ``budget`` counted for ``scope``; never blocks. See :class:`Permit`."""
        return self.acquire_all(package, [(scope, budget)], lease_seconds=lease_seconds)

    def acquire_all(self, package, budgets, *, lease_seconds=None) -> Permit:
        """Ask for one call under every ``(scope, budget)`` of ``budgets``; never blocks.

        All or nothing, in one atomic script: the call is counted against every budget, or
        against none and the answer is the longest wait. No slot is ever held while
        waiting for another budget, so workers cannot deadlock or leak slots. Scopes must
        be distinct (two budgets counted for the same scope would share their counters).
        """
        held = tuple((str(scope), budget) for scope, budget in budgets)
        if len({scope for scope, _ in held}) != len(held):
            raise ValueError("each budget of a call needs its own scope")
        lease = f"{self.holder}/{uuid.uuid4().hex}" if self.holder else uuid.uuid4().hex
        lease_ms = int((lease_seconds or self.lease_seconds) * 1000)
        keys, args = [], [lease, int(CONCURRENCY_POLL_SECONDS * 1000)]
        for scope, budget in held:
            keys += [self._key(package, scope, "blocked"), self._key(package, scope, "window"),
                     self._day_key(package, scope), self._key(package, scope, "slots")]
            args += [int(budget.window_seconds * 1000), budget.per_minute or 0, budget.per_day or 0,
                     budget.concurrency or 0, lease_ms]
        if self.holder and any(budget.concurrency for _, budget in held):
            keys.append(self._holder_key(self.holder))  # noted with the lease, in the same script
        wait_ms, daily, concurrency = self._acquire(keys=keys, args=args)
        first = held[0][0] if held else ""
        if int(wait_ms) > 0:
            return Permit(wait=int(wait_ms) / 1000, daily=bool(daily), concurrency=bool(concurrency),
                          package=package, scope=first)
        return Permit(wait=0, lease=lease, package=package, scope=first, held=held)

    def release(self, permit: Permit):
        """After the call of a granted permit: give back its concurrency slots and count its
        window entries from now (when the answer arrived) rather than from the request."""
        if not permit.lease:
            return
        keys, ttls = [], []
        for scope, budget in permit.held:
            if budget.concurrency:
                keys.append(self._key(permit.package, scope, "slots"))
                ttls.append(0)
            if budget.per_minute:
                keys.append(self._key(permit.package, scope, "window"))
                ttls.append(int(budget.window_seconds * 1000) + 1000)
        if keys:
            self._release(keys=keys, args=[permit.lease, *ttls])

    def release_holder(self, holder):
        """Free every concurrency slot ``holder``'s leases still hold (in any package and
        scope). Only for a holder known to be dead: its requests ended with its process.
        Window and day counts stay: the package counted those calls. Returns how many slots
        were freed."""
        holder_key = self._holder_key(holder)
        slots_keys = sorted(self.redis.smembers(holder_key))
        return int(self._release_holder(keys=[holder_key, *slots_keys], args=[f"{holder}/"]))

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
