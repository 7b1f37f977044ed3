"""``python -m ingest`` (or ``alliances ingest``) — index the corpus; ``… fetch`` — download the originals.

Exit status: 0 every file indexed or unchanged, 1 some files failed (the rest is
indexed), 2 usage or configuration error, 3 data folder not writable or disk full,
4 Chroma server, database or embedding service (Albert API) unreachable or busy. 3 and 4
are faults of the machine, not of the corpus or the settings: a supervisor may retry them
once the disk or the server is back,
whereas 1 and 2 need a person. In every failure the served index is left as it was
and the unfinished generation is deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from assistant.cli import add_corpus_option, add_db_option, add_json_option
from assistant.errors import AssistantError
from assistant.settings import Settings

if TYPE_CHECKING:  # imported in _index: Chroma and LangChain take seconds, said on the console first
    from assistant.embeddings import NamedEmbeddings
    from ingest.index import IngestReport


HELP = "indexer le corpus (ou, avec « fetch », télécharger les publications d'origine)"
DESCRIPTION = ("Indexe le corpus (PDF, HTML, Markdown, DOCX, TXT) dans un nouvel index Chroma + BM25. "
               "Sous-commande : « fetch » télécharge les publications d'origine listées dans corpus/sources.yaml.")
EPILOG = ("Codes de sortie : 0 tout est indexé ou inchangé ; 1 certains fichiers sont en échec (le reste est "
          "indexé) ; 2 erreur d'utilisation ou de configuration ; 3 dossier de données non accessible en "
          "écriture ou disque plein ; 4 serveur Chroma, base de données ou service d'embeddings (API Albert) "
          "injoignable ou saturé. En cas d'échec, l'index en service reste inchangé.")
EXIT_FAILED_FILES, EXIT_USAGE, EXIT_STORAGE, EXIT_VECTOR_SERVER = 1, 2, 3, 4


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of indexing, and the « fetch » subcommand, on ``parser`` (``python -m ingest`` or a subparser)."""
    add_corpus_option(parser)
    add_db_option(parser)
    parser.add_argument("--rebuild", action="store_true", help="tout réindexer depuis zéro")
    add_json_option(parser, help="afficher le bilan en JSON sur la sortie standard")
    parser.add_argument("--quiet", action="store_true", help="sans barre de progression")
    parser.set_defaults(handler=_index_command)
    fetch = parser.add_subparsers(dest="ingest_command", metavar="[fetch]").add_parser(
        "fetch", help="télécharger les publications d'origine",
        description="Télécharge les publications d'origine du manifeste dans un dossier à côté du corpus.",
    )
    add_corpus_option(fetch)
    fetch.add_argument("--dest", type=Path, help="dossier de destination (défaut : originals/ à côté du corpus)")
    fetch.set_defaults(handler=_fetch_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=DESCRIPTION, epilog=EPILOG)
    configure(parser)
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


@contextmanager
def load_embedder(settings: Settings, *, rebuild: bool, out: IO[str] = sys.stderr) -> Iterator[NamedEmbeddings]:
    """The run's embedder (its worker processes stop with the block), saying what takes time before it
    does (model loading, a first or full indexing)."""
    from assistant.embed_pool import ingestion_embedder
    from assistant.shared_state import current_generation

    workers = settings.embed_worker_count
    where = f", {workers} processus" if workers > 1 else ""
    print(f"Chargement du modèle d'embeddings ({settings.embedder}{where})…", file=out, flush=True)
    started = time.monotonic()
    with ingestion_embedder(settings) as embedder:
        elapsed = time.monotonic() - started
        seconds = f"{elapsed:.{2 if elapsed < 1 else 1}f}".replace(".", ",")
        print(f"Modèle d'embeddings prêt en {seconds} s.", file=out)
        if rebuild or current_generation(settings) is None:
            first = "Réindexation complète" if rebuild else "Première indexation"
            print(f"{first} du corpus : comptez quelques minutes ; la progression s'affiche ci-dessous.",
                  file=out, flush=True)
        yield embedder


def exit_code(exc: AssistantError) -> int:
    """The exit status of an expected failure (see the module's docstring)."""
    from assistant.embeddings import EmbedderServiceError
    from assistant.pgstore import DatabaseError
    from assistant.store import StorageError, VectorServerError

    if isinstance(exc, StorageError):
        return EXIT_STORAGE
    # A server of the deployment is unreachable, or the embedding service (Albert API) busy or down.
    if isinstance(exc, (VectorServerError, DatabaseError, EmbedderServiceError)):
        return EXIT_VECTOR_SERVER
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed its French/English usage line
        return 2 if exc.code not in (0, None) else 0
    return int(args.handler(args))


def _fetch_command(args: argparse.Namespace) -> int:
    from ingest.fetch import run_fetch

    try:
        settings = Settings.from_env()  # a broken setting stops fetch too, as it stops indexing
        corpus = args.corpus.resolve() if args.corpus else settings.corpus_dir
    except AssistantError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2
    return run_fetch(corpus, args.dest.resolve() if args.dest else None)


def _index_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env().with_overrides(
            corpus_dir=args.corpus.resolve() if args.corpus else None,
            data_dir=args.db.resolve() if args.db else None,
        )
    except AssistantError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2
    return _index(settings, args)


def _index(settings: Settings, args: argparse.Namespace) -> int:
    talk = not (args.quiet or args.json)
    if talk:
        print("Démarrage de l'indexation : chargement des bibliothèques…", file=sys.stderr, flush=True)
    from ingest.index import run_ingest

    try:
        with ExitStack() as stack:
            # (a missing corpus folder is reported by run_ingest before any model is loaded)
            embedder = (stack.enter_context(load_embedder(settings, rebuild=args.rebuild))
                        if talk and settings.corpus_dir.is_dir() else None)
            report = run_ingest(settings, rebuild=args.rebuild, embedder=embedder, progress=talk)
    except AssistantError as exc:  # the one boundary: one French line, no traceback
        print(f"Erreur : {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:  # the unfinished generation and the worker processes are already gone
        print("\nIndexation interrompue : l'index servi n'a pas changé.", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print_summary(report)
    return report.exit_code

