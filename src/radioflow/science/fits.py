"""FITS images with a full celestial + frequency + Stokes WCS, and PNG previews.

Axis order and reference pixel follow WSClean: NAXIS1 = RA (CDELT1 < 0), NAXIS2 = Dec,
NAXIS3 = FREQ, NAXIS4 = STOKES; SIN projection; CRPIX = N/2 + 1 on the phase centre.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import UsageError


def _atomic_target(path: Path) -> Path:
    """Where to write ``path`` aside (renamed into place when complete); temporaries of earlier
    writers of ``path`` that were killed (a SIGKILLed step, then --resume) are removed first."""
    from ..processes import remove_stale_siblings

    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fits_value(value: object) -> str:
    """A FITS fixed-format value field: strings quoted from column 11, others right-aligned to 30."""
    if isinstance(value, str):
        text = "'" + value.replace("'", "''").ljust(8) + "'"
        return text.ljust(20)
    if isinstance(value, (bool, np.bool_)):
        return ("T" if value else "F").rjust(20)
    if isinstance(value, (int, np.integer)):
        return str(int(value)).rjust(20)
    number = float(value)  # type: ignore[arg-type]
    for digits in range(17, 5, -1):
        text = f"{number:.{digits}G}"
        if len(text) <= 20:
            break
    if "." not in text and "E" not in text and "N" not in text:
        text += ".0"
    return text.rjust(20)


def fits_header(cards: list[tuple[str, object]], history: Iterable[str] = ()) -> bytes:
    """A FITS header block: ``KEYWORD = value`` cards, HISTORY lines (wrapped at 72), END, padded to 2880."""
    lines = [f"{key:<8}= {_fits_value(value)}"[:80].ljust(80) for key, value in cards]
    for text in history:
        text = str(text).encode("ascii", "replace").decode()
        lines += [f"HISTORY {text[i:i + 72]}".ljust(80) for i in range(0, max(len(text), 1), 72)]
    lines.append("END".ljust(80))
    raw = "".join(lines).encode("ascii")
    return raw + b" " * (-len(raw) % 2880)


def write_fits_image(
    path: str | os.PathLike,
    image_yx: np.ndarray,
    *,
    ra: float,
    dec: float,
    cell_x: float,
    cell_y: float,
    freq: float,
    bandwidth: float,
    bunit: str = "JY/BEAM",
    beam: tuple[float, float, float] | None = None,
    history: Iterable[str] = (),
    extra: dict[str, object] | None = None,
) -> Path:
    """Write ``image_yx`` (radians for ra/dec/cells and beam axes) as a 4-axis FITS image, atomically.

    Written directly (no astropy: importing astropy.io.fits costs ~0.2 s of a small job's start).
    """
    path = Path(path)
    ny, nx = image_yx.shape
    cards: list[tuple[str, object]] = [("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 4), ("NAXIS1", nx),
                                       ("NAXIS2", ny), ("NAXIS3", 1), ("NAXIS4", 1), ("EXTEND", True),
                                       ("BUNIT", bunit), ("BTYPE", "Intensity")]
    for i, (ctype, crpix, crval, cdelt, cunit) in enumerate(
        [
            ("RA---SIN", nx // 2 + 1, math.degrees(ra) % 360.0, -math.degrees(cell_x), "deg"),
            ("DEC--SIN", ny // 2 + 1, math.degrees(dec), math.degrees(cell_y), "deg"),
            ("FREQ", 1, float(freq), float(bandwidth), "Hz"),
            ("STOKES", 1, 1.0, 1.0, ""),
        ],
        start=1,
    ):
        cards += [(f"CTYPE{i}", ctype), (f"CRPIX{i}", float(crpix)), (f"CRVAL{i}", crval), (f"CDELT{i}", cdelt)]
        if cunit:
            cards.append((f"CUNIT{i}", cunit))
    cards += [("RADESYS", "FK5"), ("EQUINOX", 2000.0), ("SPECSYS", "TOPOCENT")]
    if beam is not None:
        cards += [("BMAJ", math.degrees(beam[0])), ("BMIN", math.degrees(beam[1])), ("BPA", math.degrees(beam[2]))]
    cards.append(("ORIGIN", "radioflow"))
    cards += [(str(key).upper(), value) for key, value in (extra or {}).items()]
    data = np.ascontiguousarray(image_yx, dtype=">f4").tobytes()
    tmp = _atomic_target(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(fits_header(cards, history))
            fh.write(data)
            fh.write(b"\0" * (-len(data) % 2880))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"Cannot write FITS image {path}: {exc.strerror or exc}.") from None
    return path


def read_fits_image(path: str | os.PathLike) -> tuple[np.ndarray, Any]:
    """Read a FITS image: ``(image [y, x], header)`` with degenerate axes dropped."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            data = np.asarray(hdul[0].data, dtype=np.float64)
            header = hdul[0].header.copy()
    except (OSError, FileNotFoundError) as exc:
        raise UsageError(f"Cannot read FITS image {path}: {exc}.") from None
    while data.ndim > 2:
        data = data[0]
    return data, header


def write_png_preview(fits_path: str | os.PathLike, png_path: str | os.PathLike | None = None,
                      *, title: str | None = None) -> Path:
    """A PNG of a FITS image with RA/Dec axes and a colour bar (for people, not for science)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.wcs import WCS

    fits_path = Path(fits_path)
    png = Path(png_path) if png_path else fits_path.with_suffix(".png")
    image, header = read_fits_image(fits_path)
    wcs = WCS(header).celestial
    finite = image[np.isfinite(image)]
    lo, hi = (np.percentile(finite, [0.5, 99.9]) if finite.size else (0.0, 1.0))
    fig = plt.figure(figsize=(7, 6), dpi=110)
    ax = fig.add_subplot(111, projection=wcs)
    im = ax.imshow(image, origin="lower", cmap="inferno", vmin=lo, vmax=max(hi, lo + 1e-12))
    ax.set_xlabel("Right ascension (J2000)")
    ax.set_ylabel("Declination (J2000)")
    ax.coords.grid(color="white", alpha=0.2, linestyle=":")
    fig.colorbar(im, ax=ax, label=header.get("BUNIT", ""))
    ax.set_title(title or fits_path.name)
    tmp = _atomic_target(png)
    try:
        fig.savefig(tmp, format="png", bbox_inches="tight")
        os.replace(tmp, png)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return png
