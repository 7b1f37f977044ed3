"""Reading ahead: the next files are loaded, split and embedded while the main thread writes the current one.

Loading a file runs in its own child process (:func:`ingest.load.load_file`), so one thread here is
enough: it waits on that child and splits its pages. A second stage (:meth:`ReadAhead.then`), in its own
thread, hands each split file to the embedding pool as soon as it is ready: the workers embed file n+1
while the next files are read and while the main thread writes file n into Chroma.
Items are processed one at a time, in the given order; each result (or exception) lands in its future.
The threads are daemons and check a stop flag between items, so an interrupted run does not wait for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")
Next = TypeVar("Next")


class ReadAhead(Generic[In, Out]):
    """``read(item)`` for every item, in order, in one background thread started at construction."""

    def __init__(self, items: Sequence[In], read: Callable[[In], Out], *, name: str = "ingest-read-ahead",
                 upstream: ReadAhead[Any, Any] | None = None) -> None:
        self.futures: list[Future[Out]] = [Future() for _ in items]
        self._stop = threading.Event()
        self._items, self._read = list(items), read
        self._upstream = upstream
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        if self._items:
            self._thread.start()

    def _run(self) -> None:
        for item, future in zip(self._items, self.futures, strict=True):
            if self._stop.is_set() or not future.set_running_or_notify_cancel():
                break
            try:
                future.set_result(self._read(item))
            except BaseException as exc:  # handed to the thread that asks for this item
                future.set_exception(exc)

    def then(self, step: Callable[[Out], Next], *, name: str) -> ReadAhead[Future[Out], Next]:
        """A next stage, in its own thread: ``step`` on each result of this one, in order, as soon as it is
        ready (an exception of this stage passes through it); stopping it stops this one too."""
        return ReadAhead(self.futures, lambda future: step(future.result()), name=name, upstream=self)

    def stop(self) -> None:
        """Start no further item (the one in progress finishes on its own, within its time cap)."""
        self._stop.set()
        for future in self.futures:
            future.cancel()
        if self._upstream is not None:
            self._upstream.stop()
