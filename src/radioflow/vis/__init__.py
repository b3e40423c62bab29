"""Visibility datasets: the in-memory xarray layout and its storage (MSv2, Zarr)."""
