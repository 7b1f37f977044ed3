"""Shapes shared along the data path: passage metadata keys and the answer.

Up to retrieval, passages are LangChain ``Document`` objects whose metadata
carries the keys below. From retrieval on, they become :class:`Passage`
(with scores), and the answer is built from our own dataclasses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.documents import Document

# Provenance metadata carried by every passage (all values are str or int so
# that Chroma can store them).
SOURCE_PATH = "source_path"  # relative to the corpus folder, POSIX separators
DOC_ID = "doc_id"
TITLE = "title"
PUBLISHER = "publisher"
URL = "url"  # canonical URL of the original publication ("" when unknown)
EDITION = "edition"
THEMES = "themes"  # ";"-joined theme slugs
FORMAT = "format"  # pdf | html | md | docx | txt
PAGE = "page"  # 1-based physical page for PDFs; 1 for unpaginated formats
PAGE_LABEL = "page_label"  # the number printed on the page when it differs
SECTION = "section"  # heading path, " > "-joined
CHUNK_INDEX = "chunk_index"  # position of the passage within its document
CONTENT_HASH = "content_hash"  # sha256 of the passage text
STARTS_CLEAN = "starts_clean"  # 1 when the passage starts at a sentence or line start, 0 when cut mid-sentence
FILE_HASH = "file_hash"  # sha256 of the source file
READ_BY_OCR = "ocr"  # 1 on the passages of a scanned page whose text was read by OCR (absent otherwise)

PROVENANCE_KEYS = (
    SOURCE_PATH, DOC_ID, TITLE, PUBLISHER, URL, EDITION, THEMES, FORMAT,
    PAGE, PAGE_LABEL, SECTION, CHUNK_INDEX, CONTENT_HASH, FILE_HASH, STARTS_CLEAN,
)


@dataclass(frozen=True, kw_only=True)
class Passage:
    """A retrieved passage with its provenance and how it was found."""

    id: str
    text: str
    doc_id: str
    source_path: str
    title: str
    publisher: str
    url: str
    page: int
    page_label: str
    section: str
    chunk_index: int
    format: str
    score: float = 0.0
    retrievers: tuple[str, ...] = ()
    dense_score: float | None = None
    bm25_score: float | None = None
    starts_clean: bool = True
    # Which edition of its document the passage comes from: the manifest's edition label and the file's sha256.
    edition: str = ""
    file_hash: str = ""
    ocr: bool = False  # its text was read by OCR on a scanned page: may hold reading errors

    @classmethod
    def from_document(cls, doc_id: str, doc: Document, **scores: Any) -> Passage:
        m = doc.metadata
        return cls(
            id=doc_id,
            text=doc.page_content,
            doc_id=str(m.get(DOC_ID, "")),
            source_path=str(m.get(SOURCE_PATH, "")),
            title=str(m.get(TITLE, "")),
            publisher=str(m.get(PUBLISHER, "")),
            url=str(m.get(URL, "")),
            page=int(m.get(PAGE, 1)),
            page_label=str(m.get(PAGE_LABEL, "")),
            section=str(m.get(SECTION, "")),
            chunk_index=int(m.get(CHUNK_INDEX, 0)),
            format=str(m.get(FORMAT, "")),
            # Indexes built before this key existed: assume a clean start, as they were quoted before.
            starts_clean=bool(int(m.get(STARTS_CLEAN, 1))),
            edition=str(m.get(EDITION, "")),
            file_hash=str(m.get(FILE_HASH, "")),
            ocr=bool(int(m.get(READ_BY_OCR, 0))),
            **scores,
        )

    @property
    def printed_page(self) -> str:
        return self.page_label or str(self.page)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["retrievers"] = list(self.retrievers)
        return data


@dataclass(frozen=True, kw_only=True)
class Citation:
    """``[n]`` in an answer, tied to the passage it points to and the quoted words."""

    n: int
    passage: Passage
    quote: str

    def to_json(self) -> dict[str, Any]:
        p = self.passage
        return {
            "n": self.n,
            "passage_id": p.id,
            "doc_id": p.doc_id,
            "title": p.title,
            "publisher": p.publisher,
            "page": p.page,
            "page_label": p.page_label,
            "section": p.section,
            "quote": self.quote,
            "url": p.url,
            "source_path": p.source_path,
            # The edition quoted: an answer kept in the feedback store says which one it read.
            "edition": p.edition,
            "file_hash": p.file_hash,
            "ocr": p.ocr,
        }


@dataclass(frozen=True, kw_only=True)
class DroppedSentence:
    """A generated sentence removed by the verifier, with the rule it broke."""

    text: str
    reason: str


@dataclass(kw_only=True)
class Answer:
    question: str
    standalone_question: str
    mode: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    dropped_sentences: list[DroppedSentence] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    notice: str = ""  # e.g. why an LLM answer fell back to extracts
    extracts: str = ""  # the extractive answer, always carried beside a generated one
    # Why it answered or refused: best passage cosine, unknown-word share, coverage of the question's terms by
    # the quotes, the top quote's probability, the short answer's confidence (evaluation and calibration).
    signals: dict[str, float] = field(default_factory=dict)
    short_answer: str = ""  # the «En bref» span when one was shown
    generation: str = ""  # the index generation every passage and citation comes from

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "mode": self.mode,
            "answer": self.text,
            "abstained": self.abstained,
            "notice": self.notice,
            "extracts": self.extracts,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "dropped_sentences": [asdict(d) for d in self.dropped_sentences],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "signals": {k: round(v, 4) for k, v in self.signals.items()},
            "short_answer": self.short_answer,
            "generation": self.generation,
        }
