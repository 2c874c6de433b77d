"""The background-thread prefetcher under the device batches."""

import threading
import time

import pytest

from jaxface.data.prefetch import Prefetcher


def test_prefetcher_yields_in_order_and_stops_cleanly():
    with Prefetcher(range(10), buffer_size=3) as it:
        assert list(it) == list(range(10))
    assert not it.alive
    with pytest.raises(StopIteration):
        next(it)
    with pytest.raises(ValueError, match="buffer_size must be >= 1"):
        Prefetcher(range(3), buffer_size=0)


def test_prefetcher_propagates_errors():
    def items():
        yield 1
        yield 2
        raise RuntimeError("reader broke at item 3")

    it = Prefetcher(items(), buffer_size=1)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(RuntimeError, match="reader broke at item 3"):
        next(it)
    assert not it.alive


def test_prefetcher_close_stops_a_blocked_producer():
    produced = []
    finalized = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            finalized.set()

    it = Prefetcher(endless(), buffer_size=2)
    assert next(it) == 0
    time.sleep(0.1)
    assert len(produced) <= 4  # Bounded read-ahead: 1 taken + 2 queued + 1 waiting.
    it.close(timeout=5)
    assert not it.alive
    assert finalized.is_set()  # The source generator was closed on its own thread.
    with pytest.raises(StopIteration):
        next(it)
