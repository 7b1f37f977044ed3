"""The ingestion job: corpus folder → a new, complete index generation.

Incremental like LangChain's indexing API: the previous generation's vectors
are copied as they are, then ``index(..., cleanup="scoped_full")`` with a record
manager replaces the passages of changed files (re-embedding only passages
whose text changed) and the passages of removed files are deleted. Unchanged
files are not even re-read. Nothing is visible to readers until ``publish``.

A run is three steps (:func:`run_ingest` reads as them): :func:`plan_ingest`
(which files changed), :func:`build_generation` (a new generation with their
vectors) and :func:`publish_generation` (its BM25 index and catalog, then the
switch of the ``CURRENT`` pointer and the clean-up).

Embedding is the cost: it runs in a pool of worker processes (:mod:`assistant.embed_pool`), fed by a
pipeline of background threads (:mod:`ingest.reader`): one reads and splits the next files, another
hands each split file to the pool, so that the workers embed file n+1 while the main thread writes file n.
Each file's passages and quotable units go to the pool in one call, each distinct text once
(:mod:`assistant.passage_vectors`); with ``passage_vectors="units"`` (or ``"units-max"``) a passage's vector
derives from its units' and no passage text is embedded (only each document's title, once, for units-max).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.indexing import index
from tqdm import tqdm

from assistant import shared_state, store
from assistant.catalog import Catalog, CatalogEntry, CatalogFailure
from assistant.embed_pool import ingestion_embedder
from assistant.embeddings import CachedEmbeddings, NamedEmbeddings
from assistant.errors import AssistantError
from assistant.lexical import LexicalIndex
from assistant.passage_vectors import embed_passages_and_units
from assistant.schema import (
    DOC_ID,
    EDITION,
    FILE_HASH,
    FORMAT,
    PUBLISHER,
    SECTION,
    SOURCE_PATH,
    THEMES,
    TITLE,
    URL,
    Passage,
)
from assistant.settings import Settings
from assistant.units import boilerplate_openings
from ingest.ids import DocIdError, assign_doc_ids
from ingest.load import LoadError, LoadLimits, corpus_files, load_file
from ingest.manifest import DocumentEntry, ManifestError, load_manifest
from ingest.reader import ReadAhead
from ingest.records import SQLiteRecordManager
from ingest.split import SPLIT_VERSION, split_pages

RECORDS_FILE = "records.sqlite"
LAST_RUN = "last_run.json"


class IngestConfigError(AssistantError, RuntimeError):
    """Usage or configuration problem (exit status 2); message in French."""


class RequiredFileError(AssistantError, RuntimeError):
    """The file a run was asked to index could not be: nothing was published; message in French."""

    def __init__(self, rel: str, reason: str) -> None:
        super().__init__(f"le document n'a pas pu être indexé ({reason})")
        self.rel, self.reason = rel, reason


@dataclass
class IngestReport:
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    pages: int = 0
    passages: int = 0
    seconds: float = 0.0
    generation: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": self.failed,
            "pages": self.pages,
            "passages": self.passages,
            "seconds": round(self.seconds, 2),
            "generation": self.generation,
        }


@dataclass
class _Prepared:
    rel: str
    passages: list[Document]
    entry: CatalogEntry
    force: bool
    vectors: np.ndarray | None = None  # one row per passage, set by the embedding stage


@dataclass
class _Pending:
    """A new or changed file, hashed while planning, then loaded and split ahead of the embedding."""

    rel: str
    path: Path
    entry: DocumentEntry | None
    doc_id: str
    file_hash: str
    signature: str
    old: CatalogEntry | None
    position: int  # in the plan's pending files, and in its reader's futures
    prepared: _Prepared | None = None
    resolved: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _exclusive_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "ingest.lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestConfigError("Une indexation est déjà en cours sur ce dossier de données.") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _doc_metadata(rel: str, doc_id: str, entry: DocumentEntry | None, loaded_title: str, author: str, fmt: str,
                  file_hash: str) -> dict[str, Any]:
    return {
        SOURCE_PATH: rel,
        DOC_ID: doc_id,
        TITLE: (entry.title if entry else "") or loaded_title or Path(rel).stem,
        PUBLISHER: (entry.publisher if entry else "") or author,
        URL: entry.url if entry else "",
        EDITION: entry.edition if entry else "",
        THEMES: ";".join(entry.themes) if entry else "",
        FORMAT: fmt,
        FILE_HASH: file_hash,
    }


def _entry_signature(entry: DocumentEntry | None, settings: Settings) -> str:
    # Metadata or chunking changes must re-process a file even when its bytes did not change.
    data: dict[str, Any] = {"entry": entry.__dict__ if entry else None,
                            "chunk": [settings.chunk_words, settings.chunk_overlap_words], "split": SPLIT_VERSION}
    if settings.stored_vectors != "text":  # the signature of files indexed before the setting existed
        data["vectors"] = settings.stored_vectors
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()


def lexical_text(doc: Document) -> str:
    """What BM25 indexes for a passage: its words plus its title and section."""
    m = doc.metadata
    return f"{m.get(TITLE, '')}\n{m.get(SECTION, '')}\n{doc.page_content}"


def run_ingest(
    settings: Settings,
    *,
    rebuild: bool = False,
    embedder: NamedEmbeddings | None = None,
    progress: bool = True,
    log: IO[str] | None = None,
    required: str | None = None,
) -> IngestReport:
    """Index ``settings.corpus_dir`` into a new generation under ``settings.data_dir``.

    Three steps, under the data folder's lock: :func:`plan_ingest` decides what changed,
    :func:`build_generation` embeds it into a folder readers never see, and :func:`publish_generation`
    completes that folder and switches readers to it. With ``required`` (a corpus-relative file: the one
    a manager just uploaded), a failure to read or split that file raises :class:`RequiredFileError`
    before anything is published or recorded: the served generation and ``last_run.json`` stay as they were.
    """
    started = time.perf_counter()
    log = log or sys.stderr
    entries = _manifest_entries(settings.corpus_dir)
    try:
        with _exclusive_lock(settings.data_dir), shared_state.ingest_lock(settings) as locked:
            if not locked:
                raise IngestConfigError("Une indexation est déjà en cours pour ce déploiement (verrou de la base "
                                        "de données) : attendez sa fin.")
            with _run_embedder(settings, embedder) as run_embedder:
                plan = plan_ingest(settings, entries, run_embedder, rebuild=rebuild, progress=progress, log=log)
                built = build_generation(settings, plan, run_embedder, progress=progress, log=log)
                if required is not None:
                    _check_required(settings, plan, built, required)
                return publish_generation(settings, plan, built, run_embedder, started=started, log=log)
    except AssistantError:
        raise
    except Exception as exc:
        # A read-only or full data folder, an unreachable Chroma server: one French sentence (the
        # unfinished generation is already deleted); anything else is a bug and keeps its traceback.
        fault = store.storage_fault(exc, settings)
        if fault is None:
            raise
        raise fault from exc


def _check_required(settings: Settings, plan: IngestPlan, built: BuiltGeneration | None, rel: str) -> None:
    failure = next((f for f in plan.report.failed if f["path"] == rel), None)
    if failure is None:
        return
    if built is not None:
        store.discard_generation(settings, built.generation)  # never published: no reader ever saw it
    raise RequiredFileError(rel, failure["reason"])


@contextmanager
def _run_embedder(settings: Settings, given: NamedEmbeddings | None) -> Iterator[NamedEmbeddings]:
    # A given embedder (tests, benchmarks) is used as it is; otherwise the run's pool of embedding
    # processes, which stop with the run whatever ends it.
    if given is not None:
        yield given
        return
    with ingestion_embedder(settings) as embedder:
        yield embedder


@dataclass
class IngestPlan:
    """What a run is to do, decided before anything is written."""

    previous: store.Generation | None  # the generation this run starts from (None: from scratch)
    current: store.Generation | None  # the generation readers use now: kept on disk until the next run
    pending: list[_Pending]  # new or changed files, in corpus order, read ahead by ``reader``
    removed: list[str]  # files of ``previous`` gone from the corpus
    documents: dict[str, CatalogEntry]  # every file this run saw (and kept failures), with its status
    report: IngestReport  # unchanged and failed files so far; the next steps complete it
    reader: ReadAhead[Any, _Prepared] | None = None  # the last stage: files read, split and embedded

    @property
    def changes_nothing(self) -> bool:
        """Nothing removed and no new or changed file readable (waits for the first readable one)."""
        return self.previous is not None and not self.removed and not any(map(self._resolve, self.pending))

    def prepared(self) -> Iterator[_Prepared]:
        """The new or changed files, loaded and split, in corpus order, as the reader delivers them;
        a file that cannot be read is recorded as failed (a file indexed before keeps its passages)."""
        for item in self.pending:
            if (prepared := self._resolve(item)) is not None:
                yield prepared

    def _resolve(self, item: _Pending) -> _Prepared | None:
        if not item.resolved:
            assert self.reader is not None
            future = self.reader.futures[item.position]
            try:
                item.prepared = future.result()
            except (LoadError, OSError) as exc:
                reason = exc.reason if isinstance(exc, LoadError) else f"lecture impossible ({exc.strerror})"
                self._failed(item.rel, item.path, item.old, reason)
            else:
                self.documents[item.rel] = item.prepared.entry
            item.resolved = True
        return item.prepared

    def _failed(self, rel: str, path: Path, old: CatalogEntry | None, reason: str) -> None:
        self.report.failed.append({"path": rel, "reason": reason})
        before = old or CatalogEntry(doc_id="", source_path=rel, format=path.suffix.lower().lstrip("."))
        self.documents[rel] = replace(before, status="failed", reason=reason)

    def stop_reading(self) -> None:
        if self.reader is not None:
            self.reader.stop()


@dataclass(frozen=True)
class BuiltGeneration:
    """A generation folder with every passage embedded, not yet visible to readers."""

    generation: store.Generation
    vectors: store.VectorIndex


def _manifest_entries(corpus_dir: Path) -> dict[str, DocumentEntry]:
    if not corpus_dir.is_dir():
        raise IngestConfigError(f"Le dossier du corpus n'existe pas : {corpus_dir}")
    try:
        manifest = load_manifest(corpus_dir / "sources.yaml") if (corpus_dir / "sources.yaml").exists() else None
    except ManifestError as exc:
        raise IngestConfigError(f"Manifeste du corpus invalide : {exc}") from exc
    return {d.file: d for d in manifest.documents} if manifest else {}


def plan_ingest(
    settings: Settings,
    entries: dict[str, DocumentEntry],
    embedder: NamedEmbeddings,
    *,
    rebuild: bool = False,
    progress: bool = True,
    log: IO[str] | None = None,
) -> IngestPlan:
    """Step 1: sort the corpus files into unchanged (reused as they are), new or changed (loaded and split
    by a background reader from now on, while step 2 embeds the files before them), failed and removed,
    against the current generation's catalog (none with ``rebuild``)."""
    corpus_dir = settings.corpus_dir
    current = shared_state.current_generation(settings)
    previous = None if rebuild else current
    catalog = store.read_catalog(previous) if previous else Catalog()
    if previous and catalog.embedder not in (None, embedder.name):
        raise IngestConfigError(
            f"L'index actuel a été construit avec « {catalog.embedder} » et l'embedder configuré est "
            f"« {embedder.name} ». Relancez avec --rebuild pour tout réindexer."
        )
    known = dict(catalog.documents)
    plan = IngestPlan(previous, current, pending=[], removed=[], documents={}, report=IngestReport())
    limits = LoadLimits.from_settings(settings)

    files = list(corpus_files(corpus_dir))
    try:
        # Ids are decided for the whole corpus at once: a file's id depends on which other files collide with it.
        doc_ids = assign_doc_ids((p.relative_to(corpus_dir).as_posix() for p in files),
                                 {rel: entry.id for rel, entry in entries.items()})
    except DocIdError as exc:
        raise IngestConfigError(str(exc)) from exc
    seen: set[str] = set()
    bar = tqdm(files, desc="Fichiers", unit="fichier", disable=not progress,
               file=log or sys.stderr)
    for path in bar:
        rel = path.relative_to(corpus_dir).as_posix()
        seen.add(rel)
        bar.set_postfix_str(rel[-40:])
        entry = entries.get(rel)
        try:
            if path.is_symlink():
                from ingest.load import check_inside

                check_inside(path, corpus_dir)
            file_hash = _sha256(path)
            signature = _entry_signature(entry, settings)
            old = known.get(rel)
            # A file whose id changed (a colliding file appeared or left) is re-split: its passages carry the id.
            if old and old.file_hash == file_hash and old.signature == signature and old.doc_id == doc_ids[rel]:
                plan.report.unchanged.append(rel)
                plan.documents[rel] = replace(old, status="unchanged")
                continue
        except (LoadError, OSError) as exc:
            # A file indexed before keeps its passages; only the failure is reported.
            plan._failed(rel, path, known.get(rel),
                         exc.reason if isinstance(exc, LoadError) else f"lecture impossible ({exc.strerror})")
            continue
        plan.pending.append(_Pending(rel, path, entry, doc_ids[rel], file_hash, signature, old, len(plan.pending)))
        plan.documents[rel] = old or CatalogEntry(doc_id=doc_ids[rel], source_path=rel)  # its place, until read
    plan.removed = sorted(rel for rel in known if rel not in seen)
    # Two stages, each in its own thread: read and split the next files; embed each one as it comes.
    reading = ReadAhead(plan.pending, lambda item: _read(item, settings, limits))
    plan.reader = reading.then(lambda prepared: _embed(prepared, settings, embedder), name="ingest-embed-ahead")
    return plan


