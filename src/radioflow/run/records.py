"""Run records in SQLite (``<workdir>/.radioflow/runs.db``): one row per run and per step.

A step row holds the resolved parameters, a hash of (cab, parameters, input fingerprints; see
:mod:`.resume`) used by ``--resume``, the outputs, timings, status and the path of its log.
Rows are committed as soon as they change (WAL journal), so a run killed with SIGKILL keeps
the records of every step that finished.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any, Mapping

from ..processes import pid_alive
from ..secrets import redact_text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, recipe TEXT, files TEXT, argv TEXT, workdir TEXT, pid INTEGER,
    status TEXT, started REAL, finished REAL, error TEXT, prices TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, fqname TEXT, cab TEXT, status TEXT,
    params TEXT, params_hash TEXT, outputs TEXT, returncode INTEGER, error TEXT,
    started REAL, finished REAL, log_path TEXT, resumed_from TEXT, command TEXT, output TEXT,
    fingerprints TEXT, cpu_seconds REAL, peak_memory INTEGER, bytes_read INTEGER, bytes_written INTEGER,
    invocations INTEGER, gb_seconds REAL, cost REAL
);
CREATE INDEX IF NOT EXISTS steps_hash ON steps (params_hash, status);
CREATE INDEX IF NOT EXISTS steps_run ON steps (run_id);
"""

MAX_OUTPUT = 64 * 1024       # step output kept in the database (the log file has all of it)

#: Per-step accounting columns (see radioflow.invoke.usage and .costs), with their SQL types.
USAGE_COLUMNS = {"cpu_seconds": "REAL", "peak_memory": "INTEGER", "bytes_read": "INTEGER",
                 "bytes_written": "INTEGER", "invocations": "INTEGER", "gb_seconds": "REAL", "cost": "REAL"}
_ADDED_COLUMNS = {"command": "TEXT", "output": "TEXT", "fingerprints": "TEXT", **USAGE_COLUMNS}


def _json(value: Any) -> str:
    """JSON for a record column, with every secret value (and its encodings) masked."""
    return redact_text(json.dumps(value, sort_keys=True, default=str))


