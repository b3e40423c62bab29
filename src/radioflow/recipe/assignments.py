"""Stimela's dotted names: ``step.param=value`` assignments reaching into steps (and nested
recipes), nested parameter sections written as mappings (``h: {h1: a}`` is ``h.h1``), and
recipe defaults for steps of nested recipes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .load import where

if TYPE_CHECKING:
    from .model import Problems
    from .validate import RecipeDef


def nested_to_dotted(values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``{h: {h1: a}}`` -> ``{"h.h1": a}`` where ``h`` is not a parameter but ``h.*`` are (Stimela's
    nested parameter sections); other entries are kept as they are."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        prefix = f"{key}."
        if (isinstance(value, Mapping) and key not in schema and value
                and any(str(name).startswith(prefix) for name in schema)):
            for sub, v in nested_to_dotted({f"{prefix}{k}": v for k, v in value.items()}, schema).items():
                out[sub] = v
        else:
            out[key] = value
    return out


def root_params(rdef: RecipeDef, params: Mapping[str, Any]) -> dict[str, Any]:
    """The assignments that are parameters of the recipe itself (not ``step.param`` ones)."""
    return {k: v for k, v in params.items() if k not in rdef.assigned}


def step_assignments(assign: Mapping[str, Any], label: str) -> dict[str, Any]:
    return {k[len(label) + 1:]: v for k, v in assign.items() if k.startswith(label + ".")}


def apply_assignments(rdef: RecipeDef, assign: Mapping[str, Any], loc: str, problems: Problems) -> None:
    """Set ``step.param=value`` assignments on the steps (after the steps are compiled)."""
    for key, value in assign.items():
        if key in rdef.schema or "." not in key:
            continue
        label, sub = key.split(".", 1)
        sdef = rdef.steps.get(label)
        if sdef is None:
            continue
        if sub in sdef.schema:
            sdef.step.params[sub] = value
        elif sdef.recipe is None or sub not in sdef.recipe.assigned:
            known = ", ".join(sdef.schema) or "none"
            problems.add(loc, f"invalid assignment {key}={value!r}: step '{label}' of recipe '{rdef.name}' "
                              f"has no parameter '{sub}' (known: {known})")
        rdef.assigned.add(key)


def alias_entries(raw: Any, prefix: str = "") -> list[tuple[str, Any, str]]:
    """``aliases`` entries as (name, targets, location); a nested mapping gives dotted names
    (``foo: {z: s1.g.g1}`` is the alias ``foo.z``), as Stimela's nested parameter sections."""
    out: list[tuple[str, Any, str]] = []
    for key, value in raw.items():
        if isinstance(value, dict):
            out.extend(alias_entries(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value, where(raw, key)))
    return out


def nested_default(sub: RecipeDef | None, key: str, value: Any) -> bool:
    """A default ``step.substep.param`` for a step of a nested recipe (as Stimela's defaults reach
    into sub-recipes); False if ``key`` names no parameter there."""
    if sub is None or "." not in key:
        return False
    lb, param = key.split(".", 1)
    sdef = sub.steps.get(lb)
    if sdef is None:
        return False
    if param in sdef.schema:
        sub.step_defaults.setdefault(lb, {})[param] = value
        return True
    return nested_default(sdef.recipe, param, value)
