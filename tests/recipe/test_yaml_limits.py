"""YAML bombs: alias expansion and nesting depth are bounded before any work is done."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from radioflow.errors import UsageError
from radioflow.recipe.load import load_documents


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append("cabs:\n  c:\n    command: echo\n    inputs:\n      x:\n        dtype: str\n        default: 1")
    lines.append(f"recipe:\n  steps:\n    s1:\n      cab: c\n      params:\n        x: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(tmp_path):
    text = _bomb()
    assert len(text) < 800
    path = tmp_path / "bomb.yml"
    path.write_text(text)
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"bomb\.yml.*aliases expand to more than"):
        load_documents([path])
    assert time.monotonic() - start < 2


def test_alias_bomb_on_the_command_line_is_one_paragraph(tmp_path):
    path = tmp_path / "bomb.yml"
    path.write_text(_bomb())
    src = str(Path(__file__).resolve().parents[2] / "src")
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "radioflow", "run", "--dry-run", "-C", str(tmp_path), str(path)], capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert time.monotonic() - start < 20
    assert out.returncode == 2 and "Traceback" not in out.stderr and "bomb.yml" in out.stderr


def test_deep_nesting_is_refused_with_the_file(tmp_path):
    path = tmp_path / "deep.yml"
    path.write_text("x: " + "[" * 300 + "]" * 300 + "\n")
    with pytest.raises(UsageError, match=r"deep\.yml.*nested more than"):
        load_documents([path])


def test_ordinary_aliases_still_work(tmp_path):
    path = tmp_path / "ok.yml"
    path.write_text("base: &b {dtype: str, default: v}\nother: *b\nmore: {<<: *b, default: w}\n")
    doc = load_documents([path])
    assert doc.tree["other"]["default"] == "v" and doc.tree["more"]["default"] == "w"
