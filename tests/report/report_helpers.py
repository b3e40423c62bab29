"""Helpers of the report tests: the CLI of this tree, and reading screenshots."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

RECIPE = Path(__file__).resolve().parent / "recipes" / "small.yml"
SECRET = "tok-9f8e7d6c5b4a3921"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def radioflow(*args: str, cwd: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run the radioflow CLI of this tree in ``cwd``."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "radioflow", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def pixels(png: bytes) -> np.ndarray:
    """RGB pixels (uint8, rows × columns × 3) of a PNG screenshot."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def colour_rows(rgb: np.ndarray, colours: list[str], tol: int = 40) -> np.ndarray:
    """Per pixel row: whether it holds at least 3 pixels close to one of ``colours`` (#rrggbb)."""
    targets = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.int32)
    dist = np.abs(rgb[:, :, None, :].astype(np.int32) - targets[None, None]).max(axis=-1)
    return ((dist <= tol).any(axis=-1)).sum(axis=1) >= 3


def bands(mask: np.ndarray) -> int:
    """Number of runs of consecutive True values."""
    m = mask.astype(np.int8)
    return int(np.count_nonzero(np.diff(np.concatenate([[0], m])) == 1))


class Console:
    """``radioflow serve`` of this tree in a subprocess on a free loopback port (stopped by ``close``)."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        import re
        import time

        src = str(Path(__file__).resolve().parents[2] / "src")
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "radioflow", "serve", "-C", str(workdir), "--port", "0",
                                      *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if line or self.proc.poll() is not None:
                break
        match = re.search(r"(http://\S+/)", line)
        if match is None:
            self.close()
            raise AssertionError(f"console did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.url = match.group(1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
