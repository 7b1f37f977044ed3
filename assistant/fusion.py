"""Merging ranked lists and removing near-duplicate passages (pure functions)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def rrf(
    rankings: Mapping[str, Sequence[str]],
    *,
    k: int,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion: ``score(d) = Σ w_r / (k + rank_r(d))``, ranks from 1.

    ``rankings`` maps a retriever name to its ids, best first (a repeated id
    counts at its best rank). A retriever missing from ``weights`` weighs 1.
    Ties are broken by the best rank reached in any list, then by id, so the
    order never depends on dict or set iteration.
    """
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    weights = weights or {}
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for name, ids in rankings.items():
        weight = float(weights.get(name, 1.0))
        seen: set[str] = set()
        for rank, item in enumerate(ids, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best_rank[item] = min(best_rank.get(item, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best_rank[kv[0]], kv[0]))


def score_fusion(
    results: Mapping[str, Sequence[tuple[str, float]]],
    *,
    weights: Mapping[str, float] | None = None,
    absent: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Weighted sum of scores, each list divided by its best score: ``Σ w_r · s_r(d) / max_r``.

    ``results`` maps a retriever name to (id, raw score) pairs, best first,
    with positive scores (cosine similarities, BM25). Dividing by the best
    score, unlike min–max, keeps the absolute spread of cosine similarities,
    which carries the dense model's confidence.

    An id a list did not return gets ``absent[name]`` (a normalised score) from
    it, by default that list's lowest normalised score — it scored at most that.
    For BM25 pass 0.0: BM25 is 0 for a passage sharing no word with the query,
    whereas a cosine similarity never drops near 0 for a text in the same language.
    Ties are broken by id.
    """
    weights = weights or {}
    absent = absent or {}
    lists: list[tuple[float, dict[str, float], float]] = []
    for name, pairs in results.items():
        best: dict[str, float] = {}
        for item, score in pairs:
            best[item] = max(best.get(item, score), score)
        top = max(best.values(), default=0.0)
        if top <= 0:
            continue
        normed = {i: v / top for i, v in best.items()}
        floor = absent.get(name, min(normed.values()))
        lists.append((float(weights.get(name, 1.0)), normed, floor))
    every = {item for _, normed, _ in lists for item in normed}
    fused = {item: sum(w * normed.get(item, floor) for w, normed, floor in lists) for item in every}
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


# Punctuation stuck to a word is stripped (« alliance, » = « alliance »); a plain split
# plus strip is several times faster than a regex, and dedupe runs on every answer.
_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»“”‘’…–—•·"
_MIX = (np.int64(1_000_003), np.int64(8_191), np.int64(131), np.int64(31), np.int64(7))
_BLOCK = 8192  # shingle columns per block of the item × shingle matrix (bounds memory)


def _shingles(text: str, size: int) -> np.ndarray:
    """Distinct hashed word ``size``-grams of a text, case and punctuation ignored (one for a shorter text)."""
    words = [w for raw in unicodedata.normalize("NFKC", text).lower().split() if (w := raw.strip(_PUNCT))]
    if not words:
        return np.zeros(0, dtype=np.int64)
    if len(words) <= size:
        return np.array([hash(tuple(words))], dtype=np.int64)
    h = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
    n = len(words) - size + 1
    mixed = np.zeros(n, dtype=np.int64)
    with np.errstate(over="ignore"):  # wrapping arithmetic is the point of a hash
        for i in range(size):
            mixed = mixed * _MIX[i % len(_MIX)] ^ h[i : i + n]
    return np.unique(mixed)


def _shared_counts(shingles: Sequence[np.ndarray]) -> np.ndarray:
    """(n, n) matrix: how many shingles items i and j have in common."""
    n = len(shingles)
    sizes = [len(s) for s in shingles]
    if not sum(sizes):
        return np.zeros((n, n), dtype=np.float32)
    values, column = np.unique(np.concatenate(shingles), return_inverse=True)
    owner = np.repeat(np.arange(n), sizes)
    shared = np.zeros((n, n), dtype=np.float32)
    for start in range(0, len(values), _BLOCK):
        inside = (column >= start) & (column < start + _BLOCK)
        block = np.zeros((n, min(_BLOCK, len(values) - start)), dtype=np.float32)
        block[owner[inside], column[inside] - start] = 1.0
        shared += block @ block.T
    return shared


def dedupe(
    items: Sequence[T],
    text_of: Callable[[T], str],
    *,
    threshold: float = 0.8,
    shingle: int = 3,
) -> list[T]:
    """Drop items whose text is (nearly) contained in a better-ranked one; keep the first.

    Two texts are near-duplicates when, of the ``shingle``-word sequences of
    the shorter one, a share ≥ ``threshold`` also occur in the other one — the
    same paragraph in two documents, or a window inside an overlapping chunk.
    Case and punctuation are ignored. Empty texts are always kept.
    """
    shingles = [_shingles(text_of(item), shingle) for item in items]
    shared = _shared_counts(shingles)
    sizes = np.array([len(s) for s in shingles], dtype=np.float32)
    kept: list[int] = []
    for i in range(len(items)):
        if sizes[i] and kept:
            others = np.array(kept)
            if np.any(shared[i, others] >= threshold * np.minimum(sizes[i], sizes[others])):
                continue
        kept.append(i)
    return [items[i] for i in kept]
