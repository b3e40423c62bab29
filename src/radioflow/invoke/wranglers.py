"""Output wranglers: regex-triggered actions on a binary cab's output lines (Stimela2).

A cab's ``wranglers`` (or ``management.wranglers``) map a regular expression to one action or
a list of actions: ``PARSE_OUTPUT:name[:group]:type``, ``PARSE_JSON_OUTPUTS``,
``PARSE_JSON_OUTPUT_DICT``, ``SEVERITY:LEVEL``, ``SUPPRESS``, ``REPLACE:text``, ``HIGHLIGHT:style``,
``WARNING:message`` (logged again once the cab finished), ``ERROR[:message]`` and
``DECLARE_SUCCESS``. Patterns are compiled once
per distinct wrangler specification and reused for every line and every invocation.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from ..errors import ValidationError


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _load_yaml(text: str) -> Any:
    import yaml  # deferred: only cabs that parse YAML outputs need it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(" ".join(str(exc).split())) from None


LOADERS: dict[str, Callable[[str], Any]] = {
    "str": str, "bool": _parse_bool, "int": int, "float": float, "complex": complex,
    "json": json.loads, "JSON": json.loads, "yaml": _load_yaml, "YAML": _load_yaml,
}
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING,
          "ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL, "FATAL": logging.CRITICAL}


@dataclass
class Status:
    """What the wranglers have learned about a running cab."""

    success: bool | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def declare_success(self) -> None:
        if self.success is None:
            self.success = True

    def declare_failure(self, message: str) -> None:
        self.success = False
        self.errors.append(message)


@dataclass(frozen=True)
class Action:
    """One parsed action specifier."""

    kind: str
    arg: str | None = None
    dtype: str | None = None
    group: str | int | None = None


_SPECS = [
    (re.compile(r"PARSE_OUTPUT:(?P<arg>[^:]+):(?P<group>[^:]+):(?P<dtype>\w+)"), "PARSE_OUTPUT"),
    (re.compile(r"PARSE_OUTPUT:(?P<arg>[^:]+)(?::(?P<dtype>\w+))?"), "PARSE_OUTPUT"),
    (re.compile(r"PARSE_JSON_OUTPUTS"), "PARSE_JSON_OUTPUTS"),
    (re.compile(r"PARSE_JSON_OUTPUT_DICT"), "PARSE_JSON_OUTPUT_DICT"),
    (re.compile(r"SEVERITY:(?P<arg>\w+)"), "SEVERITY"),
    (re.compile(r"SUPPRESS"), "SUPPRESS"),
    (re.compile(r"REPLACE:(?P<arg>.*)"), "REPLACE"),
    (re.compile(r"WARNING:(?P<arg>.*)"), "WARNING"),
    (re.compile(r"WARNING"), "WARNING"),
    (re.compile(r"ERROR(?::(?P<arg>.*))?"), "ERROR"),
    (re.compile(r"DECLARE_SUCCESS"), "DECLARE_SUCCESS"),
    (re.compile(r"HIGHLIGHT:(?P<arg>.*)"), "HIGHLIGHT"),   # console markup in Stimela; plain logs keep the line
]


def _action(pattern: re.Pattern, spec: str, where: str) -> Action:
    for regex, kind in _SPECS:
        match = regex.fullmatch(spec.strip())
        if not match:
            continue
        groups = match.groupdict()
        group = groups.get("group")
        action = Action(kind, groups.get("arg"), groups.get("dtype"),
                        int(group) if group is not None and group.isdigit() else group)
        if kind == "PARSE_OUTPUT" and action.group is not None:   # Stimela's PARSE_OUTPUT:name:group:type
            valid = (action.group in pattern.groupindex if isinstance(action.group, str)
                     else 0 <= action.group <= pattern.groups)
            if not valid:
                raise ValidationError(f"{where}: wrangler '{spec}': '{action.group}' is not a ()-group of "
                                      f"'{pattern.pattern}'.")
        if kind == "PARSE_OUTPUT":
            if (action.dtype or "str") not in LOADERS:
                raise ValidationError(
                    f"{where}: wrangler '{spec}' names type '{action.dtype}'; use one of "
                    f"{', '.join(LOADERS)}."
                )
            if action.arg not in pattern.groupindex and pattern.groups < 1:
                raise ValidationError(f"{where}: wrangler '{spec}' needs a ()-group in '{pattern.pattern}'.")
        if kind == "SEVERITY" and str(action.arg).upper() not in LEVELS:
            raise ValidationError(f"{where}: wrangler '{spec}' names an unknown log level.")
        return action
    raise ValidationError(
        f"{where}: '{spec}' is not a wrangler action for pattern '{pattern.pattern}'; use "
        "PARSE_OUTPUT:name[:group]:type, PARSE_JSON_OUTPUTS, PARSE_JSON_OUTPUT_DICT, SEVERITY:LEVEL, "
        "SUPPRESS, REPLACE:text, HIGHLIGHT:style, WARNING:message, ERROR[:message] or DECLARE_SUCCESS."
    )


Compiled = tuple[tuple[re.Pattern, tuple[Action, ...]], ...]


@lru_cache(maxsize=256)
def _compile(spec_json: str, where: str) -> Compiled:
    out = []
    for pattern, actions in json.loads(spec_json):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ValidationError(f"{where}: wrangler pattern '{pattern}' is not a valid regular expression: {exc}.") from None
        specs = [actions] if isinstance(actions, str) else actions
        if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
            raise ValidationError(f"{where}: wrangler '{pattern}' must map to an action or a list of actions.")
        out.append((regex, tuple(_action(regex, s, where) for s in specs)))
    return tuple(out)


#: The marker of a line printed by ``scabha.cab_utils.yield_output`` (the same text as Stimela's).
CAB_OUTPUT_PREFIX = "### YIELDING CAB OUTPUT ## "
_YIELD: Compiled = ((re.compile(re.escape(CAB_OUTPUT_PREFIX) + "(.*)"),
                     (Action("PARSE_JSON_OUTPUT_DICT"), Action("SUPPRESS"))),)


def compile_wranglers(cab: Mapping[str, Any], *, yield_output: bool = False) -> Compiled:
    """Compile a cab's wranglers (cached per distinct specification).

    ``yield_output`` (python flavours) adds Stimela's: a ``yield_output(name=value)`` line of the
    cab's output becomes outputs and is not shown.
    """
    spec = dict((cab.get("management") or {}).get("wranglers") or {})
    spec.update(cab.get("wranglers") or {})
    own = _compile(json.dumps(list(spec.items())), f"cab '{cab.get('name') or cab.get('command')}'") if spec else ()
    return own + _YIELD if yield_output else own


def apply(wranglers: Compiled, line: str, level: int, status: Status) -> tuple[str | None, int]:
    """Apply every matching wrangler to one output line; returns (line or None, level)."""
    suppress = False
    for regex, actions in wranglers:
        match = regex.search(line)
        if not match:
            continue
        for act in actions:
            kind = act.kind
            if kind == "SUPPRESS":
                suppress = True
            elif kind == "SEVERITY":
                level = max(level, LEVELS[str(act.arg).upper()])
            elif kind == "REPLACE":
                line = regex.sub(act.arg, line)
            elif kind == "WARNING":
                status.warnings.append(act.arg or line)
                level = max(level, logging.WARNING)
            elif kind == "ERROR":
                message = _format(act.arg, match) if act.arg else (
                    f"cab marked as failed based on encountering '{regex.pattern}' in output: {line.strip()}")
                status.declare_failure(message)
                level = max(level, logging.ERROR)
            elif kind == "DECLARE_SUCCESS":
                status.declare_success()
            elif kind == "PARSE_OUTPUT":
                name = str(act.arg)
                gid: str | int = act.group if act.group is not None else (name if name in regex.groupindex else 1)
                _load(status, name, match[gid], LOADERS[act.dtype or "str"])
            elif kind == "HIGHLIGHT":
                continue
            elif kind == "PARSE_JSON_OUTPUTS" and regex.groupindex:
                for name, text in match.groupdict().items():
                    if text is not None:
                        _load(status, name, text, json.loads)
            else:  # PARSE_JSON_OUTPUT_DICT, or PARSE_JSON_OUTPUTS without named groups
                text = match[1] if regex.groups else line[match.start():]
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    status.declare_failure(f"could not parse a JSON dict of outputs from {text!r}: {exc}")
                    continue
                if isinstance(value, dict):
                    status.outputs.update(value)
                else:
                    status.declare_failure(f"expected a JSON dict of outputs, got {text!r}")
    return (None, level) if suppress else (line, level)


def _format(template: str, match: re.Match) -> str:
    try:
        return template.format(**match.groupdict())
    except (KeyError, IndexError, ValueError):
        return template


def _load(status: Status, name: str, text: str | None, loader: Callable[[str], Any]) -> None:
    try:
        status.outputs[name] = loader(text)  # type: ignore[arg-type]  # None fails the int/float loaders
    except (TypeError, ValueError) as exc:
        status.declare_failure(f"could not parse output '{name}' from {text!r}: {exc}")
