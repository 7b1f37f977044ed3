"""Scanned PDFs: pages without a text layer are read by OCR (the « ocr » extra, rapidocr), their passages are
marked as such and quoted; without the extra (or with OCR turned off) the refusal says how to enable it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import store
from assistant.answer import Assistant
from assistant.retrieve import Retriever
from assistant.sandbox import ROOT
from assistant.schema import READ_BY_OCR
from assistant.settings import Settings
from ingest import ocr
from ingest.index import run_ingest
from ingest.load import LoadError, LoadLimits, load_file
from tests.builders import make_scanned_pdf
from tests.conftest import test_settings
from tests.processes import alive, as_from_a_terminal, wait_until
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


# The ingestion job with a slow stand-in for the OCR worker (tests/slow_ocr_worker.py): no OCR extra needed.
_JOB_WITH_SLOW_OCR = """
import sys
from ingest import cli, ocr
ocr.WORKER = "tests.slow_ocr_worker"
ocr.ocr_available = lambda: True
sys.exit(cli.main(["--quiet"]))
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to see the OCR child")
@pytest.mark.parametrize("how", ["kill -9", "Ctrl+C"])
def test_a_job_stopped_during_ocr_leaves_no_ocr_child_and_the_served_index(settings: Settings, how: str) -> None:
    """Ctrl+C: the job decides (the OCR child does not even see it); kill -9: the OCR child dies with the job.
    Either way nothing is left running and the served generation stays."""
    run_ingest(settings, progress=False)
    before = store.current_generation(settings.data_dir)
    assert before is not None
    make_scanned_pdf(settings.corpus_dir / "deliberation-scannee.pdf", SCANNED)
    beside = settings.corpus_dir.resolve().parent
    env = os.environ | {
        "PYTHONPATH": str(ROOT), "ASSISTANT_EMBEDDER": settings.embedder, "ASSISTANT_EMBED_WORKERS": "1",
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_DATA_DIR": str(settings.data_dir),
        "ASSISTANT_CHUNK_WORDS": str(settings.chunk_words),
        "ASSISTANT_CHUNK_OVERLAP_WORDS": str(settings.chunk_overlap_words), "ASSISTANT_OCR": "1"}
    job = subprocess.Popen([sys.executable, "-c", _JOB_WITH_SLOW_OCR], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                           preexec_fn=as_from_a_terminal)
    child = 0
    try:
        assert wait_until(lambda: (beside / "slow-ocr.pid").exists()), "the job never started its OCR"
        child = int((beside / "slow-ocr.pid").read_text(encoding="ascii"))
        assert alive(child) and job.poll() is None
        if how == "kill -9":
            job.send_signal(signal.SIGKILL)
        else:
            os.killpg(job.pid, signal.SIGINT)  # what the terminal sends to the whole foreground group
        job.wait(timeout=120)
        assert job.returncode != 0
        assert wait_until(lambda: not alive(child)), "the OCR child outlived the job"
    finally:
        if job.poll() is None:
            job.kill()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)
    assert not (beside / "slow-ocr.sigint").exists(), "the OCR child took the Ctrl+C meant for the job"
    assert store.current_generation(settings.data_dir) == before
    result = Retriever(settings).search("missions des catalyseurs territoriaux")
    assert result.generation == before.name and result.passages
    if how == "Ctrl+C":
        assert job.stderr is not None and "Traceback" not in job.stderr.read().decode()
