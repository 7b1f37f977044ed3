"""Page text of designed PDFs: facts stay with their labels, columns do not interleave, running lines go.

Each PDF is drawn here with fpdf2 to reproduce one layout problem of real brochures (the six of
../shared/data/real-docs, measured by ``python -m evals.bench_pdf_text``). The drawing order is chosen
the way design tools write it — all labels, then all values; the two columns line by line — so that
reading the text in drawing order (pypdf's plain text) gets it wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from ingest.clean import drop_running_lines, is_page_number, mark_spaced_lines, unwrap_lines
from ingest.load import is_real_title, load_file, pdf_title, readable_file_name
from ingest.pdf_worker import layout_page_texts
from tests.builders import FONT_DIR
from tests.conftest import ROOT


def draw_pdf(path: Path, pages: list[Callable[[Any], None]], *, title: str | None = None) -> Path:
    """One page per drawing function; DejaVu fonts, fixed dates."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(False)
    if title is not None:
        pdf.set_title(title)
    for draw in pages:
        pdf.add_page()
        pdf.set_font("DejaVu", size=11)
        draw(pdf)
    pdf.output(str(path))
    return path


def write(pdf: Any, x: float, y: float, text: str, size: float = 11, bold: bool = False) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", size)
    pdf.text(x, y, text)


def page_lines(path: Path, page: int = 1) -> list[str]:
    return load_file(path, path.parent).pages[page - 1].page_content.split("\n")


def plain_text(path: Path, page: int = 1) -> str:
    return PdfReader(path).pages[page - 1].extract_text()


# --- a label and its value drawn apart ---------------------------------------------------------

CHART = [("Réseau de chaleur bois", "0,45"), ("Chauffage électrique individuel", "2,69"),
         ("Gaz collectif à condensation", "1,35"), ("Pompe à chaleur géothermique", "0,93")]


def _chart(pdf: Any) -> None:
    write(pdf, 20, 20, "Facteur de ressource primaire par mode de chauffage", 13, bold=True)
    for i, (label, _) in enumerate(CHART):  # the labels first, as a chart tool draws them
        write(pdf, 20, 40 + 14 * i, label)
    for i, (_, value) in enumerate(CHART):  # then the values at the end of the bars
        write(pdf, 120 + 15 * i, 40 + 14 * i, value)


def test_chart_value_is_on_its_label_line(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "graphique.pdf", [_chart])
    lines = page_lines(path)
    for label, value in CHART:
        assert f"{label} | {value}" in lines, lines
    assert "Chauffage électrique individuel 2,69" not in plain_text(path).replace("\n", " ")  # the bug reproduced


def _infographic(pdf: Any) -> None:
    write(pdf, 20, 20, "Un site de plus en plus fréquenté", 14, bold=True)
    for y, (number, label) in zip((50, 85), [("10 000", "visiteurs uniques/mois"), ("120", "demandes de contact/mois")],
                                  strict=True):
        write(pdf, 20, y + 4, number, 30, bold=True)  # a big number beside a two-line label
        write(pdf, 70, y - 2, label, 12, bold=True)
        write(pdf, 70, y + 4, "en moyenne", 12)


def test_big_number_joins_its_two_line_label(tmp_path: Path) -> None:
    lines = page_lines(draw_pdf(tmp_path / "infographie.pdf", [_infographic]))
    assert "10 000 | visiteurs uniques/mois en moyenne" in lines, lines
    assert "120 | demandes de contact/mois en moyenne" in lines, lines


def _table(pdf: Any) -> None:
    write(pdf, 20, 20, "Consommation de chauffage par logement (kWh/an)", 12, bold=True)
    rows = [("Bâtiment", "Fioul", "Gaz", "Réseau"), ("RT2005", "6 374", "5 508", "5 279"),
            ("Social moyen", "10 322", "8 920", "8 550"), ("Peu performant", "20 588", "17 791", "17 053")]
    for col, x in enumerate((20, 80, 115, 150)):  # column by column, rows 5 mm apart
        for row, cells in enumerate(rows):
            write(pdf, x, 32 + 5 * row, cells[col], 10)


