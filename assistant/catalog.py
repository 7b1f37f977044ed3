"""The catalog of an index generation: what was indexed, from which file, with what result.

The ingestion job writes it (``catalog.json`` in the generation's folder) and everything else reads it
through :class:`Catalog`, never as a raw dict. The file is checked when it is loaded: a hand-edited or
truncated catalog gives one French sentence (:class:`CatalogError`), not a ``KeyError`` three calls later.

On disk (``indent=1`` JSON, see :meth:`Catalog.to_json`)::

    {"generation": …, "embedder": …, "dim": …, "created": …,
     "documents": {"<corpus-relative path>": {"doc_id": …, "title": …, …}},
     "failed": [{"path": …, "reason": …}],
     "settings": {"chunk_words": …, "overlap": …},
     "boilerplate_openings": […]}

Keys a catalog does not know are ignored; missing optional keys take their defaults, so catalogs written
by older versions still load.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from assistant.errors import AssistantError

DocumentStatus = Literal["indexed", "unchanged", "failed"]
_STATUSES: tuple[DocumentStatus, ...] = ("indexed", "unchanged", "failed")


class CatalogError(AssistantError, ValueError):
    """The catalog file cannot be read or does not have the expected shape (message in French)."""


@dataclass(frozen=True)
class CatalogEntry:
    """One corpus file as the last ingestion saw it."""

    doc_id: str
    source_path: str  # relative to the corpus folder, POSIX separators
    title: str = ""
    publisher: str = ""
    url: str = ""
    edition: str = ""
    themes: tuple[str, ...] = ()
    format: str = ""  # pdf | html | md | docx | txt
    pages: int = 0
    passages: int = 0  # 0 for a file that never produced one (it is then left out of the catalog)
    file_hash: str = ""  # sha256 of the file's bytes
    signature: str = ""  # hash of its manifest entry and chunking settings: a change re-processes the file
    indexed_at: str = ""  # ISO 8601, UTC
    status: DocumentStatus = "indexed"
    reason: str = ""  # why the last run failed to read it ("" unless status is "failed")

    @classmethod
    def from_json(cls, rel: str, data: object) -> CatalogEntry:
        where = f"document « {rel} »"
        if not isinstance(data, Mapping):
            raise _invalid(f"{where} : un objet JSON est attendu")
        status = _text(data, "status", where, "indexed")
        if status not in _STATUSES:
            raise _invalid(f"{where} : statut inconnu « {status} »")
        return cls(
            doc_id=_text(data, "doc_id", where, ""),
            source_path=_text(data, "source_path", where, rel),
            title=_text(data, "title", where),
            publisher=_text(data, "publisher", where),
            url=_text(data, "url", where),
            edition=_text(data, "edition", where),
            themes=_texts(data, "themes", where),
            format=_text(data, "format", where),
            pages=_count(data, "pages", where),
            passages=_count(data, "passages", where),
            file_hash=_text(data, "file_hash", where),
            signature=_text(data, "signature", where),
            indexed_at=_text(data, "indexed_at", where),
            status=cast(DocumentStatus, status),
            reason=_text(data, "reason", where),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "doc_id": self.doc_id, "source_path": self.source_path, "title": self.title,
            "publisher": self.publisher, "url": self.url, "edition": self.edition, "themes": list(self.themes),
            "format": self.format, "pages": self.pages, "passages": self.passages, "file_hash": self.file_hash,
            "signature": self.signature, "indexed_at": self.indexed_at, "status": self.status,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class CatalogFailure:
    """A file the generation's ingestion could not read, and why (French)."""

    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Catalog:
    """What one index generation holds; an empty catalog stands for "no generation yet"."""

    generation: str = ""
    embedder: str | None = None  # None in catalogs written before the key existed
    dim: int | None = None
    created: str = ""  # ISO 8601, UTC
    # Keyed by corpus-relative path; only documents that have passages in this generation.
    documents: Mapping[str, CatalogEntry] = field(default_factory=dict)
    failed: tuple[CatalogFailure, ...] = ()
    chunk_words: int | None = None
    chunk_overlap_words: int | None = None
    # Sentence openings repeated across documents (disclaimers, cover notes): never quoted.
    boilerplate_openings: tuple[str, ...] = ()

    def entries(self) -> Iterator[CatalogEntry]:
        return iter(self.documents.values())

    def find(self, doc_id: str) -> CatalogEntry | None:
        """The document with this id (ids are unique within a generation), or None."""
        return next((entry for entry in self.documents.values() if entry.doc_id == doc_id), None)

    @property
    def passages(self) -> int:
        return sum(entry.passages for entry in self.documents.values())

    @classmethod
    def from_json(cls, data: object) -> Catalog:
        """Check and convert the parsed ``catalog.json``; raises :class:`CatalogError` on a wrong shape."""
        if not isinstance(data, Mapping):
            raise _invalid("un objet JSON est attendu")
        raw_docs = data.get("documents", {})
        if not isinstance(raw_docs, Mapping):
            raise _invalid("« documents » doit être un objet (chemin du fichier → description)")
        raw_failed = data.get("failed", [])
        if not isinstance(raw_failed, list):
            raise _invalid("« failed » doit être une liste")
        failed = []
        for item in raw_failed:
            if not isinstance(item, Mapping):
                raise _invalid("chaque entrée de « failed » doit être un objet")
            failed.append(CatalogFailure(_text(item, "path", "« failed »"), _text(item, "reason", "« failed »")))
        chunking = data.get("settings", {})
        if not isinstance(chunking, Mapping):
            raise _invalid("« settings » doit être un objet")
        return cls(
            generation=_text(data, "generation", "le catalogue"),
            embedder=_optional_text(data, "embedder"),
            dim=_optional_count(data, "dim", "le catalogue"),
            created=_text(data, "created", "le catalogue"),
            documents={str(rel): CatalogEntry.from_json(str(rel), doc) for rel, doc in raw_docs.items()},
            failed=tuple(failed),
            chunk_words=_optional_count(chunking, "chunk_words", "« settings »"),
            chunk_overlap_words=_optional_count(chunking, "overlap", "« settings »"),
            boilerplate_openings=_texts(data, "boilerplate_openings", "le catalogue"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "embedder": self.embedder,
            "dim": self.dim,
            "created": self.created,
            "documents": {rel: entry.to_json() for rel, entry in self.documents.items()},
            "failed": [failure.to_json() for failure in self.failed],
            "settings": {"chunk_words": self.chunk_words, "overlap": self.chunk_overlap_words},
            "boilerplate_openings": list(self.boilerplate_openings),
        }

    @classmethod
    def load(cls, path: Path) -> Catalog:
        """The catalog in ``path``; an empty catalog when the file does not exist."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"Le catalogue de l'index ({path}) est illisible : {exc}. {_REBUILD}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(
                f"Le catalogue de l'index ({path}) n'est pas du JSON valide (ligne {exc.lineno}). {_REBUILD}"
            ) from exc
        try:
            return cls.from_json(data)
        except CatalogError as exc:
            raise CatalogError(f"Le catalogue de l'index ({path}) est invalide : {exc}") from exc


_REBUILD = "Reconstruisez l'index : python -m ingest --rebuild"


def _invalid(detail: str) -> CatalogError:
    # The detail is completed with the file's path by Catalog.load, which knows it.
    return CatalogError(f"{detail}. {_REBUILD}")


def _text(data: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid(f"{where} : « {key} » doit être un texte")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else _text(data, key, "le catalogue")


def _count(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{where} : « {key} » doit être un entier positif ou nul")
    return value


def _optional_count(data: Mapping[str, Any], key: str, where: str) -> int | None:
    return None if data.get(key) is None else _count(data, key, where)


def _texts(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{where} : « {key} » doit être une liste de textes")
    return tuple(value)
