"""Paging generators: they stop, and they refuse to loop."""
import pytest

from connectors import pagination
from connectors.base import DataError


def test_page_numbers_stop_on_empty_and_short_pages():
    pages = {1: [1, 2], 2: [3, 4], 3: []}
    calls = []
    assert list(pagination.page_numbers(lambda p: calls.append(p) or pages[p])) == [1, 2, 3, 4]
    assert calls == [1, 2, 3]
    calls.clear()
    pages = {1: [1, 2], 2: [3]}
    assert list(pagination.page_numbers(lambda p: calls.append(p) or pages[p], page_size=2)) == [1, 2, 3]
    assert calls == [1, 2]


def test_page_numbers_detect_an_api_ignoring_the_page():
    with pytest.raises(DataError, match="seems to loop"):
        list(pagination.page_numbers(lambda p: [1, 2], package="Xero"))


def test_offsets():
    data = list(range(7))
    assert list(pagination.offsets(lambda o, n: data[o:o + n], page_size=3)) == data


def test_cursor_follows_and_detects_repeats():
    pages = {None: ([1], "a"), "a": ([2], "b"), "b": ([3], None)}
    assert list(pagination.cursor(lambda c: pages[c])) == [1, 2, 3]
    looping = {None: ([1], "a"), "a": ([2], "b"), "b": ([3], "a")}
    with pytest.raises(DataError, match="Exact Online.*seems to loop"):
        list(pagination.cursor(lambda c: looping[c], package="Exact Online"))


def test_cursor_stops_on_an_empty_page_even_with_a_cursor():
    assert list(pagination.cursor(lambda c: ([], "again"))) == []


def test_hard_cap_on_pages():
    with pytest.raises(DataError, match="more than 5 pages"):
        list(pagination.cursor(lambda c: ([c or 0], (c or 0) + 1), max_pages=5))
    with pytest.raises(DataError, match="more than 3 pages"):
        list(pagination.page_numbers(lambda p: [p], max_pages=3))


def test_next_link():
    pages = {"u1": (["a"], "u2"), "u2": (["b"], "")}
    assert list(pagination.next_link(lambda u: pages[u], "u1")) == ["a", "b"]


def test_scrubbing_lives_in_connectors_and_app_reexports_it():
    from app import secret_scrubbing
    from connectors import scrubbing

    assert secret_scrubbing.scrub_text is scrubbing.scrub_text
    assert secret_scrubbing.secret_values is scrubbing.secret_values
    assert scrubbing.scrub_text("token=abc123 and s3cr3tvalue", ["s3cr3tvalue"]) == "token=*** and ***"
