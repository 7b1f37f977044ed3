"""Pages → passages of roughly 120–250 words, each with its full provenance.

Splitting is done page by page, so a PDF passage never spans two pages. Headings
(Markdown ``#`` lines produced by the loaders) become the section path, carried
across pages until a new heading starts.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from assistant.schema import CHUNK_INDEX, CONTENT_HASH, PAGE, PAGE_LABEL, READ_BY_OCR, SECTION, STARTS_CLEAN
from ingest.formats import LoadError

# Bump when the page text, the passages or their metadata change for the same file, or the quotable units whose
# vectors ingestion precomputes (assistant.units): every file is read again.
SPLIT_VERSION = 8

# A run of characters without a space longer than this is cut every this many characters (a real word or
# address is shorter): a 100 KB text without spaces must not become one 100 KB « word », hence one passage.
MAX_WORD_CHARS = 100
_LONG_RUN = re.compile(rf"\S{{{MAX_WORD_CHARS + 1},}}")

_LEVELS = [("#" * n, f"h{n}") for n in range(1, 7)]
_HEADING_MARK = re.compile(r"^#{1,6}\s+", re.MULTILINE)


def _word_count(text: str) -> int:
    return len(text.split())


def wrap_long_words(text: str) -> str:
    """Cut every run of more than :data:`MAX_WORD_CHARS` non-space characters with spaces (linear)."""
    return _LONG_RUN.sub(
        lambda m: " ".join(m[0][i:i + MAX_WORD_CHARS] for i in range(0, len(m[0]), MAX_WORD_CHARS)), text
    )


class PassageBudgetError(LoadError):
    """A file that would make more passages than allowed (its reason is in French)."""


class GluedTextError(LoadError):
    """A file whose text is mostly runs of characters without spaces (its reason is in French)."""


class SplitTimeoutError(LoadError):
    """A file whose splitting went past the file's time budget (its reason is in French)."""


_clock = time.monotonic  # the deadline's clock (replaced in tests)


def _check(deadline: float | None, budget_s: float | None) -> None:
    if deadline is not None and _clock() > deadline:
        raise SplitTimeoutError(f"découpage interrompu : délai par fichier dépassé ({budget_s or 0:g} s, lecture "
                                "comprise) : fichier trop complexe")


class _HeaderSplitter(MarkdownHeaderTextSplitter):
    """LangChain's Markdown header splitter with a linear aggregation of lines.

    The original appends each line to its chunk with ``+=`` on a dict entry, which copies the chunk each
    time: a page of 100,000 short paragraphs cost the square of its length. Same output (headers stripped).
    """

    def aggregate_lines_to_chunks(self, lines: list[Any]) -> list[Document]:
        groups: list[tuple[dict[str, str], list[str]]] = []
        for line in lines:
            if groups and groups[-1][0] == line["metadata"]:
                groups[-1][1].append(line["content"])
            else:
                groups.append((line["metadata"], [line["content"]]))
        return [Document(page_content="  \n".join(parts), metadata=meta) for meta, parts in groups]


def passage_id(doc_id: str, page: int, chunk_index: int, text: str) -> str:
    """Deterministic id: the same passage of the same document always gets the same id."""
    return hashlib.sha256(f"{doc_id}\x00{page}\x00{chunk_index}\x00{text}".encode()).hexdigest()[:32]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# What may end the text before a passage that starts cleanly (a sentence end, a list item's end).
_CLEAN_BEFORE = re.compile(r"(?:[.!?…:;»)\]]|\n)\s*$")


def _starts_clean(body: str, offset: int, first_text: int) -> bool:
    """True when the piece at ``offset`` of ``body`` starts a sentence or a line, not mid-sentence.

    ``first_text`` is the offset of the body's first non-space character. Only the end of the text before
    the piece is read: reading all of it for each piece cost the square of the page's length.
    """
    if offset <= first_text:
        return True
    start = offset
    while True:
        start = max(0, start - 256)
        before = body[start:offset].rstrip(" \t")
        if before.strip() or start == 0:
            return bool(_CLEAN_BEFORE.search(before))


def _section_path(headers: Mapping[str, str]) -> str:
    ordered = [headers[f"h{n}"] for n in range(1, 7) if headers.get(f"h{n}")]
    # The h1 is usually the document title, already shown; keep it only when alone.
    return " > ".join(ordered[1:] if len(ordered) > 1 else ordered)


