"""The audit trail is a table of the feedback store: one SQLite file, one connection helper, one clock."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from assistant import shared_state
from assistant.audit import AuditLog
from assistant.feedback import FeedbackStore
from assistant.settings import Settings
from tests.test_feedback import _answer


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_audit_trail_lives_in_the_feedback_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "feedback.sqlite"
    store = FeedbackStore(path)
    answer_id = store.log_answer(_answer(), {})
    # The store's first write made every table of the file, the audit trail's included.
    assert {"answers", "feedback", "audit"} <= _tables(path)
    log = AuditLog(path)
    first = log.record("gestion", "add", "guide", "guide.pdf", outcome="done", detail={"hash": "abc"})
    log.record("gestion", "replace", "guide", "guide.pdf", outcome="done", detail={"old_hash": "abc"})
    [newest, oldest] = log.entries()
    assert oldest.id == first and (oldest.user, oldest.action, oldest.detail) == ("gestion", "add", {"hash": "abc"})
    assert newest.at.endswith("+00:00") and log.replacements() == {"guide": [(newest.at, "abc")]}
    assert [a.id for a in store.list_answers()] == [answer_id]  # side by side in the same file


def test_reading_an_absent_audit_trail_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "feedback.sqlite"
    log = AuditLog(path)
    out = io.StringIO()
    assert log.entries() == [] and log.replacements() == {} and log.export(out, "jsonl") == 0
    assert not path.exists() and not path.parent.exists()


def test_shared_state_hands_out_the_audit_log_of_the_feedback_file(settings: Settings) -> None:
    log = shared_state.audit_log(settings)
    log.record("gestion", "remove", "guide", "guide.pdf", outcome="requested")
    assert "audit" in _tables(settings.feedback_path)
    assert [e.action for e in AuditLog(settings.feedback_path).entries()] == ["remove"]
    # The feedback store the app uses reads and writes that same file.
    assert shared_state.feedback_store(settings).path == settings.feedback_path
