"""Text normalisation applied to every loaded page before splitting."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# Zero-width and invisible characters that break words and exact quoting.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
# "parte-\nnariat" → "partenariat"; only when a lower-case letter continues the word,
# so that "Saint-\nÉtienne" or "2020-\n2026" keep their hyphen.
_HYPHEN_BREAK = re.compile(r"(\w)-[ \t]*\n[ \t]*([a-zàâäçéèêëîïôöùûüÿœæ])")
_SPACES = re.compile(r"[ \t\u00a0\u202f]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_DIGITS = re.compile(r"\d+")


def normalise_text(text: str) -> str:
    """NFKC (ligatures like "ﬁ" → "fi"), invisible characters removed, hyphenation rejoined.

    Non-breaking spaces become plain spaces so that quotes can be matched
    verbatim whatever typography the source used.
    """
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _line_key(line: str) -> str:
    # "page 2 / 4" and "page 3 / 4" are the same running footer; so are "Guide | 12" and "Guide 13".
    key = _DIGITS.sub("#", line.strip().lower()).replace("|", " ")
    return " ".join(key.split())


# A printed page number alone on its line: « 12 », « - 12 - », « Page 12 », « 12 / 40 », « p. 12 » (not a year).
_PAGE_NUMBER = re.compile(r"^(?:page|p\.)?\s*[-–—]?\s*\d{1,3}\s*(?:(?:/|sur)\s*\d{1,3})?\s*[-–—]?$", re.IGNORECASE)


def is_page_number(line: str) -> bool:
    return bool(_PAGE_NUMBER.match(line.strip()))


def drop_running_lines(
    pages: list[str], *, edge_lines: int = 3, min_share: float = 0.6, min_run: int = 3
) -> list[str]:
    """Remove headers, footers and printed page numbers.

    A line near the top or bottom of a page is dropped when the same line (digits aside, so that the
    page number may change) is near the edge of at least ``min_share`` of the pages — or of the odd
    pages, or of the even pages, for books whose left and right pages differ — or near the edge of
    ``min_run`` pages in a row (0: never), or when it is only a page number and is the first or last
    line of its page.

    The running line of a part (found by the run rule only: « FNCCR - Modèle de police d’abonnement »
    on the annex's pages) says which part the page belongs to: it becomes the page's heading (``## …``,
    never quoted, kept as the passages' section) instead of disappearing.
    """
    running: set[str] = set()
    part_heads: set[str] = set()
    if len(pages) >= 3:
        edge_keys = []
        for page in pages:
            lines = [ln for ln in page.split("\n") if ln.strip()]
            edge_keys.append({_line_key(ln) for ln in lines[:edge_lines] + lines[-edge_lines:]})
        # All pages, and for books whose left and right pages differ, odd and even pages apart.
        groups = [edge_keys]
        if len(pages) >= 6:
            groups += [edge_keys[0::2], edge_keys[1::2]]
        for group in groups:
            counts: Counter[str] = Counter(key for keys in group for key in keys)
            threshold = max(2 if group is edge_keys else 3, int(min_share * len(group) + 0.999))
            running |= {key for key, n in counts.items() if n >= threshold}
        if min_run:
            part_heads = _runs_of_pages(edge_keys, min_run=min_run) - running
            running |= part_heads
    offset = _page_number_offset(pages)
    cleaned = []
    for index, page in enumerate(pages):
        lines = page.split("\n")
        non_empty = [i for i, ln in enumerate(lines) if ln.strip()]
        edge_idx = set(non_empty[:edge_lines] + non_empty[-edge_lines:])
        outer = set(non_empty[:1] + non_empty[-1:])
        kept: list[str] = []
        heads: list[str] = []
        for i, ln in enumerate(lines):
            if i in edge_idx and _line_key(ln) in part_heads:
                head = _TRAILING_PAGE_NUMBER.sub("", ln).strip(" |–—-")
                if head and head not in heads:
                    heads.append(head)
                continue
            if (i in edge_idx and _line_key(ln) in running) or (i in outer and is_page_number(ln)):
                continue
            if i in outer and offset is not None:
                ln = _strip_page_number_cell(ln, index + 1 + offset)
            kept.append(ln)
        cleaned.append("\n".join([f"## {head}" for head in heads] + kept).strip())
    return cleaned


_TRAILING_PAGE_NUMBER = re.compile(r"(?:\s*[|–—-]?\s*(?:page\s*)?\d{1,3}(?:\s*/\s*\d{1,3})?)$", re.IGNORECASE)


def _runs_of_pages(edge_keys: list[set[str]], *, min_run: int) -> set[str]:
    """Edge lines repeated on ``min_run`` pages in a row: the running head of one part of the document.

    A guide that ends with an annex (« FNCCR - Modèle de police d’abonnement … » on its last three pages)
    has running lines too few for the whole-document share to catch.
    """
    found: set[str] = set()
    for start in range(len(edge_keys) - min_run + 1):
        shared = set.intersection(*edge_keys[start:start + min_run])
        # Three words at least: a lone bullet or figure at the edge of three pages is not a running head.
        found |= {key for key in shared if len(re.findall(r"[^\W\d_]{2,}", key)) >= 3}
    return found


# « Guide … juillet 2019 | 11 », « 3 | Diffusez … »: a printed page number in a cell of an edge line.
_NUMBER_CELL = re.compile(r"^(\d{1,3}) \| (.+)$|^(.+) \| (\d{1,3})$")


def _page_number_offset(pages: list[str]) -> int | None:
    """How printed page numbers (in a cell of a page's first or last line) relate to page positions
    (printed = position + offset), when at least three pages and a fifth of them agree."""
    votes: Counter[int] = Counter()
    for index, page in enumerate(pages):
        lines = [ln for ln in page.split("\n") if ln.strip()]
        seen = set()
        for ln in lines[:1] + lines[-1:]:
            match = _NUMBER_CELL.match(ln.strip())
            if match:
                seen.add(int(match.group(1) or match.group(4)) - (index + 1))
        votes.update(seen)
    if not votes:
        return None
    offset, count = votes.most_common(1)[0]
    return offset if count >= max(3, 0.2 * len(pages)) else None


def _strip_page_number_cell(line: str, printed: int) -> str:
    match = _NUMBER_CELL.match(line.strip())
    if not match:
        return line
    number = int(match.group(1) or match.group(4))
    return (match.group(2) or match.group(3)) if number == printed else line


# « F E D E R A T I ON NA T I O NA L E » : letters drawn apart, which text extraction could not rejoin.
_SHORT_TOKEN = re.compile(r"^\S{1,2}$")


def is_letter_spaced(line: str) -> bool:
    if " | " in line:
        return False  # a table row: « X | X | X » are cells
    tokens = line.split()
    if len(tokens) < 6 or sum(ch.isalpha() for ch in line) < 6:
        return False
    short = sum(1 for t in tokens if _SHORT_TOKEN.match(t))
    letters = sum(1 for t in tokens if len(t) == 1 and t.isalpha())
    return short >= 0.75 * len(tokens) and letters >= 0.4 * len(tokens)


def mark_spaced_lines(text: str) -> str:
    """Letter-spaced lines become Markdown headings: section names, never quoted as a sentence."""
    lines = text.split("\n")
    return "\n".join(
        "## " + ln.strip() if not ln.lstrip().startswith("#") and is_letter_spaced(ln) else ln for ln in lines
    )


_CONTINUES = re.compile(r"[\w,;’'«(\-–]$")
_CONTINUATION = re.compile(r"^[a-zàâäçéèêëîïôöùûüÿœæ0-9«(»%]")


def unwrap_lines(text: str) -> str:
    """Join the lines a PDF wrapped inside a paragraph ("territorial a\nquatre missions").

    A line is joined to the next when it does not end a sentence and the next one
    continues it (starts in lower case or with a figure); a list item takes its own wrapped
    lines. Headings, table rows (cells separated by « | »), lone numbers, numbered headings,
    footnotes and items of a list of figures (« 2 vidéos » / « 6 vidéos ») stay on their own lines.
    """
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if (
            out
            and line.strip()
            and out[-1].strip()
            and not out[-1].lstrip().startswith("#")
            and _CONTINUES.search(out[-1].rstrip())
            and _CONTINUATION.match(line.lstrip())
            and not _STARTS_ANEW.match(line.lstrip())
            and not _is_row_or_number(out[-1])
            and not _is_row_or_number(line)
            and not (out[-1].lstrip()[:1].isdigit() and line.lstrip()[:1].isdigit())  # « 2 vidéos » / « 6 vidéos »
        ):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


# A numbered heading (« 4.2.2 Proximité », « 2. Dépenses ») or a footnote (« (3) Insee… ») starts anew.
_STARTS_ANEW = re.compile(r"^(?:\(\d{1,3}\)\s|\d+(?:\.\d+)+\.?\s|\d{1,2}[.)]\s+[A-ZÀ-Ý])")
_NUMBER_LINE = re.compile(r"^[\d\s.,%€+\-–]+$")


def _is_row_or_number(line: str) -> bool:
    return " | " in line or bool(_NUMBER_LINE.match(line.strip()))
