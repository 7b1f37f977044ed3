"""Follow-up questions made standalone without a language model (assistant/followup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.answer import Assistant
from assistant.followup import looks_like_follow_up, rewrite_without_llm, subject_of
from evals.sets import SETS_DIR, load_set

ROOT = Path(__file__).resolve().parent.parent
FORMATION = "Y a-t-il une formation en ligne gratuite sur les partenariats ?"
MOOC_ANSWER = (
    "D'après « MOOC « Les alliances qui changent les territoires » (ESSEC et Le RAMEAU) », page 1 :\n\n"
    "- « • Il est gratuit et disponible sur la plateforme Coursera. » [1]"
)


def turns(*texts: str) -> list[dict[str, str]]:
    """user, assistant, user, … messages, in this order."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


# (history, follow-up, the standalone question it becomes)
EXAMPLES = [
    # clitic object pronouns
    (turns(FORMATION), "Qui l'organise ?", "Qui organise la formation en ligne gratuite sur les partenariats ?"),
    (turns(FORMATION, MOOC_ANSWER), "qui l'organise ?",
     "Qui organise la formation en ligne gratuite sur les partenariats ?"),
    (turns("Que contient le kit co-construction territoriale ?"), "où le trouver ?",
     "Où trouver le kit co-construction territoriale ?"),
    (turns("Que dit la charte « faire alliance » ?"), "où la trouver ?", "Où trouver la charte « faire alliance » ?"),
    (turns("Que sont les catalyseurs territoriaux ?"), "qui les finance ?",
     "Qui finance les catalyseurs territoriaux ?"),
    (turns("Que dit l'étude Jouer collectif en sortie de crise ?"), "qui l'a réalisée ?",
     "Qui a réalisé l'étude Jouer collectif en sortie de crise ?"),
    (turns("Qu'est-ce que l'Observatoire des territoires ?"), "Qui en parle ?",
     "Qui parle de l'Observatoire des territoires ?"),
    (turns("Qu'est-ce que le MOOC Les alliances qui changent les territoires ?"), "Peut-on s'y inscrire gratuitement ?",
     "Peut-on s'inscrire au MOOC Les alliances qui changent les territoires gratuitement ?"),
    # subject pronouns, straight or inverted
    (turns("Qui a fait l'étude Jouer collectif en sortie de crise ?", "Comisis-OpinionWay, en mai 2020."),
     "et elle dit quoi ?", "Et l'étude Jouer collectif en sortie de crise dit quoi ?"),
    (turns("C'est quoi l'Observatoire des partenariats ?"), "combien de profils d'acteurs il modélise ?",
     "Combien de profils d'acteurs l'Observatoire des partenariats modélise ?"),
    (turns("Parle-moi du réseau des pionniers des alliances en territoire"), "ils se réunissent depuis quand ?",
     "Les pionniers des alliances en territoire se réunissent depuis quand ?"),
    (turns("Qu'est-ce que la plateforme ODD 17 en pratiques ?"), "Que propose-t-elle ?",
     "Que propose la plateforme ODD 17 en pratiques ?"),
    (turns("Qu'est-ce que la plateforme ODD 17 en pratiques ?"), "Quand a-t-elle été lancée ?",
     "Quand la plateforme ODD 17 en pratiques a-t-elle été lancée ?"),
    # the answer decides when the question has no noun of the pronoun's gender
    (turns("Où trouver le kit co-construction territoriale ?",
           "Sur la plateforme « l'innovation territoriale en actions ! », en accès libre."),
     "elle propose aussi des webinaires ?",
     "La plateforme « l'innovation territoriale en actions ! » propose aussi des webinaires ?"),
    # ça, c'est, demonstratives, possessives
    (turns("C'est quoi le MOOC Les alliances qui changent les territoires ?"), "combien ça coûte ?",
     "Combien coûte le MOOC Les alliances qui changent les territoires ?"),
    (turns("Parle-moi du MOOC Les alliances qui changent les territoires"), "c'est gratuit ?",
     "Le MOOC Les alliances qui changent les territoires, c'est gratuit ?"),
    (turns("Que contient le kit co-construction territoriale ?"), "où trouver ce kit ?",
     "Où trouver le kit co-construction territoriale ?"),
    (turns("Qu'est-ce que le Réseau des pionniers ?"), "Quelles sont ses missions ?",
     "Quelles sont les missions du Réseau des pionniers ?"),
    # ellipsis
    (turns("Comment associer les entreprises à notre projet ?"), "et pour les associations ?",
     "Comment associer les associations à notre projet ?"),
    (turns("Combien de cibles a l'Agenda 2030 ?", "17 objectifs et 169 cibles."), "et l'ODD 17 il en a combien ?",
     "Combien de cibles a l'ODD 17 ?"),
    (turns("Combien de cibles compte l'Agenda 2030 ?"), "Et l'ODD 17 ?", "Combien de cibles compte l'ODD 17 ?"),
    (turns("Le Réseau des pionniers est devenu une association loi 1901 ?", "Oui, en 2019."), "depuis quand ?",
     "Depuis quand le Réseau des pionniers est devenu une association loi 1901 ?"),
    (turns("Combien y avait-il de partenariats en France en 2015 ?"), "et en 2020 ?",
     "Combien y avait-il de partenariats en France en 2020 ?"),
    (turns("Qui pilote la plateforme « l'innovation territoriale en actions ! » ?"), "et en 2020 ?",
     "Qui pilote la plateforme « l'innovation territoriale en actions ! » en 2020 ?"),
    (turns("Combien de partenariats y a-t-il en France ?"), "Et en moyenne par asso ?",
     "Combien de partenariats y a-t-il en France en moyenne par asso ?"),
    (turns("Le Comité 21 a fait un guide sur l'Agenda 2030 pour les communes ?"), "avec quels partenaires ?",
     "Avec quels partenaires le Comité 21 a fait un guide sur l'Agenda 2030 pour les communes ?"),
    (turns("Qu'est-ce qu'un catalyseur territorial ?"), "et ses missions ?",
     "Et les missions du catalyseur territorial ?"),
]


