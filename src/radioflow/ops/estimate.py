"""Sizes and memory of a recipe's products before it runs (``radioflow estimate RECIPE``).

Each step whose cab has an estimator below is evaluated with the run's inputs (command line >
environment > defaults), in order, so later steps see the predicted outputs of earlier ones.

Measurement Set size (radioflow's own MSv2 writer, :mod:`radioflow.vis.ms`), counted as
* tiled columns DATA (complex64, 8 B), WEIGHT_SPECTRUM (float32, 4 B) and FLAG (1 bit) per
  visibility = channels × polarisations × rows, each rounded up to whole casacore tiles of
  ~1 MiB (the tile shapes the writer chooses);
* tiled per-row arrays UVW (3 × 8 B), WEIGHT and SIGMA (4 B per polarisation), each rounded up
  to whole ~1 MiB tiles of whole rows (rows = times × baselines, no autocorrelations);
* 25 B per row of scalars (TIME, TIME_CENTROID, ANTENNA1/2, FLAG_ROW) in whole 128 kB buckets,
  and the incrementally stored ids (a few bytes per block);
* subtables: 208 kB + 375 B per antenna (measured).
FITS images: float32 pixels plus a 2-block header, in 2880-byte blocks.
Peak memory is a model (the arrays each step holds at once), not a measurement.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import UsageError
from ..resources import human

TILE_BYTES = 2**20            # as radioflow.vis.ms.TILE_BYTES
ROW_SCALAR_BYTES = 25          # TIME, TIME_CENTROID (8 B), ANTENNA1/2 (4 B), FLAG_ROW (1 B)
ROW_BUCKET_BYTES = 2**17      # as radioflow.vis.ms.ROW_BUCKET_BYTES
SUBTABLE_BYTES, SUBTABLE_BYTES_PER_ANTENNA = 208_000, 375
FITS_BLOCK, FITS_HEADER_BLOCKS = 2880, 2
BASE_MEMORY = 400 * 2**20     # the Python process with numpy, casacore, ducc0 loaded


@dataclass
class StepEstimate:
    """What one step makes: products (path -> bytes) and the memory it needs."""

    step: str
    products: dict[str, int] = field(default_factory=dict)
    memory: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class RecipeEstimate:
    """All steps, what is kept at the end, and warnings."""

    recipe: str
    steps: list[StepEstimate] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def made(self) -> dict[str, int]:
        return {p: b for s in self.steps for p, b in s.products.items()}

    @property
    def peak_memory(self) -> int:
        return max([s.memory for s in self.steps] or [0])


def _tiled_bytes(nrow: int, nchan: int, ncorr: int, item: int, bits: bool = False) -> int:
    chan_tile = min(nchan, max(1, TILE_BYTES // (ncorr * item)))
    row_tile = max(1, TILE_BYTES // (ncorr * chan_tile * item))
    tiles = math.ceil(nchan / chan_tile) * math.ceil(nrow / row_tile)
    tile = ncorr * chan_tile * row_tile * item
    return tiles * (tile // 8 if bits else tile)


def _row_tiled_bytes(nrow: int, cell: int, item: int) -> int:
    """A tiled column of ``cell`` values per row: whole rows per ~1 MiB tile, whole tiles on disk."""
    row_tile = max(1, TILE_BYTES // (cell * item))
    return math.ceil(nrow / row_tile) * row_tile * cell * item


def ms_bytes(ntime: int, nant: int, nchan: int, ncorr: int = 4) -> int:
    """Bytes on disk of an MS written by radioflow (see the module docstring for what is counted)."""
    nrow = ntime * nant * (nant - 1) // 2
    tiled = (_tiled_bytes(nrow, nchan, ncorr, 8) + _tiled_bytes(nrow, nchan, ncorr, 4)
             + _tiled_bytes(nrow, nchan, ncorr, 1, bits=True))
    per_row = _row_tiled_bytes(nrow, 3, 8) + 2 * _row_tiled_bytes(nrow, ncorr, 4)
    scalars = math.ceil(nrow * ROW_SCALAR_BYTES / ROW_BUCKET_BYTES) * ROW_BUCKET_BYTES
    return tiled + per_row + scalars + SUBTABLE_BYTES + SUBTABLE_BYTES_PER_ANTENNA * nant


def fits_bytes(nx: int, ny: int, nplanes: int = 1) -> int:
    """Bytes of a float32 FITS image written by radioflow."""
    return (FITS_HEADER_BLOCKS + math.ceil(nx * ny * nplanes * 4 / FITS_BLOCK)) * FITS_BLOCK


# -- estimators of the SRCNet cabs --------------------------------------------------------

def _simulate_aastar(p: Mapping[str, Any]) -> StepEstimate:
    from ..cabs.srcnet import channel_frequencies, primary_beam_fwhm
    from ..science.telescopes import load_layout

    layout = load_layout(str(p.get("telescope", "ska-mid-aastar")))
    freqs = channel_frequencies(float(p["start_freq"]), float(p["end_freq"]), float(p["freq_inc"]))
    ntime = int(p["num_time_stamps"])
    nbl = layout.n * (layout.n - 1) // 2
    nvis = ntime * nbl * freqs.size * 4
    est = StepEstimate("", products={str(p["ms"]): ms_bytes(ntime, layout.n, freqs.size)})
    # in memory: VISIBILITY (8 B) + WEIGHT (4 B) + FLAG (1 B) per visibility, the Stokes-I prediction
    # (complex128 per row and channel) and the UVW rows.
    est.memory = BASE_MEMORY + nvis * 13 + ntime * nbl * freqs.size * 16 + ntime * nbl * 48
    est.outputs = {"ms": p["ms"], "fov_deg": math.degrees(primary_beam_fwhm(layout, float(freqs.mean()))),
                   "nchan": int(freqs.size), "nrow": ntime * nbl}
    est.note = f"{layout.n} stations, {ntime} times × {freqs.size} channels × 4 pol = {nvis:,} visibilities"
    return est


def _image(p: Mapping[str, Any], steps: Mapping[str, Any], cleaned: bool) -> StepEstimate:
    npix = int(p["npixel"])
    sim: Mapping[str, Any] = next((s for s in steps.values() if "nrow" in s), {})
    nrow, nchan = int(sim.get("nrow", 0)), int(sim.get("nchan", 1))
    padded = math.ceil(npix * 1.2 / 4) * 4
    # read: DATA (2 pol, 8 B) + weights + flags per row and channel; Stokes I in place; gridding:
    # a padded complex128 grid and the image; CLEAN adds model, residual, PSF and restored images.
    grids = padded * padded * 16 * 2 + npix * npix * 8 * (5 if cleaned else 2)
    est = StepEstimate("", products={str(p["image"]): fits_bytes(npix, npix)},
                       memory=BASE_MEMORY + nrow * nchan * 2 * 13 + nrow * 24 + grids)
    est.outputs = {"image": p["image"]}
    est.note = f"{npix}² pixels"
    return est


ESTIMATORS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], StepEstimate]] = {
    "radioflow.cabs.srcnet.simulate_aastar": lambda p, s: _simulate_aastar(p),
    "radioflow.cabs.srcnet.dirty_image": lambda p, s: _image(p, s, cleaned=False),
    "radioflow.cabs.srcnet.cleaned_image": lambda p, s: _image(p, s, cleaned=True),
}


# -- walking a recipe ---------------------------------------------------------------------

class _Inputs(dict[str, Any]):
    """The ``recipe`` namespace: values given, else defaults, resolved on first use."""

    def __init__(self, values: Mapping[str, Any], resolve: Callable[[Any], Any]) -> None:
        super().__init__(values)
        self._resolve = resolve

    def __getitem__(self, key: str) -> Any:
        return self._resolve(super().__getitem__(key))


def estimate(args: Sequence[str], *, workdir: str = ".", environ: Mapping[str, str] | None = None) -> RecipeEstimate:
    """Estimate a recipe run given as ``FILE.yml [RECIPE] [NAME=VALUE ...] [--BOOL ...]``
    (``environ``: the environment the run will see; default this process's)."""
    from ..recipe.formula import UNSET, FormulaError
    from ..recipe.substitute import resolve_value
    from ..run.api import prepare_run

    prepared = prepare_run(args, workdir=workdir, environ=environ)
    rdef = prepared.rdef
    raw = {n: p.default for n, p in rdef.inputs.items() if p.has_default}
    raw.update(prepared.params)
    predicted: dict[str, dict[str, Any]] = {}
    ns: dict[str, Any] = {"steps": predicted, "config": {"run": {"id": "RUNID", "dir": workdir}}}

    def resolve(value: Any) -> Any:
        try:
            out = resolve_value(value, ns)
        except FormulaError:
            return None
        return None if out is UNSET else out

    ns["recipe"] = _Inputs(raw, resolve)
    result = RecipeEstimate(rdef.name)
    discarded: set[str] = set()
    for label, sdef in rdef.steps.items():
        if sdef.cab is None:
            continue
        if sdef.step.skip is not None and resolve(sdef.step.skip):
            continue
        params = {**{n: p.default for n, p in sdef.cab.schema.items() if p.has_default},
                  **(rdef.step_defaults.get(label) or {}), **(sdef.step.params or {})}
        values = {k: resolve(v) for k, v in params.items()}
        command = str(sdef.cab.command)
        if command == "radioflow.cabs.srcnet.write_products":
            discarded |= _unselected(values)
            continue
        estimator = ESTIMATORS.get(command)
        if estimator is None:
            continue
        try:
            est = estimator(values, predicted)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"Cannot estimate step '{label}' ({command}): parameter {exc} is missing or "
                             f"not a plain value.") from None
        est.step = label
        predicted[label] = est.outputs
        result.steps.append(est)
    result.kept = {p: b for p, b in result.made.items() if Path(p).name not in discarded}
    _warn_space(result, workdir)
    return result


