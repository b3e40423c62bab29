"""Cabs: dirty imaging and CLEAN of a Measurement Set, combination of window images."""
from __future__ import annotations

from typing import Literal, cast

import numpy as np

from ..science.deconvolve import write_clean_images
from ..science.fits import read_fits_image, write_fits_image, write_png_preview
from ..science.image_dataset import clean_auto_masked
from ..science.imaging import Weighting, imaging_weights, stokes_i, uvw_rows
from ..science.quality import mad_sigma
from ._util import ARCSEC, cab_files, gridding_threads, load_dataset, say


def clean_ms(ms: str, prefix: str, npix: int = 256, cell: float = 60.0, column: str = "DATA",
             weighting: str = "natural", robust: float = 0.0, algorithm: str = "multiscale",
             scales: list[float] | None = None, niter: int = 2000, gain: float = 0.1, mgain: float = 0.8,
             threshold: float = 0.0, auto_threshold: float = 3.0, auto_mask: float = 0.0, nmajor: int = 10, label: str = "",
             png: bool = True, nthreads: int = 1, epsilon: float = 1e-4) -> dict:
    """CLEAN a column of ``ms`` (cell in arcsec); writes ``<prefix>-model/-residual/-restored/-psf.fits``
    (and PNG previews of the restored and residual images) beside ``prefix``, local or on S3.
    ``auto_mask`` > 0 is WSClean's ``-auto-mask`` (CLEAN to that many sigmas, then inside that mask)."""
    ds = load_dataset(ms, columns=[column])
    vis, wgt, flag = stokes_i(ds, column)
    uvw = uvw_rows(ds)
    freq = ds["frequency"].values
    cell_rad = cell * ARCSEC
    # weighting and algorithm are checked against the cab's choices before the step runs
    w = imaging_weights(uvw, freq, wgt, flag, npix, npix, cell_rad, cell_rad, cast(Weighting, weighting), robust)
    result = clean_auto_masked(uvw, freq, vis, w, npix, npix, cell_rad, cell_rad, auto_mask,
                               algorithm=cast(Literal["hogbom", "multiscale"], algorithm), scales=scales,
                               niter=niter, gain=gain, mgain=mgain, threshold=threshold,
                               auto_threshold=auto_threshold, nmajor=nmajor, nthreads=gridding_threads(nthreads),
                               epsilon=epsilon)
    width = ds["CHANNEL_WIDTH"].values
    ra, dec = ds.attrs["phase_center"]
    with cab_files() as files:
        local = write_clean_images(result, files.output(prefix), ra=ra, dec=dec, cell_x=cell_rad,
                                   cell_y=cell_rad, freq=float(freq.mean()), bandwidth=float(width.sum()),
                                   history=[f"radioflow clean {ms} column={column} {algorithm} niter={niter}"])
        if png:
            for kind in ("restored", "residual"):
                write_png_preview(local[kind])
    paths = {kind: files.url_of(path) for kind, path in local.items()}
    rms = mad_sigma(result.residual)
    peak = float(np.max(result.restored))
    say(f"ICAL {label}: residual RMS {rms:.4g} Jy/beam, restored peak {peak:.4g} Jy/beam, "
        f"{result.niter} components in {result.nmajor} major cycles ({result.stop_reason})")
    return {"model": paths["model"], "residual": paths["residual"], "restored": paths["restored"],
            "psf": paths["psf"], "residual_rms": float(rms), "peak": peak, "components": int(result.niter)}


def combine_images(images: list[str], output: str, png: bool = True) -> dict:
    """Mean of per-window images (same grid) as a band image; frequency and bandwidth span the inputs."""
    if not images:
        raise ValueError("no images to combine")
    stack, headers = [], []
    with cab_files() as files:
        for path in images:
            data, header = read_fits_image(files.input(path))
            stack.append(data)
            headers.append(header)
    shapes = {a.shape for a in stack}
    if len(shapes) != 1:
        raise ValueError(f"images have different shapes {shapes}")
    mean = np.mean(stack, axis=0)
    h0 = headers[0]
    freqs = np.array([h["CRVAL3"] for h in headers])
    widths = np.array([h["CDELT3"] for h in headers])
    lo, hi = float(np.min(freqs - widths / 2)), float(np.max(freqs + widths / 2))
    beam = None
    if "BMAJ" in h0:
        beam = tuple(np.radians([np.mean([h["BMAJ"] for h in headers]), np.mean([h["BMIN"] for h in headers]),
                                 h0["BPA"]]))
    with cab_files() as files:
        local = write_fits_image(files.output(output), mean, ra=np.radians(h0["CRVAL1"]),
                                 dec=np.radians(h0["CRVAL2"]), cell_x=np.radians(-h0["CDELT1"]),
                                 cell_y=np.radians(h0["CDELT2"]), freq=0.5 * (lo + hi), bandwidth=hi - lo,
                                 bunit=h0.get("BUNIT", "JY/BEAM"), beam=beam,
                                 history=[f"mean of {len(images)} window images"])
        if png:
            write_png_preview(local)
    out = files.url_of(local)
    say(f"Combined band image of {len(images)} windows -> {out}: peak {mean.max():.4g}")
    return {"image": out, "peak": float(mean.max())}
