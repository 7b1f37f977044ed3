"""The evaluation sets: schema, coverage of question types, and facts really present on the expected pages."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import yaml

from evals.metrics import contains_fact
from evals.sets import QUESTION_TYPES, SETS_DIR, SetError, load_set, parse_item
from ingest.load import load_file

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
GOLDEN = SETS_DIR / "golden.jsonl"


# --------------------------------------------------------------------------- the schema itself

GOOD = {
    "id": "x1", "type": "factual", "question": "Quand le RAMEAU a-t-il été créé ?",
    "expected_docs": ["le-rameau"], "expected_pages": [{"doc": "le-rameau", "page": 1}], "facts": ["2006"],
}


def test_parse_item_accepts_a_good_line() -> None:
    q = parse_item(GOOD)
    assert q.expected_pages == (("le-rameau", 1),) and q.facts == ("2006",) and not q.out_of_corpus


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "devinette"}, "« type »"),
        ({"question": " "}, "« question »"),
        ({"facts": []}, "de 1 à 3 faits"),
        ({"facts": ["a", "b", "c", "d"]}, "de 1 à 3 faits"),
        ({"expected_pages": [{"doc": "autre", "page": 1}]}, "absent de « expected_docs »"),
        ({"expected_pages": [{"doc": "le-rameau", "page": 0}]}, "« expected_pages »"),
        ({"type": "follow-up"}, "« history » non vide"),
        ({"history": [{"role": "user", "content": "avant"}]}, "seules les questions « follow-up »"),
        ({"type": "multi-document"}, "au moins deux documents"),
        ({"type": "out-of-corpus"}, "ni document"),
        ({"answer": "?"}, "clé inconnue"),
    ],
)
def test_parse_item_rejects(change: dict, message: str) -> None:
    with pytest.raises(SetError, match=message):
        parse_item({**GOOD, **change})


def test_load_set_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n{pas du json\n" + json.dumps({**GOOD, "id": "x2", "facts": []}),
        encoding="utf-8",
    )
    with pytest.raises(SetError) as info:
        load_set(path)
    text = str(info.value)
    assert "bad.jsonl:2" in text and "en double" in text
    assert "bad.jsonl:3" in text and "JSON invalide" in text
    assert "bad.jsonl:4" in text
    with pytest.raises(SetError, match="introuvable"):
        load_set(tmp_path / "absent.jsonl")


# --------------------------------------------------------------------------- the golden set


@cache
def manifest() -> dict[str, str]:
    """doc id → file name, from corpus/sources.yaml."""
    data = yaml.safe_load((CORPUS / "sources.yaml").read_text(encoding="utf-8"))
    entries = data.get("documents", data) if isinstance(data, dict) else data
    out = {}
    for entry in entries:
        out[str(entry["id"])] = str(entry.get("file") or entry.get("path"))
    return out


@cache
def pages_of(doc_id: str) -> dict[int, str]:
    loaded = load_file(CORPUS / manifest()[doc_id], CORPUS)
    return {int(p.metadata["page"]): p.page_content for p in loaded.pages}


def test_golden_set_shape() -> None:
    questions = load_set(GOLDEN)
    types = Counter(q.type for q in questions)
    assert len(questions) >= 80
    assert types["out-of-corpus"] >= 15
    assert set(types) == set(QUESTION_TYPES), f"every type is represented: {types}"
    assert all(types[t] >= 5 for t in QUESTION_TYPES), types


def test_golden_set_points_at_real_documents_and_pages() -> None:
    known = manifest()
    for q in load_set(GOLDEN):
        for doc in q.expected_docs:
            assert doc in known, f"{q.id}: unknown document {doc}"
        for doc, page in q.expected_pages:
            assert page in pages_of(doc), f"{q.id}: {doc} has no page {page}"


def test_golden_facts_are_on_the_expected_pages() -> None:
    """A key fact must be findable (normalised) on one of the pages the question expects."""
    missing = []
    for q in load_set(GOLDEN):
        text = "\n".join(pages_of(doc)[page] for doc, page in q.expected_pages)
        missing += [f"{q.id}: « {fact} »" for fact in q.facts if not contains_fact(text, fact)]
    assert not missing, "facts absent from their expected pages:\n" + "\n".join(missing)


def test_multi_document_questions_expect_a_page_in_each_document() -> None:
    for q in load_set(GOLDEN):
        assert {d for d, _ in q.expected_pages} == set(q.expected_docs), q.id
