"""Run one cab invocation: the single code path every backend calls.

Three flavours, as in Stimela2:

* ``python``: ``command`` is ``package.module.function``; it is imported and called in this
  process with the set parameters as keyword arguments (``-`` -> ``_``, ``.`` -> ``__``); a
  returned dict becomes the outputs (or the whole value goes to ``flavour.output``).
* ``python-code``: ``command`` is the cab author's inline code, executed with the inputs as
  local variables; outputs are read back from variables (``flavour.output_vars``).
* ``binary`` (default): ``command`` (which may carry arguments) plus ``args`` plus arguments
  built by :mod:`radioflow.invoke.policies`, run as a subprocess in ``inv.workdir`` with
  ``inv.env``; output lines pass through :mod:`radioflow.invoke.wranglers`.

All output is streamed line by line to ``inv.log_path`` and collected in ``Result.log``.
Values of parameters and environment variables whose names look like secrets (key, secret,
token, password, ...) are replaced by ``***`` everywhere they would be logged.
"""
from __future__ import annotations

import importlib
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .. import stimela_compat
from ..errors import RadioflowError
from ..invoke.invocation import Invocation, Result
from ..secrets import is_secret
from ..vis.location import local_path
from . import policies, wranglers
from .capture import capture
from .usage import Meter, Usage, reap

LineCallback = Callable[[str, int], None]

_in_process_lock = threading.RLock()


class CabFailure(RadioflowError):
    """A cab that cannot run as defined (bad command, missing module, ...)."""

    exit_code = 1


def _is_unset(value: Any) -> bool:
    return type(value).__name__.lstrip("_").upper() in ("UNSET", "UNSETTYPE")


