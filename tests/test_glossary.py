"""Query expansion with the glossary of acronyms."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.glossary import Glossary, GlossaryError

YAML = """\
terms:
  - acronym: ODD
    expansion: objectifs de développement durable
    aliases: [Agenda 2030]
  - acronym: ESS
    expansion: économie sociale et solidaire
  - acronym: EPCI
    expansion: établissement public de coopération intercommunale
    aliases: [intercommunalité]
  - acronym: M.E.D.O.C.
    expansion: méthodes, exemples, données, outils, compétences
  - acronym: PLU
    expansion: plan local d'urbanisme
  - acronym: FACE
    expansion: Fondation Agir Contre l'Exclusion
  - acronym: IMPACT
    expansion: programme de recherche lancé en 2017
  - acronym: Adasi
    expansion: accompagnement stratégique des structures d'intérêt général
  - acronym: ODD 17
    expansion: partenariats pour la réalisation des objectifs
"""


@pytest.fixture
def glossary(tmp_path: Path) -> Glossary:
    path = tmp_path / "glossary.yaml"
    path.write_text(YAML, encoding="utf-8")
    return Glossary.load(path)


def test_acronym_adds_expansion(glossary: Glossary) -> None:
    assert glossary.expansions("Que sont les ODD ?") == ["objectifs de développement durable"]
    assert glossary.expand("Que sont les ODD ?") == "Que sont les ODD ? objectifs de développement durable"


def test_expansion_adds_acronym_whatever_accents_case_and_number(glossary: Glossary) -> None:
    assert glossary.expansions("Les objectifs de développement durable") == ["ODD"]
    assert glossary.expansions("un OBJECTIF DE DEVELOPPEMENT DURABLE") == ["ODD"]
    assert glossary.expansions("les objectifs du développement durable") == ["ODD"]
    assert glossary.expansions("L'économie sociale et solidaire") == ["ESS"]


def test_nothing_added_when_both_forms_are_there(glossary: Glossary) -> None:
    query = "les ODD (objectifs de développement durable)"
    assert glossary.expansions(query) == []
    assert glossary.expand(query) == query


def test_alias_triggers_canonical_forms_only(glossary: Glossary) -> None:
    assert glossary.expansions("Mon intercommunalité") == [
        "EPCI",
        "établissement public de coopération intercommunale",
    ]
    assert "intercommunalité" not in glossary.expansions("Le rôle de l'EPCI")


def test_acronyms_are_word_bounded(glossary: Glossary) -> None:
    assert glossary.expansions("L'ESSEC forme des managers") == []
    assert glossary.expansions("une caresse et la presse") == []
    assert glossary.expansions("une oddité") == []
    assert glossary.expansions("Dans le secteur de l'ESS") == ["économie sociale et solidaire"]
    assert glossary.expansions("L'ODD17 en pratique") == ["objectifs de développement durable"]


def test_lower_case_acronyms(glossary: Glossary) -> None:
    assert glossary.expansions("les odd de ma commune") == ["objectifs de développement durable"]
    # « plu » is a French word: only « PLU » counts.
    assert glossary.expansions("il a plu hier") == []
    assert glossary.expansions("réviser le PLU") == ["plan local d'urbanisme"]


def test_acronyms_that_are_also_french_words_need_their_own_spelling(glossary: Glossary) -> None:
    assert glossary.expansions("un partenariat face à face") == []
    assert glossary.expansions("Face à la crise") == []
    assert glossary.expansions("la fondation FACE") == ["Fondation Agir Contre l'Exclusion"]
    assert glossary.expansions("mesurer l'impact social") == []
    assert glossary.expansions("Impact des alliances") == []
    assert glossary.expansions("le programme IMPACT") == ["programme de recherche lancé en 2017"]


def test_mixed_case_acronym(glossary: Glossary) -> None:
    expected = ["accompagnement stratégique des structures d'intérêt général"]
    assert glossary.expansions("l'Adasi") == expected
    assert glossary.expansions("l'ADASI") == expected
    assert glossary.expansions("l'adasi") == []  # five letters: too risky in lower case


def test_acronym_with_a_space_is_a_phrase(glossary: Glossary) -> None:
    assert glossary.expansions("Qu'est-ce que l'odd 17 ?") == [
        "objectifs de développement durable",
        "partenariats pour la réalisation des objectifs",
    ]
    assert glossary.expansions("les 17 ODD") == ["objectifs de développement durable"]


def test_dotted_acronym(glossary: Glossary) -> None:
    expected = ["méthodes, exemples, données, outils, compétences"]
    assert glossary.expansions("la démarche M.E.D.O.C.") == expected
    assert glossary.expansions("la démarche MEDOC") == expected
    assert glossary.expansions("un vin du Médoc") == []


def test_several_terms_come_in_glossary_order(glossary: Glossary) -> None:
    expected = ["objectifs de développement durable", "économie sociale et solidaire"]
    assert glossary.expansions("ESS et ODD") == expected
    assert glossary.expansions("ODD et ESS") == expected


def test_missing_file_is_empty(tmp_path: Path) -> None:
    empty = Glossary.load(tmp_path / "absent.yaml")
    assert len(empty) == 0
    assert empty.expand("les ODD") == "les ODD"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("terms: [unclosed", "YAML mal formé"),
        ("- ODD\n- ESS\n", "liste « terms: »"),
        ("terms: {ODD: x}\n", "liste « terms: »"),
        ("terms:\n  - acronym: ODD\n", "« expansion » manque"),
        ("terms:\n  - expansion: objectifs\n", "« acronym » manque"),
        ("terms:\n  - acronym: ''\n    expansion: x\n", "« acronym » manque"),
        ("terms:\n  - acronym: ODD\n    expansion: x\n    aliases: seul\n", "« aliases »"),
        ("terms:\n  - ODD\n", "entrée n° 1"),
    ],
)
def test_invalid_file_raises_french_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "glossary.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GlossaryError, match=message):
        Glossary.load(path)
