"""Running an iterator on a background thread, a few items ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Prefetcher"]

T = TypeVar("T")


class Prefetcher(Iterator[T], Generic[T]):
    """Runs an iterator on a background thread, ``buffer_size`` items ahead.

    The producer thread stops when the source ends, raises, or :meth:`close` is called. An
    exception raised by the source is re-raised by ``next()`` in the consumer. Use as a context
    manager (or call :meth:`close`) to stop the thread early.

    Args:
      iterable: the items to produce (consumed on the background thread only).
      buffer_size: maximum number of items produced ahead of the consumer.
    """

    def __init__(self, iterable: Iterable[T], buffer_size: int = 2):
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self._queue: queue.Queue = queue.Queue(maxsize=buffer_size)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._produce, args=(iterable,), name="jaxface-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, message: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, iterable: Iterable[T]) -> None:
        it = iter(iterable)
        try:
            for item in it:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer.
            self._put(("error", err))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    @property
    def alive(self) -> bool:
        """Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return value
        self._finished = True
        self._thread.join()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self, timeout: float | None = 10.0) -> None:
        """Stops the producer thread and waits for it (up to ``timeout`` seconds)."""
        self._finished = True
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