def _embed(prepared: _Prepared, settings: Settings, embedder: NamedEmbeddings) -> _Prepared:
    """The file's passage vectors, computed with its quotable units' in one call to the embedder.

    Units are embedded for the extractive answer, which finds them in the embedder's persistent cache:
    an embedder without that cache would keep nothing, so with ``passage_vectors="text"`` it embeds the
    passages only.
    """
    passages = [Passage.from_document(doc.id or "", doc) for doc in prepared.passages]
    prepared.vectors = embed_passages_and_units(
        passages, embedder, mode=settings.stored_vectors,
        with_units=settings.stored_vectors == "units" or isinstance(embedder, CachedEmbeddings))
    return prepared


def _read(item: _Pending, settings: Settings, limits: LoadLimits) -> _Prepared:
    """A new or changed file loaded (in its own child process) and split into passages."""
    started = time.monotonic()  # one time budget per file: reading (in the child) and splitting
    loaded = load_file(item.path, settings.corpus_dir, limits)
    meta = _doc_metadata(item.rel, item.doc_id, item.entry, loaded.title, loaded.author, loaded.format,
                         item.file_hash)
    passages = split_pages(
        loaded.pages, meta, chunk_words=settings.chunk_words, overlap_words=settings.chunk_overlap_words,
        max_passages=settings.max_passages_per_file, deadline=started + settings.pdf_timeout_s,
        budget_s=settings.pdf_timeout_s,
    )
    if not passages:
        raise LoadError("aucun passage exploitable après découpage")
    indexed = CatalogEntry(
        doc_id=meta[DOC_ID], source_path=item.rel, title=meta[TITLE], publisher=meta[PUBLISHER], url=meta[URL],
        edition=meta[EDITION], themes=tuple(meta[THEMES].split(";")) if meta[THEMES] else (),
        format=loaded.format, pages=len(loaded.pages), passages=len(passages),
        file_hash=item.file_hash, signature=item.signature,
        indexed_at=datetime.now(UTC).isoformat(timespec="seconds"), status="indexed",
    )
    return _Prepared(item.rel, passages, indexed, force=bool(item.old and item.old.file_hash == item.file_hash))


