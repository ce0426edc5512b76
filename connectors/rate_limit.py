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
   ``window_seconds`` span). When a window is full, the callers waiting for it are told
   their waits **in line**: a holder (a sync run) that had to wait stands in the window's
   line under a ticket (its queue's rank, then the order of its first wait; kept for all its
   attempts), and its wait is the time the slot it will get comes free, each waiter ahead
   taking one. So the runs of a busy organisation come back one after another instead of
   all at the same second to find one slot. The line only orders the waits: a free slot
   goes to whoever asks first (holding one back for a waiter on its way was measured to
   cost more than it saved). A waiter leaves the line when granted a call (keeping its
   ticket) or ``line_grace_seconds`` after its wait ended without it coming back. Windows
   of a day or more have no line;
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
#: a holder's place in the lines is kept this long after its first wait (a first sync
#: spread over several days keeps it)
TICKET_SECONDS = 7 * 86400
#: how long after the end of its wait a holder keeps its place in a line without coming back
LINE_GRACE_SECONDS = 10.0
#: windows this long or longer (an endpoint's reads a day) have no line: their waits defer
#: the run to another day, and a place held that long would only keep others out
LINED_WINDOW_SECONDS = 86400
#: the rank of a holder that says none (the nightly queue's: ``SYNC_QUEUES.index``)
DEFAULT_RANK = 1

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder_key, ticket_key, counter_key = KEYS[1], KEYS[2], KEYS[3]
local lease, poll_ms, holder = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local rank, grace_ms, ticket_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local RANK = 1099511627776  -- 2^40 tickets a rank: a ticket is rank * RANK + a global count
local count = math.floor((#KEYS - 3) / 6)

-- the caller's ticket (its place in every line, kept across its attempts), or none yet
local ticket = nil
if holder ~= '' then
  local kept = redis.call('GET', ticket_key)
  if kept then ticket = tonumber(kept) end
end

-- first every budget is checked; nothing is counted unless all of them have room
local wait, daily, concurrency_only = 0, 0, 1
local held_up = {}
for i = 0, count - 1 do
  local k, a = 3 + i * 6, 6 + i * 6
  local blocked_key, window_key, day_key, slots_key = KEYS[k+1], KEYS[k+2], KEYS[k+3], KEYS[k+4]
  local line_key, leave_key = KEYS[k+5], KEYS[k+6]
  local window_ms, per_window, per_day = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3])
  local concurrency, lined = tonumber(ARGV[a+4]), tonumber(ARGV[a+6])
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
      -- the window is full: the caller's slot is the (ahead + 1)-th to come free, each
      -- waiter ahead in the line taking one (a free slot is never held back for a waiter)
      local ahead = 0
      if lined == 1 then
        -- waiters who did not come back by the end of their wait and grace leave the line
        for _, gone in ipairs(redis.call('ZRANGEBYSCORE', leave_key, '-inf', now)) do
          redis.call('ZREM', line_key, gone)
          redis.call('ZREM', leave_key, gone)
        end
        local before = string.format('(%.0f', ticket or (rank + 1) * RANK)
        ahead = redis.call('ZCOUNT', line_key, '-inf', before)
        held_up[i] = true
      end
      local cycles, index = math.floor(ahead / per_window), ahead % per_window
      local entry = redis.call('ZRANGE', window_key, index, index, 'WITHSCORES')
      this_wait = math.max(this_wait, tonumber(entry[2]) + (cycles + 1) * window_ms - now, 1)
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

