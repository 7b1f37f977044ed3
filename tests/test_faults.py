"""Environment faults: a read-only or full data folder, an unreachable Chroma server, a missing or damaged
generation. Each ends in one French sentence and a distinct exit status, leaves nothing unfinished behind
and keeps the served index; an index on a read-only folder is still served.

How the faults are made: a real read-only folder needs a process that is not root (root writes through
``chmod``), so those tests run the command in a subprocess, as the ``nobody`` user through ``setpriv`` when
the tests run as root (skipped when that is not possible). A full disk cannot be made without a mount, so
it is simulated by making one write raise what the OS and SQLite raise (``ENOSPC``, « database or disk is
full »), at several steps of the job.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant import store
from assistant.answer import Assistant
from assistant.cli import main as assistant_main
from assistant.embeddings import CachedEmbeddings, HashEmbeddings
from assistant.feedback import FeedbackError, FeedbackStore
from assistant.settings import Settings
from ingest.cli import EXIT_STORAGE, EXIT_VECTOR_SERVER
from ingest.cli import main as ingest_main
from tests.conftest import ROOT, write_tiny_corpus

QUESTION = "Quelles sont les missions d'un catalyseur territorial ?"
NOBODY = 65534


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings ``python -m ingest`` reads: the fake embedder and the tests' passage size."""
    for key, value in {"ASSISTANT_EMBEDDER": "hash:256", "ASSISTANT_CHUNK_WORDS": "60",
                       "ASSISTANT_CHUNK_OVERLAP_WORDS": "10", "ASSISTANT_RELEVANCE_FLOOR": "0.05",
                       "ASSISTANT_UNCERTAIN_FLOOR": "0.05"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ASSISTANT_CHROMA_MODE", raising=False)


def _ingest(settings: Settings, *extra: str) -> int:
    return ingest_main(["--corpus", str(settings.corpus_dir), "--db", str(settings.data_dir), "--quiet", *extra])


def _state(data_dir: Path) -> tuple[str, list[str]]:
    """The current pointer and every generation folder."""
    return ((data_dir / store.POINTER).read_text(encoding="utf-8"),
            sorted(p.name for p in store.generations_dir(data_dir).iterdir()))


def _served(settings: Settings) -> str:
    """The name of the generation an assistant answers from, after answering a question with it."""
    assistant = Assistant(settings)
    answer = assistant.answer(QUESTION, [], mode="extractive")
    assert answer.citations, answer.text
    return assistant.retriever.load()


def _raise(exc: BaseException) -> Callable[..., None]:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise exc

    return fail


@pytest.mark.parametrize(("target", "exc", "words"), [
    # Step 2 cannot even create the generation folder: a read-only data folder.
    ("assistant.store.new_generation", PermissionError(errno.EACCES, "Permission denied"), "écriture"),
    ("assistant.store.new_generation", OSError(errno.EROFS, "Read-only file system"), "écriture"),
    # Step 2, while Chroma and the record manager write passages: SQLite's own wording.
    ("ingest.index.index", sqlite3.OperationalError("database or disk is full"), "plein"),
    # Step 3, writing the BM25 index / the catalog, and switching the pointer.
    ("ingest.index._build_lexical", OSError(errno.ENOSPC, "No space left on device"), "plein"),
    ("assistant.store.write_catalog", OSError(errno.ENOSPC, "No space left on device"), "plein"),
    ("assistant.store.publish", OSError(errno.ENOSPC, "No space left on device"), "plein"),
])
def test_storage_faults_exit_3_leave_nothing_and_keep_the_served_index(
        settings: Settings, env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        target: str, exc: BaseException, words: str) -> None:
    assert _ingest(settings) == 0
    before = _state(settings.data_dir)
    served = _served(settings)
    (settings.corpus_dir / "nouveau.md").write_text("# Nouveau\n\nUn catalyseur territorial anime un lieu.\n",
                                                    encoding="utf-8")
    capsys.readouterr()
    monkeypatch.setattr(target, _raise(exc))
    assert _ingest(settings) == EXIT_STORAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("Erreur : ") and "\n" not in err and "Traceback" not in err and words in err, err
    assert _state(settings.data_dir) == before  # no unfinished generation, the pointer unchanged
    assert not list(settings.data_dir.glob("*.tmp"))
    monkeypatch.undo()
    assert _served(settings) == served


def test_unreachable_chroma_server_exits_4(settings: Settings, env: None, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ASSISTANT_CHROMA_MODE", "http")
    monkeypatch.setenv("ASSISTANT_CHROMA_PORT", str(port))
    assert _ingest(settings) == EXIT_VECTOR_SERVER
    err = capsys.readouterr().err.strip()
    assert err == (f"Erreur : Le serveur Chroma (127.0.0.1:{port}) est injoignable : démarrez-le ou vérifiez "
                   "ASSISTANT_CHROMA_HOST et ASSISTANT_CHROMA_PORT."), err
    assert not store.generations_dir(settings.data_dir).exists() or not any(
        store.generations_dir(settings.data_dir).iterdir())


def test_missing_current_generation_says_to_run_the_ingestion(settings: Settings, env: None,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _ingest(settings) == 0
    name, _ = _state(settings.data_dir)
    shutil.rmtree(store.generations_dir(settings.data_dir) / name)
    capsys.readouterr()
    assert assistant_main(["ask", "--db", str(settings.data_dir), QUESTION]) == 2
    err = capsys.readouterr().err.strip()
    assert "Lancez d'abord l'indexation du corpus : python -m ingest" in err and "\n" not in err
    assert _ingest(settings) == 0  # the next run builds from scratch
    assert _served(Settings.from_env().with_overrides(data_dir=settings.data_dir))


@pytest.mark.parametrize("damage", ["passage_docs.json", "bm25", "chroma/chroma.sqlite3"])
def test_damaged_current_generation_says_to_rebuild(settings: Settings, env: None, damage: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _ingest(settings) == 0
    name, _ = _state(settings.data_dir)
    target = store.generations_dir(settings.data_dir) / name / damage
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.write_bytes(b"\x00garbage" * 64)
    capsys.readouterr()
    assert assistant_main(["ask", "--db", str(settings.data_dir), QUESTION]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Erreur : ") and "\n" not in err, err
    assert "python -m ingest" in err or "relancez l'ingestion" in err, err
    assert _ingest(settings, "--rebuild") == 0
    assert _served(Settings.from_env().with_overrides(data_dir=settings.data_dir))


# -- a real read-only data folder -------------------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can read (pytest's tmp_path is private to the user running the tests)."""
    path = Path(tempfile.mkdtemp(prefix="assistant-faults-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder, dirs, _files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)
        path.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def _run_unprivileged(args: list[str], home: Path, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python args`` as a user who cannot write the read-only folders: this user, or ``nobody`` for root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made for this process")
        prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env |= {"HOME": str(home), "HF_HUB_OFFLINE": "1", "ASSISTANT_EMBEDDER": "hash:256",
            "ASSISTANT_CHUNK_WORDS": "60", "ASSISTANT_CHUNK_OVERLAP_WORDS": "10",
            "ASSISTANT_RELEVANCE_FLOOR": "0.05", "ASSISTANT_UNCERTAIN_FLOOR": "0.05"}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run([*prefix, sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _read_only(path: Path) -> None:
    for folder, dirs, files in os.walk(path):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o555)
    path.chmod(0o555)


@pytest.fixture
def read_only_index(shared_dir: Path, env: None) -> tuple[Path, Path, tuple[str, list[str]]]:
    corpus = write_tiny_corpus(shared_dir / "corpus")
    data = shared_dir / "data"
    assert ingest_main(["--corpus", str(corpus), "--db", str(data), "--quiet"]) == 0
    (shared_dir / "home").mkdir(mode=0o777)
    (shared_dir / "home").chmod(0o777)
    state = _state(data)
    _read_only(data)
    _read_only(corpus)
    return corpus, data, state


def test_ingest_into_a_read_only_folder_exits_3(read_only_index: tuple[Path, Path, tuple[str, list[str]]],
                                                shared_dir: Path) -> None:
    corpus, data, state = read_only_index
    done = _run_unprivileged(["-m", "ingest", "--corpus", str(corpus), "--db", str(data), "--quiet"],
                             shared_dir / "home")
    assert done.returncode == EXIT_STORAGE, done.stderr
    err = done.stderr.strip()
    assert err.startswith("Erreur : Le dossier de données") and "écriture" in err and "\n" not in err, err
    assert _state(data) == state


def test_an_index_on_a_read_only_folder_is_served(read_only_index: tuple[Path, Path, tuple[str, list[str]]],
                                                  shared_dir: Path) -> None:
    _corpus, data, state = read_only_index
    tmp = shared_dir / "tmp"
    tmp.mkdir(mode=0o777)
    tmp.chmod(0o777)
    done = _run_unprivileged(["-m", "assistant", "ask", "--db", str(data), QUESTION], shared_dir / "home", tmp)
    assert done.returncode == 0, done.stderr
    assert "Sources :" in done.stdout and "catalyseur" in done.stdout, done.stdout
    assert _state(data) == state
    assert list(tmp.iterdir()) == []  # the working copy of the index went with the process


# -- what writes at query time degrades ------------------------------------------------------------------


def test_embedding_cache_in_an_unwritable_place_still_embeds(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")  # the cache's folder cannot be created: a file is in the way
    cached = CachedEmbeddings(HashEmbeddings(64), blocker / "cache" / "embeddings.sqlite")
    with caplog.at_level(logging.WARNING, logger="assistant.embeddings"):
        vectors = cached.embed_passages(["un passage", "un autre passage"])
    assert vectors.shape == (2, 64) and not cached.writable
    assert "lecture seule" in caplog.text
    assert (cached.embed_passages(["un passage"]) == vectors[:1]).all()


def test_embedding_cache_that_cannot_be_written_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "embeddings.sqlite"
    first = CachedEmbeddings(HashEmbeddings(64), path)
    kept = first.embed_passages(["déjà calculé"])
    monkeypatch.setattr(sqlite3, "connect", _wrap_read_only(sqlite3.connect))
    cached = CachedEmbeddings(HashEmbeddings(64), path)
    assert (cached.embed_passages(["déjà calculé", "nouveau"])[0] == kept[0]).all()
    assert not cached.writable


def _wrap_read_only(connect: Callable[..., sqlite3.Connection]) -> Callable[..., sqlite3.Connection]:
    """``sqlite3.connect`` as on a read-only folder: only ``mode=ro`` URIs open."""
    def fake(database: object, *args: object, **kwargs: object) -> sqlite3.Connection:
        if "mode=ro" not in str(database):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return connect(database, *args, **kwargs)

    return fake


def test_feedback_store_that_cannot_be_written_keeps_answering(tmp_path: Path, settings: Settings,
                                                                fake_embedder: HashEmbeddings,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from ingest.index import run_ingest

    run_ingest(settings, embedder=fake_embedder, progress=False)
    answer = Assistant(settings, embedder=fake_embedder).answer(QUESTION, [], mode="extractive")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    feedback = FeedbackStore(blocker / "feedback.sqlite")
    with caplog.at_level(logging.WARNING, logger="assistant.feedback"):
        answer_id = feedback.log_answer(answer, {})
    assert answer_id and feedback.unwritable
    assert "ASSISTANT_FEEDBACK_FILE" in caplog.text
    with pytest.raises(FeedbackError, match="n'a pas pu être enregistré"):
        feedback.add_feedback(answer_id, "up")


def test_feedback_file_setting(tmp_path: Path) -> None:
    settings = Settings.from_env({"ASSISTANT_DATA_DIR": str(tmp_path / "data"),
                                  "ASSISTANT_FEEDBACK_FILE": str(tmp_path / "ailleurs" / "avis.sqlite")})
    assert settings.feedback_path == tmp_path / "ailleurs" / "avis.sqlite"
    assert Settings(data_dir=tmp_path).feedback_path == tmp_path / "feedback.sqlite"
