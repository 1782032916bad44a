"""Work handed to one background thread, so file decoding and encoding overlap the
numerical work on a second core.

libsndfile (through cffi) releases the GIL while it decodes or encodes, so a FLAC read
ahead in a thread, or written behind in one, costs the main thread almost nothing. The
order of results never changes, so nothing computed depends on the threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items`` in order, produced up to ``depth`` ahead in a thread.

    An exception raised while producing is raised here, at the item it replaced. Closing
    this generator (or leaving a ``for`` loop over it early) stops the thread and waits
    for it, so whatever ``items`` reads from can be closed safely afterwards; ``items``
    itself is closed by the thread that drove it.
    """
    out: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(entry: tuple[BaseException | None, Any]) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((None, item)):
                    return
            put((None, _DONE))
        except BaseException as err:  # handed to the consumer, raised there
            put((err, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="stratum-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            err, item = out.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class Behind:
    """Calls run in order on one background thread, at most ``pending`` waiting.

    :meth:`submit` returns at once unless ``pending`` calls are already waiting; an
    exception from a call is raised by the next :meth:`submit` or by :meth:`wait`.
    """

    def __init__(self, pending: int = 2, name: str = "stratum-writer"):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending = max(1, int(pending))
        self._futures: list[Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise_done()
        while len(self._futures) >= self._pending:
            self._futures.pop(0).result()
        self._futures.append(self._pool.submit(fn, *args))

    def _raise_done(self) -> None:
        while self._futures and self._futures[0].done():
            self._futures.pop(0).result()

    def wait(self) -> None:
        """Wait for every submitted call; raise the first exception among them."""
        try:
            while self._futures:
                self._futures.pop(0).result()
        finally:
            self._futures.clear()

    def close(self) -> None:
        """Wait for the calls still running (their exceptions dropped) and stop the thread."""
        for f in self._futures:
            f.exception()
        self._futures.clear()
        self._pool.shutdown(wait=True)
