"""Page previews (fast): where the quotes are on a PDF page, the cache's bound, the card's image, and the
highlighted quote of a non-PDF document's view."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from assistant.catalog import CatalogEntry
from assistant.page_preview import Box, Preview, PreviewError, match_spans, render_preview
from assistant.settings import Settings
from tests.builders import make_pdf
from webui import render
from webui.documents import ServedDocument, quote_spans, render_document_view
from webui.preview import PreviewCache, PreviewService, clean_quotes, excerpt_of, preview_href

QUOTE = "Un catalyseur territorial a quatre missions"


def _texts(chars: str, spans: list[tuple[int, int]]) -> list[str]:
    return [chars[a:b] for a, b in spans]


def test_quote_found_across_line_breaks_hyphens_and_ligatures() -> None:
    chars = "Titre\r\nLes parte-\r\nnaires s’engagent : une ﬁche\r\npratique pour tous.\r\nFin"
    spans, found = match_spans(chars, ["Les partenaires s’engagent : une fiche pratique pour tous."])
    assert found
    assert _texts(chars, spans) == ["Les parte-\r\nnaires s’engagent : une ﬁche\r\npratique pour tous."]


def test_absent_quote_is_not_found_and_common_words_are_not_lit() -> None:
    chars = "Le maire et la commune de la vallée.\r\nAutre ligne de la page."
    spans, found = match_spans(chars, ["La charte des partenariats de la région et la commune"])
    assert not found and spans == []


def test_render_preview_boxes_cover_the_quote_only(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "g.pdf", ["Premier paragraphe sans rapport. " + QUOTE + " : le dialogue.",
                                        "Page deux."])
    preview = render_preview(str(pdf), 1, [QUOTE])
    assert preview.found and preview.boxes and preview.width == 1000
    for b in preview.boxes:
        assert 0 <= b.left < 1 and 0 <= b.top < 1 and 0 < b.width <= 1 and 0 < b.height < 0.05
    from PIL import Image

    with Image.open(io.BytesIO(preview.image)) as image:
        assert image.format == "WEBP" and image.size == (preview.width, preview.height)
    plain = render_preview(str(pdf), 2, [])
    assert plain.boxes == () and plain.found
    with pytest.raises(PreviewError, match="n'existe pas"):
        render_preview(str(pdf), 3, [])
    broken = tmp_path / "casse.pdf"
    broken.write_bytes(b"%PDF-1.7\nrien\n")
    with pytest.raises(PreviewError):
        render_preview(str(broken), 1, [])


def _preview(size: int, boxes: tuple[Box, ...] = ()) -> Preview:
    return Preview(b"x" * size, 10, 10, boxes, True)


def test_cache_is_bounded_in_bytes_and_drops_the_least_recent() -> None:
    cache = PreviewCache(max_bytes=250)
    cache.put(("a",), _preview(100))
    cache.put(("b",), _preview(100))
    assert cache.get(("a",)) is not None  # a is now the most recent
    cache.put(("c",), _preview(100))
    assert cache.get(("b",)) is None and cache.get(("a",)) and cache.get(("c",))
    assert cache.size_bytes == 200
    cache.put(("big",), _preview(300))  # larger than the whole cache: not kept
    assert cache.get(("big",)) is None and len(cache) == 2


def test_service_renders_in_a_child_process_and_caches_per_edition(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "g.pdf", [QUOTE + "."])
    doc = ServedDocument("g", pdf, CatalogEntry("g", "g.pdf", format="pdf", file_hash="h1"))
    service = PreviewService(Settings(preview_timeout_s=60))
    first = service.preview(doc, 1, [QUOTE])
    assert first.found and first.boxes
    assert service.preview(doc, 1, [QUOTE]) is first  # cached
    new_edition = ServedDocument("g", pdf, CatalogEntry("g", "g.pdf", format="pdf", file_hash="h2"))
    assert service.preview(new_edition, 1, [QUOTE]) is not first
    excerpt = service.excerpt(doc, 1, [QUOTE])
    assert excerpt.height < first.height and excerpt.width == first.width


def test_excerpt_keeps_the_boxes_inside_the_band() -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (100, 200), "white").save(out, "WEBP")
    full = Preview(out.getvalue(), 100, 200, (Box(0.1, 0.5, 0.5, 0.02),), True)
    cut = excerpt_of(full)
    assert cut.height < 200
    (box,) = cut.boxes
    assert 0 < box.top < 1 and box.top + box.height < 1


def test_card_shows_the_preview_of_a_cited_pdf_page_and_nothing_else_as_image() -> None:
    card = render.CardSource(1, "guide", "Guide", "", 3, "", "", "pdf", "", "Texte " + QUOTE + ".", (QUOTE,))
    html_ = render.guard(render.render_card(card, previews=True))
    assert '<img src="/documents/guide/pages/3/apercu?q=Un+catalyseur' in html_ and "vue=extrait" in html_
    assert 'loading="lazy"' in html_ and "passage cité surligné" in html_
    assert 'href="/documents/guide/pages/3?q=' in html_
    assert "<img" not in render.guard(render.render_card(card))  # previews off: the link only
    # The guard keeps no other image, whatever its source.
    for src in ("http://10.0.0.1/x.png", "/documents/guide", "javascript:alert(1)", "/autre/apercu"):
        assert "src=" not in render.guard(f'<p><img src="{src}" alt="x"></p>'), src


def test_preview_links_carry_bounded_quotes() -> None:
    quotes = ["a" * 5000] + [f"phrase {i}" for i in range(10)]
    assert len(clean_quotes(quotes)) == 6 and len(clean_quotes(quotes)[0]) == 1500
    assert preview_href("doc id", 2, []) == "/documents/doc%20id/pages/2/apercu"


def test_document_view_highlights_the_quote_and_anchors_it() -> None:
    text = "# Titre\n\nIntro.\n\n- le kit « co-construction » ;\n- le kit « Sortir de la crise ».\n\nFin <b>."
    quote = "le kit « co-construction » ; le kit « Sortir de la crise »"
    assert quote_spans(text, [quote])
    doc = ServedDocument("m", Path("m.md"), CatalogEntry("m", "m.md", title="M", format="md"))
    page = render_document_view(doc, [(1, text)], [quote])
    assert '<li><mark id="citation">le kit « co-construction » ;</mark></li>' in page
    assert "<li><mark>le kit « Sortir de la crise »</mark>.</li>" in page
    assert "le passage cité est surligné" in page and "Fin &lt;b&gt;." in page
    assert "<mark" not in render_document_view(doc, [(1, text)], ["absente de la page"])


def test_non_pdf_card_links_to_the_quote() -> None:
    text = "Le MOOC est gratuit."
    card = render.CardSource(1, "mooc", "MOOC", "", 1, "", "", "md", "", text, (text,))
    html_ = render.render_card(card)
    assert 'href="/documents/mooc?q=Le+MOOC+est+gratuit.#citation"' in html_
    assert "Ouvrir le document au passage cité" in html_


def test_a_quoted_list_is_shown_as_a_list_with_its_words_unchanged() -> None:
    text = ("- « Elle propose trois kits : • le kit « co-construction », en open source ; • le kit « Sortir de "
            "la crise » ; • le kit « ODD 17 ». » [1]\n- « Un seul • point. » [2]")
    html_ = render.text_blocks(text)
    assert ('« Elle propose trois kits :<ul class="liste-citee"><li>le kit « co-construction », en open source ;</li>'
            "<li>le kit « Sortir de la crise » ;</li><li>le kit « ODD 17 ».</li></ul> » "
            '<span class="appel">[1]</span>') in html_.replace("&quot;", '"')
    assert "« Un seul • point. »" in html_  # one bullet is not a list
