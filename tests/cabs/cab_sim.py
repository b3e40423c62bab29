"""Helpers of the cab tests: sky catalogues, MS copies and injected RFI."""
from __future__ import annotations

import shutil

import numpy as np

NOISE = 0.5
FIELD = "name,ra_deg,dec_deg,flux_jy\nfield,0.0,-30.0,2.5\n"
ATEAM = "name,ra_deg,dec_deg,flux_jy\nateam,3.0,-28.0,40.0\n"


def copy_ms(sim, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(sim / name, dst)
    return str(dst)


def inject_rfi(vis: np.ndarray, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``vis`` with broadband bursts, a narrow-band line and spikes of 5–60 noise sigmas; and where."""
    rng = np.random.default_rng(seed)
    rfi = np.zeros(vis.shape[:3], bool)
    nt, nbl, nf = rfi.shape
    rfi[rng.integers(nt, size=20), rng.choice(nbl, 20, replace=False), :] = True    # broadband bursts
    rfi[:, rng.choice(nbl, 10, replace=False), 7] = True                            # a narrow-band line
    rfi[rng.integers(nt, size=200), rng.integers(nbl, size=200), rng.integers(nf, size=200)] = True  # spikes
    amp = rng.uniform(5, 60, rfi.shape) * NOISE
    phase = np.exp(2j * np.pi * rng.uniform(size=vis.shape))
    return vis + (np.where(rfi, amp, 0)[..., None] * phase).astype(vis.dtype), rfi
