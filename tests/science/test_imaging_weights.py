"""Imaging weights: WSClean's rank filter and the density grid, against direct definitions."""
from __future__ import annotations

import math

import numpy as np
import pytest

from radioflow.commands.wsclean_args import parse_image_args
from radioflow.errors import UsageError
from radioflow.science.imaging import imaging_weights, rank_filter


def _rank_filter_reference(grid: np.ndarray, level: float, size: int) -> np.ndarray:
    """The filter cell by cell, written from its definition (window [i-d, i+d), non-zero cells)."""
    h, w = grid.shape
    d = size // 2
    out = grid.copy()
    for y in range(h):
        for x in range(w):
            if grid[y, x] == 0:
                continue
            win = grid[max(y - d, 0):min(y + d, h), max(x - d, 0):min(x + d, w)]
            mean = win[win != 0].mean()
            if grid[y, x] > level * mean:
                out[y, x] = level * mean
    return out


@pytest.mark.parametrize("level,size", [(3.0, 16), (1.5, 7), (1.0, 2)])
def test_rank_filter_matches_its_definition(level, size):
    rng = np.random.default_rng(3)
    grid = rng.exponential(1.0, (23, 41)) * (rng.random((23, 41)) < 0.4)
    grid[4:6, 6:8] = 1.0
    grid[5, 7] = 50.0  # a heavy cell among light ones: must be capped at every window size
    got = rank_filter(grid, level, size)
    np.testing.assert_allclose(got, _rank_filter_reference(grid, level, size), rtol=1e-12)
    assert got[5, 7] < 50.0
    assert np.all(got <= grid) and np.all((got == 0) == (grid == 0))


def test_uniform_weights_capped_for_a_lone_sample():
    """A sample alone in its cell, surrounded by crowded cells, gets 3 × the local mean factor."""
    cell = math.radians(60 / 3600)
    freq = np.array([299_792_458.0])  # u, v in metres = wavelengths
    n = 64
    du = 1.0 / (1.2 * n * cell)  # one uv cell of the padded grid
    crowded = [(du * (i + 0.5), du * 2.5, 0.0) for i in range(4) for _ in range(10)]
    lone = [(du * 2.5, du * 6.5, 0.0)]
    uvw = np.array(crowded + lone)
    wgt = np.ones((len(uvw), 1))
    w_on = imaging_weights(uvw, freq, wgt, None, n, n, cell, cell, "uniform")
    w_off = imaging_weights(uvw, freq, wgt, None, n, n, cell, cell, "uniform", rank_filter_level=0)
    assert w_off[-1, 0] == pytest.approx(1.0)
    # window mean of the factors: four cells at 1/10 and the lone cell at 1 → (0.4 + 1) / 5
    assert w_on[-1, 0] == pytest.approx(3 * (0.4 + 1.0) / 5, rel=1e-6)
    np.testing.assert_allclose(w_on[:-1, 0], 0.1, rtol=1e-6)


def test_image_args_take_wsclean_rank_filter_options():
    a = parse_image_args(["x.ms", "-size", "64", "-scale", "1amin", "-weight", "uniform",
                          "-weighting-rank-filter", "2", "-weighting-rank-filter-size", "8"])
    assert (a.rank_filter_level, a.rank_filter_size) == (2.0, 8)
    with pytest.raises(UsageError, match="rank-filter-size"):
        parse_image_args(["x.ms", "-size", "64", "-scale", "1amin", "-weighting-rank-filter-size", "0"])


def test_stokes_i_in_place_equals_a_fresh_copy():
    """``overwrite`` forms Stokes I inside the dataset's arrays and gives the same numbers."""
    import xarray as xr

    from radioflow.science.imaging import stokes_i

    rng = np.random.default_rng(5)
    shape = (7, 11, 13, 4)
    data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    weight = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    flag = rng.random(shape) < 0.2
    dims = ("time", "baseline", "frequency", "polarization")

    def dataset():
        return xr.Dataset({"VISIBILITY": (dims, data.copy()), "WEIGHT": (dims, weight.copy()), "FLAG": (dims, flag.copy())},
                          coords={"polarization": ["XX", "XY", "YX", "YY"]})

    fresh = stokes_i(dataset())
    ds = dataset()
    inplace = stokes_i(ds, overwrite=True)
    for a, b in zip(fresh, inplace):
        np.testing.assert_array_equal(a, b)
    assert np.shares_memory(inplace[0], ds["VISIBILITY"].values)
    np.testing.assert_allclose(fresh[0], 0.5 * (data[..., 0] + data[..., 3]).reshape(77, 13), rtol=1e-6)
    w0, w3 = weight[..., 0].astype(float), weight[..., 3].astype(float)
    flagged = (flag[..., 0] | flag[..., 3]).reshape(77, 13)
    np.testing.assert_array_equal(fresh[2], flagged)
    # WSClean 3.1's Stokes I weight by default: 4·min(w_XX, w_YY), zero where either hand is flagged
    np.testing.assert_allclose(fresh[1], np.where(flagged, 0, 4 * np.minimum(w0, w3).reshape(77, 13)), rtol=1e-6)
    optimal = stokes_i(dataset(), combination="optimal")
    np.testing.assert_allclose(optimal[1], np.where(flagged, 0, (4 * w0 * w3 / (w0 + w3)).reshape(77, 13)), rtol=1e-6)
    np.testing.assert_array_equal(optimal[0], fresh[0])
