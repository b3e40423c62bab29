"""Sweeping the temporaries that killed writers left beside their targets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from radioflow.processes import pid_alive, remove_stale_siblings


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_dead_writers_file_and_directory_temporaries_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "band-restored.png"
    dead = _dead_pid()
    stale_file = tmp_path / f".band-restored.png.tmp-{dead}"
    stale_file.write_bytes(b"half a png")
    stale_dir = tmp_path / f".band-restored.png.tmp-{dead}-abcd1234"
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "chunk").write_bytes(b"x")
    live = tmp_path / f".band-restored.png.tmp-{os.getpid()}"
    live.write_bytes(b"being written")
    other = tmp_path / f".band-residual.png.tmp-{dead}"
    other.write_bytes(b"another target's")

    removed = remove_stale_siblings(target)

    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.read_bytes() == b"being written"          # its writer is running: left alone
    assert other.exists()                                 # not a sibling of this target


def test_png_preview_sweeps_a_killed_writers_temporary(tmp_path: Path) -> None:
    import numpy as np

    from radioflow.science.fits import write_fits_image, write_png_preview

    fits = tmp_path / "img.fits"
    write_fits_image(fits, np.zeros((8, 8), np.float32), ra=0.0, dec=-0.5, cell_x=1e-4, cell_y=1e-4,
                     freq=1e8, bandwidth=1e6)
    stale = tmp_path / f".img.png.tmp-{_dead_pid()}"
    stale.write_bytes(b"half a png")
    png = write_png_preview(fits)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.fits", "img.png"]
