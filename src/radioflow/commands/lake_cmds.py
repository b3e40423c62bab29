"""CLI: ``radioflow lake ingest|search|get`` (the local datalake or Rucio; see radioflow.ops.lake)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import UsageError

#: columns of the table output (all ObsCore columns go to JSON and VOTable).
_TABLE_COLUMNS = ("did", "dataproduct_type", "calib_level", "s_ra", "s_dec", "t_min", "em_min", "em_max",
                  "access_estsize")


def _root(root: Optional[Path]) -> Path:
    """The lake root: the option, else config ``lake.root`` (``RADIOFLOW_LAKE__ROOT``), else ``.``."""
    if root is not None:
        return root
    from ..config import load_config

    configured = (load_config().get("lake") or {}).get("root")
    return Path(configured) if configured else Path(".")


def _lake_settings(backend: Optional[str], rse: Optional[str]) -> tuple[str, Optional[str]]:
    """Backend and RSE: the options, else config ``lake.backend`` / ``lake.rse``, else local."""
    from ..config import load_config
    from ..ops.lake.backend import check_backend

    cfg = load_config().get("lake") or {}
    return check_backend(backend or cfg.get("backend") or "local"), rse or cfg.get("rse")


def _backend_errors(backend: str) -> Any:
    """Rucio's errors as clear messages (a no-op context for the local lake)."""
    import contextlib

    if backend != "rucio":
        return contextlib.nullcontext()
    from ..ops.lake.rucio_lake import rucio_errors

    return rucio_errors()


_LAKE_HELP = "Lake backend: local (SQLite catalogue) or rucio (config lake.backend; Rucio's own rucio.cfg)."
_RSE_HELP = "Rucio storage element for replicas (config lake.rse)."


