"""Cab ``dynamic_schema``: a Python function that changes a cab's inputs/outputs per step.

As in Stimela, ``dynamic_schema: module.function`` names a function called as
``function(params, inputs, outputs) -> (inputs, outputs)`` with the step's known parameter
values and the cab's schemas; the returned entries may be radioflow ``Parameter`` objects,
``scabha.cargo.Parameter`` objects, mappings or shorthand strings. A name that cannot be
imported, or a function that fails, is a validation error at the cab's ``dynamic_schema`` line.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

from .load import where
from .model import PARAMETER_FIELDS, Cab, Parameter, Problems, parse_schemas


def schema_function(cab: Cab, problems: Problems) -> Callable[..., Any] | None:
    """Import the cab's ``dynamic_schema`` function; a problem (and None) if it cannot be."""
    ref = str(cab.dynamic_schema)
    loc = where(cab._raw, "dynamic_schema", cab.where) if cab._raw is not None else cab.where
    if "." not in ref:
        problems.add(loc, f"cab '{cab.name}': dynamic_schema '{ref}' must be module_name.function_name")
        return None
    from ..stimela_compat import install

    install()   # schema functions written for Stimela import scabha.cargo.Parameter
    module_name, func_name = ref.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        problems.add(loc, f"cab '{cab.name}': dynamic_schema '{ref}': cannot import {module_name} "
                          f"({type(exc).__name__}: {exc})")
        return None
    func = getattr(module, func_name, None)
    if not callable(func):
        problems.add(loc, f"cab '{cab.name}': dynamic_schema '{ref}': {module_name} has no function '{func_name}'")
        return None
    return func


def _spec(value: Any) -> Any:
    """A returned schema entry as something :func:`parse_schemas` reads."""
    if isinstance(value, Parameter):
        return value.plain()
    if isinstance(value, (str, Mapping)):
        return dict(value) if isinstance(value, Mapping) else value
    fields = value.to_dict() if callable(getattr(value, "to_dict", None)) else dict(getattr(value, "__dict__", {}))
    return {k: v for k, v in fields.items() if k in PARAMETER_FIELDS and v is not None}


def apply_dynamic_schema(cab: Cab, params: Mapping[str, Any], what: str, problems: Problems) -> Cab:
    """The cab with the schemas its ``dynamic_schema`` function returns for ``params`` (a copy)."""
    func = schema_function(cab, problems)
    if func is None:
        return cab
    loc = where(cab._raw, "dynamic_schema", cab.where) if cab._raw is not None else cab.where
    try:
        result = func(dict(params), dict(cab.schema_inputs), dict(cab.schema_outputs))
        inputs, outputs = result
    except Exception as exc:
        problems.add(loc, f"{what}: dynamic_schema '{cab.dynamic_schema}' failed: {type(exc).__name__}: {exc}")
        return cab
    new = cab.model_copy()
    new._raw, new._where, new._plain = cab._raw, cab.where, None
    sides = []
    for side, is_out in ((inputs, False), (outputs, True)):
        if not isinstance(side, Mapping):
            problems.add(loc, f"{what}: dynamic_schema '{cab.dynamic_schema}' must return (inputs, outputs) "
                              f"mappings, not {type(side).__name__}")
            return cab
        parsed = parse_schemas({str(k): _spec(v) for k, v in side.items()}, f"cab '{cab.name}' dynamic schema",
                               problems, outputs=is_out)
        for name, param in parsed.items():
            old = (cab.schema_outputs if is_out else cab.schema_inputs).get(name)
            param._where = old.where if old is not None else loc
        sides.append(parsed)
    new._inputs, new._outputs = sides
    return new
