"""The ``wsclean`` cab: the real WSClean (Debian ``wsclean``) with cult-cargo's parameter names.

Parameters are spelled as in cult-cargo's wsclean cab (``ms``, ``prefix``, ``column``, ``size``,
``scale``, ``weight``, ``multiscale``, ``auto-mask``, ``auto-threshold`` ...), so a Stimela
recipe's wsclean step runs unchanged; the few cult-cargo renames (``prefix`` → ``-name``,
``column`` → ``-data-column``, ``nchan`` → ``-channels-out``, ``threads`` → ``-j``,
``abs-threshold`` → ``-threshold``) are applied here. What the bare binary does not do is done
here too: several Measurement Sets are imaged jointly wherever they are (an ``s3://`` MS is
downloaded, a Zarr dataset converted to a local MS first), and the FITS products go back to where
``prefix`` points (uploaded when it is on S3), each as one whole object.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RadioflowError, UsageError
from ._util import cab_files, is_staged, say, stage_ms

#: cab parameter (Python spelling) -> WSClean option, where cult-cargo renames it (nom_de_guerre)
RENAMED = {"column": "data-column", "nchan": "channels-out", "threads": "j", "abs_threshold": "threshold",
           "verbose": "v"}
#: list parameters WSClean takes as one comma-separated value (cult-cargo's ``repeat: ","``)
COMMA_LISTS = {"pol", "link_polarizations", "multiscale_scales", "spws", "field", "channel_to_node"}
#: product name (cab output) -> WSClean file suffix
PRODUCTS = {"restored": "image", "residual": "residual", "model": "model", "dirty": "dirty", "psf": "psf"}


def executable() -> str:
    """Path of the ``wsclean`` executable."""
    found = shutil.which("wsclean")
    if found is None:
        raise UsageError("The executable 'wsclean' was not found on PATH: install it (Debian/Ubuntu: "
                         "'apt-get install wsclean'), or image with the built-in rf-clean cab.")
    return found


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def command_line(ms: Sequence[str], prefix: str, options: Mapping[str, Any], wsclean: str = "wsclean") -> list[str]:
    """WSClean's argument list for ``options`` (cab parameters in Python spelling, None = unset)."""
    argv = [wsclean]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "-" + RENAMED.get(key, key.replace("_", "-"))
        if value is True:
            argv.append(flag)
        elif key == "size":
            size = [value, value] if isinstance(value, int) else list(value)
            if len(size) != 2:
                raise UsageError(f"Parameter 'size' must be one integer or two (width height), got {value!r}.")
            argv += [flag, *map(str, size)]
        elif key == "weight":
            argv += [flag, *(str(value).split() if isinstance(value, str) else map(_text, value))]
        elif isinstance(value, (list, tuple)):
            items = [_text(v) for v in value]
            argv += [flag, ",".join(items)] if key in COMMA_LISTS else [flag, *items]
        else:
            argv += [flag, _text(value)]
    return [*argv, "-name", prefix, *ms]


def _distinct_names(paths: list[str], staging: Path) -> list[str]:
    """``paths`` with every repeated MS name (``a/obs.ms``, ``b/obs.ms``) linked under a distinct
    name: WSClean names its reordered temporaries after the MS name, so equal names collide."""
    names = [Path(p.rstrip("/")).name for p in paths]
    out = []
    for i, (path, name) in enumerate(zip(paths, names)):
        if names.count(name) > 1:
            link = staging / f"{i:03d}-{name}"
            link.symlink_to(Path(path).resolve(), target_is_directory=True)
            path = str(link)
        out.append(path)
    return out


def wsclean(ms: Sequence[str] | str, prefix: str, size: int | Sequence[int], scale: str | float,
            **options: Any) -> dict[str, Any]:
    """Image ``ms`` (one or several datasets, jointly) with WSClean; FITS products go to ``prefix``.

    Returns the product URLs (``restored``, ``residual``, ``model``, ``dirty``, ``psf`` as made; the
    MFS images when ``nchan`` > 1) and the restored image's peak and residual RMS (MAD).
    """
    from ..science.fits import read_fits_image
    from ..science.quality import mad_sigma

    datasets = [ms] if isinstance(ms, str) else list(ms)
    if not datasets:
        raise UsageError("Parameter 'ms' names no Measurement Set to image.")
    staged_in = [d for d in datasets if is_staged(d)]
    if staged_in and options.get("update_model_required") and not options.get("no_update_model_required"):
        raise UsageError(f"Parameter 'update-model-required': WSClean writes MODEL_DATA into the MS it images, and "
                         f"{staged_in[0]} is imaged as a local copy (a remote MS or a Zarr dataset) that is thrown "
                         "away afterwards; drop the parameter, or predict MODEL_DATA from the model image with the "
                         "rf-predict step, which writes it into a delta overlay beside a Zarr dataset.")
    binary = executable()
    with cab_files() as files, tempfile.TemporaryDirectory(prefix="radioflow-wsclean-") as tmp:
        staging = Path(tmp)
        staged, copied = zip(*(stage_ms(d, staging) for d in datasets))
        local_ms = _distinct_names(list(staged), staging)
        opts = dict(options, size=size, scale=scale)
        if any(copied) and not (opts.get("update_model_required") or opts.get("no_update_model_required")):
            opts["no_update_model_required"] = True          # a staged copy's MODEL_DATA is thrown away
        if opts.get("temp_dir") is None:
            opts["temp_dir"] = str(staging)
        local_prefix = files.output(f"{prefix}-image.fits").removesuffix("-image.fits")
        _run(command_line(list(local_ms), local_prefix, opts, binary))
        mfs = "-MFS" if int(options.get("nchan") or 1) > 1 else ""
        local = {kind: f"{local_prefix}{mfs}-{suffix}.fits" for kind, suffix in PRODUCTS.items()}
        local = {kind: path for kind, path in local.items() if os.path.exists(path)}
        if "restored" not in local:
            raise RadioflowError(f"WSClean wrote no restored image {local_prefix}{mfs}-image.fits (was niter 0 "
                                 "or -make-psf-only given?).")
        restored, _ = read_fits_image(local["restored"])
        residual = read_fits_image(local["residual"])[0] if "residual" in local else restored
        peak, rms = float(np.max(restored)), float(mad_sigma(residual))
    out: dict[str, Any] = {kind: files.url_of(path) for kind, path in local.items()}
    say(f"WSClean imaged {len(datasets)} dataset(s) -> {out['restored']}: peak {peak:.4g} Jy/beam, "
        f"residual RMS {rms:.4g} Jy/beam")
    return {**out, "peak": peak, "residual_rms": rms}


def _run(argv: list[str]) -> None:
    """Run WSClean, its output into the step log; a failure names the command and WSClean's last lines."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        tail = " | ".join(line.strip() for line in proc.stdout.strip().splitlines()[-3:])
        raise RadioflowError(f"WSClean failed (exit {proc.returncode}) with {' '.join(argv[1:])}: {tail}")
