"""The Redis rate limiter on the real test Redis: windows, days, concurrency, leases, blocks."""
import multiprocessing
import threading
import time

import pytest
from redis import Redis

from connectors.base import RateBudget, RateLimited
from connectors.http import HttpClient
from connectors.rate_limit import RateLimiter


def _grab(redis_url, budget, attempts, results):
    limiter = RateLimiter(Redis.from_url(redis_url))
    results.put(sum(1 for _ in range(attempts) if limiter.acquire("pkg", "t1", budget).granted))


def test_threads_never_exceed_the_window(redis_db):
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=7, window_seconds=60)
    granted = []

    def worker():
        granted.extend(1 for _ in range(10) if limiter.acquire("pkg", "t1", budget).granted)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 7
    refused = limiter.acquire("pkg", "t1", budget)
    assert not refused.granted and 0 < refused.wait <= 60 and not refused.daily
    assert limiter.acquire("pkg", "other-tenant", budget).granted


def test_processes_never_exceed_the_window(redis_db, redis_url):
    context = multiprocessing.get_context("spawn")
    budget = RateBudget(per_minute=9, window_seconds=60)
    results = context.Queue()
    processes = [context.Process(target=_grab, args=(redis_url, budget, 10, results)) for _ in range(3)]
    for process in processes:
        process.start()
    totals = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    assert sum(totals) == 9


def test_sliding_window_frees_up(redis_db):
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=2, window_seconds=1)
    assert limiter.acquire("pkg", "t", budget).granted and limiter.acquire("pkg", "t", budget).granted
    refused = limiter.acquire("pkg", "t", budget)
    assert not refused.granted
    time.sleep(refused.wait + 0.05)
    assert limiter.acquire("pkg", "t", budget).granted


def test_daily_budget_raises_rate_limited_daily(redis_db, requests_mock):
    requests_mock.get("https://api.example.test/x", json={})
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_day=3)
    client = HttpClient("Example Books", limiter=limiter, budget=budget, budget_key=("pkg", "t"),
                        sleep=lambda s: None)
    for _ in range(3):
        client.get_json("https://api.example.test/x")
    with pytest.raises(RateLimited) as caught:
        client.get_json("https://api.example.test/x")
    assert caught.value.daily and caught.value.retry_after > 0
    assert "daily" in caught.value.message and "Example Books" in caught.value.message
    assert requests_mock.call_count == 3
    assert limiter.usage("pkg", "t", budget)["day"] == 3


def test_concurrency_cap_holds_and_release_frees_a_slot(redis_db):
    limiter = RateLimiter(redis_db)
    budget = RateBudget(concurrency=2)
    first, second = limiter.acquire("pkg", "t", budget), limiter.acquire("pkg", "t", budget)
    assert first.granted and second.granted
    third = limiter.acquire("pkg", "t", budget)
    assert not third.granted and third.concurrency and third.wait < 1
    assert limiter.usage("pkg", "t", budget)["in_flight"] == 2
    limiter.release(first)
    assert limiter.acquire("pkg", "t", budget).granted


def test_concurrency_cap_across_threads(redis_db, requests_mock):
    budget = RateBudget(concurrency=2)
    limiter = RateLimiter(redis_db)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def respond(request, context):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.02)
        with lock:
            in_flight[0] -= 1
        return {}

    requests_mock.get("https://api.example.test/slow", json=respond)

    def worker():
        client = HttpClient("Example Books", limiter=limiter, budget=budget, budget_key=("pkg", "t"))
        for _ in range(3):
            client.get_json("https://api.example.test/slow")

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert requests_mock.call_count == 15
    assert peak[0] <= 2


def test_a_lease_of_a_dead_worker_expires(redis_db):
    limiter = RateLimiter(redis_db, lease_seconds=0.2)
    budget = RateBudget(concurrency=1)
    assert limiter.acquire("pkg", "t", budget).granted  # never released: the worker "died"
    assert not limiter.acquire("pkg", "t", budget).granted
    time.sleep(0.3)
    assert limiter.acquire("pkg", "t", budget).granted