if wait > 0 then
  -- a holder stands in the lines of the windows that hold it up (not for a day's budget),
  -- under its ticket, until the end of its wait and grace; it leaves the lines it could pass
  if holder ~= '' and daily == 0 then
    if ticket == nil and next(held_up) ~= nil then
      ticket = rank * RANK + redis.call('INCR', counter_key)
      redis.call('SET', ticket_key, string.format('%.0f', ticket), 'PX', ticket_ms)
    end
    if ticket then
      local place = string.format('%.0f', ticket)
      for i = 0, count - 1 do
        local k, a = 3 + i * 6, 6 + i * 6
        local line_key, leave_key = KEYS[k+5], KEYS[k+6]
        if held_up[i] then
          local ttl = wait + grace_ms + tonumber(ARGV[a+1])
          redis.call('ZADD', line_key, place, holder)
          redis.call('ZADD', leave_key, now + wait + grace_ms, holder)
          redis.call('PEXPIRE', line_key, ttl)
          redis.call('PEXPIRE', leave_key, ttl)
        elseif tonumber(ARGV[a+6]) == 1 then
          redis.call('ZREM', line_key, holder)
          redis.call('ZREM', leave_key, holder)
        end
      end
    end
  end
  return {wait, daily, concurrency_only}
end

-- then all of them are counted, under one lease id; the caller leaves their lines (its
-- ticket stays: its next call is still ahead of those who came after it)
local longest = 0
for i = 0, count - 1 do
  local k, a = 3 + i * 6, 6 + i * 6
  local window_key, day_key, slots_key = KEYS[k+2], KEYS[k+3], KEYS[k+4]
  local window_ms, per_window, per_day = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3])
  local concurrency, lease_ms = tonumber(ARGV[a+4]), tonumber(ARGV[a+5])
  if concurrency > 0 then
    redis.call('ZADD', slots_key, now + lease_ms, lease)
    redis.call('PEXPIRE', slots_key, lease_ms * 2)
    if holder ~= '' then
      -- the holder's key: the slots keys its leases are in (release_holder)
      redis.call('SADD', holder_key, slots_key)
      longest = math.max(longest, lease_ms)
    end
  end
  if per_window > 0 then
    redis.call('ZADD', window_key, now, lease)
    redis.call('PEXPIRE', window_key, window_ms + lease_ms)
  end
  if per_day > 0 then
    redis.call('INCR', day_key)
    redis.call('EXPIRE', day_key, 90000)
  end
  if ticket and tonumber(ARGV[a+6]) == 1 then
    redis.call('ZREM', KEYS[k+5], holder)
    redis.call('ZREM', KEYS[k+6], holder)
  end
end
if longest > 0 then redis.call('PEXPIRE', holder_key, longest * 2) end
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
    Only a holder stands in the windows' lines; ``rank`` (its queue's place in
    ``SYNC_QUEUES``: a person's "sync now" 0, the night 1, first syncs 2) puts it ahead of
    every waiter of a later rank. A caller without a holder waits behind every waiter of its
    rank or better.
    """

    def __init__(self, redis, *, prefix="firmsync:rate", lease_seconds=90, holder=None, rank=DEFAULT_RANK,
                 line_grace_seconds=LINE_GRACE_SECONDS):
        self.redis = redis
        self.prefix = prefix
        self.lease_seconds = lease_seconds
        self.holder = holder
        self.rank = rank
        self.line_grace_seconds = line_grace_seconds
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
        waiting for another budget, so workers cannot deadlock or leak slots: a holder
        stands only in the lines of the windows that hold it up, and the oldest ticket is
        first in every line it stands in. Scopes must be distinct (two budgets counted for
        the same scope would share their counters).
        """
        held = tuple((str(scope), budget) for scope, budget in budgets)
        if len({scope for scope, _ in held}) != len(held):
            raise ValueError("each budget of a call needs its own scope")
        lease = f"{self.holder}/{uuid.uuid4().hex}" if self.holder else uuid.uuid4().hex
        lease_ms = int((lease_seconds or self.lease_seconds) * 1000)
        holder = self.holder or ""
        keys = [self._holder_key(holder or "-"), self._key("line", "ticket", holder or "-"),
                self._key("line", "tickets", "count")]
        args = [lease, int(CONCURRENCY_POLL_SECONDS * 1000), holder, int(self.rank),
                int(self.line_grace_seconds * 1000), TICKET_SECONDS * 1000]
        for scope, budget in held:
            keys += [self._key(package, scope, "blocked"), self._key(package, scope, "window"),
                     self._day_key(package, scope), self._key(package, scope, "slots"),
                     self._key(package, scope, "line"), self._key(package, scope, "line-leaves")]
            args += [int(budget.window_seconds * 1000), budget.per_minute or 0, budget.per_day or 0,
                     budget.concurrency or 0, lease_ms, int(budget.window_seconds < LINED_WINDOW_SECONDS)]
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
