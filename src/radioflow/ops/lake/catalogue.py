"""The local datalake catalogue (SQLite): DIDs ``namespace:name`` with lifetimes, replicas, ObsCore.

A DID is registered ``pending`` before its files are moved into place and becomes
``available`` after; the ingestor finishes or undoes pending DIDs when it restarts, so a crash
at any point leaves nothing half-registered. Searches see available, unexpired DIDs only.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ...errors import UsageError

SPEED_OF_LIGHT = 299_792_458.0
CATALOGUE_NAME = "catalogue.db"

#: the ObsCore columns stored (and returned by searches), in the order of the standard's table.
OBSCORE_COLUMNS = (
    "dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did", "target_name",
    "s_ra", "s_dec", "s_fov", "s_region", "s_resolution", "s_xel1", "s_xel2", "s_pixel_scale",
    "t_min", "t_max", "t_exptime", "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel",
    "em_ucd", "o_ucd", "pol_states", "pol_xel", "facility_name", "instrument_name",
    "access_url", "access_format", "access_estsize",
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS dids (
    namespace TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER,
    created REAL NOT NULL, lifetime INTEGER NOT NULL, expires REAL NOT NULL, dataset_name TEXT,
    meta TEXT NOT NULL, PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS replicas (
    namespace TEXT NOT NULL, name TEXT NOT NULL, rse TEXT NOT NULL, url TEXT NOT NULL,
    PRIMARY KEY (namespace, name, rse));
CREATE TABLE IF NOT EXISTS obscore (
    namespace TEXT NOT NULL, name TEXT NOT NULL, {", ".join(OBSCORE_COLUMNS)},
    PRIMARY KEY (namespace, name));
CREATE INDEX IF NOT EXISTS obscore_dec ON obscore (s_dec);
CREATE INDEX IF NOT EXISTS dids_expires ON dids (expires);
"""


@dataclass
class Did:
    """One registered DID with its replica URL."""

    namespace: str
    name: str
    state: str
    bytes: int | None
    created: float
    expires: float
    dataset_name: str | None
    url: str
    meta: dict[str, Any]

    @property
    def did(self) -> str:
        return f"{self.namespace}:{self.name}"


@dataclass
class Query:
    """Search constraints; ``None`` means unconstrained. Angles in degrees, times MJD, frequencies Hz."""

    ra: float | None = None
    dec: float | None = None
    radius: float | None = None
    dataproduct_type: str | None = None
    calib_level: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    freq_min: float | None = None
    freq_max: float | None = None
    namespace: str | None = None
    obs_id: str | None = None


