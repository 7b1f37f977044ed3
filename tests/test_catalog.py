"""The catalog of an index generation: typed round-trip, older files, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import store
from assistant.catalog import Catalog, CatalogEntry, CatalogError, CatalogFailure
from assistant.errors import AssistantError

GUIDE = CatalogEntry(
    doc_id="guide", source_path="guide-alliances.pdf", title="Guide des alliances", publisher="Le RAMEAU",
    url="https://exemple.fr/guide", edition="2024", themes=("alliances", "odd"), format="pdf", pages=3,
    passages=7, file_hash="a" * 64, signature="b" * 64, indexed_at="2026-01-02T03:04:05+00:00",
)
BROKEN = CatalogEntry(doc_id="mooc", source_path="mooc.md", format="md", pages=1, passages=2, status="failed",
                      reason="lecture impossible (Permission denied)")


def _catalog() -> Catalog:
    return Catalog(
        generation="20260102-030405-abcdef", embedder="hash:256", dim=256, created="2026-01-02T03:04:05+00:00",
        documents={"guide-alliances.pdf": GUIDE, "mooc.md": BROKEN},
        failed=(CatalogFailure("mooc.md", BROKEN.reason),), chunk_words=60, chunk_overlap_words=10,
        boilerplate_openings=("cette fiche ressource est un résumé",),
    )


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    generation = store.Generation("g", tmp_path)
    store.write_catalog(generation, _catalog())
    assert store.read_catalog(generation) == _catalog()
    on_disk = json.loads(generation.catalog_path.read_text(encoding="utf-8"))
    # The on-disk shape the ingestion job has always written.
    assert set(on_disk) == {"generation", "embedder", "dim", "created", "documents", "failed", "settings",
                            "boilerplate_openings"}
    assert on_disk["settings"] == {"chunk_words": 60, "overlap": 10}
    assert on_disk["documents"]["guide-alliances.pdf"]["themes"] == ["alliances", "odd"]
    assert "reason" not in on_disk["documents"]["guide-alliances.pdf"]
    assert on_disk["failed"] == [{"path": "mooc.md", "reason": BROKEN.reason}]


def test_lookups() -> None:
    catalog = _catalog()
    assert catalog.find("guide") == GUIDE and catalog.find("absent") is None
    assert catalog.passages == 9 and list(catalog.entries()) == [GUIDE, BROKEN]


def test_a_catalog_written_before_some_keys_existed_still_loads() -> None:
    old = Catalog.from_json({"documents": {"notes.txt": {"doc_id": "notes", "title": "Notes", "passages": 2}},
                             "failed": [], "unknown-key": True})
    entry = old.documents["notes.txt"]
    assert entry.source_path == "notes.txt" and entry.status == "indexed" and entry.themes == ()
    assert old.embedder is None and old.dim is None and old.boilerplate_openings == ()


def test_a_missing_catalog_is_empty(tmp_path: Path) -> None:
    assert store.read_catalog(store.Generation("g", tmp_path)) == Catalog()


@pytest.mark.parametrize(("content", "expected"), [
    ("{ pas du json", "n'est pas du JSON valide"),
    ("[]", "un objet JSON est attendu"),
    ('{"documents": []}', "« documents » doit être un objet"),
    ('{"documents": {"a.md": "texte"}}', "document « a.md » : un objet JSON est attendu"),
    ('{"documents": {"a.md": {"doc_id": "a", "pages": "trois"}}}', "« pages » doit être un entier"),
    ('{"documents": {"a.md": {"doc_id": "a", "pages": -1}}}', "« pages » doit être un entier"),
    ('{"documents": {"a.md": {"doc_id": 3}}}', "« doc_id » doit être un texte"),
    ('{"documents": {"a.md": {"doc_id": "a", "themes": "odd"}}}', "« themes » doit être une liste de textes"),
    ('{"documents": {"a.md": {"doc_id": "a", "status": "perdu"}}}', "statut inconnu « perdu »"),
    ('{"failed": {"path": "x"}}', "« failed » doit être une liste"),
    ('{"boilerplate_openings": [1]}', "« boilerplate_openings » doit être une liste de textes"),
])
def test_a_malformed_catalog_is_one_french_sentence(tmp_path: Path, content: str, expected: str) -> None:
    generation = store.Generation("g", tmp_path)
    generation.catalog_path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        store.read_catalog(generation)
    message = str(caught.value)
    assert isinstance(caught.value, AssistantError)
    assert expected in message and str(generation.catalog_path) in message
    assert "python -m ingest --rebuild" in message