def build_generation(
    settings: Settings,
    plan: IngestPlan,
    embedder: NamedEmbeddings,
    *,
    progress: bool = True,
    log: IO[str] | None = None,
) -> BuiltGeneration | None:
    """Step 2: a new generation folder holding the previous generation's vectors, copied as they are, with
    the plan's changed files re-indexed and its removed files deleted; None when the plan changes nothing.

    Readers never see this folder before :func:`publish_generation`: a job killed here leaves a folder
    that the ``CURRENT`` pointer never named, which the next run deletes.
    """
    if plan.changes_nothing:
        # The current generation stays: no new folder, no re-embedding.
        return None
    generation = store.new_generation(settings.data_dir)
    try:
        return _fill_generation(settings, plan, generation, embedder, progress=progress, log=log)
    except BaseException:
        plan.stop_reading()
        store.discard_generation(settings, generation)  # nothing unfinished left behind
        raise


def _fill_generation(settings: Settings, plan: IngestPlan, generation: store.Generation, embedder: NamedEmbeddings,
                     *, progress: bool, log: IO[str] | None) -> BuiltGeneration:
    previous = plan.previous
    # Chroma asks this for the vectors of the passages the record manager finds new or changed: the ones
    # the embedding stage computed for the file.
    derived = _DerivedVectors(embedder)
    vectors = store.open_vectorstore(settings, generation, derived, create=True)
    if previous:
        shutil.copy2(previous.path / RECORDS_FILE, generation.path / RECORDS_FILE)
    records = SQLiteRecordManager(f"chroma/{settings.collection}", generation.path / RECORDS_FILE)
    try:
        if previous:
            old_vectors = store.open_vectorstore(settings, previous, embedder)
            store.copy_records(old_vectors.collection, vectors.collection)
        records.create_schema()
        pbar = tqdm(total=0, desc="Passages", unit="passage", disable=not progress, file=log or sys.stderr)
        for item in plan.prepared():
            pbar.total += len(item.passages)  # the files after it are still being read
            pbar.refresh()
            assert item.vectors is not None
            derived.remember([doc.page_content for doc in item.passages], item.vectors)
            index(
                item.passages,
                records,
                vectors.langchain,
                cleanup="scoped_full",
                source_id_key=SOURCE_PATH,
                key_encoder=_passage_key,
                batch_size=max(settings.embed_batch_size * 4, 16),
                force_update=item.force,
            )
            derived.forget()
            plan.report.indexed.append(item.rel)
            pbar.update(len(item.passages))
        pbar.close()
        for rel in plan.removed:
            keys = records.list_keys(group_ids=[rel])
            if keys:
                vectors.langchain.delete(keys)
                records.delete_keys(keys)
            plan.report.removed.append(rel)
    finally:
        records.close()
    return BuiltGeneration(generation, vectors)


