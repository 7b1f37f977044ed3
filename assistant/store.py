"""The only module that touches Chroma, and the switch between index generations.

Why generations: Chroma's ``PersistentClient`` is not safe for one process to
read a folder while another writes it (stale vectors, a half-flushed index
that crashes the reader). So each ingestion builds a complete new generation —
its own Chroma folder (or its own collection on a Chroma server), its BM25
index and its catalog — and only then switches the ``CURRENT`` pointer with an
atomic rename. Readers look at the pointer before each query: they see the old
generation or the new one, never a mix. A job killed half-way leaves an
unfinished folder that the pointer never named; the next run deletes it.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chromadb import Collection
from langchain_chroma import Chroma
from langchain_core.documents import Document

from assistant.catalog import Catalog
from assistant.durable import fsync_dir
from assistant.embeddings import NamedEmbeddings
from assistant.errors import AssistantError
from assistant.settings import Settings

log = logging.getLogger(__name__)

POINTER = "CURRENT"
COMPLETE_MARKER = "COMPLETE"
CATALOG = "catalog.json"
LEXICAL_DIR = "bm25"


class StoreError(AssistantError, RuntimeError):
    """Base for index problems; the message is French and shown as is."""


class NoIndexError(StoreError):
    pass


class StorageError(StoreError):
    """The data folder cannot be written (read-only, no permission) or its disk is full."""


class VectorServerError(StoreError):
    """The Chroma server (``ASSISTANT_CHROMA_MODE=http``) cannot be reached."""


_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = ("database or disk is full", "no space left on device", "disk quota exceeded")
_NOT_WRITABLE_TEXT = ("readonly database", "read-only file system", "permission denied",
                      "unable to open database file", "attempt to write a readonly")
_UNREACHABLE_TEXT = ("could not connect to a chroma server", "connection refused", "connecterror",
                     "failed to connect", "name or service not known")


def storage_fault(exc: BaseException, settings: Settings) -> StoreError | None:
    """The French error an environment fault stands for (read-only or full data folder, Chroma server
    unreachable), or None when ``exc`` is something else (a bug, shown with its traceback).

    Chroma and SQLite report these faults in their own exception types, sometimes with the OS error
    only in the text, hence the look at the messages of the whole ``__cause__``/``__context__`` chain.
    """
    where = settings.data_dir
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = current.errno if isinstance(current, OSError) else None
        text = f"{type(current).__name__}: {current}".lower()
        if code in _FULL or any(t in text for t in _FULL_TEXT):
            return StorageError(f"Le disque du dossier de données ({where}) est plein : libérez de la place "
                                "puis relancez l'indexation ; l'index en service n'a pas été modifié.")
        if code in _NOT_WRITABLE or any(t in text for t in _NOT_WRITABLE_TEXT):
            return StorageError(f"Le dossier de données ({where}) n'est pas accessible en écriture : donnez les "
                                "droits d'écriture ou choisissez un autre dossier avec --db ; l'index en service "
                                "n'a pas été modifié.")
        if settings.chroma_mode == "http" and (
                any(t in text for t in _UNREACHABLE_TEXT) or _is_transport_error(current)):
            return VectorServerError(unreachable_message(settings))
        current = current.__cause__ or current.__context__
    return None


def unreachable_message(settings: Settings) -> str:
    return (f"Le serveur Chroma ({settings.chroma_host}:{settings.chroma_port}) est injoignable : démarrez-le "
            "ou vérifiez ASSISTANT_CHROMA_HOST et ASSISTANT_CHROMA_PORT.")


def _is_transport_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError))


class EmbedderMismatchError(StoreError):
    pass


@dataclass(frozen=True)
class Generation:
    name: str
    path: Path  # local folder: Chroma data (persistent mode), BM25, catalog

    @property
    def chroma_dir(self) -> Path:
        return self.path / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.path / LEXICAL_DIR

    @property
    def passage_docs_path(self) -> Path:
        """Doc id of each BM25 entry, aligned with the lexical index's ids (for filters)."""
        return self.path / "passage_docs.json"

    @property
    def catalog_path(self) -> Path:
        return self.path / CATALOG


def generations_dir(data_dir: Path) -> Path:
    return data_dir / "generations"


def current_generation(data_dir: Path) -> Generation | None:
    """The generation readers should use, or None before the first complete ingestion.

    A pointer naming a missing or unfinished folder (deleted by hand, a copy gone wrong) counts as
    no index: readers say to run the ingestion, and the next ingestion builds from scratch.
    """
    try:
        name = (data_dir / POINTER).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    path = generations_dir(data_dir) / name
    if not name or "/" in name or name in (".", "..") or not (path / COMPLETE_MARKER).exists():
        return None
    return Generation(name, path)


def discard_generation(settings: Settings, generation: Generation) -> None:
    """Delete an unfinished generation (never the one the pointer names), collection included; best effort."""
    current = current_generation(settings.data_dir)
    if current is not None and current.name == generation.name:
        return
    if settings.chroma_mode == "http":
        with contextlib.suppress(Exception):  # server down: the folder still goes
            _client(settings, generation).delete_collection(collection_name(settings, generation.name))
    shutil.rmtree(generation.path, ignore_errors=True)


