"""CLI: ``simulate``, ``image``, ``vis info`` and ``demo`` (the vertical slice)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError


def _console():
    from rich.console import Console

    return Console(highlight=False)


def simulate(
    output: str = typer.Option(..., "-o", "--output", help="Dataset to write (.ms or .zarr)."),
    telescope: str = typer.Option("ska-low-model", help="Layout: built-in name, name on the layout path, or a file."),
    rmax: Optional[float] = typer.Option(None, help="Keep stations within this distance (m) of the centre."),
    stations: Optional[str] = typer.Option(None, help="Comma-separated station names to keep."),
    ra: float = typer.Option(0.0, help="Phase centre right ascension (deg)."),
    dec: float = typer.Option(-30.0, help="Phase centre declination (deg)."),
    ha_start: float = typer.Option(-30.0, help="First hour angle (deg)."),
    ha_end: float = typer.Option(30.0, help="Last hour angle (deg)."),
    ntimes: int = typer.Option(5, help="Number of time samples over the hour-angle range."),
    start: Optional[str] = typer.Option(None, help="UTC start (ISO); with --duration and --integration instead of hour angles."),
    duration: Optional[float] = typer.Option(None, help="Duration (s) from --start."),
    integration: Optional[float] = typer.Option(None, help="Integration time (s)."),
    freq_min: float = typer.Option(0.9e8, help="First channel frequency (Hz)."),
    freq_max: float = typer.Option(1.1e8, help="Last channel frequency (Hz)."),
    nchan: int = typer.Option(8, help="Number of channels."),
    sky: Optional[Path] = typer.Option(None, help="Sky-model CSV catalogue; default: a random GLEAM-like field."),
    nsources: int = typer.Option(20, help="Random field: number of sources."),
    flux_min: float = typer.Option(0.1, help="Random field: lowest flux (Jy)."),
    flux_max: float = typer.Option(5.0, help="Random field: highest flux (Jy)."),
    radius: float = typer.Option(2.0, help="Random field: radius around the phase centre (deg)."),
    noise_sigma: Optional[float] = typer.Option(None, help="Noise rms per real/imag part (Jy)."),
    sefd: Optional[float] = typer.Option(None, help="System equivalent flux density (Jy) for thermal noise."),
    seed: int = typer.Option(1, help="Random seed (sky and noise)."),
    catalogue: Optional[Path] = typer.Option(None, help="Write the sky model used to this CSV."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
) -> None:
    """Simulate an observation (telescope + observation + sky model) into an MS or Zarr dataset."""
    from ..config import load_config
    from ..resources import check_memory
    from ..science import observation, skymodel, telescopes
    from ..science.simulate import simulate as run_sim
    from ..vis import storage
    from ..vis.io import write_dataset

    if not overwrite and storage.exists(output):
        raise UsageError(f"Output dataset {output} already exists: choose another -o/--output or pass "
                         "--overwrite to replace it.")
    cfg = load_config()
    layout = telescopes.load_layout(telescope, config=cfg)
    names = [s.strip() for s in stations.split(",")] if stations else None
    if rmax is not None or names is not None:
        layout = layout.select(rmax=rmax, names=names)
    for opt, value in (("--ra", ra), ("--dec", dec), ("--ha-start", ha_start), ("--ha-end", ha_end),
                       ("--freq-min", freq_min), ("--freq-max", freq_max), ("--duration", duration),
                       ("--integration", integration), ("--flux-min", flux_min), ("--flux-max", flux_max),
                       ("--radius", radius), ("--noise-sigma", noise_sigma), ("--sefd", sefd), ("--rmax", rmax)):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"{opt} must be a finite number, got {value}.")
    if start is not None and duration and integration and duration > 0 and integration > 0:
        ntimes = max(1, int(round(min(duration / integration, 1e18))))
    nbase = layout.n * (layout.n - 1) // 2
    # checked before any time or channel array is made: --ntimes 100000000 must not compute 1e8 hour angles
    check_memory(max(ntimes, 1) * nbase * max(nchan, 1) * 4 * (8 + 4 + 1) * 2,
                 f"Simulating {max(ntimes, 1) * nbase * max(nchan, 1):,} visibilities",
                 "Reduce --ntimes (or --duration/--integration), --nchan or the array (--rmax), or simulate in pieces.")
    obs = observation.make_observation(
        ra=math.radians(ra), dec=math.radians(dec), layout=layout, freq_min=freq_min, freq_max=freq_max,
        nchan=nchan, ha_range=(math.radians(ha_start), math.radians(ha_end)), ntimes=ntimes,
        start=start, duration=duration, integration=integration,
    )
    if sky is not None:
        model = skymodel.read_catalogue(sky)
    else:
        model = skymodel.random_field(obs.ra, obs.dec, radius=math.radians(radius), nsources=nsources,
                                      flux_min=flux_min, flux_max=flux_max,
                                      ref_freq=float(obs.frequencies.mean()), seed=seed)
    con = _console()
    nvis = obs.times.size * layout.n * (layout.n - 1) // 2 * obs.frequencies.size
    # four correlations of complex64 data, float32 weights and flags, written once more
    check_memory(nvis * 4 * (8 + 4 + 1) * 2, f"Simulating {nvis:,} visibilities",
                 "Reduce --ntimes, --nchan or the array (--rmax), or simulate in pieces.")
    with con.status(f"Simulating {layout.n} stations × {obs.times.size} times × {nchan} channels, {len(model)} sources"):
        ds = run_sim(layout, obs, model, noise_sigma=noise_sigma, sefd=sefd, seed=seed)
        out = write_dataset(ds, output, overwrite=True)
    if catalogue is not None:
        skymodel.write_catalogue(model, catalogue)
    con.print(f"Wrote {out}: {nvis:,} visibilities ({layout.name}, {layout.n} stations).")


def image(ctx: typer.Context) -> None:
    """Image like WSClean: DATASET -size W [H] -scale 1.5asec [-weight natural|uniform|briggs R] [-name PREFIX] [-data-column DATA] [-j N] [-weighting-rank-filter 3] [-weight-combination wsclean|optimal] [-chunk-mem MB] [-no-psf]; with -niter N also CLEAN (-gain, -mgain, -threshold, -auto-threshold, -auto-mask, -multiscale[-scales], -nmiter), streamed over chunks; -channels-out N [-join-channels [-fit-spectral-pol T]] for N output channels and the MFS image (joined: Hogbom or -multiscale); -update-model-required (with -niter N) then writes the CLEAN model's visibilities to the MS's MODEL_DATA (streamed, each output channel from its group's model; XX = YY = I as WSClean), which is otherwise never written."""
    from .wsclean_args import parse_image_args

    args = parse_image_args(list(ctx.args))
    _check_image_memory(args)
    paths = make_clean_image(args) if args.niter > 0 or args.channels_out > 1 else make_dirty_image(args)
    con = _console()
    for p in paths:
        con.print(f"Wrote {p}")


def _load_for_imaging(url: str, column: str):
    """The dataset in memory: a local MS is read eagerly with only the column imaged (fastest)."""
    from ..vis.io import format_of, open_dataset
    from ..vis.location import as_location

    loc = as_location(url)
    if format_of(loc) == "ms" and loc.is_local:
        from ..vis.ms import read_ms

        for pair in (["XX", "YY"], ["RR", "LL"]):  # Stokes I needs only the parallel hands
            try:
                return read_ms(loc.path, columns=[column], correlations=pair)
            except UsageError as exc:
                if "cannot select" not in str(exc) and "evenly spaced" not in str(exc):
                    raise
        return read_ms(loc.path, columns=[column])
    return open_dataset(loc).load()


def _check_image_memory(args) -> None:
    """The padded uv grids (complex128 work arrays of ducc0, dirty and PSF) must fit before any read."""
    from ..resources import check_memory

    nx, ny = args.size
    check_memory(nx * ny * 1.44 * 16 * 4, f"An image of -size {nx} {ny}",
                 "Choose a smaller -size (or a larger -scale for the same field of view).")


def _memory_budget(args) -> int:
    """Bytes imaging may hold: WSClean's ``-abs-mem`` GB, else half the machine's memory."""
    import os

    if args.abs_mem:
        return int(args.abs_mem * 2**30)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


#: Default bytes of visibilities in memory at a time (``-chunk-mem``): Stokes I samples
#: gathered for one gridding call (4.6 M visibilities for a dirty image, 3.2 M with its PSF);
#: larger data stream through it, so memory stays flat whatever the number of visibilities.
#: Chosen so that a 2048² dirty image peaks below WSClean's memory (299 vs 305 MB at 23 M
#: visibilities) while each call still amortises ducc0's FFTs (0.39× WSClean's wall time).
DEFAULT_CHUNK_BYTES = 40 * 2**20
#: Bytes of Stokes I (sample, weight and UVW share) a visibility takes in the gridding buffer;
#: a dirty image without PSF keeps only the weighted sample (and UVW share).
BUFFER_BYTES_PER_VISIBILITY = 13
DIRTY_ONLY_BYTES_PER_VISIBILITY = 9
#: Largest read (both hands as stored) between gridding calls on one machine.
READ_BYTES = 8 * 2**20


def _chunk_budget(args) -> int:
    """Bytes of one chunk: ``-chunk-mem`` MB, else the default, never above an eighth of the budget."""
    if args.chunk_mem is not None:
        if args.chunk_mem <= 0:
            raise UsageError(f"-chunk-mem must be a positive number of MB, got {args.chunk_mem:g}.")
        return max(1, int(args.chunk_mem * 2**20))
    return max(1, min(DEFAULT_CHUNK_BYTES, _memory_budget(args) // 8))


def _chunk_source(args):
    """``(chunks, (centre, bandwidth, ra, dec))``: a local MS as numpy row ranges (no xarray), any
    other dataset (Zarr, S3) as time chunks."""
    from ..vis.location import as_location, format_of

    loc = as_location(args.dataset)
    if format_of(loc) == "ms" and loc.is_local:
        from ..vis.ms_hands import MSRowChunks

        read = _chunk_budget(args) if args.backend == "dask" else min(READ_BYTES, _chunk_budget(args))
        ms_source = MSRowChunks.plan(str(loc.path), column=args.data_column, max_bytes=read)
        return ms_source, ms_source.band_and_centre()
    from ..science.image_dataset import band_and_centre
    from ..vis.chunks import TimeChunks

    source = TimeChunks.plan(args.dataset, column=args.data_column, max_bytes=_chunk_budget(args))
    return source, band_and_centre(source.lazy())


def make_dirty_image(args) -> list[Path]:
    """Dirty image and PSF streamed over chunks of the dataset (bounded memory; one chunk when the
    data fit ``-chunk-mem``), on Dask with -b dask; returns the files written."""
    from ..science.fits import write_fits_image, write_png_preview
    from ..science.streaming import GridSpec, stream_dirty_image

    nx, ny = args.size
    source, (centre, bandwidth, ra, dec) = _chunk_source(args)
    # The PSF grids beside the dirty image (8-13 % faster) only when the data come in one chunk:
    # streamed, a second uv grid at a time would undo the memory the chunks save.
    spec = GridSpec(npix_x=nx, npix_y=ny, cell=args.scale, column=args.data_column, epsilon=args.epsilon,
                    nthreads=args.threads, combination=args.weight_combination, psf_beside=len(source) == 1,
                    batch_visibilities=_chunk_budget(args) // (DIRTY_ONLY_BYTES_PER_VISIBILITY if args.no_psf
                                                               else BUFFER_BYTES_PER_VISIBILITY),
                    accumulate_double=False)  # half the uv grid's memory; ~1e-6 of the peak (inside epsilon)
    backend = None
    if args.backend == "dask":
        from ..backends import get_backend
        from ..config import load_config

        backend = get_backend("dask", load_config())
    try:
        client = getattr(backend, "client", None)
        img = stream_dirty_image(source, spec, weighting=args.weight, robust=args.robust,
                                 rank_filter_level=args.rank_filter_level, rank_filter_size=args.rank_filter_size,
                                 make_psf=not args.no_psf, client=client)
    except ValueError as exc:
        raise UsageError(f"Cannot image {args.dataset}: {exc}.") from None
    finally:
        if backend is not None:
            backend.close()
    hist = [f"radioflow image {args.dataset} size={nx}x{ny} weight={args.weight} "
            f"weight-combination={args.weight_combination} streamed in {img.chunks} chunks"]
    written: list[Path] = []
    for kind, data in (("dirty", img.dirty), ("psf", img.psf)):
        if data is None:
            continue
        path = write_fits_image(f"{args.name}-{kind}.fits", data, ra=ra, dec=dec, cell_x=args.scale,
                                cell_y=args.scale, freq=centre, bandwidth=bandwidth, history=hist)
        written.append(path)
        if not args.no_png:
            written.append(write_png_preview(path))
    return written


#: Bytes of visibilities a streamed CLEAN loads at once (capped by the -abs-mem budget / 8).
CLEAN_CHUNK_BYTES = 128 * 2**20


def make_clean_image(args) -> list[Path]:
    """``radioflow image -niter N`` / ``-channels-out N``: CLEAN streamed over chunks of the dataset
    (bounded memory; on Dask with -b dask) and WSClean's products NAME[-0000|-MFS]-dirty/-psf/-model/
    -residual/-image.fits."""
    from ..science.stream_clean import stream_clean
    from ..science.streaming import GridSpec
    from ..vis.chunks import TimeChunks

    nx, ny = args.size
    model_ms = _model_data_target(args) if args.update_model else None
    source = TimeChunks.plan(args.dataset, column=args.data_column,
                             max_bytes=min(CLEAN_CHUNK_BYTES, _memory_budget(args) // 8))
    lazy = source.lazy()
    freq = lazy["frequency"].values
    spec = GridSpec(npix_x=nx, npix_y=ny, cell=args.scale, column=args.data_column, epsilon=args.epsilon,
                    nthreads=args.threads)
    backend = None
    if args.backend == "dask":
        from ..backends import get_backend
        from ..config import load_config

        backend = get_backend("dask", load_config())
    try:
        client = getattr(backend, "client", None)
        with _console().status(f"Cleaning over {len(source)} chunks" + (" on Dask" if client else "")):
            cube = stream_clean(source, spec, nchan=freq.size, freq=freq, channels_out=args.channels_out,
                                join_channels=args.join_channels, weighting=args.weight, robust=args.robust,
                                rank_filter_level=args.rank_filter_level, rank_filter_size=args.rank_filter_size,
                                auto_mask=args.auto_mask, spectral_terms=args.fit_spectral_pol, client=client,
                                temp_dir=args.temp_dir, **args.clean_options())
    finally:
        if backend is not None:
            backend.close()
    written = _write_clean_products(args, cube, lazy, freq)
    if args.niter > 0:
        _console().print(f"CLEAN: {cube.niter} components in {cube.nmajor} major cycles ({cube.stop_reason}).")
    if model_ms is not None:
        _write_model_data(args, model_ms, cube.model, freq.size, spec)
    return written


def _model_data_target(args) -> str:
    """The local MS whose MODEL_DATA ``-update-model-required`` writes (checked before any CLEAN)."""
    from ..vis.location import as_location, format_of

    loc = as_location(args.dataset)
    if format_of(loc) != "ms" or not loc.is_local:
        raise UsageError(f"-update-model-required writes MODEL_DATA into a local Measurement Set; {args.dataset} is "
                         "a Zarr dataset or in object storage, which radioflow image does not update: image it "
                         "without -update-model-required, then predict MODEL_DATA from its -model.fits image with the "
                         "rf-predict step, which writes it into a delta overlay beside a Zarr dataset.")
    return str(loc.path)


def _write_model_data(args, path: str, model, nchan: int, spec) -> None:
    """``-update-model-required``: the final CLEAN model's visibilities into MODEL_DATA, row range by row range."""
    from ..science.model_column import MODEL_CHUNK_BYTES, write_model_data
    from ..science.stream_clean import channel_groups

    groups = channel_groups(nchan, args.channels_out)
    budget = min(MODEL_CHUNK_BYTES, _memory_budget(args) // 8)
    with _console().status(f"Predicting the CLEAN model into {path} MODEL_DATA"):
        rows = write_model_data(path, model, groups, spec, max_bytes=budget)
    _console().print(f"Wrote MODEL_DATA of {path}: the CLEAN model predicted into {rows:,} rows.")


def _write_clean_products(args, cube, lazy, freq) -> list[Path]:
    """One set of WSClean's files per output channel group, then the MFS set (or just one set)."""
    import numpy as np

    from ..science.fits import write_fits_image, write_png_preview
    from ..science.image_dataset import band_and_centre
    from ..science.major_cycle import mfs_combine
    from ..science.stream_clean import channel_groups, group_frequencies

    nx, ny = args.size
    centre, bandwidth, ra, dec = band_and_centre(lazy)
    width = lazy["CHANNEL_WIDTH"].values if "CHANNEL_WIDTH" in lazy else np.zeros(freq.size)
    hist = [f"radioflow image {args.dataset} size={nx}x{ny} weight={args.weight} niter={args.niter} "
            f"channels-out={args.channels_out}", f"{cube.niter} components in {cube.nmajor} major cycles "
            f"({cube.stop_reason})"]
    kinds = ("dirty", "psf", "model", "residual", "image") if args.niter > 0 else ("dirty", "psf")
    units = {"model": "JY/PIXEL"}
    sets = []
    if args.channels_out > 1:
        bands = group_frequencies(freq, width, channel_groups(freq.size, args.channels_out))
        for g, (f, bw) in enumerate(bands):
            images = dict(dirty=cube.dirty[g], psf=cube.psf[g], model=cube.model[g], residual=cube.residual[g],
                          image=cube.restored[g])
            sets.append((f"{args.name}-{g:04d}", images, cube.beams[g], f, bw, float(cube.weights[g])))
    m = cube.mfs
    images = dict(dirty=mfs_combine(cube.dirty, cube.weights), psf=m.psf, model=m.model, residual=m.residual,
                  image=m.restored)
    prefix = f"{args.name}-MFS" if args.channels_out > 1 else args.name
    sets.append((prefix, images, m.beam, centre, bandwidth, float(cube.weights.sum())))
    written: list[Path] = []
    for prefix, images, beam, f, bw, weight in sets:
        extra = {"WSCIMGWG": weight, "WSCMINOR": cube.niter, "WSCMAJOR": cube.nmajor}
        for kind in kinds:
            path = write_fits_image(f"{prefix}-{kind}.fits", images[kind], ra=ra, dec=dec, cell_x=args.scale,
                                    cell_y=args.scale, freq=f, bandwidth=bw, bunit=units.get(kind, "JY/BEAM"),
                                    beam=None if kind == "dirty" else beam, history=hist, extra=extra)
            written.append(path)
            if not args.no_png and kind in ("image", "residual") and prefix == sets[-1][0]:
                written.append(write_png_preview(path))
    return written


def vis_info(dataset: str = typer.Argument(..., help="Dataset URL or path (.ms or .zarr).")) -> None:
    """Summarise a visibility dataset."""
    from rich.table import Table

    from ..vis.io import open_dataset

    ds = open_dataset(dataset)
    freq = ds["frequency"].values
    ra, dec = ds.attrs["phase_center"]
    flagged = float(ds["FLAG"].mean().values) if ds["FLAG"].size else 0.0
    table = Table(title=dataset, show_header=False)
    rows = [
        ("telescope", str(ds.attrs.get("telescope_name", ""))),
        ("field", f"{ds.attrs.get('field_name', '')}  RA {math.degrees(ra) % 360:.6f}°  Dec {math.degrees(dec):.6f}°"),
        ("antennas", str(ds.sizes["antenna"])),
        ("baselines", str(ds.sizes["baseline"])),
        ("times", f"{ds.sizes['time']} (integration {ds.attrs.get('integration_time', 0):.1f} s)"),
        ("channels", f"{freq.size}: {freq.min() / 1e6:.3f}–{freq.max() / 1e6:.3f} MHz"),
        ("correlations", " ".join(str(p) for p in ds["polarization"].values)),
        ("visibilities", f"{ds['VISIBILITY'].size:,}"),
        ("data variables", ", ".join(str(v) for v in ds.data_vars)),
        ("flagged", f"{100 * flagged:.2f} %"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    _console().print(table)


def demo(
    out: Path = typer.Option(Path("./radioflow-data/demo"), help="Where the products go."),
) -> None:
    """The vertical slice on embedded defaults: simulate SKA-Low (SDP batch-imaging settings) and image it."""
    from .wsclean_args import ImageArgs

    out.mkdir(parents=True, exist_ok=True)
    ms = out / "ska-low.ms"
    simulate(output=str(ms), telescope="ska-low-model", rmax=750.0, stations=None, ra=0.0, dec=-30.0,
             ha_start=-30.0, ha_end=30.0, ntimes=5, start=None, duration=None, integration=None,
             freq_min=0.9e8, freq_max=1.1e8, nchan=8, sky=None, nsources=20, flux_min=0.1, flux_max=5.0,
             radius=2.0, noise_sigma=None, sefd=None, seed=1, catalogue=out / "sky.csv", overwrite=True)
    args = ImageArgs(dataset=str(ms), size=(512, 512), scale=math.radians(60 / 3600), name=str(out / "ska-low"))
    for p in make_dirty_image(args):
        _console().print(f"Wrote {p}")


def register(app: typer.Typer, vis_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command()(simulate)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["--help"]})(image)
    vis_app.command("info")(vis_info)
    app.command()(demo)
