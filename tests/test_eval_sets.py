"""The evaluation sets: schema, coverage of question types, and facts really present on the expected pages."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import yaml

from evals.metrics import contains_fact
from evals.sets import (
    QUESTION_TYPES,
    SETS_DIR,
    LoadedSet,
    SetError,
    SetUnavailable,
    available_sets,
    load_named_set,
    load_set,
    parse_item,
    realdocs,
)
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


# --------------------------------------------------------------------------- the real-docs set (../shared)

REAL_ROWS = [
    {"id": "D01", "question": "Combien coûte le raccordement ?", "doc": "Guide_Copro.pdf", "page": 15,
     "facts_any": ["500 à 2000", "2000 €/logement"], "type": "chiffre", "hard_layout": False},
    {"id": "D02", "question": "Qui décide ?", "doc": "Guide_Copro.pdf", "page": 9,
     "facts_any": ["collectivité territoriale"], "type": "qui", "hard_layout": False,
     "alt_pages": [{"doc": "Brochure ADEME.pdf", "page": 6}]},
    # Like D08: the only alternative of facts_any is already a facts_all item → the group is dropped.
    {"id": "D08", "question": "Coût et TVA ?", "doc": "Guide_Copro.pdf", "page": 16, "facts_any": ["1525"],
     "facts_all": ["1525", "5,5"], "type": "multi", "hard_layout": False,
     "evidence": [{"doc": "Guide_Copro.pdf", "page": 16, "facts": ["1525"]},
                  {"doc": "Guide_Copro.pdf", "page": 10, "facts": ["5,5"]}]},
    # Like D24: facts_any stays one fact of alternatives, facts_all adds its own.
    {"id": "D24", "question": "Quelle solution et combien ?", "doc": "Brochure ADEME.pdf", "page": 31,
     "facts_any": ["gaz naturel à condensation", "chauffage collectif au gaz", "gaz coll cond"],
     "facts_all": ["1 600"], "type": "multi", "hard_layout": True,
     "evidence": [{"doc": "Brochure ADEME.pdf", "page": 31, "facts": ["gaz naturel à condensation"]},
                  {"doc": "Guide_Copro.pdf", "page": 32, "facts": ["1 600"]}]},
    {"id": "D07", "question": "Jusqu'à quelle distance ?", "doc": "Guide_Copro.pdf", "page": 14,
     "facts_any": ["140 m"], "type": "chiffre", "hard_layout": True},
    {"id": "D03", "question": "Que sont les DJU ?", "doc": "Guide_Copro.pdf", "page": 14,
     "facts_any": ["degrés jour unifié"], "type": "definition", "hard_layout": False},
    {"id": "D06", "question": "Combien de temps pour payer ?", "doc": "Guide_Copro.pdf", "page": 10,
     "facts_any": ["dix ans"], "type": "paraphrase", "hard_layout": False},
    {"id": "D09", "question": "Combien de réseaux ?", "doc": "Brochure ADEME.pdf", "page": 2,
     "facts_any": ["500 réseaux"], "type": "chiffre", "hard_layout": False},
    {"id": "D48", "question": "Quelles aides pour la cantine ?", "abstain": True, "type": "hors-corpus"},
    {"id": "D49", "question": "Date limite des listes électorales ?", "abstain": True, "type": "hors-corpus"},
    {"id": "D50", "question": "Délai d'un permis de construire ?", "abstain": True, "type": "hors-corpus"},
]


def write_real_docs(folder: Path, rows: list[dict] | None = None, pdfs: tuple[str, ...] = ()) -> Path:
    """A fake ../shared/data/real-docs: questions.jsonl and (empty) PDFs, shuffled file order."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = REAL_ROWS if rows is None else rows
    for name in pdfs or ("Guide_Copro.pdf", "Brochure ADEME.pdf"):
        (folder / name).write_bytes(b"%PDF-1.4\n")
    lines = [json.dumps(r, ensure_ascii=False) for r in reversed(rows)]
    (folder / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _by_id(loaded: LoadedSet) -> dict:
    return {q.id: q for q in loaded.questions}


def test_real_docs_doc_ids_are_those_ingestion_gives() -> None:
    from ingest.ids import assign_doc_ids
    from ingest.load import corpus_files
    from ingest.manifest import load_manifest

    # As the runner indexes them: beside the shipped corpus, whose manifest ids they must not clash with.
    corpus = ROOT / "corpus"
    manifest = {d.file: d.id for d in load_manifest(corpus / "sources.yaml").documents}
    names = ["FCU_guide_exploitants.pdf", "Brochure ADEME.pdf", "guide_raccordement_des_coproprietes.pdf"]
    ids = assign_doc_ids([p.relative_to(corpus).as_posix() for p in corpus_files(corpus)] + names, manifest)
    for name in names:
        assert realdocs.doc_id(name) == ids[name]
    assert realdocs.doc_id("FCU_guide_exploitants.pdf") == "fcu-guide-exploitants"


def test_real_docs_facts_mapping(tmp_path: Path) -> None:
    questions = _by_id(realdocs.load_realdocs(write_real_docs(tmp_path / "rd")))
    assert questions["D01"].facts == ("500 à 2000|2000 €/logement",)
    assert questions["D08"].facts == ("1525", "5,5")
    assert questions["D24"].facts == ("gaz naturel à condensation|chauffage collectif au gaz|gaz coll cond", "1 600")
    assert questions["D48"].facts == ()
    # The facts_any group is dropped on a normalised match too (« 1 525 » is « 1525 »).
    assert realdocs.facts_from(["1 525", "mille cinq cent"], ["1525"]) == ("1525",)
    assert realdocs.facts_from(["a", "b"], []) == ("a|b",)


def test_real_docs_pages_types_and_layout(tmp_path: Path) -> None:
    loaded = realdocs.load_realdocs(write_real_docs(tmp_path / "rd"))
    assert loaded.name == "real-docs" and {p.name for p in loaded.extra_files} == {"Guide_Copro.pdf",
                                                                                    "Brochure ADEME.pdf"}
    questions = _by_id(loaded)
    d02, d08, d24, d48 = questions["D02"], questions["D08"], questions["D24"], questions["D48"]
    assert d02.expected_pages == (("guide-copro", 9), ("brochure-ademe", 6))
    assert d02.expected_docs == ("guide-copro", "brochure-ademe")
    assert d08.expected_pages == (("guide-copro", 16), ("guide-copro", 10))  # page 16 given twice, kept once
    assert d08.expected_docs == ("guide-copro",)
    assert d24.expected_pages == (("brochure-ademe", 31), ("guide-copro", 32))
    assert (d08.type, d08.category) == ("multi-document", "multi")
    assert (d02.type, d02.category) == ("factual", "qui")
    assert (questions["D06"].type, questions["D06"].category) == ("paraphrase", "paraphrase")
    assert (d48.type, d48.category) == ("out-of-corpus", "hors-corpus") and d48.out_of_corpus
    assert d48.expected_pages == () and d48.expected_docs == ()
    assert d24.hard_layout and questions["D07"].hard_layout and not d02.hard_layout
    assert all(q.set_name == "real-docs" for q in loaded.questions)
    record = d24.to_json()
    assert record["category"] == "multi" and record["hard_layout"] is True and record["split"] in ("tune", "heldout")


def test_real_docs_split_alternates_within_each_type_by_id(tmp_path: Path) -> None:
    questions = _by_id(realdocs.load_realdocs(write_real_docs(tmp_path / "rd")))
    splits = {qid: q.split for qid, q in questions.items()}
    # chiffre: D01, D07, D09 (sorted by id, whatever the file order) → tune, heldout, tune.
    assert [splits[i] for i in ("D01", "D07", "D09")] == ["tune", "heldout", "tune"]
    assert [splits[i] for i in ("D08", "D24")] == ["tune", "heldout"]  # multi
    assert [splits[i] for i in ("D48", "D49", "D50")] == ["tune", "heldout", "tune"]  # hors-corpus
    assert splits["D02"] == splits["D03"] == splits["D06"] == "tune"  # alone in their type
    # The split does not depend on the order of the rows.
    assert realdocs.assign_splits([("b", "x"), ("a", "x"), ("c", "y")]) == {"a": "tune", "b": "heldout", "c": "tune"}


def test_real_docs_absent_folder_is_a_reason_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SetUnavailable, match="absent"):
        realdocs.load_realdocs(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SetUnavailable, match=r"questions\.jsonl absent"):
        realdocs.load_realdocs(empty)
    monkeypatch.setattr(realdocs, "DEFAULT_DIR", tmp_path / "nowhere")
    with pytest.raises(SetUnavailable, match="real-docs"):
        load_named_set("real-docs")
    assert "real-docs" in available_sets() and "golden" in available_sets()


