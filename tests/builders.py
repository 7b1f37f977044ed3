"""Builders of small French test documents in every format the job reads, good and bad."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def make_pdf(path: Path, pages: list[str], *, title: str = "Guide de test", headings: list[str] | None = None,
             running_header: str = "Guide de test — fiche ressource", footer: bool = True,
             white_text: str = "") -> Path:
    """A multi-page PDF with a running header, bookmarks and a printed page number on each page."""
    from fpdf import FPDF

    class _PDF(FPDF):
        def header(self) -> None:
            self.set_font("DejaVu", size=8)
            self.cell(0, 6, running_header, new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            if footer:
                self.set_y(-15)
                self.set_font("DejaVu", size=8)
                self.cell(0, 6, f"Collectif de test · page {self.page_no()} / {{nb}}", align="C")

    pdf = _PDF()
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_title(title)
    pdf.set_author("Collectif de test")
    for i, body in enumerate(pages):
        pdf.add_page()
        if headings and i < len(headings) and headings[i]:
            pdf.set_font("DejaVu", "B", 14)
            pdf.start_section(headings[i])
            pdf.multi_cell(0, 8, headings[i], new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=11)
        pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
        if white_text and i == 0:
            pdf.set_text_color(255, 255, 255)
            pdf.multi_cell(0, 6, white_text, new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
    pdf.output(str(path))
    return path


def make_image_only_pdf(path: Path) -> Path:
    """A "scanned" PDF: drawings but no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def make_encrypted_pdf(path: Path, source: Path, password: str = "secret", algorithm: str | None = None) -> Path:
    """``source`` encrypted with ``password`` as user password; ``algorithm`` as pypdf names it (« RC4-128 »,
    « AES-128 », « AES-256 »), pypdf's default (RC4) when None."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm=algorithm)
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_bomb_pdf(path: Path, uncompressed_mb: int = 400) -> Path:
    """One page whose content stream inflates to hundreds of MB of spaces."""
    comp = zlib.compressobj(9)
    block = b" " * (1 << 20)
    data = b"".join(comp.compress(block) for _ in range(uncompressed_mb)) + comp.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length " + str(len(data)).encode() + b" /Filter /FlateDecode >>\nstream\n" + data + b"\nendstream",
    ]
    return _write_raw_pdf(path, objects)


def make_loop_pdf(path: Path) -> Path:
    """A page tree whose /Kids point back to themselves."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Parent 2 0 R /Count 2 >>",
    ]
    return _write_raw_pdf(path, objects)


def _write_raw_pdf(path: Path, objects: list[bytes]) -> Path:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def make_docx(path: Path, title: str, sections: list[tuple[str, str]], *, table: list[list[str]] | None = None) -> Path:
    from docx import Document

    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.author = "Collectif de test"
    doc.add_heading(title, level=0)
    for heading, body in sections:
        doc.add_heading(heading, level=1)
        doc.add_paragraph(body)
    if table:
        t = doc.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    doc.save(str(path))
    return path


HTML_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>{title}</title>
<meta name="author" content="Observatoire de test">
<style>body {{ color: red }}</style><script>var tracking = "NE-PAS-INDEXER-SCRIPT";</script></head>
<body>
<nav><a href="/">Accueil</a> <a href="/menu">MENU-NE-PAS-INDEXER</a></nav>
<header><p>Bandeau du site</p></header>
<div role="navigation"><ul><li><a href="/plan">PLAN-NE-PAS-INDEXER</a></li></ul></div>
<div class="cookies" hidden><p>COOKIES-NE-PAS-INDEXER</p><div hidden><p>encore caché</p></div></div>
<main>
<h1>{title}</h1>
{body}
<!-- COMMENTAIRE-NE-PAS-INDEXER -->
</main>
<footer><p>Mentions légales — PIED-NE-PAS-INDEXER</p></footer>
</body></html>
"""


def make_html(path: Path, title: str, body: str) -> Path:
    path.write_text(HTML_PAGE.format(title=title, body=body), encoding="utf-8")
    return path


def make_scanned_pdf(path: Path, pages: list[list[str]], *, dpi: int = 150) -> Path:
    """A scanned PDF: each page is one image of printed French text (accents included), with no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), 30)
    images = []
    for lines in pages:
        image = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(lines):
            draw.text((110, 180 + 64 * i), line, fill=0, font=font)
        images.append(image)
    images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return path
