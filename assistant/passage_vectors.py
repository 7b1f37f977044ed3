"""Every vector one file's ingestion needs, from one embedding call: passages and their quotable units.

The extractive answer needs a vector for every quotable unit (:mod:`assistant.units`), found later in the
embedder's persistent cache. A passage's own vector in the index is either its whole text embedded
(``ASSISTANT_PASSAGE_VECTORS=text``) or the normalised mean of its units' vectors (``units``: no second
pass over the same words). A passage with no quotable unit (a table of figures, a list of headings) is
embedded as a whole in both cases.

Both kinds of text go to the embedder in one call, each distinct text once: with a pool of worker
processes, one call per file keeps every worker busy to the end of the file, where two calls (passages,
then units) each left a worker idle at their tail and serialised the second behind the first.

``units-max`` stores the same vectors as ``units`` and rescores Chroma's hits at query time by their best
unit's cosine (:func:`best_unit_scores`). ``text`` stays the default: measured side by side on PIAF
(3,835 questions, ``python -m evals.piaf --units``), hybrid hit@1/5/10 and MRR@10 were 0.746/0.908/0.931/0.814
for the paragraph's own vector, 0.721/0.894/0.924/0.796 for the mean of its units, 0.751/0.906/0.932/0.817
for the mean's top 100 rescored by the best unit (``units-max``; the best unit over all paragraphs, which
needs a unit-level index: 0.756/0.907/0.931/0.820). ``units-max`` wins 19 questions at hit@1 and loses 7
at hit@5.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    texts = list(dict.fromkeys([passages[i].text for i in whole] + sorted({t for _, t in pairs})))
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


def best_unit_scores(query_vector: Sequence[float], passages: Sequence[Passage], scores: Sequence[float],
                     embedder: NamedEmbeddings) -> list[float]:
    """Each passage's dense score replaced by its best quotable unit's cosine with the query
    (``ASSISTANT_PASSAGE_VECTORS=units-max``).

    Unit vectors come from the embedder's persistent cache, where ingestion put them; nothing is embedded
    here (a question must not wait for hundreds of sentences): a passage whose units are not all in the
    cache, or that has none, keeps the score it came with.
    """
    lookup = getattr(embedder, "lookup", None)
    units = quotable_units(passages)
    if lookup is None or not units:
        return list(scores)
    found: dict[str, np.ndarray] = lookup(sorted({u.text for u in units}))
    query = np.asarray(query_vector, dtype=np.float32)
    cosine = {text: float(vector @ query) for text, vector in found.items()}
    best: dict[int, float] = {}
    missing: set[int] = set()
    for unit in units:
        if unit.text in cosine:
            best[unit.passage_index] = max(best.get(unit.passage_index, -1.0), cosine[unit.text])
        else:
            missing.add(unit.passage_index)
    return [best[i] if i in best and i not in missing else float(score) for i, score in enumerate(scores)]
