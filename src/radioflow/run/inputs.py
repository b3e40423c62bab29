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

from ..errors import UsageError, ValidationError
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


def _per_run(param: Parameter) -> bool:
    return bool((param.metadata or {}).get("per_run"))


def _varies_per_run(value: Any, per_run_inputs: set[str]) -> bool:
    """True for a template with the run id, or one referring to another per-run input."""
    text = str(value)
    return "{config.run.id" in text or any(f"{{recipe.{n}" in text for n in per_run_inputs)


def deployment_settings(recipe_file: str, args: Sequence[str], *,
                        scheduled: bool) -> tuple[list[str], dict[str, str]]:
    """Command-line arguments and environment for a recipe run deployed elsewhere (a Job, a CronJob).

    ``args`` are ``[RECIPE] NAME=VALUE ... --BOOL/--no-BOOL``; NAME is an input or the
    environment variable of one. Inputs with an environment variable go into the environment
    (as the SRCNet jobs are configured), the rest onto the command line; every value is
    validated here. For a schedule, inputs marked ``metadata: {per_run: true}`` (names that
    must differ between runs) must be templates with ``{config.run.id}`` (the run's UTC start
    time and a random suffix) or refer to another such input, else every run would overwrite
    the previous one.
    """
    from ..recipe.load import load_documents
    from ..recipe.validate import compile_recipe
    from .api import choose_recipe

    rest, flags = split_flags(args)
    name = rest[0] if rest and "=" not in rest[0] else None
    pairs = rest[1:] if name is not None else rest
    doc = load_documents([recipe_file])
    rname = choose_recipe(doc, name)
    rdef = compile_recipe(doc, rname, check_params=False)
    by_env = {p.env: n for n, p in rdef.inputs.items() if p.env}
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"Argument '{pair}': give NAME=VALUE (NAME an input of recipe '{rname}' "
                             f"or its environment variable) or --BOOL/--no-BOOL.")
        input_name = by_env.get(key, key)
        if input_name not in rdef.inputs:
            known = ", ".join(sorted([*rdef.inputs, *by_env])) or "none"
            raise UsageError(f"'{key}' is neither an input of recipe '{rname}' nor the environment variable "
                             f"of one (known: {known}).")
        raw[input_name] = value
    values: dict[str, Any] = {**flag_params(rdef, flags)}
    for input_name, text in raw.items():
        env_name = rdef.inputs[input_name].env or input_name
        values.update(environment_params(rdef, {}, {env_name: text}) if rdef.inputs[input_name].env
                      else {input_name: yaml.safe_load(text) if text.strip() else ""})
    compile_recipe(doc, rname, values)               # types, choices, required inputs
    if scheduled:
        per_run = {n for n, p in rdef.inputs.items() if _per_run(p)}
        for n in sorted(per_run):
            value = raw.get(n, rdef.inputs[n].default)
            if not _varies_per_run(value, per_run):
                var = rdef.inputs[n].env or n
                raise ValidationError(f"{var}={value!r} would be the same in every run of the CronJob, so each run "
                                 f"would overwrite the last one's products. Use a template with the run id, "
                                 f"e.g. {var}='{value}-{{config.run.id}}', or leave it unset.")
    cli = list(flags) + [f"{n}={v}" for n, v in raw.items() if not rdef.inputs[n].env]
    env = {rdef.inputs[n].env or n: v for n, v in raw.items() if rdef.inputs[n].env}
    if name is not None:
        cli.insert(0, name)
    return cli, env
