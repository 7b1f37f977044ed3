"""The « real-docs » set: real French PDF brochures and the questions written on them.

The data lives beside the project, in ``../shared/data/real-docs`` (six PDFs and ``questions.jsonl``,
format in ``../shared/README.md``). It is read at evaluation time only: the PDFs are never copied into
``corpus/``; the runner indexes them with the shipped corpus in a temporary folder.

Each row becomes an :class:`~evals.sets.EvalQuestion`:

- ``doc`` (a file name) → the doc id ingestion gives a file without a ``sources.yaml`` entry;
- ``facts_any`` → one fact whose alternatives are joined with « | »; each ``facts_all`` item → its own fact
  (the ``facts_any`` group is dropped when one of its alternatives already is a ``facts_all`` item);
- expected pages = ``page`` + ``alt_pages`` + the pages of ``evidence``;
- ``type`` is kept as ``category`` and mapped to a golden type (``CATEGORY_TYPES``);
- split: within each category, questions sorted by id alternate tune, heldout, tune… (:func:`assign_splits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.settings import PROJECT_ROOT
from evals.metrics import normalise
from evals.sets import OUT_OF_CORPUS, SPLITS, EvalQuestion, LoadedSet, SetError, SetUnavailable, read_questions

SET_NAME = "real-docs"
# Read at call time, so that tests can point it at a folder of their own.
DEFAULT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "real-docs"
QUESTIONS_FILE = "questions.jsonl"

CATEGORIES = ("chiffre", "qui", "definition", "procedure", "oui-non", "paraphrase", "multi", "hors-corpus")
# Golden type of each category; every other category is a factual question.
CATEGORY_TYPES = {"hors-corpus": OUT_OF_CORPUS, "paraphrase": "paraphrase", "multi": "multi-document"}
_KNOWN_KEYS = {
    "id", "question", "doc", "page", "facts_any", "facts_all", "alt_pages", "evidence", "type", "hard_layout",
    "abstain",
}


def doc_id(file_name: str) -> str:
    """The doc id ingestion derives for a file that has no entry in ``sources.yaml`` (same function).

    The six real-doc file names do not collide with each other nor with a shipped manifest id, so no
    collision suffix applies (ingestion would refuse a clash with a manifest id).
    """
    from ingest.ids import slug

    return slug(file_name)


def golden_type(category: str) -> str:
    return CATEGORY_TYPES.get(category, "factual")


def facts_from(facts_any: Sequence[str], facts_all: Sequence[str]) -> tuple[str, ...]:
    """``facts_any`` → one « a|b » fact, then each ``facts_all`` item; the group is dropped when redundant.

    ``(['1525'], ['1525', '5,5'])`` → ``('1525', '5,5')``;
    ``(['a', 'b'], ['1 600'])`` → ``('a|b', '1 600')``.
    """
    every = {normalise(f) for f in facts_all}
    group = [] if any(normalise(alt) in every for alt in facts_any) else ["|".join(facts_any)]
    return tuple(group + list(facts_all))


def assign_splits(rows: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(id, category)`` pairs → id → « tune » | « heldout ».

    Within each category, ids sorted alphabetically alternate tune, heldout, tune… so that both halves
    hold every kind of question and the split never depends on the order of the file.
    """
    by_category: dict[str, list[str]] = {}
    for qid, category in rows:
        by_category.setdefault(category, []).append(qid)
    out: dict[str, str] = {}
    for ids in by_category.values():
        for i, qid in enumerate(sorted(ids)):
            out[qid] = SPLITS[i % 2]
    return out


def _page_ref(entry: Any, what: str, problems: list[str]) -> tuple[str, int] | None:
    if isinstance(entry, dict) and isinstance(entry.get("doc"), str) and entry["doc"].strip() and isinstance(
        entry.get("page"), int
    ) and not isinstance(entry["page"], bool) and entry["page"] >= 1:
        return entry["doc"], entry["page"]
    problems.append(f"« {what} » : chaque entrée est {{\"doc\": \"fichier.pdf\", \"page\": 1…}}")
    return None


def _strings(raw: Any, key: str, problems: list[str], *, required: bool) -> list[str]:
    if raw is None and not required:
        return []
    if not (isinstance(raw, list) and raw and all(isinstance(f, str) and f.strip() for f in raw)):
        problems.append(f"« {key} » doit être une liste non vide de chaînes")
        return []
    if any("|" in f for f in raw):
        problems.append(f"« {key} » : un fait ne peut pas contenir « | » (séparateur des variantes)")
    return [f.strip() for f in raw]