def test_table_rows_keep_their_cells_together(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "tableau.pdf", [_table])
    lines = page_lines(path)
    assert "Bâtiment | Fioul | Gaz | Réseau" in lines, lines
    assert "Social moyen | 10 322 | 8 920 | 8 550" in lines, lines
    assert "Social moyen 10 322" not in plain_text(path)


def _wrapped_cells(pdf: Any) -> None:
    write(pdf, 20, 20, "Exemple de calcul", 12, bold=True)
    # A label wrapped on two lines, its values centred between them.
    write(pdf, 20, 40, "Distance acceptable", 10)
    write(pdf, 20, 45, "(D) = (C) x 1,5", 10)
    write(pdf, 100, 42.5, "100 m", 10)
    write(pdf, 150, 42.5, "140 m", 10)
    write(pdf, 20, 56, "Nombre de logements", 10)
    write(pdf, 20, 61, "de la copropriété (B)", 10)
    write(pdf, 100, 58.5, "10", 10)
    write(pdf, 150, 58.5, "12", 10)


def test_wrapped_label_and_centred_values_make_one_row(tmp_path: Path) -> None:
    lines = page_lines(draw_pdf(tmp_path / "cellules.pdf", [_wrapped_cells]))
    assert "Distance acceptable (D) = (C) x 1,5 | 100 m | 140 m" in lines, lines
    assert "Nombre de logements de la copropriété (B) | 10 | 12" in lines, lines


# --- columns -------------------------------------------------------------------------------------

LEFT = ["Le réseau de chaleur distribue une énergie", "produite localement à partir de sources",
        "renouvelables et de récupération, ce qui", "stabilise la facture des abonnés."]
RIGHT = ["La sous-station se trouve au pied de", "l'immeuble et transfère la chaleur du",
         "réseau primaire vers le réseau", "secondaire de la copropriété."]


def _two_columns(pdf: Any) -> None:
    write(pdf, 20, 20, "Comprendre le réseau de chaleur", 16, bold=True)
    for i, (left, right) in enumerate(zip(LEFT, RIGHT, strict=True)):  # line by line across both columns
        write(pdf, 20, 35 + 6 * i, left, 10)
        write(pdf, 110, 35 + 6 * i, right, 10)


def test_two_columns_are_read_one_after_the_other(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "colonnes.pdf", [_two_columns])
    text = load_file(path, path.parent).pages[0].page_content
    left, right = " ".join(LEFT), " ".join(RIGHT)
    assert left in text and right in text, text
    assert text.index(left) < text.index(right)
    assert left not in plain_text(path).replace("\n", " ")  # drawn line by line, the columns interleave


def test_justified_line_with_wide_spacing_stays_one_line(tmp_path: Path) -> None:
    def draw(pdf: Any) -> None:
        write(pdf, 20, 20, "Une copropriété peut se raccorder au réseau de chaleur de sa commune", 10)
        x = 20.0
        for word in "à condition de voter en assemblée générale".split():  # stretched word spacing
            write(pdf, x, 25, word, 10)
            x += pdf.get_string_width(word) + 5.5
        write(pdf, 20, 30, "la décision de raccordement et les travaux nécessaires.", 10)

    lines = page_lines(draw_pdf(tmp_path / "justifie.pdf", [draw]))
    assert not any(" | " in line for line in lines), lines
    assert "à condition de voter en assemblée générale" in " ".join(lines)


# --- letter-spaced headings ----------------------------------------------------------------------


def test_letter_spaced_heading_is_rejoined(tmp_path: Path) -> None:
    def draw(pdf: Any) -> None:
        x = 20.0
        for letter in "L'ABONNÉ DU RÉSEAU DE CHALEUR":  # each letter placed on its own, 1 mm apart
            write(pdf, x, 20, letter, 12, bold=True)
            x += pdf.get_string_width(letter) + 1.0
        write(pdf, 20, 30, "L'abonné est la personne qui a souscrit une police d'abonnement.", 10)

    path = draw_pdf(tmp_path / "espace.pdf", [draw])
    lines = page_lines(path)
    assert "L'ABONNÉ DU RÉSEAU DE CHALEUR" in lines, lines
    assert "L'ABONNÉ DU RÉSEAU" not in plain_text(path)


