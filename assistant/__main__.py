"""``python -m assistant search|ask|feedback`` — the command-line face of the library.

Errors are turned into one French line on stderr here (exit 2 for configuration
or usage, 1 for a question that cannot be answered); never a stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.settings import Settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, help="dossier des données et de l'index (défaut : data/)")
    parser.add_argument("--json", action="store_true", help="sortie JSON")
    parser.add_argument("--questions", type=Path,
                        help="fichier JSONL, une ligne {\"id\", \"question\"[, \"history\"]} par question")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant",
                                     description="Assistant des alliances territoriales (ligne de commande).")
    sub = parser.add_subparsers(dest="command", required=True)

    search = sub.add_parser("search", help="passages classés pour une question")
    search.add_argument("question", nargs="?", default="")
    search.add_argument("--k", type=int, help="nombre de passages (défaut : réglage ASSISTANT_K)")
    search.add_argument("--mode", choices=["dense", "bm25", "hybrid"])
    search.add_argument("--doc", action="append", default=[], help="filtrer sur un document (id)")
    search.add_argument("--publisher", action="append", default=[], help="filtrer sur un éditeur")
    search.add_argument("--theme", action="append", default=[], help="filtrer sur un thème")
    search.add_argument("--format", action="append", default=[], help="filtrer sur un format (pdf, html…)")
    _common(search)

    ask = sub.add_parser("ask", help="réponse sourcée à une question")
    ask.add_argument("question", nargs="?", default="")
    ask.add_argument("--mode", choices=["extractive", "llm"])
    ask.add_argument("--plain", action="store_true", help="langage simple")
    _common(ask)

    feedback = sub.add_parser("feedback", help="exporter les retours des utilisateurs")
    feedback.add_argument("action", choices=["export"])
    feedback.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    feedback.add_argument("--out", type=Path, help="fichier de sortie (défaut : sortie standard)")
    feedback.add_argument("--db", type=Path, help="dossier des données (défaut : data/)")
    return parser


def _questions(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    if args.questions:
        with args.questions.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        raise ValueError(f"ligne {number} de {args.questions} : JSON invalide") from None
    elif args.question.strip():
        yield {"question": args.question}
    else:
        raise ValueError("indiquez une question, ou un fichier avec --questions")


def _search(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.retrieve import Filters, Retriever

    retriever = Retriever(settings)
    filters = Filters(tuple(args.doc), tuple(args.publisher), tuple(args.theme), tuple(args.format))
    for item in _questions(args):
        result = retriever.search(item["question"], k=args.k, mode=args.mode, filters=filters)
        if args.json or args.questions:
            record = {
                "id": item.get("id"),
                "question": item["question"],
                "expanded_query": result.expanded_query,
                "below_floor": result.below_floor,
                "best_similarity": round(result.best_similarity, 4),
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
        for rank, p in enumerate(result.passages, start=1):
            section = f" — {p.section}" if p.section else ""
            print(f"{rank}. [{p.score:.4f} · {'+'.join(p.retrievers)}] {p.doc_id} « {p.title} » p. {p.page}{section}")
            print("   " + p.text[:220].replace("\n", " ") + ("…" if len(p.text) > 220 else ""))
    return 0


def _ask(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.answer import Assistant, QuestionError

    assistant = Assistant(settings)
    code = 0
    for item in _questions(args):
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
    return code


def _feedback(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.feedback import FeedbackStore

    out = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        count = FeedbackStore(settings.data_dir / "feedback.sqlite").export(out, fmt=args.format)
    finally:
        if args.out:
            out.close()
    print(f"{count} retour(s) exporté(s).", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "db", None):
            settings = settings.with_overrides(data_dir=args.db.resolve())
        if args.command == "search":
            return _search(settings, args)
        if args.command == "ask":
            return _ask(settings, args)
        return _feedback(settings, args)
    except (AssistantError, ValueError, OSError) as exc:  # the one boundary: one French line, no traceback
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
