"""Benchmarks, run by hand (never in the timed test suite); figures go in the notes.

    python -m evals.bench ingest      # shipped corpus + real brochures, cold cache: chars/s vs bare embedder
    python -m evals.bench ingest --baseline   # … and the former ingestion (one process, two passes) too
    python -m evals.bench latency     # query latency on the shipped corpus (100 questions, embedder warm)
    python -m evals.bench units       # units-max's dense search vs Chroma's, over the golden questions
    python -m evals.bench synthetic   # query latency on a synthetic index of 100,000 passages
    python -m evals.bench dedupe      # near-duplicate removal over 50 long candidates (repeated runs)
    python -m evals.bench load        # the web app under hostile load and a burst (evals/bench_load.py)
    python -m evals.bench memory      # memory over 10,000 answers in-process (evals/bench_memory.py)
    python -m evals.bench sessions    # the app's memory as new sessions arrive, at two session capacities

Every figure is measured side by side in one run; medians and ratios, not single timings.
Timings live here and nowhere in tests/: a wall-clock bound in a test fails on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document

from assistant import store
from assistant.catalog import Catalog
from assistant.embeddings import build_embedder
from assistant.settings import SearchMode, Settings

ROOT = Path(__file__).resolve().parent.parent
REAL_DOCS = ROOT.parent / "shared" / "data" / "real-docs"


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"load_1min": round(one, 2), "load_5min": round(five, 2), "load_15min": round(fifteen, 2),
            "cores": os.cpu_count() or 0}


def bench_ingest(settings: Settings, *, real_docs: Path | None = REAL_DOCS, baseline: bool = False,
                 other_vectors: bool = False) -> dict[str, Any]:
    """Ingestion against the bare embedder, side by side in one run, every index from a cold vector cache.

    Corpus: the shipped one plus the real brochures of ``real_docs`` (skipped, with the reason, when absent).
    Timed: a first ingestion as configured (worker pool, passage vectors from units) end to end (reading
    and splitting the files included); the bare embedder (one process, one thread, model already loaded)
    on the same passages' texts; a no-change run; with ``other_vectors``, also a first ingestion with the
    other ``passage_vectors`` setting; with ``baseline``, also a first ingestion as before (one process,
    passages then units embedded: ``embed_workers=1, passage_vectors=text``).
    Throughputs are in characters of passage text per second, so the two sides count the same work.
    """
    from evals.run import set_corpus
    from ingest.index import run_ingest

    extra = sorted(real_docs.glob("*.pdf")) if real_docs and real_docs.is_dir() else []
    notes = [] if extra else [f"PDF réels absents ({real_docs}) : corpus livré seul." if real_docs
                              else "Corpus livré seul (--no-real-docs)."]
    result: dict[str, Any] = {"load_before": _load()}
    # Generous read limits: on a loaded machine a designed brochure can take more than the default minute.
    base = settings.with_overrides(pdf_timeout_s=max(settings.pdf_timeout_s, 900.0))
    with set_corpus(base, extra, log=lambda _: None) as scoped:
        texts: list[str] = []

        def ingest(**overrides: Any) -> tuple[float, Any, Settings]:
            with tempfile.TemporaryDirectory() as tmp:
                s = scoped.with_overrides(data_dir=Path(tmp), **overrides)
                t = time.perf_counter()
                report = run_ingest(s, progress=False)
                took = time.perf_counter() - t
                if not texts:  # the passages the bare embedder gets: exactly those of the index
                    generation = store.current_generation(s.data_dir)
                    assert generation is not None
                    catalog = store.read_catalog(generation)
                    named = build_embedder("hash:8")  # only its name and dimension are read: no model loaded
                    named.name, named.dim = catalog.embedder or "", catalog.dim or 0
                    vectors = store.open_vectorstore(s, generation, named)
                    texts.extend(doc.page_content for _, doc, _ in store.iter_records(vectors.collection))
                t = time.perf_counter()
                again = run_ingest(s, progress=False)
                return took, (report, again, time.perf_counter() - t), s

        first_s, (first, second, second_s), used = ingest()
        chars = sum(len(x) for x in texts)
        bare = build_embedder(settings.embedder, threads=1, batch_size=settings.embed_batch_size,
                              query_chars=settings.embed_query_chars, passage_chars=settings.embed_passage_chars)
        t = time.perf_counter()
        bare.embed_passages(texts)
        bare_s = time.perf_counter() - t
        result.update({
            "embedder": bare.name,
            "files": len(first.indexed),
            "failed": first.failed,
            "pages": first.pages,
            "passages": first.passages,
            "passage_chars": chars,
            "embed_workers": used.embed_worker_count,
            "passage_vectors": used.passage_vectors,
            "first_run_s": round(first_s, 1),
            "first_run_chars_per_s": round(chars / first_s),
            "bare_embedder_s": round(bare_s, 1),
            "bare_embedder_chars_per_s": round(chars / bare_s),
            "ingest_over_bare_chars_per_s": round(bare_s / first_s, 2),
            "no_change_run_s": round(second_s, 2),
            "no_change_indexed": len(second.indexed),
        })
        if other_vectors:
            other = "units" if used.stored_vectors == "text" else "text"
            other_s, _, _ = ingest(passage_vectors=other)
            result.update({
                f"{other}_first_run_s": round(other_s, 1),
                f"{other}_chars_per_s": round(chars / other_s),
                f"{other}_over_bare_chars_per_s": round(bare_s / other_s, 2),
            })
        if baseline:
            before_s, (before, _, _), _ = ingest(embed_workers=1, passage_vectors="text")
            result.update({
                "before_first_run_s": round(before_s, 1),
                "before_chars_per_s": round(chars / before_s),
                "before_over_bare_chars_per_s": round(bare_s / before_s, 2),
                "before_passages": before.passages,
            })
    result["load_after"] = _load()
    if notes:
        result["notes"] = notes
    return result


QUESTIONS = [
    "Combien de membres compte le collectif Intérêt général ?",
    "c'est quoi un catalyseur territorial",
    "comment associer les entreprises du territoire à notre projet ODD ?",
    "Que dit l'étude Jouer collectif en sortie de crise ?",
    "Quels sont les programmes de recherche du RAMEAU ?",
    "Où trouver le MOOC sur les alliances ?",
    "Que signifie ESS ?",
    "Combien de cibles compte l'Agenda 2030 ?",
    "Qu'est-ce que l'Observatoire des territoires ?",
    "Par où commencer quand on est un nouveau maire ?",
]


def bench_latency(settings: Settings, n: int = 100) -> dict[str, Any]:
    from assistant.answer import Assistant

    assistant = Assistant(settings)
    assistant.answer(QUESTIONS[0])  # warm: model, index, caches
    retrieve, first_text, total = [], [], []
    for i in range(n):
        ans = assistant.answer(QUESTIONS[i % len(QUESTIONS)] + ("" if i < len(QUESTIONS) else f" ({i})"))
        retrieve.append(ans.timings["retrieve"])
        first_text.append(ans.timings.get("first_text", ans.timings["total"]))
        total.append(ans.timings["total"])
    return {
        "questions": n,
        "retrieve_ms_median": round(1000 * statistics.median(retrieve), 1),
        "retrieve_ms_p95": round(1000 * _percentile(retrieve, 95), 1),
        "first_text_ms_median": round(1000 * statistics.median(first_text), 1),
        "first_text_ms_p95": round(1000 * _percentile(first_text, 95), 1),
        "answer_total_ms_median": round(1000 * statistics.median(total), 1),
        "answer_total_ms_p95": round(1000 * _percentile(total, 95), 1),
    }


def bench_units(settings: Settings) -> dict[str, Any]:
    """What ``ASSISTANT_PASSAGE_VECTORS=units-max`` adds per question, on the index of ``settings.data_dir``:
    its dense search (every unit of the generation, then the hits' documents from Chroma) against Chroma's
    own nearest-neighbour query, interleaved over the golden questions (medians); the load of the unit
    vectors when a generation opens; and the first words of a whole answer in this mode."""
    from assistant.answer import Assistant
    from assistant.retrieve import Retriever

    chosen = settings.with_overrides(passage_vectors="units-max")
    questions = [json.loads(line)["question"] for line in
                 (ROOT / "evals" / "sets" / "golden.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    retriever = Retriever(chosen)
    start = time.perf_counter()
    snap = retriever._current()  # builds the unit index
    load_s = time.perf_counter() - start
    assert snap.units is not None
    chroma, units = [], []
    for question in questions:
        vector = retriever.embedder.embed_query(question)
        t = time.perf_counter()
        store.dense_search(snap.vectors.collection, vector, chosen.dense_depth)
        chroma.append(time.perf_counter() - t)
        t = time.perf_counter()
        retriever._best_units(snap, vector, None)
        units.append(time.perf_counter() - t)
    assistant = Assistant(chosen)
    assistant.answer(questions[0])  # warm
    first_text = []
    for question in questions:
        ans = assistant.answer(question)
        first_text.append(ans.timings.get("first_text", ans.timings["total"]))
    return {
        "questions": len(questions),
        "passages": len(snap.units.ids),
        "unit_rows": int(snap.units.vectors.shape[0]),
        "passages_without_cached_units": snap.units.missing,
        "titles": int(snap.units.titles.shape[0]),
        "generation_load_s": round(load_s, 3),
        "chroma_dense_ms_median": round(1000 * statistics.median(chroma), 2),
        "units_max_dense_ms_median": round(1000 * statistics.median(units), 2),
        "extra_ms_median": round(1000 * statistics.median(u - c for u, c in zip(units, chroma, strict=True)), 2),
        "first_text_ms_median": round(1000 * statistics.median(first_text), 1),
        "first_text_ms_p95": round(1000 * _percentile(first_text, 95), 1),
    }


def bench_synthetic(settings: Settings, n_passages: int = 100_000, n_queries: int = 100) -> dict[str, Any]:
    """A generation of ``n_passages`` synthetic French passages with random unit vectors.

    Vectors are random (embedding 100,000 passages with the bundled model would take
    hours on this machine); queries go through the real embedder and the real
    retriever, so the measured path is the production one.
    """
    from assistant.lexical import LexicalIndex
    from assistant.retrieve import Retriever
    from ingest.index import lexical_text

    rng = random.Random(7)
    vocab = sorted(
        {w.strip(".,;:«»()!?'’").lower() for q in QUESTIONS for w in q.split()}
        | set(
            [
                "partenariat",
                "alliance",
                "territoire",
                "commune",
                "collectivité",
                "association",
                "entreprise",
                "élu",
                "maire",
                "projet",
                "données",
                "observatoire",
                "innovation",
                "confiance",
                "performance",
                "réseau",
                "pionnier",
                "catalyseur",
                "mission",
                "dialogue",
                "expérimentation",
                "accompagnement",
                "lieu",
                "kit",
                "guide",
                "note",
                "webinaire",
                "plateforme",
                "objectif",
                "cible",
                "agenda",
                "développement",
                "durable",
                "co-construction",
                "mécénat",
                "solidarité",
                "économie",
                "sociale",
                "emploi",
                "mobilité",
                "énergie",
                "climat",
                "numérique",
            ]
        )
    )
    vocab = [w for w in vocab if len(w) > 2]
    embedder = build_embedder(settings.embedder, threads=settings.embed_threads)
    with tempfile.TemporaryDirectory() as tmp:
        s = settings.with_overrides(data_dir=Path(tmp))
        generation = store.new_generation(s.data_dir)
        vs = store.open_vectorstore(s, generation, embedder, create=True)
        t = time.perf_counter()
        np_rng = np.random.default_rng(7)
        ids, lex_texts, doc_ids = [], [], []
        batch = 5000
        for start in range(0, n_passages, batch):
            count = min(batch, n_passages - start)
            vectors = np_rng.standard_normal((count, embedder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            b_ids: list[str] = []
            b_texts: list[str] = []
            b_meta: list[Any] = []
            for j in range(count):
                i = start + j
                text = " ".join(rng.choice(vocab) for _ in range(150)) + "."
                meta = {
                    "doc_id": f"doc-{i // 20}",
                    "source_path": f"doc-{i // 20}.md",
                    "title": f"Document {i // 20}",
                    "publisher": "Synthétique",
                    "url": "",
                    "page": 1,
                    "page_label": "",
                    "section": "",
                    "chunk_index": i % 20,
                    "format": "md",
                }
                b_ids.append(f"p{i:06d}")
                b_texts.append(text)
                b_meta.append(meta)
                ids.append(f"p{i:06d}")
                doc_ids.append(meta["doc_id"])
                lex_texts.append(lexical_text(Document(page_content=text, metadata=meta)))
            vs.collection.add(ids=b_ids, documents=b_texts, metadatas=b_meta, embeddings=vectors)
        build_s = time.perf_counter() - t
        LexicalIndex.build(ids, lex_texts).save(generation.lexical_dir)
        store.write_json_atomic(generation.passage_docs_path, doc_ids)
        store.write_catalog(generation, Catalog(generation=generation.name, embedder=embedder.name, dim=embedder.dim))
        store.publish(s.data_dir, generation)
        retriever = Retriever(s, embedder)
        retriever.search(QUESTIONS[0])  # warm: loads the generation
        results: dict[str, Any] = {"passages": n_passages, "build_s": round(build_s, 1)}
        modes: tuple[SearchMode, ...] = ("dense", "bm25", "hybrid")
        for mode in modes:
            times = []
            for i in range(n_queries):
                q = QUESTIONS[i % len(QUESTIONS)]
                t = time.perf_counter()
                retriever.search(q, mode=mode)
                times.append(time.perf_counter() - t)
            results[mode] = {
                "median_ms": round(1000 * statistics.median(times), 1),
                "p95_ms": round(1000 * _percentile(times, 95), 1),
            }
        return results


DEDUPE_PAGE = (
    "Le Réseau des pionniers des alliances en territoire réunit des catalyseurs territoriaux qui aident les élus "
    "à faire travailler ensemble les collectivités, les entreprises et les associations de leur territoire, "
    "en organisant des rencontres régulières et en partageant les méthodes qui ont fait leurs preuves."
)


def dedupe_candidates(n: int = 50, own_words: int = 150) -> list[str]:
    """``n`` passage-sized candidates sharing a page's words, each with ``own_words`` words of its own.

    The same workload as ``tests/test_fusion.py::test_dedupe_of_fifty_long_candidates`` (which checks
    the result, never the time), plus every fifth candidate repeated so that some are dropped.
    """
    words = DEDUPE_PAGE.split()
    texts = [" ".join(words[i % 7 :] + [f"variante{i}"] * 3 + words[: i % 5]) for i in range(n)]
    texts = [f"{t} passage {i} " + " ".join(f"x{i}y{j}" for j in range(own_words)) for i, t in enumerate(texts)]
    return texts + texts[::5]


def bench_dedupe(n_candidates: int = 50, repeats: int = 200) -> dict[str, Any]:
    """:func:`assistant.fusion.dedupe` as the retriever calls it, timed over ``repeats`` runs."""
    from assistant.fusion import dedupe

    texts = dedupe_candidates(n_candidates)
    kept = dedupe(texts, lambda t: t)  # warm: numpy, caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        dedupe(texts, lambda t: t)
        times.append(time.perf_counter() - t)
    return {
        "candidates": len(texts),
        "kept": len(kept),
        "repeats": repeats,
        "median_ms": round(1000 * statistics.median(times), 2),
        "p95_ms": round(1000 * _percentile(times, 95), 2),
        "max_ms": round(1000 * max(times), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench", description="Benchmarks (à lancer à la main).")
    parser.add_argument("what", choices=["ingest", "latency", "units", "synthetic", "dedupe", "load", "memory",
                                         "sessions"])
    parser.add_argument("--passages", type=int, default=100_000, help="taille de l'index synthétique")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=50, help="passages candidats (dedupe)")
    parser.add_argument("--repeats", type=int, default=200, help="répétitions (dedupe)")
    parser.add_argument("--no-real-docs", action="store_true", help="ingest : corpus livré seul")
    parser.add_argument("--other-vectors", action="store_true",
                        help="ingest : mesurer aussi l'autre réglage ASSISTANT_PASSAGE_VECTORS (text ou units)")
    parser.add_argument("--baseline", action="store_true",
                        help="ingest : mesurer aussi l'indexation d'avant (un processus, deux passes)")
    load = parser.add_argument_group("load (application web lancée ici, ou --url)")
    load.add_argument("--url", help="application déjà lancée (sinon `python app.py` est lancé sur un port libre)")
    load.add_argument("--db", type=Path, help="dossier des données de l'application lancée ici (défaut : temporaire)")
    load.add_argument("--rounds", type=int, default=3, help="tours « sans charge » puis « avec client hostile »")
    load.add_argument("--clients", type=int, default=2, help="clients ordinaires mesurés dans ces tours")
    load.add_argument("--questions-each", type=int, default=10, help="questions par client ordinaire et par tour")
    load.add_argument("--hog-messages", type=int, default=20, help="messages d'historique du client hostile")
    load.add_argument("--hog-chars", type=int, default=20_000, help="caractères par message du client hostile")
    load.add_argument("--burst", type=int, default=60, help="clients simultanés de la rafale")
    load.add_argument("--startup-timeout", type=float, default=900, help="attente du démarrage, en secondes")
    load.add_argument("--new-sessions", type=int, default=1500, help="sessions nouvelles (sessions)")
    load.add_argument("--compare-sessions", type=int, default=10_000,
                      help="capacité comparée à ASSISTANT_MAX_SESSIONS (sessions ; 10 000 : celle de Gradio)")
    memory = parser.add_argument_group("memory")
    memory.add_argument("--answers", type=int, default=10_000, help="réponses calculées (memory)")
    memory.add_argument("--every", type=int, default=500, help="mesure de la mémoire toutes les N réponses")
    args = parser.parse_args(argv)
    if args.what == "dedupe":
        print(json.dumps(bench_dedupe(args.candidates, args.repeats), ensure_ascii=False, indent=1))
        return 0
    settings = Settings.from_env()
    if args.what == "load":
        from evals import bench_load

        result = bench_load.main(args, settings)
    elif args.what == "sessions":
        from evals import bench_load

        result = bench_load.main_sessions(args, settings)
    elif args.what == "memory":
        from evals import bench_memory

        result = bench_memory.main(args, settings)
    elif args.what == "ingest":
        result = bench_ingest(settings, real_docs=None if args.no_real_docs else REAL_DOCS, baseline=args.baseline,
                              other_vectors=args.other_vectors)
    elif args.what == "latency":
        result = bench_latency(settings, args.questions)
    elif args.what == "units":
        result = bench_units(settings)
    else:
        result = bench_synthetic(settings, args.passages, args.questions)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
