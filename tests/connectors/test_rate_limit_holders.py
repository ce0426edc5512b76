"""Leases taken under a holder's name (a sync run) and freed when that holder died
(:meth:`connectors.rate_limit.RateLimiter.release_holder`), on the real test Redis."""
from connectors.base import RateBudget
from connectors.rate_limit import RateLimiter

ONE_AT_A_TIME = RateBudget(per_minute=100, per_day=1000, concurrency=1)
NO_CAP = RateBudget(per_minute=100)


def test_release_holder_frees_only_that_holders_slots_and_keeps_the_counts(redis_db):
    dead = RateLimiter(redis_db, holder="sync-run-7")
    alive = RateLimiter(redis_db, holder="sync-run-70")  # a name starting like the dead one's
    anonymous = RateLimiter(redis_db)
    assert dead.acquire("pkg", "t1", ONE_AT_A_TIME).granted
    assert dead.acquire_all("pkg", [("t2", ONE_AT_A_TIME), ("t2-key", RateBudget(per_minute=5, concurrency=2))]).granted
    kept = [alive.acquire("pkg", "t3", ONE_AT_A_TIME), anonymous.acquire("pkg", "t4", ONE_AT_A_TIME)]
    assert all(permit.granted for permit in kept)
    assert not anonymous.acquire("pkg", "t1", ONE_AT_A_TIME).granted

    assert anonymous.release_holder("sync-run-7") == 3
    assert anonymous.acquire("pkg", "t1", ONE_AT_A_TIME).granted and anonymous.acquire("pkg", "t2", ONE_AT_A_TIME).granted
    for scope in ("t3", "t4"):
        assert anonymous.usage("pkg", scope, ONE_AT_A_TIME)["in_flight"] == 1
    usage = anonymous.usage("pkg", "t1", ONE_AT_A_TIME)
    assert usage["window"] == 2 and usage["day"] == 2  # the package counted the dead call: it still counts
    assert anonymous.release_holder("sync-run-7") == 0  # nothing left: harmless to call again


def test_a_holder_without_concurrency_budgets_notes_nothing(redis_db):
    limiter = RateLimiter(redis_db, holder="sync-run-8")
    permit = limiter.acquire("pkg", "t1", NO_CAP)
    assert permit.granted and permit.lease.startswith("sync-run-8/")
    assert not redis_db.exists("firmsync:rate:holder:sync-run-8")
    limiter.release(permit)
    assert limiter.release_holder("sync-run-8") == 0
