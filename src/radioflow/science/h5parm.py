"""DP3/LOFAR h5parm gain tables: read a solution set as gains on a visibility grid, and write one.

An h5parm is HDF5 with solution sets (``sol000``) holding solution tables (``phase000``,
``amplitude000``); each table has a ``val`` array whose attribute ``AXES`` names its axes
(e.g. ``time,freq,ant,dir,pol``), one dataset per axis, and ``weight`` (0 = flagged).
Gains are ``amplitude · exp(i·phase)``; a missing table means amplitude 1 or phase 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError


def _nearest(axis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the nearest ``axis`` entry for each of ``values``."""
    if axis.size == 1:
        return np.zeros(values.size, np.intp)
    order = np.argsort(axis)
    srt = axis[order]
    idx = np.clip(np.searchsorted(srt, values), 1, srt.size - 1)
    left = values - srt[idx - 1] < srt[idx] - values
    return order[np.where(left, idx - 1, idx)]


def _decode(a: np.ndarray) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in a]


def _table(sol, name: str, times: np.ndarray, freqs: np.ndarray, antennas: list[str],
           direction: str | None, path: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Values and flags of soltab ``name`` on (time, antenna, frequency, pol) of the visibilities."""
    tabs = [k for k in sol if k.startswith(name)]
    if not tabs:
        return None
    tab = sol[sorted(tabs)[0]]
    axes = tab["val"].attrs["AXES"]
    axes = (axes.decode() if isinstance(axes, bytes) else str(axes)).split(",")
    val = np.asarray(tab["val"][()], np.float64)
    weight = np.asarray(tab["weight"][()], np.float64) if "weight" in tab else np.ones_like(val)
    index: dict[str, np.ndarray] = {}
    for ax in axes:
        coord = tab[ax][()]
        if ax == "time":
            index[ax] = _nearest(np.asarray(coord, np.float64), times)
        elif ax == "freq":
            index[ax] = _nearest(np.asarray(coord, np.float64), freqs)
        elif ax == "ant":
            names = _decode(coord)
            missing = [a for a in antennas if a not in names]
            if missing:
                raise UsageError(f"h5parm {path} ({tab.name}) has no solutions for antenna(s) "
                                 f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}.")
            index[ax] = np.array([names.index(a) for a in antennas])
        elif ax == "dir":
            dirs = _decode(coord)
            want = direction if direction is not None else dirs[0]
            hits = [i for i, d in enumerate(dirs) if d.strip("[]") == want.strip("[]")]
            if not hits:
                raise UsageError(f"h5parm {path} ({tab.name}) has no direction {want!r}; it has {', '.join(dirs)}.")
            index[ax] = np.array(hits[:1])
        elif ax == "pol":
            pols = _decode(coord)
            index[ax] = np.array([pols.index(p) for p in ("XX", "YY") if p in pols] or [0])
        else:
            index[ax] = np.array([0])
    grid = np.ix_(*[index[ax] for ax in axes])
    val, weight = val[grid], weight[grid]
    for ax in ("time", "ant", "freq", "pol", "dir"):
        if ax not in axes:
            val, weight = val[..., None], weight[..., None]
            axes = [*axes, ax]
    order = [axes.index(a) for a in ("time", "ant", "freq", "pol", "dir")]
    val = val.transpose(order)[..., 0]
    weight = weight.transpose(order)[..., 0]
    return val, weight == 0, val.shape[3]


def read_h5parm_gains(path: str | Path, times: np.ndarray, freqs: np.ndarray, antennas: list[str],
                      solset: str = "sol000", direction: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gains and flags ``(ntime, nant, nchan, npol)`` (npol 1 or 2) of ``solset``, nearest in time/frequency."""
    import h5py

    path = str(path)
    if not Path(path).is_file():
        raise UsageError(f"h5parm {path} does not exist.")
    with h5py.File(path, "r") as h5:
        if solset not in h5:
            raise UsageError(f"h5parm {path} has no solution set {solset!r}; it has {', '.join(h5.keys())}.")
        sol = h5[solset]
        amp = _table(sol, "amplitude", times, freqs, antennas, direction, path)
        phase = _table(sol, "phase", times, freqs, antennas, direction, path)
    if amp is None and phase is None:
        raise UsageError(f"h5parm {path} ({solset}) has neither an amplitude nor a phase table.")
    npol = max(t[2] for t in (amp, phase) if t is not None)
    shape = (len(times), len(antennas), len(freqs), npol)
    a, fa = (np.broadcast_to(amp[0], shape), np.broadcast_to(amp[1], shape)) if amp else (np.ones(shape), np.zeros(shape, bool))
    p, fp = (np.broadcast_to(phase[0], shape), np.broadcast_to(phase[1], shape)) if phase else (np.zeros(shape), np.zeros(shape, bool))
    return (a * np.exp(1j * p)).astype(np.complex128), np.asarray(fa | fp)


def _strings(group, name: str, values: list[bytes]) -> None:
    """A dataset of NUL-terminated fixed-length strings, as DP3 writes and expects them (h5py
    would write NUL-padded ones, which DP3 does not match)."""
    import h5py

    size = max(len(v) for v in values) + 1
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    dsid = h5py.h5d.create(group.id, name.encode(), tid, h5py.h5s.create_simple((len(values),)))
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(values, dtype=f"S{size}"))


