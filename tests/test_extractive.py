"""The extractive answer: ranking cues, short answers, questions in parts, duplicates, «not covered»."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from assistant.calibration import load_calibration
from assistant.embeddings import CachedEmbeddings, HashEmbeddings
from assistant.extractive import (
    build_extractive,
    coverage,
    question_parts,
    rank_units,
    select,
)
from assistant.passage_vectors import embed_passages_and_units
from assistant.ranker import FEATURES, RankedUnit, RankerWeights, question_kind, unit_has_kind
from assistant.short_answer import short_answer
from assistant.units import Unit, passage_units, quotable_units, states_absence
from tests.fakes import make_passage

EMBEDDER = HashEmbeddings(256)
CAL = load_calibration(EMBEDDER.name)  # the uncalibrated profile: no cosine floor, portable weights


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Combien d'organisations compte le collectif ?", "number"),
        ("Quel est le délai d'instruction d'un permis de construire ?", "duration"),
        ("au bout de combien de temps on voit des résultats ?", "duration"),
        ("Quelle est la durée du contrat ?", "duration"),
        ("Quel est le montant des frais de raccordement ?", "number"),
        ("Quel pourcentage des maires pilotent la démarche ?", "number"),
        ("les gens veulent que la mairie travaille avec les assos ? y a des chiffres ?", "number"),
        ("Quelles statistiques sur les partenariats ?", "number"),
        ("En quelle année Le RAMEAU a-t-il été créé ?", "date"),
        ("Depuis quand l'Observatoire existe-t-il ?", "date"),
        ("Quelle est la date limite pour s'inscrire sur les listes électorales ?", "date"),
        ("Qui organise le MOOC ?", "entity"),
        ("Quel organisme publie les indices du bois ?", "entity"),
        ("Où trouver le kit ?", "link"),
        ("Sur quel site peut-on consulter la base ?", "link"),
        ("Où se trouve la sous-station ?", "place"),
        ("avec quels partenaires ?", "entity"),
        ("Quels financeurs soutiennent le projet ?", "entity"),
        ("Quels montants sont en jeu ?", "number"),
        ("Qu'est-ce que l'ODD 17 ?", "definition"),
        ("c'est quoi un catalyseur territorial", "definition"),
        ("Comment associer les entreprises ?", "other"),
    ],
)
def test_question_kinds(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_unit_kinds() -> None:
    assert unit_has_kind("Il réunit 23 organisations.", "number")
    assert not unit_has_kind("Il a été créé en 2006.", "number")  # a year does not answer « combien »
    assert unit_has_kind("Il a été créé en 2006.", "date")
    assert unit_has_kind("Le MOOC est proposé par l'ESSEC et Le RAMEAU.", "entity")
    assert unit_has_kind("Le kit est en ligne sur https://exemple.fr.", "link")
    assert unit_has_kind("La base est sur observatoire-des-partenariats.fr.", "link")
    assert not unit_has_kind("La base réunit 200 cas sur la plateforme.", "link")  # names no address
    assert unit_has_kind("La sous-station est en pied d'immeuble, à Lyon.", "place")
    assert unit_has_kind("Un catalyseur territorial est un acteur de terrain.", "definition")


def test_a_name_the_question_already_says_does_not_answer_who() -> None:
    question = "Avec quels partenaires le Comité 21 a-t-il fait son guide sur l'Agenda 2030 ?"
    assert not unit_has_kind("Le Comité 21 a publié un guide sur l'Agenda 2030.", "entity", question)
    assert unit_has_kind("Il a été réalisé avec le Cerema et la Banque des Territoires.", "entity", question)


def _ranked(*texts: str, scores: tuple[float, ...] = ()) -> list[RankedUnit]:
    out = []
    for i, text in enumerate(texts):
        score = scores[i] if i < len(scores) else 0.9 - 0.3 * i
        out.append(RankedUnit(Unit(i, 0, len(text), text), score, tuple(0.0 for _ in FEATURES)))
    return out


def test_short_answer_is_a_verbatim_span_of_the_top_quote() -> None:
    top = "Le collectif Intérêt général a été lancé en 2014 et réunit 23 organisations membres."
    sa = short_answer("Combien d'organisations réunit le collectif Intérêt général ?", _ranked(top, "Autre chose."))
    assert sa is not None and sa.text in top
    assert sa.text.startswith("23 organisations")
    when = short_answer("En quelle année le collectif a-t-il été lancé ?", _ranked(top, "Autre chose."))
    assert when is not None and "2014" in when.text and when.text in top
    # Names were right too rarely on PIAF to be offered as a short answer.
    who = _ranked("Le MOOC est réalisé par l'ESSEC avec Le RAMEAU.", "x")
    assert short_answer("Qui réalise le MOOC ?", who) is None


def test_short_answer_confidence_falls_with_competing_figures_and_a_weaker_quote() -> None:
    q = "Combien de catalyseurs compte le réseau ?"
    alone = short_answer(q, _ranked("Le réseau compte 350 catalyseurs.", "Autre.", scores=(0.9, 0.2)))
    crowded = short_answer(q, _ranked("Le réseau compte 350 catalyseurs, dont 40 catalyseurs régionaux.", "Autre.",
                                      scores=(0.9, 0.2)))
    weaker = short_answer(q, _ranked("Le réseau compte 350 catalyseurs.", "Autre.", scores=(0.5, 0.2)))
    assert alone and crowded and weaker
    assert alone.confidence > crowded.confidence and crowded.candidates == 2
    assert alone.confidence > weaker.confidence
    # Figures of other things (regions, studies) are not rivals of the one that carries the counted noun...
    mixed = short_answer(q, _ranked("Le réseau compte 12 régions, 350 catalyseurs et 40 études.", "Autre.",
                                    scores=(0.9, 0.2)))
    assert mixed and mixed.text == "350 catalyseurs" and mixed.confidence == alone.confidence
    # ... and a quote whose figures all count something else is a weak short answer.
    other = short_answer(q, _ranked("Le réseau couvre 12 régions.", "Autre.", scores=(0.9, 0.2)))
    assert other and other.confidence < alone.confidence / 1.5


# PIAF's tuning half: « 1600 Rome avait », « 19 septembre », « de 8 408 personnes » were offered for « combien ».
# A year, a day of the month, a range of years or a figure the question gives is no count; a year followed by
# what it counts is one; counts may be written in words; the question's own date does not answer « quand ».
@pytest.mark.parametrize(("question", "quote", "expected"), [
    ("Quelle était la population de Rome en 1600 ?", "En 1600 Rome avait 110 000 habitants.", "110 000 habitants"),
    ("Combien de pays l'autorisent ?", "Depuis le 19 septembre, 28 pays l'autorisent.", "28 pays"),
    ("Combien de paysans ?", "Entre 1080-1086, on compte 700 000 paysans.", "700 000 paysans"),
    ("Quelle population passe de 8408 à 87000 personnes ?", "Elle passe de 8 408 personnes à 87 000 en 1871.", None),
    ("Combien d'habitants ?", "La commune compte 2000 habitants.", "2000 habitants"),
    ("Combien d’habitants ?", "La commune compte 2000 habitants permanents.", "2000 habitants"),
    ("Combien de membres compte le groupe ?", "Le groupe compte sept membres.", "sept membres"),
    ("En juin 2017, quand la loi a-t-elle été votée ?", "En juin 2017, on rappela la loi votée en 2003.", "en 2003"),
])
def test_short_answer_to_combien_is_never_a_year_a_day_or_the_questions_own_figure(
        question: str, quote: str, expected: str | None) -> None:
    sa = short_answer(question, _ranked(quote, "x"))
    assert (sa.text if sa else None) == expected


def test_short_answer_wants_the_unit_the_question_measures() -> None:
    top = "L'île recouvre des dunes de 2 à 3 m et mesure 8 km2 au total."
    sa = short_answer("Quelle surface l'île recouvre-t-elle ?", _ranked(top, "x"))
    assert sa and sa.text == "8 km2"
    sa = short_answer("Quel pourcentage vient des prêts ?",
                      _ranked("Les prêts apportent 600 millions d'euros, soit 70 % du total.", "x"))
    assert sa and sa.text.startswith("70 %")


def test_no_short_answer_for_questions_that_do_not_ask_for_a_fact() -> None:
    assert short_answer("Comment associer les entreprises ?", _ranked("Il faut les inviter dès le début.")) is None
    assert short_answer("Combien de catalyseurs ?", _ranked("Aucun chiffre dans cette phrase.")) is None


def test_question_parts() -> None:
    assert question_parts("combien de catalyseurs, et combien d'études de cas ?") == [
        "combien de catalyseurs", "combien d'études de cas ?"]
    parts = question_parts("Qui décide de créer un réseau de chaleur, et comment peut-il ensuite être géré ?")
    assert len(parts) == 2 and "réseau" in parts[1]  # «il» is the first part's subject
    assert question_parts("Quelles sont les missions et les outils du réseau ?") == [
        "Quelles sont les missions et les outils du réseau ?"]


def test_a_circumstance_before_the_question_is_not_a_part_of_it() -> None:
    # real-docs: « Dans un immeuble de logements sociaux raccordé » was answered on its own, by a sentence
    # about an «immeuble moyen de 20 appartements», and the answer lost « l'abonné est le bailleur social ».
    q = "Dans un immeuble de logements sociaux raccordé, qui est l'abonné du réseau de chaleur ?"
    assert question_parts(q) == [q]
    assert question_parts("Pour une petite commune, et quels financements ?") == [
        "Pour une petite commune, et quels financements ?"]
    # A part that asks by inversion is still a part.
    parts = question_parts("Comment le syndic répercute-t-il la facture, et quels postes ne peut-il pas refacturer ?")
    assert len(parts) == 2 and parts[0] == "Comment le syndic répercute-t-il la facture"


def test_a_figure_in_another_unit_does_not_answer_a_question_on_a_measure() -> None:
    q = "À partir de quelle surface ajoutée doit-on se brancher ?"
    assert not unit_has_kind("L'Abonné entretient le fluide (conformément à l'article 4.2).", "number", q)
    assert unit_has_kind("- extension ou surélévation de 150 m2 ou de 30 % de la surface existante ;", "number", q)
    # Without a measure, any figure other than a year is a number.
    assert unit_has_kind("Le réseau réunit 350 catalyseurs.", "number", "Combien de catalyseurs ?")


def test_each_part_is_answered_from_the_document_that_holds_it() -> None:
    passages = [
        make_passage("Le réseau des pionniers rassemble 350 catalyseurs territoriaux en France.",
                     doc_id="pionniers", title="Réseau des pionniers"),
        make_passage("Le programme a publié 40 études de cas sur les alliances locales.",
                     doc_id="etudes", title="Études de cas", chunk_index=1),
    ]
    sel = select("combien de catalyseurs, et combien d'études de cas ?", passages, EMBEDDER, CAL)
    quoted = " ".join(u.text for u in sel.units)
    assert "350 catalyseurs" in quoted and "40 études de cas" in quoted
    assert {passages[u.passage_index].doc_id for u in sel.units} == {"pionniers", "etudes"}


def test_the_same_sentence_is_never_quoted_twice_even_from_two_documents() -> None:
    same = "L'Agenda 2030 fixe 17 objectifs de développement durable et 169 cibles."
    passages = [make_passage(same, doc_id="a"), make_passage(same, doc_id="b", chunk_index=1),
                make_passage("Le glossaire définit aussi 169 cibles précises.", doc_id="c", chunk_index=2)]
    sel = select("Combien de cibles compte l'Agenda 2030 ?", passages, EMBEDDER, CAL)
    assert [u.text for u in sel.units].count(same) == 1


def test_one_fact_said_again_by_another_document_is_quoted_once() -> None:
    passages = [
        make_passage("L'Observatoire des territoires existe depuis 2004.", doc_id="territoires"),
        make_passage("- L'Observatoire des territoires est actif depuis 2004.", doc_id="glossaire", chunk_index=1),
        make_passage("L'Observatoire des partenariats a été créé en 2008.", doc_id="partenariats", chunk_index=2),
    ]
    sel = select("Depuis quand existent l'Observatoire des territoires et l'Observatoire des partenariats ?",
                 passages, EMBEDDER, CAL)
    quoted = [u.text for u in sel.units]
    assert sum("2004" in t for t in quoted) == 1 and any("2008" in t for t in quoted), quoted


def test_not_covered_when_the_quotes_miss_the_question_words() -> None:
    passages = [make_passage("Le kit co-construction territoriale propose une charte et des fiches pratiques.")]
    q = "Quelles aides financières existent pour créer une maison France services ?"
    sel_units = passage_units(passages[0])
    assert coverage(q, sel_units, passages) < 0.3
    strict = CAL.with_changes(coverage_floor=0.5, confident_answer=1.01)
    text, citations, sel = build_extractive(q, passages, EMBEDDER, strict)
    assert citations == [] and not sel.covered
    assert text.startswith("Je n'ai pas trouvé de réponse")
    # A question the quotes do cover is answered with the same rule.
    covered = "Que propose le kit co-construction territoriale ?"
    text, citations, _ = build_extractive(covered, passages, EMBEDDER, strict)
    assert citations and "charte" in text


def test_a_delai_is_answered_by_a_length_of_time_not_by_a_date() -> None:
    assert unit_has_kind("Les copropriétaires disposent d'une période de dix ans pour payer.", "duration")
    assert unit_has_kind("Cet arrêt annuel aura une durée maximale de 5 jours.", "duration")
    assert not unit_has_kind("Le permis de construire déposé avant le 31 décembre 2019 bénéficie d'une majoration.",
                             "duration")
    q = "Quel est le délai d'instruction d'un permis de construire pour une maison individuelle ?"
    dates = [make_passage("Les immeubles dont le permis de construire est déposé avant le 31 décembre 2019 "
                          "bénéficient d'une majoration de 7,5 kWh par mètre carré.")]
    text, citations, sel = build_extractive(q, dates, EMBEDDER, CAL)
    assert citations == [] and not sel.covered and text.startswith("Je n'ai pas trouvé de réponse")
    lengths = [make_passage("Le délai d'instruction d'un permis de construire pour une maison individuelle est "
                            "de deux mois.")]
    text, citations, sel = build_extractive(q, lengths, EMBEDDER, CAL)
    assert citations and sel.covered and "deux mois" in text


def test_short_answer_to_a_duration_question_is_the_length_of_time() -> None:
    top = "Cet arrêt annuel aura une durée maximale de 5 jours, prévenu 20 jours avant, depuis 2019."
    sa = short_answer("Combien de temps peut durer l'arrêt annuel ?", _ranked(top, "Autre."))
    assert sa is not None and sa.text in top and sa.text.startswith("5 jours") and sa.candidates == 2


def test_short_answer_line_comes_first_and_is_checkable() -> None:
    passages = [make_passage("Le collectif Intérêt général réunit 23 organisations membres depuis 2014.")]
    eager = load_calibration(EMBEDDER.name).with_changes(short_answer_floor=0.0)
    text, citations, sel = build_extractive("Combien d'organisations réunit le collectif ?", passages, EMBEDDER, eager)
    assert sel.short is not None
    assert text.startswith(f"En bref : {sel.short.text} [1]")
    assert sel.short.text in citations[0].quote
    shy = eager.with_changes(short_answer_floor=1.01)
    text, _, sel = build_extractive("Combien d'organisations réunit le collectif ?", passages, EMBEDDER, shy)
    assert sel.short is None and not text.startswith("En bref")


def test_weights_score_a_probability() -> None:
    w = RankerWeights(FEATURES, tuple(1.0 for _ in FEATURES), 0.0)
    assert w.probabilities(np.zeros((2, len(FEATURES)))).tolist() == [0.5, 0.5]


def test_boilerplate_openings_are_never_quoted() -> None:
    from assistant.units import opening

    note = "Cette fiche ressource est un résumé rédigé par le projet sur le kit de co-construction."
    passages = [make_passage(note + " Le kit propose une charte et des fiches pratiques.")]
    q = "Que propose le kit de co-construction ?"
    kept = select(q, passages, EMBEDDER, CAL)
    assert any(u.text == note for u in kept.units)  # without the corpus-level list it may be quoted
    cleaned = select(q, passages, EMBEDDER, CAL, boilerplate={opening(note)})
    assert cleaned.units and all(u.text != note for u in cleaned.units)


def test_what_follows_a_boilerplate_sentence_in_the_same_unit_can_still_be_quoted() -> None:
    from assistant.units import opening

    note = "Cette fiche ressource est un résumé rédigé par le projet sur le kit."
    passages = [make_passage(note + " Elle présente des exemples inspirants de coopération locale.")]
    sel = select("Le kit présente-t-il des exemples inspirants ?", passages, EMBEDDER, CAL,
                 boilerplate={opening(note)})
    assert [u.text for u in sel.units] == ["Elle présente des exemples inspirants de coopération locale."]
    assert all(passages[0].text[u.start:u.end] == u.text for u in sel.units)


def test_a_boilerplate_sentence_over_two_lines_is_cut_at_its_full_stop() -> None:
    # « … le guide original du » / « Comité 21. » is one sentence: the quote must not start at « Comité 21. ».
    from assistant.units import opening

    note = "Cette fiche ressource est un résumé rédigé par le projet ; ce n'est pas le guide original du\nComité 21."
    passages = [make_passage(note + " Elle rappelle ce qu'est l'Agenda 2030 pour les communes.")]
    sel = select("Que rappelle la fiche sur l'Agenda 2030 ?", passages, EMBEDDER, CAL, boilerplate={opening(note)})
    assert [u.text for u in sel.units] == ["Elle rappelle ce qu'est l'Agenda 2030 pour les communes."]


def test_a_sentence_saying_the_sources_lack_something_comes_after_one_that_answers() -> None:
    absent = ("Le nombre de catalyseurs territoriaux que compte le réseau en 2024 n'est pas précisé dans "
              "les sources dont nous disposons.")
    stated = "Le réseau rassemble 350 catalyseurs."
    passages = [make_passage(absent), make_passage(stated)]
    sel = select("Combien de catalyseurs territoriaux compte le réseau ?", passages, EMBEDDER, CAL)
    assert [u.text for u in sel.units] == [stated, absent]
    # A sentence that answers before it says what is missing keeps its rank.
    dated = "La plateforme a été lancée un 12 juillet ; l'année de ce lancement n'est pas précisée dans nos sources."
    assert not states_absence(dated) and states_absence(absent)
    # Alone, it is still quoted: saying that the sources do not tell is an answer too.
    alone = select("Quelle est la liste des catalyseurs ?", [make_passage(absent)], EMBEDDER, CAL)
    assert [u.text for u in alone.units] == [absent]


def test_precomputed_unit_vectors_are_what_ranking_reads(tmp_path: Path) -> None:
    class Counting(HashEmbeddings):
        def __init__(self) -> None:
            super().__init__(256)
            self.embedded: list[str] = []

        def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
            self.embedded.extend(texts)
            return super().embed_passages(texts)

    inner = Counting()
    cached = CachedEmbeddings(inner, tmp_path / "cache.sqlite")
    passages = [make_passage("Le mandat municipal dure six ans. Il commence en mars."),
                make_passage("Le collectif réunit 23 organisations depuis 2014.", chunk_index=1)]
    embed_passages_and_units(passages, cached, mode="text")  # what ingestion does for each file
    assert set(inner.embedded) >= {u.text for u in quotable_units(passages)} and inner.embedded
    question = "Combien de temps dure le mandat ?"
    query_vector = inner.embed_query(question)  # the retriever's, reused (HashEmbeddings embeds queries as passages)
    inner.embedded.clear()
    rank_units(question, passages, cached, CAL, query_vector=query_vector)
    assert inner.embedded == []  # every unit vector came from the cache


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        # The relative « qui » does not ask who: the question asks which exercises.
        ("Et quels exercices le MOOC Les alliances qui changent les territoires propose ?", "other"),
        ("Par qui le kit est-il financé ?", "entity"),
        ("Le RAMEAU, c'est qui ?", "entity"),
        ("et qui le finance ?", "entity"),
        ("Quel est le nom de l'homme qui a fondé la ville ?", "entity"),
    ],
)
def test_only_an_asking_qui_makes_a_who_question(question: str, kind: str) -> None:
    assert question_kind(question) == kind


def test_the_word_the_question_asks_about_is_its_focus() -> None:
    from assistant.lexical import analyze
    from assistant.ranker import focus_terms

    asked = "Avec quels partenaires le Comité 21 a-t-il fait son guide ?"
    assert focus_terms(asked) == frozenset(analyze("partenaires"))
    assert focus_terms("Qui organise le MOOC ?") == frozenset(analyze("organise"))
    assert focus_terms("Combien de catalyseurs compte le réseau ?") == frozenset(analyze("catalyseurs"))
    # The relative clause is not what is asked; « nom », « année » could be said of any answer.
    assert focus_terms("Et quels exercices le MOOC Les alliances qui changent les territoires propose ?") \
        == frozenset(analyze("exercices"))
    assert focus_terms("Quel est le nom du fleuve ?") == frozenset()
    assert focus_terms("En quelle année le club a-t-il été créé ?") == frozenset()
