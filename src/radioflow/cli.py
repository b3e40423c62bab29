"""The ``radioflow`` command line (typer + rich).

Heavy modules are imported inside the commands so that ``radioflow --help`` stays fast.
User mistakes (:class:`radioflow.errors.RadioflowError`) become one paragraph on stderr and
an exit code (2: usage/load error, 1: validation or step failure), never a traceback.
"""
from __future__ import annotations

import sys

import typer

from .errors import RadioflowError


def build_app() -> typer.Typer:
    """The typer application with every command group registered explicitly (no import side effects)."""
    from .commands import k8s_cmds, recipe_cmds, science_cmds, step_cmds, vis_cmds

    root = typer.Typer(
        name="radioflow",
        help="Cloud workflow management for radio-astronomy pipelines.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    vis = typer.Typer(help="Inspect, convert and partition visibility datasets.", no_args_is_help=True)
    science_cmds.register(root, vis)
    recipe_cmds.register(root)
    k8s_cmds.register(root)
    step_cmds.register(root)
    vis_cmds.register(vis)
    root.add_typer(vis, name="vis")
    return root


app = build_app()


def _report(exc: RadioflowError) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=False)
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
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