@pytest.mark.parametrize(("history", "question", "standalone"), EXAMPLES, ids=[e[1] for e in EXAMPLES])
def test_follow_ups_become_natural_standalone_questions(history: list[dict[str, str]], question: str,
                                                        standalone: str) -> None:
    assert looks_like_follow_up(question)
    assert rewrite_without_llm(question, history) == standalone


def test_the_previous_subject_is_the_main_noun_phrase_of_the_previous_question() -> None:
    assert subject_of(FORMATION) == "une formation en ligne gratuite sur les partenariats"
    assert subject_of("Qui a fait l'étude Jouer collectif en sortie de crise ?") == (
        "l'étude Jouer collectif en sortie de crise")
    assert subject_of("Où trouver le kit co-construction territoriale ?") == "le kit co-construction territoriale"
    assert subject_of("C'est quoi le dossier publié chez JURIS Associations par le collectif ?") == (
        "le dossier publié chez JURIS Associations par le collectif")
    assert subject_of("Par où commencer ?") == ""


def test_an_elliptic_complement_replaces_the_complement_and_a_noun_the_subject() -> None:
    history = turns("Que dit l'étude sur l'habitat ?")
    assert rewrite_without_llm("et pour l'hébergement ?", history) == "Que dit l'étude sur l'hébergement ?"
    assert rewrite_without_llm("et le guide ?", history) == "Que dit le guide ?"
    assert rewrite_without_llm("qui l'a réalisée ?", history) == "Qui a réalisé l'étude sur l'habitat ?"


def test_without_a_safe_substitution_the_subject_is_appended() -> None:
    history = turns("Le RAMEAU a combien de programmes de recherche ?", "Trois : ARPEA, PHARE et IMPACT.")
    standalone = rewrite_without_llm("et le dernier a été lancé quand ?", history)
    assert standalone.startswith("et le dernier a été lancé quand ? (")
    assert "RAMEAU" in standalone and "programmes" in standalone
    # «le» wants a masculine noun; the formation is feminine: no substitution, the words are carried
    assert rewrite_without_llm("Comment le savoir ?", turns(FORMATION)) == (
        "Comment le savoir ? (formation en ligne gratuite sur les partenariats)")
    assert rewrite_without_llm("Et la catalyse ?", turns(FORMATION)) == (
        "Et la catalyse ? (formation en ligne gratuite sur les partenariats)")


def test_the_title_of_the_cited_document_stands_in_when_the_question_names_nothing() -> None:
    history = turns("Par où commencer ?", MOOC_ANSWER)
    standalone = rewrite_without_llm("Qui l'organise ?", history)
    assert standalone == "Qui organise MOOC « Les alliances qui changent les territoires » ?"


def test_the_noun_phrase_the_answer_repeats_wins_a_tie() -> None:
    question = "Faut-il lire la lettre ou le glossaire des sigles ?"
    assert rewrite_without_llm("c'est long ?", turns(question)) == "Le glossaire des sigles, c'est long ?"
    repeated = turns(question, "La lettre aux nouveaux élus recommande sept ressources.")
    assert rewrite_without_llm("c'est long ?", repeated) == "La lettre, c'est long ?"


STANDALONE = [
    "Qui organise la formation ?",
    "Quels exercices propose le MOOC ?",
    "Combien de cibles a l'ODD 17 ?",
    "Y a-t-il une formation sur l'ODD 17 ?",
    "Existe-t-il un guide sur l'Agenda 2030 ?",
    "Combien y a-t-il de catalyseurs territoriaux ?",
    "Comment la commune peut-elle associer les entreprises ?",
    "Où l'étude a-t-elle été publiée ?",
    "Qu'est-ce que la co-construction ?",
    "C'est quoi la catalyse ?",
    "Faut-il une délibération pour signer la charte ?",
    "Le RAMEAU, il a été créé quand ?",
    "Et le kit Sortir de la crise en territoire, il contient quoi ?",
    "Le kit « Sortir de la crise en territoire » et le kit « co-construction territoriale » : où les trouver ?",
    "Quelle différence entre une alliance et un partenariat classique ?",
    "Quel est le montant de la DGF de ma commune cette année ?",
    "merci",
]


