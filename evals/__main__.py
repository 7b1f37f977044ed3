"""``python -m evals run|gate`` — measure the assistant, and refuse a change that makes it worse."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.settings import PROJECT_ROOT, Settings, SettingsError
from evals.gate import THRESHOLDS_FILE, GateError, gate_results, load_thresholds
from evals.run import EvalError, RunOptions, run
from evals.sets import SetError, available_sets

DEFAULT_OUT = PROJECT_ROOT / "evals" / "out"

_EPILOG = """\
configurations (--compare) :
  Chaque CONFIG est soit une liste « clé=valeur[,clé=valeur] » de réglages (noms des champs de
  Settings : search_mode, k, chunk_words, answer_mode, embedder, relevance_floor…), soit un fichier
  TOML (clé « name » facultative, puis les réglages). La configuration de base est toujours évaluée
  en premier ; une configuration qui change l'indexation (chunk_words, chunk_overlap_words, embedder,
  corpus_dir) reçoit son propre index temporaire.

exemples :
  python -m evals run
  python -m evals run --fresh --compare search_mode=dense search_mode=bm25
  python -m evals run --compare chunk_words=120,chunk_overlap_words=20 --out /tmp/eval
  python -m evals run --mode llm --set golden --set piaf
  python -m evals gate                      # index temporaire, seuils de evals/thresholds.toml
  python -m evals gate --results evals/out/results.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evals",
        description="Évaluation de l'assistant : recherche, réponses, citations, refus et latences.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set", dest="sets", action="append", metavar="NOM|FICHIER",
            help=f"jeu de questions (répétable) : nom dans evals/sets/ ({', '.join(available_sets()) or 'aucun'}), "
            "chemin d'un fichier JSONL, ou « piaf » (benchmark PIAF). Défaut : golden.",
        )
        p.add_argument("--db", type=Path, help="dossier de données de l'index (défaut : ASSISTANT_DATA_DIR ou data/)")
        p.add_argument("--corpus", type=Path, help="dossier du corpus (défaut : ASSISTANT_CORPUS_DIR ou corpus/)")
        p.add_argument("--mode", choices=["extractive", "llm"], help="mode de réponse (défaut : réglage courant)")
        p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"dossier des résultats (défaut : {DEFAULT_OUT})")
        p.add_argument("--limit", type=int, help="n'évaluer que les N premières questions (essais rapides)")
        p.add_argument("--no-progress", action="store_true", help="sans barre de progression")
        p.add_argument("--piaf-sample", type=int, help="avec --set piaf : nombre de questions PIAF tirées au hasard")

    run_p = sub.add_parser(
        "run", help="évaluer et écrire results.json, report.md, report.html",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(run_p)
    run_p.add_argument("--fresh", action="store_true", help="indexer le corpus dans un index temporaire d'abord")
    run_p.add_argument(
        "--compare", nargs="+", default=[], metavar="CONFIG",
        help="autres configurations à évaluer à côté de la base (voir plus bas)",
    )

    gate_p = sub.add_parser(
        "gate", help="échouer (code 1) si une métrique passe sous les seuils de evals/thresholds.toml",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(gate_p)
    gate_p.add_argument("--results", type=Path, help="vérifier un results.json existant au lieu d'évaluer")
    gate_p.add_argument("--thresholds", type=Path, default=THRESHOLDS_FILE, help="fichier de seuils")
    gate_p.add_argument(
        "--existing-index", action="store_true",
        help="utiliser l'index existant (--db) au lieu d'un index temporaire reconstruit",
    )
    return parser


def _options(args: argparse.Namespace, *, fresh: bool, compare: list[str]) -> RunOptions:
    return RunOptions(
        sets=args.sets or ["golden"],
        db=args.db,
        corpus=args.corpus,
        mode=args.mode,
        out=args.out,
        compare=compare,
        fresh=fresh,
        limit=args.limit,
        piaf_sample=args.piaf_sample,
        progress=not args.no_progress,
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _print_headline(results: dict) -> None:
    for config in results["configs"]:
        s = config.get("summary") or {}
        if not s:
            continue
        print(
            f"[{config['name']}] {s['questions']} questions · doc hit@5 {s['retrieval_doc']['hit@5']} · "
            f"page hit@5 {s['retrieval_page']['hit@5']} · MRR@10 {s['retrieval_doc']['mrr@10']} · "
            f"faits {s['fact_recall']} · précision cit. {s['citation_precision']} · "
            f"validité cit. {s['citation_validity']} · refus P/R {s['abstention']['precision']}/"
            f"{s['abstention']['recall']} · latence p50/p95 {s['latency_s']['total']['p50']}/"
            f"{s['latency_s']['total']['p95']} s · échecs {s['failed']}"
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            results = run(_options(args, fresh=args.fresh, compare=args.compare), Settings.from_env(), log=_log)
            _print_headline(results)
            print(f"Résultats : {args.out / 'results.json'} · rapport : {args.out / 'report.html'}")
            return 0
        thresholds = load_thresholds(args.thresholds)
        if args.results:
            if not args.results.is_file():
                raise GateError(f"Résultats introuvables : {args.results}")
            results = json.loads(args.results.read_text(encoding="utf-8"))
        else:
            # CI builds a fresh index from the shipped corpus unless told to reuse one.
            fresh = not (args.existing_index or args.db)
            results = run(_options(args, fresh=fresh, compare=[]), Settings.from_env(), log=_log)
            _print_headline(results)
        checks = gate_results(results, thresholds)
        for check in checks:
            print(check.line())
        failed = [c for c in checks if not c.ok]
        if failed:
            print(f"Porte qualité : ÉCHEC ({len(failed)} métrique(s) hors seuil).")
            return 1
        print(f"Porte qualité : OK ({len(checks)} seuils respectés).")
        return 0
    except (SetError, EvalError, GateError, SettingsError) as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
