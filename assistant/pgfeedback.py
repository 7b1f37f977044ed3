"""The answer log, the feedback and the audit trail in PostgreSQL, shared by every replica of a server deployment.

Same interfaces and checks as :class:`assistant.feedback.FeedbackStore` and :class:`assistant.audit.AuditLog`
(the CSV/JSONL exports are inherited): feedback given, or a document changed, on one replica is seen from
every other. The retention purge has the SQLite one's contract (export written and flushed to disk first,
then the delete, in one transaction) and is safe when several replicas run it at once.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant.audit import AuditAction, AuditEntry, AuditLog
from assistant.feedback import (
    AnswerRecord,
    FeedbackError,
    FeedbackRecord,
    FeedbackStore,
    Purge,
    checked_feedback,
    cutoff_stamp,
    export_then_delete,
    now,
)
from assistant.pgstore import RETENTION_LOCK, Database, DatabaseError
from assistant.schema import Answer

log = logging.getLogger(__name__)

_ANSWER_COLUMNS = ("id, created_at, channel, question, standalone_question, answer, mode, plain_language, "
                   "abstained, notice, citations, passages, settings, timings")


class PgFeedbackStore(FeedbackStore):
    def __init__(self, database: Database) -> None:
        # The parent's SQLite file is never opened: every method that would use it is replaced here.
        super().__init__(path=Path("/nonexistent/feedback-in-postgresql"))
        self.database = database

    def log_answer(self, answer: Answer, settings: dict[str, Any], *, channel: str = "chat",
                   plain_language: bool = False) -> str:
        from psycopg.types.json import Jsonb

        answer_id = uuid.uuid4().hex
        try:
            with self.database.connect() as conn:
                conn.execute(
                    f"INSERT INTO answers ({_ANSWER_COLUMNS}) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (answer_id, now(), channel, answer.question, answer.standalone_question, answer.text,
                     answer.mode, plain_language, answer.abstained, answer.notice,
                     Jsonb([c.to_json() for c in answer.citations]), Jsonb([p.to_json() for p in answer.passages]),
                     Jsonb(_plain(settings)), Jsonb({k: round(v, 4) for k, v in answer.timings.items()})),
                )
        except DatabaseError as exc:
            # The answer still goes out; only its trace is lost (the database may be back for the next one).
            log.warning("Réponse non enregistrée : %s", exc)
        return answer_id

    def add_feedback(self, answer_id: str, rating: str | None, tags: Sequence[str] = (), comment: str = "") -> int:
        from psycopg.errors import ForeignKeyViolation
        from psycopg.types.json import Jsonb

        rating, clean_tags, comment = checked_feedback(rating, tags, comment)
        gone = FeedbackError("Cette réponse est introuvable : votre avis n'a pas pu être enregistré.")
        with self.database.connect() as conn:
            if conn.execute("SELECT 1 FROM answers WHERE id = %s", (answer_id,)).fetchone() is None:
                raise gone
            try:
                row = conn.execute(
                    "INSERT INTO feedback (answer_id, created_at, rating, tags, comment) VALUES (%s, %s, %s, %s, "
                    "%s) RETURNING id", (answer_id, now(), rating, Jsonb(clean_tags), comment)).fetchone()
            except ForeignKeyViolation:  # purged by another replica between the check and the insert
                raise gone from None
        return int(row[0]) if row else 0

    def list_answers(self, limit: int = 100) -> list[AnswerRecord]:
        with self.database.connect() as conn:
            rows = conn.execute(f"SELECT {_ANSWER_COLUMNS} FROM answers ORDER BY created_at DESC, seq DESC "
                                "LIMIT %s", (limit,)).fetchall()
        return [_answer_record(r) for r in rows]

    def get_answer(self, answer_id: str) -> AnswerRecord | None:
        with self.database.connect() as conn:
            row = conn.execute(f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE id = %s", (answer_id,)).fetchone()
        return _answer_record(row) if row else None

    def list_feedback(self, answer_id: str | None = None) -> list[FeedbackRecord]:
        query = ("SELECT id, answer_id, created_at, rating, tags, comment FROM feedback"
                 + (" WHERE answer_id = %s" if answer_id else "") + " ORDER BY id")
        with self.database.connect() as conn:
            rows = conn.execute(query, (answer_id,) if answer_id else ()).fetchall()
        return [FeedbackRecord(int(r[0]), r[1], r[2], r[3], list(r[4]), r[5]) for r in rows]

    def _export_rows(self) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self.database.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT f.id AS feedback_id, f.created_at AS feedback_at, f.rating, f.tags, f.comment, "
                "a.id AS answer_id, a.created_at AS answered_at, a.channel, a.question, a.standalone_question, "
                "a.answer, a.mode, a.plain_language, a.abstained, a.notice, a.citations, a.passages, a.settings "
                "FROM feedback f JOIN answers a ON a.id = f.answer_id ORDER BY f.id").fetchall()
        return [dict(r) for r in rows]


    # -- retention -----------------------------------------------------------------------------------------

    # How long a purge waits for another replica's purge before giving up (that one is then doing the work).
    purge_wait_s: float = 300.0

    def purge_before(self, cutoff: datetime, archive_dir: Path) -> Purge:
        """Delete the answers logged before ``cutoff`` and all their feedback, after writing them to a JSONL file
        (the contract of :meth:`FeedbackStore.purge_before`).

        One transaction: an advisory lock taken for the transaction serializes the purges of all replicas
        (replicas that start together each purge at start: the first exports and deletes, the next ones wait
        for it, then find nothing left and write no file); the old answers are locked ``FOR UPDATE``, so that
        feedback given meanwhile on one of them waits, then fails as « introuvable » rather than be deleted
        without having been exported. The file is written and flushed before any row is deleted; only the
        exported rows are deleted; a failed delete removes the file (:func:`~assistant.feedback.export_then_delete`).
        """
        from psycopg.errors import LockNotAvailable

        stamp = cutoff_stamp(cutoff)
        with self.database.connect() as conn:
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{round(self.purge_wait_s * 1000)}ms",))
            try:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (RETENTION_LOCK,))
            except LockNotAvailable:
                raise FeedbackError("Le journal n'a pas été purgé ici : une autre instance le purge déjà depuis "
                                    f"plus de {round(self.purge_wait_s)} s ; rien n'a été supprimé.") from None
            answers = conn.execute(f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE created_at < %s "
                                   "ORDER BY created_at, seq FOR UPDATE", (stamp,)).fetchall()
            if not answers:
                return Purge(0, 0, None)
            ids = [row[0] for row in answers]
            feedback: dict[str, list[dict[str, Any]]] = {}
            for fid, answer_id, created_at, rating, tags, comment in conn.execute(
                    "SELECT id, answer_id, created_at, rating, tags, comment FROM feedback "
                    "WHERE answer_id = ANY(%s) ORDER BY id", (ids,)):
                feedback.setdefault(answer_id, []).append(
                    {"id": int(fid), "created_at": created_at, "rating": rating, "tags": list(tags),
                     "comment": comment})

            def delete() -> int:
                given = conn.execute("DELETE FROM feedback WHERE answer_id = ANY(%s)", (ids,)).rowcount
                conn.execute("DELETE FROM answers WHERE id = ANY(%s)", (ids,))
                return given

            # A COMMIT the server answered with an error was rolled back; one cut off by a lost connection may
            # have been applied: its outcome is unknown.
            archive, given = export_then_delete(
                [asdict(_answer_record(row)) | {"feedback": feedback.get(row[0], [])} for row in answers],
                archive_dir, stamp, delete, conn.commit, rolled_back=lambda: not conn.broken)
        return Purge(len(answers), given, archive)


class PgAuditLog(AuditLog):
    """The ``audit`` table in the deployment's database (schema migration 2); the export is inherited."""

    def __init__(self, database: Database) -> None:  # no SQLite store behind it: super().__init__ is not called
        self.database = database

    def record(self, user: str, action: AuditAction, doc_id: str, file: str = "", outcome: str = "requested",
               detail: dict[str, Any] | None = None) -> int:
        from psycopg.types.json import Jsonb

        with self.database.connect() as conn:
            row = conn.execute(
                'INSERT INTO audit (at, "user", action, doc_id, file, outcome, detail) VALUES '
                "(%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (now(), user, action, doc_id, file, outcome, Jsonb(_plain(detail or {})))).fetchone()
        return int(row[0]) if row else 0

    def entries(self, doc_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Most recent first."""
        columns = 'id, at, "user", action, doc_id, file, outcome, detail'
        with self.database.connect() as conn:
            if doc_id is None:
                rows = conn.execute(f"SELECT {columns} FROM audit ORDER BY id DESC LIMIT %s", (limit,)).fetchall()
            else:
                rows = conn.execute(f"SELECT {columns} FROM audit WHERE doc_id = %s ORDER BY id DESC LIMIT %s",
                                    (doc_id, limit)).fetchall()
        return [AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], dict(r[7])) for r in rows]


def _answer_record(row: Sequence[Any]) -> AnswerRecord:
    (answer_id, created_at, channel, question, standalone, text, mode, plain, abstained, notice,
     citations, passages, settings, timings) = row
    return AnswerRecord(answer_id, created_at, channel, question, standalone, text, mode, bool(plain),
                        bool(abstained), notice, list(citations), list(passages), dict(settings), dict(timings))


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    # Paths and other objects of the public settings become text, as in the SQLite log.
    return dict(json.loads(json.dumps(value, ensure_ascii=False, default=str)))
