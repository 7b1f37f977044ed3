"""``python -m evals run|gate|thresholds`` (or ``alliances eval …``) — measure the assistant, and refuse a change
that makes it worse.

The parser imports only the list of sets: the runner and the gate (LangChain's shapes, metrics) load when a
command runs, so that ``alliances --help`` or ``alliances ask`` do not pay for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.cli import add_corpus_option, add_db_option
from assistant.errors import AssistantError
from assistant.settings import PROJECT_ROOT, Settings
from evals.sets import available_sets

if TYPE_CHECKING:
    from evals.run import RunOptions

DEFAULT_OUT = PROJECT_ROOT / "evals" / "out"
HELP = "évaluer l'assistant (run), barrière de qualité (gate), seuils (thresholds)"
DESCRIPTION = "Évaluation de l'assistant : recherche, réponses, citations, refus et latences."

EPILOG = """\
configurations (--compare) :
  Chaque CONFIG est soit une liste « clé=valeur[,clé=valeur] » de réglages (noms des champs de
  Settings : search_mode, k, chunk_words, answer_mode, embedder, relevance_floor…), soit un fichier
  TOML (clé « name » facultative, puis les réglages). La configuration de base est toujours évaluée
  en premier ; une configuration qui change l'indexation (chunk_words, chunk_overlap_words, embedder,
  passage_vectors, corpus_dir) reçoit son propre index temporaire.

jeux (--sets) :
  « golden » (evals/sets/golden.jsonl, corpus livré), « real-docs » (les PDF réels de
  ../shared/data/real-docs, posés avec le corpus livré dans un index temporaire ; ignoré avec sa raison
  quand le dossier est absent), un chemin .jsonl, ou « piaf ». Chaque jeu a son propre index.