def test_real_docs_loaded_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realdocs, "DEFAULT_DIR", write_real_docs(tmp_path / "rd"))
    loaded = load_named_set("real-docs")
    assert len(loaded.questions) == len(REAL_ROWS) and loaded.extra_files
    golden = load_named_set("golden")
    assert golden.name == "golden" and golden.extra_files == () and len(golden.questions) >= 80


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"doc": "Absent.pdf"}, "« Absent.pdf » n'est pas dans le dossier"),
        ({"type": "devinette"}, "« type »"),
        ({"facts_any": []}, "« facts_any »"),
        ({"facts_any": ["a|b"]}, "« | »"),
        ({"page": 0}, "doc/page"),
        ({"alt_pages": [{"doc": "Guide_Copro.pdf"}]}, "alt_pages"),
        ({"abstain": True}, "abstain"),
        ({"colonne": 1}, "clé inconnue"),
    ],
)
def test_real_docs_bad_rows_are_refused_with_their_line(tmp_path: Path, change: dict, message: str) -> None:
    rows = [{**REAL_ROWS[0], **change}]
    with pytest.raises(SetError, match=re.escape(message)) as info:
        realdocs.load_realdocs(write_real_docs(tmp_path / "rd", rows))
    assert "questions.jsonl:1" in str(info.value)


def test_real_docs_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SetError, match="en double"):
        realdocs.load_realdocs(write_real_docs(tmp_path / "rd", [REAL_ROWS[0], REAL_ROWS[0]]))


REAL_DOCS = ROOT.parent / "shared" / "data" / "real-docs"


@pytest.mark.skipif(not (REAL_DOCS / "questions.jsonl").is_file(), reason="../shared/data/real-docs absent")
def test_the_shared_real_docs_set() -> None:
    loaded = realdocs.load_realdocs(REAL_DOCS)
    questions = loaded.questions
    assert len(questions) == 52 and sum(q.out_of_corpus for q in questions) == 5
    slugs = {realdocs.doc_id(p.name) for p in loaded.extra_files}
    assert len(loaded.extra_files) == 6 and all(d in slugs for q in questions for d in q.expected_docs)
    for category in realdocs.CATEGORIES:
        halves = Counter(q.split for q in questions if q.category == category)
        assert halves["tune"] - halves["heldout"] in (0, 1), (category, halves)
    assert all(q.facts for q in questions if not q.out_of_corpus)
