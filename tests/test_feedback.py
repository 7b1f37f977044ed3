"""FeedbackStore: answers log, feedback validation, export (CSV/JSONL) and the maintainers' CLI."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest

from assistant.feedback import TAGS, FeedbackError, FeedbackStore
from assistant.schema import Answer, Citation, Passage
from assistant.settings import Settings


def _passage(pid: str = "p1", text: str = "Le mandat municipal dure 6 ans. Il commence en mars.") -> Passage:
    return Passage(id=pid, text=text, doc_id="lettre", source_path="lettre.docx", title="Lettre aux élus",
                   publisher="Collectif", url="https://example.org/lettre", page=1, page_label="", section="Le mandat",
                   chunk_index=0, format="docx", score=0.031, retrievers=("dense", "bm25"), dense_score=0.71,
                   bm25_score=3.2)


def _answer(question: str = "Combien de temps dure un mandat ?") -> Answer:
    p1, p2 = _passage(), _passage("p2", "Autre passage retrouvé mais non cité.")
    return Answer(question=question, standalone_question=question + " (mandat)", mode="extractive",
                  text="D'après « Lettre aux élus » :\n\n- « Le mandat municipal dure 6 ans. » [1]", abstained=False,
                  citations=[Citation(n=1, passage=p1, quote="Le mandat municipal dure 6 ans.")], passages=[p1, p2],
                  timings={"total": 0.12345})


@pytest.fixture
def feedback_store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "data" / "feedback.sqlite")


def test_log_answer_keeps_what_was_retrieved_and_cited(feedback_store: FeedbackStore) -> None:
    settings = Settings(llm_api_key="cle-secrete", auth=(("agent", "mdp-secret"),))
    answer_id = feedback_store.log_answer(_answer(), settings.public_dict() | {"answer_mode": "extractive"},
                                          plain_language=True)
    record = feedback_store.get_answer(answer_id)
    assert record is not None
    assert record.question == "Combien de temps dure un mandat ?"
    assert record.standalone_question.endswith("(mandat)")
    assert record.mode == "extractive" and record.plain_language and not record.abstained
    assert record.citations[0]["quote"] == "Le mandat municipal dure 6 ans."
    assert [p["id"] for p in record.passages] == ["p1", "p2"]
    assert record.passages[0]["dense_score"] == pytest.approx(0.71)
    assert record.cited_passage_ids == {"p1"}
    assert record.settings["k"] == 5 and record.settings["answer_mode"] == "extractive"
    raw = (feedback_store.path).read_bytes()
    assert b"cle-secrete" not in raw and b"mdp-secret" not in raw
    assert record.timings == {"total": 0.1235}


def test_feedback_is_validated(feedback_store: FeedbackStore) -> None:
    answer_id = feedback_store.log_answer(_answer(), {})
    with pytest.raises(FeedbackError, match="👍 ou 👎"):
        feedback_store.add_feedback(answer_id, "bof")
    with pytest.raises(FeedbackError, match="Étiquette inconnue"):
        feedback_store.add_feedback(answer_id, "up", ["génial"])
    with pytest.raises(FeedbackError, match="trop long"):
        feedback_store.add_feedback(answer_id, "down", [], "x" * 2001)
    with pytest.raises(FeedbackError, match="introuvable"):
        feedback_store.add_feedback("nexiste-pas", "up")
    with pytest.raises(FeedbackError, match="Indiquez"):
        feedback_store.add_feedback(answer_id, None, [], "   ")
    fid = feedback_store.add_feedback(answer_id, "down", ["incomplet", "trop long", "incomplet"],
                                      "  Il manque la date. ")
    [stored] = feedback_store.list_feedback(answer_id)
    assert stored.id == fid and stored.rating == "down"
    assert stored.tags == ["incomplet", "trop long"] and stored.comment == "Il manque la date."
    assert set(TAGS) == {"clair", "complet", "sources fiables", "source erronée", "incomplet", "trop long",
                         "hors sujet"}


def test_list_answers_newest_first(feedback_store: FeedbackStore) -> None:
    ids = [feedback_store.log_answer(_answer(f"question {i}"), {}) for i in range(5)]
    listed = feedback_store.list_answers(limit=3)
    assert [r.id for r in listed] == ids[::-1][:3]


def test_export_csv_and_jsonl(feedback_store: FeedbackStore) -> None:
    first = feedback_store.log_answer(_answer(), {"k": 5})
    second = feedback_store.log_answer(_answer("Qui finance ?"), {"k": 5})
    feedback_store.log_answer(_answer("Sans avis"), {})
    feedback_store.add_feedback(first, "up", ["clair", "sources fiables"], "=HYPERLINK(\"http://x\")")
    feedback_store.add_feedback(second, "down", ["hors sujet"], "")

    out = io.StringIO()
    assert feedback_store.export(out, fmt="csv") == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["answer_id"] for r in rows] == [first, second]
    assert rows[0]["rating"] == "up" and rows[0]["tags"] == "clair;sources fiables"
    assert rows[0]["comment"].startswith("'=")  # a spreadsheet must not run it
    assert json.loads(rows[0]["citations"])[0]["doc_id"] == "lettre"
    assert json.loads(rows[0]["settings"]) == {"k": 5}
    assert rows[1]["question"] == "Qui finance ?" and rows[1]["mode"] == "extractive"

    out = io.StringIO()
    assert feedback_store.export(out, fmt="jsonl") == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[1]["tags"] == ["hors sujet"] and lines[1]["abstained"] is False
    assert [p["id"] for p in lines[0]["passages"]] == ["p1", "p2"]

    with pytest.raises(ValueError):
        feedback_store.export(io.StringIO(), fmt="xml")


def test_export_without_database_creates_nothing(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "absent" / "feedback.sqlite")
    out = io.StringIO()
    assert store.export(out, fmt="jsonl") == 0
    assert store.list_answers() == [] and store.get_answer("x") is None
    assert not (tmp_path / "absent").exists()


def test_concurrent_writers(feedback_store: FeedbackStore) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                answer_id = feedback_store.log_answer(_answer(f"q{n}-{i}"), {})
                feedback_store.add_feedback(answer_id, "up")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(feedback_store.list_answers(limit=1000)) == 80
    assert len(feedback_store.list_feedback()) == 80


def test_cli_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    data = tmp_path / "data"
    store = FeedbackStore(data / "feedback.sqlite")
    answer_id = store.log_answer(_answer(), {})
    store.add_feedback(answer_id, "up", ["complet"], "Très utile")
    for key in [k for k in __import__("os").environ if k.startswith("ASSISTANT_")]:
        monkeypatch.delenv(key)
    out = tmp_path / "export.csv"
    assert main(["feedback", "export", "--format", "csv", "--out", str(out), "--db", str(data)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["comment"] == "Très utile"
    assert "1 retour(s) exporté(s)." in capsys.readouterr().err
