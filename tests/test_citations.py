from __future__ import annotations

import pytest

from assistant.citations import (
    cited_numbers,
    figures_in,
    normalise_for_match,
    numbers_in,
    quotes_in,
    rewrite_citations,
    strip_citations,
)


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Il fixe 17 objectifs [1].", [1]),
        ("Il fixe 17 objectifs [1][2].", [1, 2]),
        ("Il fixe 17 objectifs [1, 3].", [1, 3]),
        ("Il fixe 17 objectifs [1-3].", [1, 2, 3]),
        ("Il fixe 17 objectifs [2–3] et [2].", [2, 3]),
        ("Il fixe 17 objectifs [Passage 4] [source 5].", [4, 5]),
        ("Il fixe 17 objectifs.", []),
        ("Les acteurs […] agissent.", []),
    ],
)
def test_cited_numbers(sentence: str, expected: list[int]) -> None:
    assert cited_numbers(sentence) == expected


def test_huge_range_is_not_expanded() -> None:
    assert cited_numbers("Voir [1-500].") == [1, 500]


def test_rewrite_citations_keeps_only_supported_sources() -> None:
    assert rewrite_citations("Il fixe 17 objectifs [1, 3][Passage 2].", {1, 2}) == "Il fixe 17 objectifs [1][2]."
    assert rewrite_citations("Il fixe 17 objectifs [3].", {1}) == "Il fixe 17 objectifs."
    assert strip_citations("a [1] b") == "a     b"


@pytest.mark.parametrize(
    "variants",
    [
        ["81 %", "81%", "81 pour cent", "81\u202f%", "81\u00a0%"],
        ["1 000", "1000", "1\u202f000", "1\u00a0000", "1.000"],
        ["1 000 euros", "1 000 €", "1000€", "1\u202f000 EUR"],
        ["1,2 million d'euros", "1,2 M€", "1,2 millions d’euros"],
        ["le 17e objectif", "le 17ème objectif", "le 17ᵉ objectif"],
        ["le 1er janvier 2020", "le 01/01/2020", "le 1/1/2020"],
        ["quatre missions", "4 missions"],
        ["dix-sept objectifs", "17 objectifs"],
    ],
)
def test_same_figure_written_differently_has_the_same_keys(variants: list[str]) -> None:
    keys = [numbers_in(v) for v in variants]
    assert all(k == keys[0] for k in keys), dict(zip(variants, keys, strict=True))
    assert keys[0]


def test_figure_keys() -> None:
    assert numbers_in("81 %") == {"81 %"}
    assert numbers_in("1 000") == {"1000"}
    assert numbers_in("1,2 million") == {"1,2 million", "1200000"}
    assert numbers_in("adopté en 2015, horizon 2030") == {"2015", "2030"}
    assert numbers_in("le 17e objectif") == {"17e"}
    assert numbers_in("15 septembre 2015") == {"2015-09-15"}
    assert numbers_in("septembre 2015") == {"2015-09"}
    assert numbers_in("4,5 % et 1,50 €") == {"4,5 %", "1,5 €"}


def test_a_unit_makes_a_different_figure() -> None:
    assert numbers_in("1 000 euros") != numbers_in("1 000 habitants")
    # … but the bare value of the source still backs a bare figure.
    (habitants,) = figures_in("1 000 habitants")
    (euros,) = figures_in("fixé à 1 000 euros")
    assert not euros.keys & (habitants.keys | habitants.bare)
    (plain,) = figures_in("1 000")
    assert plain.keys & euros.bare


@pytest.mark.parametrize(
    "text",
    ["CANARI-7F3A", "le CO2", "ODD17", "les acteurs […] agissent", "Il fixe des objectifs [1][2]."],
)
def test_no_figure(text: str) -> None:
    assert numbers_in(text) == set()


def test_grouped_thousands_do_not_merge_a_year_with_a_count() -> None:
    assert numbers_in("en 2015 350 catalyseurs") == {"2015", "350"}


def test_quotes_in() -> None:
    text = "Le guide dit « Il faut agir » et parle d’“alliances” et de \"co-construction\" ; « » est vide."
    assert quotes_in(text) == ["Il faut agir", "alliances", "co-construction"]


def test_normalise_for_match() -> None:
    assert normalise_for_match("L’ODD\u00a017 —  «\u202fpartenariats\u202f»\n ﬁn") == "L'ODD 17 - « partenariats » fin"
    assert normalise_for_match("Maire") != normalise_for_match("maire")  # case is kept
