"""Which quotable unit answers the question: features, a fitted linear model, a ranking.

Each candidate unit gets a few features that say why it may answer:
- its cosine with the question (sentence vectors are computed at ingestion),
  raw and relative to the best candidate;
- how many of the question's terms it contains, plain and weighted by rarity
  among the candidates;
- whether it has what the question asks for (``combien`` → a figure with its
  unit, ``quand`` → a date, ``qui`` → an organisation or a person, ``où`` → a
  place or a link, « qu'est-ce que » → « X est / désigne / signifie »);
- whether it holds the word the question asks about: « partenaires » in « avec quels
  partenaires le Comité 21 a-t-il fait son guide ? », « organise » in « qui organise le
  MOOC ? » (dense similarity favours the sentences that name the subject instead);
- whether it says anything beyond the question's own words (a generic sentence
  that only names the subject is not an answer);
- the rank and score of the passage it comes from, and whether the question
  names that passage's document or section.

The weights are a logistic regression fitted on the tuning half of PIAF's
answer spans (``python -m evals.fit_ranker``) and shipped in the embedder's
calibration profile (:mod:`assistant.calibration`); the held-out half judges it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from assistant.lexical import analyze
from assistant.schema import Passage
from assistant.text import fold
from assistant.units import Unit

QuestionKind = Literal["duration", "number", "date", "entity", "link", "place", "definition", "other"]

FEATURES = (
    "dense",
    "dense_gap",
    "overlap",
    "overlap_idf",
    "title_overlap",
    "kind_match",
    "kind_miss",
    "novelty",
    "generic",
    "passage_prior",
    "passage_score",
    "log_words",
    "fragment",
    "dense_rank",
    "overlap_rank",
    "overlap_gap",
    "defines_subject",
    "focus",
)


def _fold(text: str) -> str:
    # The typographic apostrophe becomes the plain one: the patterns below are written with « ' » only.
    return fold(text).replace("’", "'")


# --------------------------------------------------------------------------- question kinds

# « qui » that asks (« Qui organise… ? », « par qui ? », « et c'est qui ? »), not the relative pronoun of
# « le MOOC Les alliances qui changent les territoires ».
_ASKING_QUI = (r"(?:^\s*(?:et |mais |alors |donc |bon )?|[,;:(]\s*|\b(?:par|a|aupres de|avec|de|pour|chez|selon|"
               r"envers|contre|sur|c'est|est-ce) )(?:qu'est-ce )?qui\b|\bqui\s*\?")

_KIND_PATTERNS: tuple[tuple[QuestionKind, re.Pattern[str]], ...] = (
    # A délai or a durée is answered by a length of time («dix ans», «5 jours»), not by any figure or date:
    # «le permis déposé avant le 31 décembre 2019» does not say how long an instruction takes.
    ("duration", re.compile(
        r"\b(combien de (?:temps|jours|semaines|mois|annees|ans|heures)|"
        r"quel(?:le)?s? (?:est |sont |etait )?(?:le |la |les )?(?:duree|delai)s?\b|"
        r"pendant combien|en combien de temps|au bout de combien)")),
    ("date", re.compile(
        r"\b(quand|en quelle annee|a quelle date|quelle date|quelle est la date|la date limite|"
        r"depuis quand|jusqu'a quand|quelle annee|"
        r"en quel siecle|quel siecle|a quelle epoque|de quand date)\b")),
    ("number", re.compile(
        r"\b(combien|quel(?:le)?s? (?:est |sont |etait )?(?:le |la |les )?(?:nombre|pourcentage|part|proportion|"
        r"montant|taux|cout|prix|budget|duree|delai|distance|surface|superficie|population|taille|somme|age|"
        r"hauteur|longueur|seuil|frais|tarif|chiffre|quantite|consommation|puissance|niveau|volume|facteur|"
        r"majorite)(?:s|x)?\b|a combien|quelle (?:est la )?valeur|"
        # « y a des chiffres ? », « des statistiques sur … ? »: the question asks for figures in general.
        r"(?:des|les|quels|quelles|un|une|le|la) (?:chiffres?|statistiques?|donnees chiffrees|pourcentages?))\b")),
    # « Où trouver le kit ? » asks for a link, not a place: a sentence naming a town does not answer it.
    ("link", re.compile(
        r"\b(ou (?:le |la |les |l')?(?:trouver|consulter|telecharger|lire|voir|regarder|visionner|acceder|obtenir|"
        r"retrouver|suivre|se procurer|s'inscrire|se renseigner|s'informer|commander)|"
        r"(?:sur )?quel site|quelle adresse|quel lien|le lien|l'adresse (?:web|internet|du site))")),
    ("place", re.compile(r"\b(ou (?!est-ce)|d'ou|dans quelle ville|dans quel pays|quelle ville|quel pays|"
                         r"quelle region|a quel endroit|quel lieu)")),
    ("entity", re.compile(
        _ASKING_QUI + r"|\bquel(?:le)?s? (?:est|etait|sont|etaient) (?:le |les )?noms?\b"
        r"|\b(quel(?:le)?s? (?:est |sont )?(?:l'|le |la |les )?"
        r"(?:organisme|organisation|entreprise|societe|association|institut|bureau|structure|acteur|operateur|partenaire|financeur|"
        r"ministere|autorite|collectivite|personne|auteur|editeur|etablissement|federation|reseau)(?:s|x)?)\b")),
    ("definition", re.compile(
        r"(qu'est-ce qu|c'est quoi|que (?:veut dire|signifie|designe|sont|represente)|que veulent dire|"
        r"qu'appelle-t-on|qu'entend-on|a quoi correspond|definition|definir|que recouvre|que couvre|"
        r"qu'est ce qu|signification)")),
)


def question_kind(question: str) -> QuestionKind:
    """What the question asks for, from its wording (French question words)."""
    folded = _fold(question)
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(folded):
            return kind
    return "other"


_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_MONTHS = re.compile(
    r"\b(janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre)\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
)
_SIECLE = re.compile(r"\b([ivxlc]+e|\d+e|[ivxlc]+eme)\s+siecle\b")
_QUANTITY = re.compile(r"\d")
_NON_YEAR_NUMBER = re.compile(r"(?<![\d,.])(?!(?:1[5-9]\d\d|20\d\d)\b)\d+(?:[ \u00a0\u202f]\d{3})*(?:[.,]\d+)?")
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-ZÉÈÀÂÎÔÛÇ][\w’'-]+|\b[A-Z]{2,}\b")
_PLACE = re.compile(r"https?://|www\.|\.fr\b|\.org\b|\.com\b|\b(?:à|en|au|aux|dans|sur)\s+[A-ZÉ][\w’'-]+|\ben ligne\b|"
                    r"\bsite\b|\bplateforme\b|\badresse\b", re.IGNORECASE)
_DEFINES = re.compile(
    r"\b(est|sont|désigne|désignent|signifie|signifient|correspond|correspondent|consiste|représente|"
    r"se définit|c'est|c’est|qualifie|regroupe|recouvre|couvre|comprend|permet|sert|vise)\b|[:=—–]\s",
    re.IGNORECASE,
)


# What a definition question asks about: « Que sont les DJU qu'on utilise… » → « DJU ».
_DEFINED = re.compile(
    r"(?:qu'est-ce qu(?:e|') ?(?:c'est qu(?:e|') ?)?|c'est quoi|que (?:veut dire|veulent dire|signifie|signifient|"
    r"designe|designent|sont|represente|recouvre|couvre)|qu'appelle-t-on|qu'entend-on par|a quoi correspond(?:ent)?|"
    r"definition d(?:e|u|es|')|definir)\s*(?:(?:les|le|la|une|un|des|du|de)\s+|l'|d')?"
    r"(?:(?:terme|mot|sigle|acronyme|notion|expression|mention)\s+(?:de\s+|d')?)?"
    r"(?P<subject>[^?,;]+?)\s*(?:\?|$|,|;| qu'| que | dans | pour | sur | en | et )"
)


# The word after the question word is what the answer must talk about: « quels partenaires », « combien de
# catalyseurs », « qui organise ». Words that any answer could do without are not a focus.
_FOCUS = re.compile(
    r"\b(?:(?:quel(?:le)?s?|lesquel(?:le)?s|combien)\s+(?:d'|de\s+|des\s+)?(?:(?:est|sont|etait|etaient)\s+)?"
    r"(?:(?:le|la|les|l'|un|une|des|du|de)\s*)?)(?P<focus>[a-z][\w-]{2,})"
    r"|(?:" + _ASKING_QUI + r")\s+(?:(?:le|la|les|l'|y|en|se|s'|nous|vous)\s*)?(?P<verb>[a-z][\w-]{2,})"
)
_NOT_FOCUS = frozenset(
    "nom noms annee annees date dates type types genre sorte sortes chose choses moment jour jours mois siecle epoque "
    "facon maniere fois est sont etait a ont peut peuvent doit doivent fait font va vont sera seront serait etaient "
    "avait avaient".split()
)


def focus_terms(question: str) -> frozenset[str]:
    """The analysed terms the question asks about (see :data:`_FOCUS`); empty when it names none."""
    found = (m.group("focus") or m.group("verb") for m in _FOCUS.finditer(_fold(question)))
    words = [w for w in found if w and w not in _NOT_FOCUS]
    return frozenset(analyze(" ".join(words))) if words else frozenset()


def defined_subject(question: str) -> str:
    """The term a definition question asks about (folded), or ""."""
    match = _DEFINED.search(_fold(question))
    return match.group("subject").strip(" «»\"'") if match else ""


def defines_subject(text: str, subject: str) -> bool:
    """The unit defines ``subject``: « X est / désigne… », « X : … », « … (X) », « Xxx Yyy (X), … »."""
    if not subject:
        return False
    folded = _fold(" ".join(text.split())).lstrip("•-–*· ")
    term = re.escape(subject)
    return bool(
        re.match(rf"{term}\b\s*(?:\([^)]*\)\s*)?(?:[:=—–-]|,? ?(?:est|sont|designe|designent|signifie|correspond|"
                 rf"consiste|represente|se definit|c'est|qualifie|regroupe|recouvre|couvre|comprend)\b)", folded)
        or re.search(rf"\(\s*{term}\s*\)", folded)
        or re.match(rf"(?:le|la|les|l'|un|une)\s+{term}\b[^.;:]{{0,60}}\b(?:est|sont|designe|signifie|correspond)\b",
                    folded)
    )


_TOKEN = re.compile(r"\w[\w-]*")


@functools.lru_cache(maxsize=256)
def _question_words(question: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(_fold(question)))


_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(?:fr|org|com|eu|net|info)\b", re.IGNORECASE)


_DURATION = re.compile(
    r"\b(?:\d+(?:[,.]\d+)?|un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|quinze|vingt|trente|"
    r"quarante|cinquante|soixante|cent|quelques|plusieurs)\s+(?:jours?|semaines?|mois|ans|annees?|heures?|"
    r"minutes?|trimestres?|semestres?|decennies?|siecles?)\b"
)


# What the figure asked for is measured in: « quelle surface » wants km², « quel pourcentage » a %.
_UNIT_OF_QUESTION: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (re.compile(q), re.compile(u, re.IGNORECASE)) for q, u in (
        (r"\b(?:pourcentage|proportion|part|taux)\b", r"%|\bpour ?cent\b|\b(?:moitié|tiers|quart)\b"),
        (r"\b(?:prix|cout|coute|montant|budget|somme|salaire|paye|frais|tarif|financement)\b",
         r"€|\b(?:k€|M€|euros?|dollars?|yens?|francs?|livres?)\b|\$|£"),
        (r"\b(?:surface|superficie)\b", r"\b(?:km2|m2|hectares?|ha|ares?)\b|km²|m²"),
        (r"\b(?:distance|longueur|hauteur|altitude|profondeur|largeur)\b",
         r"\b(?:km|m|cm|mm|metres?|mètres?|kilometres?|kilomètres?)\b"),
        (r"\b(?:poids|pese|peser)\b", r"\b(?:kg|g|t|tonnes?|kilos?|kilogrammes?|grammes?)\b"),
        (r"\b(?:age)\b", r"\bans\b"),
        (r"\b(?:puissance|consommation|energie)\b", r"\b(?:W|kW|MW|GW|kWh|MWh|GWh|TWh)\b"),
    )
)


@functools.lru_cache(maxsize=256)  # asked once per candidate unit of the same question
def asked_units(question: str) -> tuple[re.Pattern[str], ...]:
    """The units the figure a question asks for is written in (« quelle surface ? » → m², ha…); () if any."""
    folded = _fold(question)
    return tuple(unit for asks, unit in _UNIT_OF_QUESTION if asks.search(folded))


def unit_has_kind(text: str, kind: QuestionKind, question: str = "") -> bool:
    """Whether the unit holds the kind of thing the question asks for.

    For « qui ? » the name must be one the question does not already say: « Le Comité 21 a publié
    un guide » does not answer « avec quels partenaires le Comité 21 a-t-il fait son guide ? ».
    """
    if kind == "duration":
        return bool(_DURATION.search(_fold(text)))
    if kind == "number":
        if not (_NON_YEAR_NUMBER.search(text) or "%" in text):
            return False
        # « Quelle surface ? » is not answered by « l'article 4.2 »: the figure must be in the asked unit.
        units = asked_units(question)
        return not units or any(u.search(text) for u in units)
    if kind == "date":
        folded = _fold(text)
        return bool(_YEAR.search(text) or _MONTHS.search(folded) or _SIECLE.search(folded))
    if kind == "entity":
        asked = _question_words(question)
        return any(not set(_TOKEN.findall(_fold(m.group(0)))) <= asked for m in _PROPER.finditer(text))
    if kind == "link":
        return bool(_LINK.search(text))
    if kind == "place":
        return bool(_PLACE.search(text))
    if kind == "definition":
        return bool(_DEFINES.search(text))
    return False


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class RankedUnit:
    unit: Unit
    score: float  # the model's probability that the unit holds the answer
    features: tuple[float, ...]


def unit_features(
    question: str,
    units: Sequence[Unit],
    passages: Sequence[Passage],
    unit_vectors: np.ndarray,
    query_vector: np.ndarray,
) -> np.ndarray:
    """(n_units, len(FEATURES)) matrix, in the order of :data:`FEATURES`."""
    n = len(units)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return out
    dense = unit_vectors @ query_vector if len(unit_vectors) else np.zeros(n)
    best_dense = float(dense.max())
    q_terms = set(analyze(question))
    unit_terms = [set(analyze(u.text)) for u in units]
    # Rarity among the candidates: a term every unit shares says little about which one answers.
    df: dict[str, int] = {}
    for terms in unit_terms:
        for t in terms & q_terms:
            df[t] = df.get(t, 0) + 1
    idf = {t: math.log(1 + n / (1 + df.get(t, 0))) for t in q_terms}
    idf_total = sum(idf.values()) or 1.0
    kind = question_kind(question)
    best_score = max((p.score for p in passages), default=0.0) or 1.0
    title_terms = [set(analyze(f"{p.title} {p.section}")) for p in passages]
    subject = defined_subject(question) if kind == "definition" else ""
    focus = focus_terms(question)
    for i, unit in enumerate(units):
        terms = unit_terms[i]
        shared = terms & q_terms
        new = terms - q_terms
        overlap = len(shared) / len(q_terms) if q_terms else 0.0
        novelty = min(1.0, len(new) / 8.0)
        passage = passages[unit.passage_index]
        has_kind = unit_has_kind(unit.text, kind, question)
        words = len(unit.text.split())
        out[i] = (
            float(dense[i]),
            float(dense[i]) - best_dense,
            overlap,
            sum(idf[t] for t in shared) / idf_total,
            len(title_terms[unit.passage_index] & q_terms) / len(q_terms) if q_terms else 0.0,
            float(kind != "other" and has_kind),
            float(kind != "other" and not has_kind),
            novelty,
            float(overlap > 0 and len(new) <= 2),
            1.0 / (1 + unit.passage_index),
            passage.score / best_score if best_score > 0 else 0.0,
            math.log1p(words),
            float(not re.search(r"[.!?…:;»)\]]\s*$", unit.text)),
            0.0,
            0.0,
            0.0,
            float(defines_subject(unit.text, subject)),
            float(bool(focus & terms)),
        )
    # Where each unit stands among the candidates: a pointwise model then sees the whole list.
    dense_col, idf_col = FEATURES.index("dense"), FEATURES.index("overlap_idf")
    out[:, FEATURES.index("dense_rank")] = 1.0 / (1 + _ranks(out[:, dense_col]))
    out[:, FEATURES.index("overlap_rank")] = 1.0 / (1 + _ranks(out[:, idf_col]))
    out[:, FEATURES.index("overlap_gap")] = out[:, idf_col] - out[:, idf_col].max()
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the largest value; ties share the better rank, so the order of candidates never matters."""
    return np.array([int((values > v).sum()) for v in values], dtype=np.float64)


@dataclass(frozen=True)
class RankerWeights:
    """A logistic model over :data:`FEATURES` (a profile fitted on other features is refused when loaded)."""

    names: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float


    def probabilities(self, features: np.ndarray) -> np.ndarray:
        z = features @ np.asarray(self.coef, dtype=np.float64) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


def rank(
    question: str,
    units: Sequence[Unit],
    passages: Sequence[Passage],
    unit_vectors: np.ndarray,
    query_vector: np.ndarray,
    weights: RankerWeights,
) -> list[RankedUnit]:
    """Units best first; ties broken by passage rank then position, so the order never depends on chance."""
    features = unit_features(question, units, passages, unit_vectors, query_vector)
    probs = weights.probabilities(features) if len(units) else np.zeros(0)
    order = sorted(range(len(units)), key=lambda i: (-round(float(probs[i]), 9), units[i].passage_index,
                                                     units[i].start))
    return [RankedUnit(units[i], float(probs[i]), tuple(float(x) for x in features[i])) for i in order]
