from __future__ import annotations

import pytest

from assistant.sentences import sentence_spans, split_sentences


def test_plain_sentences() -> None:
    assert split_sentences("Le maire signe. Le conseil vote ! Qui paie ? Personne…") == [
        "Le maire signe.", "Le conseil vote !", "Qui paie ?", "Personne…",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "M. Dupont et Mme Martin ont signé la convention.",
        "Voir le guide p. 12 et l'art. 3 de la loi.",
        "Le décret n° 2020-1234 (cf. annexe) s'applique.",
        "Il cite J. Dupont, maire de la commune.",
        "Le budget atteint 1,2 million d'euros pour 1 000 habitants.",
        "Le taux passe à 1.5 point, soit 12 000 euros.",
        "Les communes, associations, entreprises, etc. sont concernées.",
        "Consulter le site lerameau.fr/kit pour le kit.",
        "Le programme de l'U.E. finance le projet.",
    ],
)
def test_no_split_inside(text: str) -> None:
    assert split_sentences(text) == [text]


def test_url_at_the_end_of_a_sentence_still_ends_it() -> None:
    assert split_sentences("Le kit est sur lerameau.fr. Il est gratuit.") == [
        "Le kit est sur lerameau.fr.", "Il est gratuit.",
    ]


def test_citations_stay_with_their_sentence() -> None:
    text = (
        "L'Agenda 2030 date de 2015. [1] Il fixe 17 objectifs [1][2]. L'ODD 17 vise les partenariats [1, 3]. "
        "Fin [2-3]."
    )
    assert split_sentences(text) == [
        "L'Agenda 2030 date de 2015. [1]",
        "Il fixe 17 objectifs [1][2].",
        "L'ODD 17 vise les partenariats [1, 3].",
        "Fin [2-3].",
    ]


def test_guillemets_protect_a_quoted_passage() -> None:
    text = "Le maire a dit : « Il faut agir. Et vite. » Puis il est parti. « Ensemble. » [2] Fin."
    assert split_sentences(text) == [
        "Le maire a dit : « Il faut agir. Et vite. »",
        "Puis il est parti.",
        "« Ensemble. » [2]",
        "Fin.",
    ]


def test_unbalanced_guillemet_does_not_swallow_the_text() -> None:
    assert split_sentences("Il a dit « bonjour. Le conseil vote. Il part.") == [
        "Il a dit « bonjour.", "Le conseil vote.", "Il part.",
    ]


def test_lists_and_line_breaks() -> None:
    text = (
        "Quatre missions :\n- le dialogue territorial ;\n- l'expérimentation collective\n"
        "1. Premier point.\n2. Second point\n\nUn titre\nUn paragraphe qui continue\nsur la ligne suivante."
    )
    assert split_sentences(text) == [
        "Quatre missions :",
        "- le dialogue territorial ;",
        "- l'expérimentation collective",
        "1. Premier point.",
        "2. Second point",
        "Un titre",
        "Un paragraphe qui continue\nsur la ligne suivante.",
    ]


def test_ellipsis_and_french_spacing() -> None:
    assert split_sentences("Et après... Rien ? Non ! Les acteurs (…) agissent.") == [
        "Et après...", "Rien ?", "Non !", "Les acteurs (…) agissent.",
    ]


def test_spans_are_verbatim_and_stripped() -> None:
    text = "  Le maire signe.\n\n  Le conseil vote [1].  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["Le maire signe.", "Le conseil vote [1]."]
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in spans)


def test_streaming_prefix_keeps_an_incomplete_citation_in_the_last_sentence() -> None:
    # While a model streams « … 2015. [1] Il … », the cut must wait for the marker.
    assert split_sentences("Adopté en 2015. [") == ["Adopté en 2015. ["]
    assert split_sentences("Adopté en 2015. [1") == ["Adopté en 2015. [1"]
    assert split_sentences("Adopté en 2015. [1] Il") == ["Adopté en 2015. [1]", "Il"]


def test_empty_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n ") == []