def _scrubbed(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


def _column(usage: Mapping[str, float | None] | None, column: str) -> float | int | None:
    value = (usage or {}).get(column)
    if value is None:
        return None
    return int(round(value)) if USAGE_COLUMNS[column] == "INTEGER" else float(value)


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus a random suffix."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    rec = dict(row)
    rec["outputs"] = json.loads(rec["outputs"] or "{}")
    rec["fingerprints"] = json.loads(rec.get("fingerprints") or "{}")
    return rec


class RunRecords:
    """Access to ``runs.db``; one connection per runner."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(steps)")}
        for column, kind in _ADDED_COLUMNS.items():          # databases written by older versions
            if column not in have:
                self._db.execute(f"ALTER TABLE steps ADD COLUMN {column} {kind}")
        if "prices" not in {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}:
            self._db.execute("ALTER TABLE runs ADD COLUMN prices TEXT")

    def close(self) -> None:
        self._db.close()

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, run_id: str, recipe: str, files: list[str], argv: list[str], workdir: str,
                  prices: Mapping[str, Any] | None = None) -> None:
        """Add a run's row; ``prices`` is the price model its step costs are computed with."""
        self._db.execute(
            "INSERT INTO runs (id, recipe, files, argv, workdir, pid, status, started, prices)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (run_id, recipe, _json(files), _json(argv), workdir, os.getpid(), "running", time.time(),
             None if prices is None else json.dumps(dict(prices), sort_keys=True)),
        )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self._db.execute("UPDATE runs SET status=?, finished=?, error=? WHERE id=?",
                         (status, time.time(), _scrubbed(error), run_id))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Most recent runs first; a 'running' run whose process is gone shows as 'interrupted'."""
        rows = self._db.execute(
            "SELECT r.*, (SELECT COUNT(*) FROM steps s WHERE s.run_id=r.id) AS nsteps,"
            " (SELECT COUNT(*) FROM steps s WHERE s.run_id=r.id AND s.status='ok') AS nok"
            " FROM runs r ORDER BY started DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for row in rows:
            rec = dict(row)
            if rec["status"] == "running" and not pid_alive(rec["pid"]):
                rec["status"] = "interrupted"
            out.append(rec)
        return out

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    # -- steps ------------------------------------------------------------------------------
    def start_step(self, run_id: str, fqname: str, cab: str, params: Mapping[str, Any], phash: str,
                   log_path: str | None) -> int:
        cur = self._db.execute(
            "INSERT INTO steps (run_id, fqname, cab, status, params, params_hash, started, log_path)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (run_id, fqname, cab, "running", _json(params), phash, time.time(), log_path),
        )
        row_id = cur.lastrowid
        assert row_id is not None   # set by every INSERT
        return row_id

    def finish_step(self, step_id: int, status: str, *, outputs: Mapping[str, Any] | None = None,
                    returncode: int | None = None, error: str | None = None,
                    resumed_from: str | None = None, started: float | None = None,
                    finished: float | None = None, command: str | None = None,
                    output: str | None = None, fingerprints: Mapping[str, Any] | None = None,
                    usage: Mapping[str, float | None] | None = None) -> None:
        """Close a step row; ``usage`` holds values for :data:`USAGE_COLUMNS` (missing: NULL)."""
        if output is not None and len(output) > MAX_OUTPUT:
            output = "...(truncated)\n" + output[-MAX_OUTPUT:]
        self._db.execute(
            "UPDATE steps SET status=?, outputs=?, returncode=?, error=?, resumed_from=?,"
            " started=COALESCE(?, started), finished=?, command=?, output=?, fingerprints=?, "
            + ", ".join(f"{c}=?" for c in USAGE_COLUMNS) + " WHERE id=?",
            (status, _json(outputs or {}), returncode, _scrubbed(error), resumed_from,
             started,
             finished if finished is not None else time.time(), _scrubbed(command), _scrubbed(output),
             None if fingerprints is None else _json(fingerprints),
             *(_column(usage, c) for c in USAGE_COLUMNS), step_id),
        )

    def record_step(self, run_id: str, fqname: str, cab: str, status: str, params: Mapping[str, Any],
                    phash: str = "", **kw: Any) -> int:
        """Insert a finished step row at once (skipped or resumed steps)."""
        step_id = self.start_step(run_id, fqname, cab, params, phash, kw.pop("log_path", None))
        self.finish_step(step_id, status, **kw)
        return step_id

    def completed(self, phash: str) -> dict[str, Any] | None:
        """The latest successful step with this hash (from any run), or None."""
        row = self._db.execute(
            "SELECT * FROM steps WHERE params_hash=? AND status='ok' ORDER BY finished DESC LIMIT 1",
            (phash,)).fetchone()
        if row is None:
            return None
        return _decoded(row)

    def last_ok(self, fqname: str) -> dict[str, Any] | None:
        """The latest successful run of step ``fqname`` (any parameters), or None."""
        row = self._db.execute(
            "SELECT * FROM steps WHERE fqname=? AND status='ok' ORDER BY finished DESC LIMIT 1",
            (fqname,)).fetchone()
        return None if row is None else _decoded(row)

    def usage_under(self, run_id: str, fqname: str) -> dict[str, float | None]:
        """Accounting of the cab steps below ``fqname`` in a run (loop iterations included): sums,
        and the largest peak memory."""
        prefix = fqname + "."
        sums = ", ".join(f"{'MAX' if c == 'peak_memory' else 'SUM'}({c})" for c in USAGE_COLUMNS)
        row = self._db.execute(f"SELECT {sums} FROM steps WHERE run_id=? AND substr(fqname, 1, ?)=?"
                               " AND cab NOT LIKE 'recipe:%'", (run_id, len(prefix), prefix)).fetchone()
        return dict(zip(USAGE_COLUMNS, row))

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM steps WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
        return [dict(r) for r in rows]


