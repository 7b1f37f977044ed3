"""Who added, replaced, described or removed which corpus document, and when: the audit trail.

Kept in the feedback store's SQLite file (its own table, ``audit``), so that one file holds what the
assistant answered and how its corpus changed; exported as CSV or JSONL for the maintainers. Rows are
only ever appended: an action is written when it is asked for (``requested``) and again with its
outcome once the ingestion job has run (``done`` or ``failed``).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from assistant.errors import AssistantError

AuditAction = Literal["add", "replace", "describe", "remove"]
ACTION_LABELS: dict[str, str] = {"add": "ajout", "replace": "nouvelle édition", "describe": "description",
                                 "remove": "retrait"}
EXPORT_COLUMNS = ("id", "at", "user", "action", "doc_id", "file", "outcome", "detail")

_SCHEMA = """
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


class AuditError(AssistantError, ValueError):
    """An export asked in an unknown format (message in French)."""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str  # ISO 8601, UTC
    user: str
    action: str
    doc_id: str
    file: str
    outcome: str  # requested, done, failed
    detail: dict[str, Any]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class AuditLog:
    """The ``audit`` table of the feedback store's SQLite file (created on first write)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
            with conn:
                yield conn

    def record(self, user: str, action: AuditAction, doc_id: str, file: str = "", outcome: str = "requested",
               detail: dict[str, Any] | None = None) -> int:
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO audit (at, user, action, doc_id, file, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now(), user, action, doc_id, file, outcome, json.dumps(detail or {}, ensure_ascii=False)),
            )
            return int(cursor.lastrowid or 0)

    def entries(self, doc_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Most recent first."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            if doc_id is None:
                rows = conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute("SELECT * FROM audit WHERE doc_id = ? ORDER BY id DESC LIMIT ?",
                                    (doc_id, limit)).fetchall()
        return [AuditEntry(r["id"], r["at"], r["user"], r["action"], r["doc_id"], r["file"], r["outcome"],
                           json.loads(r["detail"])) for r in rows]

    def replacements(self) -> dict[str, list[tuple[str, str]]]:
        """For each document id, its completed replacements as (date, hash of the edition replaced), oldest first."""
        found: dict[str, list[tuple[str, str]]] = {}
        for entry in reversed(self.entries(limit=100_000)):
            if entry.action == "replace" and entry.outcome == "done":
                found.setdefault(entry.doc_id, []).append((entry.at, str(entry.detail.get("old_hash", ""))))
        return found

    def export(self, out: IO[str], fmt: str = "csv") -> int:
        """Every row, oldest first, as CSV or JSONL; returns the number of rows."""
        if fmt not in ("csv", "jsonl"):
            raise AuditError("Format d'export inconnu (csv ou jsonl).")
        rows = [asdict(e) for e in reversed(self.entries(limit=1_000_000))]
        if fmt == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            return len(rows)
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            row["detail"] = json.dumps(row["detail"], ensure_ascii=False)
            writer.writerow({k: _csv_safe(v) for k, v in row.items()})
        return len(rows)


def _csv_safe(value: Any) -> Any:
    # A title such as "=HYPERLINK(…)" must stay text when the export is opened in a spreadsheet.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
