"""Validation: dtype coercion of parameter values, and prevalidation of a whole recipe.

:func:`compile_recipe` turns the located YAML tree into :class:`RecipeDef` / :class:`StepDef`
objects (cabs resolved, aliases expanded, defaults split per step) and collects *every*
problem -- unknown keys, bad dtypes, unknown cabs, missing required parameters, wrong
types, bad alias targets, bad formulas -- before any step runs. :func:`validate_values`
checks resolved values at run time (types, choices, ``must_exist``, ``mkdir``).
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ValidationError
from ..vis.location import local_path
from .assignments import (
    alias_entries,
    apply_assignments,
    nested_default,
    nested_to_dotted,
    root_params,
    step_assignments,
)
from .dtypes import CoercionError, coerce
from .dynschema import apply_dynamic_schema
from .formula import UNSET, FormulaError, check, is_formula
from .load import Document, LocDict, where
from .model import Cab, ForLoop, Parameter, Problems, Recipe, Step, build, build_cab, parse_schemas
from .names import check_names

_ALIAS = re.compile(r"^(?:\((?P<cab>[^()]+)\)|(?P<step>[^.]+))\.(?P<param>.+)$")


@dataclass
class StepDef:
    """A step with its cab (or nested recipe) resolved."""

    label: str
    step: Step
    where: str
    raw: Any
    cab: Cab | None = None
    recipe: RecipeDef | None = None
    cab_name: str = ""

    @property
    def schema(self) -> dict[str, Parameter]:
        if self.cab is not None:
            return self.cab.schema
        return self.recipe.schema if self.recipe is not None else {}

    @property
    def inputs(self) -> dict[str, Parameter]:
        if self.cab is not None:
            return self.cab.schema_inputs
        return self.recipe.inputs if self.recipe is not None else {}

    @property
    def outputs(self) -> dict[str, Parameter]:
        if self.cab is not None:
            return self.cab.schema_outputs
        return self.recipe.outputs if self.recipe is not None else {}

    def param_where(self, name: str) -> str:
        params = self.raw.get("params") if isinstance(self.raw, dict) else None
        if isinstance(params, LocDict) and name in params:
            return params.where(name)
        return self.where


@dataclass
class RecipeDef:
    """A recipe ready to run: schemas, steps, aliases and defaults resolved."""

    name: str
    model: Recipe
    where: str
    raw: Any
    inputs: dict[str, Parameter] = field(default_factory=dict)
    outputs: dict[str, Parameter] = field(default_factory=dict)
    steps: dict[str, StepDef] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)   # ``step.param=value`` keys applied to steps
    aliases: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    step_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def schema(self) -> dict[str, Parameter]:
        return {**self.inputs, **self.outputs}

    @property
    def for_loop(self) -> ForLoop | None:
        return self.model.for_loop

    def alias_targets(self, label: str) -> dict[str, str]:
        """``{step_param: recipe_param}`` for the aliases that point into step ``label``."""
        out: dict[str, str] = {}
        for name, targets in self.aliases.items():
            for step_label, param in targets:
                if step_label == label:
                    out[param] = name
        return out


def compile_recipe(doc: Document, name: str, params: Mapping[str, Any] | None = None,
                   *, params_where: str = "command line", check_params: bool = True) -> RecipeDef:
    """Build and prevalidate recipe ``name`` of ``doc``; raise one ValidationError listing all problems.

    ``params`` are the run's assignments: a recipe parameter, or ``step.param`` (``sub.step.param``
    for nested recipes) which sets that step's parameter as Stimela's ``s1.msg=hey`` does; the
    step keys applied are in ``RecipeDef.assigned`` (see :func:`root_params`).
    """
    problems = Problems()
    recipes = doc.recipes
    if name not in recipes:
        known = ", ".join(sorted(recipes)) or "none"
        raise ValidationError(f"{doc.tree.loc}: no recipe named '{name}' (recipes defined: {known}).")
    rdef = _compile(doc, recipes[name], name, problems, stack=[], cabs={}, assign=dict(params or {}),
                    assign_where=params_where)
    if rdef is not None and check_params:
        _check_root_params(rdef, root_params(rdef, params or {}), params_where, problems)
    problems.raise_if_any(f"recipe '{name}' failed validation")
    assert rdef is not None
    return rdef


def _compile(doc: Document, raw: Any, name: str, problems: Problems, stack: list[int],
             cabs: dict[tuple[int, str], Cab | None], assign: Mapping[str, Any] | None = None,
             assign_where: str = "command line") -> RecipeDef | None:
    if id(raw) in stack:
        problems.add(where(raw), f"recipe '{name}' includes itself (recursive recipe)")
        return None
    model = build(Recipe, raw, f"recipe '{name}'", problems)
    if model is None:
        return None
    rdef = RecipeDef(name=name, model=model, where=where(raw), raw=raw)
    rdef.inputs = parse_schemas(raw.get("inputs"), f"recipe '{name}' inputs", problems)
    rdef.outputs = parse_schemas(raw.get("outputs"), f"recipe '{name}' outputs", problems, outputs=True)
    if model.for_loop is not None and model.for_loop.var not in rdef.inputs:
        loop_param = Parameter(dtype="Any", info="for-loop variable")
        loop_param._where = where(raw, "for_loop")
        rdef.inputs[model.for_loop.var] = loop_param
    if isinstance(model.for_loop, ForLoop) and isinstance(model.for_loop.over, str) and not is_dynamic(model.for_loop.over):
        if model.for_loop.over not in rdef.inputs:
            problems.add(where(raw.get("for_loop"), "over"),
                         f"recipe '{name}': for_loop.over names '{model.for_loop.over}', which is not an input of the recipe")
    steps_raw = raw.get("steps") or {}
    if not steps_raw:
        problems.add(rdef.where, f"recipe '{name}' has no steps")
    stack.append(id(raw))
    try:
        for label, sraw in steps_raw.items():
            sub_assign = step_assignments(assign or {}, str(label))
            sdef = _compile_step(doc, rdef, str(label), sraw, problems, stack, cabs, sub_assign, assign_where)
            if sdef is not None:
                rdef.steps[str(label)] = sdef
    finally:
        stack.pop()
    for sdef in rdef.steps.values():
        sdef.step.params = nested_to_dotted(sdef.step.params, sdef.schema)
    if assign:
        apply_assignments(rdef, assign, assign_where, problems)
    _apply_dynamic_schemas(rdef, problems)
    _compile_aliases(rdef, problems)
    _split_defaults(rdef, problems)
    _check_steps(rdef, problems)
    _check_formulas(raw, problems)
    check_names(rdef, problems)
    return rdef


def _compile_step(doc: Document, rdef: RecipeDef, label: str, raw: Any, problems: Problems,
                  stack: list[int], cabs: dict[tuple[int, str], Cab | None],
                  assign: Mapping[str, Any] | None = None, assign_where: str = "command line") -> StepDef | None:
    loc = where(rdef.raw.get("steps"), label, rdef.where)
    what = f"recipe '{rdef.name}' step '{label}'"
    step = build(Step, raw, what, problems)
    if step is None:
        return None
    sdef = StepDef(label=label, step=step, where=loc, raw=raw)
    if (step.cab is None) == (step.recipe is None):
        problems.add(loc, f"{what} needs exactly one of 'cab' or 'recipe'")
        return sdef
    if step.cab is not None:
        if isinstance(step.cab, str):
            cab_raw = _find(doc, step.cab, "cabs")
            if cab_raw is None:
                known = ", ".join(sorted(doc.cabs)) or "none"
                problems.add(where(raw, "cab", loc), f"{what}: unknown cab '{step.cab}' (cabs defined: {known})")
                return sdef
            sdef.cab_name = step.cab.split(".")[-1]
        else:
            cab_raw, sdef.cab_name = raw["cab"], f"{rdef.name}.{label}"
        key = (id(cab_raw), sdef.cab_name)
        if key not in cabs:                            # many steps share a cab: build it once
            cabs[key] = build_cab(cab_raw, sdef.cab_name, problems)
        sdef.cab = cabs[key]
    else:
        if isinstance(step.recipe, str):
            sub_raw = _find(doc, step.recipe, "lib.recipes")
            if sub_raw is None:
                known = ", ".join(sorted(doc.recipes) + sorted(f"lib.recipes.{k}" for k in doc.lib.get("recipes") or {}))
                problems.add(where(raw, "recipe", loc), f"{what}: unknown recipe '{step.recipe}' (defined: {known or 'none'})")
                return sdef
            sub_name = step.recipe
        else:
            sub_raw, sub_name = raw["recipe"], f"{rdef.name}.{label}"
        sdef.recipe = _compile(doc, sub_raw, sub_name, problems, stack, cabs, assign, assign_where)
    return sdef


def _apply_dynamic_schemas(rdef: RecipeDef, problems: Problems) -> None:
    """Give each step whose cab has a ``dynamic_schema`` the schemas it returns for the step's values."""
    for label, sdef in rdef.steps.items():
        if sdef.cab is None or not sdef.cab.dynamic_schema:
            continue
        known = {k: p.default for k, p in sdef.cab.schema.items() if p.has_default}
        known.update(rdef.step_defaults.get(label, {}))
        known.update(sdef.step.params)
        known = {k: v for k, v in known.items() if v is not UNSET and not is_dynamic(v)}
        sdef.cab = apply_dynamic_schema(sdef.cab, known, f"recipe '{rdef.name}' step '{label}'", problems)