def _mjd(text: Optional[str], option: str) -> Optional[float]:
    """MJD from a number or an ISO UTC time."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    from astropy.time import Time

    try:
        return float(Time(text, scale="utc").mjd)
    except ValueError:
        raise UsageError(f"{option} '{text}' is neither an MJD nor an ISO time (2020-04-26T16:36).") from None


def ingest(
    root: Path = typer.Argument(..., help="Lake root holding staging/<namespace>/ (processed/, failed_processing/ "
                                          "and catalogue.db are made beside it)."),
    watch: bool = typer.Option(False, "--watch", help="Keep ingesting every --interval seconds until interrupted."),
    interval: float = typer.Option(5.0, help="Seconds between passes with --watch."),
    settle: float = typer.Option(2.0, help="A product and its .meta must be unchanged this long (s)."),
    incomplete_timeout: float = typer.Option(3600.0, help="A product still incomplete after this long (s) fails."),
    throttle: float = typer.Option(0.0, help="Pause (s) after each product, to spare the storage."),
    rse_url: Optional[str] = typer.Option(None, "--rse-url", help="Replicas on S3 under this s3://bucket/prefix "
                                                                  "(credentials from the AWS variables or config)."),
    lake_backend: Optional[str] = typer.Option(None, "--lake", help=_LAKE_HELP),
    rse: Optional[str] = typer.Option(None, "--rse", help=_RSE_HELP),
) -> None:
    """Ingest products with a .meta from ROOT/staging/<namespace>/ into the local lake or Rucio."""
    from ..ops.lake.ingest import Ingestor, IngestReport

    backend, rse = _lake_settings(lake_backend, rse)
    ing = Ingestor(root, settle=settle, incomplete_timeout=incomplete_timeout, throttle=throttle, rse_url=rse_url,
                   backend=backend, rse=rse)

    def show(report: IngestReport) -> None:
        for did, reason in report.failed:
            typer.echo(f"failed   {did}: {reason}")
        for did, reason in report.waiting:
            typer.echo(f"waiting  {did}: {reason}")
        typer.echo(f"ingest {root}: {report.summary()}")

    with _backend_errors(backend):
        if watch:
            try:
                ing.watch(interval=interval, on_pass=show)
            except KeyboardInterrupt:
                typer.echo("stopped")
        else:
            show(ing.run_once())


def search(
    root: Optional[Path] = typer.Option(None, "--root", help="Lake root (default: config lake.root, else .)."),
    ra: Optional[float] = typer.Option(None, help="Cone centre right ascension (deg)."),
    dec: Optional[float] = typer.Option(None, help="Cone centre declination (deg)."),
    radius: Optional[float] = typer.Option(None, help="Cone radius (deg)."),
    dataproduct_type: Optional[str] = typer.Option(None, "--type", help="image, visibility, cube, ..."),
    calib_level: Optional[int] = typer.Option(None, help="ObsCore calibration level (0-4)."),
    start: Optional[str] = typer.Option(None, help="Observed at or after this time (MJD or ISO UTC)."),
    end: Optional[str] = typer.Option(None, help="Observed at or before this time (MJD or ISO UTC)."),
    freq_min: Optional[float] = typer.Option(None, help="Band reaches at least this frequency (Hz)."),
    freq_max: Optional[float] = typer.Option(None, help="Band starts at or below this frequency (Hz)."),
    namespace: Optional[str] = typer.Option(None, help="Only this namespace."),
    obs_id: Optional[str] = typer.Option(None, help="Only this observation."),
    limit: Optional[int] = typer.Option(None, "-n", "--limit", help="At most this many rows."),
    fmt: str = typer.Option("table", "--format", help="table, json or votable."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of stdout."),
    lake_backend: Optional[str] = typer.Option(None, "--lake", help=_LAKE_HELP),
    rse: Optional[str] = typer.Option(None, "--rse", help=_RSE_HELP),
) -> None:
    """Find data products by position, type, calibration level, time and frequency."""
    from ..ops.lake.backend import open_lake
    from ..ops.lake.catalogue import CATALOGUE_NAME, Query

    if fmt not in ("table", "json", "votable"):
        raise UsageError(f"--format {fmt}: use table, json or votable.")
    backend, rse = _lake_settings(lake_backend, rse)
    lake = _root(root)
    if backend == "local" and not (lake / CATALOGUE_NAME).is_file():
        raise UsageError(f"{lake} is not a lake (no {CATALOGUE_NAME}); ingest into it first or give --root.")
    q = Query(ra=ra, dec=dec, radius=radius, dataproduct_type=dataproduct_type, calib_level=calib_level,
              t_start=_mjd(start, "--start"), t_end=_mjd(end, "--end"), freq_min=freq_min, freq_max=freq_max,
              namespace=namespace, obs_id=obs_id)
    with _backend_errors(backend):
        cat = open_lake(lake if backend == "local" else None, backend, rse)
        try:
            rows = cat.search(q, limit=limit)
        finally:
            cat.close()
    if fmt == "json":
        _emit(json.dumps(rows, indent=2), output)
    elif fmt == "votable":
        _write_votable(rows, output)
    else:
        _emit(_table(rows), output)


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        typer.echo(text)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(output)


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(_TABLE_COLUMNS) + (["distance"] if rows and "distance" in rows[0] else [])

    def cell(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else str(v))

    cells = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.append(f"{len(rows)} product(s)")
    return "\n".join(lines)


def _write_votable(rows: list[dict[str, Any]], output: Optional[Path]) -> None:
    """An ObsCore VOTable (astropy) that pyvo and TOPCAT load."""
    import io

    from ..ops.lake.votable import obscore_table

    table = obscore_table(rows)
    if output is None:
        buf = io.BytesIO()
        table.write(buf, format="votable")
        typer.echo(buf.getvalue().decode())
        return
    tmp = output.with_name(f".{output.name}.tmp")
    table.write(tmp, format="votable", overwrite=True)
    tmp.replace(output)


def get(
    did: str = typer.Argument(..., help="NAMESPACE:NAME"),
    root: Optional[Path] = typer.Option(None, "--root", help="Lake root (default: config lake.root, else .)."),
    dest: Path = typer.Option(Path("."), "-o", "--output", help="Directory to copy the product into."),
    lake_backend: Optional[str] = typer.Option(None, "--lake", help=_LAKE_HELP),
    rse: Optional[str] = typer.Option(None, "--rse", help=_RSE_HELP),
) -> None:
    """Copy a product (from its replica: on disk, S3 or Rucio) and its .meta out of the lake."""
    import shutil

    from ..ops.lake.catalogue import CATALOGUE_NAME, Catalogue
    from ..ops.lake.meta import META_SUFFIX
    from ..processes import remove_path

    backend, rse = _lake_settings(lake_backend, rse)
    if backend == "rucio":
        from ..ops.lake.rucio_lake import RucioLake

        with _backend_errors(backend), RucioLake(None, rse) as rucio:
            typer.echo(f"{did} -> {rucio.download(did, dest)}")
        return
    lake = _root(root)
    if not (lake / CATALOGUE_NAME).is_file():
        raise UsageError(f"{lake} is not a lake (no {CATALOGUE_NAME}); give --root.")
    with Catalogue(lake / CATALOGUE_NAME) as cat:
        item = cat.get(did)
    dest.mkdir(parents=True, exist_ok=True)
    target, tmp = dest / item.name, dest / f".{item.name}.tmp"
    remove_path(tmp)
    _copy_replica(item.url, tmp, did)
    if target.is_dir():
        shutil.rmtree(target)
    tmp.replace(target)
    meta = lake / "processed" / item.namespace / (item.name + META_SUFFIX)
    if meta.exists():
        shutil.copy2(meta, dest / meta.name)
    typer.echo(f"{did} -> {target}")


def _copy_replica(url: str, to: Path, did: str) -> None:
    """Copy a replica (file or directory; local path or s3:// URL) to ``to``."""
    import shutil

    from ..vis.location import as_location

    loc = as_location(url)
    fs, path = loc.fs, loc.path
    if not fs.exists(path):
        raise UsageError(f"The replica of {did} is missing: {url}.")
    if not url.startswith("s3://"):
        (shutil.copytree if Path(path).is_dir() else shutil.copy2)(path, to)
        return
    fs.get(path, str(to), recursive=fs.isdir(path))


def register(app: typer.Typer) -> None:
    """Add the ``lake`` command group to the CLI."""
    lake = typer.Typer(help="The datalake: ingest products from staging, search, get.", no_args_is_help=True)
    lake.command("ingest")(ingest)
    lake.command("search")(search)
    lake.command("get")(get)
    app.add_typer(lake, name="lake")
