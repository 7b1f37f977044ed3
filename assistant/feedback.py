"""Answers served by the app and what officials said about them, in one SQLite file.

Every answer is logged (question, standalone question, text, mode, citations,
the retrieved passages with their scores, the public settings) so that staff
can see later exactly what the assistant read and cited. Feedback (👍/👎, tags,
a comment) points to an answer. Maintainers export the feedback as CSV or JSONL.
The same file holds the corpus audit trail (:mod:`assistant.audit`, table ``audit``),
through the same connection helper and clock.

One short-lived connection per call: the app answers from several threads, and
SQLite's WAL mode lets readers and one writer work side by side.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from assistant.durable import fsync_dir
from assistant.errors import AssistantError
from assistant.schema import Answer

log = logging.getLogger(__name__)

Rating = Literal["up", "down"]
RATINGS: tuple[str, ...] = ("up", "down")
POSITIVE_TAGS: tuple[str, ...] = ("clair", "complet", "sources fiables")
NEGATIVE_TAGS: tuple[str, ...] = ("source erronée", "incomplet", "trop long", "hors sujet")
TAGS: tuple[str, ...] = POSITIVE_TAGS + NEGATIVE_TAGS
MAX_COMMENT_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    question TEXT NOT NULL,
    standalone_question TEXT NOT NULL,
    answer TEXT NOT NULL,
    mode TEXT NOT NULL,
    plain_language INTEGER NOT NULL,
    abstained INTEGER NOT NULL,
    notice TEXT NOT NULL,
    citations TEXT NOT NULL,
    passages TEXT NOT NULL,
    settings TEXT NOT NULL,
    timings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_created ON answers(created_at);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL REFERENCES answers(id),
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL,
    tags TEXT NOT NULL,
    comment TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    file TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_doc ON audit(doc_id);
"""

EXPORT_COLUMNS = (
    "feedback_id", "feedback_at", "rating", "tags", "comment",
    "answer_id", "answered_at", "channel", "question", "standalone_question", "answer", "mode",
    "plain_language", "abstained", "notice", "citations", "settings",
)


class FeedbackError(AssistantError, ValueError):
    """Feedback that cannot be stored as given (message in French, shown to the user)."""


@dataclass(frozen=True)
class AnswerRecord:
    id: str
    created_at: str
    channel: str
    question: str
    standalone_question: str
    answer: str
    mode: str
    plain_language: bool
    abstained: bool
    notice: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def cited_passage_ids(self) -> set[str]:
        return {str(c.get("passage_id", "")) for c in self.citations}


@dataclass(frozen=True)
class Purge:
    """What a retention purge removed, and the file it was exported to first (None: nothing to remove)."""

    answers: int
    feedback: int
    archive: Path | None


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    answer_id: str
    created_at: str
    rating: str
    tags: list[str]
    comment: str


def checked_feedback(rating: str | None, tags: Sequence[str], comment: str) -> tuple[str, list[str], str]:
    """(rating, tags without repeats, trimmed comment), or a French :class:`FeedbackError` (every store checks
    feedback the same way)."""
    rating = rating or ""
    if rating and rating not in RATINGS:
        raise FeedbackError("L'avis doit être 👍 ou 👎.")
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        raise FeedbackError(f"Étiquette inconnue : {unknown[0]}.")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise FeedbackError(f"Le commentaire est trop long ({MAX_COMMENT_CHARS} caractères au maximum).")
    if not (rating or tags or comment):
        raise FeedbackError("Indiquez un avis, une étiquette ou un commentaire.")
    return rating, list(dict.fromkeys(tags)), comment


