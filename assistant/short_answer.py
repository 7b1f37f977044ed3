"""«En bref : 23 organisations [1]» — a short answer taken word for word from the top quote.

Only for questions that ask for a figure, a length of time or a date, and only when sure: the
confidence is the top quote's margin over the next one (the ranker's probabilities) divided by the
number of figures (or dates) in it that fit the question, and it must reach the embedder profile's
bar, set on the tuning half of PIAF (``python -m evals.piaf_units``) for a precision of 0.9.

The span is a substring of the quote, so it is checked like every quote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.lexical import analyze
from assistant.ranker import QuestionKind, RankedUnit, asked_units, question_kind
from assistant.text import fold

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
    rf"\b(?:(?:le\s+)?\d{{1,2}}(?:er)?\s+(?:{_MONTHS})\s+\d{{4}}|(?:(?:fin|début|mi-)\s*)?(?:{_MONTHS})\s+\d{{4}}|"
    # « les années 1640 », « au printemps 1930 », « fin 2002 »: the period as the text gives it.
    r"(?:les\s+années|(?:au\s+)?(?:printemps|été|automne|hiver)|fin|début)\s+(?:1[5-9]\d\d|20\d\d)|"
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


_SPELLED = ("deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|vingt|trente|"
            "quarante|cinquante|soixante|cent|mille")
# « sept membres », « des dizaines de milliers de personnes », « plusieurs millions »: counts written in words.
_WORD_NUMBER_SPAN = re.compile(
    rf"(?:(?:environ|près de|plus de|moins de|quelque)\s+)?"
    rf"\b(?:(?:{_SPELLED})(?:[ -](?:{_SPELLED}|et))*(?![\w-]*i[eè]me)|"
    r"(?:des|quelques|plusieurs)\s+(?:dizaines|centaines|milliers|millions|milliards)(?:\s+de\s+(?:milliers|millions))?)\b(?:\s+(?:d['’e]\s*)?[^\W\d_][\w’'-]*)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(_NUM)
_IS_YEAR = re.compile(r"^(?:1[5-9]\d\d|20\d\d)$")
_DAY_OF_MONTH = re.compile(rf"^\s*(?:er)?\s*(?:{_MONTHS})\b", re.IGNORECASE)
_MONTH_NAMES = frozenset(_MONTHS.split("|"))
_YEARS = re.compile(r"\b(?:1[5-9]\d\d|20\d\d)\b")
# « combien de matchs », « le nombre d'habitants »: the noun the question counts, which the right figure carries.
_COUNTED = re.compile(r"\b(?:combien|nombre|quantite)\s+(?:de\s+|d['’]\s*)([^\W\d_][\w-]*)", re.IGNORECASE)


def _figure(number: str) -> str:
    """« 8 408 » and « 8408 » are one figure, « 1,5 » and « 1.5 » too."""
    return re.sub(r"[ \u00a0\u202f]", "", number).replace(",", ".")


def _digits(text: str) -> set[str]:
    return {_figure(m.group(0)) for m in _NUMBER.finditer(text)}


def _not_a_count(text: str, start: int, end: int, question_figures: set[str]) -> bool:
    """The figure that starts ``text[start:end]`` is a year, a day of the month, or one the question already
    gives (« en 2013 », « le 4 juillet », « de 8 408 à 87 000 ») : it does not answer « combien ».

    A year followed by a counted plural noun (« 2000 habitants ») is a count."""
    head = _NUMBER.search(text, start, end)
    if head is None:
        return False
    figure = _figure(head.group(0))
    if figure in question_figures:
        return True
    after = text[head.end():end]
    if _DAY_OF_MONTH.match(after) and len(figure) <= 2:
        return True
    if _IS_YEAR.match(figure):
        counted = re.match(r"\s+([^\W\d_][\w’'-]*)", after)
        return not (counted and counted.group(1).islower() and counted.group(1).endswith(("s", "x"))
                    and counted.group(1).lower() not in _MONTH_NAMES)
    return bool(re.match(r"\s*[-–/]\s*\d{4}\b", text[head.end():])) and len(figure) == 4  # « 1080-1086 »


def _expected(question: str) -> tuple[set[str], tuple[re.Pattern[str], ...]]:
    """The noun a « combien » counts (as stems) and the units the question's measure is written in."""
    counted = set()
    if m := _COUNTED.search(fold(question)):  # « d’habitants » and « d'habitants »: the pattern takes both
        counted = set(analyze(m.group(1)))
    return counted, asked_units(question)


def _candidates(text: str, kind: QuestionKind, question: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    question_figures = _digits(question)
    if kind == "duration":
        spans = [m.span() for m in _DURATION_SPAN.finditer(text)]
    elif kind == "number":
        for m in _NUMBER_SPAN.finditer(text):
            if _YEAR_ONLY.match(m.group(0).strip()) or _not_a_count(text, m.start(), m.end(), question_figures):
                continue  # « combien » is rarely answered by a year or a date
            spans.append(m.span())
        taken = [range(a, b) for a, b in spans]
        spans += [m.span() for m in _WORD_NUMBER_SPAN.finditer(text)
                  if not any(m.start() in r for r in taken)]
    elif kind == "date":
        question_years = set(_YEARS.findall(question))
        for m in _DATE_SPAN.finditer(text):
            years = set(_YEARS.findall(m.group(0)))
            if years and years <= question_years:
                continue  # the question's own date (« en juin 2017, combien… ») is not its answer
            spans.append(m.span())
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
    return sorted(spans)


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

    # « Combien de points ? » is answered by « 14 points », « quelle surface ? » by « 8 km² »: the figure that
    # carries what the question counts or measures wins, and the others do not dilute the confidence.
    counted, units = _expected(question) if kind == "number" else (set(), ())

    def carries(span: tuple[int, int]) -> bool:
        piece = text[span[0]:span[1]]
        return bool(counted & set(analyze(piece))) or any(u.search(piece) for u in units)

    fitting = [s for s in spans if carries(s)]
    rivals = fitting or spans
    best = max(rivals, key=lambda s: (closeness(s), -s[0]))
    if counted:
        # « 28 pays l'autorisent » ends at what it counts: « 28 pays ».
        for m in re.finditer(r"\S+", text[best[0]:best[1]]):
            if counted & set(analyze(m.group(0))):
                best = (best[0], best[0] + m.end())
                break
    answer = _trimmed(text, *best)
    if not answer or (set(analyze(answer)) <= q_terms and kind not in ("number", "duration")):
        return None
    # Sure only when the quote itself is likely right and holds one such figure or date: measured on PIAF,
    # a second candidate in the quote halves the precision, and so does a figure that does not carry the
    # asked noun or unit.
    # The margin over the next quote, not the top score alone: two quotes the ranker can hardly tell apart
    # make any span of the first a guess. Chosen on PIAF's tuning half, where it was the more precise of the
    # two at 10, 20 and 40 shown answers, with the gold paragraph and with retrieved passages.
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    confidence = max(0.0, top.score - runner_up) / len(rivals)
    if (counted or units) and not fitting:
        confidence /= 2
    return ShortAnswer(answer, round(float(confidence), 4), kind, len(rivals))
