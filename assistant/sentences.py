"""French sentence splitting that returns verbatim pieces of the input.

Used on passages (the extractive answer quotes whole sentences) and on generated
answers (the verifier checks them one by one, while they stream). Every sentence
is ``text[start:end]`` with only the surrounding whitespace left out, so a quote
taken from a passage is always a true substring of it.

Rules:
- a sentence ends at ``.``, ``!``, ``?``, ``…`` or ``...``, together with the
  closing quotes, parentheses and citation markers that follow it
  (« … en 2015. [1] » keeps its [1]), when the next word starts a sentence
  (capital letter, figure, opening quote or bullet);
- no end after an abbreviation (M., Mme., p., art., cf., n., etc. as listed
  below), an initial (« J. Dupont »), a list number at the start of a line
  (« 1. Le dialogue »), or inside a short quotation in « » or “ ”;
- decimals and grouped figures (« 1,2 million », « 1 000 », « 1.000 ») never
  split, since no space follows their separator;
- a line break ends a sentence (headings, list items, paragraphs: the ingestion
  already joined the lines a PDF wrapped), unless the next line plainly
  continues the previous one (starts in lower case after a line that does not
  end with punctuation).
"""

from __future__ import annotations

import re

from assistant.citations import CITATION_PATTERN

__all__ = ["sentence_spans", "split_sentences"]

# Compared in lower case, without the final period.
_ABBREVIATIONS = frozenset(
    {
        "m", "mm", "mme", "mmes", "mlle", "mlles", "dr", "pr", "me", "st", "ste", "sté", "ets", "cie", "p", "pp", "art",
        "arts", "al", "cf", "ex", "env", "vol", "chap", "fig", "éd", "ed", "coll", "n", "no", "nos", "ibid", "op",
        "cit", "loc", "réf", "ref", "av", "bd", "boul", "pl", "rte", "fg", "dép", "tél", "tel", "fax", "hab", "min",
        "max", "approx", "sq", "suiv", "ann", "obs", "vs", "resp", "éq", "eq", "janv", "févr", "fév", "avr", "juil",
        "sept", "oct", "nov", "déc", "c.-à-d", "c-à-d", "cad", "p.ex",
    }
)
_ROMAN = re.compile(r"^[IVXLC]+$")
_TERMINAL = re.compile(r"[.!?…]+")
# After the punctuation: closing quotes/brackets and citation markers stay with the sentence.
_CITATION = CITATION_PATTERN.pattern
_TAIL = re.compile(rf"(?:[\"”’')\]]|[ \t\u00a0\u202f]*(?:»|\)|{_CITATION}))*", re.IGNORECASE)
# What may open the next sentence.
_STARTER = re.compile(r"[A-ZÀ-ÖØ-Þ0-9«\"“(\-–—•*▪●◦]")
_BULLET_LINE = re.compile(r"^\s*(?:[-–—•*▪●◦]\s|\d{1,2}[.)]\s|[a-z][)]\s|#{1,6}\s)")
_WORD_BEFORE = re.compile(r"([\w.'’°-]+)$")
_LINE_END_PUNCT = re.compile(r"[.!?…:;»\])]\s*$")
_MAX_QUOTE = 600  # a longer « … » is probably unbalanced: do not let it swallow the text


def _protected(text: str) -> list[tuple[int, int]]:
    """Spans inside « … » / “ … ” (same paragraph, bounded length) where no sentence ends."""
    spans: list[tuple[int, int]] = []
    for opener, closer in (("«", "»"), ("“", "”")):
        start = text.find(opener)
        while start != -1:
            end = text.find(closer, start + 1)
            if end == -1:
                break
            inner = text[start:end]
            if end - start <= _MAX_QUOTE and "\n\n" not in inner and opener not in inner[1:]:
                spans.append((start, end))
                start = text.find(opener, end + 1)
            else:
                start = text.find(opener, start + 1)
    return spans


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the single period at ``dot`` closes an abbreviation, an initial or a list number."""
    match = _WORD_BEFORE.search(text, 0, dot)
    if not match:
        return False
    # « l'art. 3 » → « art »; « qu'ex. » → « ex ».
    word = re.split(r"['’]", match.group(1))[-1].lstrip("-")
    if not word:
        return False
    if word.lower() in _ABBREVIATIONS or word.lower().rstrip(".") in _ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: « J. Dupont »
    # « U.E. », « S.A. »: single letters separated by periods (not a URL such as « site.fr »).
    parts = word.split(".")
    if len(parts) > 1 and all(len(p) == 1 and p.isalpha() for p in parts if p):
        return True
    line_start = text.rfind("\n", 0, match.start()) + 1
    # « 1. Le dialogue » / « II. Les acteurs » at the start of a line.
    return not text[line_start:match.start()].strip() and (word.isdigit() or bool(_ROMAN.match(word)))


def _cuts(text: str) -> list[int]:
    """Positions where a sentence ends (exclusive), in order."""
    protected = _protected(text)

    def inside_quote(pos: int) -> bool:
        return any(s < pos <= e for s, e in protected)

    cuts: list[int] = []
    for m in _TERMINAL.finditer(text):
        run = m.group(0)
        if run == "." and _is_abbreviation(text, m.start()):
            continue
        tail = _TAIL.match(text, m.end())
        end = tail.end() if tail else m.end()
        rest = text[end:]
        stripped = rest.lstrip()
        if stripped and (len(stripped) == len(rest) or not _STARTER.match(stripped)):
            continue  # glued to the next word (« 1.5 », « site.fr ») or followed by lower case
        if inside_quote(end):
            continue
        cuts.append(end)

    # Line breaks.
    pos = text.find("\n")
    while pos != -1:
        before = text[:pos].rstrip(" \t")
        line_start = before.rfind("\n") + 1
        previous_line = before[line_start:]
        nxt = text[pos + 1:].lstrip(" \t")
        continues = (
            bool(previous_line.strip())
            and bool(nxt)
            and nxt[0].islower()
            and not _LINE_END_PUNCT.search(previous_line)
            and not _BULLET_LINE.match(nxt)
            and not previous_line.lstrip().startswith("#")
        )
        if not continues:
            cuts.append(pos)
        pos = text.find("\n", pos + 1)
    return sorted(set(cuts))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence: ``text[start:end]`` is the sentence without surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in [*_cuts(text), len(text)]:
        if cut <= start:
            continue
        s, e = start, cut
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        start = cut
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, each a verbatim substring (surrounding whitespace stripped)."""
    return [text[s:e] for s, e in sentence_spans(text)]
