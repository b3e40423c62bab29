"""Cabs running the real DP3 (PyPI ``dp3``: the ``DP3.py`` console script, AOFlagger bundled).

DP3 is driven by parset keys (``msin=…``, ``steps=[…]``, ``<step>.type=…``); the generic
:func:`dp3` cab takes any keys, the step cabs (:func:`aoflagger`, :func:`averager`,
:func:`ddecal`, :func:`predict`, :func:`applycal`) fill in the keys of one step. Three things
the bare binary does not do are done here: OPENBLAS_NUM_THREADS=1 is set (DP3 refuses to run
otherwise), AOFlagger strategy names (``generic-default``) resolve to the files bundled inside
the installed package, and a radioflow CSV sky catalogue is converted to DP3's text sky-model
format. DP3 reads and writes local Measurement Sets only, so a remote (``s3://``) MS is
downloaded into a temporary folder, processed there and published back atomically in its place
(or at a remote ``msout``); remote h5parm, sky-model and solution files are staged the same way.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator

from ..errors import RadioflowError, UsageError
from ..science.skymodel import read_catalogue
from ..vis.location import as_location
from ._util import Files, cab_files, dataset_format, is_staged, publish_ms, say, stage_ms

EXECUTABLES = ("DP3", "DP3.py")


def executable() -> str:
    """Path of the DP3 executable: ``DP3`` on PATH, else the ``DP3.py`` script of PyPI ``dp3``."""
    for name in EXECUTABLES:
        found = shutil.which(name) or (str(Path(sys.executable).parent / name)
                                       if (Path(sys.executable).parent / name).exists() else None)
        if found:
            return found
    raise UsageError("The executable 'DP3' was not found (looked for DP3 and DP3.py on PATH and beside "
                     f"{sys.executable}): install it with 'pip install dp3' (or radioflow's test extra).")


def strategies_dir() -> Path | None:
    """Folder of the AOFlagger strategies bundled with PyPI ``dp3`` (None if not installed)."""
    spec = importlib.util.find_spec("dp3")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent.parent / "DP3.libs" / "aoflagger" / "strategies"
    return folder if folder.is_dir() else None


def resolve_strategy(strategy: str) -> str:
    """An AOFlagger strategy file: an existing path, or a bundled name (``generic-default[.lua]``)."""
    if Path(strategy).is_file():
        return str(Path(strategy).resolve())
    folder = strategies_dir()
    if folder is not None:
        name = strategy if strategy.endswith(".lua") else f"{strategy}.lua"
        if (folder / name).is_file():
            return str(folder / name)
        known = ", ".join(sorted(p.stem for p in folder.glob("*.lua")))
        raise UsageError(f"AOFlagger strategy '{strategy}' (parameter 'strategy') is neither a file nor one "
                         f"bundled with dp3; bundled: {known}.")
    raise UsageError(f"AOFlagger strategy '{strategy}' (parameter 'strategy') is not a file, and no "
                     "bundled strategies were found (pip install dp3).")


def _sexagesimal(deg: float, hours: bool) -> str:
    """``hh:mm:ss.ssssss`` (hours) or ``±dd.mm.ss.ssssss`` (degrees), DP3's sky-model notation."""
    value = deg / 15.0 if hours else deg
    sign = "-" if value < 0 else "+"
    micro = round(abs(value) * 3600e6)
    d, rest = divmod(micro, 3600 * 10**6)
    m, us = divmod(rest, 60 * 10**6)
    s = f"{us // 10**6:02d}.{us % 10**6:06d}"
    return f"{d:02d}:{m:02d}:{s}" if hours else f"{sign}{d:02d}.{m:02d}.{s}"


def skymodel_file(sky: str, workdir: str | Path = ".", patch: str | None = None, tag: str = "") -> str:
    """``sky`` as a DP3 text sky model: a radioflow CSV catalogue is converted, with one patch per
    source, or all in the one ``patch`` (one direction: direction-independent calibration)."""
    if not sky.lower().endswith(".csv"):
        if not Path(sky).exists():
            raise UsageError(f"Sky model {sky} (parameter 'sourcedb') does not exist.")
        return sky
    model = read_catalogue(sky)
    lines = ["FORMAT = Name, Type, Patch, Ra, Dec, I, SpectralIndex='[]', LogarithmicSI, ReferenceFrequency='1e8', "
             "MajorAxis, MinorAxis, Orientation", ""]
    for i in range(len(model)):
        name = model.names[i].replace(",", "_").replace(" ", "_")
        ra, dec = math.degrees(model.ra[i]), math.degrees(model.dec[i])
        ra_s, dec_s = _sexagesimal(ra % 360.0, True), _sexagesimal(dec, False)
        if patch is None or i == 0:
            lines.append(f" , , {patch or name}, {ra_s}, {dec_s}")
        gauss = model.major[i] > 0
        maj, mnr = math.degrees(model.major[i]) * 3600, math.degrees(model.minor[i]) * 3600
        shape = f"{maj:.9g}, {mnr:.9g}, {math.degrees(model.pa[i]):.9g}" if gauss else ", , "
        lines.append(f"{name}, {'GAUSSIAN' if gauss else 'POINT'}, {patch or name}, {ra_s}, {dec_s}, {float(model.flux[i])!r}, "
                     f"[{float(model.spectral_index[i])!r}], true, {float(model.ref_freq[i])!r}, {shape}")
    out = Path(workdir) / (f"{tag}{Path(sky).stem}" + (f"-{patch}" if patch else "") + ".skymodel")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    return str(out)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)


