"""Step progress for people: a rich live table on a terminal, one plain line per step otherwise."""
from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, TextIO

log = logging.getLogger("radioflow.run")

_LEVEL_LINE = re.compile(r"^\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] (.*)$")
_MARKS = {"ok": "✓", "failed": "✗", "skipped": "·", "resumed": "↺", "running": "…"}


#: Lines a cab prints with this prefix (e.g. a residual RMS) are shown on the console as well as logged.


class Progress:
    """Receives step events from the runner and shows them.

    On a TTY a ``rich`` live display lists the steps with status and time; when the output is
    not a terminal, each finished step is one line (``ok  recipe.step  0.01 s``) and nothing
    animates. Every event also goes to the ``radioflow.run`` logger.
    """

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, quiet: bool = False,
                 verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.live = (self.stream.isatty() if live is None else live) and not quiet
        self._rows: dict[str, list[Any]] = {}
        self._live: Any = None
        self._title = ""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, title: str) -> None:
        self._title = title
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=8, transient=False)
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None

    def step_started(self, fqname: str, info: str = "") -> None:
        log.debug("step %s started", fqname)
        self._rows[fqname] = ["running", time.time(), None, info]
        self._refresh()

    def step_finished(self, fqname: str, status: str, seconds: float = 0.0, note: str = "") -> None:
        log.info("step %s %s (%.3f s)%s", fqname, status, seconds, f": {note}" if note else "")
        row = self._rows.setdefault(fqname, [status, time.time(), None, ""])
        row[0], row[2] = status, seconds
        if note:
            row[3] = note
        if self.live:
            self._refresh()
        elif not self.quiet:
            extra = f"  ({note})" if note else ""
            print(f"{status:<8} {fqname}  {seconds:.3f} s{extra}", file=self.stream, flush=True)

    def step_log(self, fqname: str, text: str) -> None:
        """Show what a step printed, as Stimela's console does: its command line under
        ``---INVOKING---``, then its output; warnings and errors as ``LEVEL: text``."""
        if self.quiet or not text:
            return
        shown: list[str] = []
        for line in text.splitlines():
            if line.startswith("# command: "):
                shown += ["---INVOKING---", line[len("# command: "):]]
            elif line.startswith("# "):
                continue                      # the step log's own bookkeeping lines
            else:
                m = _LEVEL_LINE.match(line)
                if m and m.group(2).startswith("# "):
                    continue                  # '# error: ...': the run reports it once itself
                shown.append(f"{m.group(1)}: {m.group(2)}" if m else line)
        for line in shown:
            log.debug("%s: %s", fqname, line)
            if self._live is not None:
                self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)
            else:
                print(line, file=self.stream)
        self.stream.flush()

    def step_outputs(self, fqname: str, outputs: dict[str, Any]) -> None:
        """With ``-v``: a finished step's validated outputs, as Stimela's debug summary."""
        if not self.verbose or not outputs:
            return
        lines = ["### validated outputs", f"step '{fqname}':"] + [f"  {k} = {v}" for k, v in outputs.items()]
        for line in lines:
            self.message(f"DEBUG: {line}")

    def message(self, text: str) -> None:
        log.info(text)
        if self.quiet:
            return
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title=self._title, show_header=True, header_style="bold", expand=False)
        table.add_column("")
        table.add_column("step")
        table.add_column("status")
        table.add_column("time", justify="right")
        table.add_column("")
        now = time.time()
        for name, (status, started, seconds, note) in list(self._rows.items())[-30:]:
            secs = seconds if seconds is not None else now - started
            table.add_row(_MARKS.get(status, " "), name, status, f"{secs:.2f} s", str(note)[:60])
        return table


class _FormulaLogHandler(logging.Handler):
    """``LEVEL: message`` for LOG*() messages, with Stimela's options: ``no-repeat`` shows an
    identical message once, ``summary`` (default for warnings and above) keeps it for the
    summary printed at the end of the run, ``only-summary`` shows it only there."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream
        self.seen: set[tuple[int, str]] = set()
        self.accumulated: list[str] = []

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr     # looked up late: tests swap sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname}: {record.getMessage()}"
        key = (record.levelno, record.getMessage())
        if getattr(record, "rf_no_repeat", False) and key in self.seen:
            return
        self.seen.add(key)
        summary = getattr(record, "rf_summary", record.levelno >= logging.WARNING)
        if summary:
            self.accumulated.append(text)
        if not getattr(record, "rf_only_summary", False):
            print(text, file=self.stream, flush=True)

    def flush_summary(self) -> None:
        if self.accumulated:
            print("--- accumulated warnings and errors ---", file=self.stream)
            for text in self.accumulated:
                print(text, file=self.stream)
            self.stream.flush()
            self.accumulated = []


def _formula_handler() -> _FormulaLogHandler | None:
    logger = logging.getLogger("radioflow.recipe.formula")
    return next((h for h in logger.handlers if isinstance(h, _FormulaLogHandler)), None)


def show_formula_logs(stream: TextIO | None = None) -> None:
    """Send messages of the ``LOG*()`` formula functions to ``stream`` (stderr) as ``LEVEL: text``."""
    logger = logging.getLogger("radioflow.recipe.formula")
    handler = _formula_handler()
    if handler is not None:                     # a new run: forget the previous one's messages
        handler._stream, handler.seen, handler.accumulated = stream, set(), []
        return
    logger.addHandler(_FormulaLogHandler(stream))
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def flush_formula_summary() -> None:
    """Print the warnings and errors kept for the end of the run (Stimela's closing summary)."""
    handler = _formula_handler()
    if handler is not None:
        handler.flush_summary()
