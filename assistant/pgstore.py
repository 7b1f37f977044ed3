"""PostgreSQL for a server deployment: connections, versioned migrations, and the shared generation pointer.

Several app replicas share one database. What they share through it:

- the current-generation pointer and each published generation's files (BM25 index, catalog, record
  manager: everything but the vectors, which live on the Chroma server) as one archive per generation.
  Publishing inserts the archive and moves the pointer in one transaction, so every replica sees the old
  generation or the new one, never a mix, and a replica starting during a re-index finds the last one
  that was complete;
- the answer log, the feedback and the corpus audit trail (:mod:`assistant.pgfeedback`);
- the last ingestion run's statuses (the Sources tab).

Why archives in PostgreSQL rather than a shared folder: the replicas already need the database, a
transaction gives the atomic switch for free, and no network file system has to be mounted on every host.

psycopg is imported only when a server deployment connects (the ``server`` extra), never at import time.
"""

from __future__ import annotations

import io
import logging
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError
from assistant.settings import Settings

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Any constant of our own: the advisory locks of the migrations, of the ingestion job and of the retention purge.
_MIGRATION_LOCK = 7_151_001
_INGEST_LOCK = 7_151_002
RETENTION_LOCK = 7_151_003

# Append only: a version once released never changes (a replica of an older release refuses a newer schema).
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE answers (
    seq BIGSERIAL UNIQUE,
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    channel TEXT NOT NULL,
    question TEXT NOT NULL,
    standalone_question TEXT NOT NULL,
    answer TEXT NOT NULL,
    mode TEXT NOT NULL,
    plain_language BOOLEAN NOT NULL,
    abstained BOOLEAN NOT NULL,
    notice TEXT NOT NULL,
    citations JSONB NOT NULL,
    passages JSONB NOT NULL,
    settings JSONB NOT NULL,
    timings JSONB NOT NULL
);
CREATE INDEX answers_created ON answers(created_at);
CREATE TABLE feedback (
    id BIGSERIAL PRIMARY KEY,
    answer_id TEXT NOT NULL REFERENCES answers(id),
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL,
    tags JSONB NOT NULL,
    comment TEXT NOT NULL
);
CREATE INDEX feedback_answer ON feedback(answer_id);
CREATE TABLE generations (
    name TEXT PRIMARY KEY,
    published_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    archive BYTEA NOT NULL
);
CREATE TABLE current_generation (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    name TEXT NOT NULL REFERENCES generations(name),
    switched_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE last_ingest_run (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    report JSONB NOT NULL
);
"""),
    # The corpus audit trail (who added, replaced, described or removed what, and when), as in the SQLite file.
    (2, """
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    "user" TEXT NOT NULL,
    action TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    file TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail JSONB NOT NULL
);
CREATE INDEX audit_doc ON audit(doc_id);
"""),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# What a published generation's archive leaves out: the vectors are on the Chroma server, and the marker
# is written by whoever unpacks a complete archive.
_NOT_ARCHIVED = {"chroma", "COMPLETE"}


class DatabaseError(AssistantError, RuntimeError):
    """The PostgreSQL database cannot be used (message in French, shown as is)."""


def _where(url: str) -> str:
    """host:port/dbname of a connection string, without the user or the password (for messages)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "adresse illisible"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class Database:
    """Short-lived connections to the deployment's database, with a bounded retry and migrations run once."""

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0, retries: int = 3,
                 retry_pause_s: float = 0.5) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.retries = retries
        self.retry_pause_s = retry_pause_s
        self._migrated = False
        self._migrate_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url, connect_timeout_s=settings.database_connect_timeout_s,
                   retries=settings.database_retries)

    def unreachable_message(self) -> str:
        return (f"La base de données PostgreSQL ({_where(self.url)}) est injoignable après {self.retries} "
                "tentative(s) : vérifiez qu'elle est démarrée et le réglage ASSISTANT_DATABASE_URL.")

    def _open(self) -> psycopg.Connection[Any]:
        try:
            import psycopg
        except ImportError:
            raise DatabaseError("Le déploiement serveur demande psycopg : pip install "
                                "'alliances-territoires-assistant[server]'.") from None
        last: Exception | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.retry_pause_s * 2 ** (attempt - 1))
            try:
                # A statement never waits forever either (a lock held by a stuck client, a server overloaded).
                return psycopg.connect(self.url, connect_timeout=max(1, round(self.connect_timeout_s)),
                                       options="-c statement_timeout=60000 -c lock_timeout=30000")
            except psycopg.OperationalError as exc:
                last = exc
                log.warning("PostgreSQL injoignable (tentative %d/%d) : %s", attempt + 1, self.retries, exc)
        raise DatabaseError(self.unreachable_message()) from last

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """One connection, one transaction (committed when the block ends without error); migrated first."""
        self.migrate()
        with self._transaction() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        import psycopg

        conn = self._open()
        try:
            with conn:  # commits on success, rolls back on error, closes
                yield conn
        except psycopg.OperationalError as exc:  # the server went away mid-transaction
            raise DatabaseError(self.unreachable_message()) from exc

    def migrate(self) -> int:
        """Apply the migrations this database lacks (once per process, one replica at a time); the version."""
        if self._migrated:
            return SCHEMA_VERSION
        with self._migrate_lock:
            if self._migrated:
                return SCHEMA_VERSION
            with self._transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                             "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                if done and max(done) > SCHEMA_VERSION:
                    raise DatabaseError(
                        f"La base de données est au schéma {max(done)}, plus récent que celui de cette version de "
                        f"l'assistant ({SCHEMA_VERSION}) : mettez à jour l'application.")
                for version, sql in MIGRATIONS:
                    if version not in done:
                        conn.execute(sql.encode())
                        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                        log.info("Base de données migrée au schéma %d.", version)
            self._migrated = True
        return SCHEMA_VERSION

    # -- generations ------------------------------------------------------------------------------------

    def current_generation_name(self) -> str | None:
        with self.connect() as conn:
            row = conn.execute("SELECT name FROM current_generation").fetchone()
        return str(row[0]) if row else None

    def publish_generation(self, name: str, folder: Path) -> None:
        """Store a complete generation's files and make it the current one, in one transaction."""
        archive = pack(folder)
        with self.connect() as conn:
            conn.execute("INSERT INTO generations (name, archive) VALUES (%s, %s) "
                         "ON CONFLICT (name) DO UPDATE SET archive = EXCLUDED.archive", (name, archive))
            conn.execute("INSERT INTO current_generation (singleton, name) VALUES (TRUE, %s) ON CONFLICT "
                         "(singleton) DO UPDATE SET name = EXCLUDED.name, switched_at = now()", (name,))

    def fetch_generation(self, name: str, dest: Path) -> bool:
        """Unpack a published generation's files into ``dest`` (a new folder); False when it is not stored."""
        with self.connect() as conn:
            row = conn.execute("SELECT archive FROM generations WHERE name = %s", (name,)).fetchone()
        if row is None:
            return False
        unpack(bytes(row[0]), dest)
        return True

    def prune_generations(self, keep: set[str]) -> list[str]:
        """Forget published generations not in ``keep`` (never the current one); their names."""
        with self.connect() as conn:
            rows = conn.execute(
                "DELETE FROM generations WHERE name <> ALL(%s) "
                "AND name NOT IN (SELECT name FROM current_generation) RETURNING name", (sorted(keep),)).fetchall()
        return [str(r[0]) for r in rows]

    @contextmanager
    def ingest_lock(self) -> Iterator[bool]:
        """Held for a whole ingestion so that two jobs never publish at once; yields False when already held."""
        self.migrate()
        conn = self._open()
        try:
            conn.autocommit = True
            got = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (_INGEST_LOCK,)).fetchone()[0])  # type: ignore[index]
            yield got
        finally:
            conn.close()  # the session-level lock goes with the session

    # -- the last ingestion run (Sources tab) -----------------------------------------------------------

    def write_last_run(self, report: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self.connect() as conn:
            conn.execute("INSERT INTO last_ingest_run (singleton, report) VALUES (TRUE, %s) "
                         "ON CONFLICT (singleton) DO UPDATE SET report = EXCLUDED.report", (Jsonb(report),))

    def read_last_run(self) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute("SELECT report FROM last_ingest_run").fetchone()
        return dict(row[0]) if row else {}


def pack(folder: Path) -> bytes:
    """A generation folder's files (not its Chroma data) as a gzipped tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            if path.name in _NOT_ARCHIVED or path.name.endswith(".tmp"):
                continue
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def unpack(archive: bytes, dest: Path) -> None:
    """Extract what :func:`pack` wrote: regular files and folders inside ``dest``, nothing else."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            # The "data" filter refuses absolute paths, links out of ``dest`` and device files.
            tar.extractall(dest, filter="data")
            return
        # Python < 3.11.4 (Debian 12's 3.11.2) has no extraction filters: the same refusals, by hand.
        root = dest.resolve()
        members = tar.getmembers()
        for member in members:
            target = (root / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not target.is_relative_to(root) or target == root:
                raise DatabaseError(f"Archive de génération refusée : entrée « {member.name} » non sûre.")
        tar.extractall(root, members=members)  # every member checked above
