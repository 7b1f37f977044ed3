"""«En bref : 23 organisations [1]» — a short answer taken word for word from the top quote.

Only for questions that ask for a figure or a date, and only when sure: the
confidence is the top quote's probability divided by the number of figures
(or dates) it holds, and it must reach the embedder profile's bar, set on the
tuning half of PIAF (``python -m evals.piaf_units``) for a precision of 0.9.

The span is a substring of the quote, so it is checked like every quote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.lexical import analyze
from assistant.ranker import QuestionKind, RankedUnit, question_kind

_NUM = r"\d+(?:[ \u00a0\u202f]\d{3})*(?:[.,]\d+)?"
# A figure with what it counts: « 23 organisations membres », « 31 % », « 1,5 MWh », « 1,2 million de partenariats ».
_NUMBER_SPAN = re.compile(
    rf"(?:(?:plus de|moins de|près de|environ|jusqu'à|jusqu’à|de|entre)\s+)?{_NUM}"
    rf"(?:\s*(?:à|et|-|–)\s*{_NUM})?"
    r"(?:\s*(?:%|‰|€|k€|M€|°C|m2|m²|km|kWh|MWh|GWh|TWh|MW|kW|m)\b|\s*%)?"
    r"(?:\s+(?:millions?|milliards?|mille)(?:\s+d['’e]\s*)?)?"
    r"(?:\s*(?:[^\W\d_][\w’'/-]*)){0,2}",
    re.IGNORECASE,
)
_YEAR_ONLY = re.compile(r"^(?:en |de |entre )?(1[5-9]\d\d|20\d\d)$")
_MONTHS = (
    "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre|decembre"
)
_DURATION_SPAN = re.compile(
    r"(?:(?:plus de|moins de|près de|environ|jusqu'à|jusqu’à)\s+)?"
    rf"(?:{_NUM}|un|une|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|quinze|vingt|trente|quarante|cinquante|"
    r"soixante|cent)\s+(?:jours?|semaines?|mois|ans|années?|heures?|minutes?|trimestres?|semestres?|décennies?)\b",
    re.IGNORECASE,
)
_DATE_SPAN = re.compile(
    rf"\b(?:(?:le\s+)?\d{{1,2}}(?:er)?\s+(?:{_MONTHS})\s+\d{{4}}|(?:{_MONTHS})\s+\d{{4}}|"
    r"(?:de|entre)\s+(?:1[5-9]\d\d|20\d\d)\s+(?:à|et)\s+(?:1[5-9]\d\d|20\d\d)|"
    r"(?:en|depuis|dès|à partir de)\s+(?:1[5-9]\d\d|20\d\d)|\b(?:1[5-9]\d\d|20\d\d)\b)",
    re.IGNORECASE,
)
_CONNECTORS = r"(?:\s+(?:de|du|des|d['’]|la|le|l['’]|et|pour|en)\s*)"
_ENTITY_SPAN = re.compile(
    rf"\b(?:[A-ZÉÈÀÂÎÔÛÇ][\w’'&.-]*|[A-Z]{{2,}})(?:(?:\s+|{_CONNECTORS})(?:[A-ZÉÈÀÂÎÔÛÇ][\w’'&.-]*|[A-Z]{{2,}}))*"
)
_STOP_TRAIL = {"de", "du", "des", "d", "la", "le", "les", "l", "et", "en", "à", "a", "par", "pour", "sur", "au", "aux"}


@dataclass(frozen=True)
class ShortAnswer:
    text: str  # verbatim substring of the top quote
    confidence: float
    kind: QuestionKind
    candidates: int = 1  # spans of the asked kind in the top quote


def _trimmed(text: str, start: int, end: int) -> str:
    """``text[start:end]`` without trailing function words or punctuation (still a substring of ``text``)."""
    span = text[start:end].rstrip(" ,;:.")
    while (m := re.search(r"\s+(\S+)$", span)) and m.group(1).lower().strip("'’") in _STOP_TRAIL:
        span = span[:m.start()].rstrip(" ,;:.")
    return span.strip()


def _candidates(text: str, kind: QuestionKind, question: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if kind == "duration":
        spans = [m.span() for m in _DURATION_SPAN.finditer(text)]
    elif kind == "number":
        for m in _NUMBER_SPAN.finditer(text):
            if _YEAR_ONLY.match(m.group(0).strip()):
                continue  # « combien » is rarely answered by a year
            spans.append(m.span())
    elif kind == "date":
        spans = [m.span() for m in _DATE_SPAN.finditer(text)]
    elif kind == "entity":
        q_terms = set(analyze(question))
        for m in _ENTITY_SPAN.finditer(text):
            at_sentence_start = m.start() == 0 or text[:m.start()].rstrip().endswith((".", "!", "?", "•", "-", ":"))
            # A capital at a sentence start is not a name unless it is an acronym or a multi-word name.
            if at_sentence_start and not re.match(r"[A-Z]{2,}|\S+\s+[A-ZÉ]", m.group(0)):
                continue
            if set(analyze(m.group(0))) <= q_terms:
                continue  # the question's own subject is not its answer
            spans.append(m.span())
    return spans


def short_answer(question: str, ranked: Sequence[RankedUnit]) -> ShortAnswer | None:
    """The short answer and its confidence, or None when the question does not call for one."""
    kind = question_kind(question)
    # Names («qui ?») were right in fewer than 4 short answers out of 10 on PIAF's tuning half: not offered.
    if kind not in ("duration", "number", "date") or not ranked:
        return None
    top = ranked[0]
    text = top.unit.text
    spans = _candidates(text, kind, question)
    if not spans:
        return None
    q_terms = set(analyze(question))
    words = [(m.start(), set(analyze(m.group(0)))) for m in re.finditer(r"\S+", text)]

    def closeness(span: tuple[int, int]) -> float:
        # The candidate next to the question's own words answers it: « 23 organisations membres » after
        # « le collectif … réunit ».
        hits = [abs(pos - span[0]) for pos, terms in words if terms & q_terms]
        return -min(hits) if hits else -1e6

    best = max(spans, key=lambda s: (closeness(s), -s[0]))
    answer = _trimmed(text, *best)
    if not answer or (set(analyze(answer)) <= q_terms and kind not in ("number", "duration")):
        return None
    # Sure only when the quote itself is likely right and holds one such figure or date: measured on PIAF,
    # a second candidate in the quote halves the precision.
    confidence = top.score / len(spans)
    return ShortAnswer(answer, round(float(confidence), 4), kind, len(spans))
