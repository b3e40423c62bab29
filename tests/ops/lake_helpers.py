"""Real FITS products with real .meta files for the datalake tests."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from radioflow.ops.lake.meta import ProductIdentity, write_meta
from radioflow.science.fits import write_fits_image


def make_product(directory: Path, name: str, *, ra: float, dec: float, mjd: float, freq: float = 1.3e9,
                 namespace: str = "testing", lifetime: int = 3600, npix: int = 32) -> Path:
    """A small FITS image at (ra, dec) deg observed for an hour from ``mjd``, and its .meta."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    image = np.random.default_rng(abs(hash(name)) % 2**32).normal(size=(npix, npix)).astype(np.float32)
    write_fits_image(path, image, ra=math.radians(ra), dec=math.radians(dec), cell_x=math.radians(1 / 3600),
                     cell_y=math.radians(1 / 3600), freq=freq, bandwidth=1e6, beam=(1e-5, 1e-5, 0.0),
                     extra={"MJD-BEG": mjd, "MJD-END": mjd + 1 / 24, "XPOSURE": 3600.0, "TELAPSE": 3600.0,
                            "TELESCOP": "SKA-Mid", "INSTRUME": "SKA-Mid"})
    write_meta(path, ProductIdentity(namespace=namespace, name=name, lifetime=lifetime,
                                     obs_collection="SKAO/SKAMID", obs_id=f"obs-{name}"), calib_level=3)
    return path
