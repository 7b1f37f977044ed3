"""The Albert API's embeddings (``/v1/embeddings``) and reranking (``/v1/rerank``).

Albert, the French State's OpenAI-compatible API, serves embedding and reranking models besides its chat
models (the chat preset lives in :mod:`assistant.llm`). Requests go through the ``openai`` client, whose
retries cover what a busy public service does: a refusal for load (429), a server error (5xx), a timeout or
a lost connection is retried ``albert_retries`` times, with exponential pauses (0.5 s, 1 s, 2 s…, at most
8 s, with jitter) or the pause the service asks for (``Retry-After``). When the last attempt fails too:

- embeddings raise :class:`~assistant.embeddings.EmbedderServiceError` (busy, slow, unreachable: worth
  retrying later) or :class:`~assistant.embeddings.EmbedderError` (key refused, unknown model, a malformed
  answer), both in French;
- reranking raises :class:`RerankError`, which the retriever turns into the local order and a notice.

Nothing here touches the network before the first embedding or reranking; the address and key are
resolved from the settings by :meth:`AlbertAccess.from_settings`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.embeddings import EmbedderError, EmbedderServiceError, NamedEmbeddings, normalise
from assistant.errors import AssistantError
from assistant.settings import Settings, SettingsError

if TYPE_CHECKING:
    import openai

# The Albert API's public address (the chat preset's default too).
ALBERT_BASE_URL = "https://albert.api.etalab.gouv.fr/v1"
# The embedding model the issue names; its vectors have 1024 dimensions.
DEFAULT_EMBED_MODEL = "BAAI/bge-m3"
# Dimensions of the models we know, so that building the embedder asks the service nothing; another model is
# asked once, at construction (the index's metadata needs the dimension before the first vector).
KNOWN_DIMENSIONS = {"BAAI/bge-m3": 1024, "bge-m3": 1024}
# Inputs per embeddings request unless the settings say otherwise (ASSISTANT_EMBED_BATCH_SIZE).
DEFAULT_BATCH = 64


class AlbertConfigError(SettingsError):
    """The Albert API is configured without what it needs (its key)."""


class RerankError(AssistantError, RuntimeError):
    """The reranking service failed, retries included (the caller keeps its own order)."""

    def __init__(self, message: str, busy: bool) -> None:
        super().__init__(message)
        self.busy = busy  # 429, 5xx, timeout or unreachable: expected now and then, not a configuration error


@dataclass(frozen=True)
class AlbertAccess:
    """Where the Albert API is and how to reach it."""

    base_url: str
    api_key: str = field(repr=False)
    timeout_s: float = 20.0
    retries: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> AlbertAccess:
        """ASSISTANT_ALBERT_*; else the chat preset's address and key when ASSISTANT_LLM_BACKEND=albert (never
        another backend's key: it would be sent to Albert); else Albert's public address and no key."""
        chat = settings.llm_backend == "albert"
        base = settings.albert_base_url.strip() or (settings.llm_base_url.strip() if chat else "") or ALBERT_BASE_URL
        key = settings.albert_api_key.strip() or (settings.llm_api_key.strip() if chat else "")
        return cls(base.rstrip("/"), key, settings.albert_timeout_s, settings.albert_retries)

    def check_key(self) -> None:
        if not self.api_key:
            raise AlbertConfigError(
                "La clé de l'API Albert manque : définissez ASSISTANT_ALBERT_API_KEY (ou ASSISTANT_LLM_API_KEY "
                "avec ASSISTANT_LLM_BACKEND=albert)."
            )

    def client(self) -> openai.OpenAI:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s,
                             max_retries=self.retries)


def failure(exc: Exception, access: AlbertAccess, model: str) -> tuple[str, bool]:
    """A French reason for an ``openai`` client error, and whether it is a passing fault (busy, slow, down)."""
    import openai

    n = access.retries
    tries = f"après {n} nouvelles tentatives" if n > 1 else "après 1 nouvelle tentative" if n else \
        "sans nouvelle tentative"
    if isinstance(exc, openai.APITimeoutError):
        return f"l'API Albert n'a pas répondu en {access.timeout_s:g} s ({tries})", True
    if isinstance(exc, openai.APIConnectionError):
        return f"l'API Albert est injoignable à l'adresse {access.base_url} ({tries})", True
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code == 429:
            return f"l'API Albert est saturée (trop de requêtes, HTTP 429, {tries})", True
        if code >= 500 or code in (408, 409):
            return f"l'API Albert est en panne ou surchargée (HTTP {code}, {tries})", True
        if code in (401, 403):
            return (f"l'API Albert a refusé la clé (HTTP {code}) : vérifiez ASSISTANT_ALBERT_API_KEY "
                    "(ou ASSISTANT_LLM_API_KEY)"), False
        return (f"l'API Albert a refusé la requête (HTTP {code}) : vérifiez que le modèle « {model} » figure "
                f"dans {access.base_url}/models"), False
    return f"réponse inattendue de l'API Albert ({type(exc).__name__})", False


class AlbertEmbeddings(NamedEmbeddings):
    """Vectors from the Albert API's ``/v1/embeddings``, in batches, L2-normalised.

    Its name (``albert:<model>``) and dimension are stored with the index like any embedder's: an index built
    with another embedder is refused until it is rebuilt (``python -m ingest --rebuild``).
    """

    def __init__(self, model: str, access: AlbertAccess, *, batch_size: int = DEFAULT_BATCH,
                 dim: int | None = None) -> None:
        access.check_key()  # validate early: not at the first question
        self.model = model
        self.access = access
        self.batch_size = max(1, batch_size)
        self.name = f"albert:{model}"
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self.dim = 0
        self.dim = dim or KNOWN_DIMENSIONS.get(model) or self._request(["dimension"]).shape[1]

    def _openai(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = self.access.client()
            return self._client

    def _request(self, inputs: list[str]) -> np.ndarray:
        import openai

        try:
            response: Any = self._openai().embeddings.create(model=self.model, input=inputs,
                                                             encoding_format="float")
        except openai.OpenAIError as exc:
            reason, busy = failure(exc, self.access, self.model)
            error = EmbedderServiceError if busy else EmbedderError
            advice = " Réessayez dans quelques minutes." if busy else ""
            raise error(f"Calcul des vecteurs impossible : {reason}.{advice}") from exc
        try:
            data = sorted(response.data, key=lambda d: d.index)
            vectors = np.asarray([d.embedding for d in data], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmbedderError(f"Réponse illisible de l'API Albert pour les vecteurs ({type(exc).__name__}).") \
                from exc
        if len(data) != len(inputs) or vectors.ndim != 2:
            raise EmbedderError(f"L'API Albert a renvoyé {len(data)} vecteurs pour {len(inputs)} textes.")
        if self.dim and vectors.shape[1] != self.dim:
            raise EmbedderError(
                f"L'API Albert a renvoyé des vecteurs de {vectors.shape[1]} dimensions pour « {self.model} », "
                f"{self.dim} attendues : un index ne mélange pas deux modèles."
            )
        return vectors

    def _embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The API refuses an empty input; a blank text gets a vector like any other.
        clipped = [t if t.strip() else " " for t in self._clipped(texts, is_query)]
        batches = [self._request(clipped[i:i + self.batch_size]) for i in range(0, len(clipped), self.batch_size)]
        return normalise(np.vstack(batches))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, is_query=True)


class AlbertReranker:
    """Passages reordered by the Albert API's ``/v1/rerank`` (``{model, query, documents, top_n}``)."""

    def __init__(self, model: str, access: AlbertAccess) -> None:
        access.check_key()
        self.model = model
        self.access = access
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def order(self, query: str, texts: Sequence[str], top_n: int) -> list[int]:
        """Indices of ``texts``, most relevant first: the service's ``top_n``, then the others in their order."""
        import openai

        if not texts:
            return []
        with self._lock:
            if self._client is None:
                self._client = self.access.client()
            client = self._client
        body = {"model": self.model, "query": query, "documents": list(texts), "top_n": min(top_n, len(texts))}
        try:
            reply: Any = client.post("/rerank", cast_to=object, body=body)
        except openai.OpenAIError as exc:
            reason, busy = failure(exc, self.access, self.model)
            raise RerankError(reason, busy) from exc
        try:
            # Albert answers {"results": [{"index", "relevance_score"}]}; older versions {"data": [{"index",
            # "score"}]}.
            rows = reply.get("results", reply.get("data"))
            scored = [(int(r["index"]), float(r.get("relevance_score", r.get("score")))) for r in rows]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise RerankError(f"réponse illisible de l'API Albert ({type(exc).__name__})", busy=False) from exc
        ranked = [i for i, _ in sorted(scored, key=lambda pair: -pair[1]) if 0 <= i < len(texts)]
        ranked = list(dict.fromkeys(ranked))
        return ranked + [i for i in range(len(texts)) if i not in set(ranked)]
