"""Read-only access to run records (``<workdir>/.radioflow/runs.db``) for reports and the console.

The database is opened with SQLite's ``mode=ro`` URI, so neither the report nor the console
can change a record. A ``running`` run whose process is gone is shown as ``interrupted``, as
``radioflow runs`` does.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..processes import pid_alive

#: Optional per-step resource columns shown when a runner records them.
RESOURCE_COLUMNS = ("cpu_seconds", "peak_memory", "bytes_read", "bytes_written", "invocations", "cost")


def db_path(workdir: str | os.PathLike[str]) -> Path:
    """Where a workdir keeps its run records."""
    return Path(workdir, ".radioflow", "runs.db")


class RunStore:
    """Read-only view of one workdir's run records."""

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir).resolve()
        self.path = db_path(self.workdir)
        if not self.path.is_file():
            raise UsageError(f"No runs recorded in {self.workdir} (no .radioflow/runs.db); "
                             "run a recipe there first or pass -C WORKDIR.")
        self._db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self.step_columns = {row[1] for row in self._db.execute("PRAGMA table_info(steps)")}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    @staticmethod
    def _live_status(rec: dict[str, Any]) -> dict[str, Any]:
        if rec.get("status") == "running" and not pid_alive(rec.get("pid")):
            rec["status"] = "interrupted"
        return rec

    def runs(self, limit: int = 100, offset: int = 0, status: str | None = None) -> list[dict[str, Any]]:
        """Most recent runs first, with step counts (total, ok, failed) from one grouped query."""
        where, args = ("WHERE r.status = ?", [status]) if status else ("", [])
        rows = self._db.execute(
            "SELECT r.id, r.recipe, r.status, r.started, r.finished, r.error, r.pid,"
            " COALESCE(c.n, 0) AS nsteps, COALESCE(c.nok, 0) AS nok, COALESCE(c.nfail, 0) AS nfailed"
            " FROM runs r LEFT JOIN (SELECT run_id, COUNT(*) AS n, SUM(status='ok') AS nok,"
            " SUM(status='failed') AS nfail FROM steps GROUP BY run_id) c ON c.run_id = r.id"
            f" {where} ORDER BY r.started DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return [self._live_status(dict(r)) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def resolve(self, run_id: str | None) -> dict[str, Any]:
        """The run with this id (or unique id prefix); the latest run when ``run_id`` is None."""
        if run_id is None:
            row = self._db.execute("SELECT * FROM runs ORDER BY started DESC LIMIT 1").fetchone()
            if row is None:
                raise UsageError(f"No runs recorded in {self.path}.")
            return self._live_status(dict(row))
        rows = self._db.execute("SELECT * FROM runs WHERE id = ? OR id LIKE ? ORDER BY started DESC LIMIT 2",
                                (run_id, run_id.replace("%", "").replace("_", "\\_") + "%")).fetchall()
        exact = [r for r in rows if r["id"] == run_id]
        if exact:
            return self._live_status(dict(exact[0]))
        if not rows:
            raise UsageError(f"No run '{run_id}' in {self.path} (see `radioflow runs -C {self.workdir}`).")
        if len(rows) > 1:
            raise UsageError(f"Run id prefix '{run_id}' matches several runs in {self.path}; give more of the id.")
        return self._live_status(dict(rows[0]))

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        """Step rows of a run in the order they started, JSON columns decoded."""
        rows = self._db.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        out = []
        for row in rows:
            rec = dict(row)
            for key in ("params", "outputs"):
                try:
                    rec[key] = json.loads(rec.get(key) or "{}")
                except ValueError:
                    rec[key] = {}
            out.append(rec)
        return out
