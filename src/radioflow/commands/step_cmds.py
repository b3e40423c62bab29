"""CLI: ``radioflow step INVOCATION.json`` runs one serialised invocation (used by Kubernetes Jobs)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def step(
    invocation: Path = typer.Argument(..., help="Invocation JSON: step, cab, params, workdir, log_path, env."),
    result: Optional[Path] = typer.Option(
        None, "--result", "-r",
        help="Where to write the result JSON (default: INVOCATION with suffix .result.json).",
    ),
    with_log: bool = typer.Option(False, "--with-log", help="Include the step log in the result JSON."),
    max_bytes: Optional[int] = typer.Option(
        None, "--max-bytes", help="Trim the error text so the result JSON fits (Kubernetes termination message: 4096).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not echo the step log to stdout."),
) -> None:
    """Run one cab invocation from a JSON file and write its result; exit 1 if the step failed."""
    import sys

    from ..errors import StepError
    from ..invoke.execute import execute
    from ..invoke.serialize import load_invocation, result_to_dict, write_json

    inv = load_invocation(invocation)

    def echo(text: str, level: int) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    res = execute(inv, on_line=None if quiet else echo)
    target = result or invocation.with_name(invocation.name.removesuffix(".json") + ".result.json")
    if max_bytes is None and str(target) == "/dev/termination-log":
        max_bytes = 4096  # Kubernetes keeps at most 4 KiB of a termination message
    write_json(target, result_to_dict(res, include_log=with_log, max_bytes=max_bytes))
    if not res.ok:
        raise StepError(res.error or f"step '{res.step}' failed with exit code {res.returncode}.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("step")(step)
