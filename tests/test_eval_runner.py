"""The evaluation runner, report and gate: hand-made answers, then a real end-to-end run on the tiny corpus."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.schema import Answer, Citation, Passage
from assistant.settings import Settings
from evals import cli
from evals.report import changed_questions, render_html, render_markdown
from evals.run import (
    Config,
    EvalError,
    RunOptions,
    expand_set_names,
    parse_config,
    run,
    score_answer,
    summarise,
    summarise_by_category,
    summarise_by_type,
    summarise_set,
)
from evals.sets import EvalQuestion, realdocs
from tests.builders import make_pdf

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
    ans = _answer(f"D'après Le-Rameau :\n\n- « {quote} » [1]", [Citation(n=1, passage=RAMEAU, quote=quote)],
                  [MOOC, RAMEAU])
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
        [Citation(n=1, passage=RAMEAU, quote="créé en 2007"), Citation(n=2, passage=MOOC, quote="Le MOOC est gratuit")],
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
    answered_ooc = score_answer(
        OUT, _answer("Le MOOC [1]", [Citation(n=1, passage=MOOC, quote="Le MOOC est gratuit")], [MOOC]), None, 0.1)
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
    fallback = _answer(f"- « {quote} » [1]", [Citation(n=1, passage=RAMEAU, quote=quote)], [RAMEAU])
    fallback.mode, fallback.notice = "llm", "Aucune phrase de la réponse générée n'a pu être vérifiée…"
    generated = _answer("Le RAMEAU date de 2006 [1].", [Citation(n=1, passage=RAMEAU, quote="créé en 2006")], [RAMEAU])
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


def _results(records: list[dict], skipped: dict[str, str] | None = None) -> dict:
    """A run as results.json holds it, one view per set of the records."""
    names = list(dict.fromkeys(r["set"] for r in records))
    views = {
        name: {"questions": len(chosen), "index": {}, "assistant_load_s": 0.1, "summary": summarise_set(chosen),
               "by_type": summarise_by_type(chosen), "by_category": summarise_by_category(chosen)}
        for name in names
        if (chosen := [r for r in records if r["set"] == name])
    }
    return {
        "meta": {"created": "2026-01-01T00:00:00+00:00", "git_commit": "abc", "sets": names + list(skipped or {}),
                 "questions": len(records), "fresh": True, "duration_s": 1.0},
        "sets": {name: {"questions": v["questions"]} for name, v in views.items()}
        | {name: {"skipped": reason} for name, reason in (skipped or {}).items()},
        "configs": [{"name": "base", "overrides": {}, "settings": Settings().public_dict(), "index": {},
                     "assistant_load_s": 0.1, "summary": summarise_set(records), "by_type": summarise_by_type(records),
                     "sets": views, "questions": records}],
    }


def test_report_escapes_every_text() -> None:
    nasty = EvalQuestion(id="q<1>", type="out-of-corpus", question="<script>alert('x')</script> | pipe")
    record = score_answer(nasty, _answer("<img src=x onerror=alert(1)> [1]",
                                         [Citation(n=1, passage=MOOC, quote="<b>gras</b>")], [MOOC]), None, 0.2)
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
    # Two sets may share an id: questions are matched on (set, id).
    base = {"questions": [{"set": "golden", "id": "a", "failures": []}, {"set": "real-docs", "id": "a",
                                                                          "failures": ["x"]}]}
    other = {"questions": [{"set": "golden", "id": "a", "failures": []}, {"set": "real-docs", "id": "a",
                                                                           "failures": ["x"]}]}
    assert changed_questions(base, other) == ([], [])


def test_report_shows_each_set_its_halves_its_hard_layout_and_skipped_sets() -> None:
    records = [dict(r, set="real-docs") for r in _split_records()]
    results = _results(records, skipped={"autre": "Jeu « autre » ignoré : données absentes (/nulle/part)."})
    md = render_markdown(results)
    for heading in ("Jeu « real-docs »", "Ensemble (n = 5)", "Réglage (tune) (n = 3)", "Contrôle (heldout) (n = 2)",
                    "Mise en page difficile (n = 2)", "Par type de question", "Par catégorie du jeu",
                    "Fait cité depuis une page attendue", "données absentes (/nulle/part)"):
        assert heading in md, heading
    assert "| Hors corpus refusées | 1 sur 1 (1) | 1 sur 1 (1) | — | — |" in md
    assert "| Refus à tort (questions du corpus) | 1 sur 4 (0.25) | 0 sur 2 (0) | 1 sur 2 (0.5) | 0 sur 2 (0) |" in md
    html = render_html(results)
    assert "Contrôle (heldout) (n = 2)" in html and "Mise en page difficile (n = 2)" in html
    assert "données absentes (/nulle/part)" in html and "chiffre" in html
    # A set without hard-layout questions has no such column.
    golden = render_markdown(_results([dict(r, set="golden", hard_layout=False) for r in _split_records()]))
    assert "Mise en page difficile (n" not in golden and "Réglage (tune) (n = 3)" in golden


# --------------------------------------------------------------------------- facts quoted from expected pages, halves

GUIDE_P16 = _passage("guide", 16, "Le raccordement coûte en moyenne 1 525 € par logement.")
GUIDE_P3 = _passage("guide", 3, "Le raccordement coûte en moyenne 1 525 € par logement, selon une autre étude.")
COST = EvalQuestion(
    id="r1", type="factual", question="Combien coûte le raccordement ?", expected_docs=("guide",),
    expected_pages=(("guide", 16),), facts=("1525",), set_name="real-docs", split="tune", category="chiffre",
)


def test_score_answer_fact_on_expected_page() -> None:
    quote = "Le raccordement coûte en moyenne 1 525 € par logement."
    on_page = score_answer(
        COST, _answer(f"« {quote} » [1]", [Citation(n=1, passage=GUIDE_P16, quote=quote)], [GUIDE_P16]), None, 0.1)
    assert on_page["fact_on_expected_page"] is True
    other = "Le raccordement coûte en moyenne 1 525 € par logement, selon une autre étude."
    elsewhere = score_answer(
        COST, _answer(f"« {other} » [1]", [Citation(n=1, passage=GUIDE_P3, quote=other)], [GUIDE_P3]), None, 0.1)
    assert elsewhere["fact_recall"] == 1.0 and elsewhere["fact_on_expected_page"] is False
    no_fact = score_answer(COST, _answer("Rien de chiffré [1]",
                                         [Citation(n=1, passage=GUIDE_P16, quote="Le raccordement")], [GUIDE_P16]),
                           None, 0.1)
    assert no_fact["fact_on_expected_page"] is None
    refused = score_answer(COST, _answer("Je n'ai pas trouvé… 1 525", [], [GUIDE_P16], abstained=True), None, 0.1)
    assert refused["fact_on_expected_page"] is None
    assert on_page["category"] == "chiffre" and on_page["split"] == "tune" and on_page["hard_layout"] is False


def _split_records() -> list[dict]:
    """Five scored questions: tune = 2 right answers + 1 refused out-of-corpus; heldout = 1 false refusal + 1
    answer whose fact is quoted from another page. Two of them have a hard layout."""
    quote = "Le raccordement coûte en moyenne 1 525 € par logement."
    other = "Le raccordement coûte en moyenne 1 525 € par logement, selon une autre étude."
    good = _answer(f"« {quote} » [1]", [Citation(n=1, passage=GUIDE_P16, quote=quote)], [GUIDE_P16])
    astray = _answer(f"« {other} » [1]", [Citation(n=1, passage=GUIDE_P3, quote=other)], [GUIDE_P3])
    refusal = _answer("Je n'ai pas trouvé…", [], [GUIDE_P3], abstained=True)
    ooc = EvalQuestion(id="r9", type="out-of-corpus", question="La cantine ?", split="tune", category="hors-corpus")
    return [
        score_answer(COST, good, None, 0.1),
        score_answer(replace(COST, id="r2", hard_layout=True), good, None, 0.1),
        score_answer(ooc, refusal, None, 0.1),
        score_answer(replace(COST, id="r3", split="heldout"), refusal, None, 0.1),
        score_answer(replace(COST, id="r4", split="heldout", hard_layout=True, category="multi",
                             type="multi-document"), astray, None, 0.1),
    ]


def test_summaries_per_half_and_for_hard_layout() -> None:
    summary = summarise_set(_split_records())
    assert summary["questions"] == 5 and summary["fact_recall"] == 0.75
    assert summary["fact_on_expected_page"] == 0.6667 and summary["answers_with_fact"] == 3
    # Pooled citations, and the questions they come from (the refusals cite nothing).
    assert (summary["citations"], summary["citations_checked"]) == (3, 3)
    assert (summary["answers_with_citations"], summary["answers_with_checked_citations"]) == (3, 3)
    assert summary["refusals"] == {"out_of_corpus": 1, "out_of_corpus_refused": 1, "answerable": 4,
                                   "answerable_refused": 1, "total": 2}
    tune, heldout = summary["splits"]["tune"], summary["splits"]["heldout"]
    assert (tune["questions"], heldout["questions"]) == (3, 2)
    assert tune["fact_recall"] == 1.0 and tune["fact_on_expected_page"] == 1.0 and tune["false_refusal_rate"] == 0.0
    assert tune["abstention"]["recall"] == 1.0 and heldout["abstention"]["recall"] is None
    assert heldout["fact_recall"] == 0.5 and heldout["fact_on_expected_page"] == 0.0
    assert heldout["false_refusal_rate"] == 0.5 and heldout["refusals"]["answerable_refused"] == 1
    hard = summary["hard_layout"]
    assert hard["questions"] == 2 and hard["fact_on_expected_page"] == 0.5
    # Without halves or hard layouts, the parts are simply absent.
    plain = summarise_set([dict(r, split="", hard_layout=False) for r in _split_records()])
    assert plain["splits"] == {} and "hard_layout" not in plain
    by_category = summarise_by_category(_split_records())
    assert list(by_category) == ["chiffre", "multi", "hors-corpus"]
    assert by_category["chiffre"]["questions"] == 3 and by_category["hors-corpus"]["doc_hit@5"] is None
    assert summarise_by_category([dict(r, category="") for r in _split_records()]) == {}


def test_expand_set_names() -> None:
    assert expand_set_names(["golden,real-docs", "piaf", "golden"]) == ["golden", "real-docs", "piaf"]
    assert expand_set_names([" golden , ", ""]) == ["golden"]


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
    strict.write_text('[tiny.all]\n"retrieval_doc.hit@10" = { min = 1.01 }\n', encoding="utf-8")
    loose = tmp_path / "loose.toml"
    loose.write_text('[tiny.all]\n"retrieval_doc.hit@10" = { min = 0.5, measured = 1.0 }\n', encoding="utf-8")
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


# --------------------------------------------------------------------------- real-docs: the corpus plus its PDFs

HEAT_PAGES = [
    "Le réseau de chaleur de Bourg-sur-Lac alimente 1 200 logements grâce à une chaufferie au bois.",
    "La TVA réduite à 5,5 % s'applique à l'abonnement quand le réseau utilise plus de la moitié d'énergies "
    "renouvelables et de récupération.",
]
HEAT_ROWS = [
    {"id": "R1", "question": "Combien de logements le réseau de chaleur de Bourg-sur-Lac alimente-t-il ?",
     "doc": "Reseau_Chaleur.pdf", "page": 1, "facts_any": ["1 200 logements"], "type": "chiffre",
     "hard_layout": False},
    {"id": "R2", "question": "Quel taux de TVA pour l'abonnement au réseau de chaleur renouvelable ?",
     "doc": "Reseau_Chaleur.pdf", "page": 2, "facts_any": ["5,5 %"], "type": "chiffre", "hard_layout": True},
    {"id": "R3", "question": "Qui alimente les logements en chaleur avec une chaufferie au bois ?",
     "doc": "Reseau_Chaleur.pdf", "page": 1, "facts_any": ["chaufferie au bois"], "type": "qui",
     "hard_layout": False},
    {"id": "R4", "question": "Quel temps fera-t-il demain à Brest pour la marée ?", "abstain": True,
     "type": "hors-corpus"},
]


def _real_docs_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    make_pdf(root / "Reseau_Chaleur.pdf", HEAT_PAGES, title="Réseau de chaleur")
    (root / "questions.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in HEAT_ROWS) + "\n", encoding="utf-8"
    )
    return root


def test_real_docs_are_asked_against_the_corpus_plus_their_pdfs(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realdocs, "DEFAULT_DIR", _real_docs_folder(tmp_path / "real-docs"))
    set_path = tmp_path / "tiny.jsonl"
    set_path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in TINY_SET) + "\n", encoding="utf-8")
    shipped = sorted(p.name for p in settings.corpus_dir.iterdir())
    out = tmp_path / "out"
    results = run(RunOptions(sets=[f"{set_path},real-docs"], out=out, fresh=True, progress=False), settings,
                  log=lambda _: None)

    base = results["configs"][0]
    assert list(base["sets"]) == ["tiny", "real-docs"]
    assert results["sets"]["real-docs"]["questions"] == 4 and results["meta"]["questions"] == 8
    real, tiny = base["sets"]["real-docs"], base["sets"]["tiny"]
    # Each set has its own fresh index: the PDF is in real-docs' index only, next to the shipped corpus.
    assert real["index"]["fresh"] and tiny["index"]["fresh"]
    real_docs_seen = {p["doc_id"] for q in base["questions"] if q["set"] == "real-docs" for p in q["passages"]}
    tiny_docs_seen = {p["doc_id"] for q in base["questions"] if q["set"] == "tiny" for p in q["passages"]}
    assert "reseau-chaleur" in real_docs_seen and "reseau-chaleur" not in tiny_docs_seen
    assert real_docs_seen & {"guide-alliances", "mooc", "observatoire", "lettre", "notes-latin1"}
    assert real["index"]["ingest_report"]["indexed"] and "Reseau_Chaleur.pdf" in real["index"]["ingest_report"][
        "indexed"]
    # The PDFs were never copied into the corpus folder itself.
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == shipped
    # The embedding cache came back to the shared data folder, for the next run.
    assert (settings.data_dir / "cache" / "embeddings.sqlite").is_file()
    # Quotes of the PDF are checked against its pages (read back from the temporary copy).
    assert all(c["valid"] for q in base["questions"] for c in q["citations"])
    summary = real["summary"]
    assert summary["questions"] == 4 and set(summary["splits"]) == {"tune", "heldout"}
    assert summary["splits"]["tune"]["questions"] == 3  # chiffre R1, qui R3, hors-corpus R4
    assert summary["hard_layout"]["questions"] == 1
    assert summary["refusals"]["out_of_corpus"] == 1
    assert list(real["by_category"]) == ["chiffre", "qui", "hors-corpus"]
    assert real["by_type"]["factual"]["questions"] == 3
    record = next(q for q in base["questions"] if q["id"] == "R1")
    assert record["expected_pages"] == [{"doc": "reseau-chaleur", "page": 1}] and record["category"] == "chiffre"
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Jeu « real-docs »" in md and "Jeu « tiny »" in md and "Contrôle (heldout)" in md


def test_real_docs_absent_is_skipped_with_its_reason(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(realdocs, "DEFAULT_DIR", tmp_path / "absent")
    out = tmp_path / "out"
    results = run(RunOptions(sets=["real-docs"], out=out, progress=False), settings, log=lambda _: None)
    assert results["configs"] == [] and "absent" in results["sets"]["real-docs"]["skipped"]
    assert "ignoré" in (out / "report.md").read_text(encoding="utf-8")
    # The command says why and does not fail.
    code = cli.main(["run", "--sets", "real-docs", "--out", str(out), "--no-progress", "--db", str(settings.data_dir),
                     "--corpus", str(settings.corpus_dir)])
    assert code == 0 and "ignoré" in capsys.readouterr().out
