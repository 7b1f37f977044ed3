"""A SQLite record manager for LangChain's indexing API.

``langchain_core`` only ships an in-memory record manager; the SQL one lives in
the legacy ``langchain-classic``/``langchain-community`` packages and brings
SQLAlchemy and an HTTP stack for five small queries. This one keeps the record
of each generation in a file inside that generation, so it is switched with it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from langchain_core.indexing import RecordManager


class SQLiteRecordManager(RecordManager):
    def __init__(self, namespace: str, path: Path) -> None:
        super().__init__(namespace)
        self.path = path
        self._conn = sqlite3.connect(path, timeout=30, check_same_thread=False)

    def close(self) -> None:
        self._conn.close()

    def create_schema(self) -> None:
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS records (namespace TEXT NOT NULL, key TEXT NOT NULL, "
                "group_id TEXT, updated_at REAL NOT NULL, PRIMARY KEY (namespace, key))"
            )
            self._conn.execute("CREATE INDEX IF NOT EXISTS records_group ON records (namespace, group_id)")

    async def acreate_schema(self) -> None:
        self.create_schema()

    def get_time(self) -> float:
        return time.time()

    async def aget_time(self) -> float:
        return self.get_time()

    def update(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        if group_ids is not None and len(keys) != len(group_ids):
            raise ValueError("Length of keys must match length of group_ids")
        now = self.get_time()
        if time_at_least and time_at_least > now:
            raise ValueError("time_at_least must be in the past")
        groups = group_ids if group_ids is not None else [None] * len(keys)
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO records (namespace, key, group_id, updated_at) VALUES (?, ?, ?, ?)",
                [(self.namespace, k, g, now) for k, g in zip(keys, groups, strict=True)],
            )

    async def aupdate(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        self.update(keys, group_ids=group_ids, time_at_least=time_at_least)

    def exists(self, keys: Sequence[str]) -> list[bool]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key FROM records WHERE namespace = ? AND key IN ({marks})", [self.namespace, *chunk]
            )
            found.update(r[0] for r in rows)
        return [k in found for k in keys]

    async def aexists(self, keys: Sequence[str]) -> list[bool]:
        return self.exists(keys)

    def list_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        sql = "SELECT key FROM records WHERE namespace = ?"
        args: list[object] = [self.namespace]
        if before is not None:
            sql += " AND updated_at < ?"
            args.append(before)
        if after is not None:
            sql += " AND updated_at > ?"
            args.append(after)
        if group_ids is not None:
            sql += f" AND group_id IN ({','.join('?' * len(group_ids))})"
            args.extend(group_ids)
        sql += " ORDER BY key"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self._conn.execute(sql, args)]

    async def alist_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        return self.list_keys(before=before, after=after, group_ids=group_ids, limit=limit)

    def delete_keys(self, keys: Sequence[str]) -> None:
        with self._conn:
            self._conn.executemany(
                "DELETE FROM records WHERE namespace = ? AND key = ?", [(self.namespace, k) for k in keys]
            )

    async def adelete_keys(self, keys: Sequence[str]) -> None:
        self.delete_keys(keys)