def run(keys: dict[str, Any]) -> list[str]:
    """Run DP3 with parset ``keys`` (key -> value); returns the argument list. Output goes to stdout."""
    args = [f"{k}={_text(v)}" for k, v in keys.items() if v is not None]
    argv = [executable(), *args]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in proc.stdout.strip().splitlines()[-3:])
        raise RadioflowError(f"DP3 failed (exit {proc.returncode}) with {' '.join(args)}: {tail}")
    return args


def _check_ms(msin: str) -> str:
    path = msin.removeprefix("file://")
    if not (Path(path) / "table.dat").exists():
        raise UsageError(f"Measurement Set {msin} (parameter 'msin') does not exist.")
    return path


@contextlib.contextmanager
def _staged(msin: str, *, update: bool) -> Iterator[str]:
    """The local MS DP3 runs on for ``msin``: itself when local, else a download of the remote MS,
    published back in its place (atomically) when ``update`` and DP3 succeeded."""
    if not is_staged(msin):
        yield _check_ms(msin)
        return
    if dataset_format(msin) != "ms":
        raise UsageError(f"DP3 reads Measurement Sets only; parameter 'msin' is the Zarr dataset {msin}: convert it "
                         "(radioflow vis convert) or use the built-in rf-* cabs, which read Zarr.")
    with tempfile.TemporaryDirectory(prefix="radioflow-dp3-") as tmp:
        local, _ = stage_ms(msin, Path(tmp), "msin")
        yield local
        if update:
            publish_ms(local, msin)


@contextlib.contextmanager
def _new_ms(msout: str) -> Iterator[str]:
    """Where DP3 writes the new MS ``msout``: itself when local, else a temporary folder whose MS
    is published at the remote ``msout`` when DP3 succeeded."""
    loc = as_location(msout)
    if loc.is_local:
        yield loc.path
        return
    with tempfile.TemporaryDirectory(prefix="radioflow-dp3-") as tmp:
        local = str(Path(tmp) / loc.name)
        yield local
        publish_ms(local, msout)


def _sky(files: Files, sourcedb: str, workdir: str | Path, **kwargs: Any) -> str:
    """A local DP3 sky model for ``sourcedb`` (a remote one downloaded first), written in ``workdir``."""
    return skymodel_file(files.input(sourcedb), workdir, **kwargs)


def dp3(msin: str, steps: list[str] | None = None, msout: str = ".", parset: dict[str, Any] | None = None,
        args: list[str] | None = None) -> dict:
    """DP3 with any parset keys: ``parset`` (key -> value) and ``args`` (``key=value`` strings)."""
    extra: dict[str, Any] = dict(parset or {})
    for arg in args or []:
        if "=" not in arg:
            raise UsageError(f"DP3 argument {arg!r} (parameter 'args') is not key=value.")
        k, v = arg.split("=", 1)
        extra[k] = v
    in_place = msout in (".", "")
    with _staged(msin, update=in_place) as local:
        with contextlib.nullcontext(".") if in_place else _new_ms(msout) as out:
            run({"msin": local, "msout": out, "steps": list(steps or []), **extra})
    return {"ms": msin if in_place else msout}


def _io(msin: str, datacolumn: str, msout: str = ".", outcolumn: str | None = None) -> dict[str, Any]:
    """The input/output keys of a step on the local MS ``msin``."""
    keys: dict[str, Any] = {"msin": msin, "msin.datacolumn": datacolumn, "msout": msout}
    if outcolumn:
        keys["msout.datacolumn"] = outcolumn
    return keys


def aoflagger(msin: str, strategy: str = "generic-default", datacolumn: str = "DATA",
              memoryperc: int = 50) -> dict:
    """Flag with AOFlagger inside DP3 (``flag.type=aoflagger``), in place."""
    strategy_file = resolve_strategy(strategy)
    with _staged(msin, update=True) as local:
        run({**_io(local, datacolumn), "steps": ["flag"], "flag.type": "aoflagger", "flag.strategy": strategy_file,
             "flag.memoryperc": memoryperc})
    say(f"DP3 AOFlagger ({Path(strategy_file).stem}) flagged {msin}")
    return {"msout": msin}


