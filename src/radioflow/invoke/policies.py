"""Turn a binary cab's parameters into an argument list (Stimela2 ``ParameterPolicies``).

The rules follow Stimela2's ``Cab.build_argument_list`` so that existing cab definitions
produce the same command lines: each parameter's own ``policies`` override the cab-level
``policies``; ``nom_de_guerre`` renames the option; positional arguments go after the options
(``positional_head`` ones before them); booleans become a bare flag unless ``explicit_true`` /
``explicit_false`` give a value; lists follow ``repeat`` (``list``, ``repeat``, ``[]`` or a
separator string). Problems are reported as :class:`radioflow.errors.ValidationError`.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ValidationError
from ..recipe.dtypes import PATH_TYPES
from ..recipe.shorthand import parse_shorthand

#: Keys a parameter schema may hold; a mapping with other keys is a nested section.
PARAM_FIELDS = frozenset({
    "info", "writable", "dtype", "implicit", "tags", "required", "choices", "element_choices",
    "default", "aliases", "mkdir", "must_exist", "nom_de_guerre", "policies", "category",
    "metavar", "abbreviation", "metadata", "suffix", "access_parent_dir", "write_parent_dir",
    "remote_access", "suppress_cli_default", "path_policies", "skip_freshness_checks",
    "remove_if_exists", "action", "env",
})

POLICY_FIELDS = frozenset({
    "key_value", "positional", "positional_head", "repeat", "prefix", "skip", "skip_implicits",
    "skip_implicit", "disable_substitutions", "explicit_true", "explicit_false", "split",
    "replace", "format", "format_list", "format_list_scalar", "pass_missing_as_none",
})

def _flatten(section: Mapping[str, Any] | None, prefix: str = "") -> Iterator[tuple[str, dict]]:
    for name, value in (section or {}).items():
        if name == "subsection":
            continue
        full = f"{prefix}{name}"
        if value is None:
            yield full, {}
        elif isinstance(value, str):
            yield full, parse_shorthand(value)
        elif isinstance(value, Mapping) and set(value) - PARAM_FIELDS and all(
            v is None or isinstance(v, (str, Mapping)) for v in value.values()
        ):
            yield from _flatten(value, f"{full}.")
        elif isinstance(value, Mapping):
            yield full, dict(value)
        else:
            yield full, {}


class FlatCab(dict):
    """A cab (plain dict) whose ``inputs``/``outputs`` are already flattened schema dicts."""


def flat_cab(cab: Mapping[str, Any]) -> FlatCab:
    """Flatten a cab's schemas once, so repeated lookups during one call are cheap."""
    if isinstance(cab, FlatCab):
        return cab
    return FlatCab(cab, inputs=dict(_flatten(cab.get("inputs"))), outputs=dict(_flatten(cab.get("outputs"))))


