"""Where the state replicas share lives: local files (the default) or PostgreSQL (``ASSISTANT_DEPLOYMENT=server``).

The rest of the code asks here, with its settings, for the current generation, the feedback store, the
audit trail, the ingestion lock and the last run's statuses; only this module knows the two deployments apart.

In a server deployment, ``data_dir`` is a local cache: a published generation's files (BM25 index,
catalog, record manager) are unpacked from the database into ``data_dir/generations/<name>`` the first
time a replica needs them, then used as a local generation is.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assistant import store
from assistant.audit import AuditLog
from assistant.feedback import FeedbackStore
from assistant.pgstore import Database, DatabaseError
from assistant.settings import Settings

LAST_RUN = "last_run.json"

log = logging.getLogger(__name__)

_DATABASES: dict[tuple[str, float, int], Database] = {}
_LOCK = threading.Lock()


def database(settings: Settings) -> Database:
    """The process's one :class:`Database` for these settings (migrations run once, on first use)."""
    key = (settings.database_url, settings.database_connect_timeout_s, settings.database_retries)
    with _LOCK:
        db = _DATABASES.get(key)
        if db is None:
            db = _DATABASES[key] = Database.from_settings(settings)
        return db


def prepare(settings: Settings) -> None:
    """At start: a server deployment checks its database is reachable and migrates it (nothing locally)."""
    if settings.server_deployment:
        database(settings).migrate()


def current_generation(settings: Settings) -> store.Generation | None:
    """The generation to answer from, or None before the first complete publication."""
    if not settings.server_deployment:
        return store.current_generation(settings.data_dir)
    db = database(settings)
    try:
        name = db.current_generation_name()
    except DatabaseError:
        # The database down for a moment: keep answering from the generation already unpacked here (the
        # pointer cannot move while nobody can reach it); answers are then not logged.
        last = _LAST.get((settings.database_url, settings.data_dir))
        if last is None or not (last.path / store.COMPLETE_MARKER).exists():
            raise
        log.warning("Base de données injoignable : réponses servies depuis la génération %s.", last.name)
        return last
    if name is None:
        return None
    generation = _local_copy(settings, db, name)
    if generation is not None:
        _LAST[(settings.database_url, settings.data_dir)] = generation
    return generation


_LAST: dict[tuple[str, Path], store.Generation] = {}


_FETCH_LOCK = threading.Lock()


def _local_copy(settings: Settings, db: Database, name: str) -> store.Generation | None:
    path = store.generations_dir(settings.data_dir) / name
    if (path / store.COMPLETE_MARKER).exists():
        return store.Generation(name, path)
    with _FETCH_LOCK:
        if (path / store.COMPLETE_MARKER).exists():
            return store.Generation(name, path)
        # Unpacked beside, marked complete, then renamed into place: a replica killed half-way, or another
        # process of the same host unpacking the same generation, never leaves a half folder under the name.
        tmp = path.with_name(f".{name}.{uuid.uuid4().hex[:6]}.tmp")
        try:
            if not db.fetch_generation(name, tmp):
                return None  # forgotten between the two queries: the caller asks again
            (tmp / store.COMPLETE_MARKER).write_text(name, encoding="utf-8")
            try:
                tmp.rename(path)
            except OSError:
                if not (path / store.COMPLETE_MARKER).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _forget_old_copies(settings, keep=name)
    return store.Generation(name, path)


_SERVED: list[str] = []


def _forget_old_copies(settings: Settings, keep: str) -> None:
    # Keep the previous copy too: a search started on it may still be reading its files.
    if keep not in _SERVED:
        _SERVED.append(keep)
        del _SERVED[:-2]
    recent = set(_SERVED)
    root = store.generations_dir(settings.data_dir)
    for path in root.iterdir():
        # Only unpacked copies: a folder without the marker may be an ingestion at work on this host.
        if path.name not in recent and (path / store.COMPLETE_MARKER).exists():
            shutil.rmtree(path, ignore_errors=True)


def publish(settings: Settings, generation: store.Generation) -> None:
    """Make a complete generation the current one for every reader.

    Locally first: once the local pointer names it, a failure of the database step never makes the job
    delete a generation (and its Chroma collection) that the database might already serve.
    """
    store.publish(settings.data_dir, generation)
    if settings.server_deployment:
        database(settings).publish_generation(generation.name, generation.path)


def prune(settings: Settings, keep: set[str]) -> list[str]:
    removed = store.prune_generations(settings, keep)
    if settings.server_deployment:
        removed = sorted(set(removed) | set(database(settings).prune_generations(keep)))
    return removed


@contextmanager
def ingest_lock(settings: Settings) -> Iterator[bool]:
    """Yields False when another ingestion holds the deployment's lock (always True when local: the data
    folder's own lock covers it)."""
    if not settings.server_deployment:
        yield True
        return
    with database(settings).ingest_lock() as got:
        yield got


def feedback_store(settings: Settings) -> FeedbackStore:
    if settings.server_deployment:
        from assistant.pgfeedback import PgFeedbackStore

        return PgFeedbackStore(database(settings))
    return FeedbackStore(settings.feedback_path)


def audit_log(settings: Settings) -> AuditLog:
    """The corpus audit trail: a table of the feedback store (its SQLite file, or the deployment's database)."""
    if settings.server_deployment:
        from assistant.pgfeedback import PgAuditLog

        return PgAuditLog(database(settings))
    return AuditLog(settings.feedback_path)


def write_last_run(settings: Settings, data: dict[str, Any]) -> None:
    """The statuses of the last ingestion run (the Sources tab)."""
    if settings.server_deployment:
        database(settings).write_last_run(data)
    store.write_json_atomic(settings.data_dir / LAST_RUN, data)


def read_last_run(settings: Settings) -> dict[str, Any]:
    if settings.server_deployment:
        return database(settings).read_last_run()
    return _read_json(settings.data_dir / LAST_RUN)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, ValueError):
        return {}