def write_h5parm(path: str | Path, gains: np.ndarray, times: np.ndarray, freqs: np.ndarray,
                 antennas: list[str], solset: str = "sol000", flags: np.ndarray | None = None,
                 direction: str = "[model]") -> Path:
    """Write gains ``(time, antenna, frequency, pol)`` as DP3 writes them: amplitude000 and phase000
    tables with axes ``time,freq,ant,dir[,pol]`` (pol only for 2 receptors), plus the antenna and
    source tables."""
    import h5py

    gains = np.asarray(gains)
    npol = gains.shape[3]
    weight = np.ones(gains.shape) if flags is None else (~np.asarray(flags, bool)).astype(np.float64)
    axes = "time,freq,ant,dir" + (",pol" if npol == 2 else "")

    def layout(a: np.ndarray) -> np.ndarray:
        a = a.transpose(0, 2, 1, 3)[:, :, :, None, :]        # time, freq, ant, dir, pol
        return a if npol == 2 else a[..., 0]

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as h5:
        sol = h5.create_group(solset)
        sol.attrs["h5parm_version"] = np.bytes_("1.0")
        names = np.array([a.encode() for a in antennas], dtype="S16")
        sol.create_dataset("antenna", data=np.array(list(zip(names, np.zeros((len(antennas), 3), np.float32))),
                                                    dtype=[("name", "S16"), ("position", "<f4", (3,))]))
        sol.create_dataset("source", data=np.array([(direction.encode(), (0.0, 0.0))],
                                                   dtype=[("name", "S128"), ("dir", "<f8", (2,))]))
        for name, values in (("amplitude000", np.abs(gains)), ("phase000", np.angle(gains))):
            tab = sol.create_group(name)
            tab.attrs["TITLE"] = np.bytes_(name[:-3])
            tab.attrs["h5parm_version"] = np.bytes_("1.0")
            val = tab.create_dataset("val", data=layout(values))
            val.attrs["AXES"] = np.bytes_(axes)
            w = tab.create_dataset("weight", data=layout(weight).astype(np.float32))
            w.attrs["AXES"] = np.bytes_(axes)
            tab.create_dataset("time", data=np.asarray(times, np.float64))
            tab.create_dataset("freq", data=np.asarray(freqs, np.float64))
            _strings(tab, "ant", [a.encode() for a in antennas])
            _strings(tab, "dir", [direction.encode()])
            if npol == 2:
                _strings(tab, "pol", [b"XX", b"YY"])
    tmp.replace(path)
    return path
