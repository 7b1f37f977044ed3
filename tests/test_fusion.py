"""Rank fusion and near-duplicate removal."""

from __future__ import annotations

import pytest

from assistant.fusion import dedupe, rrf, score_fusion

# --- rrf ---------------------------------------------------------------------


def test_rrf_scores_and_order() -> None:
    fused = rrf({"dense": ["a", "b", "c"], "bm25": ["b", "d"]}, k=10)
    scores = dict(fused)
    assert [i for i, _ in fused] == ["b", "a", "d", "c"]
    assert scores["b"] == pytest.approx(1 / 12 + 1 / 11)
    assert scores["a"] == pytest.approx(1 / 11)
    assert scores["d"] == pytest.approx(1 / 12)
    assert scores["c"] == pytest.approx(1 / 13)


def test_rrf_weights_change_the_winner() -> None:
    rankings = {"dense": ["a", "b"], "bm25": ["b", "a"]}
    assert rrf(rankings, k=1, weights={"dense": 2.0, "bm25": 1.0})[0][0] == "a"
    assert rrf(rankings, k=1, weights={"dense": 1.0, "bm25": 2.0})[0][0] == "b"
    # A zero weight silences a retriever; a missing weight counts as 1.
    assert [i for i, _ in rrf(rankings, k=1, weights={"bm25": 0.0})] == ["a", "b"]


def test_rrf_ties_are_deterministic() -> None:
    # a and b tie (rank 1 in one list, rank 2 in the other): best rank equal too, so by id.
    one = rrf({"x": ["b", "a"], "y": ["a", "b"]}, k=5)
    two = rrf({"y": ["a", "b"], "x": ["b", "a"]}, k=5)
    assert one == two
    assert [i for i, _ in one] == ["a", "b"]
    # Same score, different best rank: the one that was first somewhere wins.
    tied = rrf({"x": ["z", "m", "n"], "y": ["n", "m", "z"]}, k=0, weights={"x": 1.0, "y": 1.0})
    assert dict(tied)["m"] == pytest.approx(1.0)
    assert dict(tied)["z"] == pytest.approx(dict(tied)["n"])
    assert [i for i, _ in tied] == ["n", "z", "m"]


def test_rrf_repeated_id_counts_once_at_best_rank() -> None:
    fused = dict(rrf({"dense": ["a", "a", "b"]}, k=0))
    assert fused["a"] == pytest.approx(1.0)
    assert fused["b"] == pytest.approx(1 / 3)


def test_rrf_empty() -> None:
    assert rrf({}, k=60) == []
    assert rrf({"dense": [], "bm25": []}, k=60) == []
    with pytest.raises(ValueError):
        rrf({"dense": ["a"]}, k=-1)


# --- score fusion ----------------------------------------------------------------


def test_score_fusion_divides_each_list_by_its_best_score() -> None:
    fused = score_fusion(
        {"dense": [("a", 0.9), ("b", 0.81), ("c", 0.72)], "bm25": [("c", 30.0), ("b", 15.0)]},
        weights={"dense": 1.0, "bm25": 0.1},
        absent={"bm25": 0.0},
    )
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1.0 + 0.0)
    assert scores["b"] == pytest.approx(0.9 + 0.1 * 0.5)
    assert scores["c"] == pytest.approx(0.8 + 0.1 * 1.0)
    assert [i for i, _ in fused] == ["a", "b", "c"]


def test_score_fusion_absent_ids_get_the_list_floor_by_default() -> None:
    # d was not returned by dense: it gets dense's lowest normalised score (0.5), not 0.
    fused = dict(score_fusion({"dense": [("a", 1.0), ("b", 0.5)], "bm25": [("d", 2.0), ("a", 1.0)]}))
    assert fused["d"] == pytest.approx(0.5 + 1.0)
    assert fused["b"] == pytest.approx(0.5 + 0.5)  # bm25 floor: its lowest, 1.0 / 2.0
    assert fused["a"] == pytest.approx(1.0 + 0.5)
    explicit = dict(score_fusion({"dense": [("a", 1.0), ("b", 0.5)], "bm25": [("d", 2.0)]}, absent={"bm25": 0.0}))
    assert explicit["b"] == pytest.approx(0.5)


def test_score_fusion_weights_ties_and_empty_lists() -> None:
    fused = score_fusion({"dense": [("b", 0.8), ("a", 0.8)], "bm25": []}, weights={"dense": 2.0})
    assert fused == [("a", pytest.approx(2.0)), ("b", pytest.approx(2.0))]  # tie: by id
    assert score_fusion({}) == []
    assert score_fusion({"bm25": [("a", 0.0)]}) == []  # nothing scored: nothing to rank


# --- dedupe ------------------------------------------------------------------------

PAGE = (
    "Le Réseau des pionniers des alliances en territoire réunit des catalyseurs territoriaux qui aident les élus "
    "à faire travailler ensemble les collectivités, les entreprises et les associations de leur territoire, "
    "en organisant des rencontres régulières et en partageant les méthodes qui ont fait leurs preuves."
)


def _words(text: str, start: int, stop: int) -> str:
    return " ".join(text.split()[start:stop])


def test_dedupe_same_text_in_two_documents_keeps_the_first() -> None:
    items = [
        {"id": "guide-a#3", "text": PAGE},
        {"id": "guide-b#7", "text": PAGE.upper().replace(",", "")},  # same words, other case and punctuation
        {"id": "autre#1", "text": "Les objectifs de développement durable fixent un cap commun pour 2030."},
    ]
    kept = dedupe(items, lambda it: it["text"])
    assert [it["id"] for it in kept] == ["guide-a#3", "autre#1"]


def test_dedupe_overlapping_chunks_of_one_page() -> None:
    window = _words(PAGE, 5, 40)  # a window lying inside the chunk
    shifted = _words(PAGE, 3, 45) + " et la suite du texte"  # mostly the same words
    kept = dedupe(["chunk:" + PAGE, window, shifted], lambda t: t)
    assert kept == ["chunk:" + PAGE]


def test_dedupe_keeps_distinct_and_slightly_overlapping_passages() -> None:
    first_half = _words(PAGE, 0, 25)
    second_half = _words(PAGE, 20, 48)  # five words shared: a normal chunk overlap
    other = "La plateforme recense plus de deux cents études de cas de partenariats innovants."
    items = [first_half, second_half, other, ""]
    assert dedupe(items, lambda t: t) == items


def test_dedupe_threshold() -> None:
    a = _words(PAGE, 0, 30)
    b = _words(PAGE, 0, 20) + " " + " ".join(f"mot{i}" for i in range(10))
    assert dedupe([a, b], lambda t: t, threshold=0.5) == [a]
    assert dedupe([a, b], lambda t: t, threshold=0.9) == [a, b]


def test_dedupe_of_fifty_long_candidates() -> None:
    # The candidate set of a real query (its timing: `python -m evals.bench dedupe`, never a test).
    words = PAGE.split()
    texts = [" ".join(words[i % 7 :] + [f"variante{i}"] * 3 + words[: i % 5]) for i in range(50)]
    texts = [f"{t} passage {i} " + " ".join(f"x{i}y{j}" for j in range(150)) for i, t in enumerate(texts)]
    assert dedupe(texts, lambda t: t) == texts  # each has 150 words of its own: all distinct
    repeated = [*texts, texts[0] + " fin", texts[10]]
    assert dedupe(repeated, lambda t: t) == texts