def now() -> str:
    """The stores' clock: ISO 8601, UTC, to the second (answers, feedback and the audit trail alike)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class FeedbackStore:
    """The answers log and the feedback table of one SQLite file (created on first write).

    :meth:`connect` and :meth:`exists` are also the audit trail's way into the same file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False
        self.unwritable = False  # set once a write failed (read-only folder, full disk): answers still go out

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection, one transaction (committed when the block ends without error); the file and its
        tables are created on the first write."""
        if write and not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
            with conn:  # one transaction, committed on success
                yield conn

    def exists(self) -> bool:
        return self._ready or self.path.exists()

    # -- writing -------------------------------------------------------------------------

    def log_answer(
        self,
        answer: Answer,
        settings: dict[str, Any],
        *,
        channel: str = "chat",
        plain_language: bool = False,
    ) -> str:
        """Store one answer with what was retrieved and cited; returns its id."""
        answer_id = uuid.uuid4().hex
        if self.unwritable:
            return answer_id
        try:
            self._insert_answer(answer_id, answer, settings, channel, plain_language)
        except (sqlite3.Error, OSError) as exc:
            # Serving from a read-only data folder must still answer: the log is what is given up.
            self.unwritable = True
            log.warning("Les réponses et les avis ne seront pas enregistrés : %s n'est pas accessible en "
                        "écriture (%s). Indiquez un autre fichier avec ASSISTANT_FEEDBACK_FILE.", self.path, exc)
        return answer_id

    def _insert_answer(self, answer_id: str, answer: Answer, settings: dict[str, Any], channel: str,
                       plain_language: bool) -> None:
        with self.connect(write=True) as conn:
            conn.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id, now(), channel, answer.question, answer.standalone_question, answer.text,
                    answer.mode, int(plain_language), int(answer.abstained), answer.notice,
                    _dumps([c.to_json() for c in answer.citations]),
                    _dumps([p.to_json() for p in answer.passages]),
                    _dumps(settings),
                    _dumps({k: round(v, 4) for k, v in answer.timings.items()}),
                ),
            )

    def add_feedback(
        self, answer_id: str, rating: str | None, tags: Sequence[str] = (), comment: str = ""
    ) -> int:
        """Store 👍 ("up") / 👎 ("down"), tags and a comment for one answer; returns the feedback id."""
        rating, tags, comment = checked_feedback(rating, tags, comment)
        if self.unwritable:
            raise FeedbackError("Votre avis n'a pas pu être enregistré : le stockage des retours n'est pas "
                                "accessible en écriture.")
        with self.connect(write=True) as conn:
            if conn.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
                raise FeedbackError("Cette réponse est introuvable : votre avis n'a pas pu être enregistré.")
            cursor = conn.execute(
                "INSERT INTO feedback (answer_id, created_at, rating, tags, comment) VALUES (?, ?, ?, ?, ?)",
                (answer_id, now(), rating, _dumps(tags), comment),
            )
            return int(cursor.lastrowid or 0)

    # -- reading -------------------------------------------------------------------------

    def list_answers(self, limit: int = 100) -> list[AnswerRecord]:
        """The most recent answers first."""
        if not self.exists():
            return []
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM answers ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_answer_record(r) for r in rows]

    def get_answer(self, answer_id: str) -> AnswerRecord | None:
        if not self.exists():
            return None
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
        return _answer_record(row) if row else None

    def list_feedback(self, answer_id: str | None = None) -> list[FeedbackRecord]:
        if not self.exists():
            return []
        query = "SELECT * FROM feedback" + (" WHERE answer_id = ?" if answer_id else "") + " ORDER BY id"
        with self.connect() as conn:
            rows = conn.execute(query, (answer_id,) if answer_id else ()).fetchall()
        return [
            FeedbackRecord(r["id"], r["answer_id"], r["created_at"], r["rating"], json.loads(r["tags"]), r["comment"])
            for r in rows
        ]

    # -- retention -----------------------------------------------------------------------

    def purge_before(self, cutoff: datetime, archive_dir: Path) -> Purge:
        """Delete the answers logged before ``cutoff`` and all their feedback, after writing them to a JSONL file.

        The file (one answer a line, with its ``feedback`` list) is written and flushed to disk in
        ``archive_dir`` before the rows are deleted, inside one write transaction: if the file cannot be
        written (full disk, no rights), nothing is deleted and the error says so in French; if the delete
        fails, the file is removed (see :func:`export_then_delete`). Feedback given after the cutoff on an
        older answer goes with that answer, so that no feedback points nowhere.
        """
        if not self.exists():
            return Purge(0, 0, None)
        stamp = cutoff_stamp(cutoff)
        with self.connect(write=True) as conn:
            conn.execute("BEGIN IMMEDIATE")  # no answer is logged between the export and the delete
            answers = conn.execute("SELECT * FROM answers WHERE created_at < ? ORDER BY created_at, rowid",
                                   (stamp,)).fetchall()
            if not answers:
                return Purge(0, 0, None)
            feedback: dict[str, list[dict[str, Any]]] = {}
            for r in conn.execute("SELECT f.* FROM feedback f JOIN answers a ON a.id = f.answer_id "
                                  "WHERE a.created_at < ? ORDER BY f.id", (stamp,)):
                feedback.setdefault(r["answer_id"], []).append(
                    {"id": r["id"], "created_at": r["created_at"], "rating": r["rating"],
                     "tags": json.loads(r["tags"]), "comment": r["comment"]})

            def delete() -> int:
                given = conn.execute("DELETE FROM feedback WHERE answer_id IN (SELECT id FROM answers "
                                     "WHERE created_at < ?)", (stamp,)).rowcount
                conn.execute("DELETE FROM answers WHERE created_at < ?", (stamp,))
                return given

            # A failed COMMIT of a local SQLite file leaves nothing committed: its outcome is always known.
            archive, given = export_then_delete(
                [asdict(_answer_record(row)) | {"feedback": feedback.get(row["id"], [])} for row in answers],
                archive_dir, stamp, delete, conn.commit, rolled_back=lambda: True)
        return Purge(len(answers), given, archive)

    # -- export --------------------------------------------------------------------------

    def export(self, out: IO[str], fmt: str = "csv") -> int:
        """Write every feedback with its answer to ``out`` (CSV or JSONL); returns the number of rows."""
        if fmt not in ("csv", "jsonl"):
            raise ValueError("format d'export inconnu (csv ou jsonl)")
        rows = self._export_rows()
        if fmt == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            return len(rows)
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(row)
            flat["tags"] = ";".join(row["tags"])
            flat["citations"] = _dumps(row["citations"])
            flat["settings"] = _dumps(row["settings"])
            writer.writerow({k: csv_safe(v) for k, v in flat.items()})
        return len(rows)

    def _export_rows(self) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT f.id AS feedback_id, f.created_at AS feedback_at, f.rating, f.tags, f.comment, "
                "a.id AS answer_id, a.created_at AS answered_at, a.channel, a.question, a.standalone_question, "
                "a.answer, a.mode, a.plain_language, a.abstained, a.notice, a.citations, a.passages, a.settings "
                "FROM feedback f JOIN answers a ON a.id = f.answer_id ORDER BY f.id"
            ).fetchall()
        out = []
        for r in rows:
            row = dict(r)
            row["tags"] = json.loads(row["tags"])
            row["plain_language"] = bool(row["plain_language"])
            row["abstained"] = bool(row["abstained"])
            for key in ("citations", "passages", "settings"):
                row[key] = json.loads(row[key])
            out.append(row)
        return out


def cutoff_stamp(cutoff: datetime) -> str:
    """The purge's cutoff written as the stores write ``created_at`` (compared as text)."""
    return cutoff.astimezone(UTC).isoformat(timespec="seconds")


