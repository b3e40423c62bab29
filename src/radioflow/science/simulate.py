"""Simulate an observation: layout + observation + sky model → visibility dataset."""
from __future__ import annotations

import xarray as xr

from ..vis.schema import baseline_pairs, make_dataset
from .corrupt import add_noise
from .imaging import parallel_hands
from .observation import Observation, baseline_uvw
from .predict import predict_rows
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
    integration time; it wins over ``noise_sigma``) set the noise; WEIGHT is 1/σ² then, 1 otherwise.
    """
    a1, a2 = baseline_pairs(layout.n)
    itrf = layout.itrf()
    uvw = baseline_uvw(itrf, obs.times, obs.ra, obs.dec, a1, a2)
    ntime, nbl = uvw.shape[:2]
    vis_i = predict_rows(sky, uvw.reshape(-1, 3), obs.frequencies, obs.ra, obs.dec)
    vis = parallel_hands(vis_i.reshape(ntime, nbl, obs.frequencies.size), polarization)
    ds = make_dataset(
        time=obs.times, frequency=obs.frequencies, antenna1=a1, antenna2=a2, uvw=uvw,
        antenna_position=itrf, antenna_name=layout.names, phase_center=(obs.ra, obs.dec),
        visibility=vis, polarization=polarization,
        channel_width=obs.channel_width, dish_diameter=layout.dish_diameter,
        integration_time=obs.integration_time,
        telescope_name=telescope_name or layout.telescope or layout.name, field_name=field_name,
        site=layout.site,
    )
    if noise_sigma is not None or sefd is not None:
        ds = add_noise(ds, sigma=noise_sigma if sefd is None else None, sefd=sefd, seed=seed)
    return ds
