"""``python app.py`` and ``python -m assistant`` end a fault like the ingestion job does: one French sentence,
and the exit status of the fault (3 data folder not writable or disk full, 4 Chroma server unreachable, 2 anything
else expected)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import app
from assistant.cli import main as assistant_main
from ingest.cli import EXIT_STORAGE, EXIT_USAGE, EXIT_VECTOR_SERVER
from ingest.cli import main as ingest_main
from tests.test_faults import _run_unprivileged

pytestmark = pytest.mark.hostile


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch, tiny_corpus: Path) -> None:
    for key, value in {"ASSISTANT_EMBEDDER": "hash:256", "ASSISTANT_CORPUS_DIR": str(tiny_corpus),
                       "ASSISTANT_CHUNK_WORDS": "60", "ASSISTANT_CHUNK_OVERLAP_WORDS": "10"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ASSISTANT_CHROMA_MODE", raising=False)


def test_unreachable_chroma_server_exits_4(fake_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ASSISTANT_CHROMA_MODE", "http")
    monkeypatch.setenv("ASSISTANT_CHROMA_PORT", str(_closed_port()))
    assert app.main(["--db", str(tmp_path / "data"), "--port", str(_closed_port())]) == EXIT_VECTOR_SERVER
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("Erreur : Le serveur Chroma") and "injoignable" in err


def test_ask_with_an_unreachable_chroma_server_exits_4(fake_env: None, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ASSISTANT_CHROMA_PORT", str(_closed_port()))
    data = tmp_path / "data"
    assert ingest_main(["--db", str(data), "--quiet"]) == 0  # an index to point at, then its server is gone
    monkeypatch.setenv("ASSISTANT_CHROMA_MODE", "http")
    assert assistant_main(["ask", "--db", str(data), "Qu'est-ce qu'un catalyseur ?"]) == EXIT_VECTOR_SERVER
    assert "Le serveur Chroma" in capsys.readouterr().err


def test_a_bad_setting_still_exits_2(fake_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ASSISTANT_RETENTION_DAYS", "-3")
    assert app.main(["--db", str(tmp_path / "data")]) == EXIT_USAGE
    assert "ASSISTANT_RETENTION_DAYS" in capsys.readouterr().err


def test_first_start_on_a_read_only_folder_exits_3(shared_dir: Path) -> None:
    locked = shared_dir / "verrouille"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    home = shared_dir / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    # No index yet: the app indexes the (shipped) corpus first, and cannot create its data folder.
    done = _run_unprivileged(["app.py", "--db", str(locked / "data"), "--port", str(_closed_port())], home)
    assert done.returncode == EXIT_STORAGE, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Erreur : Le dossier de données") and "écriture" in last, done.stderr
