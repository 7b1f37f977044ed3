"""The default answer: an optional short answer, then 1–4 units quoted verbatim, each cited.

It cannot invent: every word after the lead line is a substring of a passage,
and so is the short answer («En bref : …»), a span of the first quote.

The path: passages → quotable units (:mod:`assistant.units`) → ranked by the
fitted model (:mod:`assistant.ranker`) → for a question in several parts
(« combien de X, et combien de Y ? ») the best unit of each part first → the
next best units up to three → no unit twice, not even the same words from
another document → «not covered» when the quotes hold too little of what the
question asks about → the short answer when it is sure enough.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.calibration import Calibration
from assistant.embeddings import NamedEmbeddings
from assistant.lexical import analyze
from assistant.ranker import RankedUnit, question_kind, rank, unit_has_kind
from assistant.schema import Citation, Passage
from assistant.sentences import sentence_spans
from assistant.short_answer import ShortAnswer, short_answer
from assistant.text import fold
from assistant.units import Unit, opening, quotable_units, states_absence

REFUSAL = "Je n'ai pas trouvé de réponse à cette question dans les ressources disponibles."


# « combien de X, et combien de Y ? », « qui décide …, et comment … ? »: a new question word after « et ».
_PART_SPLIT = re.compile(
    r"\s*(?:[,;]\s*(?:et|puis|mais)?|\bet|\bpuis)\s+(?=(?:combien|quel|quelle|quels|quelles|qui|quand|où|comment|"
    r"pourquoi|que|qu['’]|quoi|à quel|à quelle|en quelle|de quel|de quelle|depuis quand|est-ce|sous quel|"
    r"dans quel|dans quelle|avec quel|avec quelle|par qui|pour qui|jusqu['’]où)\b)",
    re.IGNORECASE,
)
_MIN_PART_TERMS = 1
# A piece that asks something: a question word anywhere, « est-ce », or a subject inversion (« peut-il »).
_ASKS = re.compile(
    r"\b(?:combien|quel|quelle|quels|quelles|qui|quand|où|comment|pourquoi|que|qu['’]|quoi|lequel|laquelle|"
    r"lesquels|lesquelles|est-ce)\b|\w-(?:t-)?(?:il|elle|ils|elles|on)\b|\?",
    re.IGNORECASE,
)
# Subject pronouns: the part is about the first part's subject (articles « le, la, les » are not pronouns here).
_LEANS_ON_SUBJECT = re.compile(r"\b(?:il|elle|ils|elles|ça|cela|celui-ci|celle-ci)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Selection:
    """What the extractive answer quotes, and why."""

    units: list[Unit]  # the quotes, best source first
    ranked: list[RankedUnit]  # every candidate of the whole question, best first
    short: ShortAnswer | None
    coverage: float  # rarity-weighted share of the question's terms found in the quotes
    covered: bool
    parts: list[str] = field(default_factory=list)


def question_parts(question: str) -> list[str]:
    """The sub-questions of a question in several parts; ``[question]`` when it has one part."""
    pieces = [p.strip(" ,;") for p in _PART_SPLIT.split(question) if p and p.strip(" ,;?")]
    # « Dans un immeuble de logements sociaux, qui est l'abonné ? » is one question: a piece that asks
    # nothing is the circumstance of the next one, not a part to answer on its own.
    merged: list[str] = []
    for piece in pieces:
        if merged and not _ASKS.search(merged[-1]):
            merged[-1] = f"{merged[-1]}, {piece}"
        else:
            merged.append(piece)
    parts = [p for p in merged if len(analyze(p)) >= _MIN_PART_TERMS]
    if len(parts) < 2:
        return [question]
    # A later part that leans on the first one's subject (« et comment peut-il être géré ? ») gets its terms.
    subject = " ".join(w for w in parts[0].split() if analyze(w))
    return [parts[0]] + [f"{p} ({subject})" if _LEANS_ON_SUBJECT.search(p) else p for p in parts[1:]]


def _normal_words(text: str) -> str:
    # Whitespace collapsed too: two quotes are duplicates whatever their line breaks.
    return " ".join(fold(text).split())


def _overlaps(a: Unit, b: Unit) -> bool:
    return a.passage_index == b.passage_index and a.start < b.end and b.start < a.end


_FIGURES = re.compile(r"\d+(?:[ ,.\u00a0\u202f]\d+)*")
_SAME_FACT_SHARED_TERMS = 0.5  # Jaccard of the analysed terms


def _same_fact(text: str, other: str) -> bool:
    """« L'Observatoire existe depuis 2004. » and « L'Observatoire est actif depuis 2004. »: one fact, two wordings.

    The same figures (at least one) and most of the same words: a second document saying it again adds nothing.
    """
    figures = set(_FIGURES.findall(text))
    if not figures or not figures <= set(_FIGURES.findall(other)):
        return False
    a, b = set(analyze(text)), set(analyze(other))
    return len(a & b) >= _SAME_FACT_SHARED_TERMS * len(a | b)


def _duplicate(unit: Unit, chosen: Sequence[Unit]) -> bool:
    text = _normal_words(unit.text)
    for c in chosen:
        other = _normal_words(c.text)
        if _overlaps(unit, c) or text in other or other in text:
            return True  # the same words, from this passage or from another document's copy of them
        if _same_fact(unit.text, c.text):
            return True
    return False


# How people phrase a question, not what it is about: never required in the quotes.
_QUESTION_FILLER = frozenset(analyze(
    "veut dire veulent signifie quoi existe existent encore vraiment genre truc chose choses savoir connaître "
    "trouver faut faire peut peuvent pouvez doit doivent dois voudrais voulons aimerais besoin exemple exemples "
    "aujourd'hui moment cas concrètement exactement précisément général parle parler dit disent explique "
    "expliquer koi c'est-à-dire"
))


def coverage(question: str, units: Sequence[Unit], passages: Sequence[Passage],
             term_weights: Mapping[str, float] | None = None) -> float:
    """How much of what the question is about the quotes hold, from 0 to 1.

    Half of it is the rarity-weighted share of the question's topic terms found in the quotes (or their
    titles); the other half the share of its pairs of neighbouring topic terms found together in one quote
    («élection» and «maire» each appear in a corpus for new mayors; «élection du maire» may not).
    """
    ordered = [t for t in analyze(question) if t not in _QUESTION_FILLER]
    terms = set(ordered)
    if not terms:
        return 1.0
    found: set[str] = set()
    per_unit: list[set[str]] = []
    for u in units:
        p = passages[u.passage_index]
        unit_terms = set(analyze(f"{u.text} {p.title} {p.section}"))
        per_unit.append(unit_terms)
        found |= unit_terms
    weights = term_weights or {}
    total = sum(weights.get(t, 1.0) for t in terms)
    share = sum(weights.get(t, 1.0) for t in terms & found) / total if total else 1.0
    pairs = {(a, b) for a, b in itertools.pairwise(ordered) if a != b}
    if not pairs:
        return share
    together = sum(any(a in ut and b in ut for ut in per_unit) for a, b in pairs) / len(pairs)
    return 0.5 * share + 0.5 * together


_SENTENCE_END = re.compile(r"[.!?…]\s*[»)\]\"”]*\s*$")


def _without_boilerplate(unit: Unit, passages: Sequence[Passage], boilerplate: Collection[str]) -> Unit | None:
    """The unit, or what follows its first sentence when that sentence is boilerplate (None if nothing)."""
    if opening(unit.text) not in boilerplate:
        return unit
    text = passages[unit.passage_index].text
    piece = text[unit.start:unit.end]
    spans = [(s, e) for s, e in sentence_spans(piece) if piece[s:e].strip()]
    # The boilerplate sentence may run over several lines (« … le guide original du » / « Comité 21. »):
    # what follows starts after its full stop, never inside it.
    ends = [i for i, (s, e) in enumerate(spans) if _SENTENCE_END.search(piece[s:e])]
    if not ends or ends[0] + 1 >= len(spans):
        return None
    start = unit.start + spans[ends[0] + 1][0]
    return Unit(unit.passage_index, start, unit.end, text[start:unit.end].strip())


def rank_units(
    question: str,
    passages: Sequence[Passage],
    embedder: NamedEmbeddings,
    calibration: Calibration,
    *,
    query_vector: Sequence[float] | None = None,
    units: Sequence[Unit] | None = None,
) -> list[RankedUnit]:
    """Every quotable unit of ``passages``, best first."""
    units = list(units if units is not None else quotable_units(passages))
    if not units:
        return []
    qv = np.asarray(query_vector if query_vector is not None else embedder.embed_query(question), dtype=np.float32)
    vectors = embedder.embed_passages([u.text for u in units])  # cached: ingestion embedded them
    ranked = rank(question, units, passages, vectors, qv, calibration.ranker)
    # « … ne sont pas précisées dans les sources : la liste des 350 catalyseurs » shares the question's
    # words but does not answer it when another unit states the fact: it comes after the others.
    return sorted(ranked, key=lambda r: states_absence(r.unit.text))  # stable: the model's order otherwise


def select(
    question: str,
    passages: Sequence[Passage],
    embedder: NamedEmbeddings,
    calibration: Calibration,
    *,
    max_quotes: int = 3,
    query_vector: Sequence[float] | None = None,
    term_weights: Mapping[str, float] | None = None,
    boilerplate: Collection[str] = (),
) -> Selection:
    units = quotable_units(passages)
    if boilerplate:
        # A disclaimer every fiche repeats is about the document, not an answer (kept if nothing else is left);
        # what follows it in the same unit («Elle présente…») still may be.
        cleaned = [rest for u in units if (rest := _without_boilerplate(u, passages, boilerplate)) is not None]
        units = cleaned or units
    ranked = rank_units(question, passages, embedder, calibration, query_vector=query_vector, units=units)
    if not ranked:
        return Selection([], [], None, 0.0, False)
    parts = question_parts(question)
    chosen: list[Unit] = []
    if len(parts) > 1:
        for part in parts[:max_quotes]:
            for candidate in rank_units(part, passages, embedder, calibration, units=units):
                if not _duplicate(candidate.unit, chosen):
                    chosen.append(candidate.unit)
                    break
    best = max(r.score for r in ranked)
    # Always up to max_quotes: the former cut (quotes under 0.6 × the best one dropped) lost facts — on the
    # whole golden set during development, key-fact recall 0.87 with it, 0.93 without — for some precision.
    for candidate in ranked:
        if len(chosen) >= max_quotes:
            break
        if not _duplicate(candidate.unit, chosen):
            chosen.append(candidate.unit)
    if ranked[0].unit not in chosen:
        chosen = [ranked[0].unit, *chosen][:max_quotes]
    # The best source for the whole question is cited first, whatever part it answers.
    order = {r.unit: i for i, r in enumerate(ranked)}
    chosen.sort(key=lambda u: order.get(u, len(order)))
    cov = coverage(question, chosen, passages, term_weights)
    covered = (cov >= calibration.coverage_floor or best >= calibration.confident_answer) and _holds_asked_time(
        question, chosen)
    short = short_answer(question, ranked) if len(parts) == 1 else None
    if short is not None and short.confidence < calibration.short_answer_floor:
        short = None
    return Selection(chosen, ranked, short, cov, covered, parts)


def _holds_asked_time(question: str, chosen: Sequence[Unit]) -> bool:
    """A question asking for a délai or a durée is covered only by a quote that states a length of time.

    Other kinds are not required: «Combien coûte le MOOC ?» is answered by «il est gratuit», «Qui décide… et
    comment…» by a sentence without a name; a délai has no such answer in words alone.
    """
    if question_kind(question) != "duration":
        return True
    return any(unit_has_kind(u.text, "duration") for u in chosen)


def build_extractive(
    question: str,
    passages: Sequence[Passage],
    embedder: NamedEmbeddings,
    calibration: Calibration,
    *,
    max_quotes: int = 3,
    plain_language: bool = False,
    query_vector: Sequence[float] | None = None,
    term_weights: Mapping[str, float] | None = None,
    boilerplate: Collection[str] = (),
) -> tuple[str, list[Citation], Selection]:
    """The answer text (short answer, lead line, quotes with [n]), its citations, and the selection."""
    selection = select(question, passages, embedder, calibration, max_quotes=max_quotes,
                       query_vector=query_vector, term_weights=term_weights, boilerplate=boilerplate)
    if not selection.units or not selection.covered:
        return refusal(passages), [], selection
    numbers: dict[int, int] = {}
    citations: list[Citation] = []
    lines = []
    for unit in selection.units:
        passage = passages[unit.passage_index]
        n = numbers.setdefault(unit.passage_index, len(numbers) + 1)
        citations.append(Citation(n=n, passage=passage, quote=unit.text))
        # Line breaks inside a quote come from the page layout; the words stay exactly as written.
        lines.append(f"- « {' '.join(unit.text.split())} » [{n}]")
    head = lead_line(citations, plain_language)
    if selection.short is not None:
        head = f"En bref : {' '.join(selection.short.text.split())} [1]\n\n{head}"
    return head + "\n\n" + "\n".join(lines), citations, selection


def lead_line(citations: Sequence[Citation], plain_language: bool = False) -> str:
    docs = {c.passage.doc_id for c in citations}
    first = citations[0].passage
    if len(docs) == 1:
        where = f"« {first.title} », page {first.printed_page}" if first.format == "pdf" else f"« {first.title} »"
        return f"Voici ce que dit {where} :" if plain_language else f"D'après {where} :"
    return "Voici ce que disent les ressources :" if plain_language else "D'après les ressources consultées :"


def refusal(closest: Sequence[Passage], limit: int = 3) -> str:
    """The refusal sentence, followed by the closest documents so the official knows where to look."""
    seen: dict[str, Passage] = {}
    for p in closest:
        seen.setdefault(p.doc_id, p)
    if not seen:
        return REFUSAL
    lines = [REFUSAL, "", "Les documents les plus proches de votre question :"]
    for p in list(seen.values())[:limit]:
        publisher = f" ({p.publisher})" if p.publisher else ""
        page = f", page {p.printed_page}" if p.format == "pdf" else ""
        lines.append(f"- « {p.title} »{publisher}{page}")
    return "\n".join(lines)
