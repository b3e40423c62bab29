"""CLI: ``report`` (one run's HTML report) and ``serve`` (the read-only web console over runs)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report(
    run_id: Optional[str] = typer.Argument(None, help="Run id or unique prefix (default: the latest run)."),
    workdir: Path = typer.Option(Path("."), "-C", "--workdir", help="Directory holding .radioflow/runs.db."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="HTML file to write (default WORKDIR/.radioflow/reports/RUN.html)."),
) -> None:
    """Write a run's report: one self-contained HTML file (timeline, steps, images, uv, gains)."""
    from ..report import write_report

    path = write_report(workdir, run_id, output)
    typer.echo(f"report: {path}")


def serve(
    workdir: Path = typer.Option(Path("."), "-C", "--workdir", help="Directory holding .radioflow/runs.db."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; other than loopback needs --token."),
    port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="RADIOFLOW_CONSOLE_TOKEN",
                                        help="Access token visitors must give (?token=... once, or a Bearer header)."),
) -> None:
    """Serve the read-only web console: runs, their steps and reports (and SDP/lake pages when present)."""
    from ..report.console import serve as run_console

    run_console(str(workdir), host=host, port=port, token=token)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("report")(report)
    app.command("serve")(serve)