class _Log:
    """Collects output lines, scrubs secrets, streams them to the log file and a callback."""

    def __init__(self, path: str | None, secrets: list[str], on_line: LineCallback | None) -> None:
        self.lines: list[str] = []
        self._secrets = sorted({s for s in secrets if len(s) >= 2}, key=len, reverse=True)
        self._on_line = on_line
        self._partial = ""
        self._file = None
        self.output: Callable[[str], None] = self.line   # cab output; execute() routes it through wranglers
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", buffering=1, encoding="utf-8", errors="replace")   # steps may share a file (opts.log.nest)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def line(self, text: str, level: int = logging.INFO) -> None:
        text = self.scrub(text)
        if level > logging.INFO:
            text = f"[{logging.getLevelName(level)}] {text}"
        self.lines.append(text)
        if self._file:
            self._file.write(text + "\n")
        if self._on_line:
            self._on_line(text, level)

    def fragment(self, text: str) -> None:
        """Accept printed text in arbitrary fragments (from captured ``print`` calls)."""
        self._partial += text
        while "\n" in self._partial:
            head, self._partial = self._partial.split("\n", 1)
            self.output(head)

    def close(self) -> None:
        if self._partial:
            rest, self._partial = self._partial, ""
            self.output(rest)
        if self._file:
            self._file.close()
            self._file = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def _flavour(cab: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    flavour = cab.get("flavour")
    if flavour is None:
        return "binary", {}
    if isinstance(flavour, str):
        return flavour.strip().lower(), {}
    if isinstance(flavour, Mapping):
        return str(flavour.get("kind", "binary")).strip().lower(), dict(flavour)
    raise CabFailure(f"cab '{cab.get('name')}': 'flavour' must be a name or a mapping with 'kind'.")


def effective_params(cab: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with UNSET values removed and literal implicits / cab defaults / defaults filled in.

    Formula-valued (``=...``) defaults or implicits are left to the recipe layer.
    """
    out = {k: v for k, v in params.items() if not _is_unset(v)}
    inputs, outputs = policies.cab_schemas(cab)
    cab_defaults = cab.get("defaults") or {}
    for name, schema in {**inputs, **outputs}.items():
        if name in out:
            continue
        for key in ("implicit", "cab-default", "default"):
            value = cab_defaults.get(name) if key == "cab-default" else schema.get(key)
            if value is None or (isinstance(value, str) and (value.startswith("=") or "{" in value)):
                continue
            out[name] = value
            break
    return out


def _secrets(inv: Invocation) -> list[str]:
    """Values to scrub: secret-named params and env vars (inherited ones only if 8+ chars)."""
    found = [str(v) for k, v in inv.params.items() if is_secret(k) and isinstance(v, (str, int, float))]
    found += [str(v) for k, v in inv.env.items() if is_secret(k)]
    found += [v for k, v in os.environ.items() if len(v) >= 8 and is_secret(k)]
    return found


def _redacted(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={'***' if is_secret(k) else repr(v)}" for k, v in params.items())


@contextmanager
def _in_process(workdir: str, env: Mapping[str, str]) -> Iterator[None]:
    """Run in ``workdir`` with ``env`` applied; serialised only when either differs."""
    needs_cwd = os.path.abspath(workdir) != os.getcwd()
    if not needs_cwd and not env:
        yield
        return
    with _in_process_lock:
        cwd, saved = os.getcwd(), {k: os.environ.get(k) for k in env}
        os.environ.update({k: str(v) for k, v in env.items()})
        os.chdir(workdir)
        try:
            yield
        finally:
            os.chdir(cwd)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _kwarg(name: str) -> str:
    return name.replace("-", "_").replace(".", "__")


def _call_params(cab: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    inputs, outputs = policies.cab_schemas(cab)
    schemas = {**inputs, **outputs}
    return {
        _kwarg(schemas[name].get("nom_de_guerre") or name): value
        for name, value in policies.filter_params(cab, params).items()
    }


def _import_callable(command: str, cab_name: str, workdir: str = ".") -> Callable[..., Any]:
    if "." not in command:
        raise CabFailure(f"cab '{cab_name}': a python cab's command must be package.module.function, got '{command}'.")
    module_name, func_name = command.rsplit(".", 1)
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            # like Stimela, modules next to the recipe (the workdir) are importable
            if os.path.abspath(workdir) in sys.path:
                raise
            sys.path.append(os.path.abspath(workdir))
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CabFailure(f"cab '{cab_name}': cannot import module '{module_name}' for command '{command}': {exc}.") from None
    func = getattr(module, func_name, None)
    callback = getattr(func, "callback", None)  # a click command: call the plain function
    if callback is not None and type(func).__module__.startswith("click"):
        func = callback
    if not callable(func):
        raise CabFailure(f"cab '{cab_name}': module '{module_name}' has no function '{func_name}'.")
    return func


def _run_python(inv: Invocation, cab: Mapping, params: dict, options: dict, log: _Log, status) -> int:
    name = str(cab.get("name") or cab.get("command"))
    command = str(cab.get("command", "")).strip()
    func = _import_callable(command, name, inv.workdir)
    kwargs = _call_params(cab, params)
    log.line(f"# call: {command}({_redacted(kwargs)})")
    scope: dict[str, Any] = {"__name__": f"__cab_{_kwarg(str(name))}__", "_inputs": kwargs}
    before = dict(status.outputs)
    with _in_process(inv.workdir, inv.env), capture(log.fragment):
        _run_commands(options, "pre_commands", scope, name)
        value = scope["_result"] = func(**kwargs)
        _run_commands(options, "post_commands", scope, name)
    _, outputs = policies.cab_schemas(cab)
    if options.get("output"):
        status.outputs[options["output"]] = value
    elif isinstance(value, Mapping):
        status.outputs.update(value)
    elif value is not None:
        yielded = {k for k, v in status.outputs.items() if k not in before or before[k] is not v}
        plain = [n for n, s in outputs.items() if not policies.is_named_output(s) and not s.get("implicit")]
        if len(plain) == 1 and plain[0] not in yielded:   # a yield_output value is not overridden
            status.outputs[plain[0]] = value
    return 0


@lru_cache(maxsize=128)
def _compile_code(code: str, name: str) -> Any:
    return compile(code, f"<cab {name}>", "exec")


def _run_python_code(inv: Invocation, cab: Mapping, params: dict, options: dict, log: _Log, status) -> int:
    name = cab.get("name") or "python-code"
    code = str(cab.get("command", ""))
    try:
        compiled = _compile_code(code, str(name))
    except SyntaxError as exc:
        raise CabFailure(f"cab '{name}': the inline python code has a syntax error at line {exc.lineno}: {exc.msg}.") from None
    passed = _call_params(cab, params)
    namespace: dict[str, Any] = {"__name__": f"__cab_{_kwarg(str(name))}__"}
    input_dict = options.get("input_dict") or "_params"
    namespace[input_dict] = dict(passed)
    log.line(f"# python-code with {_redacted(passed)}")
    with _in_process(inv.workdir, inv.env), capture(log.fragment):
        _run_commands(options, "pre_commands", namespace, name)   # as Stimela: before the input variables
        if options.get("input_vars", True):
            namespace.update(namespace[input_dict])
        exec(compiled, namespace)  # the cab author's own code (python-code flavour), never recipe text
        _run_commands(options, "post_commands", namespace, name)
    output_vars = options.get("output_vars", True)
    _, outputs = policies.cab_schemas(cab)
    if output_vars is True:
        names = [n for n, s in outputs.items() if not policies.is_named_output(s) and not s.get("implicit")]
    elif isinstance(output_vars, (list, tuple)):
        names = [str(n) for n in output_vars]
    else:
        names = []
    for out in names:
        var = _kwarg(out)
        if var in namespace:
            status.outputs[out] = namespace[var]
        elif (outputs.get(out) or {}).get("required"):
            status.declare_failure(f"the inline code did not set the required output variable '{var}'")
    return 0


def _run_commands(options: Mapping[str, Any], key: str, namespace: dict[str, Any], cab_name: str) -> None:
    """Run a python flavour's ``pre_commands``/``post_commands`` (a mapping of code lines, in order)."""
    commands = options.get(key)
    if not commands:
        return
    if not isinstance(commands, Mapping) or not all(isinstance(c, str) for c in commands.values()):
        raise CabFailure(f"cab '{cab_name}': flavour.{key} must map names to lines of python code.")
    code = "\n".join(commands.values())
    try:
        compiled = _compile_code(code, f"{cab_name} {key}")
    except SyntaxError as exc:
        raise CabFailure(f"cab '{cab_name}': flavour.{key} has a syntax error at line {exc.lineno}: {exc.msg}.") from None
    exec(compiled, namespace)  # the cab author's own code (cab definition), never recipe text


def _run_binary(inv: Invocation, cab: Mapping, params: dict, log: _Log, usage: Usage) -> int:
    """Run a binary cab; ``usage`` receives the child's own CPU, peak memory and I/O."""
    name = cab.get("name") or cab.get("command")
    command = cab.get("command")
    if not command or not isinstance(command, str):
        raise CabFailure(f"cab '{name}': a binary cab needs a 'command' string.")
    argv = shlex.split(command) + [str(a) for a in cab.get("args") or []]
    argv += policies.build_arguments(cab, params)
    log.line("# command: " + log.scrub(shlex.join(argv)))
    env = {**os.environ, **{k: str(v) for k, v in inv.env.items()}}
    try:
        proc = subprocess.Popen(
            argv, cwd=inv.workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, errors="replace",
        )
    except FileNotFoundError:
        raise CabFailure(f"cab '{name}': the executable '{argv[0]}' was not found (PATH or workdir '{inv.workdir}').") from None
    except PermissionError:
        raise CabFailure(f"cab '{name}': '{argv[0]}' is not executable.") from None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.output(line.rstrip("\r\n"))
        returncode, child = reap(proc)
        usage.update(child)
        return returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _check_outputs(inv: Invocation, cab: Mapping, params: dict, status) -> None:
    _, outputs = policies.cab_schemas(cab)
    for name, schema in outputs.items():
        if schema.get("must_exist") and policies.is_named_output(schema) and name in params:
            path = local_path(str(params[name]), inv.workdir)
            if path is not None and not os.path.exists(path):
                status.declare_failure(f"output '{name}' ({params[name]}) was not created")


def _mkdirs(inv: Invocation, cab: Mapping, params: dict) -> None:
    inputs, outputs = policies.cab_schemas(cab)
    for name, schema in {**inputs, **outputs}.items():
        value = params.get(name)
        path = local_path(value, inv.workdir) if schema.get("mkdir") and isinstance(value, str) else None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def execute(inv: Invocation, *, on_line: LineCallback | None = None) -> Result:
    """Run one cab invocation and return its :class:`Result` (never raises for cab failures).

    ``on_line(text, level)`` is called for every log line as it is produced (for live display).
    """
    started = time.time()
    cab = inv.cab or {}
    cab_name = cab.get("name") or cab.get("command") or "?"
    status = wranglers.Status()
    returncode, error = 0, None
    meter, child = Meter(), Usage()
    meter.start()
    try:
        log = _Log(inv.log_path, _secrets(inv), on_line)
    except OSError as exc:
        log = _Log(None, _secrets(inv), on_line)
        error = f"step '{inv.step}': cannot write the log file {inv.log_path}: {exc.strerror or exc}"
    try:
        if error:
            raise CabFailure(error)
        kind, options = _flavour(cab)
        cab = policies.flat_cab(cab)
        log.line(f"# step {inv.step}: cab {cab_name} ({kind}) started {time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(started))}Z")
        compiled = wranglers.compile_wranglers(cab, yield_output=kind in ("python", "python-code"))

        def output(text: str) -> None:
            line, level = wranglers.apply(compiled, text, logging.INFO, status) if compiled else (text, logging.INFO)
            if line is not None:
                log.line(line, level)

        log.output = output
        Path(inv.workdir).mkdir(parents=True, exist_ok=True)
        params = effective_params(cab, inv.params)
        _mkdirs(inv, cab, params)
        _, outputs = policies.cab_schemas(cab)
        status.outputs.update({k: params[k] for k in outputs if k in params})
        if kind in ("python", "python-code"):
            stimela_compat.install()   # cabs written for Stimela import scabha
        if kind == "binary":
            returncode = _run_binary(inv, cab, params, log, child)
        elif kind == "python":
            returncode = _run_python(inv, cab, params, options, log, status)
        elif kind == "python-code":
            returncode = _run_python_code(inv, cab, params, options, log, status)
        else:
            raise CabFailure(f"cab '{cab_name}': unknown flavour '{kind}'; use binary, python or python-code.")
        if returncode and status.success is True:
            log.line(f"# exit code {returncode} overridden: the cab's output declared success (DECLARE_SUCCESS)")
        if (returncode == 0 or status.success) and status.success is not False:
            _check_outputs(inv, cab, params, status)
    except RadioflowError as exc:
        returncode, error = returncode or 1, str(exc)
    except SystemExit as exc:  # sys.exit() in a python cab ends the cab, not the runner
        code = exc.code
        returncode = code if isinstance(code, int) else (0 if code is None else 1)
        if returncode:
            error = f"step '{inv.step}': cab '{cab_name}' called sys.exit({code!r})"
    except Exception as exc:  # the cab's own code failed: one-line error, traceback to the log
        returncode = returncode or 1
        error = f"step '{inv.step}': cab '{cab_name}' raised {type(exc).__name__}: {exc}"
        for text in traceback.format_exc().rstrip().splitlines():
            log.line(text, logging.ERROR)
    for message in status.warnings:   # as Stimela: the cab's WARNING wranglers, once it has finished
        log.line(f"cab '{cab_name}': {message}", logging.WARNING)
    ok = error is None and (status.success if status.success is not None else returncode == 0)
    if error is None and not ok:
        if status.errors:
            error = f"step '{inv.step}': " + "; ".join(status.errors)
        else:
            last = next((ln for ln in reversed(log.lines) if ln and not ln.startswith("# ")), "")
            error = f"step '{inv.step}': cab '{cab_name}' exited with code {returncode}" + (
                f"; last output: {last}" if last else "")
    finished = time.time()
    usage = meter.stop(finished - started)
    usage.update(child)       # a subprocess cab: the child's own numbers, not this process's
    if error:
        log.line(f"# error: {error}", logging.ERROR)
    log.line(f"# finished: {'ok' if ok else 'failed'}, exit code {returncode}, {finished - started:.3f} s")
    log.close()
    return Result(
        step=inv.step, ok=bool(ok), outputs=dict(status.outputs), returncode=returncode,
        log=log.text, started=started, finished=finished, error=log.scrub(error) if error else None,
        warnings=[log.scrub(w) for w in status.warnings], usage=usage,
    )
