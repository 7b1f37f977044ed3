"""The readers of the non-PDF formats (text, Markdown, HTML, Word), as plain data.

They run inside the loading child process (:mod:`ingest.load_worker`), under its time and memory
caps, so this module imports neither LangChain nor anything heavy: the child starts fast and its memory
cap measures the file, not the libraries. Each reader returns light Markdown (``#`` headings) and costs
time linear in the size of its file, however the file is built (100,000 paragraphs, deep nesting…).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from ingest.clean import normalise_text


class LoadError(AssistantError):
    """A corpus file that cannot be indexed; ``reason`` is shown to maintainers in French."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RawFile:
    """What a reader found: one text per page (one page for these formats), a title and an author."""

    pages: list[str]
    title: str = ""
    author: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def read_text_format(path: Path, fmt: str) -> RawFile:
    """Read a ``txt``, ``md``, ``html`` or ``docx`` file (never a PDF: see :mod:`ingest.pdf_worker`)."""
    if fmt == "docx":
        return load_docx(path)
    text = decode_text(path.read_bytes())
    if fmt == "html":
        return load_html(text)
    return RawFile([normalise_text(text)], title=first_heading(text))


def decode_text(data: bytes) -> str:
    """UTF-8 when valid, else the detected legacy encoding (Windows-1252, Latin-1…)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["cp1252", "latin_1", "iso8859_15", "utf_16", "mac_roman"]).best()
    if best is None:
        raise LoadError("encodage du texte non reconnu")
    return str(best)


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def first_heading(text: str) -> str:
    match = _MD_HEADING.search(text)
    return match.group(2).strip() if match and len(match.group(1)) == 1 else ""


# --- HTML ------------------------------------------------------------------------------

_DROP_TAGS = [
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "iframe", "object", "embed", "svg", "button", "select", "input",
]
_BLOCKS = {"p", "div", "section", "article", "main", "blockquote", "pre", "dd", "dt", "figcaption", "caption"}
_EMITTED = ["h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", *_BLOCKS]


def load_html(html: str) -> RawFile:
    """The page's main text as light Markdown.

    A page that marks its content up (``<main>``, ``<article>``) is read by its markup: trafilatura drops the
    link-only lists («Pour aller plus loin») and nested lists such pages hold. A page without those tags is
    read by trafilatura, which tells the content from the cookie banner, menus, share links and footer by
    their text; when it finds nothing (or fails), the markup reader takes the page whole.
    """
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    author_tag = soup.find("meta", attrs={"name": "author"})
    author = str(author_tag.get("content", "")) if author_tag else ""
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    # Banners and menus that sites do not mark up semantically, and hidden elements.
    hidden = [t for t in soup.find_all(True)
              if t.get("role") in ("navigation", "banner", "contentinfo", "dialog") or t.has_attr("hidden")]
    for tag in hidden:
        if not tag.decomposed:
            tag.decompose()
    semantic = soup.find("main") or soup.find("article")
    text = ""
    if semantic is None:
        from ingest.html_main import main_text

        text = main_text(str(soup))
    if not text:
        text = _markup_text(semantic or soup.body or soup)
    return RawFile([text], title=title or first_heading(text), author=author)


def _markup_text(root: Any) -> str:
    """Every heading, paragraph, list item and table row under ``root``, in order."""
    elements = root.find_all(_EMITTED)
    # One pass each, each ancestor visited once: per-element searches (``el.find``, ``find_parent``) made
    # deeply nested pages cost the square of their size.
    with_emitted_inside = _ancestors_of(elements)
    in_item = _inside_item(elements)
    lines: list[str] = []
    for el in elements:
        if el.name in _BLOCKS and id(el) in with_emitted_inside:
            continue  # its children are emitted on their own
        if in_item[id(el)]:
            continue
        text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name[0] == "h" and el.name[1:].isdigit():
            lines.append("\n" + "#" * int(el.name[1]) + " " + text)
        elif el.name == "li":
            lines.append("- " + text)
        elif el.name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["td", "th"])]
            lines.append(" | ".join(c for c in cells if c))
        else:
            lines.append(text + "\n")
    return normalise_text("\n".join(lines))


def _ancestors_of(elements: list[Any]) -> set[int]:
    """ids of every element that has one of ``elements`` below it."""
    marked: set[int] = set()
    for el in elements:
        parent = el.parent
        # An ancestor already marked has all its own ancestors marked: stop there.
        while parent is not None and id(parent) not in marked:
            marked.add(id(parent))
            parent = parent.parent
    return marked


def _inside_item(elements: list[Any]) -> dict[int, bool]:
    """For each element: does it sit inside a list item or a table row (emitted whole)?"""
    memo: dict[int, bool] = {}

    def item_above(node: Any) -> bool:
        # Iterative, memoised per ancestor: each ancestor's answer is computed once.
        chain = []
        while node is not None and id(node) not in memo:
            chain.append(node)
            node = node.parent
        answer = memo[id(node)] if node is not None else False
        for below in reversed(chain):
            memo[id(below)] = answer
            answer = answer or below.name in ("li", "tr")
        return answer

    return {id(el): item_above(el.parent) if el.parent is not None else False for el in elements}


# --- DOCX ------------------------------------------------------------------------------


def load_docx(path: Path) -> RawFile:
    import zipfile

    from docx import Document as DocxDocument
    from docx.enum.style import WD_STYLE_TYPE
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        doc = DocxDocument(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"document Word illisible ({type(exc).__name__})") from None
    # Style names resolved once: python-docx's ``paragraph.style`` scans every style of the document for the
    # default one, for each paragraph (10,000 paragraphs took minutes).
    styles = doc.styles
    names = {s.style_id: s.name or "" for s in styles if s.type == WD_STYLE_TYPE.PARAGRAPH}
    default_style = styles.default(WD_STYLE_TYPE.PARAGRAPH)
    default_name = (default_style.name or "") if default_style is not None else ""
    lines: list[str] = []
    body = doc.element.body
    # Walk paragraphs and tables in document order.
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            text = Paragraph(child, doc).text.strip()
            if not text:
                continue
            style_id = child.style
            style = names.get(style_id, default_name) if style_id is not None else default_name
            level = _heading_level(style)
            if level:
                lines.append("\n" + "#" * level + " " + text)
            elif "list" in style.lower():
                lines.append("- " + text)
            else:
                lines.append(text + "\n")
        elif tag == "tbl":
            for row in Table(child, doc).rows:
                cells = [c.text.strip() for c in row.cells]
                lines.append(" | ".join(c for c in cells if c))
            lines.append("")
    props = doc.core_properties
    text = normalise_text("\n".join(lines))
    return RawFile([text], title=(props.title or "").strip() or first_heading(text),
                   author=(props.author or "").strip())


def _heading_level(style: str) -> int:
    name = style.lower()
    if name == "title":
        return 1
    for prefix in ("heading ", "titre "):
        if name.startswith(prefix) and name[len(prefix):].strip().isdigit():
            # "Title" is the document's h1, so Heading 1 is a section (h2).
            return min(int(name[len(prefix):]) + 1, 6)
    return 0
