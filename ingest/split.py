"""Pages → passages of roughly 120–250 words, each with its full provenance.

Splitting is done page by page, so a PDF passage never spans two pages. Headings
(Markdown ``#`` lines produced by the loaders) become the section path, carried
across pages until a new heading starts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from assistant.schema import CHUNK_INDEX, CONTENT_HASH, PAGE, PAGE_LABEL, SECTION, STARTS_CLEAN

# Bump when the page text, the passages or their metadata change for the same file: every file is read again.
SPLIT_VERSION = 5

_LEVELS = [("#" * n, f"h{n}") for n in range(1, 7)]
_HEADING_MARK = re.compile(r"^#{1,6}\s+", re.MULTILINE)


def _word_count(text: str) -> int:
    return len(text.split())


def passage_id(doc_id: str, page: int, chunk_index: int, text: str) -> str:
    """Deterministic id: the same passage of the same document always gets the same id."""
    return hashlib.sha256(f"{doc_id}\x00{page}\x00{chunk_index}\x00{text}".encode()).hexdigest()[:32]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# What may end the text before a passage that starts cleanly (a sentence end, a list item's end).
_CLEAN_BEFORE = re.compile(r"(?:[.!?…:;»)\]]|\n)\s*$")


def _starts_clean(body: str, offset: int) -> bool:
    """True when the piece at ``offset`` of ``body`` starts a sentence or a line, not mid-sentence."""
    before = body[:offset]
    return not before.strip() or bool(_CLEAN_BEFORE.search(before.rstrip(" \t")))


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
) -> list[Document]:
    """Split each page into passages; metadata = document provenance + page + section + ids."""
    headers = MarkdownHeaderTextSplitter(headers_to_split_on=_LEVELS, strip_headers=True)
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
        for section_doc in headers.split_text(page.page_content):
            own = {k: v for k, v in section_doc.metadata.items() if k.startswith("h")}
            if own:
                top = min(int(k[1:]) for k in own)
                # A new heading closes the sections at its level and below.
                active = {k: v for k, v in active.items() if int(k[1:]) < top} | own
            section = _section_path(active)
            # The splitter joins lines with Markdown hard breaks ("  \n"); keep the source's plain newlines.
            body = _HEADING_MARK.sub("", section_doc.page_content.replace("  \n", "\n"))
            cursor = 0
            for piece in words.split_text(body):
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
                        STARTS_CLEAN: int(found < 0 or _starts_clean(body, offset)),
                    }
                )
                pid = passage_id(doc_id, meta[PAGE], index, text)
                passages.append(Document(page_content=text, metadata=meta, id=pid))
    return passages