def parse_row(raw: Any, where: str, pdfs: set[str]) -> EvalQuestion:
    """One line of questions.jsonl → :class:`EvalQuestion` (split left empty; see :func:`assign_splits`)."""
    if not isinstance(raw, dict):
        raise SetError(f"{where} : chaque ligne doit être un objet JSON.")
    problems: list[str] = []
    for key in sorted(set(raw) - _KNOWN_KEYS):
        problems.append(f"clé inconnue « {key} »")
    qid, question, category = raw.get("id"), raw.get("question"), raw.get("type")
    if not isinstance(qid, str) or not qid.strip():
        problems.append("« id » manquant ou vide")
    if not isinstance(question, str) or not question.strip():
        problems.append("« question » manquante ou vide")
    if category not in CATEGORIES:
        problems.append(f"« type » doit valoir l'un de : {', '.join(CATEGORIES)} (reçu : {category!r})")
    hard_layout = raw.get("hard_layout", False)
    if not isinstance(hard_layout, bool):
        problems.append("« hard_layout » doit valoir true ou false")
        hard_layout = False
    abstain = raw.get("abstain", False) is True
    if abstain != (category == "hors-corpus"):
        problems.append("« abstain: true » va avec « type »: « hors-corpus », et seulement avec lui")

    refs: list[tuple[str, int]] = []
    facts: tuple[str, ...] = ()
    if abstain:
        if any(raw.get(k) for k in ("doc", "page", "facts_any", "facts_all", "alt_pages", "evidence")):
            problems.append("une question hors corpus n'a ni document, ni page, ni fait attendus")
    else:
        main = _page_ref({"doc": raw.get("doc"), "page": raw.get("page")}, "doc/page", problems)
        refs += [main] if main else []
        for entry in raw.get("alt_pages") or []:
            ref = _page_ref(entry, "alt_pages", problems)
            refs += [ref] if ref else []
        for entry in raw.get("evidence") or []:
            ref = _page_ref(entry, "evidence", problems)
            refs += [ref] if ref else []
        facts = facts_from(
            _strings(raw.get("facts_any"), "facts_any", problems, required=True),
            _strings(raw.get("facts_all"), "facts_all", problems, required=False),
        )
        for doc in sorted({d for d, _ in refs} - pdfs):
            problems.append(f"le document « {doc} » n'est pas dans le dossier")
    if problems:
        raise SetError("\n".join(f"{where} : {p}" for p in problems))
    assert isinstance(qid, str) and isinstance(question, str) and isinstance(category, str)
    pages: list[tuple[str, int]] = []
    for file_name, page in refs:
        ref = (doc_id(file_name), page)
        if ref not in pages:
            pages.append(ref)
    return EvalQuestion(
        id=qid.strip(),
        type=golden_type(category),
        question=question.strip(),
        expected_docs=tuple(dict.fromkeys(d for d, _ in pages)),
        expected_pages=tuple(pages),
        facts=facts,
        set_name=SET_NAME,
        category=category,
        hard_layout=hard_layout,
    )


def load_realdocs(folder: Path | None = None) -> LoadedSet:
    """Read ``questions.jsonl`` and list the PDFs; :class:`SetUnavailable` when the data is absent."""
    folder = folder or DEFAULT_DIR
    questions_file = folder / QUESTIONS_FILE
    if not folder.is_dir():
        raise SetUnavailable(f"Jeu « {SET_NAME} » ignoré : dossier des documents réels absent ({folder}).")
    if not questions_file.is_file():
        raise SetUnavailable(f"Jeu « {SET_NAME} » ignoré : {QUESTIONS_FILE} absent de {folder}.")
    pdfs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pdf" and p.is_file())
    if not pdfs:
        raise SetUnavailable(f"Jeu « {SET_NAME} » ignoré : aucun PDF dans {folder}.")
    names = {p.name for p in pdfs}
    questions = read_questions(questions_file, lambda raw, where: parse_row(raw, where, names))
    splits = assign_splits((q.id, q.category) for q in questions)
    return LoadedSet(
        name=SET_NAME,
        questions=[replace(q, split=splits[q.id]) for q in questions],
        extra_files=tuple(pdfs),
        source=str(folder),
    )
