"""``kill -9`` of a process while it writes answers and feedback loses nothing that was committed, and leaves
a log that opens, passes SQLite's integrity check, and takes new writes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.feedback import FeedbackStore
from tests.conftest import ROOT
from tests.test_feedback import _answer

pytestmark = pytest.mark.hostile

# Logs answers with feedback in a loop; prints each answer id once both writes returned (committed).
WRITER = """
import sys
from pathlib import Path
from assistant.feedback import FeedbackStore
from tests.test_feedback import _answer
store = FeedbackStore(Path(sys.argv[1]))
n = 0
while True:
    answer_id = store.log_answer(_answer(f"Question {n} ?"), {"k": 5})
    store.add_feedback(answer_id, "up", ["clair"], "commentaire " * 50)
    print(answer_id, flush=True)
    n += 1
"""


def test_kill_9_while_logging_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    committed: list[str] = []
    try:
        assert writer.stdout is not None
        while len(committed) < 200:  # a kill that lands in the middle of later writes
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "the writer stopped"
            committed.append(line.strip())
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = FeedbackStore(path)
    logged = {a.id for a in store.list_answers(limit=100_000)}
    rated = {f.answer_id for f in store.list_feedback()}
    assert set(committed) <= logged and set(committed) <= rated
    assert rated <= logged  # no feedback points to an answer that is not there
    new = store.log_answer(_answer("Après la panne ?"), {})
    assert store.get_answer(new) is not None
