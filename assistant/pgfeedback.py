"""The answer log and the feedback in PostgreSQL, shared by every replica of a server deployment.

Same interface and checks as :class:`assistant.feedback.FeedbackStore` (the CSV/JSONL export is
inherited): feedback given on one replica is seen from every other.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.feedback import AnswerRecord, FeedbackError, FeedbackRecord, FeedbackStore, _now, checked_feedback
from assistant.pgstore import Database, DatabaseError
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
                    (answer_id, _now(), channel, answer.question, answer.standalone_question, answer.text,
                     answer.mode, plain_language, answer.abstained, answer.notice,
                     Jsonb([c.to_json() for c in answer.citations]), Jsonb([p.to_json() for p in answer.passages]),
                     Jsonb(_plain(settings)), Jsonb({k: round(v, 4) for k, v in answer.timings.items()})),
                )
        except DatabaseError as exc:
            # The answer still goes out; only its trace is lost (the database may be back for the next one).
            log.warning("Réponse non enregistrée : %s", exc)
        return answer_id

    def add_feedback(self, answer_id: str, rating: str | None, tags: Sequence[str] = (), comment: str = "") -> int:
        from psycopg.types.json import Jsonb

        rating, clean_tags, comment = checked_feedback(rating, tags, comment)
        with self.database.connect() as conn:
            if conn.execute("SELECT 1 FROM answers WHERE id = %s", (answer_id,)).fetchone() is None:
                raise FeedbackError("Cette réponse est introuvable : votre avis n'a pas pu être enregistré.")
            row = conn.execute(
                "INSERT INTO feedback (answer_id, created_at, rating, tags, comment) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING id", (answer_id, _now(), rating, Jsonb(clean_tags), comment)).fetchone()
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


def _answer_record(row: Sequence[Any]) -> AnswerRecord:
    (answer_id, created_at, channel, question, standalone, text, mode, plain, abstained, notice,
     citations, passages, settings, timings) = row
    return AnswerRecord(answer_id, created_at, channel, question, standalone, text, mode, bool(plain),
                        bool(abstained), notice, list(citations), list(passages), dict(settings), dict(timings))


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    # Paths and other objects of the public settings become text, as in the SQLite log.
    return dict(json.loads(json.dumps(value, ensure_ascii=False, default=str)))
