"""Corpus files → pages (LangChain Documents), one per PDF page, one for other formats.

Each loader returns the page text as light Markdown (``#`` headings) so the
splitter can derive section paths the same way for every format. A file that
cannot be read raises :class:`LoadError` with a French reason; nothing of it
is indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.sandbox import WorkerTimeout, run_worker
from assistant.schema import FORMAT, PAGE, PAGE_LABEL, READ_BY_OCR
from assistant.settings import Settings
from ingest.clean import drop_running_lines, mark_spaced_lines, normalise_text, unwrap_lines
from ingest.formats import LoadError, decode_text, first_heading

__all__ = ["LoadError", "LoadLimits", "LoadedFile", "corpus_files", "decode_text", "first_heading", "load_file"]

SUFFIX_FORMATS = {
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".docx": "docx",
    ".txt": "txt",
}
# Files of the corpus folder that describe it rather than belong to it.
RESERVED_NAMES = {"sources.yaml", "sources.yml", "glossary.yaml", "glossary.yml"}


@dataclass
class LoadedFile:
    format: str
    pages: list[Document]
    title: str = ""
    author: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadLimits:
    """Caps on reading one file, whatever its format (the ``pdf_`` names are older than the other formats' caps)."""

    pdf_timeout_s: float = 60.0
    pdf_memory_mb: int = 1024
    max_file_mb: float = 20.0
    # OCR of pages without a text layer (only with the « ocr » extra): time per page, pages per file.
    ocr: bool = True
    ocr_page_timeout_s: float = 60.0
    ocr_max_pages: int = 300

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadLimits:
        return cls(settings.pdf_timeout_s, settings.pdf_memory_mb, settings.max_file_mb, settings.ocr,
                   settings.ocr_page_timeout_s, settings.ocr_max_pages)


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Indexable files below the corpus folder, sorted, skipping ``_*``/``.*`` paths.

    Symlinks are listed (and refused later with a reason) rather than silently followed.
    """
    found = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if path.name in RESERVED_NAMES or path.suffix.lower() not in SUFFIX_FORMATS:
            continue
        if path.is_file() or path.is_symlink():
            found.append(path)
    return found


def check_inside(path: Path, corpus_dir: Path) -> None:
    """Refuse symlinks (or anything) that resolve outside the corpus."""
    try:
        path.resolve(strict=True).relative_to(corpus_dir.resolve())
    except FileNotFoundError:
        raise LoadError("lien symbolique cassé ou fichier introuvable") from None
    except ValueError:
        raise LoadError("lien symbolique vers un fichier hors du corpus : refusé") from None


def load_file(path: Path, corpus_dir: Path, limits: LoadLimits = LoadLimits()) -> LoadedFile:
    check_inside(path, corpus_dir)
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"format non pris en charge ({path.suffix})")
    size = path.stat().st_size
    if size == 0:
        raise LoadError("fichier vide (0 octet)")
    if size > limits.max_file_mb * 1024 * 1024:
        raise LoadError(f"fichier trop volumineux ({size / 1024 / 1024:.0f} Mo, limite {limits.max_file_mb:.0f} Mo)")
    if fmt == "pdf":
        loaded = _load_pdf(path, limits)
    else:
        # Every format is read in a child process under the same time and memory caps as PDFs.
        result = _run_child(path, fmt, limits)
        if "error" in result:
            raise LoadError(result["error"])
        loaded = LoadedFile(fmt, [_page(str(result["pages"][0]), 1, "", fmt)], title=str(result["title"]),
                            author=str(result["author"]))
    if not any(p.page_content.strip() for p in loaded.pages):
        if fmt == "pdf":
            from ingest.ocr import DISABLED_HINT, ENABLE_HINT, ocr_available

            if not ocr_available():
                raise LoadError(f"aucun texte extractible — OCR nécessaire : {ENABLE_HINT}")
            if not limits.ocr:
                raise LoadError(f"aucun texte extractible — OCR nécessaire : {DISABLED_HINT}")
            raise LoadError("aucun texte extractible, même par OCR (pages sans texte ni image lisible)")
        raise LoadError("aucun texte exploitable dans ce fichier")
    return loaded


def _page(text: str, page: int, label: str, fmt: str) -> Document:
    return Document(page_content=text, metadata={PAGE: page, PAGE_LABEL: label, FORMAT: fmt})


# --- PDF -------------------------------------------------------------------------------


def _load_pdf(path: Path, limits: LoadLimits) -> LoadedFile:
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        kind = "du HTML" if b"<html" in head.lower() or b"<!doctype" in head.lower() else "un autre format"
        raise LoadError(f"ce fichier n'est pas un PDF (son contenu est {kind})")
    result = _run_child(path, "pdf", limits)
    if "error" in result:
        raise LoadError(result["error"])
    raw_pages = list(result["pages"])
    read_by_ocr = _ocr_blank_pages(path, raw_pages, limits)
    pages = clean_pdf_pages(raw_pages, result["outline"])
    labels = result["labels"]
    docs = [
        _page(text, i + 1, str(labels[i]) if i < len(labels) and str(labels[i]) != str(i + 1) else "", "pdf")
        for i, text in enumerate(pages)
    ]
    for i in read_by_ocr:
        docs[i].metadata[READ_BY_OCR] = 1
    title = pdf_title(result["title"], result.get("heading", ""), path)
    return LoadedFile("pdf", docs, title=title, author=result["author"].strip())


def _ocr_blank_pages(path: Path, raw_pages: list[str], limits: LoadLimits) -> list[int]:
    """Fill the pages without a text layer by OCR when the extra is installed; the 0-based pages it read.

    A failure costs only the OCR: a PDF with some text keeps it; one with none is refused with the reason.
    """
    from ingest.ocr import OcrFailure, OcrLimits, ocr_available, read_pages

    blank = [i for i, text in enumerate(raw_pages) if not text.strip()]
    if not blank or not limits.ocr or not ocr_available():
        return []
    try:
        found = read_pages(path, blank, OcrLimits(limits.ocr_page_timeout_s, limits.ocr_max_pages,
                                                  limits.pdf_memory_mb))
    except OcrFailure as exc:
        if len(blank) == len(raw_pages):
            raise LoadError(f"aucun texte extractible et {exc.reason}") from None
        return []
    for i, text in found.items():
        raw_pages[i] = text
    return sorted(found)


def clean_pdf_pages(raw_pages: list[str], outline: list[tuple[str, int, int]]) -> list[str]:
    """The worker's page texts → indexed page texts: normalised, running lines dropped, headings marked."""
    pages = drop_running_lines([normalise_text(t) for t in raw_pages])
    pages = [mark_spaced_lines(p) for p in _mark_outline_headings(pages, outline)]
    return [unwrap_lines(p) for p in pages]


# Titles that authoring tools write by themselves: a file name, an application's default.
_JUNK_TITLE = re.compile(
    r"^(?:microsoft\s+(?:word|powerpoint|excel)\b|diapositive\s*\d*$|slide\s*\d*$|untitled\b|sans\s+titre\b"
    r"|document\s*\d*$|pr[ée]sentation(?:\s+powerpoint)?\s*\d*$|titre\s*\d*$|title\s*\d*$|page\s*\d*$)"
    r"|\.(?:docx?|odt|pptx?|odp|xlsx?|ods|pdf|indd|ai|qxp|rtf|txt|html?)\s*$"
    r"|^[a-z]:\\|^/|\\",
    re.IGNORECASE,
)


def is_real_title(title: str, path: Path | None = None) -> bool:
    """False for an empty title, an application's default (« Diapositive 1 »), or a file name."""
    title = normalise_text(title).strip()
    if sum(ch.isalpha() for ch in title) < 3 or _JUNK_TITLE.search(title):
        return False
    if path is not None and title.casefold() in {path.stem.casefold(), path.name.casefold()}:
        return False
    # « guide_v3_final », « rapport-2019-def »: a file name's shape, no space between words.
    return not (" " not in title and re.search(r"[_]|\d", title) is not None)


def readable_file_name(path: Path) -> str:
    """« guide_raccordement-des_coproprietes.pdf » → « Guide raccordement des coproprietes »."""
    name = re.sub(r"[_\-.]+", " ", path.stem)
    name = re.sub(r"\s+", " ", name).strip()
    return name[:1].upper() + name[1:] if name else path.name


def pdf_title(meta_title: str, first_heading: str, path: Path) -> str:
    """The PDF's metadata title when it is a real one, else page 1's biggest heading, else its file name."""
    if is_real_title(meta_title, path):
        return normalise_text(meta_title)
    heading = normalise_text(first_heading)
    if is_real_title(heading) and len(heading) <= 200:
        return heading
    return readable_file_name(path)


def _run_child(path: Path, fmt: str, limits: LoadLimits) -> dict[str, Any]:
    """Read ``path`` in a fresh interpreter (:mod:`ingest.load_worker`) under the time and memory caps.

    The answer is the worker's JSON, or ``{"error": French reason}``.
    """
    pdf = fmt == "pdf"
    # The PDF worker lays pages out until 60 % of the time limit, then takes pypdf's plain text.
    budget = 0.6 * limits.pdf_timeout_s
    try:
        # Its own process group: Ctrl+C stops the job, not the reader of one file (see run_worker).
        done = run_worker("ingest.load_worker", [fmt, str(path), str(limits.pdf_memory_mb), str(budget)],
                          timeout_s=limits.pdf_timeout_s, own_group=True)
    except WorkerTimeout:
        if pdf:
            return {"error": f"analyse du PDF interrompue après {limits.pdf_timeout_s:g} s "
                             "(PDF piégé ou trop complexe)"}
        return {"error": f"délai de lecture dépassé ({limits.pdf_timeout_s:g} s) : fichier trop complexe"}
    if done.answer is not None:
        return done.answer
    if pdf and done.killed:
        return {"error": "l'analyse du PDF a été interrompue (processus tué, PDF probablement piégé)"}
    if pdf:
        return {"error": "l'analyse du PDF a échoué (mémoire dépassée ou PDF malformé)"}
    return {"error": f"lecture interrompue : mémoire dépassée (limite de {limits.pdf_memory_mb} Mo) "
                     "ou fichier malformé"}


def _mark_outline_headings(pages: list[str], outline: list[tuple[str, int, int]]) -> list[str]:
    """Turn the line that starts each bookmarked section into a Markdown heading."""
    pages = list(pages)
    for title, depth, page_index in outline:
        if not 0 <= page_index < len(pages):
            continue
        lines = pages[page_index].split("\n")
        wanted = normalise_text(title).lower()
        for i, line in enumerate(lines):
            if line.strip().lower() == wanted and not line.startswith("#"):
                lines[i] = "#" * min(depth + 1, 6) + " " + line.strip()
                break
        pages[page_index] = "\n".join(lines)
    return pages


