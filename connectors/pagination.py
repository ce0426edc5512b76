"""Paging styles as generators over a fetch callable.

Each generator yields the items of every page, stops on an empty page (or a missing
cursor / next link), and refuses to run for ever: more than ``max_pages`` pages, a cursor
or link seen before, or the same page twice in a row raise :class:`DataError`
("... seems to loop") so a misbehaving API fails the run instead of hanging a worker.
"""
from connectors.base import DataError

MAX_PAGES = 100_000


def _looping(package):
    return DataError(f"{package} keeps sending the same pages: the list seems to loop. "
                     "The sync stopped so nothing incomplete is saved.")


def _capped(package, max_pages):
    return DataError(f"{package} sent more than {max_pages} pages: the list seems to loop. "
                     "The sync stopped so nothing incomplete is saved.")


def page_numbers(fetch, *, start=1, page_size=None, max_pages=MAX_PAGES, package="The package"):
    """``fetch(page) -> items``; pages ``start, start+1, ...`` until an empty (or short) page."""
    previous = None
    for count, page in enumerate(range(start, start + max_pages + 1)):
        if count == max_pages:
            raise _capped(package, max_pages)
        items = list(fetch(page))
        if not items:
            return
        if previous is not None and items == previous:
            raise _looping(package)
        yield from items
        if page_size and len(items) < page_size:
            return
        previous = items


def offsets(fetch, *, page_size, start=0, max_pages=MAX_PAGES, package="The package"):
    """``fetch(offset, limit) -> items``; stops on an empty page or one shorter than ``page_size``."""
    previous = None
    offset = start
    for _ in range(max_pages):
        items = list(fetch(offset, page_size))
        if not items:
            return
        if previous is not None and items == previous:
            raise _looping(package)
        yield from items
        if len(items) < page_size:
            return
        offset += len(items)
        previous = items
    raise _capped(package, max_pages)


def cursor(fetch, *, start=None, max_pages=MAX_PAGES, package="The package"):
    """``fetch(cursor) -> (items, next_cursor)``; stops when there are no items or no next cursor."""
    seen = set()
    current = start
    for _ in range(max_pages):
        items, following = fetch(current)
        items = list(items)
        yield from items
        if not items or not following:
            return
        if following in seen or following == current:
            raise _looping(package)
        seen.add(following)
        current = following
    raise _capped(package, max_pages)


def next_link(fetch, first_url, *, max_pages=MAX_PAGES, package="The package"):
    """``fetch(url) -> (items, next_url)``; follows continuation URLs until there is none."""
    return cursor(fetch, start=first_url, max_pages=max_pages, package=package)
