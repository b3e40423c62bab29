"""The one parser of the parameter shorthand: ``int = 0 "help"``, ``File *``, ``MS``.

The rules are Stimela 2.1.4's (``scabha.cargo.Cargo.flatten_schemas``), read left to right:

* a trailing double-quoted string is the help text (``info``);
* then ``dtype = default``: the text after the first ``=`` is the default, one pair of matching
  quotes stripped; ``str = "text"`` is therefore help text "text" with an empty default;
* otherwise a trailing ``*`` marks the parameter required (``int* = 5`` is not required);
* what is left is the dtype (``str`` when nothing is left).

Stimela keeps the default as text and lets validation convert it to the dtype. Here an
unquoted default is converted at once, so formulas see it typed: a scalar dtype converts the
text (``int = 5`` -> 5, ``str = yes`` -> "yes", ``float = 1e-3`` -> 0.001), a list or dict
dtype reads it as YAML (``List[int] = [1, 2]`` -> [1, 2]). A default of ``UNSET`` means no
default, as in Stimela's validation.
The module imports nothing heavy: both the recipe loader and the invoke layer use it.
"""
from __future__ import annotations

from typing import Any

from .dtypes import CoercionError, DType, DTypeError, coerce

__all__ = ["parse_shorthand"]

_CONTAINERS = {"List", "Tuple", "Dict"}


def parse_shorthand(text: str) -> dict[str, Any]:
    """A shorthand string as a parameter schema dict (keys info, default, required, dtype)."""
    schema: dict[str, Any] = {}
    value = text.strip()
    if value.endswith('"') and '"' in value[:-1]:
        value, info, _ = value.rsplit('"', 2)
        value = value.strip()
        schema["info"] = info
    if "=" in value:
        value, default = value.split("=", 1)
        value, default = value.strip(), default.strip()
        quoted = len(default) >= 2 and default[0] == default[-1] and default[0] in "\"'"
        if quoted:
            schema["default"] = default[1:-1]
        elif default != "UNSET":
            schema["default"] = _typed_default(default, value)
    elif value.endswith("*"):
        schema["required"] = True
        value = value[:-1].strip()
    schema["dtype"] = value or "str"
    return schema


def _typed_default(text: str, dtype: str) -> Any:
    """An unquoted default as Stimela's validation would see it: a scalar dtype converts the
    text (kept as is when it does not convert: validation reports it), others read it as YAML."""
    if not text:
        return text
    try:
        parsed = DType.parse(dtype or "str")
    except DTypeError:
        parsed = None
    if parsed is not None and all(m.base not in _CONTAINERS for m in parsed.members()):
        try:
            return coerce(text, parsed)
        except CoercionError:
            return text
    import yaml  # deferred: the CLI must start fast

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
