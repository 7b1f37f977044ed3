"""The feedback log both retention suites purge (SQLite: tests/hostile/test_retention.py; PostgreSQL:
tests/test_server_audit_retention.py), and the checks they share: one contract, two engines."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assistant.feedback import FeedbackError, FeedbackStore, apply_retention
from tests.test_feedback import _answer

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
# 90 days old, 40 days old, today.
DATES = ("2026-04-01T10:00:00+00:00", "2026-05-21T10:00:00+00:00", "2026-06-30T11:00:00+00:00")


def backdate_sqlite(path: Path, answer_id: str, when: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE answers SET created_at = ? WHERE id = ?", (when, answer_id))


def fill(store: FeedbackStore, backdate: Callable[[str, str], None]) -> list[str]:
    """Three answers 90 days old (two feedbacks, one given recently), 40 days old and today's (rated)."""
    ids = [store.log_answer(_answer(f"Question {n} ?"), {"k": 5}) for n in range(3)]
    store.add_feedback(ids[0], "down", ["hors sujet"], "ancien avis")
    store.add_feedback(ids[0], "up", [], "avis récent sur une ancienne réponse")
    store.add_feedback(ids[2], "up", ["clair"], "")
    for answer_id, when in zip(ids, DATES, strict=True):
        backdate(answer_id, when)
    return ids


def assert_a_failed_export_deletes_nothing(store: FeedbackStore, ids: list[str], tmp_path: Path) -> None:
    blocker = tmp_path / "pas-un-dossier"
    blocker.write_text("", encoding="utf-8")  # the archive folder cannot be made: a file is in the way
    with pytest.raises(FeedbackError, match="rien n'a été supprimé"):
        apply_retention(store, 30, blocker / "archives", now=NOW)
    assert sorted(a.id for a in store.list_answers()) == sorted(ids)
    assert len(store.list_feedback()) == 3
