"""The evaluation runner, report and gate: hand-made answers, then a real end-to-end run on the tiny corpus."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assistant.schema import Answer, Citation, Passage
from assistant.settings import Settings
from evals import __main__ as cli
from evals.gate import Check, GateError, check_summary, gate_results, load_thresholds
from evals.report import changed_questions, render_html, render_markdown
from evals.run import (
    Config,
    EvalError,
    RunOptions,
    parse_config,
    run,
    score_answer,
    summarise,
    summarise_by_type,
)
from evals.sets import EvalQuestion

# --------------------------------------------------------------------------- hand-made answers


def _passage(doc: str, page: int, text: str, source: str = "") -> Passage:
    return Passage(
        id=f"{doc}-{page}", text=text, doc_id=doc, source_path=source or f"{doc}.md", title=doc.title(),
        publisher="", url="", page=page, page_label="", section="", chunk_index=0, format="md",
    )


RAMEAU = _passage("le-rameau", 2, "Le RAMEAU a été créé en 2006. Il revendique plus de 1 000 exemples d'alliances.")
MOOC = _passage("mooc", 1, "Le MOOC est gratuit sur Coursera.")

FACTUAL = EvalQuestion(
    id="q1", type="factual", question="Le RAMEAU date de quand ?", expected_docs=("le-rameau",),
    expected_pages=(("le-rameau", 2),), facts=("2006", "1000 exemples"),
)
OUT = EvalQuestion(id="q2", type="out-of-corpus", question="Comment voter par procuration ?")


def _answer(text: str, citations: list[Citation], passages: list[Passage], abstained: bool = False) -> Answer:
    return Answer(
        question="", standalone_question="", mode="extractive", text=text, abstained=abstained,
        citations=citations, passages=passages, timings={"retrieve": 0.1, "answer": 0.2, "total": 0.3},
    )


def test_score_answer_on_a_good_answer() -> None:
    quote = "Le RAMEAU a été créé en 2006."
    ans = _answer(f"D'après Le-Rameau :\n\n- « {quote} » [1]", [Citation(1, RAMEAU, quote)], [MOOC, RAMEAU])
    record = score_answer(FACTUAL, ans, None, 0.3)
    assert record["retrieval_doc"]["hit@1"] == 0.0
    assert record["retrieval_doc"]["mrr@10"] == 0.5
    assert record["retrieval_page"]["hit@5"] == 1.0
    assert record["fact_recall"] == 0.5  # « 1000 exemples » is retrieved but not quoted
    assert record["citations"][0]["valid"] is True
    assert record["citations"][0]["supports_fact"] is True
    assert record["citations"][0]["expected_page"] is True
    assert any("faits absents" in r and "1000 exemples" in r for r in record["failures"])


def test_score_answer_flags_invented_quotes_and_wrong_support() -> None:
    ans = _answer(
        "Le RAMEAU date de 2006 [1]. Il a 1 000 exemples [2].",
        [Citation(1, RAMEAU, "créé en 2007"), Citation(2, MOOC, "Le MOOC est gratuit")],
        [RAMEAU, MOOC],
    )
    record = score_answer(FACTUAL, ans, None, 0.3)
    assert record["fact_recall"] == 1.0
    valid = [c["valid"] for c in record["citations"]]
    assert valid == [False, True]  # « 2007 » is not in the page
    # [2] states « 1 000 exemples » but cites the MOOC passage, which does not hold it.
    assert record["citations"][1]["supports_fact"] is False
    assert any("non littérale" in r for r in record["failures"])


def test_abstention_and_summary() -> None:
    refused_ooc = score_answer(OUT, _answer("Je n'ai pas trouvé…", [], [MOOC], abstained=True), None, 0.1)
    answered_ooc = score_answer(OUT, _answer("Le MOOC [1]", [Citation(1, MOOC, "Le MOOC est gratuit")], [MOOC]),
                                None, 0.1)
    refused_in = score_answer(FACTUAL, _answer("Je n'ai pas trouvé… 2006", [], [RAMEAU], abstained=True), None, 0.1)
    assert refused_ooc["failures"] == []
    assert answered_ooc["failures"] == ["a répondu au lieu de refuser (hors corpus)"]
    assert refused_in["fact_recall"] == 0.0  # a refusal finds no fact, even if its text mentions one
    summary = summarise([refused_ooc, answered_ooc, refused_in])
    assert summary["abstention"]["precision"] == 0.5
    assert summary["abstention"]["recall"] == 0.5
    assert summary["false_refusal_rate"] == 1.0
    assert summary["latency_s"]["total"]["p50"] == 0.3
    assert summary["llm_fallback_rate"] is None  # extractive answers only
    quote = "Le RAMEAU a été créé en 2006."
    fallback = _answer(f"- « {quote} » [1]", [Citation(1, RAMEAU, quote)], [RAMEAU])
    fallback.mode, fallback.notice = "llm", "Aucune phrase de la réponse générée n'a pu être vérifiée…"
    generated = _answer("Le RAMEAU date de 2006 [1].", [Citation(1, RAMEAU, "créé en 2006")], [RAMEAU])
    generated.mode = "llm"
    llm = summarise([score_answer(FACTUAL, fallback, None, 0.1), score_answer(FACTUAL, generated, None, 0.1)])
    assert llm["llm_fallback_rate"] == 0.5
    by_type = summarise_by_type([refused_ooc, answered_ooc, refused_in])
    assert by_type["out-of-corpus"]["abstention_rate"] == 0.5
    assert by_type["factual"]["doc_hit@5"] == 1.0


# --------------------------------------------------------------------------- configurations


def test_parse_config_coerces_types(tmp_path: Path) -> None:
    base = Settings()
    c = parse_config("search_mode=bm25,k=8,relevance_floor=0.7,plain_language=oui", base)
    assert c.overrides == {"search_mode": "bm25", "k": 8, "relevance_floor": 0.7, "plain_language": True}
    assert not c.needs_own_index
    assert Config("x", {"chunk_words": 120}).needs_own_index
    toml = tmp_path / "petits.toml"
    toml.write_text('name = "petits passages"\nchunk_words = 120\nchunk_overlap_words = 20\n', encoding="utf-8")
    c = parse_config(str(toml), base)
    assert c.name == "petits passages" and c.overrides == {"chunk_words": 120, "chunk_overlap_words": 20}
    for bad in ("inconnu=1", "k=beaucoup", "search_mode", "k=0", "llm_api_key=x"):
        with pytest.raises(EvalError):
            parse_config(bad, base)


# --------------------------------------------------------------------------- report and gate


def _results(records: list[dict]) -> dict:
    summary = summarise(records)
    return {
        "meta": {"created": "2026-01-01T00:00:00+00:00", "git_commit": "abc", "sets": ["golden"],
                 "questions": len(records), "fresh": True, "duration_s": 1.0},
        "configs": [{"name": "base", "overrides": {}, "settings": Settings().public_dict(), "index": {},
                     "assistant_load_s": 0.1, "summary": summary, "by_type": summarise_by_type(records),
                     "questions": records}],
    }


def test_report_escapes_every_text() -> None:
    nasty = EvalQuestion(id="q<1>", type="out-of-corpus", question="<script>alert('x')</script> | pipe")
    record = score_answer(nasty, _answer("<img src=x onerror=alert(1)> [1]", [Citation(1, MOOC, "<b>gras</b>")],
                                         [MOOC]), None, 0.2)
    html = render_html(_results([record]))
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;b&gt;gras" in html
    assert html.count("data:image/png;base64,") >= 2  # per-type metrics and latency histogram
    assert not re.findall(r'(?:src|href)="(?!data:)', html)  # self-contained: nothing fetched from outside
    md = render_markdown(_results([record]))
    assert "\\| pipe" in md and "<script>" not in md


def test_changed_questions_between_configurations() -> None:
    base = {"questions": [{"id": "a", "failures": []}, {"id": "b", "failures": ["x"]}, {"id": "c", "failures": []}]}
    other = {"questions": [{"id": "a", "failures": ["y"]}, {"id": "b", "failures": []}, {"id": "c", "failures": []}]}
    regressed, improved = changed_questions(base, other)
    assert [q["id"] for q in regressed] == ["a"] and improved == ["b"]


def test_gate(tmp_path: Path) -> None:
    summary = {"retrieval_doc": {"hit@5": 0.9}, "latency_s": {"total": {"p95": 2.0}}, "fact_recall": None}
    thresholds = {"min": {"retrieval_doc.hit@5": 0.85, "fact_recall": 0.5}, "max": {"latency_s.total.p95": 1.5}}
    checks = {c.metric: c for c in check_summary(summary, thresholds)}
    assert checks["retrieval_doc.hit@5"].ok
    assert not checks["fact_recall"].ok  # missing figure fails
    assert not checks["latency_s.total.p95"].ok
    assert Check("x", 0.85, 0.85, "min").ok and Check("x", 1.5, 1.5, "max").ok
    path = tmp_path / "t.toml"
    path.write_text('[min]\n"retrieval_doc.hit@5" = 0.8\n', encoding="utf-8")
    assert load_thresholds(path) == {"min": {"retrieval_doc.hit@5": 0.8}, "max": {}}
    path.write_text("[min]\n", encoding="utf-8")
    with pytest.raises(GateError):
        load_thresholds(path)
    with pytest.raises(GateError):
        gate_results({"configs": []}, thresholds)


def test_shipped_thresholds_are_readable() -> None:
    thresholds = load_thresholds()
    assert thresholds["min"], "the gate must check quality figures"


# --------------------------------------------------------------------------- end to end (fake embedder)

TINY_SET = [
    {"id": "t1", "type": "factual", "question": "Combien de catalyseurs territoriaux compte le réseau des pionniers ?",
     "expected_docs": ["guide-alliances"], "expected_pages": [{"doc": "guide-alliances", "page": 1}],
     "facts": ["350 catalyseurs"]},
    {"id": "t2", "type": "acronym", "question": "l'ODD 17 porte sur quoi ?",
     "expected_docs": ["guide-alliances"], "expected_pages": [{"doc": "guide-alliances", "page": 2}],
     "facts": ["partenariats"]},
    {"id": "t3", "type": "follow-up", "question": "Et combien de cibles ?",
     "history": [{"role": "user", "content": "Quand l'Agenda 2030 a-t-il été adopté ?"},
                 {"role": "assistant", "content": "En septembre 2015 par les 193 États membres de l'ONU."}],
     "expected_docs": ["guide-alliances"], "expected_pages": [{"doc": "guide-alliances", "page": 2}],
     "facts": ["169 cibles"]},
    {"id": "t4", "type": "out-of-corpus", "question": "Quel temps fera-t-il demain à Brest pour la marée ?"},
]


def test_run_end_to_end(settings: Settings, tmp_path: Path) -> None:
    set_path = tmp_path / "tiny.jsonl"
    set_path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in TINY_SET) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    options = RunOptions(sets=[str(set_path)], out=out, fresh=True, progress=False, compare=["search_mode=bm25"])
    results = run(options, settings, log=lambda _: None)

    assert [c["name"] for c in results["configs"]] == ["base", "search_mode=bm25"]
    base = results["configs"][0]
    assert base["index"]["fresh"] is True
    summary = base["summary"]
    assert summary["questions"] == 4 and summary["errors"] == 0
    assert 0.0 <= summary["retrieval_doc"]["mrr@10"] <= 1.0
    assert summary["retrieval_doc"]["hit@10"] == 1.0  # one PDF holds every answer
    assert summary["latency_s"]["total"]["p50"] is not None
    for record in base["questions"]:
        assert all(isinstance(c["valid"], bool) for c in record["citations"])
    # The extractive answer only quotes the corpus: every citation is verbatim in its page.
    assert summary["citation_validity"] in (None, 1.0)
    assert results["configs"][1]["settings"]["search_mode"] == "bm25"

    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved["meta"]["questions"] == 4
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Comparaison des configurations" in html and "data:image/png;base64," in html
    assert "## Résultats principaux" in (out / "report.md").read_text(encoding="utf-8")

    # The gate reads the same results; impossible thresholds make it fail with exit code 1.
    strict = tmp_path / "strict.toml"
    strict.write_text('[min]\n"retrieval_doc.hit@10" = 1.01\n', encoding="utf-8")
    loose = tmp_path / "loose.toml"
    loose.write_text('[min]\n"retrieval_doc.hit@10" = 0.5\n', encoding="utf-8")
    results_file = str(out / "results.json")
    assert cli.main(["gate", "--results", results_file, "--thresholds", str(strict)]) == 1
    assert cli.main(["gate", "--results", results_file, "--thresholds", str(loose)]) == 0
    assert cli.main(["gate", "--results", str(tmp_path / "absent.json")]) == 2


def test_piaf_is_skipped_with_a_reason_when_its_data_is_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evals import piaf
    from evals.report import render_markdown as md
    from evals.run import _run_piaf

    monkeypatch.setattr(piaf, "DEFAULT_DATA", tmp_path / "absent" / "piaf-v1.0.json")
    result = _run_piaf(Settings(data_dir=tmp_path), None, log=lambda _: None)
    assert "données absentes" in result["skipped"]
    report = md({"meta": {"created": "x", "sets": ["piaf"], "questions": 0}, "configs": [], "piaf": result})
    assert "## Benchmark PIAF" in report and "données absentes" in report
