"""``search``, ``ask`` and ``feedback``: the command-line face of the library, and the options every command shares.

The parsers are built here once and used twice: by ``python -m assistant`` (:func:`main`) and by the
project's one command line, ``alliances`` (``cli.py``). ``--db``, ``--corpus`` and ``--json`` are declared
here only; ``ingest``, ``evals`` and ``serve`` add them with the same functions.

Errors are turned into one French line on stderr here (exit 2 for configuration
or usage, 1 for a question that cannot be answered, 3 and 4 for the faults of the
machine, as for ``python -m ingest``); never a stack trace.
Building a parser imports nothing heavy: each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.settings import Settings

Handler = Callable[[argparse.Namespace], int]

# -- options shared by every command line of the project ---------------------------------------------


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path,
                        help="dossier des données et de l'index (défaut : ASSISTANT_DATA_DIR ou data/)")


def add_corpus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, help="dossier du corpus (défaut : ASSISTANT_CORPUS_DIR ou corpus/)")


def add_json_option(parser: argparse.ArgumentParser, help: str = "sortie JSON") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def _add_question_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", default="")
    add_db_option(parser)
    add_json_option(parser)
    parser.add_argument("--questions", type=Path,
                        help="fichier JSONL, une ligne {\"id\", \"question\"[, \"history\"]} par question")


# -- search, ask, feedback ----------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``search``, ``ask`` and ``feedback`` under ``sub`` (of ``python -m assistant`` or of ``alliances``)."""
    search = sub.add_parser("search", help="passages classés pour une question",
                            description="Passages classés pour une question (sans réponse rédigée).")
    search.add_argument("--k", type=int, help="nombre de passages (défaut : réglage ASSISTANT_K)")
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"])
    search.add_argument("--doc", action="append", default=[], help="filtrer sur un document (id)")
    search.add_argument("--publisher", action="append", default=[], help="filtrer sur un éditeur")
    search.add_argument("--theme", action="append", default=[], help="filtrer sur un thème")
    search.add_argument("--format", action="append", default=[], help="filtrer sur un format (pdf, html…)")
    _add_question_options(search)
    search.set_defaults(handler=_with_settings(_search))

    ask = sub.add_parser("ask", help="réponse sourcée à une question",
                         description="Réponse sourcée à une question (extraits cités, ou texte rédigé et vérifié).")
    ask.add_argument("--mode", choices=["extractive", "llm"])
    ask.add_argument("--plain", action="store_true", help="langage simple")
    _add_question_options(ask)
    ask.set_defaults(handler=_with_settings(_ask))

    feedback = sub.add_parser("feedback", help="exporter les retours des utilisateurs",
                              description="Exporte les avis des utilisateurs et les réponses qu'ils notent.")
    feedback.add_argument("action", choices=["export", "purge"],
                          help="export : les avis ; purge : exporter puis supprimer ce qui dépasse la rétention")
    feedback.add_argument("--days", type=int, help="purge : rétention en jours (défaut : ASSISTANT_RETENTION_DAYS)")
    feedback.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    feedback.add_argument("--out", type=Path, help="fichier de sortie (défaut : sortie standard)")
    add_db_option(feedback)
    feedback.set_defaults(handler=_with_settings(_feedback))

    audit = sub.add_parser("audit", help="exporter le journal des modifications du corpus",
                           description="Exporte le journal des documents ajoutés, remplacés, décrits ou retirés "
                                       "depuis « Gérer les documents » (qui, quoi, quand).")
    audit.add_argument("action", choices=["export"])
    audit.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    audit.add_argument("--out", type=Path, help="fichier de sortie (défaut : sortie standard)")
    add_db_option(audit)
    audit.set_defaults(handler=_with_settings(_audit))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant",
                                     description="Assistant des alliances territoriales (ligne de commande).")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


