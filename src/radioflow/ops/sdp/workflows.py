"""The workflow registry: (kind, name, version) -> what a processing block runs.

``batch/batch_imaging/0.1.0`` runs the shipped ``batch-imaging.yml`` recipe with the SDP
parameters; its visibilities and images go to the PB's two buffer reservations.
``realtime/test_realtime/0.2.0`` (also 0.1.0) is SDP's placeholder real-time workflow: it runs
until the SBI is released; ``batch/test_batch/0.2.0`` waits ``duration`` seconds and ends (SDP's
placeholder batch workflow, used to measure scheduling). Anything else is unknown and fails the
PB with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# Defaults of the SDP batch_imaging workflow (its README), used when a parameter is omitted.
BATCH_IMAGING_DEFAULTS: dict[str, Any] = {
    "n_workers": 4, "freq_min": 0.9e8, "freq_max": 1.1e8, "nfreqwin": 8, "ntimes": 5, "rmax": 750.0,
    "ra": 0.0, "dec": -30.0,
}
_RECIPE_EXTRAS = ("npix", "cell", "niter", "nmajor", "nsources", "phase_error", "seed")


@dataclass(frozen=True)
class Workflow:
    """One registered workflow version."""

    kind: str                      # "batch" or "realtime"
    name: str
    version: str
    params_def: str | None         # $defs entry of sbi.schema.json for its parameters
    recipe: str | None = None      # shipped recipe file under radioflow/recipes
    buffers: tuple[str, ...] = field(default=())   # parameters naming buffer reservations
    action: str = "recipe"         # "recipe", "until_released" or "sleep"

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}/{self.version}"


REGISTRY: dict[tuple[str, str, str], Workflow] = {
    (w.kind, w.name, w.version): w
    for w in (
        Workflow("batch", "batch_imaging", "0.1.0", "batch_imaging_0_1_0", "batch-imaging.yml",
                 ("buffer_vis", "buffer_img")),
        Workflow("realtime", "test_realtime", "0.1.0", "test_realtime_0_2_0", action="until_released"),
        Workflow("realtime", "test_realtime", "0.2.0", "test_realtime_0_2_0", action="until_released"),
        Workflow("batch", "test_batch", "0.2.0", "test_batch_0_2_0", action="sleep"),
    )
}


class UnknownWorkflow(LookupError):
    """No registered workflow matches; ``str()`` is the reason recorded on the PB."""


def lookup(kind: str, name: str, version: str) -> Workflow:
    """The registered workflow, or :class:`UnknownWorkflow` naming what is known."""
    wf = REGISTRY.get((kind, name, version))
    if wf is not None:
        return wf
    same = sorted(w.version for w in REGISTRY.values() if w.name == name and w.kind == kind)
    if same:
        raise UnknownWorkflow(f"workflow {kind}/{name} has no version {version} (known: {', '.join(same)})")
    known = ", ".join(sorted({f"{w.kind}/{w.name}" for w in REGISTRY.values()}))
    raise UnknownWorkflow(f"unknown workflow {kind}/{name} version {version} (known: {known})")


def parameter_schema(kind: str, name: str, version: str) -> str | None:
    """The schema definition for a known workflow's parameters (None when unknown)."""
    wf = REGISTRY.get((kind, name, version))
    return wf.params_def if wf else None


def recipe_path(wf: Workflow) -> str:
    """Filesystem path of the workflow's shipped recipe."""
    assert wf.recipe is not None
    return str(resources.files("radioflow.recipes").joinpath(wf.recipe))


def buffer_requests(wf: Workflow, pb: dict[str, Any]) -> list[tuple[str, int]]:
    """(reservation name, size in bytes) for every buffer the PB's workflow needs."""
    params = {**BATCH_IMAGING_DEFAULTS, **pb["parameters"]} if wf.name == "batch_imaging" else pb["parameters"]
    explicit = params.get("buffer_size")
    out = []
    for key in wf.buffers:
        name = params[key]
        size = int(explicit) if explicit is not None else estimate_buffer(wf, params, key)
        out.append((name, size))
    return out


def estimate_buffer(wf: Workflow, params: dict[str, Any], key: str) -> int:
    """Bytes a batch_imaging buffer needs: MS columns for the visibility buffer, FITS+PNG for images.

    Visibilities: baselines within ``rmax`` x ntimes x nfreqwin x 4 correlations x (DATA,
    MODEL, CORRECTED complex64 + WEIGHT float32 + FLAG) plus 1 MiB of tables per window, times
    2.5 for the ICAL intermediates (measured: 11.6 MB for the shipped 2-window example).
    Images: (5 per window + 3 band) FITS of npix^2 float32 plus 128 KiB per PNG preview.
    """
    nfreqwin, ntimes = int(params["nfreqwin"]), int(params["ntimes"])
    if key == "buffer_img":
        npix = int(params.get("npix", 256))
        return (5 * nfreqwin + 3) * (npix * npix * 4 + 2880 * 2) + (2 * nfreqwin + 2) * (4 * npix * npix + (128 << 10))
    nst = _stations_within(float(params["rmax"]))
    nbl = nst * (nst - 1) // 2
    per_row = 4 * (3 * 8 + 4 + 1) + 3 * 8 + 64
    return 5 * (nbl * ntimes * nfreqwin * per_row + nfreqwin * (1 << 20)) // 2


def _stations_within(rmax: float) -> int:
    """Stations of the built-in SKA-Low model within ``rmax`` metres of the centre."""
    import numpy as np

    from ...science.telescopes import builtin_layout

    enu = builtin_layout("ska-low-model").enu
    return max(2, int(np.count_nonzero(np.hypot(enu[:, 0], enu[:, 1]) <= rmax)))


def recipe_args(wf: Workflow, pb: dict[str, Any], buffer_root: str) -> list[str]:
    """``radioflow run`` style arguments for the PB: the recipe file, then ``name=value`` parameters."""
    params = {**BATCH_IMAGING_DEFAULTS, **pb["parameters"]}
    args = [recipe_path(wf)]
    for key in (*BATCH_IMAGING_DEFAULTS, *_RECIPE_EXTRAS):
        if key in params:
            args.append(f"{key}={params[key]!r}" if isinstance(params[key], str) else f"{key}={params[key]}")
    args += [f"buffer_vis={params['buffer_vis']}", f"buffer_img={params['buffer_img']}",
             f"buffer_root={buffer_root}"]
    return args
