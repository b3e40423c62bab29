"""Pictures of a run's products: images with colour bar and WCS axes, uv coverage of visibility
datasets, and gain solutions (phase and amplitude against time per antenna, against truth)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .figures import new_figure, png_bytes

MAX_IMAGE_PIXELS = 1024        # larger images are shown strided to about this many pixels a side
MAX_UV_POINTS = 60_000         # uv points plotted per dataset (rows are strided beyond that)


def image_png(path: Path, title: str) -> tuple[bytes, dict[str, Any]]:
    """A FITS image as a picture with RA/Dec axes and a colour bar; also its basic statistics."""
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(path, memmap=False) as hdul:
        hdu = next((h for h in hdul if getattr(h, "data", None) is not None and h.data.ndim >= 2), None)
        if hdu is None:
            raise ValueError(f"{path} holds no image")
        header = hdu.header
        data = np.asarray(hdu.data, dtype=np.float32)
    plane = data.reshape(-1, *data.shape[-2:])[0]
    wcs = WCS(header).celestial
    step = max(1, int(np.ceil(max(plane.shape) / MAX_IMAGE_PIXELS)))
    if step > 1:
        plane = plane[::step, ::step]
        wcs = wcs.slice((slice(None, None, step), slice(None, None, step)))
    finite = plane[np.isfinite(plane)]
    lo, hi = (np.percentile(finite, [0.5, 99.8]) if finite.size else (0.0, 1.0))
    if hi <= lo:
        lo, hi = float(finite.min()) if finite.size else 0.0, (float(finite.max()) if finite.size else 1.0) + 1e-12
    fig = new_figure(4.6, 4.0, layout=None)
    celestial = wcs.has_celestial and wcs.naxis == 2
    rect = (0.2, 0.12, 0.62, 0.78)
    ax = fig.add_axes(rect, projection=wcs) if celestial else fig.add_axes(rect)
    im = ax.imshow(plane, origin="lower", cmap="inferno", vmin=lo, vmax=hi, interpolation="nearest")
    if celestial:
        ax.coords[0].set_axislabel("RA")
        ax.coords[1].set_axislabel("Dec")
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, cax=fig.add_axes((0.84, 0.12, 0.03, 0.78))).set_label(str(header.get("BUNIT", "")), fontsize=8)
    stats = {"peak": float(finite.max()) if finite.size else float("nan"),
             "rms": float(np.sqrt(np.mean(finite.astype(np.float64) ** 2))) if finite.size else float("nan"),
             "shape": "×".join(str(n) for n in data.shape[-2:][::-1])}
    return png_bytes(fig), stats


def _read_uvw(path: Path) -> tuple[np.ndarray, float]:
    """UVW (metres, strided to at most MAX_UV_POINTS rows) and the mean frequency (Hz) of a dataset."""
    if path.name.lower().endswith(".ms"):
        from casacore.tables import table

        with table(str(path), ack=False, readonly=True) as t:
            step = max(1, int(np.ceil(t.nrows() / MAX_UV_POINTS)))
            uvw = t.getcol("UVW", rowincr=step)
        with table(str(path / "SPECTRAL_WINDOW"), ack=False, readonly=True) as spw:
            freq = float(np.mean(spw.getcol("CHAN_FREQ")))
        return uvw, freq
    import xarray as xr

    with xr.open_zarr(path, consolidated=False) as ds:
        uvw = ds["UVW"].values.reshape(-1, 3)
        freq = float(ds["frequency"].values.mean()) if "frequency" in ds.coords else 1.0
    step = max(1, int(np.ceil(len(uvw) / MAX_UV_POINTS)))
    return uvw[::step], freq


def uv_png(path: Path, title: str) -> bytes:
    """uv coverage (both Hermitian halves) in kilo-wavelengths at the dataset's mean frequency."""
    uvw, freq = _read_uvw(path)
    scale = freq / 299_792_458.0 / 1e3
    u, v = uvw[:, 0] * scale, uvw[:, 1] * scale
    fig = new_figure(4.0, 4.0)
    ax = fig.add_subplot()
    ax.scatter(np.concatenate([u, -u]), np.concatenate([v, -v]), s=0.3, c="#1f4e9c", lw=0, rasterized=True)
    ax.set_aspect("equal")
    ax.set_xlabel("u (kλ)")
    ax.set_ylabel("v (kλ)")
    ax.set_title(f"{title}\n{len(u)} rows shown, {freq / 1e6:.3f} MHz", fontsize=8)
    return png_bytes(fig)