def publish_generation(
    settings: Settings,
    plan: IngestPlan,
    built: BuiltGeneration | None,
    embedder: NamedEmbeddings,
    *,
    started: float,
    log: IO[str] | None = None,
) -> IngestReport:
    """Step 3: write the built generation's BM25 index and catalog, mark it complete and switch the
    ``CURRENT`` pointer to it atomically, then delete older generations; in every case, record the
    run's statuses in ``last_run.json`` and return the finished report."""
    report = plan.report
    if built is None:
        report.generation = plan.previous.name if plan.previous else ""
        # Nothing to build, but a job killed mid-way may have left an unfinished folder: it goes now, as the
        # README promises « the next run starts clean » (the lock says no other job is writing one).
        store.prune_generations(settings, keep={report.generation} if report.generation else set(),
                                unfinished_only=True)
    else:
        generation = built.generation
        try:
            _complete_generation(settings, plan, built, embedder)
            shared_state.publish(settings, generation)
        except BaseException:
            store.discard_generation(settings, generation)  # the pointer still names the served generation
            raise
        # Readers may still be on the generation that was current until now.
        current = plan.current
        shared_state.prune(settings, keep={generation.name} | ({current.name} if current else set()))
        report.generation = generation.name
    _finish(report, plan.documents, started)
    try:
        _write_last_run(settings, report, plan.documents)
    except (OSError, AssistantError) as exc:  # the index is published; only the Sources tab's statuses are stale
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        print(f"Attention : le bilan de l'indexation n'a pas pu être enregistré ({reason}).",
              file=log or sys.stderr)
    return report


