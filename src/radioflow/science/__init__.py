"""Numerics on arrays and xarray objects: telescopes, observations, sky models, predict, imaging.

Nothing here knows about recipes or storage."""