def cab_schemas(cab: Mapping[str, Any]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Return the cab's flattened ``(inputs, outputs)`` schemas (nested sections as ``a.b``)."""
    flat = flat_cab(cab)
    return flat["inputs"], flat["outputs"]


def is_named_output(schema: Mapping[str, Any]) -> bool:
    """A file-like output whose name is passed to the cab (not implicit), as in Stimela."""
    return str(schema.get("dtype", "str")) in PATH_TYPES and not schema.get("implicit")


def get_policy(cab: Mapping[str, Any], schema: Mapping[str, Any], policy: str, default: Any = None) -> Any:
    """The parameter's own policy if set, else the cab's, else ``default``."""
    for source in (schema.get("policies") or {}, cab.get("policies") or {}):
        value = source.get(policy)
        if value is None and policy == "skip_implicits":
            value = source.get("skip_implicit")
        if value is not None:
            return value
    return default


def filter_params(cab: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters passed to a cab: inputs and named outputs, minus skipped ones.

    Keys keep the schema names (no ``nom_de_guerre``). Missing ones are passed as ``None``
    when ``pass_missing_as_none`` is set.
    """
    inputs, outputs = cab_schemas(cab)
    filtered: dict[str, Any] = {}
    for is_input, section in ((True, inputs), (False, outputs)):
        for name, schema in section.items():
            skip = get_policy(cab, schema, "skip")
            if skip is None and schema.get("implicit"):
                skip = get_policy(cab, schema, "skip_implicits")
            if skip:
                continue
            if not (is_input or is_named_output(schema)) and skip is not False:
                continue
            if name in params:
                filtered[name] = params[name]
            elif get_policy(cab, schema, "pass_missing_as_none"):
                filtered[name] = None
    return filtered


def _where(cab: Mapping[str, Any], name: str) -> str:
    return f"cab '{cab.get('name') or cab.get('command')}', parameter '{name}'"


def _stringify(cab, name, value, schema, values, option=None):
    """Stimela's ``stringify_argument``: value -> None, a string, or a list of strings."""
    if value is None:
        return None
    fmt = get_policy(cab, schema, "format")
    fmt_list = get_policy(cab, schema, "format_list")
    fmt_scalar = get_policy(cab, schema, "format_list_scalar")
    split = get_policy(cab, schema, "split")
    is_list = isinstance(value, (list, tuple, set))
    try:
        if isinstance(value, str) and split:
            value, is_list = value.split(split), True
        if is_list:
            if fmt_list:
                value = [f.format(*value, **values) for f in fmt_list]
            elif fmt:
                value = [fmt.format(x, **values) for x in value]
            else:
                value = [str(x) for x in value]
        elif fmt_scalar:
            value, is_list = [f.format(value, **values) for f in fmt_scalar], True
        elif fmt:
            value = fmt.format(value, **values)
        else:
            value = str(value)
    except (IndexError, KeyError, ValueError, AttributeError) as exc:
        raise ValidationError(
            f"{_where(cab, name)}: the format policy could not format value {value!r}: {exc!r}."
        ) from None
    if not is_list:
        return [option, value] if option else [value]
    repeat = get_policy(cab, schema, "repeat")
    if isinstance(repeat, bool):   # Stimela (OmegaConf) reads `repeat: false` as the separator "False"
        repeat = str(repeat)
    if repeat == "list":
        if get_policy(cab, schema, "key_value"):
            raise ValidationError(
                f"{_where(cab, name)}: repeat policy 'list' cannot be combined with key_value."
            )
        return ([option] if option else []) + list(value)
    if repeat == "[]":
        joined = "[" + ",".join(value) + "]"
        return [option, joined] if option else [joined]
    if repeat == "repeat":
        return list(itertools.chain.from_iterable((option, x) for x in value)) if option else list(value)
    if isinstance(repeat, str):
        return [option, repeat.join(value)] if option else [repeat.join(value)]
    raise ValidationError(
        f"{_where(cab, name)}: the value is a list but the parameter has no 'repeat' policy; set "
        "policies.repeat to 'list', 'repeat', '[]' or a separator such as ','."
    )


def build_arguments(cab: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    """Build the argument list (without the command) for a binary cab from its parameters."""
    inputs, outputs = cab_schemas(cab)
    schemas = {**inputs, **outputs}
    values = filter_params(cab, params)
    for name, schema in schemas.items():
        if schema.get("required") and name not in values and name in (inputs.keys() | {
            n for n, s in outputs.items() if is_named_output(s)
        }):
            raise ValidationError(f"{_where(cab, name)}: required parameter is missing.")

    head: list[str] = []
    tail: list[str] = []
    options: list[str] = []
    for name, value in values.items():
        schema = schemas[name]
        first = get_policy(cab, schema, "positional_head")
        if get_policy(cab, schema, "positional") or first:
            if value is False and get_policy(cab, schema, "explicit_false") is None:
                continue
            if isinstance(value, bool):
                explicit = get_policy(cab, schema, f"explicit_{str(value).lower()}")
                value = value if explicit is None else explicit
            args = _stringify(cab, name, value, schema, values)
            (head if first else tail).extend(args or [])
            continue
        key_value = get_policy(cab, schema, "key_value")
        optname = schema.get("nom_de_guerre") or name
        if not schema.get("nom_de_guerre"):
            for old, new in (get_policy(cab, schema, "replace") or {}).items():
                optname = optname.replace(str(old), str(new))
        prefix = get_policy(cab, schema, "prefix")
        option = ("--" if prefix is None else str(prefix)) + optname
        if isinstance(value, bool):
            if schema.get("action") == "store_false":   # argparse: the bare flag means False
                if not value:
                    options.append(option)
                continue
            explicit = get_policy(cab, schema, f"explicit_{str(value).lower()}")
            text = str(value) if explicit is None else str(explicit)
            if key_value:
                options.append(f"{option}={text}")
            elif explicit is not None:
                options += [option, text]
            elif value:
                options.append(option)
            continue
        args = _stringify(cab, name, value, schema, values, option=option)
        if args is None:
            continue
        if key_value and len(args) == 2:
            args = [f"{args[0]}={args[1]}"]
        options += args
    return head + options + tail