def new_generation(data_dir: Path) -> Generation:
    name = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    path = generations_dir(data_dir) / name
    path.mkdir(parents=True)
    return Generation(name, path)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex[:6]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    fsync_dir(path.parent)


def publish(data_dir: Path, generation: Generation) -> None:
    """Mark a finished generation complete, then point readers at it (atomically)."""
    for root, _dirs, files in os.walk(generation.path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    (generation.path / COMPLETE_MARKER).write_text(generation.name, encoding="utf-8")
    fsync_dir(generation.path)
    tmp = data_dir / f"{POINTER}.{uuid.uuid4().hex[:6]}.tmp"
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(generation.name)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, data_dir / POINTER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(data_dir)


def prune_generations(settings: Settings, keep: set[str], *, unfinished_only: bool = False) -> list[str]:
    """Delete unfinished and superseded generations (readers may still use the previous one); with
    ``unfinished_only``, only the folders never marked complete (left by a job killed mid-way)."""
    removed: list[str] = []
    root = generations_dir(settings.data_dir)
    if not root.exists():
        return removed
    for path in sorted(root.iterdir()):
        if path.name in keep or not path.is_dir() or (unfinished_only and (path / COMPLETE_MARKER).exists()):
            continue
        if settings.chroma_mode == "http":
            # Already gone, or server down: the folder still goes.
            with contextlib.suppress(Exception):
                _client(settings, Generation(path.name, path)).delete_collection(collection_name(settings, path.name))
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    for tmp in settings.data_dir.glob(f"{POINTER}.*.tmp"):
        tmp.unlink(missing_ok=True)
    return removed


def collection_name(settings: Settings, generation_name: str) -> str:
    # On a shared Chroma server, each generation is its own collection.
    if settings.chroma_mode == "http":
        return f"{settings.collection}-{generation_name}"
    return settings.collection


def _client(settings: Settings, generation: Generation) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_mode == "http":
        try:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                       settings=chroma_settings)
        except Exception as exc:  # chromadb says "Could not connect…" as a ValueError
            raise VectorServerError(unreachable_message(settings)) from exc
    return chromadb.PersistentClient(path=str(generation.chroma_dir), settings=chroma_settings)


def _read_only_copy(generation: Generation) -> Generation:
    """A private, writable copy of a published generation's Chroma folder, for a read-only data folder.

    Chroma's ``PersistentClient`` opens its SQLite file read-write and writes on open, so a deployment
    that mounts the index read-only is served from a copy in the temporary folder (one per process and
    generation, removed when the process exits; a published generation never changes, so the copy is exact).
    """
    with _COPIES_LOCK:
        copy = _COPIES.get(generation.path)
        if copy is None:
            if not _COPIES:
                sweep_stale_copies(Path(tempfile.gettempdir()))
            root = Path(tempfile.mkdtemp(prefix=f"{COPY_PREFIX}{generation.name}-"))
            (root / COPY_OWNER).write_text(str(os.getpid()), encoding="ascii")
            # One copy per process: it goes when the process ends, so restarts do not pile copies up.
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            shutil.copytree(generation.chroma_dir, root / "chroma", copy_function=shutil.copyfile)
            for folder, dirs, files in os.walk(root):
                for name in dirs + files:
                    path = os.path.join(folder, name)
                    os.chmod(path, 0o700 if name in dirs else 0o600)
            log.warning("Index %s en lecture seule : servi depuis une copie de travail dans %s.",
                        generation.name, root)
            copy = _COPIES[generation.path] = Generation(generation.name, root)
        return copy


_COPIES: dict[Path, Generation] = {}
_COPIES_LOCK = threading.Lock()
COPY_PREFIX = "assistant-"
COPY_OWNER = "owner.pid"


