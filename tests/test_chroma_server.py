"""The same ingestion and search through a real Chroma server (`chroma run`) on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from assistant import store
from assistant.retrieve import Retriever
from assistant.settings import Settings
from ingest.index import run_ingest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    exe = shutil.which("chroma")
    if exe is None:
        pytest.skip("la commande « chroma » (paquet chromadb) est introuvable")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("le serveur Chroma n'a pas démarré")
    yield port
    proc.terminate()
    proc.wait(10)


def test_http_mode_ingests_switches_generations_and_searches(settings: Settings, fake_embedder,  # type: ignore[no-untyped-def]
                                                             chroma_server: int) -> None:
    s = settings.with_overrides(chroma_mode="http", chroma_port=chroma_server)
    first = run_ingest(s, embedder=fake_embedder, progress=False)
    assert first.exit_code == 0 and first.passages > 5
    gen1 = store.current_generation(s.data_dir)
    assert gen1 is not None and not gen1.chroma_dir.exists()  # vectors live on the server
    retriever = Retriever(s, fake_embedder)
    assert retriever.search("missions des catalyseurs territoriaux").passages[0].source_path == "guide-alliances.pdf"

    (s.corpus_dir / "mooc.md").write_text("# MOOC\n\nUne formation gratuite sur les alliances locales.\n",
                                          encoding="utf-8")
    second = run_ingest(s, embedder=fake_embedder, progress=False)
    assert second.indexed == ["mooc.md"]
    result = retriever.search("formation gratuite sur les alliances")
    assert result.generation != gen1.name and "formation gratuite" in result.passages[0].text
