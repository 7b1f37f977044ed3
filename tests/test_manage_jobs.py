"""Corpus jobs of « Gérer les documents » without a server: a file that passes the upload checks but fails in
the ingestion takes its change back (corpus, manifest, served index, Sources tab as before), the staging
folder is swept of what a killed process left, and the Sources tab shows each document's edition."""

from __future__ import annotations

import hashlib
import html
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from assistant import shared_state, store
from assistant.audit import AuditEntry, AuditLog
from assistant.embeddings import HashEmbeddings
from assistant.settings import Settings
from ingest import corpus_edit
from ingest.corpus_edit import STAGING_DIR, Description, StagedFile, Upload, sweep_staging
from ingest.index import run_ingest
from ingest.jobs import NOTHING_CHANGED, JobQueue
from tests.conftest import test_settings, write_tiny_corpus
from webui import render
from webui.catalog import document_rows
from webui.context import AppContext
from webui.editions import replacements

# Loads as Markdown (the upload check), but more than half of it is one run of letters without a space: the
# splitter refuses it (« texte sans espaces »), in the ingestion job only.
GLUED = "# Guide collé\n\nUn texte court. " + "x" * 5000 + "\n"
GOOD_V2 = ("# Le MOOC des alliances\n\n## Présentation\n\nLa deuxième édition du MOOC des alliances ajoute un "
           "module sur les jardins partagés et leurs 12 parcelles.\n")


@pytest.fixture
def corpus(tmp_path: Path) -> Settings:
    """The tiny corpus indexed, with a manifest entry for mooc.md (edition « mai 2020 »)."""
    settings = test_settings(write_tiny_corpus(tmp_path / "corpus"), tmp_path / "data", auth=(("gestion", "x"),),
                             managers=("gestion",))
    run_ingest(settings, progress=False)
    change = corpus_edit.describe_document(settings, "mooc", Description("Le MOOC des alliances", "ESSEC",
                                                                          "", "mai 2020"))
    assert change.undo is not None
    change.undo.commit()
    run_ingest(settings, progress=False)
    return settings


def _queue(settings: Settings) -> JobQueue:
    return JobQueue(settings, lambda: HashEmbeddings(256), AuditLog(settings.feedback_path))


def _stage(settings: Settings, name: str, text: str) -> StagedFile:
    upload = Upload(settings, name)
    upload.write(text.encode("utf-8"))
    return upload.finish()  # the route's checks: the file is read as the ingestion job reads it


