"""Page previews in a real headless Chromium: the cited PDF page is shown with the quoted words
highlighted, and the highlighted zones sit where pdfminer (another PDF library than the one that
renders) prints those words."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.settings import Settings
from tests.appserver import chromium, desktop_context, raw_request, served_app

pytestmark = pytest.mark.browser

QUESTION = "Quelles sont les missions d'un catalyseur territorial ?"


@pytest.fixture(scope="module")
def preview_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    with served_app(tmp_path_factory, "previews") as served:
        yield served


def quote_char_boxes(pdf: Path, page_number: int, quote: str) -> tuple[list[tuple[float, ...]], float, float]:
    """pdfminer's boxes (x0, top, x1, bottom in points, origin top left) of the characters that print
    ``quote`` on the page, and the page's width and height."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTTextContainer, LTTextLine

    layout = next(iter(extract_pages(str(pdf), page_numbers=[page_number - 1])))
    chars: list[tuple[str, tuple[float, float, float, float] | None]] = []
    for element in layout:
        if not isinstance(element, LTTextContainer):
            continue
        for line in element:
            if not isinstance(line, LTTextLine):
                continue
            for ch in line:
                box = (ch.x0, layout.height - ch.y1, ch.x1, layout.height - ch.y0) if isinstance(ch, LTChar) else None
                chars.extend((c, box) for c in ch.get_text())
    text = "".join(c for c, _ in chars)
    match = re.search(r"\s*".join(re.escape(w) for w in quote.split()), text)
    assert match, f"quote not on the page: {quote!r}"
    return ([box for c, box in chars[match.start():match.end()] if box is not None and c.strip()],
            layout.width, layout.height)


def _inside(zone: dict[str, float], x: float, y: float, tolerance: float = 0.0) -> bool:
    return (zone["x"] - tolerance <= x <= zone["x"] + zone["width"] + tolerance
            and zone["y"] - tolerance <= y <= zone["y"] + zone["height"] + tolerance)


def _yellow(pixel: tuple[int, ...]) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g > 180 and b < 150


def test_cited_page_preview_highlights_the_quoted_words(preview_app: tuple[str, Settings]) -> None:
    from PIL import Image
    url, settings = preview_app
    pdf = settings.corpus_dir / "guide-alliances.pdf"
    with chromium() as browser:
        context = desktop_context(browser)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=30_000)
        page.fill("#question textarea", QUESTION)
        page.click("#envoyer")
        page.wait_for_selector("#conversation .sources", timeout=60_000)
        card = page.locator("#conversation li.carte").filter(has_text="Guide des alliances").first
        image = card.locator("p.apercu img")
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                               timeout=30_000)
        assert "passage cité surligné" in (image.get_attribute("alt") or "")
        src = image.get_attribute("src") or ""
        assert src.startswith("/documents/guide-alliances/pages/1/apercu?") and "vue=extrait" in src
        quotes = [m for m in card.locator("blockquote.extrait mark").all_inner_texts() if m.strip()]
        assert quotes and any("quatre missions" in q for q in quotes)

        # The card's excerpt is highlighted: a good share of yellow pixels, as the browser shows it.
        shot = Image.open(io.BytesIO(image.screenshot())).convert("RGB")
        yellow = sum(1 for p in shot.get_flattened_data() if _yellow(p))
        assert yellow > 0.01 * shot.width * shot.height

        # The whole page: every character of the quote (pdfminer's position) is on yellow, and a line
        # that the quote does not hold (the running header) is not.
        whole = context.request.get(url + src.replace("&vue=extrait", ""))
        assert whole.status == 200 and whole.headers["content-type"] == "image/webp"
        rendered = Image.open(io.BytesIO(whole.body())).convert("RGB")
        for quote in quotes:
            boxes, width, height = quote_char_boxes(pdf, 1, quote)
            assert boxes
            sx, sy = rendered.width / width, rendered.height / height
            for x0, top, x1, bottom in boxes:
                area = rendered.crop((round(x0 * sx), round(top * sy), round(x1 * sx), round(bottom * sy)))
                pixels = list(area.get_flattened_data())
                assert sum(map(_yellow, pixels)) > 0.3 * len(pixels), (quote, x0, top)
        header, width, height = quote_char_boxes(pdf, 1, "Guide de test — fiche ressource")
        sx, sy = rendered.width / width, rendered.height / height
        header_area = rendered.crop((round(header[0][0] * sx), round(header[0][1] * sy),
                                     round(header[-1][2] * sx), round(header[-1][3] * sy)))
        header_pixels = list(header_area.get_flattened_data())
        assert not any(map(_yellow, header_pixels))

        # Clicking the preview opens the page large; its highlighted zones frame the quoted words.
        with page.expect_popup() as popup_info:
            image.click()
        large = popup_info.value
        large.wait_for_function("() => document.querySelector('.page img')?.naturalWidth > 0", timeout=30_000)
        assert large.url.startswith(url + "/documents/guide-alliances/pages/1?")
        frame = large.locator(".page img").bounding_box()
        zones = [z.bounding_box() for z in large.locator(".page .zone").all()]
        assert frame and zones and all(zones)
        for quote in quotes:
            boxes, width, height = quote_char_boxes(pdf, 1, quote)
            sx, sy = frame["width"] / width, frame["height"] / height
            for x0, top, x1, bottom in boxes:
                cx, cy = frame["x"] + (x0 + x1) / 2 * sx, frame["y"] + (top + bottom) / 2 * sy
                assert any(_inside(z, cx, cy, 1) for z in zones if z), (quote, cx, cy)
        # …and no zone is far from the quoted words (each holds the centre of one of their characters).
        centres = []
        for quote in quotes:
            boxes, width, height = quote_char_boxes(pdf, 1, quote)
            sx, sy = frame["width"] / width, frame["height"] / height
            centres += [(frame["x"] + (b[0] + b[2]) / 2 * sx, frame["y"] + (b[1] + b[3]) / 2 * sy) for b in boxes]
        for z in zones:
            assert z and any(_inside(z, cx, cy) for cx, cy in centres), z
        large.close()


def _preview_status(url: str, path: str) -> tuple[int, str]:
    status, headers, _ = raw_request(url, "GET", path)
    return status, headers.get("content-type", "")


def test_preview_route_serves_catalog_pdfs_only(preview_app: tuple[str, Settings]) -> None:
    url, _ = preview_app
    assert _preview_status(url, "/documents/guide-alliances/pages/2/apercu") == (200, "image/webp")
    for path in ("/documents/mooc/pages/1/apercu", "/documents/..%2F.env/pages/1/apercu",
                 "/documents/guide-alliances/pages/x/apercu", "/documents/guide-alliances/pages/-1/apercu",
                 "/documents/inconnu/pages/1", "/documents/guide-alliances/pages/1/../../../.env"):
        assert _preview_status(url, path)[0] == 404, path
    # A page the PDF does not have: a French notice as the image, the card keeps its link.
    status, kind = _preview_status(url, "/documents/guide-alliances/pages/99/apercu")
    assert (status, kind) == (200, "image/svg+xml")

