"""A passage's vector derived from its quotable units: one embedding pass per ingestion.

The extractive answer needs a vector for every quotable unit (:mod:`assistant.units`); embedding the whole
passage too read the same words twice. Here each unit is embedded once (through the embedder's cache,
where the answerer finds it again) and a passage's vector is the normalised mean of its units' vectors.
A passage with no quotable unit (a table of figures, a list of headings) is embedded as a whole.

Not the default (``ASSISTANT_PASSAGE_VECTORS=text``): measured side by side on PIAF (3,835 questions,
``python -m evals.piaf --units``), the mean of unit vectors ranks worse than the paragraph's own vector
(hybrid hit@1/5/10 0.721/0.894/0.924 against 0.746/0.908/0.931; dense hit@1 0.555 against 0.654), while
the best unit's cosine taken at query time ranks slightly better (hybrid 0.756/0.907/0.931, MRR@10
0.820 against 0.814) — that one needs a unit-level index, not a stored passage vector.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def unit_pooled_vectors(passages: Sequence[Passage], embedder: NamedEmbeddings) -> np.ndarray:
    """(len(passages), dim) vectors: each passage's units embedded once, averaged, normalised."""
    if not passages:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    units = quotable_units(passages)
    # A unit repeated in a passage (or across passages) is embedded once and counts once per passage.
    pairs = sorted({(u.passage_index, u.text) for u in units})
    texts = sorted({text for _, text in pairs})
    row = {text: i for i, text in enumerate(texts)}
    vectors = embedder.embed_passages(texts) if texts else np.zeros((0, embedder.dim), dtype=np.float32)
    pooled, has = mean_pool(vectors[[row[t] for _, t in pairs]] if pairs else vectors,
                            [p for p, _ in pairs], len(passages))
    bare = [i for i in range(len(passages)) if not has[i]]
    if bare:
        pooled[bare] = embedder.embed_passages([passages[i].text for i in bare])
    return pooled
