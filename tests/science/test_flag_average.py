"""Physics of the built-in flagger and averager on simulated visibilities."""
from __future__ import annotations

import numpy as np
import pytest

from radioflow.science.averaging import average_arrays
from radioflow.science.flagging import flag_rfi

NT, NBL, NF, NP = 64, 30, 64, 4
SIGMA = 1.0


def _clean(seed: int = 3) -> np.ndarray:
    """A point source (5 Jy, smooth phase over time/frequency) plus complex Gaussian noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, NT)[:, None, None, None]
    f = np.linspace(0, 1, NF)[None, None, :, None]
    rate = rng.uniform(1, 4, (1, NBL, 1, 1))
    source = 5.0 * np.exp(2j * np.pi * rate * (t + 0.3 * f))
    source = source * np.array([1, 0, 0, 1])[None, None, None, :]
    noise = rng.normal(0, SIGMA, (NT, NBL, NF, NP)) + 1j * rng.normal(0, SIGMA, (NT, NBL, NF, NP))
    return (source + noise).astype(np.complex64)


def _inject(vis: np.ndarray, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Narrow-band lines, broadband bursts and single-sample spikes of 3–50 sigma."""
    rng = np.random.default_rng(seed)
    rfi = np.zeros(vis.shape[:3], bool)
    amp = np.zeros(vis.shape[:3])
    for bl in range(NBL):
        for _ in range(3):  # narrow-band lines lasting a while
            ch, t0 = rng.integers(NF), rng.integers(NT - 20)
            sl = (slice(t0, t0 + rng.integers(5, 20)), bl, ch)
            rfi[sl] = True
            amp[sl] = rng.uniform(3, 20)
        t0 = rng.integers(NT)  # broadband burst
        rfi[t0, bl, :] = True
        amp[t0, bl, :] = rng.uniform(3, 20)
        for _ in range(5):  # spikes
            ti, ch = rng.integers(NT), rng.integers(NF)
            rfi[ti, bl, ch] = True
            amp[ti, bl, ch] = rng.uniform(10, 50)
    phase = np.exp(2j * np.pi * rng.uniform(size=vis.shape))
    out = vis + (amp[..., None] * SIGMA * phase).astype(np.complex64)
    return out, rfi


def test_sumthreshold_finds_injected_rfi_with_few_false_flags():
    clean = _clean()
    dirty, rfi = _inject(clean)
    flags = flag_rfi(dirty)
    assert flags.shape == dirty.shape and (flags == flags[..., :1]).all()
    found = flags[..., 0][rfi].mean()
    false = flags[..., 0][~rfi].mean()
    assert found > 0.95, found
    assert false < 0.01, false


def test_clean_data_is_hardly_flagged_and_input_flags_are_kept():
    clean = _clean(seed=7)
    pre = np.zeros(clean.shape, bool)
    pre[:, 3, 10:12] = True
    flags = flag_rfi(clean, pre)
    assert flags[pre].all()
    assert flags[~pre].mean() < 0.01


def test_flagger_background_smoothing_is_scipys_gaussian_filter():
    from scipy.ndimage import gaussian_filter1d

    from radioflow.science.flagging import _gaussian_weights, _smooth

    x = np.random.default_rng(5).normal(size=(37, 11))
    for sigma, axis in ((2.0, 0), (4.0, 1), (0.7, 0), (9.0, 1)):
        w = _gaussian_weights(sigma)
        out = np.empty_like(x)
        _smooth(x, w, axis, np.empty((37 + 2 * w.size) * (11 + 2 * w.size)), out)
        np.testing.assert_allclose(out, gaussian_filter1d(x, sigma, axis=axis, mode="nearest", truncate=3.0),
                                   rtol=1e-12, atol=1e-12)


def test_flagger_rejects_bad_shapes():
    from radioflow.errors import UsageError

    with pytest.raises(UsageError, match="time, baseline, frequency, polarization"):
        flag_rfi(np.zeros((3, 4)))


def test_averaging_preserves_point_source_flux_and_weights():
    rng = np.random.default_rng(1)
    vis = np.full((12, 5, 16, 2), 3.0 + 0j, np.complex64)
    weight = rng.uniform(0.5, 2.0, vis.shape).astype(np.float32)
    flag = np.zeros(vis.shape, bool)
    flag[0, 0, 0, 0] = True
    vis[0, 0, 0, 0] = 1e6  # a flagged sample must not leak into the mean
    flag[4:8, 1, 4:8, :] = True  # one whole output bin flagged
    out, w, f = average_arrays({"DATA": vis}, weight, flag, 4, 4)
    assert out["DATA"].shape == (3, 5, 4, 2)
    np.testing.assert_allclose(out["DATA"][~f], 3.0, rtol=1e-6)
    assert f[1, 1, 1].all() and f.sum() == 2
    np.testing.assert_allclose(w[1, 1, 1], weight[4:8, 1, 4:8].sum(axis=(0, 1)), rtol=1e-6)  # DP3: all weights
    expected = weight[:4, 0, :4, 0].sum() - weight[0, 0, 0, 0]
    assert w[0, 0, 0, 0] == pytest.approx(expected, rel=1e-6)


