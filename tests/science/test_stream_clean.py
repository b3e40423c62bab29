"""Streamed CLEAN (major cycles chunk by chunk) equals the in-memory CLEAN; memory stays bounded."""
from __future__ import annotations

import math
import os
import tracemalloc

import numpy as np
import pytest

from radioflow.errors import UsageError
from radioflow.science import observation as O
from radioflow.science import skymodel as S
from radioflow.science import telescopes as T
from radioflow.science.image_dataset import clean_dataset
from radioflow.science.simulate import simulate
from radioflow.science.stream_clean import channel_groups, stream_clean
from radioflow.science.streaming import GridSpec
from radioflow.vis.chunks import TimeChunks
from radioflow.vis.io import open_dataset, write_dataset
from radioflow.vis.ms import read_ms, write_ms

NPIX = 128
CELL = math.radians(180 / 3600)
RA0, DEC0 = math.radians(30.0), math.radians(-40.0)
PIX = np.array([[64, 64], [40, 75], [100, 30], [75, 105]])
FLUX = np.array([2.0, 1.0, 0.5, 1.5])
SPEC = GridSpec(npix_x=NPIX, npix_y=NPIX, cell=CELL)
OPTIONS = dict(niter=2000, mgain=0.8, gain=0.1, auto_threshold=3.0, nmajor=10, beam_fit="wsclean")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A noisy 12-time-step, 6-channel MS (one source with a steep spectrum), some flags."""
    lay = T.load_layout("ska-low-model").select(rmax=500)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.3e8, nchan=6,
                             start="2025-03-01T12:00:00", duration=3600, integration=300)
    ra, dec = S.pixel_to_radec(PIX[:, 0], PIX[:, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    sky = S.SkyModel.from_components(ra, dec, FLUX, ref_freq=1.15e8, spectral_index=[-0.7, 0.0, 0.0, 2.0])
    ds = simulate(lay, obs, sky, noise_sigma=0.3, seed=5)
    flag = ds["FLAG"].values.copy()
    flag[3, ::7] = True
    ds["FLAG"] = (ds["FLAG"].dims, flag)
    tmp = tmp_path_factory.mktemp("sclean")
    return str(write_ms(ds, tmp / "sim.ms")), tmp


def _streamed(url: str, steps: int = 4, **kw):
    """CLEAN streamed over chunks of ``steps`` time steps (of the 12)."""
    lazy = TimeChunks.plan(url).lazy()
    per_step = lazy["VISIBILITY"][0].size * 13 + lazy.sizes["baseline"] * 24
    source = TimeChunks.plan(url, max_bytes=steps * per_step)
    assert len(source) == -(-12 // steps)
    freq = lazy["frequency"].values
    return stream_clean(source, SPEC, nchan=freq.size, freq=freq, **kw)


def _assert_same(streamed, ref):
    peak = np.abs(ref.restored).max()
    assert peak > 1.0
    assert streamed.niter == ref.niter and streamed.nmajor == ref.nmajor
    for kind in ("model", "residual", "restored", "dirty", "psf"):
        a, b = getattr(streamed, kind), getattr(ref, kind)
        assert np.abs(a - b).max() <= 1e-6 * peak, kind


def _in_memory(ms: str, **kw):
    return clean_dataset(read_ms(ms), npix_x=NPIX, npix_y=NPIX, cell=CELL, **kw).cube


@pytest.mark.slow
def test_streamed_clean_ms_equals_in_memory(sim):
    ms, _ = sim
    ref = _in_memory(ms, **OPTIONS)
    out = _streamed(ms, **OPTIONS)
    _assert_same(out, ref)
    assert out.stop_reason == "threshold" and out.nmajor >= 2
    flux = np.array([out.model[0, y - 1:y + 2, x - 1:x + 2].sum() for x, y in PIX])
    assert np.all(np.abs(flux - FLUX) < 0.1 * FLUX + 0.05)


@pytest.mark.slow
def test_streamed_clean_zarr_equals_in_memory_with_briggs_and_auto_mask(sim):
    ms, tmp = sim
    zarr = write_dataset(read_ms(ms), str(tmp / "sim.zarr"), chunks={"time": 3}, overwrite=True)
    opts = dict(OPTIONS, auto_threshold=1.0)
    ref = _in_memory(ms, weighting="briggs", robust=0.5, auto_mask=4.0, **opts)
    out = _streamed(zarr, steps=3, weighting="briggs", robust=0.5, auto_mask=4.0, **opts)
    _assert_same(out, ref)


@pytest.mark.slow
def test_streamed_joined_channels_equal_in_memory_and_follow_the_spectrum(sim):
    ms, _ = sim
    ref = _in_memory(ms, channels_out=3, **OPTIONS)
    out = _streamed(ms, channels_out=3, join_channels=True, **OPTIONS)
    _assert_same(out, ref)
    assert out.model.shape == (3, NPIX, NPIX)
    centres = np.array([1.025e8, 1.15e8, 1.275e8])  # groups of two 6 MHz channels
    x, y = PIX[3]
    got = out.model[:, y - 1:y + 2, x - 1:x + 2].sum(axis=(1, 2))
    np.testing.assert_allclose(got, FLUX[3] * (centres / 1.15e8) ** 2.0, rtol=0.08)
    assert got[2] > 1.4 * got[0]  # a steep spectrum, not one flux for all groups
    # MFS: the groups weighted by their imaging-weight sums (WSClean's WSCIMGWG)
    w = out.weights / out.weights.sum()
    np.testing.assert_allclose(out.mfs.model, np.tensordot(w, out.model, axes=1), atol=1e-12)


@pytest.mark.slow
def test_streamed_joined_multiscale_equals_in_memory(sim):
    ms, _ = sim
    opts = dict(OPTIONS, algorithm="multiscale", scales=[0, 4, 8])
    ref = _in_memory(ms, channels_out=3, **opts)
    out = _streamed(ms, channels_out=3, join_channels=True, **opts)
    _assert_same(out, ref)
    x, y = PIX[3]
    got = out.model[:, y - 4:y + 5, x - 4:x + 5].sum(axis=(1, 2))
    assert got[2] > 1.4 * got[0]  # each group keeps its own flux


@pytest.mark.slow
def test_fit_spectral_pol_makes_component_spectra_smooth(sim):
    ms, _ = sim
    out = _streamed(ms, channels_out=6, join_channels=True, spectral_terms=2, **OPTIONS)
    x, y = PIX[0]
    spectrum = out.model[:, y, x]
    assert np.all(spectrum != 0)
    # a straight line in frequency: second differences vanish
    assert np.abs(np.diff(spectrum, 2)).max() < 1e-9 * np.abs(spectrum).max()


def test_independent_channels_and_bad_groups(sim):
    ms, _ = sim
    out = _streamed(ms, channels_out=2, weighting="uniform", **OPTIONS)
    assert out.model.shape == (2, NPIX, NPIX) and out.psf.shape == (2, NPIX, NPIX)
    assert out.beams[0][0] > out.beams[1][0]  # the lower group has the wider beam
    with pytest.raises(UsageError, match="more output channels"):
        channel_groups(6, 7)
    assert channel_groups(6, 4) == ((0, 1), (1, 3), (3, 4), (4, 6))  # WSClean's split (checked against wsclean)


def test_scratch_copy_is_removed(sim, tmp_path):
    ms, _ = sim
    _streamed(ms, temp_dir=str(tmp_path), **dict(OPTIONS, niter=50))
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow
def test_dask_streamed_clean_equals_in_memory(sim, dask_client):
    ms, _ = sim
    ref = _in_memory(ms, weighting="uniform", **OPTIONS)
    _assert_same(_streamed(ms, weighting="uniform", client=dask_client, **OPTIONS), ref)


@pytest.mark.slow
def test_streamed_clean_memory_stays_bounded(tmp_path):
    """A dataset many times the chunk budget cleans with peak traced memory far below its size."""
    lay = T.load_layout("ska-low-model").select(rmax=500)
    obs = O.make_observation(ra=RA0, dec=DEC0, layout=lay, freq_min=1.0e8, freq_max=1.1e8, nchan=16,
                             start="2025-03-01T12:00:00", duration=3600, integration=240)
    ra, dec = S.pixel_to_radec(PIX[:2, 0], PIX[:2, 1], NPIX, NPIX, CELL, CELL, RA0, DEC0)
    ds = simulate(lay, obs, S.SkyModel.from_components(ra, dec, FLUX[:2], ref_freq=1.05e8))
    dataset_bytes = sum(ds[v].nbytes for v in ("VISIBILITY", "WEIGHT", "FLAG", "UVW"))
    url = write_dataset(ds, str(tmp_path / "big.zarr"), chunks={"time": 1})
    del ds
    source = TimeChunks.plan(url, max_bytes=dataset_bytes // 40)
    assert len(source) >= 5
    freq = open_dataset(url)["frequency"].values
    tracemalloc.start()
    try:
        out = stream_clean(source, SPEC, nchan=freq.size, freq=freq, temp_dir=str(tmp_path), niter=500, mgain=0.8,
                           threshold=0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.nmajor >= 2
    flux = np.array([out.model[0, y - 1:y + 2, x - 1:x + 2].sum() for x, y in PIX[:2]])
    np.testing.assert_allclose(flux, FLUX[:2], rtol=0.02)
    assert peak < dataset_bytes / 4, (peak, dataset_bytes)
