"""Build the PDF, HTML and DOCX documents of the corpus from their sources in ``corpus/_build/src``.

Usage::

    python corpus/_build/build.py            # writes corpus/*.pdf, *.html, *.docx
    python corpus/_build/build.py --check    # rebuilds in a temp dir, fails if corpus/ differs

Each source is a small Markdown dialect with a YAML front matter:

* front matter: ``id``, ``output`` (file name in corpus/), ``format`` (pdf | html | docx), ``title``,
  ``short_title`` (running header/footer), for PDFs ``layout`` (one-column | two-columns) and ``pages``
  (the expected page count: the build fails when the layout drifts), for HTML an optional ``related`` list;
* body: one ``#`` title, ``##``/``###`` headings, paragraphs, ``- `` bullets, ``1. `` numbered items,
  pipe tables, ``**bold**``, and ``<!-- page -->`` for a PDF page break (ignored by other formats).

The output is deterministic (fixed dates, fixed zip timestamps) so that rebuilding unchanged sources gives
byte-identical files. Fonts: DejaVu Sans from matplotlib's data folder (always installed with the project),
else the system copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import html
import io
import re
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SRC_DIR = HERE / "src"
CORPUS_DIR = HERE.parent

AUTHOR = "Assistant des alliances territoriales — synthèse rédigée par le projet"
LICENCE = "Texte de synthèse rédigé par le projet, sous licence CC BY 4.0. Il ne remplace pas la publication originale."
# Fixed so that a rebuild of unchanged sources is byte-identical.
BUILD_DATE = dt.datetime(2025, 1, 15, 9, 0, 0, tzinfo=dt.UTC)
ZIP_DATE = (2025, 1, 15, 9, 0, 0)

PAGE_BREAK = "<!-- page -->"


# --------------------------------------------------------------------------- source model


@dataclass
class Block:
    kind: str  # h1 | h2 | h3 | p | ul | ol | table | page
    text: str = ""
    items: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Source:
    path: Path
    meta: dict[str, Any]
    blocks: list[Block]

    @property
    def output(self) -> str:
        return str(self.meta["output"])

    @property
    def fmt(self) -> str:
        return str(self.meta["format"])


_NUMBERED = re.compile(r"^\d+\.\s+")


def typography(text: str) -> str:
    """French spacing: non-breaking spaces inside « » and before : ; ? ! %, and in 1 000."""
    text = text.replace("« ", "«\u00a0").replace(" »", "\u00a0»")
    text = re.sub(r" ([:;?!%])", "\u00a0\\1", text)
    return re.sub(r"(?<=\d) (?=\d{3}\b)", "\u00a0", text)


def parse_source(path: Path) -> Source:
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise ValueError(f"{path.name}: front matter missing")
    _, front, body = raw.split("---\n", 2)
    meta = yaml.safe_load(front)
    for key in ("id", "output", "format", "title", "short_title"):
        if not meta.get(key):
            raise ValueError(f"{path.name}: front matter key '{key}' missing")
    blocks: list[Block] = []
    for chunk in re.split(r"\n\s*\n", body.strip()):
        lines = [ln.rstrip() for ln in chunk.strip().split("\n")]
        first = lines[0]
        if first == PAGE_BREAK:
            blocks.append(Block("page"))
        elif first.startswith("#"):
            level = len(first) - len(first.lstrip("#"))
            if len(lines) > 1 or level > 3:
                raise ValueError(f"{path.name}: heading must stand alone and be # to ###: {first!r}")
            blocks.append(Block(f"h{level}", typography(first[level:].strip())))
        elif first.startswith("- "):
            blocks.append(Block("ul", items=[typography(ln[2:].strip()) for ln in lines]))
        elif _NUMBERED.match(first):
            blocks.append(Block("ol", items=[typography(_NUMBERED.sub("", ln).strip()) for ln in lines]))
        elif first.startswith("|"):
            rows = [[typography(c.strip()) for c in ln.strip().strip("|").split("|")] for ln in lines]
            rows = [r for r in rows if not all(re.fullmatch(r":?-{3,}:?", c) for c in r)]
            blocks.append(Block("table", rows=rows))
        else:
            blocks.append(Block("p", typography(" ".join(ln.strip() for ln in lines))))
    if [b.kind for b in blocks].count("h1") != 1 or blocks[0].kind != "h1":
        raise ValueError(f"{path.name}: the body must start with exactly one '#' title")
    return Source(path, meta, blocks)


def load_sources() -> list[Source]:
    return [parse_source(p) for p in sorted(SRC_DIR.glob("*.md"))]


def plain(text: str) -> str:
    """Text without the **bold** markers."""
    return text.replace("**", "")


def bold_segments(text: str) -> list[tuple[str, bool]]:
    """"a **b** c" → [("a ", False), ("b", True), (" c", False)]."""
    parts = text.split("**")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced ** in: {text!r}")
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part]


# --------------------------------------------------------------------------- PDF


def font_paths() -> dict[str, Path]:
    """DejaVu Sans regular/bold/oblique: matplotlib's copy first, so every machine builds the same bytes."""
    names = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
    folders = []
    try:
        import matplotlib

        folders.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    folders.append(Path("/usr/share/fonts/truetype/dejavu"))
    for folder in folders:
        paths = {style: folder / name for style, name in names.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    raise SystemExit("DejaVu Sans introuvable (ni dans matplotlib, ni dans /usr/share/fonts/truetype/dejavu)")


def build_pdf(src: Source, out: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace

    short_title = src.meta["short_title"]

    class FichePDF(FPDF):
        def header(self) -> None:
            self.set_font("DejaVu", "", 8)
            self.set_text_color(100, 100, 100)
            self.set_xy(self.l_margin, 10)
            self.cell(0, 5, f"Fiche ressource · {short_title}", align="R")
            self.set_draw_color(170, 170, 170)
            self.line(self.l_margin, 16, self.w - self.r_margin, 16)
            self.set_text_color(0, 0, 0)
            self.set_xy(self.l_margin, self.t_margin)

        def footer(self) -> None:
            self.set_font("DejaVu", "", 8)
            self.set_text_color(100, 100, 100)
            self.set_y(-14)
            self.cell(0, 5, f"{short_title} · page {self.page_no()} / {{nb}}", align="C")
            self.set_text_color(0, 0, 0)

    pdf = FichePDF(format="A4", unit="mm")
    pdf.set_margins(20, 22, 20)
    pdf.set_auto_page_break(True, margin=20)
    for style, path in font_paths().items():
        pdf.add_font("DejaVu", style, str(path))
    pdf.set_title(src.meta["title"])
    pdf.set_author(AUTHOR)
    pdf.set_subject("Fiche ressource pour les élus locaux — " + src.meta["title"])
    pdf.set_keywords("alliances en territoire; élus locaux; fiche ressource")
    pdf.set_creator("corpus/_build/build.py")
    pdf.set_lang("fr-FR")
    pdf.set_creation_date(BUILD_DATE)
    pdf.add_page()

    body_size, line_h = 10.5, 5.6
    width = pdf.w - pdf.l_margin - pdf.r_margin
    two_columns = src.meta.get("layout") == "two-columns"

    def text_block(text: str, size: float = body_size, style: str = "", h: float = line_h, indent: float = 0) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(width - indent, h, text, markdown="**" in text, align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(block: Block) -> None:
        level = int(block.kind[1])
        size = {1: 17.0, 2: 13.0, 3: 11.5}[level]
        pdf.set_font("DejaVu", "B", size)
        if level > 1 and pdf.get_string_width(block.text) > width:
            # The ingestion matches bookmarks to a single extracted line.
            raise ValueError(f"{src.path.name}: heading too long for one line: {block.text!r}")
        if level > 1:
            pdf.ln(3.5 if level == 2 else 1.5)
            pdf.start_section(block.text.replace("\u00a0", " "), level=level - 2)
        pdf.set_text_color(20, 55, 100)
        text_block(block.text, size, "B", {1: 8.0, 2: 6.5, 3: 6.0}[level])
        pdf.set_text_color(0, 0, 0)
        pdf.ln(1.5)

    def flat_list(block: Block) -> None:
        for i, item in enumerate(block.items, 1):
            pdf.set_font("DejaVu", "", body_size)
            pdf.set_x(pdf.l_margin + 2)
            pdf.cell(5, line_h, "•" if block.kind == "ul" else f"{i}.")
            text_block(item, indent=8)
            pdf.ln(0.8)
        pdf.ln(1.5)

    def table(block: Block) -> None:
        pdf.set_font("DejaVu", "", 9.5)
        ncols = len(block.rows[0])
        widths = {2: (120, 50), 3: (90, 22, 58)}.get(ncols)
        aligns = {2: ("LEFT", "CENTER"), 3: ("LEFT", "CENTER", "LEFT")}.get(ncols, "LEFT")
        with pdf.table(
            col_widths=widths,
            text_align=aligns,
            line_height=5.0,
            padding=(1.2, 1.5),
            headings_style=FontFace(emphasis="BOLD", fill_color=(222, 231, 242)),
            borders_layout="HORIZONTAL_LINES",
            first_row_as_headings=True,
        ) as tbl:
            for row in block.rows:
                cells = tbl.row()
                for cell in row:
                    cells.cell(cell)
        pdf.ln(3)

    def columns(blocks: list[Block]) -> None:
        if not blocks:
            return
        with pdf.text_columns(ncols=2, gutter=8, balance=True, text_align="LEFT", line_height=1.45) as cols:
            for block in blocks:
                entries = [(block.text, "")] if block.kind == "p" else [
                    (item, "•" if block.kind == "ul" else f"{i}.") for i, item in enumerate(block.items, 1)
                ]
                if block.kind not in ("p", "ul", "ol"):
                    raise ValueError(f"{src.path.name}: {block.kind} not supported in two-column layout")
                for text, bullet in entries:
                    pdf.set_font("DejaVu", "", body_size - 0.5)
                    with cols.paragraph(
                        bottom_margin=2.4 if not bullet else 1.2,
                        indent=5 if bullet else 0,
                        bullet_string=bullet,
                        bullet_r_margin=1.5 if bullet else None,
                    ) as par:
                        for segment, is_bold in bold_segments(text):
                            pdf.set_font("DejaVu", "B" if is_bold else "", body_size - 0.5)
                            par.write(segment)
        pdf.set_font("DejaVu", "", body_size)
        pdf.ln(2)

    pending: list[Block] = []  # body blocks waiting for the two-column flow
    title_done = False
    for block in src.blocks:
        if block.kind == "h1":
            heading(block)
            continue
        if not title_done and block.kind == "p":
            # The standfirst (first paragraph) runs across the full width, in italics.
            pdf.set_text_color(60, 60, 60)
            text_block(block.text, body_size, "I")
            pdf.set_text_color(0, 0, 0)
            pdf.ln(2)
            title_done = True
            continue
        title_done = True
        # A URL cut across two narrow-column lines would come out of text extraction broken in two.
        if two_columns and block.kind in ("ul", "ol", "p") and "https://" not in block.text:
            pending.append(block)
            continue
        columns(pending)
        pending = []
        if block.kind == "page":
            pdf.add_page()
        elif block.kind in ("h2", "h3"):
            heading(block)
        elif block.kind == "p":
            text_block(block.text)
            pdf.ln(2.2)
        elif block.kind in ("ul", "ol"):
            flat_list(block)
        elif block.kind == "table":
            table(block)
    columns(pending)

    expected = src.meta.get("pages")
    if expected and pdf.page_no() != int(expected):
        raise ValueError(f"{src.path.name}: {pdf.page_no()} pages, {expected} expected (layout drifted)")
    out.write_bytes(bytes(pdf.output()))


# --------------------------------------------------------------------------- HTML

_URL = re.compile(r"https://[^\s<>\"«»]+[^\s<>\"«».,;:)]")

HTML_MENU = [
    ("#", "Accueil"),
    ("#fiches", "Fiches ressources"),
    ("#glossaire", "Glossaire des sigles"),
    ("#commencer", "Par où commencer ?"),
    ("#a-propos", "À propos"),
]

HTML_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 0; color: #1d1d1b; line-height: 1.55; }
.site-header, .site-footer { background: #12375f; color: #fff; padding: 0.8rem 2rem; }
.site-header a, .site-footer a { color: #fff; }
.site-header ul, .site-footer ul { list-style: none; display: flex; gap: 1.5rem; padding: 0; margin: 0.4rem 0 0; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem 2rem 3rem; }
.breadcrumb ol { list-style: none; display: flex; gap: 0.5rem; padding: 0; font-size: 0.85rem; color: #555; }
.chapo { font-style: italic; color: #444; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ccd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
aside { border-top: 2px solid #12375f; margin-top: 2rem; font-size: 0.9rem; }
.cookie-banner { position: fixed; bottom: 0; left: 0; right: 0; background: #f3f3f3; padding: 1rem 2rem;
  border-top: 1px solid #bbb; }
""".strip()


def inline_html(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
    return "".join(f"<strong>{s}</strong>" if b else s for s, b in bold_segments(escaped))


def build_html(src: Source, out: Path) -> None:
    meta = src.meta
    esc = html.escape
    body: list[str] = []
    first_paragraph = True
    for block in src.blocks:
        if block.kind == "page":
            continue
        if block.kind in ("h1", "h2", "h3"):
            tag = block.kind
            folded = unicodedata.normalize("NFKD", plain(block.text).lower()).encode("ascii", "ignore").decode()
            slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:60].rstrip("-")
            body.append(f'<{tag} id="{slug}">{inline_html(block.text)}</{tag}>')
        elif block.kind == "p":
            cls = ' class="chapo"' if first_paragraph else ""
            first_paragraph = False
            body.append(f"<p{cls}>{inline_html(block.text)}</p>")
        elif block.kind in ("ul", "ol"):
            items = "\n".join(f"  <li>{inline_html(i)}</li>" for i in block.items)
            body.append(f"<{block.kind}>\n{items}\n</{block.kind}>")
        elif block.kind == "table":
            head = "".join(f"<th>{inline_html(c)}</th>" for c in block.rows[0])
            rows = "\n".join(
                "  <tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in block.rows[1:]
            )
            body.append(f"<table>\n  <thead><tr>{head}</tr></thead>\n  <tbody>\n{rows}\n  </tbody>\n</table>")
    description = plain(next(b.text for b in src.blocks if b.kind == "p"))
    menu = "\n".join(f'      <li><a href="{href}">{esc(label)}</a></li>' for href, label in HTML_MENU)
    related = "\n".join(
        f'      <li><a href="{esc(r["file"])}">{esc(r["label"])}</a></li>' for r in meta.get("related", [])
    )
    article = "\n".join("      " + line if line else line for chunk in body for line in chunk.split("\n"))
    page = f"""<!DOCTYPE html>
<html lang="fr">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{esc(meta["title"])}</title>
  <meta name="author" content="{esc(AUTHOR)}">
  <meta name="description" content="{esc(description[:300])}">
  <meta name="generator" content="corpus/_build/build.py">
  <style>
{HTML_STYLE}
  </style>
</head>
<body>
  <div class="cookie-banner" id="cookie-banner" role="dialog" aria-label="Information sur les cookies">
    <p>Ce site n'utilise que des cookies techniques, nécessaires à son fonctionnement. Aucun cookie de mesure
    d'audience ni de publicité n'est déposé.</p>
    <button type="button" id="cookie-ok">J'ai compris</button>
  </div>
  <header class="site-header">
    <p class="site-name"><a href="#">Fiches ressources — Alliances en territoire</a></p>
    <nav aria-label="Menu principal">
    <ul>
{menu}
    </ul>
    </nav>
  </header>
  <main id="contenu">
    <nav class="breadcrumb" aria-label="Fil d'Ariane">
      <ol><li><a href="#">Accueil</a></li><li><a href="#fiches">Fiches ressources</a></li>
        <li>{esc(meta["short_title"])}</li></ol>
    </nav>
    <article>
{article}
    </article>
    <aside class="related" aria-label="Fiches liées">
      <h2>Fiches liées</h2>
      <ul>
{related}
      </ul>
    </aside>
  </main>
  <footer class="site-footer">
    <p>{esc(LICENCE)}</p>
    <ul>
      <li><a href="#mentions-legales">Mentions légales</a></li>
      <li><a href="#accessibilite">Accessibilité : partiellement conforme</a></li>
      <li><a href="#plan">Plan du site</a></li>
    </ul>
  </footer>
  <script>
    document.getElementById("cookie-ok").addEventListener("click", function () {{
      document.getElementById("cookie-banner").hidden = true;
    }});
  </script>
</body>
</html>
"""
    out.write_text(page, encoding="utf-8", newline="\n")


# --------------------------------------------------------------------------- DOCX


def _add_page_field(paragraph: Any) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    field_el = OxmlElement("w:fldSimple")
    field_el.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field_el.append(run)
    paragraph._p.append(field_el)


def _runs(paragraph: Any, text: str, bold: bool = False) -> None:
    for segment, is_bold in bold_segments(text):
        paragraph.add_run(segment).bold = bold or is_bold


def build_docx(src: Source, out: Path) -> None:
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    doc.styles["Normal"].font.size = Pt(11)
    props = doc.core_properties
    props.title = src.meta["title"]
    props.author = AUTHOR
    props.subject = "Fiche ressource pour les élus locaux"
    props.keywords = "alliances en territoire; élus locaux; fiche ressource"
    props.language = "fr-FR"
    props.last_modified_by = AUTHOR
    props.revision = 1
    props.created = BUILD_DATE.replace(tzinfo=None)
    props.modified = BUILD_DATE.replace(tzinfo=None)
    props.comments = LICENCE

    section = doc.sections[0]
    section.header.paragraphs[0].text = f"{src.meta['short_title']}"
    footer = section.footer.paragraphs[0]
    footer.text = "Synthèse rédigée par le projet — page "
    _add_page_field(footer)

    for block in src.blocks:
        if block.kind == "h1":
            doc.add_heading(plain(block.text), level=0)
        elif block.kind in ("h2", "h3"):
            doc.add_heading(plain(block.text), level=int(block.kind[1]) - 1)
        elif block.kind == "p":
            _runs(doc.add_paragraph(), block.text)
        elif block.kind in ("ul", "ol"):
            style = "List Bullet" if block.kind == "ul" else "List Number"
            for item in block.items:
                _runs(doc.add_paragraph(style=style), item)
        elif block.kind == "table":
            tbl = doc.add_table(rows=len(block.rows), cols=len(block.rows[0]))
            tbl.style = "Light Grid Accent 1"
            for r, row in enumerate(block.rows):
                for c, value in enumerate(row):
                    cell = tbl.cell(r, c)
                    cell.text = ""
                    _runs(cell.paragraphs[0], value, bold=r == 0)
            doc.add_paragraph()

    buffer = io.BytesIO()
    doc.save(buffer)
    out.write_bytes(_fixed_zip(buffer.getvalue()))


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps (python-docx stamps entries with the current time)."""
    src_zip = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src_zip.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src_zip.read(info.filename))
    return buffer.getvalue()


# --------------------------------------------------------------------------- driver

BUILDERS = {"pdf": build_pdf, "html": build_html, "docx": build_docx}


def build_all(out_dir: Path, only: set[str] | None = None) -> list[tuple[Source, Path]]:
    built = []
    for src in load_sources():
        if only and src.meta["id"] not in only:
            continue
        target = out_dir / src.output
        BUILDERS[src.fmt](src, target)
        built.append((src, target))
    return built


def describe(path: Path) -> tuple[int, int]:
    """(pages, words) of a built file, measured on its extracted text."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        pages = [p.extract_text() or "" for p in PdfReader(path).pages]
        return len(pages), sum(len(t.split()) for t in pages)
    if path.suffix == ".docx":
        from docx import Document

        doc = Document(str(path))
        words = sum(len(p.text.split()) for p in doc.paragraphs)
        words += sum(len(c.text.split()) for t in doc.tables for row in t.rows for c in row.cells)
        return 1, words
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    article = soup.find("article")
    return 1, len((article or soup).get_text(" ").split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Construit les documents PDF, HTML et DOCX du corpus.")
    parser.add_argument("--out", type=Path, default=CORPUS_DIR, help="dossier de sortie (défaut : corpus/)")
    parser.add_argument("--only", action="append", help="identifiant d'un document à construire (répétable)")
    parser.add_argument("--check", action="store_true", help="vérifie que corpus/ est à jour, sans l'écrire")
    args = parser.parse_args(argv)
    only = set(args.only) if args.only else None
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            stale = [
                src.output for src, target in build_all(Path(tmp), only)
                if not (CORPUS_DIR / src.output).exists() or not filecmp.cmp(target, CORPUS_DIR / src.output, False)
            ]
        for name in stale:
            print(f"À reconstruire : {name}")
        print("Corpus à jour." if not stale else f"{len(stale)} fichier(s) à reconstruire.")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for src, target in build_all(args.out, only):
        pages, words = describe(target)
        print(f"{target.name:45} {src.fmt:5} {pages:2} page(s) {words:5} mots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