def _complete_generation(settings: Settings, plan: IngestPlan, built: BuiltGeneration,
                         embedder: NamedEmbeddings) -> None:
    """The built generation's BM25 index and catalog."""
    report = plan.report
    generation = built.generation
    _build_lexical(built.vectors, generation)
    boilerplate = boilerplate_openings(
        Passage.from_document(pid, doc) for pid, doc, _ in store.iter_records(built.vectors.collection)
    )
    store.write_catalog(generation, Catalog(
        generation=generation.name,
        embedder=embedder.name,
        dim=embedder.dim,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        # Only documents that have passages in this generation.
        documents={rel: doc for rel, doc in plan.documents.items() if doc.passages},
        failed=tuple(CatalogFailure(f["path"], f["reason"]) for f in report.failed),
        chunk_words=settings.chunk_words,
        chunk_overlap_words=settings.chunk_overlap_words,
        boilerplate_openings=tuple(boilerplate),
    ))


class _DerivedVectors(NamedEmbeddings):
    """The embedder Chroma sees while a generation is built: vectors remembered for the current file's
    passage texts, anything else embedded by ``inner``."""

    def __init__(self, inner: NamedEmbeddings) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.query_chars, self.passage_chars = inner.query_chars, inner.passage_chars
        self._known: dict[str, np.ndarray] = {}

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._known.update(zip(texts, vectors, strict=True))

    def forget(self) -> None:
        self._known.clear()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._known))
        found = dict(self._known)
        if missing:
            found.update(zip(missing, self.inner.embed_passages(missing), strict=True))
        return np.vstack([found[t] for t in texts]).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