def _referenced(gain: np.ndarray, refant: int) -> np.ndarray:
    return gain * np.exp(-1j * np.angle(gain[:, refant:refant + 1]))


def gains_png(path: Path, title: str, truth: Path | None = None) -> tuple[bytes, dict[str, Any]]:
    """Phase and amplitude vs time per antenna (first receptor, middle channel); with truth, a
    panel of solved against true phase (both referenced to the reference antenna)."""
    import xarray as xr

    with xr.open_zarr(path, consolidated=False) as ds:
        gain = ds["GAIN"].transpose("time", "antenna", "frequency", "polarization").values
        flags = ds["FLAG"].transpose(*ds["GAIN"].dims).values if "FLAG" in ds else None
        times = ds["time"].values.astype(np.float64)
        refant = int(ds.attrs.get("refant", 0))
        mode = str(ds.attrs.get("mode", ""))
    mid = gain.shape[2] // 2
    g = gain[:, :, mid, 0].astype(np.complex128)
    if flags is not None:
        g = np.where(flags[:, :, mid, 0], np.nan, g)
    t = (times - times[0]) / 60.0 if times.size else times
    stats: dict[str, Any] = {"antennas": g.shape[1], "intervals": g.shape[0], "mode": mode}
    true_g = None
    if truth is not None:
        with xr.open_zarr(truth, consolidated=False) as tds:
            tg = tds["GAIN"].transpose("time", "antenna", "frequency", "polarization").values
        ti = max(1, int(np.ceil(tg.shape[0] / g.shape[0])))
        tg = tg[::ti, :, min(mid, tg.shape[2] - 1), 0][: g.shape[0]]
        if tg.shape == g.shape:
            true_g = tg.astype(np.complex128)
    rows = 3 if true_g is not None else 2
    fig = new_figure(6.5, 2.2 * rows + 0.4)
    axes = fig.subplots(rows, 1)
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    colours = colormaps["viridis"](np.linspace(0, 1, max(g.shape[1], 1)))
    for ax, values, label in ((axes[0], np.degrees(np.angle(g)), "phase (deg)"), (axes[1], np.abs(g), "amplitude")):
        # one line per antenna: (antenna, time, xy) segments drawn as one collection
        segments = np.stack([np.broadcast_to(t[:, None], values.shape), values], axis=-1).transpose(1, 0, 2)
        ax.add_collection(LineCollection(list(segments), colors=colours, linewidths=0.6))
        ax.scatter(np.repeat(t, values.shape[1]), values.ravel(), s=2, c=np.tile(colours, (len(t), 1)), lw=0)
        ax.set_ylabel(label)
        ax.set_xlabel("time (min)")
        ax.autoscale_view()
    axes[0].set_ylim(-185, 185)
    if true_g is not None:
        solved = np.degrees(np.angle(_referenced(g, refant)))
        true_ph = np.degrees(np.angle(_referenced(true_g, refant)))
        err = np.angle(np.exp(1j * np.radians(solved - true_ph)))
        stats["phase_error_rad"] = float(np.sqrt(np.nanmean(err ** 2)))
        axes[2].scatter(true_ph.ravel(), solved.ravel(), s=3, c="#1f4e9c", lw=0)
        axes[2].plot([-180, 180], [-180, 180], color="#888888", lw=0.8)
        axes[2].set_xlabel("true phase (deg, referenced)")
        axes[2].set_ylabel("solved phase (deg)")
        axes[2].set_title(f"against truth: {stats['phase_error_rad']:.4f} rad rms", fontsize=8)
    fig.suptitle(f"{title}: {mode} gains, {g.shape[1]} antennas, {g.shape[0]} intervals", fontsize=9)
    return png_bytes(fig), stats
