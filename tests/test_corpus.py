"""The shipped corpus: every resource of the issue is covered, the manifest matches the folder, sizes and formats.

Text is extracted here directly (pypdf, python-docx, bs4, plain read) so that these checks do not depend on
the ingestion loader they are meant to exercise.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from bs4 import BeautifulSoup
from docx import Document as DocxDocument
from pypdf import PdfReader

from ingest.manifest import DocumentEntry, load_manifest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
BUILD_SCRIPT = CORPUS / "_build" / "build.py"
INDEXABLE = {".pdf", ".html", ".htm", ".md", ".markdown", ".docx", ".txt"}
DESCRIPTIVE = {"sources.yaml", "glossary.yaml"}

# Resource of the issue → phrases that must appear (normalised) in a document whose manifest
# `covers` lists that resource. Figures are written exactly as in the facts.
MEMBERS = [
    "Adasi", "Admical", "Avise", "ANSA", "Caisse des Dépôts", "Convergences", "CESE", "CFF", "CGET", "Comité 21",
    "DJEPVA", "FACE Paris", "Fonda", "Global Compact France", "HCVA", "Labo de l'ESS", "Le RAMEAU",
    "Les Entreprises pour la Cité", "MEDEF", "Mouvement associatif", "Mouves", "Orse", "Pacte Civique",
]
RESOURCES: dict[str, list[str]] = {
    "lettre-aux-nouveaux-elus": [
        "nouveaux élus municipaux", "élections municipales de 2020", "6 ans", "open source",
        "Intérêt général : un concept en mutation", "JURIS Associations", "mars 2019",
    ],
    "collectif-interet-general": [
        "Intérêt général : dès aujourd'hui l'affaire de tous ?", "lancé en 2014", "23 organisations", *MEMBERS,
    ],
    "jouer-collectif-sortie-de-crise": [
        "Jouer collectif en sortie de crise", "81 %", "Comisis-OpinionWay", "mai 2020", "fragilités locales",
        "moteurs économiques durables",
    ],
    "le-rameau": ["Le RAMEAU", "créée en 2006", "laboratoire de recherche", "1 000", "500 organisations"],
    "programmes-de-recherche": [
        "ARPEA", "2008 à 2012", "PHARE", "2013 à 2018", "IMPACT", "novembre 2017", "PHARE-Citoyens",
        "septembre 2015", "69 %", "février 2018", "76 %", "46 %", "74 %", "81 %", "86 %", "87 %",
        "Les modèles de co-construction en territoire", "29 février 2016", "29 pages", "37 %", "38 %", "53 %",
        "65 %", "18 mois", "7 ans", "28 ans",
    ],
    "observatoire-des-partenariats": [
        "Observatoire des partenariats", "2008", "Caisse des Dépôts", "Le RAMEAU", "MEDEF", "Mouvement associatif",
        "10 profils d'acteurs",
    ],
    "impact-pratiques-innovantes": ["IMPACT-Pratiques innovantes", "plus de 200 études de cas", "monographies"],
    "kit-co-construction-territoriale": [
        "kit « co-construction territoriale »", "open source", "depuis 2008", "24 décembre 2018",
        "Parcours d'expérience", "26 pages", "janvier 2020", "Réseau des pionniers", "Fondation des Territoires",
        "charte « faire alliance »", "7 principes",
    ],
    "plateforme-innovation-territoriale": [
        "l'innovation territoriale en actions !", "Sortir de la crise en territoire", "L'ODD 17 en pratique",
        "Les exemples inspirants de co-construction territoriale", "21 février 2019", "accès libre",
    ],
    "kit-sortir-de-la-crise": [
        "Sortir de la crise en territoire", "l'innovation territoriale en actions !", "pas précisé",
    ],
    "odd17-en-pratique": [
        "L'ODD 17 en pratique", "ODD 17 : sens, décryptages, déclinaisons", "ODD 17 en pratiques", "19 cibles",
        "M.E.D.O.C.", "méthodes, exemples, données, outils, compétences",
    ],
    "agenda-2030": [
        "Agenda 2030", "septembre 2015", "193 États membres", "17 objectifs de développement durable",
        "169 cibles",
    ],
    "guide-comite-21": [
        "Comité 21", "novembre 2019", "Cerema", "Banque des Territoires", "associations d'élus", "ODD washing",
    ],
    "reseau-des-pionniers": [
        "Réseau des pionniers des alliances en territoire", "2014", "loi 1901", "2019", "12 novembre 2020",
        "depuis 2015",
    ],
    "catalyseurs-territoriaux": [
        "350 catalyseurs territoriaux", "quatre missions", "dialogue territorial", "expérimentation collective",
        "accompagnement", "animation d'un lieu", "troisième forme d'ingénierie territoriale",
    ],
    "mooc-alliances": [
        "Les alliances qui changent les territoires", "ESSEC", "Coursera", "gratuit", "côte à côte", "face à face",
        "facilitateur", "1,2 million", "4,5", "5,1", "67 %", "29 %", "26 %", "25 %", "performance", "innovation",
        "confiance", "cartographie des parties prenantes", "business model canvas",
    ],
    "observatoire-des-territoires": [
        "Observatoire des territoires", "2004", "1er janvier 2020", "Agence nationale de la cohésion des territoires",
        "indicateurs", "cartes", "La France en douze portraits", "2019-2020",
    ],
    "ifgp": [
        "IFGP", "gouvernance publique", "think tank", "enquêtes", "alliances entre collectivités et acteurs de la "
        "société civile", "modèles d'action publique à l'ère du numérique", "Comité 21",
    ],
    "glossaire": [
        "ODD", "objectifs de développement durable", "ESS", "économie sociale et solidaire", "RSE",
        "responsabilité sociétale des entreprises", "EPCI", "établissement public de coopération intercommunale",
        "ANCT", "CGET", "CESE", "Conseil économique, social et environnemental", "MOOC",
    ],
    "par-ou-commencer": [
        "Par où commencer", "associer les entreprises", "exemples", "former mon équipe",
        "données sur mon territoire", "crise",
    ],
}
# Addresses read in the facts that are cited in the text without being a manifest URL.
EXTRA_URLS = {"https://associations.gouv.fr", "https://departements.fr", "https://comite21.org"}


# --------------------------------------------------------------------------- extraction


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip().casefold()


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def docx_text(path: Path) -> str:
    doc = DocxDocument(str(path))
    parts = [p.text for p in doc.paragraphs]
    parts += [cell.text for table in doc.tables for row in table.rows for cell in row.cells]
    return "\n".join(parts)


def html_main_text(path: Path) -> str:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    for tag in soup.find_all(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "button"]):
        tag.decompose()
    for tag in soup.select('[role="dialog"]'):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    return root.get_text("\n")


def assert_source_order(build: Any, src: Any, text: str) -> None:
    """Each paragraph and list item of a built source opens, in source order, in the (normalised) ``text``."""
    position = 0
    for block in src.blocks:
        for piece in [block.text] if block.kind in ("p", "h2", "h3") else block.items:
            opening = " ".join(normalise(build.plain(piece)).split()[:7])
            found = text.find(opening, position)
            assert found >= 0, f"{src.output}: «{opening}» missing or out of order"
            position = found


@cache
def text_of(rel: str) -> str:
    path = CORPUS / rel
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return "\n".join(pdf_pages(path))
    if suffix == ".docx":
        return docx_text(path)
    if suffix in (".html", ".htm"):
        return html_main_text(path)
    return path.read_text(encoding="utf-8").replace("**", "")


def word_count(text: str) -> int:
    return sum(1 for token in text.split() if any(ch.isalnum() for ch in token))


@cache
def documents() -> tuple[DocumentEntry, ...]:
    return load_manifest(CORPUS / "sources.yaml").documents


def indexable_files() -> list[str]:
    found = []
    for path in sorted(CORPUS.rglob("*")):
        rel = path.relative_to(CORPUS)
        if any(part.startswith(("_", ".")) for part in rel.parts) or path.name in DESCRIPTIVE:
            continue
        if path.is_file() and path.suffix.lower() in INDEXABLE:
            found.append(rel.as_posix())
    return found


@cache
def load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_build", BUILD_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- (a) coverage


def test_every_covered_resource_is_in_the_phrase_table() -> None:
    covered = {key for doc in documents() for key in doc.covers}
    assert covered == set(RESOURCES), (
        f"not covered by any document: {sorted(set(RESOURCES) - covered)}; "
        f"covered but unknown to this test: {sorted(covered - set(RESOURCES))}"
    )


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_resource_phrases_are_in_a_covering_document(resource: str) -> None:
    covering = [d for d in documents() if resource in d.covers]
    assert covering, f"no document covers {resource}"
    texts = {d.id: normalise(text_of(d.file)) for d in covering if (CORPUS / d.file).exists()}
    assert texts, f"files of {resource} missing: {[d.file for d in covering]}"
    missing = [p for p in RESOURCES[resource] if not any(normalise(p) in t for t in texts.values())]
    assert not missing, f"{resource}: absent from {sorted(texts)}: {missing}"


def test_every_document_says_it_is_a_summary_and_where_the_original_is() -> None:
    for doc in documents():
        text = normalise(text_of(doc.file))
        assert "rédigé par le projet" in text, doc.file
        if doc.url:
            assert doc.url.casefold() in text, f"{doc.file} does not give its canonical address {doc.url}"


def test_urls_in_the_text_come_from_the_manifest() -> None:
    manifest = load_manifest(CORPUS / "sources.yaml")
    known = {d.url for d in manifest.documents if d.url} | {p.url for p in manifest.publications} | EXTRA_URLS
    known |= {"/".join(u.split("/")[:3]) for u in known}  # the bare site of a known page is fine too
    for doc in manifest.documents:
        for url in re.findall(r"https?://[^\s<>\"«»)]+", text_of(doc.file)):
            url = url.rstrip(".,;:")
            assert url in known, f"{doc.file}: address not in the manifest nor in the facts: {url}"


# --------------------------------------------------------------------------- (b) manifest and folder


def test_manifest_and_folder_agree() -> None:
    listed = [d.file for d in documents()]
    missing = [f for f in listed if not (CORPUS / f).is_file()]
    assert not missing, f"listed in sources.yaml but absent from corpus/: {missing}"
    unlisted = sorted(set(indexable_files()) - set(listed))
    assert not unlisted, f"indexable files absent from sources.yaml: {unlisted}"


def test_manifest_has_the_fourteen_documents_of_the_plan() -> None:
    assert len(documents()) == 14
    themes = load_manifest(CORPUS / "sources.yaml").themes
    assert themes and all(t in themes for d in documents() for t in d.themes)


# --------------------------------------------------------------------------- (c) sizes, (d) formats


@pytest.mark.parametrize("rel", [d.file for d in documents()])
def test_document_length(rel: str) -> None:
    if not (CORPUS / rel).exists():
        pytest.fail(f"{rel} missing")
    words = word_count(text_of(rel))
    assert 400 <= words <= 1500, f"{rel}: {words} words"


def test_formats() -> None:
    files = [d.file for d in documents()]
    pdfs = [f for f in files if f.endswith(".pdf")]
    assert len(pdfs) >= 4
    for f in pdfs:
        assert len(PdfReader(CORPUS / f).pages) >= 3, f
    assert sum(f.endswith((".html", ".htm")) for f in files) >= 3
    assert sum(f.endswith(".docx") for f in files) >= 1


# --------------------------------------------------------------------------- quality of the built files


def _pdfs() -> list[str]:
    return [d.file for d in documents() if d.file.endswith(".pdf")]


@pytest.mark.parametrize("rel", _pdfs())
def test_pdf_pages_have_running_header_and_numbered_footer(rel: str) -> None:
    reader = PdfReader(CORPUS / rel)
    assert reader.metadata is not None
    assert reader.metadata.title and reader.metadata.author
    pages = pdf_pages(CORPUS / rel)
    headers = set()
    for n, text in enumerate(pages, 1):
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        headers.add(lines[0])
        assert lines[-1].endswith(f"page {n} / {len(pages)}"), f"{rel} p.{n}: footer {lines[-1]!r}"
        assert "\ufffd" not in text and "Ã" not in text, f"{rel} p.{n}: garbled characters"
        assert re.search(r"[éèàç]", text), f"{rel} p.{n}: no accented letter extracted"
    assert len(headers) == 1, f"{rel}: the running header changes: {headers}"


def test_pdf_outline_marks_the_headings() -> None:
    for rel in _pdfs():
        reader = PdfReader(CORPUS / rel)
        titles = [item.title for item in reader.outline if not isinstance(item, list)]
        assert "Où trouver l'original" in [unicodedata.normalize("NFKC", str(t or "")) for t in titles], rel


def test_a_pdf_has_a_table() -> None:
    text = normalise(text_of("le-rameau-programmes-de-recherche.pdf"))
    assert "ce qui est mesuré chiffre origine" in text


def test_pdf_reading_order_follows_the_source() -> None:
    """Paragraph openings come out of pypdf in source order, column 1 before column 2 on the two-column kit."""
    build = load_build_module()
    for src in build.load_sources():
        if src.fmt != "pdf":
            continue
        assert_source_order(build, src, normalise(text_of(src.output)))


def test_docx_uses_real_heading_styles_and_properties() -> None:
    doc = DocxDocument(str(CORPUS / "lettre-aux-nouveaux-elus.docx"))
    styles = {p.style.name for p in doc.paragraphs if p.style is not None}
    assert {"Title", "Heading 1", "List Bullet"} <= styles
    assert doc.core_properties.title and doc.core_properties.author
    assert doc.tables, "the letter lists the recommended resources in a table"


@pytest.mark.parametrize("rel", [d.file for d in documents() if d.file.endswith(".html")])
def test_html_page_has_chrome_around_the_article(rel: str) -> None:
    soup = BeautifulSoup((CORPUS / rel).read_text(encoding="utf-8"), "html.parser")
    assert soup.title and soup.title.get_text(strip=True)
    author = soup.find("meta", attrs={"name": "author"})
    assert author is not None and author.get("content")
    for tag in ("nav", "footer", "script", "main", "article", "h1", "h2"):
        assert soup.find(tag) is not None, f"{rel}: no <{tag}>"
    main_text = normalise(html_main_text(CORPUS / rel))
    for chrome in ("mentions légales", "cookies", "fiches liées", "fil d'ariane"):
        assert chrome not in main_text, f"{rel}: «{chrome}» leaks into the main text"


def test_built_files_are_up_to_date_with_their_sources(tmp_path: Path) -> None:
    """Rebuilding from corpus/_build/src gives the same text as the committed files."""
    build = load_build_module()
    for src, target in build.build_all(tmp_path):
        shipped = CORPUS / src.output
        # Text, not bytes, for PDF and DOCX: another fpdf2 or python-docx version may lay out the same text.
        if src.fmt == "pdf":
            assert pdf_pages(target) == pdf_pages(shipped), f"{src.output}: rebuild with corpus/_build/build.py"
        elif src.fmt == "docx":
            assert docx_text(target) == docx_text(shipped), f"{src.output}: rebuild with corpus/_build/build.py"
        else:
            assert target.read_bytes() == shipped.read_bytes(), f"{src.output}: rebuild with corpus/_build/build.py"