def test_averaging_is_the_weighted_mean_with_a_short_last_bin():
    rng = np.random.default_rng(2)
    vis = (rng.normal(size=(5, 2, 7, 1)) + 1j * rng.normal(size=(5, 2, 7, 1))).astype(np.complex64)
    weight = rng.uniform(0.1, 1, vis.shape).astype(np.float32)
    flag = rng.uniform(size=vis.shape) < 0.2
    out, w, f = average_arrays({"DATA": vis}, weight, flag, 2, 3)
    assert out["DATA"].shape == (3, 2, 3, 1)
    sel = (slice(4, 5), 1, slice(6, 7), 0)  # the 1×1 leftover bin
    ww = np.where(flag[sel], 0, weight[sel])
    if ww.sum() > 0:
        assert out["DATA"][2, 1, 2, 0] == pytest.approx((vis[sel] * ww).sum() / ww.sum(), rel=1e-5)
    sel = (slice(0, 2), 0, slice(0, 3), 0)
    ww = np.where(flag[sel], 0, weight[sel])
    assert out["DATA"][0, 0, 0, 0] == pytest.approx((vis[sel] * ww).sum() / ww.sum(), rel=1e-5)
    assert w[0, 0, 0, 0] == pytest.approx(ww.sum(), rel=1e-6)


def _numpy_average(data, weight, flag, timestep, freqstep):
    """The former NumPy formulation of the averager (reduceat sums), the kernel's reference."""
    ts, fs = np.arange(0, flag.shape[0], timestep), np.arange(0, flag.shape[2], freqstep)

    def bin_sum(a):
        return np.add.reduceat(np.add.reduceat(a, ts, axis=0), fs, axis=2)

    w = weight.astype(np.float64)
    good_w = np.where(flag, 0.0, w)
    wsum, wall, nall = bin_sum(good_w), bin_sum(w), bin_sum(np.ones_like(w))
    out_flag = bin_sum((~flag).astype(np.int32)) == 0
    num, num_all = bin_sum(np.where(flag, 0, data * good_w)), bin_sum(data * w)
    plain = bin_sum(data.astype(np.complex128)) / nall
    with np.errstate(invalid="ignore", divide="ignore"):
        all_mean = np.where(wall > 0, num_all / np.where(wall > 0, wall, 1), plain)
        avg = np.where(out_flag | (wsum <= 0), all_mean, num / wsum)
    return avg.astype(data.dtype), np.where(out_flag, wall, wsum).astype(weight.dtype), out_flag


@pytest.mark.parametrize("timestep,freqstep", [(4, 4), (3, 5), (1, 1), (7, 2), (70, 9), (64, 64)])
def test_averaging_kernel_equals_the_numpy_formulation(timestep, freqstep):
    """Every branch (unflagged, all flagged, zero weights, short last bins) to float rounding."""
    rng = np.random.default_rng(8)
    shape = (70, 3, 64, 2)
    for dtype in (np.complex64, np.complex128):
        data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
        weight = (rng.random(shape) + 0.1).astype(np.float32)
        weight[:, 1, :3] = 0
        flag = rng.random(shape) < 0.3
        flag[:9, 2] = True
        got, got_w, got_f = average_arrays({"D": data}, weight, flag, timestep, freqstep)
        want, want_w, want_f = _numpy_average(data, weight, flag, timestep, freqstep)
        tol = 1e-6 if dtype == np.complex64 else 1e-12
        assert got["D"].dtype == want.dtype and got_w.dtype == want_w.dtype
        np.testing.assert_allclose(got["D"], want, rtol=tol, atol=tol)
        np.testing.assert_allclose(got_w, want_w, rtol=1e-6)
        assert np.array_equal(got_f, want_f)
        if timestep * freqstep <= 16:       # small bins: some are wholly flagged
            assert got_f.any() and not got_f.all()


def _dataset(nt: int = 10, nf: int = 7):
    import xarray as xr

    rng = np.random.default_rng(2)
    shape = (nt, 3, nf, 2)
    dims = ("time", "baseline", "frequency", "polarization")
    return xr.Dataset(
        {"VISIBILITY": (dims, (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)),
         "WEIGHT": (dims, rng.random(shape).astype(np.float32)), "FLAG": (dims, rng.random(shape) < 0.2),
         "UVW": (("time", "baseline", "uvw_label"), rng.normal(size=(nt, 3, 3))),
         "CHANNEL_WIDTH": (("frequency",), np.full(nf, 1e5)),
         "ANTENNA_POSITION": (("antenna", "xyz_label"), rng.normal(size=(3, 3)))},
        coords={"time": 100.0 + 2.0 * np.arange(nt), "frequency": 1e8 + 1e5 * np.arange(nf),
                "polarization": ["XX", "YY"], "baseline_antenna1": ("baseline", [0, 0, 1]),
                "baseline_antenna2": ("baseline", [1, 2, 2]), "antenna_name": ("antenna", ["a", "b", "c"])},
        attrs={"phase_center": [0.0, -0.5], "integration_time": 2.0})


def test_averaged_template_is_the_averaged_dataset_without_its_samples():
    """The writer's template (made before the kernel runs) has every coordinate, UVW, width and
    attribute of the averaged dataset, and placeholders of its samples' shapes and dtypes."""
    from radioflow.science.averaging import average_dataset, averaged_template

    ds = _dataset()
    out, template = average_dataset(ds, 3, 2), averaged_template(ds, 3, 2)
    assert dict(template.sizes) == dict(out.sizes) == {**ds.sizes, "time": 4, "frequency": 4}
    assert template.attrs == out.attrs and out.attrs["integration_time"] == 6.0
    for name in out.variables:
        assert template[name].dims == out[name].dims and template[name].dtype == out[name].dtype, name
        if name not in ("VISIBILITY", "WEIGHT", "FLAG"):
            np.testing.assert_array_equal(template[name].values, out[name].values)
    np.testing.assert_allclose(out["time"].values, [102.0, 108.0, 114.0, 118.0])  # a short last bin
    np.testing.assert_allclose(out["UVW"].values[3], ds["UVW"].values[9])
    np.testing.assert_allclose(out["CHANNEL_WIDTH"].values, [2e5, 2e5, 2e5, 1e5])
    assert template["VISIBILITY"].values.strides == (0, 0, 0, 0)  # no memory