@pytest.mark.parametrize("question", STANDALONE)
def test_a_question_that_names_its_subject_is_left_alone(question: str) -> None:
    history = turns(FORMATION, MOOC_ANSWER)
    assert rewrite_without_llm(question, history) == question


def test_the_golden_set_standalone_questions_are_left_alone_and_its_follow_ups_rewritten() -> None:
    questions = load_set(SETS_DIR / "golden.jsonl")
    other = turns(FORMATION, MOOC_ANSWER)
    standalone = [q for q in questions if q.type != "follow-up"]
    changed = [q.id for q in standalone if rewrite_without_llm(q.question, other) != q.question]
    assert changed == []
    follow_ups = [q for q in questions if q.type == "follow-up"]
    assert len(follow_ups) >= 21
    missed = [q.id for q in follow_ups if rewrite_without_llm(q.question, q.history_messages()) == q.question]
    assert missed == []


def test_a_chain_of_follow_ups_keeps_its_subject() -> None:
    history = turns(
        FORMATION, MOOC_ANSWER,
        "Qui l'organise ?", "L'ESSEC avec Le RAMEAU.",
        "merci", "Avec plaisir.",
    )
    assert rewrite_without_llm("c'est gratuit ?", history) == (
        "La formation en ligne gratuite sur les partenariats, c'est gratuit ?")
    assert rewrite_without_llm("et où la trouver ?", history) == (
        "Et où trouver la formation en ligne gratuite sur les partenariats ?")

    odd = turns("Combien de cibles a l'Agenda 2030 ?", "169.", "Et l'ODD 17 ?", "19 cibles.")
    assert rewrite_without_llm("et en 2020 ?", odd) == "Combien de cibles a l'ODD 17 en 2020 ?"

    switched = turns(FORMATION, "…", "Qui l'organise ?", "…", "Parle-moi du réseau des pionniers des alliances en "
                     "territoire", "…")
    assert rewrite_without_llm("ils se réunissent depuis quand ?", switched) == (
        "Les pionniers des alliances en territoire se réunissent depuis quand ?")


ODD_HISTORIES: list[Any] = [
    None,
    [],
    [{"content": FORMATION}],
    [{"role": "user"}],
    [{"role": "user", "content": None}],
    [{"role": "user", "content": 42}],
    [{"role": "user", "content": ["liste"]}],
    ["texte seul"],
    [("user", FORMATION)],
    [None, 3.5],
    [{"role": "assistant", "content": MOOC_ANSWER}],
    [{"role": "system", "content": FORMATION}],
    [{"role": "user", "content": "   "}, {"role": "assistant", "content": ""}],
    [{"role": "user", "content": "???"}, {"role": "assistant", "content": "« » [1]"}],
    [{"role": "user", "content": "l' la les en y ça ce " * 200}],
    turns("D'après « » :", "D'après « »"),
]


@pytest.mark.parametrize("history", ODD_HISTORIES)
@pytest.mark.parametrize("question", ["Qui l'organise ?", "et en 2020 ?", "depuis quand ?", "?", "", "l'", "Et ?"])
def test_odd_histories_and_questions_do_not_crash(history: Any, question: str) -> None:
    standalone = rewrite_without_llm(question, history)
    assert isinstance(standalone, str)
    if not history or not any(isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
                              and m["content"].strip() for m in history):
        assert standalone == question  # nothing usable before: the question is kept as asked


# --------------------------------------------------------------------------- with the real model


@pytest.fixture
def shipped(shipped_assistant: Assistant) -> Assistant:
    """The shipped corpus, indexed once per session (tests/conftest.py)."""
    return shipped_assistant


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "question", "subject", "doc", "facts"),
    [
        (FORMATION, "Qui l'organise ?", "formation en ligne gratuite sur les partenariats", "mooc-alliances",
         ("ESSEC", "RAMEAU")),
        ("Qui a fait l'étude Jouer collectif en sortie de crise ?", "et elle dit quoi ?",
         "étude Jouer collectif en sortie de crise", None, ("81 %",)),  # quoted by several documents
        ("Combien de cibles a l'Agenda 2030 ?", "et l'ODD 17 il en a combien ?", "ODD 17", None, ("19 cibles",)),
    ],
)
def test_a_follow_up_is_answered_from_the_previous_subject(shipped: Assistant, first: str, question: str,
                                                           subject: str, doc: str | None,
                                                           facts: tuple[str, ...]) -> None:
    previous = shipped.answer(first)
    answer = shipped.answer(question, turns(first, previous.text))
    assert subject in answer.standalone_question
    assert not answer.abstained and answer.citations
    if doc:
        assert doc in {c.passage.doc_id for c in answer.citations}
    for fact in facts:
        assert fact in answer.text
