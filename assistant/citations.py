"""What a sentence cites, which figures it states and what it quotes.

The verifier (:mod:`assistant.verify`) compares these between a generated
sentence and the passages it cites, so each function here turns the many ways
French writes the same thing into one comparable form:

- citation markers: ``[1]``, ``[1][2]``, ``[1, 3]``, ``[1-2]``, ``[passage 1]``;
- figures: « 81 % », « 81% », « 81 pour cent » → ``81 %``; « 1 000 », « 1000 »,
  « 1 000 » (narrow no-break space), « 1.000 » → ``1000``; « 1,2 million » →
  ``1,2 million`` and ``1200000``; « 1 000 euros », « 1 000 € » → ``1000 €``;
  « 17e », « 17ème » → ``17e``; « 15 septembre 2015 », « 15/09/2015 » →
  ``2015-09-15``; small numbers written in words (« quatre ») → ``4``;
- quotations in « … », “ … ” or "…";
- text normalised for verbatim comparison (spaces, apostrophes, dashes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "CITATION_PATTERN",
    "Figure",
    "cited_numbers",
    "figures_in",
    "normalise_for_match",
    "numbers_in",
    "quotes_in",
    "rewrite_citations",
    "strip_citations",
]

# -- citation markers -------------------------------------------------------------------------

CITATION_PATTERN = re.compile(
    r"\[\s*(?:(?:source|passage|doc(?:ument)?|extrait|réf(?:érence)?)s?\s*(?:n°\s*)?)?"
    r"(\d{1,3}(?:\s*(?:[,;–-]|et)\s*\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
_MAX_RANGE = 20  # «[1-999]» is not a list of 999 sources


def _group_numbers(inner: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,;]|\bet\b)\s*", inner):
        bounds = [int(x) for x in re.split(r"\s*[–-]\s*", part.strip()) if x.strip().isdigit()]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= _MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds)
    return numbers


def cited_numbers(sentence: str) -> list[int]:
    """The source numbers cited in ``sentence``, in order of first appearance, without repeats."""
    seen: dict[int, None] = {}
    for m in CITATION_PATTERN.finditer(sentence):
        for n in _group_numbers(m.group(1)):
            seen.setdefault(n, None)
    return list(seen)


def strip_citations(text: str) -> str:
    """``text`` without its citation markers (same length: markers become spaces, so offsets hold)."""
    return CITATION_PATTERN.sub(lambda m: " " * len(m.group(0)), text)


def rewrite_citations(sentence: str, keep: Collection[int]) -> str:
    """Markers rewritten as ``[1][3]`` with only the numbers in ``keep``; an emptied marker disappears."""

    def repl(m: re.Match[str]) -> str:
        numbers = [n for n in dict.fromkeys(_group_numbers(m.group(1))) if n in keep]
        return "".join(f"[{n}]" for n in numbers)

    out = CITATION_PATTERN.sub(repl, sentence)
    out = re.sub(r"[ \t\u00a0\u202f]+([.!?…,;:)]|$)", r"\1", out)  # the space left before a removed marker
    return re.sub(r"[ \t]{2,}", " ", out).strip()


# -- normalisation for verbatim comparison ------------------------------------------------------

_APOSTROPHES = str.maketrans({c: "'" for c in "’‘ʼ`´′"})
_DOUBLE_QUOTES = str.maketrans({c: '"' for c in "“”„‟″"})
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—−"})
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_WHITESPACE = re.compile(r"\s+")


def normalise_for_match(text: str) -> str:
    """Spaces (incl. no-break), apostrophes, double quotes, dashes and ligatures unified; case kept."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = text.translate(_APOSTROPHES).translate(_DOUBLE_QUOTES).translate(_DASHES)
    return _WHITESPACE.sub(" ", text).strip()


# -- quotations -------------------------------------------------------------------------------

_QUOTES = re.compile(r"«([^«»]*)»|“([^“”]*)”|\"([^\"\n]*)\"")