def test_block_stops_every_caller_of_the_budget(redis_db, requests_mock):
    requests_mock.get("https://api.example.test/x", json={})
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=100)
    limiter.block("pkg", "t", 30)
    permit = limiter.acquire("pkg", "t", budget)
    assert not permit.granted and 25 < permit.wait <= 30
    client = HttpClient("Example Books", limiter=limiter, budget=budget, budget_key=("pkg", "t"))
    with pytest.raises(RateLimited) as caught:
        client.get("https://api.example.test/x")
    assert 25 < caught.value.retry_after <= 30 and not caught.value.daily
    assert requests_mock.call_count == 0


def test_short_waits_are_slept_not_raised(redis_db, requests_mock):
    requests_mock.get("https://api.example.test/x", json={})
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=1, window_seconds=1)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        time.sleep(seconds)

    client = HttpClient("Example Books", limiter=limiter, budget=budget, budget_key=("pkg", "t"), sleep=sleep)
    client.get("https://api.example.test/x")
    client.get("https://api.example.test/x")
    assert requests_mock.call_count == 2
    assert slept and all(0 < s <= 1 for s in slept)


def test_waiters_get_turns_one_slot_apart(redis_db):
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=2, window_seconds=60)
    assert limiter.acquire("pkg", "t", budget).granted and limiter.acquire("pkg", "t", budget).granted
    everyone = limiter.acquire("pkg", "t", budget).wait  # what a full budget tells every waiter
    turns = [limiter.reserve("pkg", [("t", budget)], f"run-{n}") for n in range(5)]
    assert turns[0] == pytest.approx(everyone, abs=1) and turns[1] == pytest.approx(everyone, abs=1)
    assert turns[2] == pytest.approx(everyone + 60, abs=1) and turns[3] == pytest.approx(everyone + 60, abs=1)
    assert turns[4] == pytest.approx(everyone + 120, abs=1)
    # asking again moves a waiter's promise, it does not queue it twice
    assert limiter.reserve("pkg", [("t", budget)], "run-4") == pytest.approx(turns[4], abs=1)
    assert limiter.reserve("pkg", [("t", budget)], "run-5") == pytest.approx(everyone + 120, abs=1)


def test_a_budget_with_room_gives_a_turn_now_and_promises_nothing(redis_db):
    limiter = RateLimiter(redis_db)
    budget = RateBudget(per_minute=2, window_seconds=60)
    assert limiter.acquire("pkg", "t", budget).granted
    assert limiter.reserve("pkg", [("t", budget)], "first") == 0
    assert not redis_db.exists("firmsync:rate:pkg:t:promised")
    assert limiter.acquire("pkg", "t", budget).granted
    assert limiter.reserve("pkg", [("t", budget)], "second") == pytest.approx(60, abs=1)


def test_a_turn_is_the_latest_of_the_full_budgets_and_promised_only_in_those(redis_db):
    limiter = RateLimiter(redis_db)
    tenant, connection = RateBudget(per_minute=1, window_seconds=60), RateBudget(per_minute=2, window_seconds=60)
    first, second = [("t1", tenant), ("c1", connection)], [("t2", tenant), ("c1", connection)]
    assert limiter.acquire_all("pkg", first).granted
    # the tenant's budget is full, the connection's has room: only the tenant's is a queue
    assert limiter.reserve("pkg", first, "a") == pytest.approx(60, abs=1)
    assert limiter.reserve("pkg", first, "b") == pytest.approx(120, abs=1)
    assert redis_db.zcard("firmsync:rate:pkg:t1:promised") == 2
    assert not redis_db.exists("firmsync:rate:pkg:c1:promised")
    # another tenant on the same connection is not queued behind them
    assert limiter.acquire_all("pkg", second).granted
    # now the connection is full too: the later of the two budgets' turns, promised in both
    assert limiter.reserve("pkg", [("t3", tenant), ("c1", connection)], "c") == pytest.approx(60, abs=1)
    assert limiter.reserve("pkg", first, "d") == pytest.approx(180, abs=1)
    assert redis_db.zcard("firmsync:rate:pkg:c1:promised") == 2
