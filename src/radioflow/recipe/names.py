"""Validation-time checks of the names formulas refer to, before anything runs.

Stimela finds a misspelt ``=recipe.flga`` or ``=steps.s1.nonexistent`` only when the step
comes up (a skip formula with an unknown name even counts as false there). Here every formula
and ``{}`` substitution in step parameters, ``skip``, recipe input defaults and ``for_loop.over``
is read for the names it refers to: ``recipe.X`` must be an input, output, assigned variable or
step of the recipe, ``steps.L.P`` a parameter of step ``L``, ``current.P`` one of the step's own.
Names under IFSET/VALID/TRY/EXISTS/GLOB (which accept missing names by design) are not checked.
Input defaults that refer to each other in a cycle and a ``for_loop`` over an input that cannot
hold a list are errors too. Each problem is reported with its ``file:line``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from .formula import FormulaError, is_formula, parse
from .formula.parser import children
from .load import where

if TYPE_CHECKING:
    from .model import Problems
    from .validate import RecipeDef, StepDef

#: Functions whose arguments may name things that do not exist.
_TOLERANT = frozenset({"IFSET", "VALID", "TRY", "EXISTS", "GLOB", "CASES"})
#: What the first part of a dotted name in a formula may be (see radioflow.run.frames.Scopes.ns).
NAMESPACES = frozenset({"recipe", "root", "parent", "previous", "steps", "info", "self", "config", "current"})
_SCALAR_DTYPES = frozenset({"int", "float", "str", "bool", "complex", "File", "Directory", "MS", "URI"})


def _formula_names(expr: str) -> Iterator[tuple[str, ...]]:
    """Dotted names (as segment tuples) a formula refers to outside tolerant functions."""
    try:
        node = parse(expr)
    except FormulaError:
        return                               # syntax errors are reported by the syntax check
    stack = [node]
    while stack:
        cur = stack.pop()
        kind = cur[0]
        if kind == "name":
            yield tuple(str(s) for s in cur[1])
        elif kind == "call" and cur[1] in _TOLERANT:
            continue
        elif kind in ("str", "raw"):
            yield from _template_names(cur[1])
        else:
            stack.extend(children(cur))


def _template_names(text: Any) -> Iterator[tuple[str, ...]]:
    from .substitute import _parse_template

    if not isinstance(text, str) or "{" not in text:
        return
    status, pieces = _parse_template(text)
    if status != "ok":
        return
    for piece in pieces:
        if type(piece) is not str:
            yield tuple(str(seg) for kind, seg in piece[1] if kind == ".")


def value_names(value: Any) -> Iterator[tuple[str, ...]]:
    """Names referred to by a raw parameter value (formula, template, or lists/dicts of them)."""
    if isinstance(value, str):
        if value.startswith("=="):
            yield from _template_names(value[2:])
        elif is_formula(value):
            yield from _formula_names(value[1:])
        else:
            yield from _template_names(value)
    elif isinstance(value, list):
        for item in value:
            yield from value_names(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from value_names(item)


def _known(name: str, keys: set[str]) -> bool:
    """``name`` is a key, or the first part of a dotted key (``foo`` of ``foo.z``)."""
    return name in keys or any(k.startswith(name + ".") for k in keys) or any(
        "*" in k or "[" in k for k in keys)


def _assigned_names(assign: Any, based_on: Any) -> set[str]:
    names = {str(k) for k in (assign or {})}
    for cases in (based_on or {}).values():
        if isinstance(cases, dict):
            for values in cases.values():
                if isinstance(values, dict):
                    names.update(str(k) for k in values)
    return names


def recipe_names(rdef: RecipeDef) -> set[str]:
    """Everything ``recipe.X`` may name in ``rdef``."""
    names = set(rdef.schema) | set(rdef.defaults) | set(rdef.steps)
    names |= _assigned_names(rdef.model.assign, rdef.model.assign_based_on)
    for sdef in rdef.steps.values():
        names |= _assigned_names(sdef.step.assign, sdef.step.assign_based_on)
    if rdef.for_loop is not None:
        names |= {rdef.for_loop.var, "for_loop.scatter"}
    return {n.split(".", 1)[0] if n.startswith("config.") else n for n in names}


def _check_name(segs: tuple[str, ...], rdef: RecipeDef, known: set[str], step: StepDef | None) -> str | None:
    """Why ``segs`` cannot resolve (None: it may)."""
    if len(segs) < 2:
        return None
    ns, first = segs[0], segs[1]
    if ns not in NAMESPACES:
        return f"'{ns}.{first}': no namespace '{ns}' (formulas see {', '.join(sorted(NAMESPACES))})"
    if ns == "recipe":
        if not _known(first, known):
            return f"'recipe.{first}' is not an input, output, variable or step of recipe '{rdef.name}'"
    elif ns == "steps":
        target = rdef.steps.get(first)
        if target is None:
            return f"'steps.{first}': recipe '{rdef.name}' has no step '{first}' (steps: {', '.join(rdef.steps)})"
        if len(segs) > 2 and not _dynamic(target) and not _known(segs[2], set(target.schema)):
            return f"'steps.{first}.{segs[2]}': step '{first}' has no parameter '{segs[2]}'"
    elif ns == "current" and step is not None and not _dynamic(step):
        if not _known(first, set(step.schema)):
            return f"'current.{first}': step '{step.label}' has no parameter '{first}'"
    return None


def _dynamic(sdef: StepDef) -> bool:
    return bool(sdef.cab is not None and sdef.cab.dynamic_schema)


def _report(value: Any, loc: str, rdef: RecipeDef, known: set[str], step: StepDef | None, what: str,
            problems: Problems) -> None:
    for segs in value_names(value):
        why = _check_name(segs, rdef, known, step)
        if why:
            problems.add(loc, f"{what}: {why}")


def check_names(rdef: RecipeDef, problems: Problems) -> None:
    """Unknown names in formulas, circular input defaults and a for_loop over a non-list."""
    known = recipe_names(rdef)
    for label, sdef in rdef.steps.items():
        what = f"recipe '{rdef.name}' step '{label}'"
        for pname, value in sdef.step.params.items():
            _report(value, sdef.param_where(pname), rdef, known, sdef, f"{what}: parameter '{pname}'", problems)
        if sdef.step.skip is not None:
            _report(sdef.step.skip, where(sdef.raw, "skip", sdef.where), rdef, known, sdef, f"{what}: skip", problems)
    for pname, param in rdef.inputs.items():
        if param.has_default:
            _report(param.default, param.where, rdef, known, None, f"recipe '{rdef.name}' input '{pname}' default",
                    problems)
    _check_cycles(rdef, problems)
    _check_loop(rdef, known, problems)


def _check_cycles(rdef: RecipeDef, problems: Problems) -> None:
    deps = {}
    for pname, param in rdef.schema.items():
        value = rdef.defaults.get(pname, param.default if param.has_default else None)
        deps[pname] = {s[1] for s in value_names(value) if len(s) >= 2 and s[0] == "recipe" and s[1] in rdef.schema}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(deps.get(name, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [name, nxt]
                problems.add(rdef.schema[name].where, f"recipe '{rdef.name}': input defaults form a circular "
                             f"reference: {' -> '.join('recipe.' + c for c in cycle)}")
            elif state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[name] = 2

    for name in sorted(deps):
        if state.get(name) is None:
            visit(name, [name])


def _check_loop(rdef: RecipeDef, known: set[str], problems: Problems) -> None:
    loop = rdef.for_loop
    if loop is None:
        return
    loc = where(rdef.raw.get("for_loop"), "over", rdef.where)
    if not isinstance(loop.over, str):
        return
    if is_formula(loop.over) or "{" in loop.over:
        _report(loop.over, loc, rdef, known, None, f"recipe '{rdef.name}': for_loop.over", problems)
        return
    param = rdef.inputs.get(loop.over)
    if param is None:
        return                                  # reported by the compiler
    base = str(param.dtype).replace(" ", "")
    if base in _SCALAR_DTYPES:
        problems.add(loc, f"recipe '{rdef.name}': for_loop.over names input '{loop.over}' of dtype {param.dtype}; "
                          "a for_loop needs a list (dtype List[...])")
    elif param.has_default and param.default is not None and not isinstance(param.default, (list, tuple)) \
            and not isinstance(param.default, str):
        problems.add(loc, f"recipe '{rdef.name}': for_loop.over names input '{loop.over}' whose default "
                          f"{param.default!r} is not a list")
    elif isinstance(param.default, str) and param.has_default and not is_formula(param.default) \
            and "{" not in param.default and base.startswith("Any"):
        problems.add(loc, f"recipe '{rdef.name}': for_loop.over names input '{loop.over}' whose default "
                          f"{param.default!r} is a string, not a list")