def quotes_in(text: str) -> list[str]:
    """The texts quoted in « … », “ … ” or "…" (inner spaces stripped, empty ones left out)."""
    out = []
    for m in _QUOTES.finditer(text):
        inner = next(g for g in m.groups() if g is not None).strip()
        if inner:
            out.append(inner)
    return out


# -- figures ----------------------------------------------------------------------------------

_SP = "[ \u00a0\u202f\u2009\u2007]"  # the spaces French uses inside and after figures
_MONTHS = {
    "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fév": 2, "fevr": 2, "mars": 3,
    "avril": 4, "avr": 4, "mai": 5, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8,
    "septembre": 9, "sept": 9, "octobre": 10, "oct": 10, "novembre": 11, "nov": 11,
    "décembre": 12, "decembre": 12, "déc": 12, "dec": 12,
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_TEXT_DATE = re.compile(
    rf"(?<![\w])(?:(?P<day>1er|\d{{1,2}}){_SP}+)?(?P<month>{_MONTH_RE})\.?(?:{_SP}+(?P<year>\d{{4}}))?(?![\w])",
    re.IGNORECASE,
)
_NUMERIC_DATE = re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?![\w/.-])")

_WORD_VALUES = {
    "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8, "neuf": 9, "dix": 10,
    "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20,
    "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
}
_TENS = ("dix", "vingt", "trente", "quarante", "cinquante", "soixante")
_UNIT_WORDS = ("un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf")
_NUMBER_WORD = (
    rf"(?:(?:{'|'.join(_TENS)})(?:-et-un|{_SP}+et{_SP}+un|-(?:{'|'.join(_UNIT_WORDS)}))"
    rf"|{'|'.join(sorted(_WORD_VALUES, key=len, reverse=True))})"
)
_FIGURE = re.compile(
    rf"(?<![\w,.])(?:"
    rf"(?P<num>\d{{1,3}}(?:{_SP}\d{{3}})+(?!\d)|\d{{1,3}}(?:\.\d{{3}})+(?![\d,]|\.\d)|\d+)"
    rf"(?:[,.](?P<dec>\d+))?"
    rf"|(?P<word>{_NUMBER_WORD})(?![\w-])"
    rf")"
    rf"(?:(?P<ord>er|re|ère|ème|eme|e|ᵉʳ|ᵉ)(?![\w])"
    rf"|(?P<pct>{_SP}?%|{_SP}+pour{_SP}?cent\b)"
    rf"|(?P<kilo>{_SP}?k€)"
    rf"|(?:{_SP}+(?P<scale>millions?|milliards?|mds?|mrds?|md)\b|{_SP}?(?P<short>M|Mds?|Mrds?)(?=€|{_SP}€))"
    rf"(?P<scaled_cur>{_SP}*€|{_SP}+d['’]{_SP}*euros?\b|{_SP}+de{_SP}+euros?\b|{_SP}+EUR\b)?"
    rf"|(?P<cur>{_SP}?€|{_SP}+euros?\b|{_SP}+EUR\b)"
    rf")?"
    rf"(?![^\W_])",
    re.IGNORECASE,
)
_SCALES = {"million": Decimal(10**6), "milliard": Decimal(10**9), "mille": Decimal(1000)}


@dataclass(frozen=True)
class Figure:
    """One figure found in a text: its words as written and its comparable keys.

    ``keys`` carry the unit (``1000 €``, ``81 %``, ``1,2 million``); ``bare`` the plain
    values (``1000``, ``81``). A generated figure is supported when one of its keys is
    a key or a bare value of the source: « 1 000 » is backed by « 1 000 euros », but
    « 1 000 euros » is not backed by « 1 000 habitants ».
    """

    text: str
    keys: frozenset[str]
    bare: frozenset[str]


def _fmt(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value.normalize(), "f")
    return text.replace(".", ",")


def _word_value(word: str) -> int:
    w = re.sub(rf"{_SP}+", " ", word.lower())
    w = w.replace(" et un", "-et-un")
    if w in _WORD_VALUES:
        return _WORD_VALUES[w]
    tens, _, unit = w.partition("-")
    base = _WORD_VALUES[tens]
    if unit == "et-un":
        return base + 1
    return base + (1 if unit == "un" else _WORD_VALUES[unit])