def _find(doc: Document, ref: str, section: str) -> Any:
    """A cab (``x`` in ``cabs`` or a dotted path) or recipe (top-level, ``lib.recipes.x``, dotted path)."""
    if section == "cabs" and ref in doc.cabs:
        return doc.cabs[ref]
    if section != "cabs" and ref in (doc.lib.get("recipes") or {}):
        return doc.lib["recipes"][ref]
    node: Any = doc.tree
    for part in ref.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _resolve_alias(rdef: RecipeDef, target: str) -> list[tuple[str, str]] | str:
    """Alias target -> [(step, param)] or an error message."""
    m = _ALIAS.match(target.strip()) if isinstance(target, str) else None
    if not m:
        return f"alias target '{target}' must look like step.param, (cab).param or a wildcard such as *.param"
    param = m.group("param")
    if m.group("cab"):
        cab = m.group("cab")
        labels = [lb for lb, s in rdef.steps.items() if s.cab is not None and (s.cab_name == cab or s.step.cab == cab)]
        if not labels:
            return f"alias target '{target}': no step of recipe '{rdef.name}' uses cab '{cab}'"
    else:
        pattern = m.group("step")
        labels = [lb for lb in rdef.steps if fnmatch.fnmatchcase(lb, pattern)]
        if not labels and not any(c in pattern for c in "*?["):
            return f"alias target '{target}': no step of recipe '{rdef.name}' matches '{pattern}' (steps: {', '.join(rdef.steps)})"
    wild = bool(m.group("cab")) or any(c in m.group("step") for c in "*?[")
    if wild and not labels:
        return []   # as in Stimela, a wildcard that matches no step is no error
    out = []
    for lb in labels:
        if param in rdef.steps[lb].schema:
            out.append((lb, param))
        elif not wild:
            known = ", ".join(rdef.steps[lb].schema) or "none"
            return f"alias target '{target}': step '{lb}' has no parameter '{param}' (it has: {known})"
    if not out and (not wild or m.group("cab")):
        return f"alias target '{target}': none of the steps {', '.join(labels)} has a parameter '{param}'"
    return out


