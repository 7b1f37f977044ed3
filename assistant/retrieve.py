"""Question → ranked passages: dense (Chroma) + French BM25, fused, deduplicated, floored.

A :class:`Retriever` holds one loaded index generation (vector store, BM25,
catalog) and checks the generation pointer before every search, so a search
during re-ingestion sees the old index or the new one, never a mix.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from langchain_core.documents import Document

from assistant import shared_state, store
from assistant.albert import RerankError
from assistant.calibration import Calibration, calibration_for
from assistant.catalog import Catalog, CatalogEntry
from assistant.embeddings import NamedEmbeddings, embedder_from_settings
from assistant.errors import AssistantError
from assistant.fusion import dedupe, rrf, score_fusion
from assistant.glossary import Glossary
from assistant.lexical import LexicalIndex
from assistant.passage_vectors import UnitIndex
from assistant.rerank import RERANK_UNAVAILABLE, build_reranker
from assistant.schema import CHUNK_INDEX, DOC_ID, PAGE, Passage
from assistant.settings import SearchMode, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    """Restrict a search to some documents; empty tuples mean "no restriction"."""

    doc_ids: tuple[str, ...] = ()
    publishers: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.publishers or self.themes or self.formats)

    def allowed_docs(self, catalog: Catalog) -> set[str]:
        allowed = set()
        for doc in catalog.entries():
            if self.doc_ids and doc.doc_id not in self.doc_ids:
                continue
            if self.publishers and doc.publisher not in self.publishers:
                continue
            if self.themes and not set(doc.themes) & set(self.themes):
                continue
            if self.formats and doc.format not in self.formats:
                continue
            allowed.add(doc.doc_id)
        return allowed


@dataclass
class RetrievalResult:
    query: str
    expanded_query: str
    passages: list[Passage]
    below_floor: bool
    best_similarity: float
    generation: str
    unknown_share: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    # Rarity of each query term in the corpus (the answer checks its quotes cover the rare ones).
    term_weights: dict[str, float] = field(default_factory=dict)
    query_vector: list[float] = field(default_factory=list)  # of the expanded query, reused to rank sentences
    boilerplate: frozenset[str] = frozenset()  # sentence openings repeated across documents (from the catalog)
    notice: str = ""  # for the user, in French: e.g. the reranking service failed and the local order stayed


@dataclass
class _Snapshot:
    generation: store.Generation
    vectors: store.VectorIndex
    lexical: LexicalIndex
    passage_docs: list[str]
    catalog: Catalog
    units: UnitIndex | None = None  # every unit vector of the generation (only with units-max)


class Retriever:
    def __init__(
        self, settings: Settings, embedder: NamedEmbeddings | None = None, calibration: Calibration | None = None
    ) -> None:
        self.settings = settings
        self.embedder = embedder or embedder_from_settings(settings)
        self.calibration = calibration or calibration_for(settings, self.embedder.name)
        self.glossary = Glossary.load(settings.glossary_path)
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        self._reranker = build_reranker(settings)  # checked now; a model is loaded, a service called, at first use

    # -- index generation ------------------------------------------------------------

    def _current(self) -> _Snapshot:
        """The current generation, reloaded when the ingestion job has switched it."""
        current = shared_state.current_generation(self.settings)
        if current is None:
            raise store.NoIndexError(
                "Aucun index n'est disponible. Lancez d'abord l'indexation du corpus : python -m ingest"
            )
        with self._lock:
            if self._snapshot is None or self._snapshot.generation.name != current.name:
                self._snapshot = self._open(current)
            return self._snapshot

    def _open(self, current: store.Generation) -> _Snapshot:
        try:
            vectors = store.open_vectorstore(self.settings, current, self.embedder)
            lexical = LexicalIndex.load(current.lexical_dir)
            passage_docs = json.loads(current.passage_docs_path.read_text(encoding="utf-8"))
            units = self._unit_index(vectors) if self.settings.passage_vectors == "units-max" else None
            return _Snapshot(current, vectors, lexical, passage_docs, store.read_catalog(current), units)
        except AssistantError:
            raise
        except (OSError, ValueError) as exc:  # a file of the generation deleted or damaged by hand
            raise store.NoIndexError(
                f"L'index en service ({current.name}) est incomplet ou endommagé. Relancez l'indexation : "
                "python -m ingest --rebuild"
            ) from exc

    def _unit_index(self, vectors: store.VectorIndex) -> UnitIndex:
        records = [(Passage.from_document(pid, doc), vec)
                   for pid, doc, vec in store.iter_records(vectors.collection, with_embeddings=True)]
        units = UnitIndex.build(records, self.embedder, self.settings.units_max_title_weight)
        if units.missing:
            log.warning("%d passages sans vecteurs d'unités en cache : notés par leur vecteur de l'index "
                        "(relancez python -m ingest pour les calculer).", units.missing)
        return units

    def load(self) -> str:
        """Load the current generation now (not at the first question); returns its name."""
        return self._current().generation.name

    def catalog(self) -> Catalog:
        """The catalog of the generation searches are answered from."""
        return self._current().catalog

    def document(self, doc_id: str) -> CatalogEntry | None:
        """The catalog entry of one document of that generation, or None when it is not indexed."""
        return self._current().catalog.find(doc_id)

    def page_passages(self, doc_id: str, page: int) -> list[Passage]:
        """The passages of one page of one document, in reading order (empty for an unknown page)."""
        where = {"$and": [{DOC_ID: doc_id}, {PAGE: int(page)}]}
        passages = [Passage.from_document(pid, doc)
                    for pid, doc, _ in store.iter_records(self._current().vectors.collection, where=where)]
        return sorted(passages, key=lambda p: p.chunk_index)

    def with_page_neighbours(self, passages: Sequence[Passage], top: int, span: int = 2,
                             generation: str | None = None) -> list[Passage]:
        """``passages``, then the passages next to each of the first ``top`` PDF ones on the same page.

        On a designed brochure the block the search found often names the subject while the next block of
        the page (``span`` passages either side) states the fact. Only PDF pages: a Markdown, HTML or DOCX
        file is one long «page» already cut at its headings, where the next passage is another topic.
        A neighbour carries its anchor's score, marked ``page`` among its retrievers. When ``generation``
        (the one ``passages`` come from) is no longer the current one, nothing is added: one answer never
        mixes two generations.
        """
        out = list(passages)
        snap = self._current()
        if generation is not None and snap.generation.name != generation:
            return out
        seen = {p.id for p in out}
        for anchor in passages[:top]:
            if anchor.format != "pdf":
                continue
            where = {"$and": [{DOC_ID: anchor.doc_id}, {PAGE: int(anchor.page)},
                              {CHUNK_INDEX: {"$gte": anchor.chunk_index - span}},
                              {CHUNK_INDEX: {"$lte": anchor.chunk_index + span}}]}
            found = [Passage.from_document(pid, doc)
                     for pid, doc, _ in store.iter_records(snap.vectors.collection, where=where)]
            for p in sorted(found, key=lambda p: (abs(p.chunk_index - anchor.chunk_index), p.chunk_index)):
                if p.id not in seen:
                    seen.add(p.id)
                    out.append(replace(p, score=anchor.score, retrievers=("page",)))
        return out

    # -- search ----------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        filters: Filters | None = None,
    ) -> RetrievalResult:
        s = self.settings
        k = k or s.k
        mode = mode or s.search_mode
        snap = self._current()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        expanded = self.glossary.expand(query)

        where = None
        allowed_ids: set[str] | None = None
        if filters:
            docs = filters.allowed_docs(snap.catalog)
            where = {DOC_ID: {"$in": sorted(docs)}} if docs else {DOC_ID: "\x00none"}
            allowed_ids = {pid for pid, d in zip(snap.lexical.ids, snap.passage_docs, strict=True) if d in docs}

        # The dense side always runs: its best similarity is the relevance floor's signal.
        t = time.perf_counter()
        query_vector = self.embedder.embed_query(expanded)
        if snap.units is not None:
            dense_hits = self._best_units(snap, query_vector, allowed_ids)
        else:
            dense_hits = store.dense_search(snap.vectors.collection, query_vector, s.dense_depth, where)
        timings["dense"] = time.perf_counter() - t
        best_similarity = dense_hits[0][2] if dense_hits else 0.0

        t = time.perf_counter()
        bm25_hits = snap.lexical.search(expanded, s.bm25_depth, allowed=allowed_ids) if mode != "dense" else []
        timings["bm25"] = time.perf_counter() - t

        dense_scores = {pid: sim for pid, _, sim in dense_hits}
        bm25_scores = dict(bm25_hits)
        docs_by_id = {pid: doc for pid, doc, _ in dense_hits}
        if mode == "dense":
            ranked = [(pid, sim) for pid, _, sim in dense_hits]
        elif mode == "bm25":
            ranked = list(bm25_hits)
        elif s.fusion == "score":
            # BM25 is 0 for a passage sharing no word with the query; a missing cosine is at most the lowest seen.
            ranked = score_fusion(
                {"dense": [(pid, max(sim, 1e-6)) for pid, _, sim in dense_hits], "bm25": bm25_hits},
                weights={"dense": s.dense_weight, "bm25": s.fusion_bm25_weight},
                absent={"bm25": 0.0},
            )
        else:
            ranked = rrf(
                {"dense": [pid for pid, _, _ in dense_hits], "bm25": [pid for pid, _ in bm25_hits]},
                k=s.rrf_k,
                weights={"dense": s.dense_weight, "bm25": s.fusion_bm25_weight},
            )
        # Fetch text and metadata of passages only BM25 found (a few dozen at most).
        candidates = ranked[: max(k * 4, 20)]
        missing = [pid for pid, _ in candidates if pid not in docs_by_id]
        docs_by_id.update(store.get_by_ids(snap.vectors.collection, missing))

        passages = []
        for pid, score in candidates:
            doc = docs_by_id.get(pid)
            if doc is None:
                continue
            found_by = tuple(name for name, hits in (("dense", dense_scores), ("bm25", bm25_scores)) if pid in hits)
            passages.append(
                Passage.from_document(
                    pid, doc, score=float(score), retrievers=found_by,
                    dense_score=dense_scores.get(pid), bm25_score=bm25_scores.get(pid),
                )
            )
        passages = dedupe(passages, lambda p: p.text)
        notice = ""
        if self._reranker is not None:
            t = time.perf_counter()
            passages, notice = self._rerank(query, passages, k)
            timings["rerank"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        unknown = snap.lexical.unknown_share(query)
        cal = self.calibration
        below_floor = (
            not passages
            or best_similarity < cal.relevance_floor
            or (best_similarity < cal.uncertain_floor and unknown > cal.max_unknown_share)
        )
        return RetrievalResult(
            query=query,
            expanded_query=expanded,
            passages=passages[:k],
            below_floor=below_floor,
            best_similarity=best_similarity,
            generation=snap.generation.name,
            timings=timings,
            unknown_share=unknown,
            term_weights=snap.lexical.term_weights(query),
            query_vector=list(query_vector),
            boilerplate=frozenset(snap.catalog.boilerplate_openings),
            notice=notice,
        )

    def _rerank(self, query: str, passages: Sequence[Passage], k: int) -> tuple[list[Passage], str]:
        """The passages in the reranker's order (``ASSISTANT_RERANKER``), and a notice for the user when the
        reranking service failed: the search's own order then stays."""
        assert self._reranker is not None
        try:
            order = self._reranker.order(query, [p.text for p in passages], top_n=k)
        except RerankError as exc:
            log.log(logging.WARNING if exc.busy else logging.ERROR,
                    "Reclassement indisponible, ordre de la recherche conservé : %s", exc)
            return list(passages), RERANK_UNAVAILABLE.format(reason=exc)
        return [passages[i] for i in order], ""

    def _best_units(self, snap: _Snapshot, query_vector: Sequence[float],
                    allowed: set[str] | None) -> list[tuple[str, Document, float]]:
        """The dense side of ``units-max``: every passage of the generation scored by its best unit's
        cosine, the ``dense_depth`` best with their documents from Chroma."""
        assert snap.units is not None
        hits = snap.units.search(query_vector, self.settings.dense_depth, allowed)
        docs = store.get_by_ids(snap.vectors.collection, [pid for pid, _ in hits])
        return [(pid, docs[pid], sim) for pid, sim in hits if pid in docs]