def test_letter_spaced_line_left_by_plain_text_becomes_a_heading() -> None:
    text = "F E D E R A T I ON NA T I O NA L E D E S C O L L E C T I VI TE S\nLe règlement de service."
    assert mark_spaced_lines(text).split("\n") == [
        "## F E D E R A T I ON NA T I O NA L E D E S C O L L E C T I VI TE S", "Le règlement de service."]
    assert mark_spaced_lines("Tarif B1 | 192,21 € | X | X | X | X") == "Tarif B1 | 192,21 € | X | X | X | X"


# --- running heads, footers, page numbers ----------------------------------------------------------

BODIES = ["Le réseau compte 640 tracés publiés.", "Le service reçoit 120 demandes par mois.",
          "La TVA réduite est de 5,5 %.", "Le seuil de densité est de 1,5 MWh par mètre."]


def _page_with_running_lines(i: int) -> Callable[[Any], None]:
    def draw(pdf: Any) -> None:
        write(pdf, 20, 12, "Guide des réseaux de chaleur — édition 2024", 8)
        write(pdf, 185, 12, str(i + 3), 8)  # a printed number that is not the page's position
        write(pdf, 20, 40, BODIES[i], 11)
        write(pdf, 105, 287, str(i + 1), 9)  # the page number alone at the foot
    return draw


def test_running_head_and_page_numbers_are_dropped(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "entetes.pdf", [_page_with_running_lines(i) for i in range(len(BODIES))])
    loaded = load_file(path, path.parent)
    assert [p.metadata["page"] for p in loaded.pages] == [1, 2, 3, 4]
    assert [p.page_content for p in loaded.pages] == BODIES


def test_alternating_left_and_right_heads_are_dropped() -> None:
    bodies = ["Le réseau compte 640 tracés.", "Le service est gratuit.", "La TVA réduite est de 5,5 %.",
              "Le seuil est de 1,5 MWh.", "Un abonné signe une police.", "La sous-station est au pied de l'immeuble.",
              "Le syndic convoque l'assemblée.", "Le vote se fait à la majorité absolue."]
    pages = [("Guide de raccordement des copropriétés - juillet 2019 | " + str(n) if n % 2 else
              f"{n} | Raccordement des copropriétés") + "\n" + body for n, body in enumerate(bodies, 1)]
    assert drop_running_lines(pages) == bodies


def test_page_number_cell_is_stripped_only_when_it_is_the_page_number() -> None:
    pages = [f"Texte de la page {n}.\nTotal | {n + 40}\nConclusion de la page | {n}" for n in range(1, 5)]
    assert drop_running_lines(pages, min_share=1.1, min_run=0) == [
        f"Texte de la page {n}.\nTotal | {n + 40}\nConclusion de la page" for n in range(1, 5)]


def test_running_footer_of_an_annex_becomes_its_heading() -> None:
    # The guide's last three pages are a model contract with its own footer: too few pages for the share rule.
    bodies = ["Le réseau compte 640 tracés.", "Le service est gratuit.", "La TVA réduite est de 5,5 %.",
              "Le seuil est de 1,5 MWh.", "Un abonné signe une police.", "La sous-station est au pied de l'immeuble.",
              "Le syndic convoque l'assemblée.", "Le vote se fait à la majorité absolue."]
    pages = [body if n < 6 else f"{body}\nFNCCR - Modèle de police d’abonnement – version nov19 {n - 5}"
             for n, body in enumerate(bodies, 1)]
    cleaned = drop_running_lines(pages)
    assert cleaned[:5] == bodies[:5]
    # Its running footer says which part a page belongs to: the page's heading, without the page number.
    assert cleaned[5:] == [f"## FNCCR - Modèle de police d’abonnement – version nov19\n{body}" for body in bodies[5:]]


def test_bare_page_number_at_an_edge_is_dropped_even_in_a_short_document() -> None:
    assert drop_running_lines(["12\nLe réseau compte 640 tracés.", "Le service est gratuit.\n13"]) == [
        "Le réseau compte 640 tracés.", "Le service est gratuit."]
    assert is_page_number("- 4 -") and is_page_number("Page 12") and is_page_number("12 / 40")
    assert not is_page_number("10 000") and not is_page_number("2,69")


