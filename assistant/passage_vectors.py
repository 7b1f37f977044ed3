"""Every vector one file's ingestion needs, from one embedding call: passages and their quotable units.

The extractive answer needs a vector for every quotable unit (:mod:`assistant.units`), found later in the
embedder's persistent cache. A passage's own vector in the index is either its whole text embedded
(``ASSISTANT_PASSAGE_VECTORS=text``) or the normalised mean of its units' vectors (``units``: no second
pass over the same words). A passage with no quotable unit (a table of figures, a list of headings) is
embedded as a whole in both cases.

Both kinds of text go to the embedder in one call, each distinct text once: with a pool of worker
processes, one call per file keeps every worker busy to the end of the file, where two calls (passages,
then units) each left a worker idle at their tail and serialised the second behind the first.

``units-max`` stores the same vectors as ``units``; at query time the dense search scores every passage of
the generation by its best unit's cosine and its document title's (:class:`UnitIndex`: the generation's
unit and title vectors, read from the embedder's cache once, held in memory), fused with BM25 at
``units_max_bm25_weight``. Measured side by side on PIAF (3,835 questions, ``python -m evals.piaf --units``),
hybrid hit@1/5/10 and MRR@10: 0.746/0.908/0.931/0.814 for the paragraph's own vector, 0.721/0.894/0.924/0.796
for the mean of its units, 0.758/0.917/0.943/0.826 for ``units-max`` (rescoring only the mean's top 100 by
the best unit, this mode's first version: 0.751/0.906/0.932/0.817). ``text`` stays the default: on golden
and real-docs ``units-max`` loses held-out fact recall and page hit@1 (evals/README.md).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from assistant.embeddings import NamedEmbeddings
from assistant.schema import Passage
from assistant.units import quotable_units


def mean_pool(unit_vectors: np.ndarray, owner: Sequence[int], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per owner ``0..count-1``: the normalised mean of its rows, and whether it had any row."""
    dim = unit_vectors.shape[1] if unit_vectors.ndim == 2 else 0
    sums = np.zeros((count, dim), dtype=np.float64)
    has = np.zeros(count, dtype=bool)
    if len(owner):
        np.add.at(sums, np.asarray(owner), unit_vectors.astype(np.float64))
        has[np.asarray(owner)] = True
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (sums / norms).astype(np.float32), has


def embed_passages_and_units(passages: Sequence[Passage], embedder: NamedEmbeddings, *,
                             mode: Literal["text", "units"], with_units: bool = True) -> np.ndarray:
    """(len(passages), dim) passage vectors as ``mode`` says, from one ``embed_passages`` call that also
    embeds every quotable unit when ``with_units`` (always for ``units``, which derives from them)."""
    if not passages:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    units = quotable_units(passages) if with_units or mode == "units" else []
    # A unit repeated in a passage (or across passages) is embedded once and counts once per passage.
    pairs = sorted({(u.passage_index, u.text) for u in units})
    owners = {p for p, _ in pairs}
    whole = [i for i in range(len(passages)) if mode == "text" or i not in owners]
    # units-max adds the cosine of the passage's document title (UnitIndex): one short text per document.
    titles = sorted({p.title for p in passages if p.title.strip()}) if mode == "units" else []
    texts = list(dict.fromkeys([passages[i].text for i in whole] + sorted({t for _, t in pairs}) + titles))
    row = {text: i for i, text in enumerate(texts)}
    vectors = embedder.embed_passages(texts)
    if mode == "text":
        return vectors[[row[p.text] for p in passages]]
    pooled, _ = mean_pool(vectors[[row[t] for _, t in pairs]] if pairs else vectors[:0],
                          [p for p, _ in pairs], len(passages))
    if whole:
        pooled[whole] = vectors[[row[passages[i].text] for i in whole]]
    return pooled


def unit_pooled_vectors(passages: Sequence[Passage], embedder: NamedEmbeddings) -> np.ndarray:
    """(len(passages), dim) vectors: each passage's units embedded once, averaged, normalised."""
    return embed_passages_and_units(passages, embedder, mode="units")


