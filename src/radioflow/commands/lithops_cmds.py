"""CLI: ``radioflow lithops runtime build|deploy|list`` (Lithops' runtime commands, configured
from radioflow's ``backend.lithops``; the build uses the shipped radioflow + DP3 + WSClean
Dockerfile)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

COMPUTE_HELP = "Lithops compute backend (default: backend.lithops.compute, else Lithops' own config)."


def build_cmd(
    name: str = typer.Argument(..., help="Runtime image name, e.g. REGISTRY/radioflow-lithops:0.1.0."),
    compute: Optional[str] = typer.Option(None, "-b", "--backend", help=COMPUTE_HELP),
    file: Optional[Path] = typer.Option(None, "-f", "--file", help="Dockerfile (default: radioflow's shipped one)."),
    context: Optional[Path] = typer.Option(None, "--context", help="Build context folder (default: one made "
                                                                   "from radioflow's source checkout)."),
    extra: Optional[List[str]] = typer.Argument(None, help="More 'docker build' arguments (after --).",
                                                show_default=False),
) -> None:
    """Build a Lithops runtime image (docker build) and push it to its registry."""
    from ..config import load_config
    from ..ops import lithops_runtime

    lithops_runtime.build(name, load_config(), compute=compute, dockerfile=file, context=context,
                          extra_args=extra or [])
    typer.echo(f"runtime {name} built and pushed")


def deploy_cmd(
    name: str = typer.Argument(..., help="Runtime image name (built with 'radioflow lithops runtime build')."),
    compute: Optional[str] = typer.Option(None, "-b", "--backend", help=COMPUTE_HELP),
    memory: Optional[int] = typer.Option(None, "--memory", help="Runtime memory (MB; default Lithops' config)."),
    timeout: Optional[int] = typer.Option(None, "--timeout", help="Runtime timeout (s; default Lithops' config)."),
) -> None:
    """Deploy a runtime on the Lithops compute backend and record its metadata in Lithops' storage."""
    from ..config import load_config
    from ..ops import lithops_runtime

    info = lithops_runtime.deploy(name, load_config(), compute=compute, memory=memory, timeout=timeout)
    typer.echo(f"runtime {info['runtime']} deployed: {info['memory']} MB, timeout {info['timeout']} s, "
               f"python {info['python']}, lithops {info['lithops']}")


def list_cmd(
    name: str = typer.Argument("all", help="Only this runtime."),
    compute: Optional[str] = typer.Option(None, "-b", "--backend", help=COMPUTE_HELP),
) -> None:
    """List the runtimes the Lithops compute backend has deployed."""
    from ..config import load_config
    from ..ops import lithops_runtime

    rows = lithops_runtime.list_runtimes(load_config(), compute=compute, name=name)
    if not rows:
        typer.echo("no runtimes listed (Lithops' k8s backend keeps no list: its runtimes are images in the "
                   "registry, deployed when a map first uses them)")
    for row in rows:
        typer.echo("  ".join(str(v) for v in row))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    lithops_app = typer.Typer(help="Lithops: runtimes for the lithops backend.", no_args_is_help=True)
    runtime_app = typer.Typer(help="Build, deploy and list Lithops runtimes (radioflow + DP3 + WSClean).",
                              no_args_is_help=True)
    lithops_app.add_typer(runtime_app, name="runtime")
    app.add_typer(lithops_app, name="lithops")
    runtime_app.command("build")(build_cmd)
    runtime_app.command("deploy")(deploy_cmd)
    runtime_app.command("list")(list_cmd)
