"""The PIAF answer-sentence benchmark (evals/piaf_units.py) on a tiny hand-made SQuAD file."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from assistant.embeddings import NamedEmbeddings, build_embedder
from assistant.extractive import Unit, quotable_units
from assistant.schema import Passage
from evals import piaf_units as pu
from evals.piaf import load_piaf, split_by_article

# Three articles; every sentence has five words or more and ends with a full stop, so that
# each is one quotable unit, except « Fin du texte. » (a fragment, never quoted).
PARAGRAPHS = [
    [
        "Lyon est une grande ville du sud-est de la France. La ville compte 520 000 habitants en 2020. "
        "Le Rhône et la Saône se rejoignent au sud de la presqu'île. "
        "Les traboules sont des passages typiques du Vieux Lyon.",
        "La fête des Lumières a lieu chaque année en décembre. "
        "Des millions de visiteurs viennent admirer les illuminations.",
    ],
    [
        "Le vélo est un moyen de transport très répandu aux Pays-Bas. "
        "Amsterdam compte plus de 800 000 vélos pour ses habitants. "
        "Les pistes cyclables couvrent 35 000 kilomètres dans le pays.",
    ],
    ["Le Mont Blanc culmine à 4 806 mètres d'altitude. La première ascension date de 1786. Fin du texte."],
]
QUESTIONS = {
    (0, 0): [
        ("q1", "Combien d'habitants compte Lyon ?", "520 000"),
        ("q2", "Quelles rivières se rejoignent à Lyon ?", "Le Rhône et la Saône"),
        ("q3", "Que sont les traboules ?", "des passages typiques du Vieux Lyon"),
        ("q4", "Où est située Lyon ?", "France. La ville"),  # crosses a sentence boundary
    ],
    (0, 1): [("q5", "Quand a lieu la fête des Lumières ?", "en décembre")],
    (1, 0): [
        ("q6", "Combien de vélos à Amsterdam ?", "800 000"),
        ("q7", "Quelle longueur de pistes cyclables aux Pays-Bas ?", "35 000 kilomètres"),
    ],
    (2, 0): [
        ("q8", "Quelle est l'altitude du Mont Blanc ?", "4 806 mètres"),
        ("q9", "Quand a eu lieu la première ascension du Mont Blanc ?", "1786"),
        ("q10", "Comment finit le texte ?", "Fin du texte"),  # in a sentence that is never quoted
    ],
}
# Unit (sentence) of each paragraph holding each coverable answer, by position.
GOLD_UNIT_INDEX = {"q1": 1, "q2": 2, "q3": 3, "q5": 0, "q6": 1, "q7": 2, "q8": 0, "q9": 1}


def write_squad(path: Path, shift: dict[str, int] | None = None) -> Path:
    """The tiny file; ``shift`` moves the answer_start of some questions (a misaligned offset)."""
    shift = shift or {}
    data: dict[str, Any] = {"version": "test", "data": []}
    for a, paragraphs in enumerate(PARAGRAPHS):
        article: dict[str, Any] = {"title": f"Article {a}", "paragraphs": []}
        for p, context in enumerate(paragraphs):
            qas = [
                {
                    "id": qid,
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer) + shift.get(qid, 0)}],
                }
                for qid, question, answer in QUESTIONS.get((a, p), [])
            ]
            article["paragraphs"].append({"context": context, "qas": qas})
        data["data"].append(article)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def squad(tmp_path: Path) -> Path:
    return write_squad(tmp_path / "tiny.json")


@pytest.fixture
def items(squad: Path) -> list[pu.Item]:
    tune, heldout = pu.split_items(pu.load_items(squad))
    return sorted(tune + heldout, key=lambda i: i.row)


@pytest.fixture
def paragraphs(squad: Path) -> dict[str, Passage]:
    ids, texts, _ = load_piaf(squad)
    return {pid: pu.paragraph_passage(pid, text) for pid, text in zip(ids, texts, strict=True)}


@pytest.fixture
def embedder() -> NamedEmbeddings:
    return build_embedder("hash:64")


def by_id(items: Sequence[pu.Item]) -> dict[str, pu.Item]:
    return {i.id: i for i in items}


# --------------------------------------------------------------------------- gold units


def test_gold_unit_is_the_sentence_covering_the_answer(items: list[pu.Item], paragraphs: dict[str, Passage]) -> None:
    found = by_id(items)
    for qid, index in GOLD_UNIT_INDEX.items():
        item = found[qid]
        units = quotable_units([paragraphs[item.paragraph_id]])
        assert item.gold_spans == ((units[index].start, units[index].end),), qid
        assert item.uncoverable == ""
        assert paragraphs[item.paragraph_id].text[item.answer_start : item.answer_end] == item.answer


def test_span_across_a_sentence_boundary_is_flagged(items: list[pu.Item]) -> None:
    q4 = by_id(items)["q4"]
    assert q4.gold_spans == ()
    assert q4.uncoverable == "crosses"


def test_span_in_a_sentence_never_quoted_is_flagged_apart(items: list[pu.Item]) -> None:
    q10 = by_id(items)["q10"]
    assert q10.gold_spans == ()
    assert q10.uncoverable == "not_quotable"


def test_gold_spans_direct() -> None:
    text = "Le premier conseil a voté le budget. Le second conseil a voté la motion."
    second = text.index("Le second")
    assert pu.gold_spans(text, text.index("la motion"), text.index("la motion") + 9) == (((second, len(text)),), "")
    assert pu.gold_spans(text, text.index("budget"), second + 9) == ((), "crosses")


def test_misaligned_answer_start_is_repaired(tmp_path: Path) -> None:
    loaded = by_id(pu.load_items(write_squad(tmp_path / "shifted.json", shift={"q2": 1, "q6": -2})))
    assert loaded["q2"].realigned and loaded["q6"].realigned
    assert not loaded["q1"].realigned
    text = PARAGRAPHS[0][0]
    assert loaded["q2"].answer_start == text.index("Le Rhône et la Saône")
    assert loaded["q2"].gold_spans == by_id(pu.load_items(write_squad(tmp_path / "plain.json")))["q2"].gold_spans


# --------------------------------------------------------------------------- split


def test_split_by_article_is_disjoint_deterministic_and_that_of_piaf(squad: Path) -> None:
    loaded = pu.load_items(squad)
    tune, heldout = pu.split_items(loaded)
    assert tune and heldout
    assert len(tune) + len(heldout) == len(loaded) == 10
    assert not {i.article for i in tune} & {i.article for i in heldout}
    assert {i.half for i in tune} == {pu.TUNE} and {i.half for i in heldout} == {pu.HELDOUT}
    again = pu.split_items(loaded)
    assert ([i.id for i in again[0]], [i.id for i in again[1]]) == ([i.id for i in tune], [i.id for i in heldout])
    # The same halves as evals.piaf's tuning split.
    _, _, questions = load_piaf(squad)
    rows_tune, rows_heldout = split_by_article(questions)
    assert [i.id for i in tune] == [questions[r].id for r in rows_tune]
    assert [i.id for i in heldout] == [questions[r].id for r in rows_heldout]


def test_a_subset_splits_like_the_whole_file_when_given_its_articles(squad: Path) -> None:
    loaded = pu.load_items(squad)
    tune, _ = pu.split_items(loaded)
    subset = [i for i in loaded if i.article != "1"] + [i for i in loaded if i.article == "1"][:1]
    sub_tune, sub_heldout = pu.split_items(subset, articles={"0", "1", "2"})
    assert {i.article for i in sub_tune} <= {i.article for i in tune}
    assert not {i.article for i in sub_heldout} & {i.article for i in tune}


# --------------------------------------------------------------------------- matching


def test_contains_answer_normalises_and_needs_whole_words() -> None:
    assert pu.contains_answer("La ville compte 520\u202f000 habitants.", "520 000")
    assert pu.contains_answer("LE RHÔNE et la Saône", "le Rhone et la saone")
    assert not pu.contains_answer("Les Lyonnais aiment leur ville.", "Lyon")
    assert not pu.contains_answer("Tout texte.", "…")


def test_short_answer_correctness() -> None:
    assert pu.short_is_correct("520 000 habitants", "520 000")  # holds the answer
    assert pu.short_is_correct("passages typiques du Vieux Lyon", "des passages typiques du Vieux Lyon")
    assert pu.short_is_correct("décembre", "en décembre")  # 8 of 11 characters
    assert not pu.short_is_correct("la Saône", "Le Rhône et la Saône")  # 8 of 20 characters
    assert not pu.short_is_correct("35 000", "800 000")
    assert not pu.short_is_correct("", "800 000")


def test_gold_unit_is_positional(items: list[pu.Item], paragraphs: dict[str, Passage]) -> None:
    q1 = by_id(items)["q1"]
    gold, other = paragraphs["0-0"], paragraphs["1-0"]
    start, end = q1.gold_spans[0]
    unit = Unit(1, start, end, gold.text[start:end])
    assert pu.is_gold_unit(q1, [other, gold], unit)
    assert not pu.is_gold_unit(q1, [gold, other], unit)  # same span, other paragraph
    assert not pu.is_gold_unit(q1, [other, gold], replace(unit, end=q1.answer_end - 1))


# --------------------------------------------------------------------------- metrics on scripted rankers


@dataclass(frozen=True)
class Ranked:
    """A ranked unit as the rewritten ranker returns it (a unit and its score)."""

    unit: Unit
    score: float


def first_units(
    question: str, passages: Sequence[Passage], embedder: NamedEmbeddings, *, query_vector: Any = None
) -> list[Ranked]:
    """Reading order: the first unit of the first passage first."""
    return [Ranked(u, 0.5) for u in quotable_units(passages)]


def gold_ranker(items: Sequence[pu.Item]) -> pu.Ranker:
    found = {i.question: i for i in items}

    def rank(
        question: str, passages: Sequence[Passage], embedder: NamedEmbeddings, *, query_vector: Any = None
    ) -> list[Unit]:
        item = found[question]
        where = [k for k, p in enumerate(passages) if p.id == item.paragraph_id]
        if not where or not item.gold_spans:
            return []
        start, end = item.gold_spans[0]
        return [Unit(where[0], start, end, passages[where[0]].text[start:end])]

    return rank


def test_a_ranker_returning_the_gold_unit_scores_one(
    items: list[pu.Item], paragraphs: dict[str, Passage], embedder: NamedEmbeddings
) -> None:
    outcomes = pu.evaluate(
        gold_ranker(items), items, lambda i: [paragraphs[i.paragraph_id]], embedder, setting=pu.GOLD
    )
    coverable = pu.summarise([o for o in outcomes if not o.uncoverable])
    assert coverable["items"] == 8
    for key in ("top1_contains_answer", "top3_contains_answer", "top1_gold_unit", "top3_gold_unit"):
        assert coverable[key] == 1.0, key
    every = pu.summarise(outcomes)
    assert every["items"] == 10
    assert every["top1_gold_unit"] == pytest.approx(0.8)
    assert every["coverable_top1_gold_unit"] == 1.0
    assert (every["uncoverable"], every["uncoverable_crosses"], every["uncoverable_not_quotable"]) == (2, 1, 1)
    assert every["short_precision"] is None and every["short_coverage"] is None  # no short answerer


def test_a_ranker_in_reading_order_scores_what_is_computed_by_hand(
    items: list[pu.Item], paragraphs: dict[str, Passage], embedder: NamedEmbeddings
) -> None:
    outcomes = pu.evaluate(first_units, items, lambda i: [paragraphs[i.paragraph_id]], embedder)
    m = pu.summarise(outcomes)
    # First unit holds the answer for q5 and q8 only; the first three for all but q3 (4th), q4, q10.
    assert m["top1_contains_answer"] == pytest.approx(2 / 10)
    assert m["top1_gold_unit"] == pytest.approx(2 / 10)
    assert m["top3_contains_answer"] == pytest.approx(7 / 10)
    assert m["top3_gold_unit"] == pytest.approx(7 / 10)
    assert m["gold_passage_share"] == 1.0
    outcome = {o.item_id: o for o in outcomes}
    assert outcome["q5"].top1_gold and not outcome["q1"].top1_gold
    assert outcome["q1"].units == 4 and outcome["q1"].ranked == 4


def test_retrieved_setting_counts_a_missing_gold_paragraph_as_a_miss(
    items: list[pu.Item], paragraphs: dict[str, Passage], embedder: NamedEmbeddings
) -> None:
    q8 = [by_id(items)["q8"]]
    # The gold paragraph second: reading order puts the other paragraph's units first.
    second = pu.evaluate(first_units, q8, lambda i: [paragraphs["0-1"], paragraphs["2-0"]], embedder)
    assert second[0].gold_passage and not second[0].top1_gold and second[0].top3_gold
    absent = pu.evaluate(gold_ranker(q8), q8, lambda i: [paragraphs["0-1"], paragraphs["1-0"]], embedder)
    assert not absent[0].gold_passage and not absent[0].top1_contains and not absent[0].top3_contains
    assert pu.summarise(absent)["gold_passage_share"] == 0.0


# --------------------------------------------------------------------------- short answers


@dataclass(frozen=True)
class Short:
    text: str
    confidence: float


SCRIPTED_SHORT = {
    "q1": Short("520 000 habitants", 0.9),  # right
    "q2": Short("la Saône", 0.8),  # too little of the answer
    "q3": Short("passages typiques du Vieux Lyon", 0.7),  # right
    "q5": Short("décembre", 0.2),  # right
    "q6": Short("35 000", 0.6),  # wrong
}


def scripted_short(items: Sequence[pu.Item]) -> pu.ShortAnswerer:
    ids = {i.question: i.id for i in items}

    def short(question: str, ranked: Sequence[Any]) -> Short | None:
        assert all(isinstance(r, Ranked) for r in ranked)  # receives what the ranker returned
        return SCRIPTED_SHORT.get(ids[question])

    return short


def test_short_answer_precision_and_coverage(
    items: list[pu.Item], paragraphs: dict[str, Passage], embedder: NamedEmbeddings
) -> None:
    outcomes = pu.evaluate(
        first_units, items, lambda i: [paragraphs[i.paragraph_id]], embedder, short=scripted_short(items)
    )
    every = pu.summarise(outcomes)
    assert (every["short_shown"], every["short_precision"], every["short_coverage"]) == (5, pytest.approx(3 / 5), 0.5)
    at_half = pu.summarise(outcomes, threshold=0.5)  # q1, q2, q3, q6
    assert (at_half["short_shown"], at_half["short_precision"], at_half["short_coverage"]) == (
        4, pytest.approx(0.5), pytest.approx(0.4),
    )
    rows = pu.sweep(outcomes, [0.5, 0.75, 0.85])
    assert [r["short_precision"] for r in rows] == [pytest.approx(0.5), pytest.approx(0.5), 1.0]
    assert [r["short_coverage"] for r in rows] == [pytest.approx(0.4), pytest.approx(0.2), pytest.approx(0.1)]
    assert pu.choose_threshold(rows, 0.8) == 0.85
    assert pu.choose_threshold(rows, 0.5) == 0.5
    nothing = pu.summarise(outcomes, threshold=0.95)
    assert nothing["short_shown"] == 0 and nothing["short_precision"] is None and nothing["short_coverage"] == 0.0


def test_default_thresholds_are_increasing_deciles(
    items: list[pu.Item], paragraphs: dict[str, Passage], embedder: NamedEmbeddings
) -> None:
    outcomes = pu.evaluate(
        first_units, items, lambda i: [paragraphs[i.paragraph_id]], embedder, short=scripted_short(items)
    )
    grid = pu.default_thresholds(outcomes)
    assert grid == sorted(set(grid))
    assert grid[0] == pytest.approx(0.2)
    assert all(0.2 <= t <= 0.9 for t in grid)


# --------------------------------------------------------------------------- dump and command line


def test_dump_has_one_line_per_candidate_unit(
    items: list[pu.Item], paragraphs: dict[str, Passage], embedder: NamedEmbeddings
) -> None:
    out = io.StringIO()
    vectors = {i.id: embedder.embed_queries([i.question])[0] for i in items}
    pu.evaluate(
        first_units, items, lambda i: [paragraphs[i.paragraph_id]], embedder,
        setting=pu.GOLD, query_vectors=vectors, dump=out,
    )
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 4 * 4 + 2 + 3 * 2 + 2 * 3  # units of each question's paragraph
    assert sum(r["gold_unit"] for r in rows) == 8
    assert {r["item_id"] for r in rows if r["gold_unit"]} == set(GOLD_UNIT_INDEX)
    q1 = [r for r in rows if r["item_id"] == "q1"]
    assert [r["contains_answer"] for r in q1] == [False, True, False, False]
    assert [r["selector_rank"] for r in q1] == [1, 2, 3, 4]
    assert {r["setting"] for r in rows} == {pu.GOLD}
    assert {r["half"] for r in rows} == {pu.TUNE, pu.HELDOUT}
    assert all(isinstance(r["cosine"], float) for r in rows)
    assert q1[0]["text"] == paragraphs["0-0"].text[q1[0]["start"] : q1[0]["end"]]


def test_command_line_end_to_end(squad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, dump = tmp_path / "report.json", tmp_path / "units.jsonl"
    code = pu.main([
        "--data", str(squad), "--cache-dir", str(tmp_path / "cache"), "--embedder", "hash:64",
        "--json", str(out), "--dump", str(dump),
    ])
    assert code == 0
    assert "Réglage « gold »" in capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["questions"] == 10
    assert report["uncoverable"] == {"crosses": 1, "not_quotable": 1}
    for setting in (pu.GOLD, pu.RETRIEVED):
        halves = report["settings"][setting]["halves"]
        assert sum(h["items"] for h in halves.values()) == 10
    assert report["settings"][pu.GOLD]["halves"][pu.TUNE]["gold_passage_share"] == 1.0
    rows = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert sum(r["setting"] == pu.GOLD for r in rows) == 30
    retrieved = [r for r in rows if r["setting"] == pu.RETRIEVED]
    assert retrieved and max(r["passage_rank"] for r in retrieved) <= pu.RETRIEVED_K
    # Every question asked of the 4 paragraphs sees at most 4 of them, in hybrid order.
    assert all(r["passage_score"] > 0 for r in retrieved)


def test_command_line_sample_and_half(squad: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code = pu.main([
        "--data", str(squad), "--cache-dir", str(tmp_path / "cache"), "--embedder", "hash:64",
        "--sample", "2", "--half", "heldout", "--setting", "gold", "--json", str(out),
    ])
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    _, heldout = pu.split_items(pu.load_items(squad))
    assert report["questions"] == 2
    assert list(report["settings"]) == [pu.GOLD]
    assert list(report["settings"][pu.GOLD]["halves"]) == [pu.HELDOUT]
    assert report["settings"][pu.GOLD]["halves"][pu.HELDOUT]["items"] == 2
    bench = pu.load_bench(
        squad, sample=2, halves=[pu.HELDOUT], retrieved=False, embedder=build_embedder("hash:64"),
        cache_dir=tmp_path / "cache", log=lambda _: None,
    )
    assert [i.id for i in bench.items] == [i.id for i in heldout[:2]]
    assert set(bench.query_vectors) == {i.id for i in heldout[:2]}


def test_missing_data_file_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pu.main(["--data", str(tmp_path / "absent.json")]) == 0
    assert "introuvable" in capsys.readouterr().out


def test_write_stores_the_bar_chosen_on_the_tuning_half_with_retrieved_passages(tmp_path: Path) -> None:
    import shutil

    from assistant.calibration import PROFILES_DIR, load_calibration

    shutil.copy(PROFILES_DIR / "uncalibrated.json", tmp_path / "uncalibrated.json")
    tune = {"items": 100, "short_precision": 0.92, "short_coverage": 0.04}
    report = {
        "embedder": "fake:model",
        "settings": {
            pu.GOLD: {"short_threshold": 0.9, "halves": {pu.TUNE: tune}},
            pu.RETRIEVED: {"short_threshold": 0.37, "halves": {pu.TUNE: tune, pu.HELDOUT: tune | {"items": 7}}},
        },
    }
    assert pu.write_short_answer_floor(report, 0.9, tmp_path) == 0
    cal = load_calibration("fake:model", tmp_path)
    assert cal.embedder == "fake:model" and cal.short_answer_floor == 0.37
    assert "100 questions" in cal.fitted_on["short_answer"] and "0.92" in cal.fitted_on["short_answer"]
    # Without the retrieved setting there is no bar to write, and nothing is written.
    assert pu.write_short_answer_floor({"embedder": "other:model", "settings": {}}, 0.9, tmp_path) == 2
    assert not (tmp_path / "other_model.json").exists()