def _compile_aliases(rdef: RecipeDef, problems: Problems) -> None:
    entries: list[tuple[str, str, str, bool]] = []   # (recipe param, target, loc, declared)
    for io in (rdef.inputs, rdef.outputs):
        for pname, pdef in io.items():
            for target in pdef.aliases or []:
                entries.append((pname, target, pdef.where, True))
    aliases_raw = rdef.raw.get("aliases") or {}
    for pname, targets, loc in alias_entries(aliases_raw):
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list):
            problems.add(loc, f"recipe '{rdef.name}': alias '{pname}' must be a step.param string or a list of them")
            continue
        for target in targets:
            entries.append((str(pname), target, loc, False))
    for pname, target, loc, _declared in entries:
        resolved = _resolve_alias(rdef, target)
        if isinstance(resolved, str):
            problems.add(loc, f"recipe '{rdef.name}': {resolved}")
            continue
        if not resolved:
            continue
        rdef.aliases.setdefault(pname, [])
        for lb, param in resolved:
            if (lb, param) not in rdef.aliases[pname]:
                rdef.aliases[pname].append((lb, param))
        if pname not in rdef.inputs and pname not in rdef.outputs:
            lb, param = resolved[0]
            sdef = rdef.steps[lb]
            src = sdef.schema[param]
            copy_ = src.model_copy(deep=True)
            copy_._type, copy_._where, copy_._is_output = src.type, loc, src.is_output
            # a required target supplied by its step is not required at recipe level
            supplied = param in sdef.step.params
            if supplied or src.implicit is not None:
                copy_.required = False
            copy_.aliases = None
            (rdef.outputs if src.is_output else rdef.inputs)[pname] = copy_


