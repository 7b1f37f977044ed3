"""HTML of the chat answers, their source cards and the Sources tab — built here, escaped here.

Rules that keep whatever a document, a question or a model says from running in the page:
every piece of text goes through :func:`esc`; links are built only from document ids (our own
route) and canonical URLs that are plain ``http(s)``; the finished fragment is passed through
``nh3`` with an allow-list as a second guard. Source cards come from the Answer's citations,
never from the answer text.

Chat fragments are returned on ONE line: Gradio's chatbot reads its messages as Markdown, and an
HTML block without blank lines is left as HTML (no Markdown image or link syntax is interpreted
inside it).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import nh3

from assistant.schema import Answer, Citation, Passage

MODE_LABELS = {
    "extractive": "extraits des documents",
    "llm": "réponse rédigée par le modèle de langage, phrases vérifiées dans les sources",
}
STATUS_LABELS = {"indexed": "Indexé", "unchanged": "Inchangé", "failed": "Échec"}
DOC_ROUTE = "/documents"
_CONTEXT_CHARS = 420  # text kept on each side of a highlighted quote in a card

_ALLOWED_TAGS = {
    "a", "article", "blockquote", "br", "caption", "details", "div", "em", "h2", "h3", "h4", "img", "li", "mark",
    "ol", "p", "section", "small", "span", "strong", "summary", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ALLOWED_ATTRIBUTES = {
    "*": {"class", "id", "aria-label", "lang"},
    "a": {"href", "target", "title"},
    "img": {"src", "alt", "loading", "decoding"},
    "th": {"scope"},
    "td": {"data-label"},
    "details": {"open"},
}
# The only images a fragment may show: page previews served by the app's own document route.
_IMAGE_PREFIX = DOC_ROUTE + "/"


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "img" and name == "src" and not (value.startswith(_IMAGE_PREFIX) and "/apercu" in value):
        return None
    return value


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def guard(fragment: str) -> str:
    """Second line of defence: only our tags and attributes, only http(s) or relative links."""
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=_filter_attribute,
    )


def safe_url(url: str) -> str | None:
    """A canonical URL we may link to: absolute http(s) with a host, no credentials, no spaces."""
    url = (url or "").strip()
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return url


def document_href(doc_id: str, page: int = 1, base: str = DOC_ROUTE) -> str:
    """Link to a document of the catalog through the app's own route; ``#page=N`` opens PDFs at N."""
    return f"{base}/{quote(doc_id, safe='')}#page={max(int(page), 1)}"


def cited_href(doc_id: str, quotes: Sequence[str], base: str = DOC_ROUTE) -> str:
    """Link to a non-paginated document's text view, scrolled to the first quote, the quotes highlighted."""
    from urllib.parse import urlencode

    params = urlencode([("q", q.strip()[:1500]) for q in quotes if q.strip()][:6])
    href = f"{base}/{quote(doc_id, safe='')}"
    return f"{href}?{params}#citation" if params else href


def _inline(text: str) -> str:
    """Escaped text with citation markers ``[n]`` styled (never turned into links)."""
    escaped = esc(text)
    return re.sub(r"\[(\d{1,2})\]", r'<span class="appel">[\1]</span>', escaped)


