"""Which edition a past answer quoted, and whether it has been replaced or removed since.

Each citation stored with an answer carries the edition label and the sha256 of the file it was quoted
from (:meth:`assistant.schema.Citation.to_json`); the served catalog and the audit trail's completed
replacements tell what happened to that edition since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assistant.audit import AuditEntry
from assistant.catalog import Catalog
from webui.render import edition_of, esc, format_date


@dataclass(frozen=True)
class Replacement:
    """A completed replacement, as the audit trail recorded it."""

    old_edition: str  # the edition replaced: its label or the day it was indexed ("" in rows written before)
    old_hash: str  # sha256 of the file replaced
    at: str  # when the new edition went into service (ISO 8601)


def replacements(entries: Iterable[AuditEntry]) -> dict[tuple[str, str], Replacement]:
    """For each (document id, sha256 of an edition), the replacement that put that edition in service;
    ``entries`` most recent first (as :meth:`assistant.audit.AuditLog.entries` returns them)."""
    found: dict[tuple[str, str], Replacement] = {}
    for entry in entries:
        if entry.action != "replace" or entry.outcome != "done":
            continue
        key = (entry.doc_id, str(entry.detail.get("new_hash", "")))
        if key[1] and key not in found:  # a file uploaded twice: its latest replacement counts
            found[key] = Replacement(str(entry.detail.get("old_edition", "")),
                                     str(entry.detail.get("old_hash", "")), entry.at)
    return found


def _edition_words(label: str, answered_at: str) -> str:
    return f"l'édition {edition_of(label.strip() or format_date(answered_at))}"


def edition_notes(citations: list[dict[str, Any]], answered_at: str, catalog: Catalog,
                  replacements: Mapping[str, list[tuple[str, str]]]) -> list[str]:
    """One French sentence per cited document whose quoted edition is no longer the one in service."""
    current = {e.doc_id: e for e in catalog.documents.values()}
    notes: list[str] = []
    seen: set[str] = set()
    for citation in citations:
        doc_id, quoted = str(citation.get("doc_id", "")), str(citation.get("file_hash", ""))
        if not doc_id or not quoted or doc_id in seen:
            continue  # answers logged before editions were recorded say nothing
        seen.add(doc_id)
        title = str(citation.get("title", "")) or doc_id
        edition = _edition_words(str(citation.get("edition", "")), answered_at)
        entry = current.get(doc_id)
        if entry is None:
            notes.append(f"« {title} » : citée d'après {edition}, document retiré depuis.")
        elif entry.file_hash != quoted:
            when = next((at for at, old in replacements.get(doc_id, []) if old == quoted), entry.indexed_at)
            notes.append(f"« {title} » : citée d'après {edition}, remplacée le {format_date(when)}.")
    return notes


def render_edition_notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return f'<div class="editions"><p>Éditions citées :</p><ul>{items}</ul></div>'
