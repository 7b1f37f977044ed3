"""``python -m ingest`` — index the corpus; ``python -m ingest fetch`` — download the originals.

Exit status: 0 every file indexed or unchanged, 1 some files failed (the rest is
indexed), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO

from assistant.embeddings import EmbedderError
from assistant.settings import Settings, SettingsError
from assistant.store import StoreError
from ingest.index import IngestConfigError, IngestReport, run_ingest


def _index_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Indexe le corpus (PDF, HTML, Markdown, DOCX, TXT) dans un nouvel index Chroma + BM25. "
        "Sous-commande : « fetch » télécharge les publications d'origine listées dans corpus/sources.yaml.",
    )
    parser.add_argument("--corpus", type=Path, help="dossier du corpus (défaut : corpus/ du projet)")
    parser.add_argument("--db", type=Path, help="dossier des données et de l'index (défaut : data/)")
    parser.add_argument("--rebuild", action="store_true", help="tout réindexer depuis zéro")
    parser.add_argument("--json", action="store_true", help="afficher le bilan en JSON sur la sortie standard")
    parser.add_argument("--quiet", action="store_true", help="sans barre de progression")
    return parser


def _fetch_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest fetch",
        description="Télécharge les publications d'origine du manifeste dans un dossier à côté du corpus.",
    )
    parser.add_argument("--corpus", type=Path, help="dossier du corpus (défaut : corpus/ du projet)")
    parser.add_argument("--dest", type=Path, help="dossier de destination (défaut : originals/ à côté du corpus)")
    return parser


def print_summary(report: IngestReport, out: IO[str] = sys.stdout) -> None:
    rows = [
        ("Fichiers indexés", len(report.indexed)),
        ("Fichiers inchangés", len(report.unchanged)),
        ("Fichiers retirés", len(report.removed)),
        ("Fichiers en échec", len(report.failed)),
        ("Pages", report.pages),
        ("Passages", report.passages),
        ("Durée (s)", f"{report.seconds:.1f}"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"\nBilan de l'indexation (génération {report.generation or '—'})", file=out)
    print("-" * (width + 12), file=out)
    for label, value in rows:
        print(f"{label:<{width}}  {value:>8}", file=out)
    print("-" * (width + 12), file=out)
    for failure in report.failed:
        print(f"ÉCHEC  {failure['path']} : {failure['reason']}", file=out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = Settings.from_env()
        if argv[:1] == ["fetch"]:
            from ingest.fetch import run_fetch

            fetch_args = _fetch_parser().parse_args(argv[1:])
            corpus = fetch_args.corpus.resolve() if fetch_args.corpus else settings.corpus_dir
            return run_fetch(corpus, fetch_args.dest.resolve() if fetch_args.dest else None)
        args = _index_parser().parse_args(argv)
        settings = settings.with_overrides(
            corpus_dir=args.corpus.resolve() if args.corpus else None,
            data_dir=args.db.resolve() if args.db else None,
        )
        report = run_ingest(settings, rebuild=args.rebuild, progress=not (args.quiet or args.json))
    except SystemExit as exc:  # argparse already printed its French/English usage line
        return 2 if exc.code not in (0, None) else 0
    except (SettingsError, IngestConfigError, EmbedderError, StoreError) as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print_summary(report)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