@dataclass(frozen=True)
class UnitIndex:
    """Every quotable unit vector of one index generation, in memory, for an exact best-unit search
    (``ASSISTANT_PASSAGE_VECTORS=units-max``).

    A passage's score is ``(best unit's cosine + w · its document title's cosine) / (1 + w)``. Scoring
    every unit, not rescoring Chroma's top 100 by the stored mean, finds the paragraphs whose mean is far
    from the question but one sentence is close; the title gives back the context a lone sentence lacks
    (which organisation, which programme), that a whole passage's vector carried. A few thousand units of
    384 floats are a few megabytes and one matrix product per question.
    """

    ids: tuple[str, ...]  # passage ids, in the order the rows' owners refer to
    vectors: np.ndarray  # (rows, dim) normalised unit vectors; a passage without cached units: its stored vector
    owner: np.ndarray  # (rows,) index into ids
    titles: np.ndarray  # (distinct titles, dim)
    title_of: np.ndarray  # (len(ids),) row of titles, -1 when its title is not in the cache
    title_weight: float = 0.0
    missing: int = 0  # passages whose units were not all in the embedder's cache (scored by their stored vector)

    @classmethod
    def build(cls, records: Sequence[tuple[Passage, Sequence[float]]], embedder: NamedEmbeddings,
              title_weight: float = 0.0) -> UnitIndex:
        """From (passage, stored vector) pairs; unit and title vectors are read from the embedder's persistent
        cache, nothing is embedded (a generation must load in seconds, not re-embed the corpus)."""
        passages = [p for p, _ in records]
        units = quotable_units(passages)
        lookup = getattr(embedder, "lookup", None)
        wanted = sorted({u.text for u in units} | {p.title for p in passages if p.title.strip()})
        found: dict[str, np.ndarray] = lookup(wanted) if lookup is not None and wanted else {}
        by_passage: dict[int, list[str]] = {}
        for unit in units:
            by_passage.setdefault(unit.passage_index, []).append(unit.text)
        rows: list[np.ndarray] = []
        owner: list[int] = []
        missing = 0
        for i, (_, stored) in enumerate(records):
            texts = list(dict.fromkeys(by_passage.get(i, [])))
            if texts and all(t in found for t in texts):
                rows.extend(found[t] for t in texts)
                owner.extend([i] * len(texts))
            else:
                missing += bool(texts)
                rows.append(np.asarray(stored, dtype=np.float32))
                owner.append(i)
        dim = embedder.dim if not rows else len(rows[0])
        matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
        title_texts = sorted({p.title for p in passages if p.title in found})
        title_row = {t: k for k, t in enumerate(title_texts)}
        titles = (np.vstack([found[t] for t in title_texts]).astype(np.float32) if title_texts
                  else np.zeros((0, dim), dtype=np.float32))
        title_of = np.asarray([title_row.get(p.title, -1) for p in passages], dtype=np.int64)
        return cls(tuple(p.id for p in passages), matrix, np.asarray(owner, dtype=np.int64), titles, title_of,
                   title_weight, missing)

    def scores(self, query_vector: Sequence[float]) -> np.ndarray:
        """Every passage's score, in ``ids`` order."""
        query = np.asarray(query_vector, dtype=np.float32)
        best = np.full(len(self.ids), -np.inf, dtype=np.float32)
        np.maximum.at(best, self.owner, self.vectors @ query)
        if not (self.title_weight and len(self.titles)):
            return best
        title = np.where(self.title_of >= 0, (self.titles @ query)[self.title_of], best)  # none: the best unit
        return ((best + self.title_weight * title) / (1 + self.title_weight)).astype(np.float32)

    def search(self, query_vector: Sequence[float], depth: int,
               allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The ``depth`` best passages: (id, score), best first (ties: index order). ``allowed`` restricts
        to those passage ids."""
        if not len(self.ids):
            return []
        best = self.scores(query_vector)
        if allowed is not None:
            keep = np.fromiter((pid in allowed for pid in self.ids), dtype=bool, count=len(self.ids))
            best[~keep] = -np.inf
        order = np.lexsort((np.arange(len(best)), -best))[:depth]
        return [(self.ids[i], float(best[i])) for i in order if np.isfinite(best[i])]
