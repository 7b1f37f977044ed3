"""Hand-made cases for every evaluation metric (evals/metrics.py)."""

from __future__ import annotations

import math

import pytest

from evals.metrics import (
    CitationCheck,
    abstention_scores,
    ceil_to,
    citation_precision,
    citation_supports,
    citation_validity,
    claims_by_marker,
    contains_fact,
    fact_on_expected_page,
    fact_recall,
    floor_to,
    found_facts,
    hit_at_k,
    margin_in_items,
    mean,
    mrr_at_k,
    ndcg_at_k,
    normalise,
    percentile,
    quote_is_verbatim,
    rate_bound,
    refusal_counts,
    retrieval_scores,
)

# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Élus LOCAUX", "elus locaux"),
        ("Agenda 2030 : « ODD »", "agenda 2030 odd"),
        ("1 000", "1000"),  # plain space
        ("1\u00a0000", "1000"),  # no-break space
        ("1\u202f000", "1000"),  # narrow no-break space
        ("12 500 000 euros", "12500000 euros"),
        ("81 %", "81 %"),
        ("81%", "81 %"),
        ("81\u202f%", "81 %"),
        ("81 pour cent", "81 %"),
        ("81 pourcent", "81 %"),
        ("4,5 partenariats", "4.5 partenariats"),
        ("1,2 million", "1200000"),
        ("1,2 millions de partenariats", "1200000 de partenariats"),
        ("3 milliards", "3000000000"),
        ("l’ODD 17", "l odd 17"),
        ("l'ODD 17", "l odd 17"),
        ("cœur de l’Œuvre", "coeur de l oeuvre"),
        ("  plusieurs\n\tespaces  ", "plusieurs espaces"),
        ("24 décembre 2018.", "24 decembre 2018"),
        ("co-construction", "co construction"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_keeps_separate_numbers_apart() -> None:
    # A 4-digit year followed by a 3-digit number is not « 2015350 ».
    assert normalise("en 2015 350 catalyseurs") == "en 2015 350 catalyseurs"
    # Two-digit groups are not thousands.
    assert normalise("74 81 86") == "74 81 86"


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("Plus de 1\u202f000 exemples d'alliances", "1000 exemples"),
        ("plus de 1000 exemples", "1 000 exemples"),
        ("81 pour cent des Français", "81 %"),
        ("81% des Français", "81 %"),
        ("ELUS MUNICIPAUX", "élus municipaux"),
        ("la Fondation des Territoires", "fondation des territoires"),
        ("1 200 000 partenariats en 2015", "1,2 million"),
        ("1,2 million de partenariats", "1 200 000"),
        ("l’Agence nationale de la cohésion des territoires", "l'Agence nationale"),
        ("un mandat de 6 ans", "six ans|6 ans"),
    ],
)
def test_contains_fact_positive(text: str, fact: str) -> None:
    assert contains_fact(text, fact)


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("181 % de hausse", "81 %"),  # whole numbers only
        ("81,5 %", "81 %"),
        ("en 20200", "2020"),
        ("les élus", "élus municipaux"),
        ("", "2020"),
        ("anything", ""),  # an empty fact matches nothing
        ("les catalyseurs", "six ans|6 ans"),
    ],
)
def test_contains_fact_negative(text: str, fact: str) -> None:
    assert not contains_fact(text, fact)


def test_fact_recall() -> None:
    text = "Selon l'étude de mai 2020, 81 pour cent des Français attendent que les acteurs agissent ensemble."
    assert fact_recall(text, ["81 %", "mai 2020"]) == 1.0
    assert fact_recall(text, ["81 %", "Comisis-OpinionWay"]) == 0.5
    assert fact_recall(text, ["2019"]) == 0.0
    assert fact_recall(text, []) is None
    assert found_facts(text, ["2019", "81 %"]) == ["81 %"]


# --------------------------------------------------------------------------- retrieval


def test_hit_at_k() -> None:
    ranked = ["a", "b", "c", "d"]
    assert hit_at_k(ranked, {"a"}, 1) == 1.0
    assert hit_at_k(ranked, {"c"}, 1) == 0.0
    assert hit_at_k(ranked, {"c"}, 3) == 1.0
    assert hit_at_k(ranked, {"z"}, 10) == 0.0
    assert hit_at_k([], {"a"}, 5) == 0.0


