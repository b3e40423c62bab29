"""WSClean-style argument parsing for ``radioflow image``: ``-size N [M]``, ``-weight briggs R``.

Typer options take a fixed number of values; WSClean's take a variable number, so
``radioflow image`` parses its own arguments here. Both ``-opt`` and ``--opt`` are accepted.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..errors import UsageError

_ANGLE_UNITS = {
    "asec": math.pi / 180 / 3600, "arcsec": math.pi / 180 / 3600, "mas": math.pi / 180 / 3.6e6,
    "amin": math.pi / 180 / 60, "arcmin": math.pi / 180 / 60, "deg": math.pi / 180, "rad": 1.0, "": math.pi / 180,
}


def parse_angle(text: str, what: str = "angle") -> float:
    """``1.5asec``, ``2amin``, ``0.01deg``, ``1e-5rad`` (bare numbers are degrees, as in WSClean) → radians."""
    m = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _ANGLE_UNITS:
        raise UsageError(f"Cannot read {what} '{text}': use a number with a unit asec, amin, deg, mas or rad (e.g. 1.5asec).")
    value = float(m.group(1)) * _ANGLE_UNITS[m.group(2).lower()]
    if value <= 0:
        raise UsageError(f"{what} must be positive, got '{text}'.")
    return value


@dataclass
class ImageArgs:
    """Parsed ``radioflow image`` arguments."""

    dataset: str = ""
    size: tuple[int, int] = (0, 0)
    scale: float = 0.0
    weight: str = "natural"
    robust: float = 0.0
    name: str = "radioflow"
    data_column: str = "DATA"
    threads: int = 0
    epsilon: float = 1e-5
    rank_filter_level: float = 3.0
    rank_filter_size: int = 16
    no_png: bool = False
    no_psf: bool = False
    niter: int = 0
    gain: float = 0.1
    mgain: float = 1.0
    threshold: float = 0.0
    auto_threshold: float | None = None
    auto_mask: float | None = None
    multiscale: bool = False
    multiscale_scales: list[float] | None = None
    multiscale_scale_bias: float = 0.6
    nmiter: int = 20
    abs_mem: float | None = None
    channels_out: int = 1
    join_channels: bool = False
    fit_spectral_pol: int = 0
    temp_dir: str | None = None
    chunk_mem: float | None = None
    weight_combination: str = "wsclean"
    update_model: bool = False
    backend: str = "local"
    extra: list[str] = field(default_factory=list)

    def clean_options(self) -> dict[str, object]:
        """Keyword arguments of :func:`radioflow.science.deconvolve.clean` (WSClean's meanings)."""
        return dict(algorithm="multiscale" if self.multiscale else "hogbom", scales=self.multiscale_scales,
                    scale_bias=self.multiscale_scale_bias, niter=self.niter, gain=self.gain, mgain=self.mgain,
                    threshold=self.threshold, auto_threshold=self.auto_threshold, nmajor=self.nmiter,
                    beam_fit="wsclean")


def _int(text: str, opt: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"Option {opt} expects an integer, got '{text}'.") from None


def _float(text: str, opt: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"Option {opt} expects a number, got '{text}'.") from None


def _nonneg_float(text: str, opt: str) -> float:
    value = _float(text, opt)
    if not value >= 0:
        raise UsageError(f"Option {opt} must be >= 0, got '{text}'.")
    return value


#: WSClean's numeric CLEAN options: option -> (ImageArgs field, parser).
_CLEAN_NUMBERS = {
    "niter": ("niter", _int), "gain": ("gain", _float), "mgain": ("mgain", _float),
    "threshold": ("threshold", _nonneg_float), "auto-threshold": ("auto_threshold", _nonneg_float),
    "auto-mask": ("auto_mask", _nonneg_float), "multiscale-scale-bias": ("multiscale_scale_bias", _float),
    "nmiter": ("nmiter", _int), "abs-mem": ("abs_mem", _nonneg_float), "channels-out": ("channels_out", _int),
    "fit-spectral-pol": ("fit_spectral_pol", _int),
}
#: WSClean options that are recognised but not built yet: a clear error, never silently ignored.
_UNSUPPORTED = {
    "taper-gaussian": "no uv taper",
}


def _check_clean(args: ImageArgs) -> None:
    if args.niter < 0:
        raise UsageError(f"-niter must be >= 0, got {args.niter}.")
    if not 0 < args.gain <= 1:
        raise UsageError(f"-gain must be in (0, 1], got {args.gain}.")
    if not 0 < args.mgain <= 1:
        raise UsageError(f"-mgain must be in (0, 1], got {args.mgain}.")
    if args.nmiter < 1:
        raise UsageError(f"-nmiter must be at least 1, got {args.nmiter}.")
    if args.channels_out < 1:
        raise UsageError(f"-channels-out must be at least 1, got {args.channels_out}.")
    if args.fit_spectral_pol < 0:
        raise UsageError(f"-fit-spectral-pol must be >= 0 terms, got {args.fit_spectral_pol}.")
    if args.fit_spectral_pol and not args.join_channels:
        raise UsageError("-fit-spectral-pol fits joined components: it needs -join-channels.")
    if args.update_model and args.niter == 0:
        raise UsageError("-update-model-required writes the CLEAN model's visibilities to MODEL_DATA, so it needs "
                         "-niter N > 0 (at -niter 0 there is no model; WSClean then writes no MODEL_DATA either).")
    if args.auto_mask is not None and args.auto_threshold is not None and args.auto_mask < args.auto_threshold:
        raise UsageError(f"-auto-mask ({args.auto_mask}) must not be below -auto-threshold ({args.auto_threshold}).")


def parse_image_args(argv: list[str]) -> ImageArgs:
    """Parse WSClean-like arguments; the dataset is the one positional argument."""
    args = ImageArgs()
    positional: list[str] = []
    i = 0

    def take(opt: str) -> str:
        nonlocal i
        if i + 1 >= len(argv):
            raise UsageError(f"Option {opt} needs a value.")
        i += 1
        return argv[i]

    def is_number(s: str) -> bool:
        return bool(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s))

    while i < len(argv):
        tok = argv[i]
        opt = tok.lstrip("-").replace("_", "-").lower() if tok.startswith("-") and not is_number(tok) else None
        if opt is None:
            positional.append(tok)
        elif opt == "size":
            nx = _int(take(tok), tok)
            ny = _int(argv[i + 1], tok) if i + 1 < len(argv) and argv[i + 1].isdigit() else nx
            if i + 1 < len(argv) and argv[i + 1].isdigit():
                i += 1
            args.size = (nx, ny)
        elif opt == "scale":
            args.scale = parse_angle(take(tok), "pixel scale (-scale)")
        elif opt == "weight":
            scheme = take(tok).lower()
            if scheme not in ("natural", "uniform", "briggs"):
                raise UsageError(f"Unknown weighting '{scheme}' for {tok}: use natural, uniform or briggs ROBUST.")
            args.weight = scheme
            if scheme == "briggs":
                args.robust = _float(take(tok), f"{tok} briggs")
        elif opt == "name":
            args.name = take(tok)
        elif opt == "data-column":
            args.data_column = take(tok).upper()
        elif opt in ("threads", "j"):
            args.threads = _int(take(tok), tok)
        elif opt in ("epsilon", "wgridder-accuracy"):
            args.epsilon = _float(take(tok), tok)
        elif opt == "weighting-rank-filter":
            args.rank_filter_level = _float(take(tok), tok)
        elif opt == "weighting-rank-filter-size":
            args.rank_filter_size = _int(take(tok), tok)
        elif opt == "weight-combination":
            args.weight_combination = take(tok).lower()
            if args.weight_combination not in ("wsclean", "optimal"):
                raise UsageError(f"Option {tok} {args.weight_combination}: use wsclean (4·min(w_XX, w_YY), "
                                 "WSClean's Stokes I weight) or optimal (the inverse variance of (XX+YY)/2).")
        elif opt == "chunk-mem":
            args.chunk_mem = _nonneg_float(take(tok), tok)
        elif opt == "no-png":
            args.no_png = True
        elif opt == "no-psf":
            args.no_psf = True
        elif opt in _CLEAN_NUMBERS:
            name, kind = _CLEAN_NUMBERS[opt]
            setattr(args, name, kind(take(tok), tok))
        elif opt == "join-channels":
            args.join_channels = True
        elif opt in ("update-model-required", "no-update-model-required"):
            args.update_model = opt == "update-model-required"  # the last one given wins, as in WSClean
        elif opt == "temp-dir":
            args.temp_dir = take(tok)
        elif opt == "multiscale":
            args.multiscale = True
        elif opt == "multiscale-scales":
            args.multiscale = True
            args.multiscale_scales = [_float(v, tok) for v in take(tok).split(",") if v.strip()]
        elif opt in ("b", "backend"):
            args.backend = take(tok).lower()
            if args.backend not in ("local", "dask"):
                raise UsageError(f"Option {tok} {args.backend}: radioflow image runs locally or on Dask (-b dask).")
        elif opt == "pol":
            pol = take(tok).upper()
            if pol != "I":
                raise UsageError(f"Option {tok} {pol}: radioflow image makes Stokes I only (-pol I).")
        elif opt in _UNSUPPORTED:
            raise UsageError(f"Option {tok} is a WSClean option radioflow image does not support yet ({_UNSUPPORTED[opt]}).")
        else:
            raise UsageError(
                f"Unknown option {tok} for 'radioflow image' (known: --size N [M], --scale ANGLE, "
                "--weight natural|uniform|briggs R, --weighting-rank-filter LEVEL, --weighting-rank-filter-size N, "
                "--name PREFIX, --data-column COL, --threads N, --epsilon E, --no-png, --no-psf, -niter N, -gain G, "
                "-mgain G, -threshold JY, -auto-threshold S, -auto-mask S, -multiscale, -multiscale-scales LIST, "
                "-multiscale-scale-bias B, -nmiter N, -channels-out N, -join-channels, -fit-spectral-pol T, -temp-dir DIR, "
                "-update-model-required, -no-update-model-required, -pol I, -abs-mem GB, -chunk-mem MB, -weight-combination wsclean|optimal, "
                "-b local|dask)."
            )
        i += 1
    if len(positional) != 1:
        raise UsageError(f"'radioflow image' needs exactly one dataset, got {len(positional)}: {' '.join(positional) or 'none'}.")
    args.dataset = positional[0]
    nx, ny = args.size
    if nx <= 0 or ny <= 0 or nx % 2 or ny % 2 or min(nx, ny) < 32:
        raise UsageError(f"--size must be even and at least 32 pixels, got {nx} {ny}.")
    if args.scale <= 0:
        raise UsageError("--scale is required (e.g. --scale 1.5asec).")
    if args.scale * max(nx, ny) > math.pi:
        raise UsageError(f"--scale × --size spans {math.degrees(args.scale * max(nx, ny)):.3g}° — more than "
                         "the 180° of a hemisphere: give a smaller --scale (e.g. 1.5asec) or --size.")
    if max(nx, ny) > 65536:
        raise UsageError(f"--size {nx} {ny} is larger than 65536 pixels a side.")
    if args.epsilon < 1e-12 or args.epsilon >= 0.1:
        raise UsageError(f"--epsilon must be between 1e-12 and 0.1, got {args.epsilon}.")
    _check_clean(args)
    if args.rank_filter_size < 1:
        raise UsageError(f"--weighting-rank-filter-size must be at least 1, got {args.rank_filter_size}.")
    return args