def test_rows_numbers_and_numbered_headings_are_not_glued_to_the_line_above() -> None:
    text = ("visiteurs par mois\n10 000\n8 000\nRC cogé | 0,95\n0,0 | 0,5 | 1,0\nla distance\n"
            "4.2.2 Proximité d'un réseau")
    assert unwrap_lines(text) == text
    assert unwrap_lines("2 vidéos pédagogiques\n10 infographies") == "2 vidéos pédagogiques\n10 infographies"
    assert unwrap_lines("le réseau de\nchaleur urbain") == "le réseau de chaleur urbain"
    assert unwrap_lines("Le montant s'élève à\n1 525 € par logement.") == "Le montant s'élève à 1 525 € par logement."


# --- titles --------------------------------------------------------------------------------------------


def _cover(pdf: Any) -> None:
    write(pdf, 20, 20, "Service public France Chaleur Urbaine", 9)
    write(pdf, 20, 45, "Le guide des réseaux", 26, bold=True)
    write(pdf, 20, 57, "de chaleur", 26, bold=True)
    write(pdf, 20, 75, "Pour les collectivités et les exploitants", 14)
    write(pdf, 20, 95, "Ce guide présente le service et ses outils.", 10)


@pytest.mark.parametrize("junk", ["Microsoft Word - rapport_final_v3.docx", "Diapositive 1", "", "guide_v3_final"])
def test_junk_metadata_title_gives_way_to_the_first_big_heading(tmp_path: Path, junk: str) -> None:
    path = draw_pdf(tmp_path / "guide_reseaux.pdf", [_cover], title=junk)
    assert load_file(path, path.parent).title == "Le guide des réseaux de chaleur"


def test_real_metadata_title_is_kept(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "guide.pdf", [_cover], title="Guide des réseaux de chaleur pour les élus")
    assert load_file(path, path.parent).title == "Guide des réseaux de chaleur pour les élus"


def test_without_title_or_heading_the_file_name_is_made_readable(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "guide_raccordement-des_coproprietes.pdf",
                    [lambda pdf: write(pdf, 20, 20, "Un texte de corps, tout à la même taille.", 11)], title="")
    assert load_file(path, path.parent).title == "Guide raccordement des coproprietes"


def test_title_rules() -> None:
    path = Path("Diapo_2019.pdf")
    for junk in ["", "  ", "Microsoft PowerPoint - Présentation1", "Diapositive 1", "Document1", "Sans titre",
                 "C:\\Users\\x\\guide.docx", "Diapo_2019", "rapport-final.indd", "42"]:
        assert not is_real_title(junk, path), junk
    assert is_real_title("Prix de la chaleur et facturation", path)
    assert pdf_title("Untitled", "Se raccorder à un réseau de chaleur", path) == "Se raccorder à un réseau de chaleur"
    assert readable_file_name(Path("FCU_guide_exploitants.pdf")) == "FCU guide exploitants"


# --- the shipped corpus, the worker's fallbacks ------------------------------------------------------


def test_shipped_pdfs_keep_source_order_and_table_rows() -> None:
    """Through the loader (not only pypdf, as in test_corpus): sources in order, the two-column kit included."""
    from tests.test_corpus import assert_source_order, load_build_module, normalise

    build = load_build_module()
    corpus = ROOT / "corpus"
    for src in build.load_sources():
        if src.fmt != "pdf":
            continue
        pages = load_file(corpus / src.output, corpus).pages
        text = normalise(" ".join(line.lstrip("#").strip() for p in pages for line in p.page_content.split("\n")))
        assert_source_order(build, src, text)
    rameau = load_file(corpus / "le-rameau-programmes-de-recherche.pdf", corpus).pages
    lines = {line for page in rameau for line in page.page_content.split("\n")}
    assert "Maires dont le territoire est entré en co-construction | 76 % | Rapport PHARE, février 2018" in lines


def test_spent_time_budget_leaves_pages_to_plain_text(tmp_path: Path) -> None:
    path = draw_pdf(tmp_path / "budget.pdf", [_chart, _table])
    assert layout_page_texts(str(path), 2, deadline=0.0) == ([None, None], "")
    laid_out, heading = layout_page_texts(str(path), 2, deadline=float("inf"))
    assert all(laid_out) and heading == "Facteur de ressource primaire par mode de chauffage"
    # pdfminer seeing another page count than pypdf: no page is laid out, numbering stays physical.
    assert layout_page_texts(str(path), 3, deadline=float("inf")) == ([None, None, None], "")