def _split_defaults(rdef: RecipeDef, problems: Problems) -> None:
    raw = rdef.raw.get("defaults") or {}
    for key, value in _flatten(raw, rdef.steps, schema=rdef.schema):
        loc = _deep_where(raw, key)
        if "." in key and key.split(".", 1)[0] in rdef.steps:
            lb, param = key.split(".", 1)
            if param not in rdef.steps[lb].schema:
                if not nested_default(rdef.steps[lb].recipe, param, value):
                    problems.add(loc, f"recipe '{rdef.name}' defaults: step '{lb}' has no parameter '{param}'")
                continue
            rdef.step_defaults.setdefault(lb, {})[param] = value
        elif key in rdef.schema:
            rdef.defaults[key] = value
        else:
            problems.add(loc, f"recipe '{rdef.name}' defaults: '{key}' is neither an input/output of the recipe nor step.param")


def _flatten(raw: Any, steps: Mapping[str, Any], prefix: str = "",
             schema: Mapping[str, Any] | None = None) -> list[tuple[str, Any]]:
    schema = schema or {}
    out: list[tuple[str, Any]] = []
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and ((not prefix and key in steps) or (full not in schema and value and any(
                str(name).startswith(full + ".") for name in schema))):
            out.extend(_flatten(value, steps, prefix=f"{full}.", schema=schema))
        else:
            out.append((full, value))
    return out


def _deep_where(raw: Any, dotted: str) -> str:
    if isinstance(raw, LocDict) and dotted in raw:
        return raw.where(dotted)
    head = dotted.split(".", 1)[0]
    sub = raw.get(head) if isinstance(raw, dict) else None
    if isinstance(sub, LocDict) and "." in dotted:
        return sub.where(dotted.split(".", 1)[1])
    return where(raw, head)


def is_dynamic(value: Any) -> bool:
    """A value only known at run time: a formula or a string with substitutions."""
    if isinstance(value, str):
        return is_formula(value) or "{" in value
    if isinstance(value, list):
        return any(is_dynamic(v) for v in value)
    if isinstance(value, dict):
        return any(is_dynamic(v) for v in value.values())
    return False


