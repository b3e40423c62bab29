"""radioflow against casacore and WSClean on the same radioflow-written Measurement Set."""
from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from radioflow.science import observation as O
from radioflow.science import skymodel as S
from radioflow.science import telescopes as T
from radioflow.science.fits import read_fits_image
from radioflow.science.image_dataset import dirty_and_psf
from radioflow.science.simulate import simulate
from radioflow.vis.ms import read_ms, write_ms

NPIX = 512
CELL = math.radians(40 / 3600)
RA0, DEC0 = math.radians(30.0), math.radians(-40.0)
needs_wsclean = pytest.mark.skipif(shutil.which("wsclean") is None, reason="wsclean not installed")
needs_taql = pytest.mark.skipif(shutil.which("taql") is None, reason="taql (casacore-tools) not installed")


@pytest.fixture(scope="module")
def sim_ms(tmp_path_factory):
    lay = T.load_layout("ska-low-model").select(rmax=900)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=4,
                             start="2025-03-01T12:00:00", duration=1800, integration=300)
    pix = np.array([[256, 256], [150, 300], [400, 120], [300, 420]])
    ra, dec = S.pixel_to_radec(pix[:, 0], pix[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, [2.0, 1.0, 0.5, 1.5], ref_freq=1.05e8, spectral_index=-0.7)
    ds = simulate(lay, obs, sky)
    # WEIGHT_SPECTRUM differing between XX and YY, and flags on one hand or the other: how the
    # hands make the Stokes I weight then matters (WSClean: 4·min(w_XX, w_YY), 0 if either is flagged).
    rng = np.random.default_rng(7)
    pols = [str(p) for p in ds["polarization"].values]
    xx, yy = pols.index("XX"), pols.index("YY")
    weight = ds["WEIGHT"].values.copy()
    weight[..., xx] = rng.uniform(0.2, 1.0, weight.shape[:-1])
    weight[..., yy] = rng.uniform(0.5, 3.0, weight.shape[:-1])
    flag = ds["FLAG"].values.copy()
    flag[..., xx] |= rng.random(flag.shape[:-1]) < 0.03
    flag[..., yy] |= rng.random(flag.shape[:-1]) < 0.03
    flag[2, ::5] = True
    ds["WEIGHT"] = (ds["WEIGHT"].dims, weight)
    ds["FLAG"] = (ds["FLAG"].dims, flag)
    path = tmp_path_factory.mktemp("ms") / "sim.ms"
    write_ms(ds, path)
    return path


def _ours(ms, nx: int, ny: int, weight: list[str], combination: str = "wsclean") -> np.ndarray:
    """The dirty image as ``radioflow image`` makes it from an MS: numpy row chunks, streamed."""
    from radioflow.science.streaming import GridSpec, stream_dirty_image
    from radioflow.vis.ms_hands import MSRowChunks

    spec = GridSpec(npix_x=nx, npix_y=ny, cell=CELL, combination=combination)  # type: ignore[arg-type]
    return stream_dirty_image(MSRowChunks.plan(str(ms)), spec, weighting=weight[0],  # type: ignore[arg-type]
                              robust=float(weight[1]) if len(weight) > 1 else 0.0, make_psf=False).dirty


@needs_taql
def test_uvw_agrees_with_casacore_mscal(sim_ms):
    out = subprocess.run(
        ["taql", "-nopr", "select gmax(sqrt(sumsqr(UVW - MSCAL.UVWJ2000()))/sqrt(sumsqr(UVW))) as r, "
         "gmin(sumsqr(UVW + MSCAL.UVWJ2000())/sumsqr(UVW)) as s from " + str(sim_ms)],
        capture_output=True, text=True, check=True)
    nums = [float(t) for t in out.stdout.replace("[", " ").replace("]", " ").split() if _isfloat(t)]
    rel, same_sign = nums[-2], nums[-1]
    assert rel < 2e-4
    assert same_sign > 3.0  # |UVW + UVWJ2000|² ≈ 4|UVW|² only if the signs agree


def _isfloat(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def _wsclean(ms, tmp_path, weight: list[str], nx: int = NPIX, ny: int = NPIX) -> np.ndarray:
    name = tmp_path / f"ws-{nx}x{ny}-{'-'.join(weight)}"
    subprocess.run(["wsclean", "-quiet", "-j", "2", "-use-wgridder", "-wgridder-accuracy", "1e-5",
                    "-no-small-inversion", "-size", str(nx), str(ny), "-scale", "40asec",
                    "-weight", *weight, "-niter", "0", "-name", str(name), str(ms)],
                   check=True, capture_output=True, cwd=tmp_path)
    return read_fits_image(f"{name}-dirty.fits")[0]


@needs_wsclean
@pytest.mark.wsclean
@pytest.mark.parametrize("weight", [["natural"], ["uniform"], ["briggs", "0"], ["briggs", "-1"]])
def test_dirty_image_matches_wsclean(sim_ms, tmp_path, weight):
    """In memory (xarray dataset) and as ``radioflow image`` reads an MS (numpy row chunks), with
    unequal XX/YY weights and flags: WSClean's image to 1e-4 of the peak; the statistically
    optimal Stokes I weight (``-weight-combination optimal``) differs from it by more."""
    ws = _wsclean(sim_ms, tmp_path, weight)
    robust = float(weight[1]) if len(weight) > 1 else 0.0
    ours = dirty_and_psf(read_ms(sim_ms), npix_x=NPIX, npix_y=NPIX, cell=CELL, weighting=weight[0],
                         robust=robust).dirty
    streamed = _ours(sim_ms, NPIX, NPIX, weight)
    optimal = _ours(sim_ms, NPIX, NPIX, weight, "optimal")
    peak = np.abs(ws).max()
    assert peak > 1.0
    assert np.abs(ours - ws).max() <= 1e-4 * peak
    assert np.abs(streamed - ws).max() <= 1e-4 * peak
    assert np.abs(optimal - ws).max() > 1e-4 * peak


@needs_wsclean
@pytest.mark.wsclean
def test_rank_filter_options_match_wsclean(sim_ms, tmp_path):
    """The filter matters (turning it off moves the image by > 1e-3 of the peak) and its options
    mean what WSClean's ``-weighting-rank-filter[-size]`` mean."""
    ds = read_ms(sim_ms)
    ws = _wsclean(sim_ms, tmp_path, ["uniform", "-weighting-rank-filter", "1.5", "-weighting-rank-filter-size", "8"])
    ours = dirty_and_psf(ds, npix_x=NPIX, npix_y=NPIX, cell=CELL, weighting="uniform",
                         rank_filter_level=1.5, rank_filter_size=8).dirty
    unfiltered = dirty_and_psf(ds, npix_x=NPIX, npix_y=NPIX, cell=CELL, weighting="uniform",
                               rank_filter_level=0).dirty
    peak = np.abs(ws).max()
    assert np.abs(ours - ws).max() <= 1e-3 * peak
    assert np.abs(unfiltered - ws).max() > 1e-3 * peak


SIZES = [(768, 768), (1000, 1000), (1024, 1024), (800, 500),
         pytest.param(2048, 2048, marks=pytest.mark.slow)]


@needs_wsclean
@pytest.mark.wsclean
@pytest.mark.parametrize("nx,ny", SIZES)
@pytest.mark.parametrize("weight", [["natural"], ["uniform"], ["briggs", "0"]])
def test_weights_match_wsclean_at_every_size(sim_ms, tmp_path, nx, ny, weight):
    """WSClean pads to ceil(1.2 N) rounded up to a multiple of 4; with an even rounding the
    density grid differs and uniform/Briggs images moved by up to 8e-3 of the peak at 768-2048.
    The MS has unequal XX/YY weights and flags, read as ``radioflow image`` reads it."""
    ws = _wsclean(sim_ms, tmp_path, weight, nx, ny)
    assert ws.shape == (ny, nx)
    ours = _ours(sim_ms, nx, ny, weight)
    peak = np.abs(ws).max()
    assert peak > 1.0
    assert np.abs(ours - ws).max() <= 1e-4 * peak
