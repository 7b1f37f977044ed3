"""Page text of real designed PDF brochures: do facts stay next to their labels? (run by hand)

    python -m evals.bench_pdf_text                       # every method, table on stdout
    python -m evals.bench_pdf_text --show D22 --method layout   # the expected page of one question
    python -m evals.bench_pdf_text --dump /tmp/pages     # every page text of every method, for reading

Reads ``../shared/data/real-docs`` (six brochures and ``questions.jsonl``, see ../shared/README.md); when it
is absent the measure is skipped with its reason. For each answerable question and each expected page (its
``page`` and ``alt_pages``, or each page of its ``evidence``), after the same cleaning as ingestion
(:func:`ingest.load.clean_pdf_pages`):

- *présent* : one of its facts occurs in the page text (normalised as in :func:`evals.metrics.normalise`);
- *fait + libellé sur une ligne* : one line holds a fact and its label — a proxy for « the label and its value
  came out on the same line »: the line also holds a content word of the question that the fact does not
  hold, unless the fact holds one itself (« 10 infographies » for « combien d'infographies ? », « pas
  d'obligation de raccordement » carry their label). Content words are the question's BM25 terms minus those
  found on at least half of the document's pages (« réseau », « chaleur » say nothing about the line); a term
  matches a line term sharing its first four letters or more. *dont chiffres* : the facts with a figure
  (« 2,69 », « 8 550 », « 120 »), where a lost label matters most.

Also, per method, the reading order on the shipped corpus's own PDFs (``corpus/*.pdf``: a two-column kit,
tables): the paragraph openings of their sources (``corpus/_build/src``) found in order in the cleaned text,
as ``tests/test_corpus.py`` checks it on pypdf's text.

Methods: ``pypdf`` (plain text, the ingestion before this measure), ``pypdf-layout`` (``extraction_mode=
"layout"``), ``pypdf-layout-cells`` (layout mode, runs of three spaces or more written « | »), ``pdfplumber``
(``extract_text()``, when installed) and ``layout`` (:mod:`ingest.pdf_worker`, what ingestion runs).
Times are the extraction alone, per page, over every page of the six files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evals.metrics import contains_fact

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = ROOT.parent / "shared" / "data" / "real-docs"

Extractor = Callable[[Path], list[str]]


# --- extraction methods ------------------------------------------------------------------------


def _pypdf(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(path).pages]


def _pypdf_layout(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text(extraction_mode="layout") or "" for page in PdfReader(path).pages]


_RUN_OF_SPACES = re.compile(r"(?<=\S) {3,}(?=\S)")


def _pypdf_layout_cells(path: Path) -> list[str]:
    return ["\n".join(_RUN_OF_SPACES.sub(" | ", line) for line in text.split("\n")) for text in _pypdf_layout(path)]


def _pdfplumber(path: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def _layout(path: Path) -> list[str]:
    """What the ingestion worker returns (in-process: no memory cap, no time budget)."""
    from pypdf import PdfReader

    from ingest.pdf_worker import layout_page_texts, plain_page_text

    reader = PdfReader(path)
    texts, _ = layout_page_texts(str(path), len(reader.pages), deadline=float("inf"))
    return [t if t is not None else plain_page_text(reader.pages[i]) for i, t in enumerate(texts)]


def methods() -> dict[str, Extractor]:
    found: dict[str, Extractor] = {
        "pypdf": _pypdf,
        "pypdf-layout": _pypdf_layout,
        "pypdf-layout-cells": _pypdf_layout_cells,
    }
    try:
        import pdfplumber  # noqa: F401
    except ImportError:
        pass
    else:
        found["pdfplumber"] = _pdfplumber
    try:
        import pdfminer  # noqa: F401
    except ImportError:
        pass
    else:
        found["layout"] = _layout
    return found


# --- questions ---------------------------------------------------------------------------------


@dataclass
class Check:
    """One fact to find: any of ``facts`` on any of ``pages`` ((file, 1-based page))."""

    qid: str
    question: str
    facts: list[str]
    pages: list[tuple[str, int]]
    hard: bool


def load_checks(docs: Path) -> list[Check]:
    checks: list[Check] = []
    for line in (docs / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        if q.get("abstain"):
            continue
        hard = bool(q.get("hard_layout"))
        if q.get("evidence"):
            for ev in q["evidence"]:
                checks.append(Check(q["id"], q["question"], list(ev["facts"]), [(ev["doc"], int(ev["page"]))], hard))
            continue
        pages = [(q["doc"], int(q["page"]))] + [(a["doc"], int(a["page"])) for a in q.get("alt_pages", [])]
        checks.append(Check(q["id"], q["question"], list(q["facts_any"]), pages, hard))
        for fact in q.get("facts_all", []) or []:
            if fact not in q["facts_any"]:
                checks.append(Check(q["id"], q["question"], [fact], pages, hard))
    return checks


def _terms(text: str) -> set[str]:
    from assistant.lexical import analyze

    return {t for t in analyze(text) if not t[0].isdigit()}


def _matches(term: str, line_terms: set[str]) -> bool:
    for other in line_terms:
        short, long = sorted((term, other), key=len)
        if short == long or (len(short) >= 4 and long.startswith(short)):
            return True
    return False


@dataclass
class Score:
    method: str
    seconds_per_page: float
    present: int = 0
    on_line: int = 0
    hard_on_line: int = 0
    total: int = 0
    hard_total: int = 0
    numeric_on_line: int = 0
    numeric_total: int = 0
    order_found: int = 0
    order_total: int = 0
    missing: list[str] = field(default_factory=list)
    apart: list[str] = field(default_factory=list)


def score(method: str, texts: dict[str, list[str]], checks: list[Check], generic: dict[str, set[str]],
          seconds_per_page: float) -> Score:
    out = Score(method, seconds_per_page)
    for check in checks:
        out.total += 1
        out.hard_total += check.hard
        present = on_line = False
        question = _terms(check.question)
        numeric = any(ch.isdigit() for fact in check.facts for ch in fact)
        for doc, page in check.pages:
            pages = texts.get(doc, [])
            if not 0 < page <= len(pages):
                continue
            text = pages[page - 1]
            for fact in check.facts:
                if not contains_fact(text, fact):
                    continue
                present = True
                own = _terms(fact)
                useful = question - own - generic.get(doc, set())
                labelled = any(_matches(t, own) for t in question - generic.get(doc, set()))
                on_line = on_line or any(
                    contains_fact(line, fact) and (labelled or any(_matches(t, _terms(line)) for t in useful))
                    for line in text.split("\n")
                )
        out.present += present
        out.on_line += on_line
        out.hard_on_line += on_line and check.hard
        out.numeric_total += numeric
        out.numeric_on_line += on_line and numeric
        if not present:
            out.missing.append(check.qid)
        elif not on_line:
            out.apart.append(check.qid)
    return out


def generic_terms(pages: list[str]) -> set[str]:
    """Terms found on at least half of a document's pages."""
    counts: dict[str, int] = {}
    for text in pages:
        for term in _terms(text):
            counts[term] = counts.get(term, 0) + 1
    return {t for t, n in counts.items() if n >= max(2, len(pages) / 2)}