exemples :
  python -m evals run
  python -m evals run --sets golden,real-docs --fresh
  python -m evals run --fresh --compare search_mode=dense search_mode=bm25
  python -m evals run --compare chunk_words=120,chunk_overlap_words=20 --out /tmp/eval
  python -m evals run --mode llm --set golden --set piaf
  python -m evals gate                      # jeux et seuils de evals/thresholds.toml, index temporaire
  python -m evals gate --results evals/out/results.json
  python -m evals thresholds --results evals/out/results.json          # propose des seuils (affichés)
  python -m evals thresholds --results evals/out/results.json --write  # … et met à jour le fichier
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser, *, epilog: str = EPILOG) -> None:
    """``run``, ``gate`` and ``thresholds`` under ``parser`` (``python -m evals`` or ``alliances eval``).

    ``epilog``: the examples, written with the command that is being built.
    """
    sub = parser.add_subparsers(dest="eval_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--sets", "--set", dest="sets", action="append", metavar="NOM[,NOM…]",
            help=f"jeu(x) de questions (répétable, ou séparés par des virgules) : {', '.join(available_sets())}, "
            "chemin d'un fichier JSONL, ou « piaf » (benchmark PIAF). Défaut : golden (run), "
            "les jeux du fichier de seuils (gate).",
        )
        add_db_option(p)
        add_corpus_option(p)
        p.add_argument("--mode", choices=["extractive", "llm"], help="mode de réponse (défaut : réglage courant)")
        p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"dossier des résultats (défaut : {DEFAULT_OUT})")
        p.add_argument("--limit", type=int, help="seulement les N premières questions de chaque jeu (essais)")
        p.add_argument("--no-progress", action="store_true", help="sans barre de progression")
        p.add_argument("--piaf-sample", type=int, help="avec --set piaf : nombre de questions PIAF tirées au hasard")

    run_p = sub.add_parser(
        "run", help="évaluer et écrire results.json, report.md, report.html",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(run_p)
    run_p.add_argument("--fresh", action="store_true", help="indexer le corpus dans un index temporaire d'abord")
    run_p.add_argument(
        "--compare", nargs="+", default=[], metavar="CONFIG",
        help="autres configurations à évaluer à côté de la base (voir plus bas)",
    )

    gate_p = sub.add_parser(
        "gate", help="échouer (code 1) si une métrique passe sous les seuils de evals/thresholds.toml",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(gate_p)
    gate_p.add_argument("--results", type=Path, help="vérifier un results.json existant au lieu d'évaluer")
    gate_p.add_argument("--thresholds", type=Path, help="fichier de seuils (défaut : evals/thresholds.toml)")
    gate_p.add_argument(
        "--existing-index", action="store_true",
        help="utiliser l'index existant (--db) au lieu d'un index temporaire reconstruit (golden ; "
        "real-docs a toujours son index temporaire)",
    )

    thr_p = sub.add_parser(
        "thresholds",
        help="proposer les seuils à partir d'un run (marge de deux questions) ; --write met à jour le fichier",
        description="Propose un seuil par métrique, par jeu et par moitié (tune, heldout) : pour un taux mesuré sur "
        "n questions, seuil = mesure − 2/n (minimum) ou + 2/n (maximum), arrondi vers l'extérieur à 2 décimales. "
        "Les jeux absents des résultats (real-docs sans ../shared) gardent leurs seuils actuels.",
    )
    thr_p.add_argument(
        "--results", type=Path, action="append", metavar="FICHIER",
        help=f"results.json d'un run (répétable ; défaut : {DEFAULT_OUT / 'results.json'})",
    )
    thr_p.add_argument("--thresholds", type=Path,
                       help="fichier de seuils à mettre à jour (défaut : evals/thresholds.toml)")
    thr_p.add_argument("--write", action="store_true", help="écrire le fichier de seuils (sinon : afficher)")
    parser.set_defaults(handler=_command)


def _options(args: argparse.Namespace, *, fresh: bool, compare: list[str], sets: list[str] | None = None) -> RunOptions:
    from evals.run import RunOptions

    return RunOptions(
        sets=args.sets or sets or ["golden"],
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
        for set_name, one in (config.get("sets") or {}).items():
            s = one.get("summary") or {}
            if not s:
                continue
            r = s["refusals"]
            halves = " · ".join(
                f"{half} : faits {part['fact_recall']}" for half, part in (s.get("splits") or {}).items()
            )
            print(
                f"[{config['name']} · {set_name}] {s['questions']} questions · "
                f"doc hit@5 {s['retrieval_doc']['hit@5']} · page hit@5 {s['retrieval_page']['hit@5']} · "
                f"MRR@10 {s['retrieval_doc']['mrr@10']} · "
                f"faits {s['fact_recall']} (tous {s['all_facts_rate']}, "
                f"sur page attendue {s['fact_on_expected_page']}) · "
                f"précision cit. {s['citation_precision']} · validité cit. {s['citation_validity']} · "
                f"refus {r['out_of_corpus_refused']}/{r['out_of_corpus']} hors corpus, "
                f"{r['answerable_refused']}/{r['answerable']} à tort · latence p50/p95 "
                f"{s['latency_s']['total']['p50']}/{s['latency_s']['total']['p95']} s · échecs {s['failed']}"
                + (f" · {halves}" if halves else "")
            )
    for name, info in (results.get("sets") or {}).items():
        if info.get("skipped"):
            print(f"[{name}] {info['skipped']}")


def _read_results(path: Path) -> dict:
    from evals.gate import GateError

    if not path.is_file():
        raise GateError(f"Résultats introuvables : {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GateError(f"{path} : JSON invalide ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise GateError(f"{path} : ce n'est pas un fichier de résultats.")
    return data


def _thresholds_command(args: argparse.Namespace, thresholds_file: Path) -> int:
    from evals.gate import GateError, Threshold, load_thresholds, propose_thresholds

    paths = args.results or [DEFAULT_OUT / "results.json"]
    current: list[Threshold] = []
    if thresholds_file.is_file():
        try:
            current = load_thresholds(thresholds_file)
        except GateError as exc:
            # Proposing must stay possible when the file is broken or in an older layout: it is replaced.
            print(f"Seuils actuels illisibles, ils seront remplacés : {exc}", file=sys.stderr)
    text, notes = propose_thresholds([_read_results(p) for p in paths], current, gateable=available_sets())
    for note in notes:
        print(note, file=sys.stderr)
    if args.write:
        tmp = thresholds_file.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(thresholds_file)
        print(f"Seuils écrits dans {thresholds_file}.")
    else:
        print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _command(args)


def _command(args: argparse.Namespace) -> int:
    from evals.gate import THRESHOLDS_FILE, GateError, gate_results, load_thresholds, threshold_sets
    from evals.run import expand_set_names, run

    try:
        if args.eval_command == "run":
            results = run(_options(args, fresh=args.fresh, compare=args.compare), Settings.from_env(), log=_log)
            _print_headline(results)
            print(f"Résultats : {args.out / 'results.json'} · rapport : {args.out / 'report.html'}")
            return 0
        thresholds_file = args.thresholds or THRESHOLDS_FILE
        if args.eval_command == "thresholds":
            return _thresholds_command(args, thresholds_file)
        thresholds = load_thresholds(thresholds_file)
        if args.sets:
            # Only the sets asked for are judged (e.g. « --sets golden » for a quick check).
            wanted = set(expand_set_names(args.sets))
            thresholds = [t for t in thresholds if t.set_name in wanted]
            if not thresholds:
                raise GateError(f"Aucun seuil pour les jeux demandés ({', '.join(sorted(wanted))}).")
        if args.results:
            results = _read_results(args.results)
        else:
            # CI builds a fresh index from the shipped corpus unless told to reuse one; the sets are
            # those the thresholds name.
            fresh = not (args.existing_index or args.db)
            options = _options(args, fresh=fresh, compare=[], sets=threshold_sets(thresholds))
            results = run(options, Settings.from_env(), log=_log)
            _print_headline(results)
        report = gate_results(results, thresholds)
        for line in report.lines():
            print(line)
        return 0 if report.ok else 1
    except AssistantError as exc:  # the one boundary: one French line, no traceback
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2

