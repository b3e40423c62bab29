"""Frames: the state of a running recipe, and the namespaces its formulas and ``{}`` see.

A :class:`Frame` is one recipe (or one loop iteration of it) while it runs. :class:`Scopes`
builds the namespaces ``recipe``, ``root``, ``parent``, ``current``, ``previous``, ``steps``,
``info`` and ``config`` from a frame, applies ``assign``/``assign_based_on``, checks
``preamble``/``epilogue`` assertions, resolves a step's parameters and publishes a finished
step's values back into its frame (``steps``, ``previous``, aliased recipe parameters).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from ..errors import RadioflowError, ValidationError
from ..recipe.formula import UNSET, LazyMapping
from ..recipe.load import to_plain, where
from ..recipe.substitute import resolve_value, substitute
from ..recipe.validate import RecipeDef, StepDef


@dataclass
class Frame:
    """State of one recipe (or one loop iteration of it) while it runs."""

    rdef: RecipeDef
    fqname: str
    recipe: dict[str, Any]
    root: Any
    parent: Any
    path: str                         # static tree name (recipe.step.sub...), the key of step decisions
    steps: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    late: list[tuple[str, Any, str]] = field(default_factory=list)   # output defaults resolved at the end
    backend: dict[str, Any] = field(default_factory=dict)  # backend options inherited by its steps
    step_params: dict[str, dict[str, Any]] = field(default_factory=dict)   # 'step.param' assignments


class Overlay(Mapping[str, Any]):
    """Read-only view: keys of ``first`` (e.g. lazily assigned variables) over ``second``."""

    def __init__(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
        self._first, self._second = first, second

    def __getitem__(self, key: str) -> Any:
        return self._first[key] if key in self._first else self._second[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first or key in self._second

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._second), **dict.fromkeys(self._first)})

    def __len__(self) -> int:
        return len(set(self._first) | set(self._second))


_formula_log = logging.getLogger("radioflow.recipe.formula")   # shown with the LOG() messages


def step_fqname(fr: Frame, label: str) -> str:
    """The run name of step ``label`` in frame ``fr``: Stimela's *taskname*, which names loop
    iterations by their index (``recipe.0.step``); ``info.fqname`` stays ``recipe.step``."""
    return f"{fr.fqname}.{label}"


def step_info(fr: Frame, label: str) -> dict[str, Any]:
    """The ``info``/``self`` namespace of a step, with Stimela's keys: ``fqname`` (``recipe.step``,
    the same in every loop iteration), ``taskname`` (unique), ``label``, ``label_parts`` (the
    label split at ``-``) and ``suffix`` (its last part, if it has several)."""
    parts = label.split("-")
    return {**fr.info, "label": label, "fqname": f"{fr.info.get('fqname', fr.fqname)}.{label}",
            "taskname": step_fqname(fr, label), "label_parts": parts, "suffix": parts[-1] if len(parts) > 1 else ""}


def check_assertions(items: Any, ns: Mapping[str, Any], raw: Any, kind: str, what: str) -> None:
    """Evaluate ``preamble``/``epilogue`` formulas (a list, or a mapping of named lists).

    As in Stimela, a formula that yields a false value or UNSET fails the step or recipe (logged
    at CRITICAL as ``epilogue: label: 'expr' evaluates to ...``); other results (``LOG(...)``
    returns its message, ``IF(cond, x)`` True when cond is false) pass; ``ERROR()``/``ABORT()``
    raise their own error.
    """
    if not items:
        return
    node = raw.get(kind) if isinstance(raw, Mapping) else None
    groups = items.items() if isinstance(items, Mapping) else [(None, items)]
    for name, group in groups:
        loc = where(node, name, where(raw, kind)) if name is not None else where(raw, kind)
        for expr in group if isinstance(group, list) else [group]:
            value = resolve_value(to_plain(expr), ns, where=loc)
            if value is UNSET or not value:
                label = f"{name}: " if name is not None else ""
                _formula_log.critical(f"{kind}: {label}'{expr}' evaluates to {value!r}", extra={"rf_summary": False})
                label = f" '{name}'" if name is not None else ""
                raise ValidationError(f"{loc}: {what}: {kind}{label} assertion {expr!r} is false.")


def step_sections(sdef: StepDef, kind: str, fqname: str) -> list[tuple[Any, Any, str]]:
    """A step's ``preamble``/``epilogue`` with its cab's: (items, raw node, what) to check in order.

    As Stimela, the sections are mappings of labelled lists merged by label, the step's
    overriding its cab's; a list form (radioflow's) is checked after the cab's labels.
    """
    own = getattr(sdef.step, kind)
    cab = sdef.cab
    inherited = getattr(cab, kind) if cab is not None else None
    out: list[tuple[Any, Any, str]] = []
    if inherited:
        if isinstance(inherited, Mapping) and isinstance(own, Mapping):
            inherited = {k: v for k, v in inherited.items() if k not in own}
        assert cab is not None
        out.append((inherited, cab._raw, f"step '{fqname}' (cab '{sdef.cab_name}')"))
    if own:
        out.append((own, sdef.raw, f"step '{fqname}'"))
    return out


def substituted_cab(cab: dict[str, Any], ns: Mapping[str, Any], loc: str) -> dict[str, Any]:
    """The cab with ``{current.x}``-style substitutions done in its ``command`` and ``args``, as
    Stimela does for binary and python cabs (and python-code ones with ``flavour.subst: true``)."""
    flavour = cab.get("flavour")
    kind = flavour.get("kind", "binary") if isinstance(flavour, Mapping) else (flavour or "binary")
    if kind == "python-code" and not (isinstance(flavour, Mapping) and flavour.get("subst")):
        return cab
    command, args = cab.get("command"), cab.get("args") or []
    if not (isinstance(command, str) and "{" in command) and not any("{" in str(a) for a in args):
        return cab
    out = dict(cab)
    if isinstance(command, str):
        out["command"] = str(substitute(command, ns, where=f"{loc}: command"))
    out["args"] = [resolve_value(a, ns, where=f"{loc}: args[{i}]") for i, a in enumerate(args)]
    return out


class Scopes:
    """Namespaces and assignments of a run's frames; holds the run's ``config`` namespace."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def ns(self, fr: Frame, **extra: Any) -> dict[str, Any]:
        """The namespaces a formula in frame ``fr`` sees; ``extra`` adds or replaces some."""
        ns = {"recipe": fr.recipe, "root": fr.root, "parent": fr.parent, "previous": fr.previous,
              "steps": fr.steps, "info": fr.info, "config": self.config}
        ns.update(extra)
        ns.setdefault("self", ns["info"])     # Stimela's name for the same namespace ({self.fqname})
        if "info" in extra and "self" not in extra:
            ns["self"] = extra["info"]
        return ns

    # -- assignments ---------------------------------------------------------------------------
    @staticmethod
    def assign_lazy(fr: Frame, assign: Mapping[str, Any] | None, raw: Any, ns: dict[str, Any]) -> LazyMapping:
        """Assignments as a lazy mapping resolved against ``ns`` (filled in by the caller)."""
        return LazyMapping(to_plain(assign or {}), lambda: ns, name="recipe",
                           where=lambda k: where(raw, k, fr.rdef.where))

    def assign(self, fr: Frame, assign: Mapping[str, Any], raw: Any) -> None:
        """Assign variables (order-independent: values may refer to each other), ``config.*`` too."""
        if not assign:
            return
        ns: dict[str, Any] = {}
        lazy = self.assign_lazy(fr, assign, raw, ns)
        ns.update(self.ns(fr, recipe=Overlay(lazy, fr.recipe)))
        self.store_assign(fr, lazy)

    def store_assign(self, fr: Frame, lazy: LazyMapping) -> None:
        """Resolve assigned values into the frame's recipe (``config.a.b`` keys into ``config``)."""
        for key in lazy:
            resolved = lazy[key]
            if key.startswith("config."):
                node = self.config
                parts = key.split(".")[1:]
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = resolved
            else:
                fr.recipe[key] = resolved
                label, _, param = key.partition(".")
                if param and key not in fr.rdef.schema and label in fr.rdef.steps:
                    fr.step_params.setdefault(label, {})[param] = resolved   # as Stimela: sets the step's parameter

    def assign_based_on(self, fr: Frame, table: Mapping[str, Any], raw: Any) -> None:
        """Apply ``assign_based_on``: the assignments of the case matching each base variable."""
        for basevar, cases in (table or {}).items():
            loc = where(raw, basevar, fr.rdef.where)
            if not isinstance(cases, Mapping):
                raise ValidationError(f"{loc}: assign_based_on.{basevar} must map values to assignments.")
            value = fr.recipe.get(basevar, UNSET)
            if value is UNSET and basevar.startswith("config."):
                node: Any = self.config
                for part in basevar.split(".")[1:]:
                    node = node.get(part, UNSET) if isinstance(node, Mapping) else UNSET
                value = node
            keys = [str(value), str(value).lower()] if value is not UNSET else []
            match = next((k for k in keys if k in cases), "DEFAULT" if "DEFAULT" in cases else None)
            if match is None:
                raise ValidationError(
                    f"{loc}: assign_based_on.{basevar}: value {value!r} matches none of "
                    f"{', '.join(map(str, cases))} and there is no DEFAULT.")
            if cases[match] is None:          # e.g. 'DEFAULT:' with nothing to assign
                continue
            if not isinstance(cases[match], Mapping):
                raise ValidationError(f"{where(cases, match, loc)}: assign_based_on.{basevar}.{match} must be a "
                                      "mapping of assignments.")
            self.assign(fr, cases[match], cases[match])

    def recipe_assign(self, fr: Frame) -> None:
        """The recipe's own ``assign`` and ``assign_based_on`` (per loop iteration)."""
        rdef = fr.rdef
        self.assign(fr, rdef.model.assign, rdef.raw.get("assign"))
        self.assign_based_on(fr, rdef.model.assign_based_on, rdef.raw.get("assign_based_on"))

    # -- steps -----------------------------------------------------------------------------------
    def resolve_params(self, fr: Frame, label: str, sdef: StepDef) -> tuple[dict[str, Any], dict[str, Any]]:
        """A step's parameters (schema defaults, recipe step defaults, its own, aliases, implicit
        values) resolved, and the namespaces they were resolved in (``current`` = the parameters)."""
        schema = sdef.schema
        raw: dict[str, Any] = {}
        for name, p in schema.items():
            if p.has_default:
                raw[name] = p.default
        if sdef.recipe is not None:           # a nested recipe's own defaults: (for its inputs)
            raw.update({k: v for k, v in sdef.recipe.defaults.items() if k in sdef.recipe.inputs})
        raw.update(fr.rdef.step_defaults.get(label, {}))
        raw.update(to_plain(sdef.step.params))
        raw.update(fr.step_params.get(label, {}))
        aliased = fr.rdef.alias_targets(label)
        for step_param, recipe_param in aliased.items():
            value = fr.recipe.get(recipe_param, UNSET)
            if value is not UNSET and value is not None:
                raw[step_param] = value
        for name, p in schema.items():
            if p.implicit is not None:
                raw[name] = p.implicit
        info = step_info(fr, label)
        ns: dict[str, Any] = {}
        lazy = LazyMapping(raw, lambda: ns, name="current", where=sdef.param_where)
        ns.update(self.ns(fr, current=lazy, info=info))
        params = {k: v for k, v in lazy.resolved().items() if v is not UNSET}
        for step_param, recipe_param in aliased.items():
            if fr.recipe.get(recipe_param, UNSET) in (UNSET, None) and step_param in params:
                fr.recipe[recipe_param] = params[step_param]
        return params, ns

    def try_params(self, fr: Frame, label: str, sdef: StepDef) -> dict[str, Any]:
        """Parameters of a deselected step (for ``previous``); unresolvable ones are left out."""
        try:
            return self.resolve_params(fr, label, sdef)[0]
        except RadioflowError:
            return {}

    def publish(self, fr: Frame, sdef: StepDef, fqname: str, status: str, params: Mapping[str, Any],
                outputs: Mapping[str, Any] | None) -> None:
        """A finished step's values become ``steps.<label>`` and ``previous``; outputs of a step that
        ran or resumed reach aliased recipe parameters, and a step that ran checks its epilogue."""
        merged = {**params, **(outputs or {})}
        fr.steps[sdef.label] = with_sections(merged)
        fr.previous = merged
        if status not in ("ok", "resumed"):
            return
        outs = outputs or {}
        for step_param, recipe_param in fr.rdef.alias_targets(sdef.label).items():
            if step_param in outs:
                fr.recipe[recipe_param] = outs[step_param]
            elif step_param in sdef.outputs and step_param in params:
                fr.recipe[recipe_param] = params[step_param]
        if status == "ok":
            for items, raw, what in step_sections(sdef, "epilogue", fqname):
                check_assertions(items, self.ns(fr, current=merged), raw, "epilogue", what)


def with_sections(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` where a dotted name ``a.b.c`` is also reachable as ``a`` -> ``b`` -> ``c``, as in
    Stimela's namespaces (``steps.image.restored.mfs`` for wsclean's ``restored.mfs`` output).
    A name that is itself set keeps its value."""
    out = dict(values)
    owned: set[int] = set()
    for key, value in values.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
                owned.add(id(child))
            elif id(child) not in owned:
                break
            node = child
        else:
            node.setdefault(parts[-1], value)
    return out


__all__ = ["Frame", "Overlay", "Scopes", "check_assertions", "step_fqname", "with_sections"]
