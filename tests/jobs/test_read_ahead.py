"""jobs.read_ahead: order, errors, back-pressure and early stop of the reader thread."""
import threading

import pytest
from flask import current_app

from jobs.read_ahead import read_ahead


def test_records_arrive_in_order_across_chunks():
    assert list(read_ahead(lambda: iter(range(1234)), chunk_size=100, depth=2)) == list(range(1234))


def test_depth_zero_reads_in_the_calling_thread():
    threads = []

    def records():
        threads.append(threading.current_thread())
        yield 1

    assert list(read_ahead(records, depth=0)) == [1]
    assert threads == [threading.current_thread()]


def test_a_connector_error_arrives_after_the_records_before_it():
    def records():
        yield from range(7)
        raise LookupError("page 3 was malformed")

    seen = []
    with pytest.raises(LookupError, match="page 3 was malformed"):
        for record in read_ahead(records, chunk_size=5, depth=2):
            seen.append(record)
    assert seen == list(range(7))


def test_the_reader_stays_at_most_depth_chunks_ahead():
    produced = []

    def records():
        for n in range(10_000):
            produced.append(n)
            yield n

    stream = read_ahead(records, chunk_size=10, depth=3)
    assert next(stream) == 0
    for _ in range(50):  # give the reader time to run ahead as far as it may
        threading.Event().wait(0.01)
    # one chunk being consumed + 3 queued + one being filled (blocked on put)
    assert len(produced) <= 10 * 5
    stream.close()


def test_stopping_early_closes_the_connector_generator_in_its_thread():
    closed = threading.Event()

    def records():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = read_ahead(records, chunk_size=10, depth=2)
    assert [next(stream) for _ in range(25)] == list(range(25))
    stream.close()  # the consumer gives up (writer error, cancellation)
    assert closed.wait(5)


def test_the_reader_runs_in_an_application_context(app):
    seen = []

    def records():
        seen.append(current_app.name)
        yield "x"

    assert list(read_ahead(records, app=app, depth=2)) == ["x"]
    assert seen == [app.name]
