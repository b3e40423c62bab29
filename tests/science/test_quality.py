"""Image quality figures on images with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from radioflow.errors import UsageError
from radioflow.science.quality import dynamic_range, flux_at, flux_in_box, mad_sigma, off_source_rms, rms, source_mask


def test_rms_with_and_without_mask():
    image = np.array([[3.0, 4.0], [0.0, 0.0]])
    assert rms(image) == pytest.approx(2.5)
    assert rms(image, mask=np.array([[True, True], [False, False]])) == pytest.approx(np.sqrt(12.5))
    with pytest.raises(UsageError, match="mask"):
        rms(image, mask=np.zeros((2, 2), bool))


def test_mad_sigma_is_robust_to_sources():
    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 0.02, (256, 256)) + 0.5
    image[100:110, 100:110] += 50.0
    assert mad_sigma(image) == pytest.approx(0.02, rel=0.03)
    assert np.std(image) > 10 * 0.02  # the plain std is ruined by the source


def test_off_source_rms_and_dynamic_range():
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 0.01, (128, 128))
    image = noise.copy()
    image[64, 40] = 5.0
    image[63:66, 39:42] += 1.0
    image[64, 40] = 5.0
    positions = [(40, 64)]
    mask = source_mask(image.shape, positions, 4)
    assert mask[64, 40] and mask[64, 44] and not mask[64, 45]
    expected = np.sqrt(np.mean(noise[~mask] ** 2))
    assert off_source_rms(image, positions, 4) == pytest.approx(expected, rel=1e-12)
    assert dynamic_range(image, positions, 4) == pytest.approx(5.0 / expected, rel=1e-12)
    assert dynamic_range(image, radius_px=4) == pytest.approx(5.0 / expected, rel=1e-12)


def test_flux_at_nearest_pixel_and_box():
    image = np.zeros((32, 32))
    image[10, 20] = 2.0
    image[11, 21] = -3.0
    np.testing.assert_array_equal(flux_at(image, [(20.2, 9.6)]), [2.0])
    np.testing.assert_array_equal(flux_at(image, [(20, 10)], box=1), [-3.0])
    np.testing.assert_array_equal(flux_in_box(image, [(20, 10)], box=1), [-1.0])
    with pytest.raises(UsageError, match="outside"):
        flux_at(image, [(40, 3)])