def text_blocks(text: str) -> str:
    """Answer text → escaped paragraphs and ``- `` lists, on one line.

    Blank lines separate blocks; a line starting with ``- `` starts a list item; any other line
    continues the item or paragraph before it (quotes from PDFs keep the page's line breaks).
    """
    out: list[str] = []
    items: list[list[str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{_inline_lines(paragraph)}</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{quoted_list(_inline_lines(i))}</li>" for i in items) + "</ul>")
            items.clear()

    for line in (text or "").splitlines():
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("- "):
            if paragraph:
                flush()
            items.append([stripped[2:]])
        elif items:
            items[-1].append(stripped)
        else:
            paragraph.append(stripped)
    flush()
    return "".join(out)


_BULLET = re.compile(r"\s*(?<![^\s«])[•▪◦]\s+")
_QUOTE_END = re.compile(r"\s*»(?:\s*<span class=\"appel\">\[\d{1,2}\]</span>)?\s*$")


def quoted_list(item_html: str) -> str:
    """A quote whose page had a list (« … : • le kit … • le kit … ») shown as a list again.

    The answer's text holds the quote on one line (its bullets inline); the words stay as they are, only
    the « • » markers become list items."""
    pieces = _BULLET.split(item_html)
    if len(pieces) < 3:  # one bullet alone is more likely a separator than a list
        return item_html
    head, entries = pieces[0], pieces[1:]
    tail = ""
    if (end := _QUOTE_END.search(entries[-1])) is not None:
        entries[-1], tail = entries[-1][:end.start()], " " + end.group().strip()
    items = "".join(f"<li>{e}</li>" for e in entries if e.strip())
    return f'{head}<ul class="liste-citee">{items}</ul>{tail}'


def _inline_lines(lines: list[str]) -> str:
    # A line that starts with a bullet keeps its break; other breaks were the page's layout.
    html_ = _inline(lines[0])
    for line in lines[1:]:
        html_ += ("<br>" if line.startswith(("•", "–", "*")) else " ") + _inline(line)
    return html_


def highlight(text: str, quotes: Iterable[str], context: int = _CONTEXT_CHARS) -> tuple[str, bool]:
    """The passage around the quoted sentences, each wrapped in ``<mark>``; (html, all quotes found)."""
    spans: list[tuple[int, int]] = []
    all_found = True
    for q in quotes:
        words = (q or "").split()
        if not words:
            continue
        match = re.search(r"\s+".join(re.escape(w) for w in words), text)
        if match is None:
            all_found = False
            continue
        spans.append((match.start(), match.end()))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    if merged:
        start = max(0, merged[0][0] - context)
        end = min(len(text), merged[-1][1] + context)
    else:
        start, end = 0, min(len(text), 2 * context)
    # Cut on word boundaries so an excerpt never starts or ends mid-word.
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < (merged[0][0] if merged else end) else start
    if end < len(text):
        space = text.rfind(" ", merged[-1][1] if merged else start, end)
        end = space if space > 0 else end
    pieces = ["… " if start > 0 else ""]
    cursor = start
    for s, e in merged:
        pieces.append(_lines(text[cursor:s]))
        pieces.append(f"<mark>{_lines(text[s:e])}</mark>")
        cursor = e
    pieces.append(_lines(text[cursor:end]))
    pieces.append(" …" if end < len(text) else "")
    return "".join(pieces), all_found


_LINE_BREAK = re.compile(r"\n(?=\s*(?:[•\-–*]|\d+[.)]\s|\n|#))|\n\s*\n")


def _lines(text: str) -> str:
    """Escaped text; a line break is kept before a bullet or a new paragraph, otherwise it was
    only the layout of the page (PDF lines) and becomes a space."""
    pieces = _LINE_BREAK.split(text)
    return "<br>".join(esc(re.sub(r"\s*\n\s*", " ", piece)) for piece in pieces)


# -- chat ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardSource:
    """What a source card shows, whether it comes from a live Citation or a stored one."""

    n: int
    doc_id: str
    title: str
    publisher: str
    page: int
    page_label: str
    section: str
    format: str
    url: str
    text: str
    quotes: tuple[str, ...]
    ocr: bool = False  # the passage was read by OCR on a scanned page
    edition: str = ""  # the manifest's edition label of the document quoted

    @property
    def printed_page(self) -> str:
        return self.page_label or str(self.page)


def cards_from_citations(citations: Sequence[Citation]) -> list[CardSource]:
    by_n: dict[int, tuple[Passage, list[str]]] = {}
    for c in citations:
        _, quotes = by_n.setdefault(c.n, (c.passage, []))
        if c.quote and c.quote not in quotes:
            quotes.append(c.quote)
    return [_card(n, p, tuple(q)) for n, (p, q) in sorted(by_n.items())]


def cards_from_passages(passages: Sequence[Passage], limit: int = 3) -> list[CardSource]:
    """The closest documents (one card per document) for a refusal."""
    seen: dict[str, Passage] = {}
    for p in passages:
        seen.setdefault(p.doc_id, p)
    return [_card(i, p, ()) for i, p in enumerate(list(seen.values())[:limit], start=1)]


def _card(n: int, p: Passage, quotes: tuple[str, ...]) -> CardSource:
    return CardSource(n, p.doc_id, p.title, p.publisher, p.page, p.page_label, p.section, p.format, p.url, p.text,
                      quotes, p.ocr, p.edition)


def render_preview(card: CardSource, doc_base: str = DOC_ROUTE) -> str:
    """The cited PDF page, cut around the highlighted quote, linking to the whole page shown large."""
    from webui.preview import preview_href

    if doc_base != DOC_ROUTE:  # previews are served by the app's own route only
        return ""
    image = esc(preview_href(card.doc_id, card.page, card.quotes, view="excerpt"))
    large = esc(preview_href(card.doc_id, card.page, card.quotes, view="large"))
    alt = (f"Aperçu de la page {esc(card.printed_page)}, passage cité surligné en jaune "
           "(afficher la page en grand, nouvel onglet)")
    return (f'<p class="apercu"><a href="{large}" target="_blank"><img src="{image}" alt="{alt}" loading="lazy" '
            'decoding="async"></a></p>')


def render_card(card: CardSource, *, doc_base: str = DOC_ROUTE, numbered: bool = True,
                previews: bool = False, opened: bool = True) -> str:
    """One source card; its title line folds and unfolds the rest (a native ``<details>``: keyboard and screen
    readers need no script), so that on a phone a long answer's sources take one line each until opened."""
    title = esc(card.title or card.doc_id)
    meta = []
    if card.publisher:
        meta.append(f"Éditeur : {esc(card.publisher)}")
    if card.edition:
        meta.append(f"Édition : {esc(card.edition)}")
    meta.append(f"Page {esc(card.printed_page)}" if card.format == "pdf" else "Document non paginé")
    if card.section:
        meta.append(f"Section : {esc(card.section)}")
    if card.ocr:
        meta.append("Page numérisée, texte lu par OCR : vérifiez sur l'original")
    excerpt, found = highlight(card.text, card.quotes)
    missing = ""
    if card.quotes and not found:
        missing = "".join(f'<p class="citation">Phrase citée : « {esc(q)} »</p>' for q in card.quotes)
    open_label = (f"Ouvrir à la page {esc(card.printed_page)}" if card.format == "pdf"
                  else "Ouvrir le document au passage cité" if card.quotes else "Ouvrir le document")
    href = (document_href(card.doc_id, card.page, doc_base) if card.format == "pdf" or not card.quotes
            else cited_href(card.doc_id, card.quotes, doc_base))
    links = [
        f'<a href="{esc(href)}" target="_blank">{open_label}'
        f'<span class="sr-only"> : « {title} » (nouvel onglet)</span></a>'
    ]
    url = safe_url(card.url)
    if url:
        links.append(
            f'<a href="{esc(url)}" target="_blank">Publication d\'origine'
            f'<span class="sr-only"> de « {title} » (site externe, nouvel onglet)</span></a>'
        )
    number = f'<span class="num">[{card.n}]</span> ' if numbered else ""
    return (
        f'<li class="carte"><details{" open" if opened else ""}>'
        f'<summary class="carte-titre">{number}<strong>{title}</strong></summary>'
        f'<p class="carte-meta">{" · ".join(meta)}</p>{missing}'
        f'<blockquote class="extrait">{excerpt}</blockquote>'
        f'{render_preview(card, doc_base) if previews and card.format == "pdf" and card.quotes else ""}'
        f'<p class="carte-liens">{" ".join(links)}</p></details></li>'
    )


def render_cards(cards: Sequence[CardSource], *, closest: bool = False, doc_base: str = DOC_ROUTE,
                 previews: bool = False) -> str:
    if not cards:
        return ""
    heading = "Documents les plus proches de votre question" if closest else "Sources citées"
    # The first card open: the best source is read at once, the others one tap away.
    items = "".join(render_card(c, doc_base=doc_base, numbered=not closest, previews=previews, opened=i == 0)
                    for i, c in enumerate(cards))
    return (f'<section class="sources" aria-label="{heading}"><h3>{heading}</h3>'
            f'<ol class="cartes">{items}</ol></section>')


def mode_line(mode: str, plain_language: bool, notice: str = "") -> str:
    label = MODE_LABELS.get(mode, mode)
    parts = [f"Mode : {esc(label)}"]
    if plain_language:
        parts.append("langage simple")
    line = f'<p class="mode">{" · ".join(parts)}</p>'
    if notice:
        line += f'<p class="avis-systeme" role="note">{esc(notice)}</p>'
    return line


def render_answer(answer: Answer, *, plain_language: bool = False, doc_base: str = DOC_ROUTE,
                  previews: bool = False) -> str:
    """The final chat message: mode, the answer, then its source cards (or the closest documents).

    ``previews``: cited PDF pages are shown as images, the quote highlighted (see :mod:`webui.preview`)."""
    understood = ""
    if answer.standalone_question.strip() != answer.question.strip():
        understood = f'<p class="comprise">Question comprise : « {esc(answer.standalone_question)} »</p>'
    if answer.citations:
        cards = render_cards(cards_from_citations(answer.citations), doc_base=doc_base, previews=previews)
    else:
        cards = render_cards(cards_from_passages(answer.passages), closest=True, doc_base=doc_base)
    body = (
        f'<div class="reponse">{mode_line(answer.mode, plain_language, answer.notice)}{understood}'
        f'<div class="texte">{text_blocks(answer.text)}</div>{cards}</div>'
    )
    return guard(body)


def render_pending(text: str = "") -> str:
    """A message still being written (streaming)."""
    if not text.strip():
        return '<div class="reponse en-cours"><p><em>Recherche dans les documents…</em></p></div>'
    return guard(f'<div class="reponse en-cours"><div class="texte">{text_blocks(text)}</div></div>')


def render_error(message: str) -> str:
    return guard(f'<div class="reponse erreur" role="alert"><p>{esc(message)}</p></div>')


def render_user(question: str) -> str:
    return guard(f'<div class="question"><p>{_lines(question)}</p></div>')


# -- Sources tab ------------------------------------------------------------------------------


def render_status(status: Mapping[str, Any]) -> str:
    if not status.get("generation"):
        return guard('<p class="statut" role="status">Aucun index n\'est disponible : lancez l\'indexation '
                     "du corpus (<strong>python -m ingest</strong>).</p>")
    parts = [
        f"Index : génération <strong>{esc(status['generation'])}</strong>",
        f"{esc(status.get('documents', 0))} documents",
        f"{esc(status.get('passages', 0))} passages",
    ]
    if status.get("failed"):
        parts.append(f"{esc(status['failed'])} en échec")
    parts.append(f"Embeddings : {esc(status.get('embedder', ''))}")
    parts.append(f"Modèle de langage : {esc(status.get('llm', 'aucun'))}")
    return guard(f'<p class="statut" role="status">{" · ".join(parts)}</p>')


_DAY_FIRST = re.compile(r"\d{1,2}(?:er)?[\s/.-]")  # a label that starts with the day of the month


def edition_of(label: str) -> str:
    """« du 12/03/2026 », « du 1er mars 2026 », but « de mars 2026 », « de 2020 »: the words after « l'édition »."""
    return f"{'du' if _DAY_FIRST.match(label) else 'de'} {label}"


def edition_day(label: str, indexed_at: str = "") -> str:
    """An edition as officials write it: the manifest's label (an ISO date becomes 12/03/2026), else the
    day its file was indexed."""
    label = label.strip() or indexed_at
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:T.*)?", label)
    return f"{match[3]}/{match[2]}/{match[1]}" if match else label


def _edition_cell(r: Mapping[str, Any]) -> str:
    """The edition in service, its short content hash, and the edition it replaced (if any)."""
    day = edition_day(str(r.get("edition", "")), str(r.get("indexed_at", "")))
    if not day:
        return ""
    cell = esc(day)
    digest = str(r.get("file_hash", ""))[:8]
    if digest:
        cell += f'<br><small>empreinte du contenu : <span class="empreinte">{esc(digest)}</span></small>'
    replaces = str(r.get("replaces", ""))
    if r.get("replaced_at"):
        old = f"l'édition {edition_of(edition_day(replaces))}" if replaces else "l'édition précédente"
        cell += f"<br><small>remplace {esc(old)} (depuis le {esc(edition_day(str(r['replaced_at'])))})</small>"
    return cell


def render_documents_table(rows: Sequence[Mapping[str, Any]], *, doc_base: str = DOC_ROUTE) -> str:
    if not rows:
        return guard('<p class="vide">Aucun document ne correspond à votre recherche.</p>')
    head = ("Titre", "Éditeur", "Édition", "Format", "Pages", "Passages", "Indexé le", "État")
    lines = []
    for r in rows:
        title = esc(r.get("title") or r.get("source_path", ""))
        if r.get("doc_id") and r.get("passages"):
            title = (f'<a href="{esc(document_href(str(r["doc_id"]), 1, doc_base))}" target="_blank">{title}'
                     '<span class="sr-only"> (nouvel onglet)</span></a>')
        if r.get("source_path"):
            title += f'<br><small>{esc(r["source_path"])}</small>'
        state = esc(STATUS_LABELS.get(str(r.get("status", "")), r.get("status", "")))
        if r.get("reason"):
            state += f" : {esc(r['reason'])}"
        cells = [
            title, esc(r.get("publisher", "")), _edition_cell(r), esc(str(r.get("format", "")).upper()),
            esc(r.get("pages", "")),
            esc(r.get("passages", "")), esc(format_date(str(r.get("indexed_at", "")))), state,
        ]
        tds = "".join(f'<td data-label="{h}">{c}</td>' for h, c in zip(head, cells, strict=True))
        lines.append(f'<tr class="etat-{esc(r.get("status", ""))}">{tds}</tr>')
    ths = "".join(f'<th scope="col">{h}</th>' for h in head)
    caption = f"{len(rows)} document(s)"
    return guard(f'<table class="catalogue"><caption>{caption}</caption><thead><tr>{ths}</tr></thead>'
                 f'<tbody>{"".join(lines)}</tbody></table>')


def format_date(iso: str) -> str:
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})", iso)
    if not match:
        return iso
    y, m, d, hh, mm = match.groups()
    return f"{d}/{m}/{y} {hh} h {mm} (UTC)"


