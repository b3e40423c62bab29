"""The SDP configuration database: SBIs, processing blocks, buffer reservations and PB logs.

Records are JSON objects under ``sbi/<id>``, ``pb/<id>``, ``buffer/<name>`` and
``log/<pb_id>/<time>`` in a :class:`KVStore` (SQLite by default, etcd in production). Every
update is a compare-and-swap loop, so concurrent controllers and CLIs never lose a write.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from ...errors import UsageError, ValidationError
from .kv import KVStore

Record = dict[str, Any]


def open_store(url: str | None = None, *, workdir: str | Path = ".") -> ConfigDB:
    """The configuration database named by ``url`` (``RADIOFLOW_SDP_STORE`` when None).

    ``etcd://HOST:PORT[/NAMESPACE]`` is an etcd server; ``sqlite:///PATH`` or a plain path a
    SQLite file; the default is ``<workdir>/.radioflow/runs.db`` beside the run records.
    """
    url = url or os.environ.get("RADIOFLOW_SDP_STORE") or ""
    if url.startswith(("etcd://", "etcds://")):
        from .etcd_store import EtcdStore

        return ConfigDB(EtcdStore(url))
    from .sqlite_store import SQLiteStore

    if url.startswith("sqlite://"):
        path = Path(url[len("sqlite://"):])
    elif url:
        if "://" in url:
            raise UsageError(f"SDP store '{url}': use etcd://HOST:PORT[/NAMESPACE], sqlite:///PATH or a file path.")
        path = Path(url)
    else:
        path = Path(workdir, ".radioflow", "runs.db")
    return ConfigDB(SQLiteStore(path))


class ConfigDB:
    """SDP records over a key-value store."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    @property
    def url(self) -> str:
        return self.kv.url

    def close(self) -> None:
        self.kv.close()

    # -- SBIs and PBs --------------------------------------------------------------------
    def submit(self, sbi: Record, pbs: list[Record]) -> None:
        """Store a new SBI and its PBs in one transaction; refuse ids already in use."""
        items = {f"sbi/{sbi['id']}": sbi, **{f"pb/{pb['id']}": pb for pb in pbs}}
        if self.kv.create_all(items):
            return
        taken = [k for k in items if self.kv.get(k) is not None]
        what = ", ".join(k.replace("/", " ", 1) for k in taken) or "a key"
        raise ValidationError(f"Cannot submit {sbi['id']}: {what} already exist(s) in the configuration "
                              f"database {self.url} (ids must be new; see radioflow sdp status).")

    def sbi(self, sbi_id: str) -> Record | None:
        got = self.kv.get(f"sbi/{sbi_id}")
        return got[0] if got else None

    def sbis(self) -> list[Record]:
        return [v for _, v, _ in self.kv.scan("sbi/")]

    def pb(self, pb_id: str) -> Record | None:
        got = self.kv.get(f"pb/{pb_id}")
        return got[0] if got else None

    def pbs(self, sbi_id: str | None = None) -> list[Record]:
        """PBs (of one SBI) in submission order."""
        rows = [v for _, v, _ in self.kv.scan("pb/") if sbi_id is None or v["sbi_id"] == sbi_id]
        return sorted(rows, key=lambda p: (p["history"][0]["at"], p["sbi_id"], p.get("index", 0)))

    def require_pb(self, pb_id: str) -> Record:
        pb = self.pb(pb_id)
        if pb is None:
            known = ", ".join(p["id"] for p in self.pbs()[-10:]) or "none"
            raise UsageError(f"No processing block '{pb_id}' in {self.url} (recent: {known}).")
        return pb

    def require_sbi(self, sbi_id: str) -> Record:
        sbi = self.sbi(sbi_id)
        if sbi is None:
            known = ", ".join(s["id"] for s in self.sbis()[-10:]) or "none"
            raise UsageError(f"No scheduling-block instance '{sbi_id}' in {self.url} (known: {known}).")
        return sbi

    def update(self, key: str, fn: Callable[[Record], Record | None]) -> Record | None:
        """Compare-and-swap loop: ``fn`` gets a fresh copy and returns the new value (None: no change)."""
        while True:
            got = self.kv.get(key)
            if got is None:
                return None
            value, rev = got
            new = fn(value)
            if new is None:
                return None
            if self.kv.replace(key, new, rev):
                return new

    def update_pb(self, pb_id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        return self.update(f"pb/{pb_id}", fn)

    def update_sbi(self, sbi_id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        return self.update(f"sbi/{sbi_id}", fn)

    # -- logs ----------------------------------------------------------------------------
    def log(self, pb_id: str, message: str, *, source: str = "controller", level: str = "INFO") -> None:
        """Append one log line of a PB (kept in the database so every CLI sees it)."""
        now = time.time()
        key = f"log/{pb_id}/{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
        self.kv.put(key, {"at": now, "level": level, "source": source, "message": message})

    def logs(self, pb_id: str) -> list[Record]:
        return [v for _, v, _ in self.kv.scan(f"log/{pb_id}/")]

    # -- buffers -------------------------------------------------------------------------
    def reserve(self, pb_id: str, reservations: list[Record]) -> list[Record]:
        """Create the PB's buffer reservations atomically; reservations it already holds are kept.

        Raises :class:`ValidationError` when a name is reserved by another PB.
        """
        new: dict[str, Record] = {}
        held = []
        for res in reservations:
            got = self.kv.get(f"buffer/{res['name']}")
            if got is None:
                new[f"buffer/{res['name']}"] = res
            elif got[0]["pb_id"] == pb_id:
                held.append(got[0])
            else:
                raise ValidationError(f"buffer '{res['name']}' is already reserved by processing block "
                                      f"{got[0]['pb_id']}")
        if new and not self.kv.create_all(new):
            return self.reserve(pb_id, reservations)   # raced with another writer: look again
        return held + list(new.values())

    def end_reservations(self, pb_id: str) -> None:
        """Mark the PB's reservations inactive (its products stay where they are)."""
        for key, value, _ in self.kv.scan("buffer/"):
            if value["pb_id"] == pb_id and value.get("active", True):
                self.update(key, lambda v: {**v, "active": False, "ended": time.time()})

    def buffers(self) -> list[Record]:
        return [v for _, v, _ in self.kv.scan("buffer/")]