def _check_steps(rdef: RecipeDef, problems: Problems) -> None:
    for label, sdef in rdef.steps.items():
        schema = sdef.schema
        if sdef.cab is None and sdef.recipe is None:
            continue
        what = f"recipe '{rdef.name}' step '{label}'"
        aliased = rdef.alias_targets(label)
        given = dict(sdef.step.params)
        for pname, value in given.items():
            loc = sdef.param_where(pname)
            if pname not in schema:
                known = ", ".join(schema) or "none"
                problems.add(loc, f"{what}: unknown parameter '{pname}' (known: {known})")
                continue
            param = schema[pname]
            if param.implicit is not None:
                problems.add(loc, f"{what}: parameter '{pname}' is implicit and cannot be set")
                continue
            _static_check(value, param, f"{what}: parameter '{pname}'", loc, problems)
        for pname, value in rdef.step_defaults.get(label, {}).items():
            _static_check(value, schema[pname], f"recipe '{rdef.name}' defaults '{label}.{pname}'",
                          _deep_where(rdef.raw.get("defaults") or {}, f"{label}.{pname}"), problems)
        for pname, param in schema.items():
            if param.is_output or not param.required:
                continue
            own_default = sdef.recipe is not None and pname in sdef.recipe.defaults   # nested recipe's defaults:
            if (pname in given or pname in rdef.step_defaults.get(label, {}) or param.has_default
                    or param.implicit is not None or own_default):
                continue
            if pname in aliased:
                rp = rdef.schema.get(aliased[pname])
                if rp is not None and (rp.required or rp.has_default or aliased[pname] in rdef.defaults):
                    continue
                if rp is not None and rdef.for_loop is not None and aliased[pname] == rdef.for_loop.var:
                    continue
                problems.add(sdef.where, f"{what}: required parameter '{pname}' is aliased to recipe "
                                         f"input '{aliased[pname]}', which is neither required nor has a default")
                continue
            problems.add(sdef.where, f"{what}: required parameter '{pname}' is not set")
    for pname, value in rdef.defaults.items():
        _static_check(value, rdef.schema[pname], f"recipe '{rdef.name}' default '{pname}'",
                      _deep_where(rdef.raw.get("defaults") or {}, pname), problems)
    for pname, param in rdef.schema.items():
        if param.has_default:
            _static_check(param.default, param, f"recipe '{rdef.name}' parameter '{pname}' default", param.where, problems)


def _static_check(value: Any, param: Parameter, what: str, loc: str, problems: Problems) -> None:
    if value is None or value is UNSET or is_dynamic(value):
        return
    try:
        value = coerce(value, param.type)
    except CoercionError as exc:
        problems.add(loc, f"{what}: wrong type for dtype {param.dtype}: {exc}")
        return
    msg = _choice_problem(value, param)
    if msg:
        problems.add(loc, f"{what}: {msg}")