def _passage_key(doc: Document) -> str:
    if not doc.id:
        raise ValueError("passage without id")
    return doc.id


def _build_lexical(vectors: store.VectorIndex, generation: store.Generation) -> None:
    ids, texts, doc_ids = [], [], []
    for pid, doc, _ in store.iter_records(vectors.collection):
        ids.append(pid)
        texts.append(lexical_text(doc))
        doc_ids.append(str(doc.metadata.get(DOC_ID, "")))
    LexicalIndex.build(ids, texts).save(generation.lexical_dir)
    store.write_json_atomic(generation.passage_docs_path, doc_ids)


def _finish(report: IngestReport, documents: dict[str, CatalogEntry], started: float) -> None:
    live = [d for d in documents.values() if d.status in ("indexed", "unchanged")]
    report.pages = sum(d.pages for d in live)
    report.passages = sum(d.passages for d in live)
    report.seconds = time.perf_counter() - started


def _write_last_run(settings: Settings, report: IngestReport, documents: dict[str, CatalogEntry]) -> None:
    """The statuses of the last run (shown in the app's Sources tab), whether or not it made a generation."""
    shared_state.write_last_run(
        settings,
        {"finished": datetime.now(UTC).isoformat(timespec="seconds"), "report": report.to_json(),
         "documents": {rel: entry.to_json() for rel, entry in documents.items()}},
    )