def test_mrr_at_k() -> None:
    assert mrr_at_k(["a", "b", "c"], {"a"}, 10) == 1.0
    assert mrr_at_k(["a", "b", "c"], {"c"}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b", "c"], {"b", "c"}, 10) == 0.5  # first relevant counts
    assert mrr_at_k(["a", "b", "c"], {"c"}, 2) == 0.0  # beyond the cut-off
    # Duplicates (several passages of one document) keep their passage rank.
    assert mrr_at_k(["x", "x", "y"], {"y"}, 10) == pytest.approx(1 / 3)


def test_ndcg_at_k() -> None:
    assert ndcg_at_k(["a", "b"], {"a"}, 10) == 1.0
    assert ndcg_at_k(["b", "a"], {"a"}, 10) == pytest.approx(1 / math.log2(3))
    # Two relevant items, only one found at rank 1: DCG 1, ideal 1 + 1/log2(3).
    assert ndcg_at_k(["a", "x"], {"a", "b"}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    # A repeated relevant item earns no second gain.
    assert ndcg_at_k(["a", "a"], {"a", "b"}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["x", "y"], {"a"}, 10) == 0.0
    assert ndcg_at_k(["a"], set(), 10) == 0.0
    # Cut-off: the relevant item at rank 3 does not count at k=2.
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_retrieval_on_doc_page_pairs() -> None:
    ranked = [("rameau", 1), ("rameau", 2), ("kit", 3)]
    scores = retrieval_scores(ranked, {("rameau", 2)})
    assert scores["hit@1"] == 0.0
    assert scores["hit@5"] == 1.0
    assert scores["mrr@10"] == 0.5
    assert scores["ndcg@10"] == pytest.approx(1 / math.log2(3))
    doc_scores = retrieval_scores([d for d, _ in ranked], {"rameau"})
    assert doc_scores == {"hit@1": 1.0, "hit@5": 1.0, "hit@10": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}


# --------------------------------------------------------------------------- citations


def test_quote_is_verbatim() -> None:
    page = "Le RAMEAU a été créé\nen 2006.  Il se décrit comme un laboratoire de recherche."
    assert quote_is_verbatim("créé en 2006", page)  # line break forgiven
    assert quote_is_verbatim("« Le RAMEAU a été créé en 2006. »", page)
    assert quote_is_verbatim("Le RAMEAU […] laboratoire de recherche", page)
    assert quote_is_verbatim("Le RAMEAU ... laboratoire", page)
    assert not quote_is_verbatim("laboratoire […] Le RAMEAU", page)  # order matters
    assert not quote_is_verbatim("cree en 2006", page)  # accents are not forgiven
    assert not quote_is_verbatim("créé en 2007", page)
    assert not quote_is_verbatim("", page)
    assert quote_is_verbatim("l’association", "C'est l'association")  # apostrophe shape only


def test_citation_precision() -> None:
    facts = ["81 %", "mai 2020"]
    good = CitationCheck(claim="81 % des Français attendent une action commune", source="… 81 % des Français …")
    unsupported = CitationCheck(claim="En mai 2020, une étude a paru", source="une étude a paru en 2019")
    off_topic = CitationCheck(claim="Le RAMEAU est une association", source="Le RAMEAU est une association")
    assert citation_supports(good, facts)
    assert not citation_supports(unsupported, facts)  # the claim's fact is not in its source
    assert not citation_supports(off_topic, facts)  # supports no key fact
    assert citation_precision([good, unsupported, off_topic], facts) == pytest.approx(1 / 3)
    assert citation_precision([good], facts) == 1.0
    assert citation_precision([], facts) is None
    # Checked on text: the source must hold every fact the claim states.
    both = CitationCheck(claim="81 % en mai 2020", source="81 % des Français")
    assert not citation_supports(both, facts)


def test_citation_validity() -> None:
    page = "Le mandat municipal dure 6 ans."
    assert citation_validity([("dure 6 ans", page), ("dure 7 ans", page)]) == 0.5
    assert citation_validity([]) is None


def test_claims_by_marker() -> None:
    text = (
        "D'après les ressources consultées :\n\n"
        "- « Le RAMEAU a été créé en 2006. Il se décrit comme un laboratoire. » [1]\n"
        "Il a lancé PHARE [2] et IMPACT [2]. Le MOOC est gratuit [3].\n"
        "[4] « Une ligne citée »"
    )
    claims = claims_by_marker(text)
    assert claims[1] == "« Le RAMEAU a été créé en 2006. Il se décrit comme un laboratoire. »"
    assert claims[2] == "Il a lancé PHARE et IMPACT"
    assert claims[3] == "Le MOOC est gratuit"
    assert claims[4] == "« Une ligne citée »"
    assert claims_by_marker("Pas de citation.") == {}


# --------------------------------------------------------------------------- abstention


def test_abstention_scores() -> None:
    should = [True, True, True, False, False]
    did = [True, False, True, True, False]
    s = abstention_scores(should, did)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["false_refusals"] == 1
    assert s["missed_refusals"] == 1
    none = abstention_scores([False, True], [False, False])
    assert none["precision"] is None and none["recall"] == 0.0
    with pytest.raises(ValueError):
        abstention_scores([True], [])


# --------------------------------------------------------------------------- aggregation


def test_percentile() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # unsorted input, interpolated
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_mean_ignores_none() -> None:
    assert mean([1.0, None, 0.0]) == 0.5
    assert mean([None]) is None


# --------------------------------------------------------------------------- facts quoted from an expected page


def test_fact_on_expected_page() -> None:
    expected = {("guide", 16), ("guide", 10)}
    on_page = [(("guide", 16), "Le coût moyen est de 1 525 € par logement.")]
    elsewhere = [(("autre", 3), "Le coût moyen est de 1525 € par logement.")]
    # Normalised match (« 1 525 » = « 1525 ») inside a quote from an expected page.
    assert fact_on_expected_page(["1525"], on_page, expected) is True
    # The same quote from a page that is not expected does not count.
    assert fact_on_expected_page(["1525"], elsewhere, expected) is False
    # An expected page whose quote does not hold the found fact does not count either.
    assert fact_on_expected_page(["5,5"], on_page, expected) is False
    # One found fact on an expected page is enough; alternatives « a|b » are understood.
    assert fact_on_expected_page(["5,5", "1525"], elsewhere + on_page, expected) is True
    assert fact_on_expected_page(["mille|1525"], on_page, expected) is True
    # No fact in the answer: the question is not counted.
    assert fact_on_expected_page([], on_page, expected) is None
    assert fact_on_expected_page(["1525"], [], expected) is False


def test_refusal_counts() -> None:
    should = [True, True, True, False, False, False]
    did = [True, False, True, True, False, False]
    assert refusal_counts(should, did) == {
        "out_of_corpus": 3, "out_of_corpus_refused": 2, "answerable": 3, "answerable_refused": 1,
    }
    assert refusal_counts([], []) == {
        "out_of_corpus": 0, "out_of_corpus_refused": 0, "answerable": 0, "answerable_refused": 0,
    }
    with pytest.raises(ValueError):
        refusal_counts([True], [])


# --------------------------------------------------------------------------- thresholds with a margin of questions


def test_rounding_outward_is_immune_to_binary_noise() -> None:
    assert floor_to(0.7567) == 0.75 and ceil_to(0.0811) == 0.09
    assert floor_to(0.5 - 0.1) == 0.4  # 0.39999999999999997 stays 0.4
    assert ceil_to(0.1 + 0.2) == 0.3  # 0.30000000000000004 stays 0.3
    assert floor_to(0.75) == 0.75 and ceil_to(0.75) == 0.75


@pytest.mark.parametrize(
    ("measured", "n", "kind", "bound"),
    [
        (0.8108, 37, "min", 0.75),  # 0.8108 − 2/37 = 0.7567 → down to 0.75
        (30 / 37, 37, "min", 0.75),
        (0.027, 37, "max", 0.09),  # 0.027 + 2/37 = 0.0811 → up to 0.09
        (0.9, 20, "min", 0.8),  # exactly two questions: 0.8, not 0.79
        (1.0, 3, "min", 0.33),
        (0.5, 2, "min", 0.0),  # too few questions: clipped to a vacuous 0
        (0.9, 10, "max", 1.0),
    ],
)
def test_rate_bound_leaves_two_questions(measured: float, n: int, kind: str, bound: float) -> None:
    got = rate_bound(measured, n, kind)
    assert got == pytest.approx(bound)
    if 0.0 < got < 1.0:
        # At least two questions of margin, and never more than two plus the rounding step.
        margin = margin_in_items(measured, got, n, kind)
        assert 2 - 1e-9 <= margin < 2 + 0.01 * n + 1e-9


def test_rate_bound_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        rate_bound(0.5, 0, "min")
    with pytest.raises(ValueError):
        rate_bound(0.5, 10, "exact")


def test_margin_in_items() -> None:
    assert margin_in_items(0.8, 0.7, 40, "min") == pytest.approx(4.0)
    assert margin_in_items(0.6, 0.7, 40, "min") == pytest.approx(-4.0)
    assert margin_in_items(0.05, 0.1, 40, "max") == pytest.approx(2.0)
    assert margin_in_items(0.15, 0.1, 40, "max") == pytest.approx(-2.0)
