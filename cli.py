"""``alliances`` — the project's one command line: ingest, search, ask, serve, eval, feedback.

Each subcommand is built by the function that also builds its older entry point, so an option is declared
once: ``python -m ingest`` (:mod:`ingest.cli`), ``python -m assistant`` (:mod:`assistant.cli`, which also
declares the shared ``--db``, ``--corpus`` and ``--json``), ``python -m evals`` (:mod:`evals.cli`) and
``python app.py`` (:func:`configure_serve`, below: ``app`` imports Gradio, which building a parser must not).

Building the parser imports nothing heavy; a subcommand imports its modules when it runs (``ask`` never
imports Gradio). Exit codes are those of the older entry points: 0 success, 1 partial failure (files not
indexed, a question not answered, a quality gate missed), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from assistant import cli as assistant_cli
from assistant.cli import add_db_option
from assistant.errors import AssistantError
from evals import cli as evals_cli
from ingest import cli as ingest_cli

PROG = "alliances"
SERVE_DESCRIPTION = ("Application web de l'assistant (conversation pour les élus, onglet « Sources » pour les "
                     "équipes). Indexe d'abord le corpus s'il n'y a pas encore d'index.")


def configure_serve(parser: argparse.ArgumentParser) -> None:
    """The web app's options, for ``python app.py`` and ``alliances serve``."""
    parser.add_argument("--host", help="adresse d'écoute (défaut : réglage ASSISTANT_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (défaut : réglage ASSISTANT_PORT, 7860)")
    add_db_option(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    started = time.monotonic()
    # Gradio, Chroma and LangChain take several seconds to import (more on a cold disk): say so first.
    print("Démarrage de l'assistant : chargement des bibliothèques (quelques secondes)…", file=sys.stderr, flush=True)
    from app import serve

    return serve(args, started=started)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Assistant des alliances territoriales : indexer le corpus, chercher, répondre, servir "
        "l'application web, évaluer. « alliances COMMANDE --help » détaille chaque commande.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE")
    ingest_cli.configure(sub.add_parser("ingest", help=ingest_cli.HELP, description=ingest_cli.DESCRIPTION,
                                        epilog=ingest_cli.EPILOG))
    assistant_cli.add_commands(sub)
    configure_serve(sub.add_parser("serve", help="servir l'application web (http://127.0.0.1:7860 par défaut)",
                                   description=SERVE_DESCRIPTION))
    epilog = evals_cli.EPILOG.replace("python -m evals", f"{PROG} eval")
    evals_cli.configure(sub.add_parser("eval", help=evals_cli.HELP, description=evals_cli.DESCRIPTION, epilog=epilog,
                                       formatter_class=argparse.RawDescriptionHelpFormatter), epilog=epilog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return 0 if exc.code in (0, None) else 2
    try:
        return int(args.handler(args))
    except AssistantError as exc:  # each command has its own boundary; this one catches what escapes them
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