def _date_figure(text: str, day: int | None, month: int, year: int | None) -> Figure | None:
    if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
        return None
    bare = set()
    if year is not None:
        bare.add(str(year))
    if day is not None:
        bare.add(str(day))
    if year is not None and day is not None:
        key = f"{year:04d}-{month:02d}-{day:02d}"
        bare.add(f"{year:04d}-{month:02d}")
    elif year is not None:
        key = f"{year:04d}-{month:02d}"
    elif day is not None:
        key = f"{day}/{month:02d}"
    else:
        return None  # a month name alone is not a figure
    return Figure(text, frozenset({key}), frozenset(bare | {key}))


def figures_in(text: str) -> list[Figure]:
    """Every figure in ``text`` (citation markers ignored), in order."""
    text = strip_citations(text)
    figures: list[tuple[int, Figure]] = []
    taken = [False] * len(text)

    def take(start: int, end: int) -> None:
        for i in range(start, end):
            taken[i] = True

    for m in _NUMERIC_DATE.finditer(text):
        fig = _date_figure(m.group(0), int(m.group(1)), int(m.group(3)), int(m.group(4)))
        if fig:
            figures.append((m.start(), fig))
            take(m.start(), m.end())
    for m in _TEXT_DATE.finditer(text):
        if any(taken[m.start():m.end()]) or not (m.group("day") or m.group("year")):
            continue
        if m.group("month").lower() in {"mars", "mai"} and not m.group("day"):
            continue  # « mars 2020 » is a date, but keep « mai » / « mars » alone out of the way
        day_text = m.group("day")
        day = (1 if day_text.lower() == "1er" else int(day_text)) if day_text else None
        year = int(m.group("year")) if m.group("year") else None
        fig = _date_figure(m.group(0), day, _MONTHS[m.group("month").lower()], year)
        if fig:
            figures.append((m.start(), fig))
            take(m.start(), m.end())

    for m in _FIGURE.finditer(text):
        if any(taken[m.start():m.end()]):
            continue
        fig = _figure_from_match(m)
        if fig:
            figures.append((m.start(), fig))
    return [f for _, f in sorted(figures, key=lambda item: item[0])]


def _figure_from_match(m: re.Match[str]) -> Figure | None:
    try:
        if m.group("word"):
            value = Decimal(_word_value(m.group("word")))
        else:
            digits = re.sub(rf"{_SP}|\.", "", m.group("num"))
            value = Decimal(f"{digits}.{m.group('dec')}" if m.group("dec") else digits)
    except (InvalidOperation, KeyError, ValueError):
        return None
    plain = _fmt(value)
    if m.group("ord"):
        key = "1er" if value == 1 else f"{plain}e"
        return Figure(m.group(0), frozenset({key}), frozenset({key}))
    if m.group("pct"):
        key = f"{plain} %"
        return Figure(m.group(0), frozenset({key}), frozenset({key, plain}))
    unit = ""
    scale_word = ""
    if m.group("kilo"):
        scale_word, unit = "mille", " €"
    elif m.group("scale") or m.group("short"):
        raw = (m.group("scale") or m.group("short")).lower()
        scale_word = "million" if raw in {"million", "millions", "m"} else "milliard"
        unit = " €" if m.group("scaled_cur") or m.group("short") else ""
    elif m.group("cur"):
        unit = " €"
    if scale_word:
        full = _fmt(value * _SCALES[scale_word])
        keys = {f"{plain} {scale_word}{unit}", f"{full}{unit}"}
        return Figure(m.group(0), frozenset(keys), frozenset(keys | {plain, full}))
    key = f"{plain}{unit}"
    return Figure(m.group(0), frozenset({key}), frozenset({key, plain}))


def numbers_in(text: str) -> set[str]:
    """The normalised keys of every figure in ``text`` (amounts, percentages, dates, years, ordinals)."""
    keys: set[str] = set()
    for fig in figures_in(text):
        keys |= fig.keys
    return keys