def split_pages(
    pages: list[Document],
    doc_metadata: Mapping[str, Any],
    *,
    chunk_words: int = 180,
    overlap_words: int = 30,
    max_passages: int | None = None,
    deadline: float | None = None,
    budget_s: float | None = None,
) -> list[Document]:
    """Split each page into passages; metadata = document provenance + page + section + ids.

    Linear in the length of the pages however they are built (no spaces, one-character lines, 100,000
    tiny paragraphs). With ``max_passages``, a file that would make more passages raises
    :class:`PassageBudgetError` (checked on its word count before splitting, then on the passages). A text
    made mostly of runs of more than :data:`MAX_WORD_CHARS` characters without a space raises
    :class:`GluedTextError`; shorter parts of such runs are cut into words of that length. With ``deadline``
    (a ``time.monotonic()`` value: the file's time budget, reading included, of ``budget_s`` seconds), splitting
    past it raises :class:`SplitTimeoutError`; it is checked between sections and between passages.
    """
    glued = sum(len(m[0]) for p in pages for m in _LONG_RUN.finditer(p.page_content))
    if glued * 2 > sum(len(p.page_content) for p in pages):
        # Base64, minified code, a text whose spaces were lost: not prose, and its wrapped « words » would make
        # passages of 18,000 characters, each costly to embed.
        raise GluedTextError(f"texte sans espaces (plus de la moitié en suites de plus de {MAX_WORD_CHARS} "
                             "caractères collés) : fichier inexploitable")
    if max_passages is not None:
        total = sum(_word_count(wrap_long_words(p.page_content)) for p in pages)
        # Each passage holds at most ``chunk_words`` words: this many words cannot fit.
        if total > max_passages * chunk_words:
            raise PassageBudgetError(_too_many(f"environ {total // (chunk_words - overlap_words)}", max_passages))
    headers = _HeaderSplitter(headers_to_split_on=_LEVELS, strip_headers=True)
    words = RecursiveCharacterTextSplitter(
        chunk_size=chunk_words,
        chunk_overlap=overlap_words,
        length_function=_word_count,
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ": ", ", ", " "],
        keep_separator="end",
    )
    doc_id = str(doc_metadata["doc_id"])
    passages: list[Document] = []
    active: dict[str, str] = {}
    for page in pages:
        _check(deadline, budget_s)
        for section_doc in headers.split_text(page.page_content):
            _check(deadline, budget_s)
            own = {k: v for k, v in section_doc.metadata.items() if k.startswith("h")}
            if own:
                top = min(int(k[1:]) for k in own)
                # A new heading closes the sections at its level and below.
                active = {k: v for k, v in active.items() if int(k[1:]) < top} | own
            section = _section_path(active)
            # The splitter joins lines with Markdown hard breaks ("  \n"); keep the source's plain newlines.
            body = wrap_long_words(_HEADING_MARK.sub("", section_doc.page_content.replace("  \n", "\n")))
            first_text = len(body) - len(body.lstrip())
            cursor = 0
            for piece in words.split_text(body):
                _check(deadline, budget_s)
                text = piece.strip()
                found = body.find(text, cursor)
                offset = found if found >= 0 else cursor
                cursor = offset + 1
                if _word_count(text) < 3 and passages and passages[-1].metadata[PAGE] == page.metadata[PAGE]:
                    continue  # a stray heading or page number left alone
                index = len(passages)
                meta = dict(doc_metadata)
                meta.update(
                    {
                        PAGE: int(page.metadata.get(PAGE, 1)),
                        PAGE_LABEL: str(page.metadata.get(PAGE_LABEL, "")),
                        SECTION: section,
                        CHUNK_INDEX: index,
                        CONTENT_HASH: content_hash(text),
                        STARTS_CLEAN: int(found < 0 or _starts_clean(body, offset, first_text)),
                    }
                )
                if page.metadata.get(READ_BY_OCR):
                    meta[READ_BY_OCR] = 1
                pid = passage_id(doc_id, meta[PAGE], index, text)
                passages.append(Document(page_content=text, metadata=meta, id=pid))
                if max_passages is not None and len(passages) > max_passages:
                    raise PassageBudgetError(_too_many(f"plus de {max_passages}", max_passages))
    return passages


def _too_many(count: str, limit: int) -> str:
    return f"trop de passages ({count}, limite {limit}) : fichier trop long ou mal structuré"
