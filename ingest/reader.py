"""Reading ahead: the next files are loaded and split while the worker processes embed the current one.

Loading a file runs in its own child process (:func:`ingest.load.load_file`), so one thread here is
enough: it waits on that child and splits its pages while the main thread waits on the embedding pool.
Files are read one at a time, in the given order; each result (or exception) lands in its future.
The thread is a daemon and checks a stop flag between files, so an interrupted run does not wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class ReadAhead(Generic[In, Out]):
    """``read(item)`` for every item, in order, in one background thread started at construction."""

    def __init__(self, items: Sequence[In], read: Callable[[In], Out]) -> None:
        self.futures: list[Future[Out]] = [Future() for _ in items]
        self._stop = threading.Event()
        self._items, self._read = list(items), read
        self._thread = threading.Thread(target=self._run, daemon=True, name="ingest-read-ahead")
        if self._items:
            self._thread.start()

    def _run(self) -> None:
        for item, future in zip(self._items, self.futures, strict=True):
            if self._stop.is_set() or not future.set_running_or_notify_cancel():
                break
            try:
                future.set_result(self._read(item))
            except BaseException as exc:  # handed to the thread that asks for this file
                future.set_exception(exc)

    def stop(self) -> None:
        """Read no further file (the one being read finishes on its own, within its time cap)."""
        self._stop.set()
        for future in self.futures:
            future.cancel()
