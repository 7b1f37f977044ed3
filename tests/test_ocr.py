"""Scanned PDFs: pages without a text layer are read by OCR (the « ocr » extra, rapidocr), their passages are
marked as such and quoted; without the extra (or with OCR turned off) the refusal says how to enable it."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answer import Assistant
from assistant.schema import READ_BY_OCR
from ingest import ocr
from ingest.index import run_ingest
from ingest.load import LoadError, LoadLimits, load_file
from tests.builders import make_scanned_pdf
from tests.conftest import test_settings
from webui.render import cards_from_citations, render_card

SCANNED = [
    ["Délibération du conseil communautaire", "du 12 février 2026"],
    ["La communauté de communes crée un fonds", "de 12 500 euros pour les écoles élémentaires", "du territoire."],
]


def test_without_the_extra_the_refusal_says_how_to_enable_ocr(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = make_scanned_pdf(tmp_path / "scan.pdf", SCANNED)
    monkeypatch.setattr(ocr, "ocr_available", lambda: False)
    with pytest.raises(LoadError, match=r'OCR nécessaire : installez l\'extension OCR \(pip install "\.\[ocr\]"\)'):
        load_file(pdf, tmp_path)
    monkeypatch.setattr(ocr, "ocr_available", lambda: True)
    with pytest.raises(LoadError, match="OCR nécessaire : la lecture par OCR est désactivée"):
        load_file(pdf, tmp_path, LoadLimits(ocr=False))


@pytest.mark.ocr
def test_a_scanned_pdf_is_read_by_ocr_and_quoted(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    if not ocr.ocr_available():
        pytest.skip('extension OCR absente : pip install ".[ocr]" (rapidocr, onnxruntime)')
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_scanned_pdf(corpus / "deliberation-scannee.pdf", SCANNED)
    settings = test_settings(corpus, tmp_path / "data", ocr=True)
    report = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert report.failed == [] and report.indexed == ["deliberation-scannee.pdf"]

    assistant = Assistant(settings, embedder=fake_embedder)
    answer = assistant.answer("Quel fonds la communauté de communes crée-t-elle pour les écoles élémentaires ?")
    assert not answer.abstained and answer.citations
    cited = answer.citations[0]
    assert cited.passage.page == 2 and cited.passage.ocr
    assert "écoles élémentaires" in cited.quote and "12 500 euros" in cited.passage.text.replace("de12", "de 12")
    assert cited.to_json()["ocr"] is True
    card = render_card(cards_from_citations(answer.citations)[0])
    assert "texte lu par OCR" in card
    first = assistant.retriever.page_passages(cited.passage.doc_id, 1)
    assert first and "Délibération du conseil communautaire" in first[0].text
    assert READ_BY_OCR == "ocr"
