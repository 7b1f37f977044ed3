"""The read-ahead pipeline: stages in their own threads, in order, errors passed along, stop upstream."""

from __future__ import annotations

import threading

import pytest

from ingest.reader import ReadAhead


def test_a_next_stage_gets_each_result_in_order_and_passes_errors_along() -> None:
    def read(n: int) -> int:
        if n == 2:
            raise ValueError("illisible")
        return n * 10

    stage = ReadAhead([1, 2, 3], read).then(lambda x: x + 1, name="test-stage")
    assert stage.futures[0].result(timeout=10) == 11
    with pytest.raises(ValueError, match="illisible"):
        stage.futures[1].result(timeout=10)
    assert stage.futures[2].result(timeout=10) == 31


def test_stopping_the_last_stage_stops_the_first() -> None:
    started, release = threading.Event(), threading.Event()
    read_items: list[int] = []

    def read(n: int) -> int:
        read_items.append(n)
        started.set()
        release.wait(10)
        return n

    first = ReadAhead([1, 2, 3], read)
    last = first.then(lambda x: x, name="test-stage")
    assert started.wait(10)
    last.stop()
    release.set()
    first._thread.join(10)
    assert read_items == [1]  # the item in progress finished; no further one started
    assert all(f.cancelled() for f in first.futures[1:])
