"""Simulate an observation: layout + observation + sky model → visibility dataset."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..vis.schema import baseline_pairs, make_dataset
from .observation import Observation, baseline_uvw
from .predict import add_noise, predict_rows, thermal_sigma
from .skymodel import SkyModel
from .telescopes import Layout


def simulate(
    layout: Layout,
    obs: Observation,
    sky: SkyModel,
    *,
    polarization: tuple[str, ...] = ("XX", "XY", "YX", "YY"),
    noise_sigma: float | None = None,
    sefd: float | None = None,
    seed: int | None = None,
    telescope_name: str | None = None,
    field_name: str = "field",
) -> xr.Dataset:
    """Unpolarised sky → dataset with XX = YY = I (cross-hands zero), optional thermal noise.

    ``noise_sigma`` (Jy per real/imaginary part) or ``sefd`` (Jy, with the channel width and
    integration time) set the noise; WEIGHT is 1/σ² then, 1 otherwise.
    """
    a1, a2 = baseline_pairs(layout.n)
    itrf = layout.itrf()
    uvw = baseline_uvw(itrf, obs.times, obs.ra, obs.dec, a1, a2)
    ntime, nbl = uvw.shape[:2]
    vis_i = predict_rows(sky, uvw.reshape(-1, 3), obs.frequencies, obs.ra, obs.dec)
    vis_i = vis_i.reshape(ntime, nbl, obs.frequencies.size)
    npol = len(polarization)
    vis = np.zeros((ntime, nbl, obs.frequencies.size, npol), np.complex64)
    parallel = [i for i, p in enumerate(polarization) if p in ("XX", "YY", "RR", "LL", "I")]
    for i in parallel:
        vis[..., i] = vis_i
    sigma = None
    if sefd is not None:
        sigma = thermal_sigma(sefd, float(obs.channel_width[0]), obs.integration_time)
    elif noise_sigma is not None:
        sigma = float(noise_sigma)
    weight = np.float32(1.0)
    if sigma:
        vis = add_noise(vis, sigma, seed=seed)
        weight = np.float32(1.0 / sigma**2)
    return make_dataset(
        time=obs.times, frequency=obs.frequencies, antenna1=a1, antenna2=a2, uvw=uvw,
        antenna_position=itrf, antenna_name=layout.names, phase_center=(obs.ra, obs.dec),
        visibility=vis, weight=np.full(vis.shape, weight, np.float32), polarization=polarization,
        channel_width=obs.channel_width, dish_diameter=layout.dish_diameter,
        integration_time=obs.integration_time,
        telescope_name=telescope_name or layout.telescope or layout.name, field_name=field_name,
        site=layout.site,
    )