def render_page_passages(title: str, page: int, pages: int, passages: Sequence[Passage]) -> str:
    if not passages:
        return guard(f'<p class="vide">Aucun passage indexé à la page {esc(page)}.</p>')
    items = []
    for p in passages:
        section = f' — <span class="section">{esc(p.section)}</span>' if p.section else ""
        items.append(f'<li class="passage"><p class="passage-meta">Passage n° {esc(p.chunk_index + 1)}'
                     f'{section}</p><blockquote>{_lines(p.text)}</blockquote></li>')
    return guard(f'<section aria-label="Passages de la page {esc(page)}"><h3>« {esc(title)} » — page {esc(page)} '
                 f'sur {esc(pages)} ({len(passages)} passage(s))</h3><ol class="passages">{"".join(items)}</ol>'
                 "</section>")


def render_answer_trace(record: Any, *, doc_base: str = DOC_ROUTE) -> str:
    """A past answer: the question, then every retrieved passage, in rank order, marked cited or not."""
    cited = {str(c.get("passage_id")): int(c.get("n", 0)) for c in record.citations}
    head = (
        f'<p class="trace-meta">{esc(format_date(record.created_at))} · canal : {esc(record.channel)} · '
        f"mode : {esc(MODE_LABELS.get(record.mode, record.mode))}"
        f'{" · langage simple" if record.plain_language else ""}{" · refus" if record.abstained else ""}</p>'
        f"<p><strong>Question :</strong> {esc(record.question)}</p>"
    )
    if record.standalone_question != record.question:
        head += f"<p><strong>Question autonome :</strong> {esc(record.standalone_question)}</p>"
    head += f'<div class="texte">{text_blocks(record.answer)}</div>'
    rows = []
    for rank, p in enumerate(record.passages, start=1):
        n = cited.get(str(p.get("id")))
        mark = f"Oui [{n}]" if n else "Non"
        scores = [f"fusion {float(p.get('score') or 0):.4f}"]
        if p.get("dense_score") is not None:
            scores.append(f"dense {float(p['dense_score']):.3f}")
        if p.get("bm25_score") is not None:
            scores.append(f"BM25 {float(p['bm25_score']):.2f}")
        where = f"page {esc(p.get('page_label') or p.get('page'))}" if p.get("format") == "pdf" else ""
        title = esc(p.get("title", ""))
        link = (f'<a href="{esc(document_href(str(p.get("doc_id", "")), int(p.get("page") or 1), doc_base))}" '
                f'target="_blank">{title}</a>') if p.get("doc_id") else title
        quotes = [str(c.get("quote", "")) for c in record.citations if str(c.get("passage_id")) == str(p.get("id"))]
        excerpt, _ = highlight(str(p.get("text", "")), quotes, context=10_000)
        cells = [esc(rank), mark, f"{link} {where}".strip(), esc(" · ".join(scores)), excerpt]
        rows.append(f'<tr class="{"cite" if n else "non-cite"}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    ths = "".join(f'<th scope="col">{h}</th>' for h in ("Rang", "Cité", "Document", "Scores", "Passage"))
    table = (f'<table class="trace"><caption>{len(record.passages)} passage(s) retrouvé(s)</caption>'
             f'<thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>') if rows else \
        '<p class="vide">Aucun passage retrouvé.</p>'
    return guard(f'<div class="trace-reponse">{head}{table}</div>')
