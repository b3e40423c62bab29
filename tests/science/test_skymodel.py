"""Sky models: projections, random fields, catalogues."""
from __future__ import annotations

import math

import numpy as np
import pytest

from radioflow.errors import UsageError
from radioflow.science import skymodel as S


def test_lm_radec_round_trip():
    ra0, dec0 = math.radians(30), math.radians(-45)
    l = np.array([0.0, 0.01, -0.02, 0.1])
    m = np.array([0.0, -0.03, 0.02, 0.05])
    ra, dec = S.lm_to_radec(l, m, ra0, dec0)
    lmn = S.radec_to_lmn(ra, dec, ra0, dec0)
    np.testing.assert_allclose(lmn[:, 0], l, atol=1e-14)
    np.testing.assert_allclose(lmn[:, 1], m, atol=1e-14)
    # East of the phase centre has larger RA and positive l.
    assert ra[1] > ra0


def test_random_field_counts_follow_power_law():
    sky = S.random_field(0.0, -0.5, radius=math.radians(5), nsources=20000, flux_min=0.1, flux_max=100,
                         slope=-1.5, seed=3)
    assert len(sky) == 20000 and sky.flux.min() >= 0.1 and sky.flux.max() <= 100
    # N(>S) ∝ S^-1.5: ratio of counts above 1 Jy and above 0.1 Jy ≈ 10^-1.5 (truncation at 100 Jy is tiny).
    frac = np.mean(sky.flux > 1.0)
    expected = (1.0**-1.5 - 100**-1.5) / (0.1**-1.5 - 100**-1.5)
    assert frac == pytest.approx(expected, rel=0.1)
    sep = np.arccos(np.clip(S.radec_to_lmn(sky.ra, sky.dec, 0.0, -0.5)[:, 2], -1, 1))
    assert sep.max() <= math.radians(5) + 1e-12
    again = S.random_field(0.0, -0.5, radius=math.radians(5), nsources=20000, flux_min=0.1, flux_max=100,
                           slope=-1.5, seed=3)
    np.testing.assert_array_equal(sky.flux, again.flux)


def test_catalogue_round_trip_and_errors(tmp_path):
    sky = S.SkyModel.from_components([0.1, 0.2], [-0.5, -0.4], [1.0, 2.5], ref_freq=1.5e8, spectral_index=[-0.7, 0.1],
                                     major=[0.0, 1e-4], minor=[0.0, 5e-5], pa=[0.0, 0.3])
    path = S.write_catalogue(sky, tmp_path / "sky.csv")
    back = S.read_catalogue(path)
    for attr in ("ra", "dec", "flux", "ref_freq", "spectral_index", "major", "minor", "pa"):
        np.testing.assert_allclose(getattr(back, attr), getattr(sky, attr), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(back.flux_at(np.array([1.5e8, 3e8]))[0], [1.0, 2 ** -0.7])
    bad = tmp_path / "bad.csv"
    bad.write_text("ra_deg,dec_deg,flux_jy\n1,2,abc\n")
    with pytest.raises(UsageError, match=r"bad.csv:2"):
        S.read_catalogue(bad)
    with pytest.raises(UsageError, match="flux_min"):
        S.random_field(0, 0, radius=0.1, nsources=3, flux_min=-1)
