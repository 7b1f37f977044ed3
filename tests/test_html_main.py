"""HTML main text: trafilatura for pages without semantic tags, the markup reader for the others and as fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from ingest.clean import normalise_text
from ingest.formats import _markup_text, load_html
from ingest.html_main import main_text
from ingest.load import load_file
from ingest.split import split_pages
from tests.conftest import ROOT

CORPUS = ROOT / "corpus"

# Only <div>s: no <main>, <article>, <nav>, <header>, <footer>, role or hidden attribute to go by.
PAGE_WITHOUT_SEMANTIC_TAGS = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Le pacte de coopération territoriale</title>
<meta name="author" content="Réseau des communes coopératives"></head>
<body>
<div id="cookie-banner" class="cookie-consent">
  <p>Ce site utilise des cookies pour mesurer son audience. BANNIERE-COOKIES</p>
  <a href="#">Tout accepter</a> <a href="#">Tout refuser</a> <a href="/cookies">Personnaliser</a>
</div>
<div class="top-bar">
  <div class="logo"><a href="/">Réseau des communes coopératives</a></div>
  <div class="menu"><ul>
    <li><a href="/">Accueil</a></li><li><a href="/actualites">Actualités MENU-PRINCIPAL</a></li>
    <li><a href="/ressources">Ressources</a></li><li><a href="/contact">Nous contacter</a></li>
  </ul></div>
</div>
<div class="breadcrumb"><a href="/">Accueil</a> &gt; <a href="/ressources">Ressources</a> &gt; Pacte</div>
<div class="content">
  <div class="post">
    <h1>Le pacte de coopération territoriale</h1>
    <div class="share">Partager : <a href="https://facebook.com/share">Facebook</a>
      <a href="https://x.com/share">X PARTAGE-RESEAUX</a> <a href="mailto:?">Courriel</a></div>
    <p>Le pacte de coopération territoriale réunit la commune, les associations et les entreprises du territoire
    autour d'objectifs communs. Il se signe pour la durée du mandat et se révise chaque année en conseil
    municipal.</p>
    <h2>Les étapes du pacte</h2>
    <p>La commune commence par un diagnostic partagé des fragilités et des ressources du territoire, mené avec
    les acteurs locaux volontaires.</p>
    <ul>
      <li>Réunir les partenaires pressentis lors d'une première rencontre ouverte.</li>
      <li>Choisir ensemble deux ou trois priorités pour les trois années à venir.</li>
      <li>Désigner un élu référent et un agent chargé du suivi du pacte.</li>
    </ul>
    <h2>Le suivi par le conseil municipal</h2>
    <p>Chaque année, le maire présente au conseil municipal un bilan des actions menées, des moyens engagés par
    chaque partenaire et des résultats obtenus pour les habitants.</p>
  </div>
  <div class="sidebar"><h3>Articles récents</h3>
    <ul><li><a href="/a1">Les budgets participatifs</a></li><li><a href="/a2">La commande publique</a></li></ul>
  </div>
</div>
<div class="footer">
  <p>© 2026 Réseau des communes coopératives — Mentions légales — PIED-DE-PAGE</p>
  <ul><li><a href="/plan">Plan du site</a></li><li><a href="/accessibilite">Accessibilité</a></li></ul>
</div>
</body></html>
"""
CONTENT = ["autour d'objectifs communs", "diagnostic partagé des fragilités",
           "- Choisir ensemble deux ou trois priorités", "bilan des actions menées"]
CHROME = ["BANNIERE-COOKIES", "MENU-PRINCIPAL", "Nous contacter", "Accueil", "PARTAGE-RESEAUX",
          "Facebook", "Articles récents", "budgets participatifs", "PIED-DE-PAGE", "Mentions légales", "Plan du site"]
META = {"source_path": "pacte.html", "doc_id": "pacte", "title": "Pacte", "publisher": "Réseau", "url": "",
        "edition": "", "themes": "", "format": "html", "file_hash": "x"}


def test_the_markup_reader_alone_keeps_the_chrome_of_a_page_without_semantic_tags() -> None:
    # What the page is here for: read by its markup, the banner, menu, share links and footer come along.
    soup = BeautifulSoup(PAGE_WITHOUT_SEMANTIC_TAGS, "html.parser")
    text = _markup_text(soup.body)
    assert all(chrome in text for chrome in CHROME)