def averager(msin: str, msout: str, timestep: int = 1, freqstep: int = 1, datacolumn: str = "DATA") -> dict:
    """Average into a new MS (``avg.type=averager``)."""
    with _staged(msin, update=False) as local, _new_ms(msout) as out:
        run({**_io(local, datacolumn, out), "msout.overwrite": True, "steps": ["avg"], "avg.type": "averager",
             "avg.timestep": timestep, "avg.freqstep": freqstep})
    say(f"DP3 averaged {msin} by {timestep} × {freqstep} -> {msout}")
    return {"msout": msout}


def ddecal(msin: str, sourcedb: str, h5parm: str, mode: str = "scalarphase", solint: int = 1, nchan: int = 0,
           maxiter: int = 50, tolerance: float = 1e-4, datacolumn: str = "DATA",
           outcolumn: str | None = None) -> dict:
    """Solve gains against a sky model with DDECal into ``h5parm``; with ``outcolumn``, also write corrected data."""
    with cab_files() as files, _staged(msin, update=bool(outcolumn)) as local, \
            tempfile.TemporaryDirectory(prefix="radioflow-dp3-") as tmp:
        h5 = Path(files.output(h5parm))
        if h5.exists():
            h5.unlink()
        workdir = h5.parent if as_location(h5parm).is_local else tmp  # the sky model is not a product
        keys = {**_io(local, datacolumn, ".", outcolumn), "steps": ["cal"], "cal.type": "ddecal",
                "cal.sourcedb": _sky(files, sourcedb, workdir, patch="model", tag=f"{h5.stem}-"),
                "cal.h5parm": str(h5), "cal.mode": mode, "cal.solint": solint, "cal.nchan": nchan,
                "cal.maxiter": maxiter, "cal.tolerance": tolerance}
        if outcolumn:
            keys.update({"cal.onlypredict": False, "cal.subtract": False})
        run(keys)
        url = files.url_of(h5)
    say(f"DP3 DDECal ({mode}) solved {msin} -> {url}")
    return {"h5parm": url}


def predict(msin: str, sourcedb: str, operation: str = "subtract", datacolumn: str = "DATA",
            outcolumn: str = "DATA", parmdb: str | None = None, correction: str = "phase000") -> dict:
    """Predict a sky model and ``replace``/``add``/``subtract`` it (``pre.type=predict``).

    With ``parmdb`` (an h5parm) the model is corrupted by that solution table first
    (``pre.applycal``), so that a source is subtracted from data not yet calibrated.
    """
    if operation not in ("replace", "add", "subtract"):
        raise UsageError(f"Parameter 'operation' must be replace, add or subtract, got {operation!r}.")
    with cab_files() as files, _staged(msin, update=True) as local:
        keys = {**_io(local, datacolumn, ".", outcolumn), "steps": ["pre"], "pre.type": "predict",
                "pre.sourcedb": _sky(files, sourcedb, Path(local).parent, patch="model" if parmdb else None,
                                     tag=f"{Path(local.rstrip('/')).stem}-"),
                "pre.operation": operation}
        if parmdb:
            keys.update({"pre.applycal.parmdb": _h5parm(files, parmdb), "pre.applycal.correction": correction})
        run(keys)
    say(f"DP3 predict ({operation}) of {sourcedb} on {msin}: {datacolumn} -> {outcolumn}")
    return {"msout": msin}


def _h5parm(files: Files, parmdb: str) -> str:
    """A local copy of the h5parm ``parmdb`` (parameter 'parmdb'), downloaded if remote."""
    local = files.input(parmdb)
    if not Path(local).is_file():
        raise UsageError(f"h5parm {parmdb} (parameter 'parmdb') does not exist.")
    return local


def applycal(msin: str, parmdb: str, correction: str = "phase000", solset: str | None = None,
             direction: str | None = None, datacolumn: str = "DATA", outcolumn: str = "CORRECTED_DATA") -> dict:
    """Apply an h5parm solution table (``ac.type=applycal``) into ``outcolumn``."""
    with cab_files() as files:
        table = _h5parm(files, parmdb)
        with _staged(msin, update=True) as local:
            run({**_io(local, datacolumn, ".", outcolumn), "steps": ["ac"], "ac.type": "applycal", "ac.parmdb": table,
                 "ac.correction": correction, "ac.solset": solset, "ac.direction": direction})
    say(f"DP3 applycal {parmdb}:{correction} on {msin}: {datacolumn} -> {outcolumn}")
    return {"msout": msin}
