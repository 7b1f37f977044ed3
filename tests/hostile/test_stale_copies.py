"""A server killed with ``kill -9`` while serving a read-only index leaves its working copy in the temporary
folder (``atexit`` does not run); the next process that serves a read-only index removes it, and only it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import store
from tests.conftest import ROOT
from tests.test_faults import QUESTION, _run_unprivileged

pytestmark = pytest.mark.hostile

# Opens the read-only index (which makes the working copy), says so, then waits to be killed.
SERVE_AND_WAIT = """
import sys, time
from pathlib import Path
from assistant.answer import Assistant
from assistant.settings import Settings
Assistant(Settings.from_env().with_overrides(data_dir=Path(sys.argv[1]))).retriever.load()
print("prêt", flush=True)
time.sleep(300)
"""


def _private_tmp(shared: Path) -> Path:
    tmp = shared / "tmp"
    tmp.mkdir(mode=0o777)
    tmp.chmod(0o777)
    return tmp


def test_a_killed_servers_copy_is_removed_at_the_next_start(read_only_index: tuple[Path, Path, object],
                                                            shared_dir: Path) -> None:
    _corpus, data, _state = read_only_index
    tmp = _private_tmp(shared_dir)
    # The same user and environment as _run_unprivileged (which skips when no such user can be had), but a
    # process that is killed mid-way.
    probe = _run_unprivileged(["-c", "pass"], shared_dir / "home")
    prefix = [] if os.geteuid() != 0 else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    assert probe.returncode == 0, probe.stderr
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")} | {
        "HOME": str(shared_dir / "home"), "TMPDIR": str(tmp), "HF_HUB_OFFLINE": "1", "ASSISTANT_EMBEDDER": "hash:256",
        "ASSISTANT_CHUNK_WORDS": "60", "ASSISTANT_CHUNK_OVERLAP_WORDS": "10"}
    server = subprocess.Popen([*prefix, sys.executable, "-c", SERVE_AND_WAIT, str(data)], cwd=ROOT, env=child_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "prêt", server.stderr
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    left = [p for p in tmp.iterdir() if p.name.startswith(store.COPY_PREFIX)]
    assert len(left) == 1 and (left[0] / store.COPY_OWNER).read_text() == str(server.pid)  # kill -9: still there
    other = tmp / "assistant-pas-une-copie"  # not a copy (no owner file): never touched
    other.mkdir()

    done = _run_unprivileged(["-m", "assistant", "ask", "--db", str(data), QUESTION], shared_dir / "home", tmp)
    assert done.returncode == 0, done.stderr
    assert "catalyseur" in done.stdout
    assert sorted(tmp.iterdir()) == [other]  # the stale copy went; the new one went with its process


def test_sweep_keeps_the_copies_of_live_processes(tmp_path: Path) -> None:
    live = tmp_path / f"{store.COPY_PREFIX}g1-abc"
    live.mkdir()
    (live / store.COPY_OWNER).write_text(str(os.getppid()), encoding="ascii")  # pytest's parent: alive
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    dead = tmp_path / f"{store.COPY_PREFIX}g1-def"
    (dead / "chroma").mkdir(parents=True)
    (dead / store.COPY_OWNER).write_text(dead_pid, encoding="ascii")
    garbled = tmp_path / f"{store.COPY_PREFIX}g1-ghi"
    garbled.mkdir()
    (garbled / store.COPY_OWNER).write_text("pas un nombre", encoding="ascii")
    assert store.sweep_stale_copies(tmp_path) == [dead]
    assert sorted(tmp_path.iterdir()) == [live, garbled]
