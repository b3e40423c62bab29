"""CLI: ``run`` (run a recipe), ``doc`` (describe a recipe or cab), ``runs`` (past runs)."""
from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import List, Optional

import typer


def run(
    ctx: typer.Context,
    args: List[str] = typer.Argument(
        ..., help="FILE.yml... [RECIPE] [param=value | step.param=value ...] [--BOOL/--no-BOOL ...]",
        show_default=False),
    step: List[str] = typer.Option([], "-s", "--step", help="Run only these steps: label, from:to, sub.from:to."),
    skip_step: List[str] = typer.Option([], "-k", "--skip-step", help="Skip these steps."),
    tags: List[str] = typer.Option([], "-t", "--tags", help="Run only steps with these tags."),
    skip_tags: List[str] = typer.Option([], "--skip-tags", help="Skip steps with these tags."),
    enable_step: List[str] = typer.Option([], "-e", "--enable-step", help="Run these steps even if marked skip/never."),
    params_file: List[Path] = typer.Option(
        [], "-pf", "--params-file", "--parameter-file",
        help="YAML file of parameter values (nested mappings: step.param); name=value arguments win."),
    disable_fresh_skips: bool = typer.Option(
        False, "-f", "--disable-fresh-skips", help="Run steps marked skip_if_outputs: fresh even if fresh."),
    disable_exist_skips: bool = typer.Option(
        False, "-F", "--disable-exist-skips", help="Run steps marked skip_if_outputs: exist even if present."),
    last_recipe: bool = typer.Option(False, "-l", "--last-recipe", help="Several recipes: run the last one defined."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", "-d", help="Validate and print the plan; run nothing."),
    resume: bool = typer.Option(False, "--resume", help="Skip steps already completed with the same inputs."),
    backend: Optional[str] = typer.Option(
        None, "-b", "--backend", help="Backend: local (or 'native'), dask, lithops, kubernetes."),
    workdir: Path = typer.Option(Path("."), "-C", "--workdir", help="Directory steps run in (records go to WORKDIR/.radioflow)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress output."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the HTML report at the end of the run."),
    wait: bool = typer.Option(False, "--wait", help="If another run uses the work folder, wait for it to end."),
) -> None:
    """Run a recipe from one or more YAML files (Stimela2 syntax); ends with the run's HTML report.

    Boolean inputs of the recipe are flags (--NAME/--no-NAME); inputs whose schema names an
    environment variable (env: VAR) take it when not given here (command line > environment > default).
    """
    import sys

    from ..run.api import prepare_run

    top = ctx.obj or {}
    backend = backend or top.get("backend")
    prepared = prepare_run(args, workdir=str(workdir), steps=step, skip=skip_step, tags=tags,
                           skip_tags=skip_tags, enable=enable_step, params_files=[str(p) for p in params_file],
                           last_recipe=last_recipe)
    if dry_run:
        from ..run.api import plan

        typer.echo("\n".join(plan(prepared.rdef, prepared.options.selection)))
        typer.echo("validation ok (dry run: nothing was executed)")
        return
    from ..run.progress import Progress, flush_formula_summary, show_formula_logs

    verbose = bool(top.get("verbose"))
    if not quiet:
        show_formula_logs()
    from ..errors import RadioflowError
    from ..run.runner import RunInterrupted
    from ..secrets import mask_assignments

    disable = prepared.options.config.setdefault("disable_skips", {})
    disable["fresh"] = bool(disable.get("fresh")) or disable_fresh_skips
    disable["exist"] = bool(disable.get("exist")) or disable_exist_skips
    prepared.options.resume = resume
    from ..run.lock import WorkdirBusy

    prepared.options.wait = wait
    prepared.options.argv = mask_assignments(["radioflow", *sys.argv[1:]]) if sys.argv else []
    runner = prepared.runner(backend_name=backend, progress=Progress(quiet=quiet, verbose=verbose))
    started = time.monotonic()
    try:
        outcome = runner.run()
    except (RunInterrupted, WorkdirBusy):
        raise
    except RadioflowError:
        if not no_report and prepared.options.record:
            _report(str(workdir), runner.run_id, quiet)
        raise
    finally:
        flush_formula_summary()
    if not quiet:
        _report_success(prepared.rdef.model.name or prepared.rdef.name, outcome.outputs, verbose,
                        time.monotonic() - started)
        counts: dict[str, int] = {}
        for rep in outcome.steps:
            counts[rep.status] = counts.get(rep.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        typer.echo(f"run {outcome.run_id}: {outcome.status} ({summary})")
        for key, value in outcome.outputs.items():
            typer.echo(f"  {key} = {value!r}")
    if not no_report and prepared.options.record:
        _report(str(workdir), runner.run_id, quiet)


def _report(workdir: str, run_id: str, quiet: bool) -> None:
    """Write the run's HTML report; a report that cannot be drawn never changes the run's result."""
    from ..report import write_report

    try:
        path = write_report(workdir, run_id)
    except Exception as exc:  # the run is done and recorded; say why there is no report
        typer.echo(f"report: not written ({type(exc).__name__}: {exc})")
        return
    if not quiet:
        typer.echo(f"report: {path}")   # stdout: stderr of a failed run is its one-paragraph error


def _report_success(name: str, outputs: dict, verbose: bool, seconds: float) -> None:
    """Stimela's closing lines: the recipe succeeded, and with -v its validated outputs."""
    elapsed = str(datetime.timedelta(seconds=int(seconds)))
    typer.echo(f"INFO: recipe '{name}' executed successfully")
    if verbose:
        typer.echo("DEBUG: ### validated outputs")
        typer.echo(f"DEBUG: recipe '{name}':")
        for key, value in outputs.items():
            typer.echo(f"DEBUG:   {key} = {value}")
        typer.echo(f"DEBUG: run successful after {elapsed}, outputs follow:")
        for key, value in outputs.items():
            typer.echo(f"DEBUG:   {key}: {value}")
    else:
        typer.echo(f"INFO: run successful after {elapsed}")


def doc(
    files: List[Path] = typer.Argument(..., help="FILE.yml... [NAME]: recipe files, then optionally a recipe or cab name."),
) -> None:
    """Describe a recipe or cab: inputs, outputs and steps (without NAME: list recipes and cabs)."""
    from ..run.api import describe

    typer.echo(describe([str(f) for f in files]))


def runs(
    run_id: Optional[str] = typer.Argument(None, help="Show the steps of this run."),
    workdir: Path = typer.Option(Path("."), "-C", "--workdir", help="Directory holding .radioflow/runs.db."),
    limit: int = typer.Option(20, "-n", "--limit", help="How many runs to list."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with RUN: its steps, accounting and totals)."),
) -> None:
    """List past runs (status, timing) or the steps of one run with wall, CPU, peak memory,
    bytes read/written, calls and cost (prices: the config's ``cost`` section)."""
    from ..run.api import list_runs

    typer.echo(list_runs(str(workdir), run_id=run_id, limit=limit, as_json=as_json))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    settings = {"allow_interspersed_args": True, "ignore_unknown_options": True}
    app.command("run", context_settings=settings)(run)
    app.command("exec", hidden=True, context_settings=settings, help="Same as run (Stimela's alias).")(run)
    app.command("doc")(doc)
    app.command("runs")(runs)
