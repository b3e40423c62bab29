"""CLI: ``vis convert``, ``vis partition``, ``vis concat``, ``vis squash``, ``vis history``, ``vis verify``."""
from __future__ import annotations

from typing import List, Optional

import typer


def _console():
    from rich.console import Console

    return Console(highlight=False)


def convert_cmd(
    src: str = typer.Argument(..., help="Source dataset (.ms or .zarr; path, s3:// or memory:// URL)."),
    dst: str = typer.Argument(..., help="Destination dataset (.ms or .zarr)."),
    chunks: Optional[str] = typer.Option(None, help="Zarr chunks, e.g. time=10,frequency=64."),
    field: Optional[int] = typer.Option(None, help="Only this field (default: all for Zarr output)."),
    spw: Optional[int] = typer.Option(None, help="Only this spectral window."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing destination."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Convert between Measurement Set and Zarr, streaming with bounded memory."""
    import time

    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from ..vis import storage
    from ..vis.convert import convert
    from ..vis.io import format_of
    from ..vis.zarr import parse_chunks

    parse_chunks(chunks)
    format_of(src), format_of(dst)
    storage.check_writable_destination(dst, overwrite)
    con = _console()
    start = time.perf_counter()
    moved = [0]
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=con, disable=quiet,
                  transient=False) as bar:
        task = bar.add_task(f"{src} -> {dst}", total=None)

        def advance(nbytes: int) -> None:
            moved[0] += nbytes
            bar.advance(task, nbytes)

        out = convert(src, dst, chunks=chunks, overwrite=overwrite, field=field, spw=spw,
                      progress=advance, on_total=lambda total: bar.update(task, total=total))
    secs = time.perf_counter() - start
    rate = moved[0] / secs / 1e6 if secs > 0 else 0.0
    con.print(f"Wrote {out}: {moved[0] / 1e6:,.1f} MB in {secs:.1f} s ({rate:,.0f} MB/s).")


def partition_cmd(
    src: str = typer.Argument(..., help="Dataset to split."),
    dst_prefix: str = typer.Argument(..., help="Prefix of the parts: PREFIX-000.zarr, PREFIX-001.zarr, ..."),
    n: Optional[int] = typer.Option(None, "--n", help="Number of partitions (equal durations / channel groups)."),
    by: str = typer.Option("time", help="time, frequency, field or spw."),
    interval: Optional[float] = typer.Option(None, help="Time partitions of this many seconds."),
    ranges: Optional[str] = typer.Option(None, help="Frequency ranges in Hz, e.g. 100e6:105e6,105e6:110e6."),
    fmt: Optional[str] = typer.Option(None, "--format", help="zarr or ms (default: the source's)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing parts."),
) -> None:
    """Split a dataset into partitions (ordinary datasets) and print their URLs."""
    from ..errors import UsageError
    from ..vis.partition import parse_ranges, partition

    if fmt is not None and fmt not in ("zarr", "ms"):
        raise UsageError(f"--format must be zarr or ms, not '{fmt}'.")
    if by == "time" and n is None and interval is None:
        raise UsageError("Give --n (number of partitions) or --interval (seconds) to split by time.")
    if by == "frequency" and n is None and ranges is None:
        raise UsageError("Give --n (number of partitions) or --ranges to split by frequency.")
    urls = partition(src, dst_prefix, by=by, n=n, interval=interval,
                     ranges=parse_ranges(ranges) if ranges else None, fmt=fmt, overwrite=overwrite)
    for url in urls:
        typer.echo(url)


def concat_cmd(
    parts: List[str] = typer.Argument(..., help="Partitions followed by the output dataset."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Concatenate time or frequency partitions: ``radioflow vis concat PART... DST``."""
    from ..errors import UsageError
    from ..vis.partition import concat_urls

    if len(parts) < 2:
        raise UsageError("vis concat needs at least one partition and the output: PARTS... DST.")
    out = concat_urls(parts[:-1], parts[-1], overwrite=overwrite)
    _console().print(f"Wrote {out} from {len(parts) - 1} partitions.")


def squash_cmd(
    delta: str = typer.Argument(..., help="The newest delta of a chain."),
    dst: str = typer.Argument(..., help="Self-contained output dataset (.zarr or .ms)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Materialise a delta chain into a new dataset."""
    from ..vis.delta import squash

    out = squash(delta, dst, overwrite=overwrite)
    _console().print(f"Wrote {out}.")


def history_cmd(url: str = typer.Argument(..., help="A dataset or delta overlay.")) -> None:
    """Show the delta chain of a dataset, newest first, down to its base."""
    from rich.table import Table

    from ..vis.delta import history

    table = Table("level", "kind", "url", "version", "created", "variables written")
    for k, entry in enumerate(history(url)):
        variables = "; ".join(f"{g}: {', '.join(v)}" for g, v in (entry.get("variables") or {}).items())
        table.add_row(str(k), entry["kind"], entry["url"], entry["version"][:12], entry.get("created") or "",
                      variables or "-")
    _console().print(table)


def verify_cmd(url: str = typer.Argument(..., help="A dataset (.zarr or .ms; path or URL).")) -> None:
    """Check a dataset: every Zarr chunk present with its recorded size and checksum; an MS's
    tables open, required columns complete and row counts consistent. Exit 1 on problems."""
    from ..errors import ValidationError
    from ..vis.verify import verify

    found = verify(url)
    if found:
        raise ValidationError("\n\n".join(found))
    _console().print(f"{url}: ok")


def register(vis_app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    vis_app.command("convert")(convert_cmd)
    vis_app.command("partition")(partition_cmd)
    vis_app.command("concat")(concat_cmd)
    vis_app.command("squash")(squash_cmd)
    vis_app.command("history")(history_cmd)
    vis_app.command("verify")(verify_cmd)
