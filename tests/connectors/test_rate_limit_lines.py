"""Waiting in line for a window's slots (:mod:`connectors.rate_limit`), on the real test Redis:
each waiter is told when *its* slot comes free, a holder that waited keeps its place, people's
runs go first, and a waiter that does not come back loses its place."""
import time
from datetime import datetime, timedelta, timezone

import pytest

from connectors.base import RateBudget
from connectors.rate_limit import RateLimiter

TWO_A_MINUTE = RateBudget(per_minute=2, window_seconds=60)
ONE_A_SECOND = RateBudget(per_minute=1, window_seconds=1)


def run(redis_db, n, rank=1, grace=10.0):
    """A limiter as sync run ``n`` of queue rank ``rank`` uses it."""
    return RateLimiter(redis_db, holder=f"sync-run-{n}", rank=rank, line_grace_seconds=grace)


def test_each_waiter_is_told_when_its_own_slot_comes_free(redis_db):
    first = run(redis_db, 1)
    assert first.acquire("pkg", "org", TWO_A_MINUTE).granted and first.acquire("pkg", "org", TWO_A_MINUTE).granted
    waits = [run(redis_db, n).acquire("pkg", "org", TWO_A_MINUTE).wait for n in range(2, 7)]
    # two slots a minute: the 1st and 2nd waiter in the next minute, the 3rd and 4th in the one
    # after, the 5th in the third (each waiter ahead taking one slot)
    assert [round(wait / 60) for wait in waits] == [1, 1, 2, 2, 3]
    assert all(55 < wait - 60 * (round(wait / 60) - 1) <= 60 for wait in waits)
    # asking again does not move a waiter back: its ticket keeps its place
    assert round(run(redis_db, 3).acquire("pkg", "org", TWO_A_MINUTE).wait / 60) == 1


def test_a_granted_waiter_leaves_the_line(redis_db):
    assert run(redis_db, 1).acquire("pkg", "org", ONE_A_SECOND).granted
    waiter = run(redis_db, 2)
    refused = waiter.acquire("pkg", "org", ONE_A_SECOND)
    assert not refused.granted
    time.sleep(refused.wait + 0.05)  # the window moves on: a slot is free
    assert waiter.acquire("pkg", "org", ONE_A_SECOND).granted
    # nobody is ahead of the next caller: its slot is the first to come free, within the second
    assert 0 < run(redis_db, 3).acquire("pkg", "org", ONE_A_SECOND).wait <= 1.0


def test_a_free_slot_goes_to_whoever_asks_first(redis_db):
    # the line orders the waits; it never holds a free slot back for a waiter on its way
    assert run(redis_db, 1).acquire("pkg", "org", ONE_A_SECOND).granted
    refused = run(redis_db, 2).acquire("pkg", "org", ONE_A_SECOND)
    time.sleep(refused.wait + 0.05)
    assert run(redis_db, 3).acquire("pkg", "org", ONE_A_SECOND).granted


def test_a_waiter_that_does_not_come_back_loses_its_place(redis_db):
    assert run(redis_db, 1).acquire("pkg", "org", ONE_A_SECOND).granted
    refused = run(redis_db, 2, grace=0.2).acquire("pkg", "org", ONE_A_SECOND)
    assert not refused.granted
    time.sleep(refused.wait + 0.3)  # past its wait and its grace: run 2 never came back
    assert run(redis_db, 3).acquire("pkg", "org", ONE_A_SECOND).granted
    # run 2 is no longer ahead of the next waiter: its slot is the first to come free
    assert 0 < run(redis_db, 4).acquire("pkg", "org", ONE_A_SECOND).wait <= 1.0


def test_a_person_s_run_goes_ahead_of_the_night_s_waiters(redis_db):
    assert run(redis_db, 1).acquire("pkg", "org", TWO_A_MINUTE).granted
    assert run(redis_db, 1).acquire("pkg", "org", TWO_A_MINUTE).granted
    for n in (2, 3, 4):  # three nightly waiters: the 3rd waits two minutes
        assert not run(redis_db, n).acquire("pkg", "org", TWO_A_MINUTE).granted
    sync_now = run(redis_db, 9, rank=0).acquire("pkg", "org", TWO_A_MINUTE)
    assert round(sync_now.wait / 60) == 1  # first in line although it came last
    # and the nightly waiters behind it are pushed back one slot: the 2nd now waits two minutes
    assert round(run(redis_db, 3).acquire("pkg", "org", TWO_A_MINUTE).wait / 60) == 2
    # a first sync (rank 2) waits behind all of them
    assert round(run(redis_db, 10, rank=2).acquire("pkg", "org", TWO_A_MINUTE).wait / 60) == 3


def test_a_run_stands_only_in_the_line_of_the_budget_that_holds_it_up(redis_db):
    organisation = RateBudget(per_minute=1, window_seconds=60)
    connection = RateBudget(per_minute=10, window_seconds=60)
    assert run(redis_db, 1).acquire_all("pkg", [("org-a", organisation), ("conn", connection)]).granted
    held = run(redis_db, 2).acquire_all("pkg", [("org-a", organisation), ("conn", connection)])
    assert not held.granted and held.wait > 50
    # run 2 waits for organisation A only: the connection's free slots still go to others
    assert run(redis_db, 3).acquire_all("pkg", [("org-b", organisation), ("conn", connection)]).granted
    assert redis_db.zcard("firmsync:rate:pkg:org-a:line") == 1
    assert not redis_db.exists("firmsync:rate:pkg:conn:line")


@pytest.mark.parametrize("budget", [RateBudget(per_minute=1, per_day=1, window_seconds=60),
                                    RateBudget(per_minute=1, window_seconds=86400)],
                         ids=["day's count spent", "window of a day"])
def test_nobody_stands_in_line_for_a_day(redis_db, budget):
    # a day's count resets at midnight UTC: late in the day the wait is shorter than an hour
    now = datetime.now(timezone.utc)
    until_midnight = (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
                      - now).total_seconds()
    assert run(redis_db, 1).acquire("pkg", "org", budget).granted
    refused = run(redis_db, 2).acquire("pkg", "org", budget)
    assert not refused.granted and refused.wait >= min(3600, until_midnight - 1)
    assert not redis_db.exists("firmsync:rate:pkg:org:line")


def test_a_caller_without_a_holder_never_stands_in_line(redis_db):
    assert run(redis_db, 1).acquire("pkg", "org", TWO_A_MINUTE).granted
    assert run(redis_db, 1).acquire("pkg", "org", TWO_A_MINUTE).granted
    assert not RateLimiter(redis_db).acquire("pkg", "org", TWO_A_MINUTE).granted
    assert not redis_db.exists("firmsync:rate:pkg:org:line")
    # so the next run is the first waiter: its slot is the first to come free
    assert round(run(redis_db, 2).acquire("pkg", "org", TWO_A_MINUTE).wait / 60) == 1


def test_a_sync_run_waits_under_its_name_at_its_queue_s_rank(redis_db):
    import types

    from app.services.queues import BACKFILL_QUEUE, NIGHTLY_QUEUE, PEOPLE_QUEUE, queue_rank
    from jobs.progress import hold_leases

    assert [queue_rank(name) for name in (PEOPLE_QUEUE, NIGHTLY_QUEUE, BACKFILL_QUEUE, None)] == [0, 1, 2, 1]
    http = types.SimpleNamespace(limiter=RateLimiter(redis_db))
    hold_leases(http, 7, queue_rank(PEOPLE_QUEUE))
    assert (http.limiter.holder, http.limiter.rank) == ("sync-run-7", 0)
