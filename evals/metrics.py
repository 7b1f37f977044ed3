"""Evaluation metrics: pure functions, no I/O, no project state.

French fact matching goes through :func:`normalise`, so that a key fact such as
« 1 000 » is found in « 1000 », « 81 % » in « 81 pour cent » and « élus » in
« ELUS ». Retrieval metrics take a ranked list of items (document ids, or
``(doc, page)`` pairs) that may repeat — several passages of one document — and
a set of relevant items; relevance is binary.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from assistant.text import fold

# ---------------------------------------------------------------------------
# Normalisation for French fact matching
# ---------------------------------------------------------------------------

# Every kind of space a French text or a PDF extraction may carry between the
# digit groups of a number (plain, no-break, narrow no-break, thin, figure).
_SPACES = "\u0020\u00a0\u202f\u2009\u2007\u2002\u2003\u2004\u2005\u2006\u2008\u200a"
_APOSTROPHES = "'’‘ʼ`´"
_LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"}

_PERCENT_WORDS = re.compile(r"\bpour\s*cents?\b|\bpourcents?\b")
# A number written with space-separated thousands: « 1 000 », « 12 500 000 ».
# The first group has 1–3 digits so that « en 2015 350 catalyseurs » stays two numbers.
_GROUPED = re.compile(rf"(?<![\d,.])\d{{1,3}}(?:[{_SPACES}]\d{{3}})+(?![\d])")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")
_SCALE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(millions?|milliards?)\b")
_SCALE_FACTOR = {"million": 10**6, "millions": 10**6, "milliard": 10**9, "milliards": 10**9}
_NON_WORD = re.compile(r"[^\w%.]+")
_STRAY_DOTS = re.compile(r"(?<!\d)\.|\.(?!\d)")


def _scaled(match: re.Match[str]) -> str:
    value = float(match.group(1)) * _SCALE_FACTOR[match.group(2)]
    return str(round(value))


def normalise(text: str) -> str:
    """Canonical form for matching facts: lower case, no accents, numbers and « % » unified.

    - case and accents are dropped (« Élus » → « elus »), ligatures opened (« œ » → « oe »);
    - thousands separators vanish (« 1 000 », « 1 000 », « 1 000 » → « 1000 »);
    - the decimal comma becomes a dot (« 4,5 » → « 4.5 ») and « 1,2 million » → « 1200000 »;
    - « pour cent », « pourcent », « % » and « % » collapse to one token « % »;
    - apostrophes and punctuation become spaces; whitespace is collapsed.
    """
    for lig, repl in _LIGATURES.items():
        text = text.replace(lig, repl)
    text = unicodedata.normalize("NFKC", text)
    # Unify spaces first, before NFKD could turn some of them into something else.
    text = re.sub(f"[{_SPACES}]", " ", text)
    text = _GROUPED.sub(lambda m: re.sub(r"\D", "", m.group(0)), text)
    text = fold(text)
    for apostrophe in _APOSTROPHES:
        text = text.replace(apostrophe, " ")
    text = _PERCENT_WORDS.sub("%", text)
    text = _DECIMAL_COMMA.sub(".", text)
    text = _SCALE.sub(_scaled, text)
    text = _NON_WORD.sub(" ", text)
    text = _STRAY_DOTS.sub(" ", text)
    text = text.replace("%", " % ")
    return " ".join(text.split())


def fact_alternatives(fact: str) -> list[str]:
    """A fact may list equivalent spellings separated by « | » (« ODD|objectifs de développement durable »)."""
    return [alt.strip() for alt in fact.split("|") if alt.strip()]


def contains_fact(text: str, fact: str) -> bool:
    """True when one spelling of ``fact`` occurs in ``text`` as whole words, after normalisation."""
    haystack = f" {normalise(text)} "
    for alt in fact_alternatives(fact):
        needle = normalise(alt)
        if needle and f" {needle} " in haystack:
            return True
    return False


def found_facts(text: str, facts: Sequence[str]) -> list[str]:
    """The facts of ``facts`` present in ``text`` (same order)."""
    return [f for f in facts if contains_fact(text, f)]


def fact_recall(text: str, facts: Sequence[str]) -> float | None:
    """Share of the key facts present in ``text``; None when there is no fact to find."""
    if not facts:
        return None
    return len(found_facts(text, facts)) / len(facts)


# ---------------------------------------------------------------------------
# Retrieval metrics (binary relevance, ranked items may repeat)
# ---------------------------------------------------------------------------


def _first_ranks(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> list[int]:
    """1-based ranks, within the top ``k``, of the first occurrence of each relevant item."""
    wanted = set(relevant)
    seen: set[Hashable] = set()
    ranks = []
    for rank, item in enumerate(ranked[:k], start=1):
        if item in wanted and item not in seen:
            seen.add(item)
            ranks.append(rank)
    return ranks


def hit_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """1.0 when a relevant item is among the first ``k`` ranked items, else 0.0."""
    return 1.0 if _first_ranks(ranked, relevant, k) else 0.0


def mrr_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Reciprocal rank of the first relevant item within the first ``k`` (0.0 if none)."""
    ranks = _first_ranks(ranked, relevant, k)
    return 1.0 / ranks[0] if ranks else 0.0


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """nDCG@k with binary gains; a repeated item earns nothing after its first occurrence.

    The ideal ranking puts every relevant item first, so finding one of two
    expected documents at rank 1 scores below finding both.
    """
    wanted = set(relevant)
    if not wanted:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank in _first_ranks(ranked, wanted, k))
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


