"""Evaluation sets: JSONL files of questions, one per line (schema in evals/README.md).

A set is named (« golden » → ``evals/sets/golden.jsonl``), given as a path to a JSONL file, or is
« real-docs »: the real PDF brochures of ``../shared/data/real-docs`` (evals/sets/realdocs.py), whose
questions are asked against the shipped corpus plus those PDFs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

SETS_DIR = Path(__file__).resolve().parent

QUESTION_TYPES = ("factual", "paraphrase", "acronym", "multi-document", "follow-up", "out-of-corpus")
OUT_OF_CORPUS = "out-of-corpus"
_KNOWN_KEYS = {"id", "type", "question", "history", "expected_docs", "expected_pages", "facts", "notes", "split"}
# Every question belongs to one half, fixed once: thresholds are calibrated on "tune" and judged on "heldout".
SPLITS = ("tune", "heldout")


class SetError(AssistantError, ValueError):
    """An evaluation set that cannot be used (message in French, with file and line)."""


class SetUnavailable(SetError):
    """A set whose data lives outside the project and is absent here: skipped with this reason, never a crash."""


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    type: str
    question: str
    history: tuple[tuple[str, str], ...] = ()
    expected_docs: tuple[str, ...] = ()
    expected_pages: tuple[tuple[str, int], ...] = ()
    facts: tuple[str, ...] = ()
    notes: str = ""
    set_name: str = ""
    split: str = ""
    # The set's own question type when it has one (real-docs: « chiffre », « qui »…); ``type`` is then the
    # golden type it maps to, so that the per-type tables and the out-of-corpus rules stay shared.
    category: str = ""
    # The expected page's extracted text is scrambled (columns, infographics): reported apart.
    hard_layout: bool = False

    @property
    def out_of_corpus(self) -> bool:
        return self.type == OUT_OF_CORPUS

    def history_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.history]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "set": self.set_name,
            "type": self.type,
            "question": self.question,
            "history": self.history_messages(),
            "expected_docs": list(self.expected_docs),
            "expected_pages": [{"doc": d, "page": p} for d, p in self.expected_pages],
            "facts": list(self.facts),
            "notes": self.notes,
            "split": self.split,
            "category": self.category,
            "hard_layout": self.hard_layout,
        }


@dataclass
class _Problems:
    where: str
    items: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.items.append(f"{self.where} : {message}")


def parse_item(raw: dict[str, Any], where: str = "", set_name: str = "") -> EvalQuestion:
    """One JSON object → :class:`EvalQuestion`, or :class:`SetError` listing every problem."""
    problems = _Problems(where or "question")
    if not isinstance(raw, dict):
        raise SetError(f"{problems.where} : chaque ligne doit être un objet JSON.")
    for key in sorted(set(raw) - _KNOWN_KEYS):
        problems.add(f"clé inconnue « {key} »")
    qid, qtype, question = raw.get("id"), raw.get("type"), raw.get("question")
    if not isinstance(qid, str) or not qid.strip():
        problems.add("« id » manquant ou vide")
    if qtype not in QUESTION_TYPES:
        problems.add(f"« type » doit valoir l'un de : {', '.join(QUESTION_TYPES)} (reçu : {qtype!r})")
    if not isinstance(question, str) or not question.strip():
        problems.add("« question » manquante ou vide")

    history: list[tuple[str, str]] = []
    for turn in raw.get("history") or []:
        if not (isinstance(turn, dict) and turn.get("role") in ("user", "assistant") and isinstance(
            turn.get("content"), str
        )):
            problems.add("« history » : chaque tour est {\"role\": \"user\"|\"assistant\", \"content\": \"…\"}")
            break
        history.append((turn["role"], turn["content"]))
    if qtype == "follow-up" and not history:
        problems.add("une question « follow-up » doit avoir un « history » non vide")
    if qtype != "follow-up" and history:
        problems.add("seules les questions « follow-up » ont un « history »")

    docs = raw.get("expected_docs") or []
    if not (isinstance(docs, list) and all(isinstance(d, str) and d for d in docs)):
        problems.add("« expected_docs » doit être une liste d'identifiants de documents")
        docs = []
    pages: list[tuple[str, int]] = []
    for entry in raw.get("expected_pages") or []:
        if not (isinstance(entry, dict) and isinstance(entry.get("doc"), str) and isinstance(entry.get("page"), int)
                and entry["page"] >= 1):
            problems.add("« expected_pages » : chaque entrée est {\"doc\": \"…\", \"page\": 1…}")
            break
        if entry["doc"] not in docs:
            problems.add(f"« expected_pages » cite « {entry['doc']} », absent de « expected_docs »")
        pages.append((entry["doc"], entry["page"]))
    facts = raw.get("facts") or []
    if not (isinstance(facts, list) and all(isinstance(f, str) and f.strip() for f in facts)):
        problems.add("« facts » doit être une liste de chaînes non vides")
        facts = []

    if qtype == OUT_OF_CORPUS:
        if docs or pages or facts:
            problems.add("une question hors corpus n'a ni document, ni page, ni fait attendus")
    elif qtype in QUESTION_TYPES:
        if not docs:
            problems.add("« expected_docs » ne peut pas être vide (sauf hors corpus)")
        if not pages:
            problems.add("« expected_pages » ne peut pas être vide (sauf hors corpus)")
        if not 1 <= len(facts) <= 3:
            problems.add("il faut de 1 à 3 faits clés (« facts »)")
        if qtype == "multi-document" and len(set(docs)) < 2:
            problems.add("une question « multi-document » attend au moins deux documents")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        problems.add("« notes » doit être une chaîne")
        notes = ""
    split = raw.get("split", "")
    if split not in ("", *SPLITS):
        problems.add(f"« split » doit valoir {' ou '.join(SPLITS)} (reçu : {split!r})")
        split = ""
    if problems.items:
        raise SetError("\n".join(problems.items))
    assert isinstance(qid, str) and isinstance(qtype, str) and isinstance(question, str)
    return EvalQuestion(
        id=qid.strip(),
        type=qtype,
        question=question.strip(),
        history=tuple(history),
        expected_docs=tuple(docs),
        expected_pages=tuple(pages),
        facts=tuple(f.strip() for f in facts),
        notes=notes,
        set_name=set_name,
        split=split,
    )


def read_questions(path: Path, parse: Callable[[Any, str], EvalQuestion]) -> list[EvalQuestion]:
    """Every question of a JSONL file, parsed by ``parse(raw, where)``; all problems reported at once."""
    questions: list[EvalQuestion] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path.name}:{number}"
        try:
            q = parse(json.loads(line), where)
        except json.JSONDecodeError as exc:
            problems.append(f"{where} : JSON invalide ({exc.msg})")
            continue
        except SetError as exc:
            problems.append(str(exc))
            continue
        if q.id in seen:
            problems.append(f"{where} : identifiant « {q.id} » en double")
        seen.add(q.id)
        questions.append(q)
    if problems:
        raise SetError(f"Jeu d'évaluation {path.name} invalide :\n" + "\n".join(problems))
    if not questions:
        raise SetError(f"Jeu d'évaluation vide : {path}")
    return questions


def load_set(path: Path) -> list[EvalQuestion]:
    """Read and validate a JSONL set; every problem of the file is reported at once."""
    if not path.is_file():
        raise SetError(f"Jeu d'évaluation introuvable : {path}")
    return read_questions(path, lambda raw, where: parse_item(raw, where, set_name=path.stem))


def resolve_set(name_or_path: str) -> Path:
    """A set name (« golden » → evals/sets/golden.jsonl) or a path to a JSONL file."""
    path = Path(name_or_path)
    if path.suffix == ".jsonl" or path.exists():
        return path
    return SETS_DIR / f"{name_or_path}.jsonl"


def available_sets() -> list[str]:
    from evals.sets.realdocs import SET_NAME as REAL_DOCS

    return sorted([p.stem for p in SETS_DIR.glob("*.jsonl")] + [REAL_DOCS])


@dataclass(frozen=True)
class LoadedSet:
    """A set ready to be asked: its questions, and the files to add to the shipped corpus for it."""

    name: str
    questions: list[EvalQuestion]
    # Files indexed with the shipped corpus for this set only (in a temporary copy; never in corpus/).
    extra_files: tuple[Path, ...] = ()
    source: str = ""


def load_named_set(name_or_path: str) -> LoadedSet:
    """« real-docs », a set name of evals/sets/ or a JSONL path → :class:`LoadedSet`.

    Raises :class:`SetUnavailable` (French reason) when a set's external data is absent.
    """
    from evals.sets import realdocs

    if name_or_path == realdocs.SET_NAME:
        return realdocs.load_realdocs()
    path = resolve_set(name_or_path)
    return LoadedSet(name=path.stem, questions=load_set(path), source=str(path))
