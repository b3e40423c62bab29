"""Recipe inputs from outside the command line's ``name=value`` pairs.

* ``--NAME`` / ``--no-NAME`` flags set boolean inputs of the recipe being run (``-`` and ``_``
  are interchangeable in NAME).
* An input whose schema names an environment variable (``env: OBS_ID``) takes that
  variable's value when it is not given on the command line: command line > environment >
  default. A value that does not fit the input's dtype is an error naming the variable.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import yaml

from ..errors import UsageError
from ..recipe.dtypes import CoercionError, coerce
from ..recipe.model import Parameter
from ..recipe.validate import RecipeDef


def split_flags(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate ``--flag`` tokens (left over by the CLI parser) from the other arguments."""
    rest = [a for a in args if not (a.startswith("--") and len(a) > 2)]
    flags = [a for a in args if a.startswith("--") and len(a) > 2]
    return rest, flags


def is_bool(param: Parameter) -> bool:
    """True for ``bool`` and ``Optional[bool]`` inputs."""
    members = {m.name for m in param.type.members()}
    return "bool" in members and members <= {"bool", "None"}


def bool_flags(rdef: RecipeDef) -> dict[str, str]:
    """``flag name -> input name`` for the boolean inputs of a recipe."""
    return {name.replace("_", "-"): name for name, p in rdef.inputs.items() if is_bool(p)}


def flag_params(rdef: RecipeDef, flags: Sequence[str]) -> dict[str, bool]:
    """Turn ``--NAME`` / ``--no-NAME`` into ``{input: True/False}``; unknown flags are a usage error."""
    known = bool_flags(rdef)
    out: dict[str, bool] = {}
    for flag in flags:
        body = flag[2:]
        if "=" in body:
            raise UsageError(f"Option '{flag}': boolean inputs are flags (--NAME or --no-NAME), "
                             f"other inputs are given as NAME=VALUE.")
        key = body.replace("_", "-")
        if key in known:
            out[known[key]] = True
        elif key.startswith("no-") and key[3:] in known:
            out[known[key[3:]]] = False
        else:
            offered = ", ".join(f"--{k}/--no-{k}" for k in known) or "none"
            raise UsageError(f"No such option: {flag}. Boolean inputs of recipe '{rdef.name}' are flags "
                             f"({offered}); other inputs are given as NAME=VALUE.")
    return out


def environment_params(rdef: RecipeDef, given: Mapping[str, Any],
                       environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Values of inputs not in ``given`` whose schema names a set environment variable (coerced)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, param in rdef.inputs.items():
        var = param.env
        if not var or name in given or var not in env:
            continue
        raw = env[var]
        try:
            out[name] = coerce(raw, param.type)
            continue
        except CoercionError as exc:
            reason = str(exc)
        try:
            out[name] = coerce(yaml.safe_load(raw), param.type)   # lists, null, ...
        except (CoercionError, yaml.YAMLError):
            raise UsageError(f"Environment variable {var}={raw!r} (input '{name}' of recipe '{rdef.name}', "
                             f"dtype {param.dtype}, defined at {param.where}): {reason}. Fix or unset {var}, "
                             f"or give {name}=VALUE on the command line.") from None
    return out
