"""The main text of an HTML page without semantic tags, found by trafilatura, as light Markdown.

trafilatura scores blocks by their text (length, link density, boilerplate words), so it drops the cookie
banner, menus, share links and footer that a page built only of ``<div>`` does not mark up. Its extracted
tree is written out here in the same shape as the markup reader of :mod:`ingest.formats` (``#`` headings,
``- `` list items, ``a | b`` table rows, one paragraph per line), rather than through trafilatura's own
Markdown, which escapes punctuation (``\\*``, ``\\[``) and breaks lines at ``<br>``.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.clean import normalise_text

_SPACES = re.compile(r"\s+")
# The block elements of trafilatura's tree; any other element with one of these inside is a wrapper.
_BLOCKS = {"head", "p", "list", "table", "quote", "code", "div", "section", "article", "main", "blockquote"}


def main_text(html: str) -> str:
    """The page's main text, or ``""`` when trafilatura finds none or fails on the page."""
    import trafilatura

    try:
        # Precision: without it, a short extraction is "rescued" by a dump of the whole page, banner included,
        # flattened to one line; an empty answer lets the caller read the page by its markup instead.
        doc = trafilatura.bare_extraction(html, favor_precision=True, include_tables=True, include_comments=False,
                                          include_images=False, include_links=False, with_metadata=False,
                                          deduplicate=False)
    except MemoryError:
        raise
    except Exception:  # a heuristic extractor failing on an odd page: the markup reader takes it
        return ""
    body = getattr(doc, "body", None)
    if body is None:
        return ""
    return normalise_text("\n".join(_lines(body)))


def _flat(el: Any) -> str:
    return _SPACES.sub(" ", " ".join(el.itertext())).strip()


def _lines(body: Any) -> list[str]:
    """The blocks of trafilatura's tree, in order; wrappers (``<div>`` kept from the page) are walked through.

    Iterative, each element visited once: a deeply nested page neither recurses nor costs the square of its size.
    """
    lines: list[str] = []
    stack: list[Any] = list(reversed(body))
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _paragraph(item, lines)
            continue
        tag = item.tag
        if tag == "head":
            text = _flat(item)
            rend = str(item.get("rend") or "")
            level = int(rend[1]) if len(rend) == 2 and rend[0] == "h" and rend[1] in "123456" else 2
            if text:
                lines.append("\n" + "#" * level + " " + text)
        elif tag == "list":
            lines.extend("- " + text for text in map(_flat, item.iterchildren("item")) if text)
            lines.append("")
        elif tag == "table":
            for row in item.iterchildren("row"):
                line = " | ".join(c for c in map(_flat, row.iterchildren("cell")) if c)
                if line:
                    lines.append(line)
            lines.append("")
        elif any(child.tag in _BLOCKS for child in item):
            # A wrapper: its own text, then each child followed by the text after it.
            parts: list[Any] = [item.text or ""]
            for child in item:
                parts += [child, child.tail or ""]
            stack.extend(reversed(parts))
        else:
            _paragraph(_flat(item), lines)
    return lines


def _paragraph(text: str, lines: list[str]) -> None:
    text = _SPACES.sub(" ", text).strip()
    if text:
        lines.append(text + "\n")
