"""The ``radioflow`` command line (typer + rich).

Heavy modules are imported inside the commands so that ``radioflow --help`` stays fast.
User mistakes (:class:`radioflow.errors.RadioflowError`) become one paragraph on stderr and
an exit code (2: usage/load error, 1: validation or step failure), never a traceback; any other
failure (a server that died, a bug) is one paragraph and exit 1 too, with the traceback only under
``--debug`` (anywhere on the command line) or ``RADIOFLOW_DEBUG=1``.
"""
from __future__ import annotations

import sys
from typing import Optional

import typer

from .errors import RadioflowError


def build_app() -> typer.Typer:
    """The typer application with every command group registered explicitly (no import side effects)."""
    from .commands import (
        estimate_cmds,
        k8s_cmds,
        lake_cmds,
        lithops_cmds,
        recipe_cmds,
        report_cmds,
        science_cmds,
        sdp_cmds,
        step_cmds,
        telescope_cmds,
        vis_cmds,
    )

    root = typer.Typer(
        name="radioflow",
        help="Cloud workflow management for radio-astronomy pipelines.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    root.callback()(_global_options)
    vis = typer.Typer(help="Inspect, convert and partition visibility datasets.", no_args_is_help=True)
    science_cmds.register(root, vis)
    recipe_cmds.register(root)
    k8s_cmds.register(root)
    step_cmds.register(root)
    sdp_cmds.register(root)
    telescope_cmds.register(root)
    lake_cmds.register(root)
    lithops_cmds.register(root)
    estimate_cmds.register(root)
    report_cmds.register(root)
    vis_cmds.register(vis)
    root.add_typer(vis, name="vis")
    return root


def _global_options(
    ctx: typer.Context,
    backend: Optional[str] = typer.Option(
        None, "-b", "--backend", help="Backend for 'run': local (Stimela's 'native'), dask, lithops, kubernetes."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show debug messages (validated inputs/outputs)."),
) -> None:
    """Options before the command, as Stimela takes them (``radioflow -b native run ...``)."""
    ctx.obj = {"backend": backend, "verbose": verbose}


app = build_app()


def _report(exc: RadioflowError) -> None:
    from rich.console import Console
    from rich.markup import escape

    from .secrets import redact_text

    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(redact_text(str(exc)))}",
                                                soft_wrap=True)


def _unexpected(exc: BaseException) -> str:
    """One paragraph for a failure that is not a user mistake, with the innermost cause."""
    from .secrets import redact_text

    cause = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        nxt = cause.__cause__ or cause.__context__
        if nxt is None or nxt is cause:
            break
        cause = nxt
    text = f"{type(exc).__name__}: {exc}"
    if cause is not exc:
        text += f" (caused by {type(cause).__name__}: {cause})"
    text = " ".join(redact_text(text).split())[:2000]
    return f"radioflow stopped on an unexpected error: {text}. Run again with --debug for the traceback."


def _casacore_failure(exc: BaseException, args: list[str]) -> str | None:
    """One paragraph for an error raised inside casacore (a damaged or missing table), else None."""
    import os
    import traceback

    if not isinstance(exc, RuntimeError):
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or "casacore" not in frames[-1].filename:
        return None
    tables = [a for a in args if not a.startswith("-") and os.path.isdir(a) and not os.path.isfile(os.path.join(a, "zarr.json"))]
    named = f" ({', '.join(tables)})" if tables else ""
    text = " ".join(str(exc).split())[:500]
    return (f"Cannot read the Measurement Set{named}: casacore says: {text}. The table is missing, incomplete or "
            "damaged; 'radioflow vis verify DATASET' lists what is wrong.")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("RADIOFLOW_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        code = app(args=args, standalone_mode=False)   # click returns typer.Exit's code here
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    except RadioflowError as exc:
        _report(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return 130
    except OSError as exc:  # unreadable/unwritable paths the user named
        _report(RadioflowError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")))
        return 2
    except Exception as exc:
        # click usage errors (typer may vendor its own click) carry their own exit code.
        code = getattr(exc, "exit_code", None)
        if hasattr(exc, "show") and isinstance(code, int):
            exc.show()
            return code
        if debug:
            raise
        damaged = _casacore_failure(exc, args)
        if damaged is not None:
            _report(RadioflowError(damaged))
            return 2
        _report(RadioflowError(_unexpected(exc)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