def retrieval_scores(
    ranked: Sequence[Hashable], relevant: Iterable[Hashable], ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """hit@k for every k, plus MRR@10 and nDCG@10, as one flat dict."""
    wanted = set(relevant)
    out = {f"hit@{k}": hit_at_k(ranked, wanted, k) for k in ks}
    out["mrr@10"] = mrr_at_k(ranked, wanted, 10)
    out["ndcg@10"] = ndcg_at_k(ranked, wanted, 10)
    return out


# ---------------------------------------------------------------------------
# Citations
# ---------------------------------------------------------------------------

_WS = re.compile(rf"[\s{_SPACES}]+")
_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:…|\.\.\.)\s*\]|\(\s*(?:…|\.\.\.)\s*\)|…|\.\.\.)\s*")
_QUOTE_MARKS = "«»“”\"„"


def _squash(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    for apostrophe in "’‘ʼ":
        text = text.replace(apostrophe, "'")
    return _WS.sub(" ", text).strip()


def quote_is_verbatim(quote: str, source: str) -> bool:
    """True when ``quote`` appears word for word in ``source``.

    Only whitespace and apostrophe shapes are forgiven (line breaks of a PDF
    page, no-break spaces); case, accents and words are not. An ellipsis
    (« … », « [...] ») may join pieces that must appear in that order.
    """
    pieces = [p.strip(_QUOTE_MARKS + " ") for p in _ELLIPSIS.split(_squash(quote))]
    pieces = [p for p in pieces if p]
    if not pieces:
        return False
    hay = _squash(source)
    pos = 0
    for piece in pieces:
        found = hay.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


@dataclass(frozen=True)
class CitationCheck:
    """One citation as the metrics see it: what it is asked to support and what it points to."""

    claim: str  # the answer text that carries the citation marker
    source: str  # the text of the cited passage (or of its quote)


def citation_supports(check: CitationCheck, facts: Sequence[str]) -> bool:
    """A citation is precise when the claim it supports states a key fact and its source holds it too.

    Every key fact stated by the claim must be present in the cited source;
    a citation attached to a sentence with no key fact supports nothing.
    """
    claimed = found_facts(check.claim, facts)
    return bool(claimed) and all(contains_fact(check.source, f) for f in claimed)


def citation_precision(checks: Sequence[CitationCheck], facts: Sequence[str]) -> float | None:
    """Share of citations that support a key fact present in their own source text (None without citations)."""
    if not checks:
        return None
    return sum(citation_supports(c, facts) for c in checks) / len(checks)


def citation_validity(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Share of ``(quote, source page text)`` pairs whose quote is verbatim in the page (None if empty)."""
    if not pairs:
        return None
    return sum(quote_is_verbatim(q, s) for q, s in pairs) / len(pairs)


_MARKER = re.compile(r"\[(\d+)\]")


def claims_by_marker(answer_text: str) -> dict[int, str]:
    """For each ``[n]`` of an answer, the words it vouches for, joined.

    Within a line, the words before a marker (back to the previous marker or
    the line start) belong to it: « A [1]. B [2] » gives A to [1] and B to [2].
    Words after the last marker of a line go to that marker (« [3] quoted line »).
    """
    claims: dict[int, list[str]] = {}
    for line in answer_text.splitlines():
        parts = _MARKER.split(line)  # text, n, text, n, …, text
        if len(parts) == 1:
            continue
        texts, numbers = parts[0::2], [int(n) for n in parts[1::2]]
        for i, n in enumerate(numbers):
            segment = texts[i].strip(" .,;:-–•")
            if segment:
                claims.setdefault(n, []).append(segment)
        tail = texts[-1].strip(" .,;:-–•")
        if tail:
            claims.setdefault(numbers[-1], []).append(tail)
    return {n: " ".join(parts) for n, parts in claims.items()}


# ---------------------------------------------------------------------------
# Abstention
# ---------------------------------------------------------------------------


def abstention_scores(should_abstain: Sequence[bool], abstained: Sequence[bool]) -> dict[str, float | None]:
    """Precision and recall of refusals, out-of-corpus questions being the positives.

    precision = refusals that were due / all refusals; recall = due refusals made / all due.
    None when the denominator is empty.
    """
    if len(should_abstain) != len(abstained):
        raise ValueError("should_abstain and abstained must have the same length")
    tp = sum(1 for s, a in zip(should_abstain, abstained, strict=True) if s and a)
    refused = sum(abstained)
    due = sum(should_abstain)
    return {
        "precision": tp / refused if refused else None,
        "recall": tp / due if due else None,
        "false_refusals": float(refused - tp),
        "missed_refusals": float(due - tp),
    }


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100), linear interpolation between closest ranks (as numpy's default)."""
    if not 0 <= q <= 100:
        raise ValueError("q must lie between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


# ---------------------------------------------------------------------------
# Facts quoted from the expected pages, refusals as counts
# ---------------------------------------------------------------------------


def fact_on_expected_page(
    found: Sequence[str],
    citations: Iterable[tuple[Hashable, str]],
    expected_pages: Iterable[Hashable],
) -> bool | None:
    """Whether a fact the answer states is backed by a quote taken from an expected page.

    ``found`` are the facts present in the answer, ``citations`` its ``(page key, quote)`` pairs (a page key
    being ``(doc, page)``). True when one found fact lies (normalised) inside the quote of a citation whose
    page is expected; None when the answer states no fact (the question is then not counted).
    """
    if not found:
        return None
    wanted = set(expected_pages)
    quotes = [quote for page, quote in citations if page in wanted]
    return any(contains_fact(quote, fact) for fact in found for quote in quotes)


def refusal_counts(should_abstain: Sequence[bool], abstained: Sequence[bool]) -> dict[str, int]:
    """Refusals as counts: « n of m out-of-corpus questions refused », « k of a answerable ones refused »."""
    if len(should_abstain) != len(abstained):
        raise ValueError("should_abstain and abstained must have the same length")
    pairs = list(zip(should_abstain, abstained, strict=True))
    return {
        "out_of_corpus": sum(1 for s, _ in pairs if s),
        "out_of_corpus_refused": sum(1 for s, a in pairs if s and a),
        "answerable": sum(1 for s, _ in pairs if not s),
        "answerable_refused": sum(1 for s, a in pairs if not s and a),
    }


# ---------------------------------------------------------------------------
# Thresholds with a margin counted in questions
# ---------------------------------------------------------------------------


def floor_to(value: float, digits: int = 2) -> float:
    """Round down to ``digits`` decimals (0.7567 → 0.75), immune to binary noise (0.4 stays 0.4)."""
    scale = 10**digits
    return math.floor(round(value * scale, 6)) / scale


def ceil_to(value: float, digits: int = 2) -> float:
    """Round up to ``digits`` decimals (0.0811 → 0.09)."""
    scale = 10**digits
    return math.ceil(round(value * scale, 6)) / scale


def rate_bound(measured: float, n: int, kind: str, units: int = 2) -> float:
    """Threshold for a rate measured over ``n`` items, ``units`` items away from the measure.

    One item moves a per-item rate by at most 1/n, so ``measured − units/n`` (a minimum) or
    ``measured + units/n`` (a maximum) leaves room for ``units`` items; the bound is rounded
    outward to 2 decimals and kept within [0, 1].
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if kind == "min":
        return max(0.0, floor_to(measured - units / n))
    if kind == "max":
        return min(1.0, ceil_to(measured + units / n))
    raise ValueError("kind must be 'min' or 'max'")


def margin_in_items(value: float, bound: float, n: int, kind: str) -> float:
    """How many items of ``n`` may still go wrong before a rate crosses its bound (negative when past it)."""
    gap = value - bound if kind == "min" else bound - value
    return gap * n