def test_page_without_semantic_tags_gives_passages_of_its_content_only(tmp_path: Path) -> None:
    (tmp_path / "pacte.html").write_text(PAGE_WITHOUT_SEMANTIC_TAGS, encoding="utf-8")
    loaded = load_file(tmp_path / "pacte.html", tmp_path)  # in the loading child process, under its caps
    assert loaded.title == "Le pacte de coopération territoriale"
    passages = split_pages(loaded.pages, META, chunk_words=40, overlap_words=0)
    text = "\n".join(p.page_content for p in passages)
    for content in CONTENT:
        assert content in text
    for chrome in CHROME:
        assert chrome not in text, f"«{chrome}» leaks into the passages"
    sections = [p.metadata["section"] for p in passages]
    assert "Les étapes du pacte" in sections and "Le suivi par le conseil municipal" in sections


def test_page_where_trafilatura_finds_nothing_is_read_by_its_markup() -> None:
    html = ("<html><head><title>Liens utiles</title></head><body><div class='liste'><ul>"
            "<li><a href='/a'>Le guide des alliances territoriales</a></li>"
            "<li><a href='/b'>Le kit co-construction territoriale</a></li></ul></div></body></html>")
    assert main_text(html) == ""
    raw = load_html(html)
    assert raw.pages == ["- Le guide des alliances territoriales\n- Le kit co-construction territoriale"]
    assert raw.title == "Liens utiles"


def test_trafilatura_failing_on_a_page_falls_back_to_the_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    import trafilatura

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("page inattendue")

    monkeypatch.setattr(trafilatura, "bare_extraction", broken)
    text = load_html(PAGE_WITHOUT_SEMANTIC_TAGS).pages[0]
    assert "diagnostic partagé des fragilités" in text and "## Les étapes du pacte" in text


def test_page_with_main_keeps_its_link_lists_and_tables() -> None:
    # trafilatura drops link-only lists: a page that marks its content up is read by its markup.
    html = ("<html><body><nav><a href='/'>Accueil</a></nav><main><h1>Les ressources du réseau</h1>"
            "<p>Le réseau publie des <strong>guides pratiques</strong> pour les élus.</p>"
            "<h2>Pour aller plus loin</h2><ul><li><a href='/a'>Le guide des alliances</a></li>"
            "<li><a href='/b'>Le kit co-construction</a></li></ul>"
            "<table><tr><th>Année</th><th>Communes</th></tr><tr><td>2021</td><td>150</td></tr></table></main>"
            "<footer>Mentions légales</footer></body></html>")
    assert load_html(html).pages[0].split("\n") == [
        "# Les ressources du réseau", "Le réseau publie des guides pratiques pour les élus.", "",
        "## Pour aller plus loin", "- Le guide des alliances", "- Le kit co-construction", "Année | Communes",
        "2021 | 150"]


def test_trafilatura_tree_is_written_as_light_markdown() -> None:
    # Headings as ``#`` lines, no Markdown escapes (``\\*``, ``\\[``), no line cut at ``<br>``, no ``**``.
    step = ("<p>Une étape assez longue pour que la page compte comme un article véritable, avec des mots du "
            "territoire et de la commune.</p>")
    html = ("<html><body><div class='x'><h1>Le pacte de coopération</h1><p>Selon l'article L. 2121-29, le "
            "1<sup>er</sup> conseil <b>*vote*</b> [le pacte] et une<br>ligne.</p><h2>Les étapes</h2>" + step
            + step + "<h2>Les chiffres</h2>" + step + "</div></body></html>")
    lines = [line for line in main_text(html).split("\n") if line]
    assert lines[:3] == ["# Le pacte de coopération",
                         "Selon l'article L. 2121-29, le 1er conseil *vote* [le pacte] et une ligne.", "## Les étapes"]
    assert "## Les chiffres" in lines


@pytest.mark.parametrize("rel", sorted(p.name for p in CORPUS.glob("*.html")))
def test_shipped_html_fiches_keep_their_headings_as_sections(rel: str) -> None:
    soup = BeautifulSoup((CORPUS / rel).read_text(encoding="utf-8"), "html.parser")
    main = soup.find("main") or soup.find("article")
    assert main is not None
    for aside in main.find_all("aside"):  # related fiches: links, not content
        aside.decompose()
    headings = [normalise_text(h.get_text(" ", strip=True)) for h in main.find_all(["h2", "h3"])]
    loaded = load_file(CORPUS / rel, CORPUS)
    parts = {part for p in split_pages(loaded.pages, META) for part in p.metadata["section"].split(" > ")}
    assert set(headings) <= parts
    text = loaded.pages[0].page_content
    assert all(f"## {h}\n" in text or f"### {h}\n" in text for h in headings)
    assert "\n- " in text  # the lists stay lists