class Catalogue:
    """Access to ``<lake>/catalogue.db``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Catalogue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registration ---------------------------------------------------------------------
    def state(self, namespace: str, name: str) -> str | None:
        """``pending``, ``available`` or None for an unknown DID."""
        row = self.db.execute("SELECT state FROM dids WHERE namespace=? AND name=?", (namespace, name)).fetchone()
        return row["state"] if row else None

    def register_pending(self, doc: dict[str, Any], url: str, nbytes: int, rse: str = "LOCAL",
                         now: float | None = None) -> None:
        """Insert the DID (state ``pending``), its replica and its ObsCore row in one transaction."""
        now = time.time() if now is None else now
        ns, name, meta = doc["namespace"], doc["name"], doc["meta"]
        with self._transaction():
            self.db.execute(
                "INSERT INTO dids (namespace, name, state, bytes, created, lifetime, expires, dataset_name, meta) "
                "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (ns, name, nbytes, now, int(doc["lifetime"]), now + int(doc["lifetime"]), doc.get("dataset_name"),
                 json.dumps(meta, sort_keys=True)))
            self.db.execute("INSERT INTO replicas (namespace, name, rse, url) VALUES (?, ?, ?, ?)", (ns, name, rse, url))
            self.db.execute(
                f"INSERT INTO obscore (namespace, name, {', '.join(OBSCORE_COLUMNS)}) "
                f"VALUES (?, ?, {', '.join('?' for _ in OBSCORE_COLUMNS)})",
                (ns, name, *[meta.get(c) for c in OBSCORE_COLUMNS]))

    def replica(self, namespace: str, name: str) -> str:
        """The replica URL of a DID ('' if none)."""
        row = self.db.execute("SELECT url FROM replicas WHERE namespace=? AND name=?", (namespace, name)).fetchone()
        return str(row["url"]) if row else ""

    def store(self, namespace: str, name: str, local: Path) -> None:
        """Nothing to do: local replicas are the ingestor's moves (and S3 uploads)."""

    def mark_available(self, namespace: str, name: str) -> None:
        self.db.execute("UPDATE dids SET state='available' WHERE namespace=? AND name=?", (namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        """Remove a DID and its rows (its files are the caller's business)."""
        with self._transaction():
            for table in ("dids", "replicas", "obscore"):
                self.db.execute(f"DELETE FROM {table} WHERE namespace=? AND name=?", (namespace, name))

    def pending(self) -> list[Did]:
        return list(self._dids("d.state = 'pending'", ()))

    def expired(self, now: float | None = None) -> list[Did]:
        return list(self._dids("d.expires <= ?", (time.time() if now is None else now,)))

    def get(self, did: str) -> Did:
        """The available DID ``namespace:name``; a clear error if unknown or expired."""
        ns, sep, name = did.partition(":")
        if not sep or not ns or not name:
            raise UsageError(f"'{did}' is not a DID: write NAMESPACE:NAME.")
        found = list(self._dids("d.namespace = ? AND d.name = ? AND d.state = 'available' AND d.expires > ?",
                                (ns, name, time.time())))
        if not found:
            raise UsageError(f"No DID {did} in the lake {self.path.parent} (unknown, expired or not yet ingested).")
        return found[0]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM dids WHERE state='available'").fetchone()[0])

    # -- search ---------------------------------------------------------------------------
    def search(self, q: Query, limit: int | None = None, now: float | None = None) -> list[dict[str, Any]]:
        """ObsCore rows (plus ``did`` and ``distance`` when a cone is given) matching ``q``, nearest first."""
        where = ["d.state = 'available'", "d.expires > ?"]
        args: list[Any] = [time.time() if now is None else now]
        for col, value in (("o.dataproduct_type", q.dataproduct_type), ("o.calib_level", q.calib_level),
                           ("o.namespace", q.namespace), ("o.obs_id", q.obs_id)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if q.t_start is not None:
            where.append("o.t_max >= ?")
            args.append(q.t_start)
        if q.t_end is not None:
            where.append("o.t_min <= ?")
            args.append(q.t_end)
        if q.freq_min is not None:      # the band [em_min, em_max] overlaps [c/f_max, c/f_min]
            where.append("o.em_min <= ?")
            args.append(SPEED_OF_LIGHT / q.freq_min)
        if q.freq_max is not None:
            where.append("o.em_max >= ?")
            args.append(SPEED_OF_LIGHT / q.freq_max)
        cone = q.ra is not None or q.dec is not None or q.radius is not None
        if cone:
            if q.ra is None or q.dec is None or q.radius is None or q.radius <= 0:
                raise UsageError("A cone search needs --ra, --dec and a positive --radius (degrees).")
            where.append("o.s_dec BETWEEN ? AND ?")
            args += [q.dec - q.radius, q.dec + q.radius]
        sql = (f"SELECT o.*, r.url FROM obscore o JOIN dids d USING (namespace, name) "
               f"LEFT JOIN replicas r USING (namespace, name) WHERE {' AND '.join(where)} "
               f"ORDER BY o.t_min, o.namespace, o.name")
        rows = [dict(r) for r in self.db.execute(sql, args)]
        for r in rows:
            r["did"] = f"{r['namespace']}:{r['name']}"
        if cone:
            assert q.ra is not None and q.dec is not None and q.radius is not None
            for r in rows:
                r["distance"] = angular_distance(q.ra, q.dec, r["s_ra"], r["s_dec"])
            rows = sorted((r for r in rows if r["distance"] <= q.radius), key=lambda r: r["distance"])
        return rows[:limit] if limit else rows

    # -- internals ------------------------------------------------------------------------
    def _dids(self, cond: str, args: Sequence[Any]) -> Iterator[Did]:
        sql = (f"SELECT d.*, r.url FROM dids d LEFT JOIN replicas r USING (namespace, name) WHERE {cond} "
               f"ORDER BY d.namespace, d.name")
        for r in self.db.execute(sql, tuple(args)):
            yield Did(namespace=r["namespace"], name=r["name"], state=r["state"], bytes=r["bytes"],
                      created=r["created"], expires=r["expires"], dataset_name=r["dataset_name"],
                      url=r["url"] or "", meta=json.loads(r["meta"]))

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *rest: object) -> None:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _transaction(self) -> "Catalogue._Tx":
        return Catalogue._Tx(self.db)


def angular_distance(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (deg) between two positions in degrees (haversine, stable at small angles)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))
