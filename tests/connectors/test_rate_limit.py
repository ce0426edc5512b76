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
