"""Bounded growth of the answer log: ``ASSISTANT_RETENTION_DAYS`` exports old answers and their feedback to a
JSONL file, then deletes them; when the export cannot be written, nothing is deleted."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant import feedback
from assistant.cli import main as assistant_main
from assistant.feedback import FeedbackError, FeedbackStore, apply_retention
from assistant.settings import Settings
from tests.retention_cases import NOW, assert_a_failed_export_deletes_nothing, backdate_sqlite, fill

pytestmark = pytest.mark.hostile
@pytest.fixture
def log(tmp_path: Path) -> tuple[FeedbackStore, list[str]]:
    """Three answers: 90 days old (with two feedbacks, one given recently), 40 days old, and today's (rated)."""
    store = FeedbackStore(tmp_path / "data" / "feedback.sqlite")
    return store, fill(store, lambda answer_id, when: backdate_sqlite(store.path, answer_id, when))


def test_old_answers_are_exported_then_deleted_with_their_feedback(log: tuple[FeedbackStore, list[str]],
                                                                    tmp_path: Path) -> None:
    store, ids = log
    purge = apply_retention(store, 30, tmp_path / "archives", now=NOW)
    assert (purge.answers, purge.feedback) == (2, 2) and purge.archive is not None
    exported = [json.loads(line) for line in purge.archive.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in exported] == ids[:2]
    assert exported[0]["question"] == "Question 0 ?" and exported[0]["citations"][0]["passage_id"] == "p1"
    assert [f["comment"] for f in exported[0]["feedback"]] == ["ancien avis", "avis récent sur une ancienne réponse"]
    assert exported[1]["feedback"] == []
    assert [a.id for a in store.list_answers()] == [ids[2]]
    assert [f.answer_id for f in store.list_feedback()] == [ids[2]]
    # Nothing older is left: a second purge removes nothing and writes no file.
    assert apply_retention(store, 30, tmp_path / "archives", now=NOW).archive is None
    assert len(list((tmp_path / "archives").iterdir())) == 1


def test_a_failed_export_deletes_nothing(log: tuple[FeedbackStore, list[str]], tmp_path: Path) -> None:
    store, ids = log
    assert_a_failed_export_deletes_nothing(store, ids, tmp_path)


def test_a_failed_delete_leaves_no_export_and_the_retry_exports_each_answer_once(
        log: tuple[FeedbackStore, list[str]], tmp_path: Path) -> None:
    """The rows stay, so their export goes: the next purge exports them again, and two files would give a
    restore each answer twice."""
    store, ids = log
    archives = tmp_path / "archives"
    with sqlite3.connect(store.path) as conn:  # the database refuses the delete, after the export was written
        conn.execute("CREATE TRIGGER refuse_purge BEFORE DELETE ON answers "
                     "BEGIN SELECT RAISE(ABORT, 'suppression refusée'); END")
    with pytest.raises(FeedbackError, match="rien n'a été supprimé et l'export préalable a été retiré"):
        apply_retention(store, 30, archives, now=NOW)
    assert list(archives.iterdir()) == []
    assert sorted(a.id for a in store.list_answers()) == sorted(ids)
    assert len(store.list_feedback()) == 3
    with sqlite3.connect(store.path) as conn:
        conn.execute("DROP TRIGGER refuse_purge")
    # Retried the next day, as the app's daily purge does: another cutoff, the same old answers.
    purge = apply_retention(store, 30, archives, now=NOW + timedelta(days=1))
    assert purge.archive is not None and list(archives.iterdir()) == [purge.archive]
    exported = [json.loads(line)["id"] for line in purge.archive.read_text(encoding="utf-8").splitlines()]
    assert exported == ids[:2]
    assert [a.id for a in store.list_answers()] == [ids[2]]


def test_a_failed_commit_keeps_every_row_and_removes_the_export(
        log: tuple[FeedbackStore, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete went through inside the transaction but its COMMIT failed (a full disk at the last write):
    SQLite rolls the whole transaction back, so the export that was written for it goes too."""
    store, ids = log
    archives = tmp_path / "archives"
    real = feedback.export_then_delete

    def commit_fails(records: list[dict[str, Any]], archive_dir: Path, stamp: str, delete: Callable[[], int],
                     _commit: Callable[[], None], *, rolled_back: Callable[[], bool]) -> tuple[Path, int]:
        def commit() -> None:
            raise sqlite3.OperationalError("database or disk is full")
        return real(records, archive_dir, stamp, delete, commit, rolled_back=rolled_back)

    monkeypatch.setattr(feedback, "export_then_delete", commit_fails)
    with pytest.raises(FeedbackError, match=r"la validation de la suppression a échoué \(database or disk is full\).*"
                                            r"rien n'a été supprimé et l'export préalable a été retiré"):
        apply_retention(store, 30, archives, now=NOW)
    assert list(archives.iterdir()) == []
    assert sorted(a.id for a in store.list_answers()) == sorted(ids)
    assert len(store.list_feedback()) == 3
    monkeypatch.undo()  # the disk has room again: the next purge exports and deletes once
    purge = apply_retention(store, 30, archives, now=NOW)
    assert purge.archive is not None and list(archives.iterdir()) == [purge.archive]
    assert [a.id for a in store.list_answers()] == [ids[2]]


def test_retention_zero_keeps_everything(log: tuple[FeedbackStore, list[str]], tmp_path: Path) -> None:
    store, _ids = log
    assert apply_retention(store, 0, tmp_path / "archives", now=NOW).archive is None
    assert len(store.list_answers()) == 3 and not (tmp_path / "archives").exists()


def test_retention_settings() -> None:
    settings = Settings.from_env({"ASSISTANT_RETENTION_DAYS": "365", "ASSISTANT_FEEDBACK_FILE": "/srv/retours.sqlite"})
    assert settings.retention_days == 365 and settings.retention_archive_dir == Path("/srv/archives")
    with pytest.raises(ValueError, match="ASSISTANT_RETENTION_DAYS"):
        Settings.from_env({"ASSISTANT_RETENTION_DAYS": "-1"})


def test_purge_command(log: tuple[FeedbackStore, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    store, _ids = log
    monkeypatch.setenv("ASSISTANT_FEEDBACK_FILE", str(store.path))
    monkeypatch.setenv("ASSISTANT_RETENTION_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("ASSISTANT_RETENTION_DAYS", raising=False)
    assert assistant_main(["feedback", "purge"]) == 2
    assert "--days" in capsys.readouterr().err
    assert assistant_main(["feedback", "purge", "--days", "1"]) == 0  # the real clock: every backdated answer goes
    err = capsys.readouterr().err
    assert "3 réponse(s) et 3 avis" in err and str(tmp_path / "exports") in err
    assert store.list_answers() == []