def _unselected(values: Mapping[str, Any]) -> set[str]:
    """Names of the products the products step deletes (made but not selected)."""
    if not values.get("discard", True):
        return set()
    prefix = str(values.get("file_prefix") or "")
    names = {"visibility": f"{prefix}measurements.ms", "dirty": f"{prefix}dirty.fits",
             "cleaned": f"{prefix}cleaned.fits"}
    return {n for k, n in names.items() if not values.get(k)}


def _warn_space(result: RecipeEstimate, workdir: str) -> None:
    """Warn when the volume the products go to has less free space than the run writes."""
    total = sum(result.made.values())
    dirs = {Path(workdir, p).parent for p in result.made}
    for d in sorted(dirs):
        probe = d
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            continue
        if free < total:
            result.warnings.append(f"{d}: {human(free)} free but the run writes {human(total)} "
                                   f"(keeps {human(sum(result.kept.values()))}); use a larger volume.")


def report(est: RecipeEstimate) -> str:
    """Text for ``radioflow estimate``."""
    lines = [f"recipe {est.recipe}: estimate"]
    for s in est.steps:
        lines.append(f"  {s.step}: {s.note}; peak memory ≈ {human(s.memory)}")
        for path, size in s.products.items():
            kept = "kept" if path in est.kept else "discarded at the end"
            lines.append(f"    {path}: {human(size)} ({kept})")
    lines.append(f"written {human(sum(est.made.values()))}, kept {human(sum(est.kept.values()))}, "
                 f"peak memory ≈ {human(est.peak_memory)}")
    lines += [f"warning: {w}" for w in est.warnings]
    if not est.steps:
        lines.append("(no step of this recipe has a size model)")
    return "\n".join(lines)
