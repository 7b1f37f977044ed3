"""A PDF page as an image, with the quoted sentences highlighted where they are printed.

``render_preview`` opens the PDF with pypdfium2, finds each quote among the page's characters
(word by word, so line breaks, hyphenated ends of lines and ligatures do not hide it), takes the
rectangles of the matched characters, paints them yellow under the ink (a multiply blend keeps the
words black) and returns the image (WebP) with the boxes as fractions of the page, top-left origin.

Run it under limits: :mod:`assistant.page_preview_worker` calls it in a child process with a memory
cap, and its parent adds the time cap. The image's width is bounded, so is its memory.
"""

from __future__ import annotations

import difflib
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

HIGHLIGHT_RGB = (255, 229, 82)  # the app's --surligne
MAX_WIDTH_PX = 1600
MAX_PIXELS = 4_000_000  # a very tall page gets a smaller scale, not a larger image
_WORD = re.compile(r"\w+", re.UNICODE)
_TRAILING = re.compile(r"[ \u00a0\u202f]?[.,;:!?…»)\"]+")
_LEADING = re.compile(r"[«(\"][ \u00a0\u202f]?$")
_MIN_RUN_WORDS = 3  # shorter matching runs are coincidences (« de la », « et les »)


class PreviewError(Exception):
    """The page cannot be previewed (message in French)."""


@dataclass(frozen=True)
class Box:
    """A highlighted rectangle, as fractions of the page's width and height (origin: top left)."""

    left: float
    top: float
    width: float
    height: float

    def to_json(self) -> dict[str, float]:
        return {"left": round(self.left, 5), "top": round(self.top, 5), "width": round(self.width, 5),
                "height": round(self.height, 5)}


@dataclass(frozen=True)
class Preview:
    image: bytes  # WebP
    width: int
    height: int
    boxes: tuple[Box, ...]
    found: bool  # every quote was found on the page

    def to_json(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "found": self.found,
                "boxes": [b.to_json() for b in self.boxes]}


def _fold(word: str) -> str:
    # NFKC turns ligatures (ﬁ) and narrow spaces into plain letters; case and accents stay as printed.
    return unicodedata.normalize("NFKC", word).casefold()


def _page_words(chars: str) -> list[tuple[str, int, int]]:
    """(folded word, first char index, end char index) for each word of the page's character stream."""
    return [(_fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(chars)]


def _dehyphenated(words: list[tuple[str, int, int]], chars: str) -> list[tuple[str, int, int]]:
    """Words cut at the end of a line (« parte-\\r\\nnaires ») joined back, spanning both pieces."""
    out: list[tuple[str, int, int]] = []
    i = 0
    while i < len(words):
        word, start, end = words[i]
        if i + 1 < len(words):
            between = chars[end:words[i + 1][1]]
            if between.rstrip("\r\n ").endswith(("-", "\u00ad", "\u2010")) and ("\n" in between or "\r" in between) \
                    and between.strip("\r\n -\u00ad\u2010") == "":
                out.append((word + words[i + 1][0], start, words[i + 1][2]))
                i += 2
                continue
        out.append((word, start, end))
        i += 1
    return out


def match_spans(chars: str, quotes: list[str]) -> tuple[list[tuple[int, int]], bool]:
    """Character spans of the page's stream that print the quotes, and whether every quote was found.

    A quote is found when at least 60 % of its words are matched in order; runs of fewer than three
    words are left out (unless the quote is that short), so common words elsewhere are not lit up.
    """
    page = _dehyphenated(_page_words(chars), chars)
    page_words = [w for w, _, _ in page]
    spans: list[tuple[int, int]] = []
    all_found = True
    for quote in quotes:
        words = [_fold(w) for w in _WORD.findall(quote or "")]
        if not words:
            continue
        matcher = difflib.SequenceMatcher(None, page_words, words, autojunk=False)
        # The quote's best place on the page: the longest run, then the runs near it in the same order.
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        shortest = min(_MIN_RUN_WORDS, len(words))
        kept = [b for b in blocks if b.size >= shortest]
        matched = sum(b.size for b in kept)
        if matched < 0.6 * len(words):
            all_found = False
            continue
        for b in kept:
            start, end = page[b.a][1], page[b.a + b.size - 1][2]
            # The quote's own punctuation at its ends (« … lieu. », « « le kit ») is lit up too.
            if b.b + b.size == len(words) and _TRAILING.match(quote.rstrip()[-1:] or " "):
                end += len(m.group()) if (m := _TRAILING.match(chars, end)) else 0
            if b.b == 0 and _LEADING.match(quote.lstrip()[:1] or " "):
                start = m.start() if (m := _LEADING.search(chars, max(0, start - 3), start)) else start
            spans.append((start, end))
    return sorted(spans), all_found


def _scale(width_pt: float, height_pt: float, target_px: int) -> float:
    scale = min(target_px, MAX_WIDTH_PX) / max(width_pt, 1.0)
    if width_pt * height_pt * scale * scale > MAX_PIXELS:
        scale = (MAX_PIXELS / max(width_pt * height_pt, 1.0)) ** 0.5
    return scale


def render_preview(path: str, page_number: int, quotes: list[str], width_px: int = 1000) -> Preview:
    """Page ``page_number`` (1-based, physical) of the PDF at ``path``, the quotes highlighted."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageChops, ImageDraw

    try:
        pdf = pdfium.PdfDocument(path)
    except Exception as exc:
        raise PreviewError("le PDF ne peut pas être ouvert pour l'aperçu") from exc
    try:
        if not 1 <= page_number <= len(pdf):
            raise PreviewError(f"la page {page_number} n'existe pas dans ce document")
        page = pdf[page_number - 1]
        left, bottom, right, top = page.get_bbox()
        width_pt, height_pt = right - left, top - bottom
        rotation = page.get_rotation()
        size_w, size_h = page.get_size()
        scale = _scale(size_w, size_h, width_px)
        image = page.render(scale=scale).to_pil().convert("RGB")
        boxes: list[Box] = []
        found = True
        if quotes:
            textpage = page.get_textpage()
            count = textpage.count_chars()
            chars = textpage.get_text_range(0, count) if count > 0 else ""
            if len(chars) != count:  # the stream and the indices must agree, or the boxes would be off
                chars = ""
            spans, found = match_spans(chars, quotes) if chars else ([], False)
            if rotation:  # boxes are in the unrotated page's space: rather no box than a wrong one
                spans, found = [], False
            for start, end in spans:
                for i in range(textpage.count_rects(start, end - start)):
                    x0, y0, x1, y1 = textpage.get_rect(i)
                    boxes.append(Box((x0 - left) / width_pt, (top - y1) / height_pt, (x1 - x0) / width_pt,
                                     (y1 - y0) / height_pt))
        if boxes:
            layer = Image.new("RGB", image.size, (255, 255, 255))
            draw = ImageDraw.Draw(layer)
            w, h = image.size
            pad = max(1, round(h * 0.0015))
            for b in boxes:
                draw.rectangle((b.left * w - pad, b.top * h - pad, (b.left + b.width) * w + pad,
                                (b.top + b.height) * h + pad), fill=HIGHLIGHT_RGB)
            image = ImageChops.multiply(image, layer)  # yellow under the ink: the words stay as printed
        out = io.BytesIO()
        image.save(out, "WEBP", quality=82, method=4)
        return Preview(out.getvalue(), image.size[0], image.size[1], tuple(boxes), found)
    except PreviewError:
        raise
    except Exception as exc:
        raise PreviewError("la page ne peut pas être affichée en image") from exc
    finally:
        pdf.close()
