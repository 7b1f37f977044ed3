"""Who added, replaced, described or removed which corpus document, and when: the audit trail.

A table of the feedback store (``audit``, declared with the store's other tables in
:mod:`assistant.feedback`, and written through its connection helper and clock), so that one store holds
what the assistant answered and how its corpus changed; in a server deployment, the same table in
PostgreSQL (:class:`assistant.pgfeedback.PgAuditLog`, from :func:`assistant.shared_state.audit_log`).
Exported as CSV or JSONL for the maintainers. Rows are only ever appended: an action is written when it
is asked for (``requested``) and again with its outcome once the ingestion job has run (``done`` or
``failed``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Literal

from assistant.errors import AssistantError
from assistant.feedback import FeedbackStore, csv_safe, now

AuditAction = Literal["add", "replace", "describe", "remove"]
ACTION_LABELS: dict[str, str] = {"add": "ajout", "replace": "nouvelle édition", "describe": "description",
                                 "remove": "retrait"}
EXPORT_COLUMNS = ("id", "at", "user", "action", "doc_id", "file", "outcome", "detail")


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


class AuditLog:
    """The ``audit`` table of the feedback store's SQLite file at ``path`` (created on first write).

    :class:`assistant.pgfeedback.PgAuditLog` replaces :meth:`record` and :meth:`entries` for PostgreSQL; the
    rest is written on those two.
    """

    def __init__(self, path: Path) -> None:
        self.store = FeedbackStore(path)

    def record(self, user: str, action: AuditAction, doc_id: str, file: str = "", outcome: str = "requested",
               detail: dict[str, Any] | None = None) -> int:
        with self.store.connect(write=True) as conn:
            cursor = conn.execute(
                "INSERT INTO audit (at, user, action, doc_id, file, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now(), user, action, doc_id, file, outcome, json.dumps(detail or {}, ensure_ascii=False)),
            )
            return int(cursor.lastrowid or 0)

    def entries(self, doc_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Most recent first."""
        if not self.store.exists():
            return []
        with self.store.connect() as conn:
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
            writer.writerow({k: csv_safe(v) for k, v in row.items()})
        return len(rows)

