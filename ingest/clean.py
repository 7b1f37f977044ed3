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
    # "page 2 / 4" and "page 3 / 4" are the same running footer.
    return _DIGITS.sub("#", line.strip().lower())


def drop_running_lines(pages: list[str], *, edge_lines: int = 3, min_share: float = 0.6) -> list[str]:
    """Remove headers/footers: lines near the top or bottom repeated on most pages."""
    if len(pages) < 3:
        return pages
    counts: Counter[str] = Counter()
    for page in pages:
        lines = [ln for ln in page.split("\n") if ln.strip()]
        edges = lines[:edge_lines] + lines[-edge_lines:]
        counts.update({_line_key(ln) for ln in edges})
    threshold = max(2, int(min_share * len(pages) + 0.999))
    running = {key for key, n in counts.items() if n >= threshold}
    if not running:
        return pages
    cleaned = []
    for page in pages:
        lines = page.split("\n")
        non_empty = [i for i, ln in enumerate(lines) if ln.strip()]
        edge_idx = set(non_empty[:edge_lines] + non_empty[-edge_lines:])
        kept = [ln for i, ln in enumerate(lines) if not (i in edge_idx and _line_key(ln) in running)]
        cleaned.append("\n".join(kept).strip())
    return cleaned


_CONTINUES = re.compile(r"[\w,;’'«(\-–]$")
_CONTINUATION = re.compile(r"^[a-zàâäçéèêëîïôöùûüÿœæ0-9«(»%]")


def unwrap_lines(text: str) -> str:
    """Join the lines a PDF wrapped inside a paragraph ("territorial a\nquatre missions").

    A line is joined to the next when it does not end a sentence and the next one
    continues it (starts in lower case or with a figure); headings and list items
    stay on their own lines.
    """
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if (
            out
            and line.strip()
            and out[-1].strip()
            and not out[-1].lstrip().startswith(("#", "- ", "• "))
            and _CONTINUES.search(out[-1].rstrip())
            and _CONTINUATION.match(line.lstrip())
        ):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)
