"""Run reports (one self-contained HTML file per run) and the read-only web console over runs.

``write_report(workdir, run_id)`` gathers a run from its records (read-only), draws its timeline
and products with matplotlib and writes ``<workdir>/.radioflow/reports/<run>.html`` atomically.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .gather import RunData, gather
from .store import RunStore


def build_report(workdir: str | os.PathLike[str], run_id: str | None = None) -> tuple[RunData, str]:
    """The run (``None``: the latest) of ``workdir`` and its report as HTML text."""
    from .render import render

    with RunStore(workdir) as store:
        data = gather(store, run_id)
    return data, render(data)


def default_report_path(workdir: str | os.PathLike[str], run_id: str) -> Path:
    """Where a run's report goes unless told otherwise."""
    return Path(workdir, ".radioflow", "reports", f"{run_id}.html")


def write_report(workdir: str | os.PathLike[str], run_id: str | None = None,
                 output: str | os.PathLike[str] | None = None) -> Path:
    """Write the report of a run to ``output`` (default ``.radioflow/reports/<run>.html``), atomically."""
    data, html = build_report(workdir, run_id)
    path = Path(output) if output is not None else default_report_path(workdir, data.run["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["RunData", "RunStore", "build_report", "default_report_path", "gather", "write_report"]
