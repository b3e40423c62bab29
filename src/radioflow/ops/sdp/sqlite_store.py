"""SQLite configuration database (the default): one table in ``<workdir>/.radioflow/runs.db``.

WAL journal and a busy timeout let controllers and CLIs in several processes share it; every
write is its own ``BEGIN IMMEDIATE`` transaction, so compare-and-swap is exact.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ...errors import UsageError
from .kv import KVStore, StoreError

_SCHEMA = "CREATE TABLE IF NOT EXISTS sdp_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, rev INTEGER NOT NULL)"


class SQLiteStore(KVStore):
    """:class:`KVStore` on a SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path.resolve()}"
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"Cannot open the SDP configuration database {self.path}: {exc}.") from None

    def _tx(self, fn: Any) -> Any:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:   # locked beyond the busy timeout
                raise StoreError(f"SDP store {self.path}: {exc}") from None
            try:
                result = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def get(self, key: str) -> tuple[dict[str, Any], int] | None:
        with self._lock:
            row = self._db.execute("SELECT value, rev FROM sdp_kv WHERE key = ?", (key,)).fetchone()
        return (json.loads(row[0]), int(row[1])) if row else None

    def scan(self, prefix: str) -> list[tuple[str, dict[str, Any], int]]:
        hi = prefix + "\U0010ffff"
        with self._lock:
            rows = self._db.execute("SELECT key, value, rev FROM sdp_kv WHERE key >= ? AND key < ? ORDER BY key",
                                    (prefix, hi)).fetchall()
        return [(k, json.loads(v), int(r)) for k, v, r in rows]

    def create_all(self, items: dict[str, dict[str, Any]]) -> bool:
        def tx(db: sqlite3.Connection) -> bool:
            for key in items:
                if db.execute("SELECT 1 FROM sdp_kv WHERE key = ?", (key,)).fetchone():
                    return False
            db.executemany("INSERT INTO sdp_kv (key, value, rev) VALUES (?, ?, 1)",
                           [(k, json.dumps(v)) for k, v in items.items()])
            return True

        return bool(self._tx(tx))

    def replace(self, key: str, value: dict[str, Any], revision: int) -> bool:
        def tx(db: sqlite3.Connection) -> bool:
            cur = db.execute("UPDATE sdp_kv SET value = ?, rev = rev + 1 WHERE key = ? AND rev = ?",
                             (json.dumps(value), key, revision))
            return cur.rowcount == 1

        return bool(self._tx(tx))

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._tx(lambda db: db.execute(
            "INSERT INTO sdp_kv (key, value, rev) VALUES (?, ?, 1) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, rev = rev + 1", (key, json.dumps(value))))

    def delete(self, key: str) -> None:
        self._tx(lambda db: db.execute("DELETE FROM sdp_kv WHERE key = ?", (key,)))

    def close(self) -> None:
        with self._lock:
            self._db.close()
