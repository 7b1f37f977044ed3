"""What the Sources tab shows: the documents of the current index and their statuses.

Read from the catalog of the current index generation and from ``last_run.json``, where the
ingestion job writes every file's status — including the files that failed, with their reason —
whether or not it produced a new generation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.catalog import Catalog, CatalogEntry
from assistant.embeddings import fold
from assistant.settings import Settings
from webui.editions import Replacement

LAST_RUN = "last_run.json"  # written by ingest.index._write_last_run


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    source_path: str
    title: str
    publisher: str
    format: str
    pages: int
    passages: int
    indexed_at: str
    status: str  # indexed | unchanged | failed
    reason: str = ""
    url: str = ""
    edition: str = ""  # the manifest's edition label of the file indexed
    file_hash: str = ""  # sha256 of that file: which edition is in service
    replaces: str = ""  # the edition it replaced (label or day), "" unless a new edition put it in service
    replaced_at: str = ""  # when that new edition went into service (ISO 8601)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _row(rel: str, doc: dict[str, Any], status: str | None = None) -> DocumentRow:
    """A row from ``last_run.json``'s description of a file (any key may be missing)."""
    return DocumentRow(
        doc_id=str(doc.get("doc_id", "")),
        source_path=rel,
        title=str(doc.get("title") or Path(rel).stem),
        publisher=str(doc.get("publisher", "")),
        format=str(doc.get("format", "")),
        pages=int(doc.get("pages", 0) or 0),
        passages=int(doc.get("passages", 0) or 0),
        indexed_at=str(doc.get("indexed_at", "")),
        status=status or str(doc.get("status", "indexed")),
        reason=str(doc.get("reason", "")),
        url=str(doc.get("url", "")),
        edition=str(doc.get("edition", "")),
        file_hash=str(doc.get("file_hash", "")),
    )


def _indexed_row(rel: str, entry: CatalogEntry, status: str, reason: str,
                 replaced: Replacement | None) -> DocumentRow:
    return DocumentRow(
        doc_id=entry.doc_id,
        source_path=rel,
        title=entry.title or Path(rel).stem,
        publisher=entry.publisher,
        format=entry.format,
        pages=entry.pages,
        passages=entry.passages,
        indexed_at=entry.indexed_at,
        status=status,
        reason=reason,
        url=entry.url,
        edition=entry.edition,
        file_hash=entry.file_hash,
        replaces=replaced.old_edition if replaced else "",
        replaced_at=replaced.at if replaced else "",
    )


def read_last_run(data_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((data_dir / LAST_RUN).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, ValueError):
        return {}


def document_rows(catalog: Catalog, last_run: dict[str, Any],
                  replacements: Mapping[tuple[str, str], Replacement] | None = None) -> list[DocumentRow]:
    """Every document known to the index or to the last ingestion run, with its status; ``replacements``
    (:func:`webui.editions.replacements`) tells which edition each file in service replaced."""
    statuses: dict[str, Any] = dict(last_run.get("documents", {}))
    replaced = replacements or {}
    rows: dict[str, DocumentRow] = {}
    for rel, entry in catalog.documents.items():
        # The last run may be newer than the catalog (nothing changed) or describe a failure.
        latest = statuses.get(rel)
        before = replaced.get((entry.doc_id, entry.file_hash))
        if latest:
            rows[rel] = _indexed_row(rel, entry, str(latest.get("status")), str(latest.get("reason", "")), before)
        else:
            rows[rel] = _indexed_row(rel, entry, entry.status, entry.reason, before)
    for rel, doc in statuses.items():
        if rel not in rows:
            rows[rel] = _row(rel, doc)
    for failure in catalog.failed:
        if failure.path and failure.path not in rows:
            rows[failure.path] = _row(failure.path, {"status": "failed", "reason": failure.reason})
    return sorted(rows.values(), key=lambda r: (r.status != "failed", fold(r.title)))


def filter_rows(
    rows: Sequence[DocumentRow], query: str = "", publisher: str = "", fmt: str = "", status: str = ""
) -> list[DocumentRow]:
    """Search in titles, publishers, ids and paths (accents and case ignored), then filter."""
    needle = fold(query.strip())
    out = []
    for r in rows:
        if needle and needle not in fold(f"{r.title} {r.publisher} {r.doc_id} {r.source_path} {r.reason}"):
            continue
        if publisher and r.publisher != publisher:
            continue
        if fmt and r.format != fmt:
            continue
        if status and r.status != status:
            continue
        out.append(r)
    return out


def status_summary(settings: Settings, catalog: Catalog | None, generation: str | None,
                   llm_label: str) -> dict[str, Any]:
    if not generation or catalog is None:
        return {"generation": None, "embedder": settings.embedder, "llm": llm_label}
    return {
        "generation": generation,
        "documents": len(catalog.documents),
        "passages": catalog.passages,
        "failed": len(catalog.failed),
        "embedder": catalog.embedder or settings.embedder,
        "llm": llm_label,
    }


def llm_label(settings: Settings, available: bool) -> str:
    if not available:
        return "aucun (réponses par extraits)"
    model = settings.llm_model or Path(settings.llm_model_path).name or "modèle par défaut"
    return f"{settings.llm_backend} ({model})"
