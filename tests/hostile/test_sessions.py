"""The app keeps at most ``ASSISTANT_MAX_SESSIONS`` sessions in memory: Gradio copies the page's configuration
for each (about 120 KB), and kept 10,000 by default, so memory grew with every new client."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client

import app as webapp
from ingest.index import run_ingest
from tests.appserver import app_settings, serve
from tests.conftest import write_tiny_corpus

pytestmark = pytest.mark.hostile


def test_sessions_kept_in_memory_are_bounded(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, write_tiny_corpus(tmp_path / "corpus"), max_sessions=10)
    run_ingest(settings, progress=False)
    built = webapp.build_app(settings)
    holder = webapp._gradio_app(built).state_holder
    with serve(built) as url:
        client = Client(url, verbose=False, download_files=False)
        for n in range(15):
            client.session_hash = f"session-{n:02d}"  # a new client each time
            assert client.predict(question="Qu'est-ce qu'un catalyseur territorial ?", api_name="/ask")["answer"]
        assert len(holder.session_data) <= 10
        assert "session-14" in holder.session_data and "session-00" not in holder.session_data
