"""Optional reranking of the fused passages (``ASSISTANT_RERANKER``): a local cross-encoder, or the Albert
API's ``/v1/rerank`` (``albert:<model>``).

A reranker only changes the order of the passages the search found; the relevance floor still reads the
dense similarity. When the Albert API is busy, slow or down (retries spent), the retriever keeps the local
order and says so (:data:`RERANK_UNAVAILABLE`): an answer never fails for want of a reranking.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from assistant.albert import AlbertAccess, AlbertReranker
from assistant.settings import Settings, SettingsError

RERANK_UNAVAILABLE = ("Le reclassement des passages par l'API Albert n'a pas abouti : {reason}. Les passages "
                      "sont présentés dans l'ordre de la recherche locale.")


class Reranker(Protocol):
    def order(self, query: str, texts: Sequence[str], top_n: int) -> list[int]:
        """Indices of ``texts``, most relevant first (every index once)."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder from a local path or the local cache, loaded at first use."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._encoder: Any = None
        self._lock = threading.Lock()

    def order(self, query: str, texts: Sequence[str], top_n: int) -> list[int]:
        if not texts:
            return []
        with self._lock:
            if self._encoder is None:
                from sentence_transformers import CrossEncoder

                self._encoder = CrossEncoder(self.model, device="cpu", local_files_only=True)
        scores = self._encoder.predict([(query, t) for t in texts])
        return sorted(range(len(texts)), key=lambda i: -float(scores[i]))


def build_reranker(settings: Settings) -> Reranker | None:
    """The reranker named by ``settings.reranker`` (None when empty); nothing is loaded or called yet."""
    spec = settings.reranker.strip()
    if not spec:
        return None
    if spec == "albert" or spec.startswith("albert:"):
        model = spec.partition(":")[2].strip()
        access = AlbertAccess.from_settings(settings)
        if not model:
            raise SettingsError(f"ASSISTANT_RERANKER=albert:<modèle> : indiquez le modèle de reclassement (ceux "
                                f"que sert l'API : {access.base_url}/models).")
        return AlbertReranker(model, access)
    return CrossEncoderReranker(spec)