def _check_formulas(node: Any, problems: Problems, loc: str | None = None) -> None:
    """Syntax, function names and arities of every ``=formula`` in the recipe tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            _check_formulas(value, problems, where(node, key, loc or "<unknown>"))
    elif isinstance(node, list):
        for value in node:
            _check_formulas(value, problems, getattr(node, "loc", loc))
    elif is_formula(node):
        try:
            check(node[1:], where=loc or "")
        except FormulaError as exc:
            problems.add("", str(exc))      # the message already starts with file:line


def _check_root_params(rdef: RecipeDef, params: dict[str, Any], loc: str, problems: Problems) -> None:
    schema = rdef.schema
    for pname, value in params.items():
        if pname not in schema:
            known = ", ".join(schema) or "none"
            problems.add(loc, f"recipe '{rdef.name}' has no parameter '{pname}' (known: {known})")
            continue
        _static_check(value, schema[pname], f"parameter '{pname}'", loc, problems)
    for pname, param in rdef.inputs.items():
        if param.required and pname not in params and not param.has_default and pname not in rdef.defaults:
            problems.add(loc, f"recipe '{rdef.name}': required input '{pname}' is not set (defined at {param.where}; "
                              f"give it as {pname}=VALUE)")


def _choice_problem(value: Any, param: Parameter) -> str | None:
    if param.choices and value not in param.choices and value is not None:
        return f"value {value!r} is not one of the choices {list(param.choices)}"
    if param.element_choices and isinstance(value, (list, tuple, dict)):
        elems = value.values() if isinstance(value, dict) else value
        bad = [v for v in elems if v not in param.element_choices]
        if bad:
            return f"element(s) {bad!r} not among the choices {list(param.element_choices)}"
    return None


def validate_values(values: Mapping[str, Any], schema: Mapping[str, Parameter], *, what: str,
                    where_of: Any = None, outputs: bool = False, check_required: bool = True,
                    workdir: str = ".") -> dict[str, Any]:
    """Coerce resolved ``values`` against ``schema`` and check choices, required and paths.

    Returns the coerced values (UNSET dropped). ``outputs`` selects which side of the schema
    is checked for ``required`` (inputs before a step, outputs after it). Raises one
    ValidationError listing all problems.
    """
    problems = Problems()
    loc = where_of if callable(where_of) else (lambda _name: where_of or "")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is UNSET:
            continue
        param = schema.get(name)
        if param is None:
            out[name] = value
            continue
        if value is None:
            out[name] = None
            continue
        try:
            value = coerce(value, param.type)
        except CoercionError as exc:
            problems.add(loc(name), f"parameter '{name}' (dtype {param.dtype}): {exc}")
            continue
        msg = _choice_problem(value, param)
        if msg:
            problems.add(loc(name), f"parameter '{name}': {msg}")
            continue
        out[name] = value
    for name, param in schema.items():
        if param.is_output != outputs:
            continue
        value = out.get(name)
        if value is None:
            if check_required and param.required:
                side = "output" if outputs else "parameter"
                problems.add(loc(name), f"required {side} '{name}' is not set")
            continue
        if not outputs:
            _check_paths(name, value, param, loc(name), problems, workdir)
    problems.raise_if_any(what)
    return out


def _paths(value: Any, param: Parameter) -> list[str]:
    if param.type.is_file and isinstance(value, str):
        return [value]
    if param.type.is_file_list and isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _check_paths(name: str, value: Any, param: Parameter, loc: str, problems: Problems, workdir: str) -> None:
    must_exist = param.must_exist if param.must_exist is not None else not param.is_output
    for path in _paths(value, param):
        full = local_path(path, workdir)
        if full is None:
            continue
        if must_exist and not os.path.exists(full) and not param.is_output:
            problems.add(loc, f"input '{name}' = {path!r} does not exist")


def _is_directory(param: Parameter) -> bool:
    """A Directory, or a list of them (possibly optional)."""
    for m in param.type.members():
        if m.name == "Directory" or (m.base == "List" and any(a.name == "Directory" for a in m.args)):
            return True
    return False


def prepare_outputs(values: Mapping[str, Any], schema: Mapping[str, Parameter], workdir: str = ".") -> None:
    """Create parent directories of file outputs and ``mkdir`` directories before a step runs."""
    for name, value in values.items():
        param = schema.get(name)
        if param is None or value is None:
            continue
        for path in _paths(value, param):
            full = local_path(path, workdir)
            if full is None:
                continue
            # as Stimela: mkdir makes a Directory itself; a file's mkdir only makes its parent
            if param.mkdir and _is_directory(param):
                os.makedirs(full, exist_ok=True)
            elif param.mkdir or param.is_output or param.writable:
                parent = os.path.dirname(full)
                if parent and (param.path_policies is None or param.path_policies.mkdir_parent):
                    os.makedirs(parent, exist_ok=True)