def write_archive(records: list[dict[str, Any]], archive_dir: Path, stamp: str) -> Path:
    """Write a purge's records (one answer a line, with its ``feedback`` list) to a new JSONL file in
    ``archive_dir`` and flush it to disk; the file. Called inside the purge's transaction, before any row goes:
    when it fails, a French :class:`FeedbackError` says nothing was deleted."""
    archive = archive_dir / f"journal-avant-{stamp[:10]}-{uuid.uuid4().hex[:6]}.jsonl"
    try:
        archive_dir.mkdir(parents=True, exist_ok=True)
        with archive.open("x", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # The new name too, so that a power cut after the delete cannot lose the file's directory entry.
        fsync_dir(archive_dir)
    except OSError as exc:
        with suppress(OSError):  # a half-written export goes; there may be no folder at all
            archive.unlink()
        raise FeedbackError(f"Le journal n'a pas été purgé : l'export préalable dans {archive_dir} a "
                            f"échoué ({exc.strerror or exc}) ; rien n'a été supprimé.") from exc
    return archive


def export_then_delete(records: list[dict[str, Any]], archive_dir: Path, stamp: str, delete: Callable[[], int],
                       commit: Callable[[], None], *, rolled_back: Callable[[], bool]) -> tuple[Path, int]:
    """The purge's last steps, inside its transaction: the export (:func:`write_archive`), ``delete()`` (the
    number of feedback rows it removed, returned with the file), then ``commit()``.

    When the rows stay, the export goes: the next purge exports them again, into a new file, and a restore
    from the exports would bring them back twice. So the file is removed when the transaction surely rolled
    back: the delete failed, or the commit failed and ``rolled_back()`` says the engine refused it. A commit
    whose outcome is unknown (the connection to the server lost during it) keeps the file: the rows may be
    gone, and the file is then their only copy; the error says so.

    Not a name fixed by the cutoff, overwritten on a retry: the retention's cutoff moves with the clock, so
    a retry the next day would still write a second file, and overwriting an export risks the only copy.
    """
    archive = write_archive(records, archive_dir, stamp)
    step = "la suppression"
    try:
        given = delete()
        step = "la validation de la suppression"
        commit()
    except BaseException as exc:
        why = f"{step} a échoué ({_first_line(exc)})"
        # A Ctrl+C seen during the commit may have come just after it succeeded: only an error says it failed.
        if step == "la suppression" or (isinstance(exc, Exception) and rolled_back()):
            discard_archive(archive)
            if isinstance(exc, Exception):
                raise FeedbackError(f"Le journal n'a pas été purgé : {why} ; rien n'a été supprimé et l'export "
                                    "préalable a été retiré.") from exc
        elif isinstance(exc, Exception):
            raise FeedbackError(f"La purge du journal n'a peut-être pas abouti : {why}. L'export {archive} est "
                                "gardé ; si ses réponses sont encore dans le journal, la prochaine purge les "
                                "exportera de nouveau : gardez alors un seul exemplaire de chacune.") from exc
        raise
    return archive, given


def _first_line(exc: BaseException) -> str:
    """A database's error in one line (PostgreSQL adds lines of CONTEXT that tell officials nothing)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def discard_archive(archive: Path) -> None:
    """Remove the export of a purge whose rows stayed, its removal flushed to disk like its creation."""
    try:
        archive.unlink(missing_ok=True)
        fsync_dir(archive.parent)
    except OSError as exc:  # the purge's own error matters more: it is the one raised
        log.warning("L'export %s d'une purge qui n'a rien supprimé n'a pas pu être retiré (%s) : supprimez-le, "
                    "ses réponses restent dans le journal et seront exportées de nouveau.", archive, exc)


def apply_retention(store: FeedbackStore, days: int, archive_dir: Path, *, now: datetime | None = None) -> Purge:
    """Export then delete what is older than ``days`` days (``ASSISTANT_RETENTION_DAYS``; 0: keep everything)."""
    if days <= 0:
        return Purge(0, 0, None)
    purge = store.purge_before((now or datetime.now(UTC)) - timedelta(days=days), archive_dir)
    if purge.archive is not None:
        log.info("Rétention de %d jours : %d réponses et %d avis exportés dans %s puis supprimés du journal.",
                 days, purge.answers, purge.feedback, purge.archive)
    return purge


def _answer_record(row: sqlite3.Row) -> AnswerRecord:
    return AnswerRecord(
        id=row["id"],
        created_at=row["created_at"],
        channel=row["channel"],
        question=row["question"],
        standalone_question=row["standalone_question"],
        answer=row["answer"],
        mode=row["mode"],
        plain_language=bool(row["plain_language"]),
        abstained=bool(row["abstained"]),
        notice=row["notice"],
        citations=json.loads(row["citations"]),
        passages=json.loads(row["passages"]),
        settings=json.loads(row["settings"]),
        timings=json.loads(row["timings"]),
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def csv_safe(value: Any) -> Any:
    """A cell that a spreadsheet will show as text, never run as a formula."""
    # A comment such as "=HYPERLINK(…)" must stay text when a maintainer opens the CSV in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