class _Batch:
    """The questions of a command: the one of the command line, or each row of ``--questions``.

    A malformed row is reported on stderr with its line number and skipped, so that one bad row never
    costs the answers to the others; ``bad`` counts them (the command then exits with status 1).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bad = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        args = self.args
        if not args.questions:
            if not args.question.strip():
                raise ValueError("indiquez une question, ou un fichier avec --questions")
            yield {"question": args.question}
            return
        with args.questions.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                item, problem = _parse_row(raw)
                if problem:
                    self.bad += 1
                    print(f"Erreur : ligne {number} de {args.questions} : {problem} ; ligne ignorée.",
                          file=sys.stderr)
                elif item is not None:
                    yield item

    def exit_code(self, code: int = 0) -> int:
        return 1 if self.bad else code


def _parse_row(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the row, "") for a usable row, (None, "") for a blank line, (None, French problem) otherwise."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "texte qui n'est pas en UTF-8"
    if not line.strip():
        return None, ""
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None, "JSON invalide"
    if not isinstance(item, dict):
        return None, "chaque ligne doit être un objet JSON {\"question\": …}"
    question = item.get("question")
    if not isinstance(question, str):
        return None, ("champ « question » absent" if question is None
                      else "le champ « question » doit être un texte")
    history = item.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in history
    ):
        return None, "le champ « history » doit être une liste de messages {\"role\": …, \"content\": …}"
    return item, ""


def _search(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.limits import QuestionError, validate_question
    from assistant.retrieve import Filters, Retriever

    retriever = Retriever(settings)
    filters = Filters(doc_ids=tuple(args.doc), publishers=tuple(args.publisher), themes=tuple(args.theme),
                      formats=tuple(args.format))
    batch = _Batch(args)
    code = 0
    for item in batch:
        try:  # the same bound as « ask »: a pasted page must not hold the embedder for minutes
            question = validate_question(item["question"], settings.max_question_chars)
        except QuestionError as exc:
            print(f"Erreur : {exc}", file=sys.stderr)
            code = 1
            continue
        result = retriever.search(question, k=args.k, mode=args.mode, filters=filters)
        if args.json or args.questions:
            record = {
                "id": item.get("id"),
                "question": item["question"],
                "expanded_query": result.expanded_query,
                "below_floor": result.below_floor,
                "best_similarity": round(result.best_similarity, 4),
                "notice": result.notice,
                "passages": [
                    {"doc_id": p.doc_id, "source_path": p.source_path, "title": p.title, "page": p.page,
                     "section": p.section, "score": round(p.score, 5), "retrievers": list(p.retrievers),
                     "text": p.text}
                    for p in result.passages
                ],
            }
            print(json.dumps(record, ensure_ascii=False))
            continue
        if result.below_floor:
            print("(aucun passage ne dépasse le seuil de pertinence : l'assistant refuserait de répondre)")
        if result.notice:
            print(f"({result.notice})")
        for rank, p in enumerate(result.passages, start=1):
            section = f" — {p.section}" if p.section else ""
            print(f"{rank}. [{p.score:.4f} · {'+'.join(p.retrievers)}] {p.doc_id} « {p.title} » p. {p.page}{section}")
            print("   " + p.text[:220].replace("\n", " ") + ("…" if len(p.text) > 220 else ""))
    return batch.exit_code(code)


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.answer import Assistant, QuestionError

    assistant = Assistant(settings)
    code = 0
    batch = _Batch(args)
    for item in batch:
        try:
            answer = assistant.answer(item["question"], item.get("history", []), mode=args.mode,
                                      plain_language=True if args.plain else None)
        except QuestionError as exc:
            print(f"Erreur : {exc}", file=sys.stderr)
            code = 1
            continue
        if args.json or args.questions:
            data = answer.to_json()
            if "id" in item:
                data = {"id": item["id"], **data}
            print(json.dumps(data, ensure_ascii=False))
            continue
        print(answer.text)
        if answer.notice:
            print(f"\n({answer.notice})")
        if answer.citations:
            print("\nSources :")
            for n in sorted({c.n for c in answer.citations}):
                p = next(c.passage for c in answer.citations if c.n == n)
                where = f", page {p.printed_page}" if p.format == "pdf" else ""
                url = f" — {p.url}" if p.url else ""
                print(f"[{n}] « {p.title} » ({p.publisher}){where} — {p.source_path}{url}")
    return batch.exit_code(code)


def _feedback(settings: Settings, args: argparse.Namespace) -> int:
    from assistant import shared_state
    from assistant.feedback import apply_retention

    if args.action == "purge":
        days = settings.retention_days if args.days is None else args.days
        if days <= 0:
            print("Erreur : indiquez la rétention en jours (--days N ou ASSISTANT_RETENTION_DAYS).", file=sys.stderr)
            return 2
        purge = apply_retention(shared_state.feedback_store(settings), days, settings.retention_archive_dir)
        if purge.archive is None:
            print(f"Rien à purger : aucune réponse de plus de {days} jours.", file=sys.stderr)
        else:
            print(f"{purge.answers} réponse(s) et {purge.feedback} avis de plus de {days} jours exportés dans "
                  f"{purge.archive}, puis supprimés du journal.", file=sys.stderr)
        return 0
    out = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        count = shared_state.feedback_store(settings).export(out, fmt=args.format)
    finally:
        if args.out:
            out.close()
    print(f"{count} retour(s) exporté(s).", file=sys.stderr)
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from assistant import shared_state

    out = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        count = shared_state.audit_log(settings).export(out, fmt=args.format)
    finally:
        if args.out:
            out.close()
    print(f"{count} ligne(s) du journal exportée(s).", file=sys.stderr)
    return 0


def _fault_code(exc: Exception) -> int:
    """The exit status of ``python -m ingest`` and ``python app.py`` for a fault of the machine: 3 data folder not
    writable or disk full, 4 Chroma server unreachable or the embedding service (Albert API) busy or down; 2 for
    everything else (usage, settings, no index)."""
    from assistant.embeddings import EmbedderServiceError
    from assistant.store import StorageError, VectorServerError

    if isinstance(exc, StorageError):
        return 3
    return 4 if isinstance(exc, (VectorServerError, EmbedderServiceError)) else 2


def _with_settings(command: Callable[[Settings, argparse.Namespace], int]) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        try:
            settings = Settings.from_env()
            if args.db:
                settings = settings.with_overrides(data_dir=args.db.resolve())
            return command(settings, args)
        # The one boundary: one French line, no traceback. ValueError and OSError too: a bad --questions
        # file or an unwritable --out is the user's to fix, and their messages name the file.
        except (AssistantError, ValueError, OSError) as exc:
            print(f"Erreur : {exc}", file=sys.stderr)
            return _fault_code(exc)

    return handler


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)
