"""Hybrid retrieval on a real (tiny) index: modes, filters, floor, glossary, reranker, generation switch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant import store
from assistant.retrieve import Filters, Retriever
from assistant.settings import Settings
from ingest.index import run_ingest


@pytest.fixture
def indexed(settings: Settings, fake_embedder) -> Settings:  # type: ignore[no-untyped-def]
    glossary = settings.corpus_dir.parent / "glossary.yaml"
    glossary.write_text(
        "terms:\n  - acronym: ODD\n    expansion: objectifs de développement durable\n"
        "  - acronym: ANCT\n    expansion: Agence nationale de la cohésion des territoires\n",
        encoding="utf-8",
    )
    settings = settings.with_overrides(glossary_file=glossary)
    run_ingest(settings, embedder=fake_embedder, progress=False)
    return settings


def test_each_mode_finds_the_right_page(indexed: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    retriever = Retriever(indexed, fake_embedder)
    for mode in ("dense", "bm25", "hybrid"):
        result = retriever.search("Quelles sont les missions d'un catalyseur territorial ?", mode=mode)  # type: ignore[arg-type]
        top = result.passages[0]
        assert (top.source_path, top.page) == ("guide-alliances.pdf", 1), mode
        assert top.title == "Guide des alliances" and top.section == "Les catalyseurs territoriaux"
    hybrid = retriever.search("catalyseurs territoriaux missions", mode="hybrid")
    assert set(hybrid.passages[0].retrievers) == {"dense", "bm25"}
    assert hybrid.passages[0].dense_score is not None and hybrid.passages[0].bm25_score is not None


def test_glossary_expands_acronyms_both_ways(indexed: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    retriever = Retriever(indexed, fake_embedder)
    result = retriever.search("Que fait l'ANCT ?", mode="bm25")
    assert "cohésion des territoires" in result.expanded_query
    assert result.passages[0].source_path == "observatoire.html"
    assert "ODD" in retriever.search("objectifs de développement durable", mode="bm25").expanded_query


def test_filters_by_document_publisher_format(indexed: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    retriever = Retriever(indexed, fake_embedder)
    q = "les partenariats et la co-construction"
    only_md = retriever.search(q, filters=Filters(formats=("md",)))
    assert only_md.passages and {p.format for p in only_md.passages} == {"md"}
    only_doc = retriever.search(q, filters=Filters(doc_ids=("lettre",)))
    assert {p.doc_id for p in only_doc.passages} == {"lettre"}
    nothing = retriever.search(q, filters=Filters(publishers=("Éditeur inconnu",)))
    assert nothing.passages == [] and nothing.below_floor


def test_relevance_floor_says_so(indexed: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    strict = Retriever(indexed.with_overrides(relevance_floor=0.99), fake_embedder)
    result = strict.search("Quel est le montant de la dotation globale de fonctionnement ?")
    assert result.below_floor and result.best_similarity < 0.99
    lenient = Retriever(indexed.with_overrides(relevance_floor=0.0), fake_embedder)
    assert not lenient.search("catalyseurs territoriaux").below_floor


def test_near_duplicates_removed(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    text = (settings.corpus_dir / "mooc.md").read_text(encoding="utf-8")
    (settings.corpus_dir / "copie-mooc.md").write_text(text, encoding="utf-8")
    run_ingest(settings, embedder=fake_embedder, progress=False)
    result = Retriever(settings, fake_embedder).search("les trois impacts d'une alliance", k=5)
    texts = [p.text for p in result.passages]
    assert len(texts) == len(set(texts))


def test_no_index_is_a_clear_french_error(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(store.NoIndexError, match="python -m ingest"):
        Retriever(settings, fake_embedder).search("bonjour")


def test_search_during_reingestion_sees_old_or_new_never_a_mix(indexed: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    """While generations switch, every result comes wholly from one complete generation."""
    retriever = Retriever(indexed, fake_embedder)
    old = store.current_generation(indexed.data_dir)
    assert old is not None
    old_ids = {pid for pid, _, _ in store.iter_records(store.open_vectorstore(indexed, old, fake_embedder).collection)}
    md = indexed.corpus_dir / "mooc.md"
    errors: list[BaseException] = []
    seen: list[tuple[str, set[str]]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                r = retriever.search("les trois impacts d'une alliance", k=10)
                seen.append((r.generation, {p.id for p in r.passages}))
            except BaseException as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(3):
            md.write_text(
                md.read_text(encoding="utf-8") + f"\n\nAjout numéro {i} sur les alliances.\n", encoding="utf-8"
            )
            run_ingest(indexed, embedder=fake_embedder, progress=False)
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    by_generation: dict[str, set[str]] = {old.name: old_ids}
    final = store.current_generation(indexed.data_dir)
    assert final is not None and final != old
    by_generation[final.name] = {
        pid for pid, _, _ in store.iter_records(store.open_vectorstore(indexed, final, fake_embedder).collection)
    }
    assert {g for g, _ in seen} >= {old.name}
    for generation, ids in seen:
        if generation in by_generation:
            assert ids <= by_generation[generation]


def _tiny_cross_encoder(path: Path) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *[
            "les",
            "des",
            "catalyseurs",
            "territoriaux",
            "missions",
            "alliance",
            "impacts",
            "performance",
            "innovation",
            "confiance",
            "agenda",
            "objectifs",
        ],
    ]
    (path / "vocab.txt").parent.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(words), encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_cross_encoder_reranking_code_path(indexed: Settings, fake_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sentence_transformers import CrossEncoder

    model_dir = _tiny_cross_encoder(tmp_path / "ce")
    plain = Retriever(indexed, fake_embedder).search("missions des catalyseurs", k=20)
    reranked = Retriever(indexed.with_overrides(reranker=str(model_dir)), fake_embedder).search(
        "missions des catalyseurs", k=20
    )
    assert {p.id for p in reranked.passages} == {p.id for p in plain.passages}
    scores = CrossEncoder(str(model_dir), device="cpu").predict(
        [("missions des catalyseurs", p.text) for p in reranked.passages]
    )
    assert list(scores) == sorted(scores, reverse=True)


def test_public_reads_for_the_web_ui(indexed: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    retriever = Retriever(indexed, fake_embedder)
    generation = store.current_generation(indexed.data_dir)
    assert generation is not None and retriever.load() == generation.name
    catalog = retriever.catalog()
    assert catalog.generation == generation.name and catalog.embedder == fake_embedder.name
    assert {e.doc_id for e in catalog.entries()} == {"guide-alliances", "mooc", "observatoire", "lettre",
                                                   "notes-latin1"}
    guide = retriever.document("guide-alliances")
    assert guide is not None and guide.source_path == "guide-alliances.pdf" and guide.pages == 3
    assert guide.format == "pdf" and guide.title == "Guide des alliances" and guide.status == "indexed"
    assert retriever.document("absent") is None
    page = retriever.page_passages("guide-alliances", 2)
    assert page and all((p.doc_id, p.page) == ("guide-alliances", 2) for p in page)
    assert [p.chunk_index for p in page] == sorted(p.chunk_index for p in page)
    assert "Agenda 2030" in " ".join(p.text for p in page)
    assert retriever.page_passages("guide-alliances", 99) == []
    assert retriever.page_passages("absent", 1) == []


def test_page_neighbours_join_the_candidates(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    # Small passages, so that a page holds several: the block after the one found often states the fact.
    small = settings.with_overrides(chunk_words=25, chunk_overlap_words=0)
    run_ingest(small, embedder=fake_embedder, progress=False)
    retriever = Retriever(small, fake_embedder)
    found = retriever.search("Agenda 2030", k=1).passages
    anchor = found[0]
    same_page = retriever.page_passages(anchor.doc_id, anchor.page)
    assert len(same_page) > 1, "the fixture must put several passages on the anchor's page"
    widened = retriever.with_page_neighbours(found, top=1)
    assert widened[:1] == found  # the search's own order first
    added = widened[1:]
    assert added and len({p.id for p in widened}) == len(widened)
    for p in added:
        assert (p.doc_id, p.page) == (anchor.doc_id, anchor.page)
        assert abs(p.chunk_index - anchor.chunk_index) <= 2
        assert p.score == anchor.score and p.retrievers == ("page",)
    assert retriever.with_page_neighbours(found, top=0) == found
    # Passages of a generation that is no longer the current one get no neighbours from the new one.
    assert retriever.with_page_neighbours(found, top=1, generation="an-older-generation") == found
    assert retriever.with_page_neighbours(found, top=1, generation=retriever.load()) == widened
    # A Markdown, HTML or DOCX file is one long « page » cut at its headings: its next passage is another topic.
    other = next(p for p in retriever.search("observatoire partenariats lettre", k=20).passages
                 if p.format != "pdf" and len(retriever.page_passages(p.doc_id, p.page)) > 1)
    assert retriever.with_page_neighbours([other], top=1) == [other]