def _snapshot(settings: Settings) -> tuple[Any, ...]:
    """Every corpus file with its bytes' hash, the manifest, the served generation and the last run's statuses."""
    corpus = settings.corpus_dir
    files = sorted((p.relative_to(corpus).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in corpus.rglob("*") if p.is_file() and not p.is_symlink())
    manifest = (corpus / "sources.yaml").read_bytes() if (corpus / "sources.yaml").exists() else b""
    generation = shared_state.current_generation(settings)
    return files, manifest, generation.name if generation else None, shared_state.read_last_run(settings)


def _finished(queue: JobQueue) -> dict[str, Any]:
    assert queue.wait_idle(timeout=300)
    return queue.jobs()[0]


def _outcomes(settings: Settings, action: str) -> list[AuditEntry]:
    return [e for e in AuditLog(settings.feedback_path).entries() if e.action == action]


# -- a file that fails in the ingestion is taken back ------------------------------------------------------


def test_an_upload_that_cannot_be_split_leaves_the_corpus_as_it_was(corpus: Settings) -> None:
    before = _snapshot(corpus)
    staged = _stage(corpus, "guide.md", GLUED)
    queue = _queue(corpus)
    queue.submit("gestion", "add", "", "ajout de « guide »",
                 lambda: corpus_edit.add_document(corpus, staged, Description()),
                 cancel=lambda: corpus_edit.discard(staged))
    job = _finished(queue)
    assert job["state"] == "échec", job
    assert "le document n'a pas pu être indexé (texte sans espaces" in job["summary"]
    assert job["summary"].endswith(NOTHING_CHANGED)
    # Not in the corpus folder, not in sources.yaml, not served, and the Sources tab's statuses unchanged.
    assert _snapshot(corpus) == before
    assert not any((corpus.corpus_dir / STAGING_DIR).iterdir())
    requested, failed = reversed(_outcomes(corpus, "add"))
    assert (requested.outcome, failed.outcome, failed.user) == ("requested", "failed", "gestion")
    assert "texte sans espaces" in failed.detail["error"] and failed.detail["corpus_restored"] is True


@pytest.mark.parametrize("name", ["mooc-v2.md", "mooc-v2.txt"])  # same file name as the old edition, and another
def test_a_new_edition_that_cannot_be_split_restores_the_old_one(corpus: Settings, name: str) -> None:
    before = _snapshot(corpus)
    served = store.read_catalog(shared_state.current_generation(corpus)).documents["mooc.md"]
    staged = _stage(corpus, name, GLUED)
    queue = _queue(corpus)
    queue.submit("gestion", "replace", "mooc", "nouvelle édition de « mooc »",
                 lambda: corpus_edit.replace_document(corpus, "mooc", staged, "juin 2026"),
                 cancel=lambda: corpus_edit.discard(staged))
    job = _finished(queue)
    assert job["state"] == "échec" and "texte sans espaces" in job["summary"], job
    assert job["summary"].endswith(NOTHING_CHANGED)
    assert _snapshot(corpus) == before  # the old file's bytes, its manifest entry (« mai 2020 »), the same index
    assert "mai 2020" in (corpus.corpus_dir / "sources.yaml").read_text(encoding="utf-8")
    after = store.read_catalog(shared_state.current_generation(corpus)).documents["mooc.md"]
    assert after.file_hash == served.file_hash and after.edition == "mai 2020"
    assert not any((corpus.corpus_dir / STAGING_DIR).iterdir())  # no backup left behind
    failed = _outcomes(corpus, "replace")[0]
    assert failed.outcome == "failed" and failed.doc_id == "mooc" and "texte sans espaces" in failed.detail["error"]


def test_a_failure_after_the_change_takes_it_back_too(corpus: Settings) -> None:
    """Any failure of the ingestion (here: another run holds the data folder's lock) puts the corpus back."""
    import fcntl

    before = _snapshot(corpus)
    staged = _stage(corpus, "fiche.md", "# Fiche\n\nUne fiche correcte sur le verger partagé de Montval.\n")
    queue = _queue(corpus)
    with (corpus.data_dir / "ingest.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        queue.submit("gestion", "add", "", "ajout", lambda: corpus_edit.add_document(corpus, staged, Description()))
        job = _finished(queue)
    assert job["state"] == "échec" and "déjà en cours" in job["summary"], job
    assert job["summary"].endswith(NOTHING_CHANGED) and _snapshot(corpus) == before


# -- editions in the Sources tab ---------------------------------------------------------------------------


def test_sources_tab_shows_each_edition_and_the_one_it_replaced(corpus: Settings) -> None:
    staged = _stage(corpus, "mooc-v2.md", GOOD_V2)
    queue = _queue(corpus)
    queue.submit("gestion", "replace", "mooc", "nouvelle édition",
                 lambda: corpus_edit.replace_document(corpus, "mooc", staged, "juin 2026"))
    job = _finished(queue)
    assert job["state"] == "terminé", job
    done = _outcomes(corpus, "replace")[0]
    assert done.detail["old_edition"] == "mai 2020"
    catalog = store.read_catalog(shared_state.current_generation(corpus))
    mooc, guide = catalog.documents["mooc.md"], catalog.documents["guide-alliances.pdf"]
    ctx = AppContext.create(corpus)
    page = html.unescape(ctx.documents_html())
    assert '<th scope="col">Édition</th>' in page
    day = render.edition_day(done.at)
    assert (f"juin 2026<br><small>empreinte du contenu : <span class=\"empreinte\">{mooc.file_hash[:8]}</span>"
            f"</small><br><small>remplace l'édition de mai 2020 (depuis le {day})</small>") in page
    # A document without an edition label: the day its file was indexed, and no « remplace ».
    guide_cell = (f"{render.edition_day(guide.indexed_at)}<br><small>empreinte du contenu : "
                  f"<span class=\"empreinte\">{guide.file_hash[:8]}</span></small></td>")
    assert guide_cell in page
    assert page.count("remplace l'édition") == 1


def test_edition_cells_and_replacements_from_the_audit_trail() -> None:
    from assistant.catalog import Catalog, CatalogEntry

    entries = [  # most recent first, as AuditLog.entries gives them
        AuditEntry(3, "2026-11-30T06:00:00+00:00", "g", "replace", "kit", "kit.pdf", "done",
                   {"old_hash": "b" * 64, "new_hash": "c" * 64, "old_edition": "2026-03-12"}),
        AuditEntry(2, "2026-11-29T06:00:00+00:00", "g", "replace", "kit", "kit.pdf", "failed",
                   {"error": "x", "new_hash": "c" * 64}),
        AuditEntry(1, "2026-11-01T06:00:00+00:00", "g", "replace", "guide", "guide.pdf", "done",
                   {"old_hash": "a" * 64, "new_hash": "d" * 64}),  # written before old_edition was recorded
    ]
    found = replacements(entries)
    assert set(found) == {("kit", "c" * 64), ("guide", "d" * 64)}
    catalog = Catalog(documents={
        "kit.pdf": CatalogEntry(doc_id="kit", source_path="kit.pdf", file_hash="c" * 64, edition="mars 2026",
                                passages=3, indexed_at="2026-11-30T06:00:00+00:00"),
        "guide.pdf": CatalogEntry(doc_id="guide", source_path="guide.pdf", file_hash="d" * 64, passages=2,
                                  indexed_at="2026-11-01T05:59:00+00:00"),
        "autre.md": CatalogEntry(doc_id="autre", source_path="autre.md", file_hash="e" * 64, passages=1,
                                 edition="2025-01-31"),
    })
    rows = {r.doc_id: r for r in document_rows(catalog, {}, found)}
    assert (rows["kit"].replaces, rows["kit"].replaced_at) == ("2026-03-12", "2026-11-30T06:00:00+00:00")
    table = html.unescape(render.render_documents_table([r.as_dict() for r in rows.values()]))
    assert "remplace l'édition du 12/03/2026 (depuis le 30/11/2026)" in table
    assert "01/11/2026<br><small>empreinte du contenu : " in table  # no label: the day it was indexed
    assert "remplace l'édition précédente (depuis le 01/11/2026)" in table
    assert "31/01/2025<br>" in table  # an ISO label in the French order
    assert '<td data-label="Édition">' in table
    assert [render.edition_of(x) for x in ("12/03/2026", "1er mars 2026", "mars 2026", "2020, après les élections")] \
        == ["du 12/03/2026", "du 1er mars 2026", "de mars 2026", "de 2020, après les élections"]


# -- staging folder sweep ----------------------------------------------------------------------------------


def _leftovers(settings: Settings) -> tuple[Path, Path]:
    staging = settings.corpus_dir / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    old, fresh = staging / "0123abcd.pdf", staging / "4567ef01.md"
    old.write_bytes(b"%PDF-1.4 killed mid-upload")
    fresh.write_text("# Téléversement en cours\n", encoding="utf-8")
    seven_hours_ago = time.time() - 7 * 3600
    os.utime(old, (seven_hours_ago, seven_hours_ago))
    return old, fresh


def test_sweep_removes_only_staged_files_older_than_the_safe_age(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    settings = test_settings(tmp_path / "corpus", tmp_path / "data")
    assert sweep_staging(settings) == 0  # no staging folder yet: nothing to do, nothing created
    old, fresh = _leftovers(settings)
    with caplog.at_level(logging.INFO, logger="assistant.jobs"):
        assert sweep_staging(settings) == 1
    assert not old.exists() and fresh.exists()  # a file another replica may still be using stays
    lines = [r.getMessage() for r in caplog.records if "Téléversements abandonnés" in r.getMessage()]
    assert lines == [f"Téléversements abandonnés supprimés : 1 fichier(s) dans {settings.corpus_dir / STAGING_DIR}"]
    assert sweep_staging(settings, older_than_s=0) == 1 and not fresh.exists()


def test_app_start_and_each_job_sweep_the_staging_folder(corpus: Settings) -> None:
    import app as webapp

    old, fresh = _leftovers(corpus)
    webapp.build_app(corpus)
    assert not old.exists() and fresh.exists()
    old, _ = _leftovers(corpus)
    queue = _queue(corpus)
    queue.submit("gestion", "describe", "mooc", "description",
                 lambda: corpus_edit.describe_document(corpus, "mooc", Description("Le MOOC", "ESSEC")))
    assert _finished(queue)["state"] == "terminé"
    assert not old.exists() and fresh.exists()