# --- reading order on the shipped corpus --------------------------------------------------------


def _squash(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip().casefold()


def reading_order(extractor: Extractor) -> tuple[int, int]:
    """Paragraph openings of the shipped PDFs' sources found in order in the cleaned text (as test_corpus)."""
    import importlib.util

    from pypdf import PdfReader

    from ingest.load import clean_pdf_pages
    from ingest.pdf_worker import _outline_entries

    spec = importlib.util.spec_from_file_location("corpus_build", ROOT / "corpus" / "_build" / "build.py")
    if spec is None or spec.loader is None:
        return 0, 0
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build
    spec.loader.exec_module(build)
    found = total = 0
    for src in build.load_sources():
        path = ROOT / "corpus" / src.output
        if src.fmt != "pdf" or not path.is_file():
            continue
        pages = clean_pdf_pages(extractor(path), _outline_entries(PdfReader(path)))
        text = _squash(" ".join(line.lstrip("#").strip() for page in pages for line in page.split("\n")))
        position = 0
        for block in src.blocks:
            for piece in [block.text] if block.kind in ("p", "h2", "h3") else block.items:
                total += 1
                opening = " ".join(_squash(build.plain(piece)).split()[:7])
                at = text.find(opening, position)
                if at >= 0:
                    found += 1
                    position = at
    return found, total


# --- run ---------------------------------------------------------------------------------------


def extract_all(docs: Path, extractor: Extractor) -> tuple[dict[str, list[str]], float]:
    """Cleaned page texts of every PDF, and the extraction time per page."""
    from pypdf import PdfReader

    from ingest.load import clean_pdf_pages
    from ingest.pdf_worker import _outline_entries

    texts: dict[str, list[str]] = {}
    seconds = 0.0
    count = 0
    for path in sorted(docs.glob("*.pdf")):
        start = time.perf_counter()
        raw = extractor(path)
        seconds += time.perf_counter() - start
        count += len(raw)
        texts[path.name] = clean_pdf_pages(raw, _outline_entries(PdfReader(path)))
    return texts, seconds / max(count, 1)


def print_table(scores: list[Score]) -> None:
    header = (f"{'méthode':<20} {'faits présents':>15} {'fait + libellé sur une ligne':>29} {'dont chiffres':>14} "
              f"{'dont mise en page difficile':>28} {'ordre (corpus livré)':>21} {'ms/page':>8}")
    print(header)
    print("-" * len(header))
    for s in scores:
        print(f"{s.method:<20} {f'{s.present}/{s.total}':>15} {f'{s.on_line}/{s.total}':>29} "
              f"{f'{s.numeric_on_line}/{s.numeric_total}':>14} {f'{s.hard_on_line}/{s.hard_total}':>28} "
              f"{f'{s.order_found}/{s.order_total}':>21} {1000 * s.seconds_per_page:>8.0f}")
    print()
    for s in scores:
        print(f"{s.method}: absents {s.missing or '—'} ; présents mais loin de leur libellé {s.apart or '—'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.bench_pdf_text",
        description="Texte des pages de PDF réels : les faits restent-ils avec leur libellé ?",
    )
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="dossier des PDF et de questions.jsonl")
    parser.add_argument("--method", action="append", help="méthode(s) à mesurer (défaut : toutes)")
    parser.add_argument("--show", help="affiche la page attendue d'une question (identifiant, ex. D22)")
    parser.add_argument("--dump", type=Path, help="écrit le texte de chaque page par méthode dans ce dossier")
    parser.add_argument("--json", action="store_true", help="résultats en JSON")
    args = parser.parse_args(argv)

    if not (args.docs / "questions.jsonl").is_file():
        print(f"Mesure ignorée : {args.docs} est absent (les PDF réels sont dans ../shared/data/real-docs).")
        return 0
    available = methods()
    chosen = args.method or list(available)
    unknown = [m for m in chosen if m not in available]
    if unknown:
        print(f"Méthode inconnue ou non installée : {', '.join(unknown)} (disponibles : {', '.join(available)})",
              file=sys.stderr)
        return 2
    checks = load_checks(args.docs)
    baseline, _ = extract_all(args.docs, available["pypdf"])
    generic = {doc: generic_terms(pages) for doc, pages in baseline.items()}

    scores: list[Score] = []
    all_texts: dict[str, dict[str, list[str]]] = {}
    for name in chosen:
        texts, per_page = extract_all(args.docs, available[name])
        all_texts[name] = texts
        result = score(name, texts, checks, generic, per_page)
        result.order_found, result.order_total = reading_order(available[name])
        scores.append(result)
        if args.dump:
            for doc, pages in texts.items():
                folder = args.dump / name
                folder.mkdir(parents=True, exist_ok=True)
                body = "".join(f"\n======== page {i}\n{text}\n" for i, text in enumerate(pages, 1))
                (folder / f"{Path(doc).stem}.txt").write_text(body, encoding="utf-8")

    if args.show:
        for check in (c for c in checks if c.qid == args.show):
            print(f"{check.qid} {check.question}\nfaits : {check.facts}")
            for name, texts in all_texts.items():
                for doc, page in check.pages:
                    print(f"\n--- {name} · {doc} p. {page}")
                    print(texts[doc][page - 1])
        return 0
    if args.json:
        print(json.dumps([s.__dict__ for s in scores], ensure_ascii=False, indent=2))
    else:
        print_table(scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
