"""Helpers for the recipe-runner tests: paths of the test recipes and an in-process CLI call."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from radioflow.cli import main

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
if str(RECIPES) not in sys.path:   # rf_funcs (the python cabs) for recipes written into tmp dirs
    sys.path.append(str(RECIPES))


def recipe(name: str) -> str:
    """Absolute path of a test recipe file under tests/recipes/."""
    return str(RECIPES / name)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``radioflow ARGS`` in this process; (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def step_rows(workdir: Path) -> list[dict]:
    """All step records of all runs, oldest first."""
    db = sqlite3.connect(workdir / ".radioflow" / "runs.db")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM steps ORDER BY id")]
    db.close()
    return rows


def run_rows(workdir: Path) -> list[dict]:
    db = sqlite3.connect(workdir / ".radioflow" / "runs.db")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY started")]
    db.close()
    return rows
