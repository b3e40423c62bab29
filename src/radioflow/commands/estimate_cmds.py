"""CLI: ``radioflow estimate RECIPE [NAME=VALUE ...] [--BOOL ...]`` (product sizes and memory before a run)."""
from __future__ import annotations

from pathlib import Path
from typing import List

import typer


def estimate(
    args: List[str] = typer.Argument(..., help="FILE.yml [RECIPE] [NAME=VALUE ...] [--BOOL/--no-BOOL ...]",
                                     show_default=False),
    workdir: Path = typer.Option(Path("."), "-C", "--workdir", help="Directory the run would use."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Estimate the sizes of a recipe's products, the space it writes and its peak memory."""
    from ..ops.estimate import estimate as run_estimate
    from ..ops.estimate import report

    est = run_estimate(args, workdir=str(workdir))
    if json_out:
        import json

        typer.echo(json.dumps({"recipe": est.recipe, "made": est.made, "kept": est.kept,
                               "peak_memory": est.peak_memory, "warnings": est.warnings,
                               "steps": [{"step": s.step, "products": s.products, "memory": s.memory, "note": s.note}
                                         for s in est.steps]}, indent=2))
    else:
        typer.echo(report(est))


def register(app: typer.Typer) -> None:
    """Add this module's command to the CLI."""
    app.command("estimate", context_settings={"allow_interspersed_args": True, "ignore_unknown_options": True})(estimate)
