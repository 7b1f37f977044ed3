"""A job killed mid-way leaves a generation folder never marked complete; the next run removes it even when
the corpus has not changed (it used to stay until a run that had something to build)."""

from __future__ import annotations

from typing import Any

import pytest

from assistant import store
from assistant.settings import Settings
from ingest.index import run_ingest

pytestmark = pytest.mark.hostile


def test_a_run_with_nothing_to_do_still_removes_an_unfinished_generation(settings: Settings,
                                                                        fake_embedder: Any) -> None:
    run_ingest(settings, embedder=fake_embedder, progress=False)
    served = store.current_generation(settings.data_dir)
    assert served is not None
    unfinished = store.generations_dir(settings.data_dir) / "20990101-000000-dead00"  # as a killed job leaves it
    (unfinished / "chroma").mkdir(parents=True)
    (unfinished / "chroma" / "chroma.sqlite3").write_bytes(b"\x00" * 128)
    report = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert report.indexed == [] and report.generation == served.name
    assert sorted(p.name for p in store.generations_dir(settings.data_dir).iterdir()) == [served.name]
    assert store.current_generation(settings.data_dir) == served