def sweep_stale_copies(tmp_root: Path) -> list[Path]:
    """Delete the working copies of read-only indexes whose process is gone; returns what was deleted.

    ``atexit`` does not run after ``kill -9`` or a crash of the interpreter, so a copy can outlive its process;
    the next process that makes a copy removes those. A copy is only removed when its ``owner.pid`` names a
    process that no longer exists: a folder without that file (another program's, or one being made) is left.
    """
    removed = []
    for path in tmp_root.glob(f"{COPY_PREFIX}*"):
        try:
            pid = int((path / COPY_OWNER).read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("Copies de travail laissées par un processus arrêté supprimées : %s",
                 ", ".join(p.name for p in removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@dataclass(frozen=True)
class VectorIndex:
    """One generation's Chroma collection, opened once and seen two ways.

    Reads, adds, counts and queries go through chromadb's public ``Collection``; LangChain's
    ``Chroma`` wraps the same client and collection name for its indexing API (``index()``,
    ``delete``), so this module never reaches into langchain-chroma's private attributes.
    """

    collection: Collection
    langchain: Chroma


def open_vectorstore(
    settings: Settings, generation: Generation, embedder: NamedEmbeddings, *, create: bool = False
) -> VectorIndex:
    """The generation's collection, checked against the configured embedder.

    Chroma never embeds anything itself here (no default embedding function,
    which would try to download a model): vectors always come from ``embedder``.
    """
    name = collection_name(settings, generation.name)
    if create:
        client = _client(settings, generation)
        collection = client.get_or_create_collection(
            name=name,
            embedding_function=None,
            metadata={"embedder": embedder.name, "dim": embedder.dim, "hnsw:space": "cosine"},
        )
    else:
        try:
            try:
                client = _client(settings, generation)
            except Exception as exc:
                fault = storage_fault(exc, settings)
                if settings.chroma_mode == "http" or not isinstance(fault, StorageError):
                    raise
                client = _client(settings, _read_only_copy(generation))
            collection = client.get_collection(name=name, embedding_function=None)
        except VectorServerError:
            raise
        except Exception as exc:
            if (fault := storage_fault(exc, settings)) is not None and isinstance(fault, VectorServerError):
                raise fault from exc
            raise NoIndexError(
                "L'index est introuvable ou incomplet. Lancez l'indexation : python -m ingest"
            ) from exc
        check_embedder(collection.metadata or {}, embedder)
    langchain = Chroma(client=client, collection_name=name, embedding_function=embedder,
                       create_collection_if_not_exists=False)
    return VectorIndex(collection, langchain)


def check_embedder(metadata: dict[str, Any], embedder: NamedEmbeddings) -> None:
    stored, dim = metadata.get("embedder"), metadata.get("dim")
    if stored != embedder.name or (dim is not None and int(dim) != embedder.dim):
        raise EmbedderMismatchError(
            f"Cet index a été construit avec le modèle d'embeddings « {stored} » ({dim} dimensions), "
            f"mais l'assistant est configuré avec « {embedder.name} » ({embedder.dim} dimensions). "
            "Réindexez le corpus avec ce modèle : python -m ingest --rebuild"
        )


def iter_records(collection: Collection, *, batch: int = 1000, where: dict[str, Any] | None = None,
                 with_embeddings: bool = False) -> Iterator[tuple[str, Document, Any]]:
    """Every (id, Document, vector-or-None) of a collection, in stable batches."""
    include = ["documents", "metadatas"] + (["embeddings"] if with_embeddings else [])
    offset = 0
    while True:
        got: Any = collection.get(include=include, limit=batch, offset=offset, where=where)  # type: ignore[arg-type]
        ids = got["ids"]
        if not ids:
            return
        embeddings = got.get("embeddings")
        for i, pid in enumerate(ids):
            doc = Document(page_content=got["documents"][i], metadata=got["metadatas"][i] or {}, id=pid)
            yield pid, doc, (embeddings[i] if with_embeddings and embeddings is not None else None)
        offset += len(ids)


def copy_records(src: Collection, dst: Collection, *, batch: int = 500) -> int:
    """Copy vectors as they are (no re-embedding) from one generation to the next."""
    copied = 0
    buffer: list[tuple[str, Document, Any]] = []

    def flush() -> None:
        nonlocal copied
        if buffer:
            dst.add(
                ids=[r[0] for r in buffer],
                documents=[r[1].page_content for r in buffer],
                metadatas=[r[1].metadata for r in buffer],
                embeddings=[r[2] for r in buffer],
            )
            copied += len(buffer)
            buffer.clear()

    for record in iter_records(src, with_embeddings=True):
        buffer.append(record)
        if len(buffer) >= batch:
            flush()
    flush()
    return copied


def dense_search(
    collection: Collection, query_vector: list[float], k: int, where: dict[str, Any] | None = None
) -> list[tuple[str, Document, float]]:
    """(id, Document, cosine similarity), best first."""
    count = collection.count()
    if count == 0:
        return []
    got: Any = collection.query(
        query_embeddings=[query_vector],  # type: ignore[arg-type]
        n_results=min(k, count),
        where=where,
        include=["documents", "metadatas", "distances"],
    )
    out = []
    for pid, text, meta, dist in zip(
        got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
    ):
        out.append((pid, Document(page_content=text, metadata=meta or {}, id=pid), 1.0 - float(dist)))
    return out


def get_by_ids(collection: Collection, ids: list[str]) -> dict[str, Document]:
    if not ids:
        return {}
    got: Any = collection.get(ids=ids, include=["documents", "metadatas"])
    return {
        pid: Document(page_content=text, metadata=meta or {}, id=pid)
        for pid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    }


def read_catalog(generation: Generation) -> Catalog:
    """The generation's catalog (empty when it has none); raises ``CatalogError`` when the file is malformed."""
    return Catalog.load(generation.catalog_path)


def write_catalog(generation: Generation, catalog: Catalog) -> None:
    write_json_atomic(generation.catalog_path, catalog.to_json())
