"""Which edition a past answer quoted, and whether it has been replaced or removed since.

Each citation stored with an answer carries the edition label and the sha256 of the file it was quoted
from (:meth:`assistant.schema.Citation.to_json`); the served catalog and the audit trail's completed
replacements tell what happened to that edition since.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.catalog import Catalog
from webui.render import esc, format_date


def _edition_words(label: str, answered_at: str) -> str:
    label = label.strip() or format_date(answered_at)
    return f"l'édition {'du' if label[:1].isdigit() else 'de'} {label}"


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
