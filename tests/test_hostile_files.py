"""Small files built to make ingestion slow or greedy: every format under a time and memory cap, a splitter
whose work grows with the text's length (never its square), and a bound on the passages of one file.

No test here measures a duration: caps are checked with tiny budgets, and linear cost with operation counts.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter

from assistant import store
from assistant.settings import Settings, SettingsError
from ingest import split as split_module
from ingest.formats import load_docx, load_html
from ingest.index import run_ingest
from ingest.load import LoadError, LoadLimits, load_file
from ingest.split import MAX_WORD_CHARS, GluedTextError, PassageBudgetError, split_pages
from tests.builders import make_html


def _page(text: str) -> list[Document]:
    return [Document(page_content=text, metadata={"page": 1, "page_label": ""})]


# --- every format under the caps -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mooc.md", "observatoire.html", "lettre.docx", "notes-latin1.txt"])
def test_every_format_is_read_under_the_time_cap(tiny_corpus: Path, name: str) -> None:
    with pytest.raises(LoadError) as info:
        load_file(tiny_corpus / name, tiny_corpus, LoadLimits(pdf_timeout_s=0.001))
    assert info.value.reason.startswith("délai de lecture dépassé (0.001 s)")


def test_every_format_is_read_under_the_memory_cap(tiny_corpus: Path) -> None:
    # 1 Mo: the child cannot even import its reader.
    with pytest.raises(LoadError, match="mémoire dépassée"):
        load_file(tiny_corpus / "observatoire.html", tiny_corpus, LoadLimits(pdf_memory_mb=1))


def test_a_file_over_a_cap_fails_alone_and_leaves_nothing(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = settings.corpus_dir
    (corpus / "sans-espaces.md").write_text("x" * 30_000, encoding="utf-8")
    (corpus / "mot-colle.md").write_text("Un texte normal. " * 200 + "y" * 1_000, encoding="utf-8")
    (corpus / "paragraphes.txt").write_text("\n\n".join(f"mot{i}" for i in range(5_000)), encoding="utf-8")
    report = run_ingest(settings.with_overrides(max_passages_per_file=20), embedder=fake_embedder, progress=False)
    reasons = {f["path"]: f["reason"] for f in report.failed}
    assert set(reasons) == {"paragraphes.txt", "sans-espaces.md"}
    assert reasons["paragraphes.txt"].startswith("trop de passages")
    assert reasons["sans-espaces.md"].startswith("texte sans espaces")
    # A run without spaces inside ordinary text is cut into words of MAX_WORD_CHARS characters, and indexed.
    assert sorted(report.indexed) == sorted(
        ["guide-alliances.pdf", "mooc.md", "observatoire.html", "lettre.docx", "notes-latin1.txt", "mot-colle.md"])
    gen = store.current_generation(settings.data_dir)
    assert gen is not None
    vs = store.open_vectorstore(settings, gen, fake_embedder)
    sources = {doc.metadata["source_path"] for _, doc, _ in store.iter_records(vs.collection)}
    assert not {"paragraphes.txt", "sans-espaces.md"} & sources and "mot-colle.md" in sources


def test_max_passages_per_file_is_a_validated_setting() -> None:
    assert Settings.from_env({"ASSISTANT_MAX_PASSAGES_PER_FILE": "500"}).max_passages_per_file == 500
    with pytest.raises(SettingsError, match="ASSISTANT_MAX_PASSAGES_PER_FILE"):
        Settings.from_env({"ASSISTANT_MAX_PASSAGES_PER_FILE": "0"})
    with pytest.raises(SettingsError, match="ASSISTANT_MAX_PASSAGES_PER_FILE doit être un nombre"):
        Settings.from_env({"ASSISTANT_MAX_PASSAGES_PER_FILE": "beaucoup"})


# --- the splitter ----------------------------------------------------------------------------------


def test_text_made_of_runs_without_spaces_is_refused() -> None:
    with pytest.raises(GluedTextError, match="texte sans espaces"):
        split_pages(_page("a" * 100_000), {"doc_id": "d"})


def test_runs_without_spaces_are_cut_into_words_of_bounded_length() -> None:
    text = "Une phrase ordinaire du guide. " * 4_000 + "a" * 100_000
    passages = split_pages(_page(text), {"doc_id": "d"}, chunk_words=60, overlap_words=10)
    assert len(passages) > 1
    assert max(len(w) for p in passages for w in p.page_content.split()) == MAX_WORD_CHARS
    assert all(len(p.page_content) <= 60 * (MAX_WORD_CHARS + 1) for p in passages)


def test_ordinary_words_and_addresses_are_not_cut() -> None:
    url = "https://www.exemple.fr/" + "chemin/" * 10  # 93 characters
    passages = split_pages(_page(f"Voir le guide {url} pour la suite."), {"doc_id": "d"})
    assert url in passages[0].page_content


def test_the_passage_budget_is_checked_before_splitting() -> None:
    with pytest.raises(PassageBudgetError, match="trop de passages"):
        split_pages(_page(" ".join(["mot"] * 10_000)), {"doc_id": "d"}, chunk_words=60, overlap_words=10,
                    max_passages=10)
    # 100,000 one-word paragraphs: merged into full passages, counted against the budget as they come.
    with pytest.raises(PassageBudgetError):
        split_pages(_page("\n\n".join(["mot"] * 2_000)), {"doc_id": "d"}, chunk_words=60, overlap_words=10,
                    max_passages=10)
    assert split_pages(_page("\n\n".join(["mot"] * 2_000)), {"doc_id": "d"}, chunk_words=60, overlap_words=10,
                       max_passages=100)


def test_the_start_of_each_passage_is_judged_on_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading the whole text before each passage cost the square of the page's length.
    searched: list[int] = []
    pattern = split_module._CLEAN_BEFORE

    class Counting:
        def search(self, text: str) -> Any:
            searched.append(len(text))
            return pattern.search(text)

    monkeypatch.setattr(split_module, "_CLEAN_BEFORE", Counting())
    text = "\n".join(f"Ligne {i} du texte." for i in range(20_000))
    passages = split_pages(_page(text), {"doc_id": "d"}, chunk_words=60, overlap_words=10)
    assert len(passages) > 100
    assert sum(searched) <= 300 * len(searched)


def test_the_bounded_window_judges_starts_as_the_whole_text_did() -> None:
    def whole(body: str, offset: int) -> bool:
        before = body[:offset]
        return not before.strip() or bool(split_module._CLEAN_BEFORE.search(before.rstrip(" \t")))

    rng = random.Random(4)
    alphabet = ["mot", " ", " ", "\n", "\n\n", ".", ",", "»", "\t", " " * 300]
    for _ in range(200):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        first = len(body) - len(body.lstrip())
        for offset in range(len(body) + 1):
            assert split_module._starts_clean(body, offset, first) == whole(body, offset), (body, offset)


def test_the_linear_header_splitter_gives_langchains_chunks() -> None:
    text = ("# Titre\n\nIntro.\n\n## Partie 1\n\nUn.\n\nDeux\nlignes.\n\n### Sous-partie\n\nTrois.\n\n"
            "## Partie 2\n\n```\n# pas un titre\n```\n\nQuatre.\n\n" + "\n\n".join(f"p{i}" for i in range(50)))
    levels = [("#" * n, f"h{n}") for n in range(1, 7)]
    ours = split_module._HeaderSplitter(headers_to_split_on=levels, strip_headers=True).split_text(text)
    theirs = MarkdownHeaderTextSplitter(headers_to_split_on=levels, strip_headers=True).split_text(text)
    assert [(d.page_content, d.metadata) for d in ours] == [(d.page_content, d.metadata) for d in theirs]


# --- the readers -----------------------------------------------------------------------------------


def test_docx_styles_are_resolved_once_not_per_paragraph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # python-docx scans every style for the default one at each ``paragraph.style``: 10,000 paragraphs, minutes.
    from docx import Document as DocxDocument
    from docx.styles.styles import Styles

    doc = DocxDocument()
    doc.add_heading("Guide", level=0)
    doc.add_heading("Partie", level=1)
    for i in range(300):
        doc.add_paragraph(f"Paragraphe {i}.")
    doc.add_paragraph("Un élément", style="List Bullet")
    doc.save(str(tmp_path / "long.docx"))
    calls: list[int] = []
    default = Styles.default

    def counting(self: Styles, style_type: Any) -> Any:
        calls.append(1)
        return default(self, style_type)

    monkeypatch.setattr(Styles, "default", counting)
    text = load_docx(tmp_path / "long.docx").pages[0]
    assert len(calls) <= 2
    assert text.startswith("# Guide") and "\n## Partie" in text and "- Un élément" in text
    assert "Paragraphe 299." in text


def test_deeply_nested_html_is_read_without_a_search_per_element(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bs4.element import Tag

    calls: list[str] = []
    for name in ("find", "find_parent"):
        original = getattr(Tag, name)

        def counting(self: Tag, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Tag, name, counting)
    html = ("<html><body><main>" + "<div>" * 400 + "<p>Au fond du texte.</p>" + "</div>" * 400
            + "<ul><li>Un <ul><li>imbriqué</li></ul></li></ul><table><tr><td>A</td><td>1</td></tr></table>"
            + "</main></body></html>")
    raw = load_html(html)
    assert len(calls) <= 5
    assert raw.pages[0].split("\n") == ["Au fond du texte.", "", "- Un imbriqué", "A | 1"]


def test_html_reader_keeps_its_output(tmp_path: Path) -> None:
    path = make_html(tmp_path / "p.html", "Page", "<h2>Partie</h2><div><p>Un.</p><div>Deux.</div></div>"
                     "<ul><li>Item <p>avec bloc</p></li></ul><table><tr><th>Nom</th><td>Valeur</td></tr></table>")
    text = load_html(path.read_text(encoding="utf-8")).pages[0]
    assert re.sub(r"\n+", "\n", text).strip().split("\n") == [
        "# Page", "## Partie", "Un.", "Deux.", "- Item avec bloc", "Nom | Valeur"]
