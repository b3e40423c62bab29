"""Pydantic models of the recipe language: Parameter, Cab, Step, ForLoop, Recipe.

Models are built from the located YAML tree of :mod:`radioflow.recipe.load`; every problem
(unknown key, wrong field type, bad dtype) is reported as ``file:line: ...`` into a
:class:`Problems` collector so that a whole recipe can be checked in one pass.
"""
from __future__ import annotations

import copy
from typing import Any, Optional, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic_core import ErrorDetails

from ..errors import ValidationError
from .dtypes import DType, DTypeError
from .load import LocDict, where
from .shorthand import parse_shorthand


class Problems:
    """Collects ``file:line: message`` problems; raises them together as one ValidationError."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, loc: str, message: str) -> None:
        text = f"{loc}: {message}" if loc else message
        if text not in self.items:
            self.items.append(text)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, what: str) -> None:
        """Raise one ValidationError listing every collected problem."""
        if not self.items:
            return
        if len(self.items) == 1:
            raise ValidationError(f"{what}: {self.items[0]}")
        listing = "\n".join(f"  - {p}" for p in self.items)
        raise ValidationError(f"{what}: {len(self.items)} problems:\n{listing}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)


class Policies(_Strict):
    """How a parameter becomes command-line arguments (Stimela2 ``policies``)."""

    key_value: Optional[bool] = None
    positional: Optional[bool] = None
    positional_head: Optional[bool] = None
    repeat: Optional[str] = None
    prefix: Optional[str] = None
    skip: Optional[bool] = None
    skip_implicits: Optional[bool] = None
    disable_substitutions: Optional[bool] = None
    explicit_true: Optional[Any] = None
    explicit_false: Optional[Any] = None
    split: Optional[str] = None
    replace: Optional[dict[str, str]] = None
    format: Optional[str] = None
    format_list: Optional[list[str]] = None
    format_list_scalar: Optional[list[str]] = None
    pass_missing_as_none: Optional[bool] = None

    @pydantic.field_validator("repeat", mode="before")
    @classmethod
    def _repeat_bool(cls, v: Any) -> Any:
        # Stimela's OmegaConf schema stores `repeat: false` as the string "False", which then
        # joins list values as a separator; radioflow builds the same command line
        return str(v) if isinstance(v, bool) else v


class PathPolicies(_Strict):
    mkdir_parent: bool = True
    access_parent: bool = False
    write_parent: bool = False
    remove_if_exists: bool = False


class Parameter(_Strict):
    """One input or output of a cab or recipe."""

    info: str = ""
    dtype: str = "str"
    required: Optional[bool] = None
    default: Any = None
    implicit: Any = None
    choices: Optional[list[Any]] = None
    element_choices: Optional[list[Any]] = None
    aliases: Optional[list[str]] = None
    must_exist: Optional[bool] = None
    mkdir: bool = False
    writable: bool = False
    policies: Policies = Field(default_factory=Policies)
    path_policies: Optional[PathPolicies] = None
    tags: list[str] = Field(default_factory=list)
    nom_de_guerre: Optional[str] = None
    category: Optional[Any] = None
    metavar: Optional[str] = None
    abbreviation: Optional[str] = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    skip_freshness_checks: Optional[bool] = None
    suppress_cli_default: bool = False
    remove_if_exists: Optional[bool] = None
    access_parent_dir: Optional[bool] = None
    write_parent_dir: Optional[bool] = None
    env: Optional[str] = None   # radioflow: environment variable giving the value (CLI > env > default)
    action: Optional[str] = None

    _type: DType = PrivateAttr(default=DType("str"))
    _where: str = PrivateAttr(default="")
    _is_output: bool = PrivateAttr(default=False)

    @property
    def type(self) -> DType:
        return self._type

    @property
    def where(self) -> str:
        return self._where

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    @property
    def is_output(self) -> bool:
        return self._is_output

    def plain(self) -> dict[str, Any]:
        """Plain dict with Stimela2 keys (only what was set), for :class:`Invocation`."""
        return self.model_dump(exclude_unset=True, exclude_none=False)

    @pydantic.field_validator("action")
    @classmethod
    def _action(cls, v: Any) -> Any:
        # argparse's vocabulary, as cab authors copy it from a tool's parser; only flags make sense
        if v is not None and v not in ARGPARSE_ACTIONS:
            raise ValueError(f"must be one of {', '.join(ARGPARSE_ACTIONS)} (an argparse flag action)")
        return v

    @pydantic.model_validator(mode="after")
    def _action_is_flag(self) -> Parameter:
        if self.action in ("store_true", "store_false") and self.dtype != "bool":
            raise ValueError(f"action '{self.action}' needs dtype bool, not '{self.dtype}'")
        return self


#: ``action`` values accepted on a parameter (Stimela 2.1.4 rejects the key; cult-cargo's
#: mosaic-queen cab uses ``store_true``, which is what a bool parameter does anyway).
ARGPARSE_ACTIONS = ("store_true", "store_false", "store")

PARAMETER_FIELDS = frozenset(Parameter.model_fields)


class Cab(_Strict):
    """A callable unit: a binary, a python function or inline python code."""

    name: Optional[str] = None
    fqname: Optional[str] = None
    info: Optional[str] = None
    extra_info: dict[str, str] = Field(default_factory=dict)
    command: str = ""
    args: list[str] = Field(default_factory=list)
    parameter_passing: Optional[str] = None
    preamble: Optional[Any] = None
    epilogue: Optional[Any] = None
    image: Optional[Any] = None
    flavour: Union[str, dict[str, Any], None] = None
    policies: Policies = Field(default_factory=Policies)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    wranglers: dict[str, Any] = Field(default_factory=dict)
    backend: Optional[Any] = None
    management: Optional[dict[str, Any]] = None
    dynamic_schema: Optional[str] = None
    virtual_env: Optional[str] = None

    _inputs: dict[str, Parameter] = PrivateAttr(default_factory=dict)
    _outputs: dict[str, Parameter] = PrivateAttr(default_factory=dict)
    _where: str = PrivateAttr(default="")
    _raw: Any = PrivateAttr(default=None)
    _plain: Any = PrivateAttr(default=None)

    @property
    def schema_inputs(self) -> dict[str, Parameter]:
        return self._inputs

    @property
    def schema_outputs(self) -> dict[str, Parameter]:
        return self._outputs

    @property
    def schema(self) -> dict[str, Parameter]:   # type: ignore[override]  # pydantic's deprecated schema()
        return {**self._inputs, **self._outputs}

    @property
    def where(self) -> str:
        return self._where

    @property
    def flavour_kind(self) -> str:
        if isinstance(self.flavour, dict):
            return str(self.flavour.get("kind", "binary"))
        return self.flavour or "binary"

    def plain(self) -> dict[str, Any]:
        """The cab as plain data (Stimela2 keys, flattened parameter schemas); a fresh copy."""
        if self._plain is None:
            self._plain = self._make_plain()
        return copy.deepcopy(self._plain)

    def _make_plain(self) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=True, exclude={"inputs", "outputs"})
        out.setdefault("name", self.name)
        out.setdefault("command", self.command)
        out["inputs"] = {k: p.plain() for k, p in self._inputs.items()}
        out["outputs"] = {k: p.plain() for k, p in self._outputs.items()}
        return out


class ForLoop(_Strict):
    """``for_loop``: repeat a recipe's steps for each value of ``over``."""

    var: str
    over: Union[str, list[Any]]
    scatter: Union[int, bool] = 0
    display_status: Optional[str] = None
    output_elements: Union[list[str], dict[str, Any], None] = None


class Step(_Strict):
    """One step of a recipe: exactly one of ``cab`` or ``recipe``."""

    info: Optional[str] = None
    name: Optional[str] = None
    fqname: Optional[str] = None
    cab: Union[str, dict[str, Any], None] = None
    recipe: Union[str, dict[str, Any], None] = None
    params: dict[str, Any] = Field(default_factory=dict)
    skip: Union[bool, str, None] = None
    skip_if_outputs: Optional[str] = None
    tags: list[str] = Field(default_factory=list)
    backend: Optional[Any] = None
    assign: dict[str, Any] = Field(default_factory=dict)
    assign_based_on: dict[str, Any] = Field(default_factory=dict)
    preamble: Optional[Any] = None
    epilogue: Optional[Any] = None

    @pydantic.field_validator("tags", mode="before")
    @classmethod
    def _tags_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @pydantic.field_validator("skip_if_outputs")
    @classmethod
    def _skip_if(cls, v: Any) -> Any:
        if v is not None and v not in ("exist", "fresh"):
            raise ValueError("must be 'exist' or 'fresh'")
        return v


class Recipe(_Strict):
    """A sequence of steps with its own inputs and outputs."""

    name: Optional[str] = None
    fqname: Optional[str] = None
    info: Optional[str] = None
    extra_info: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    aliases: dict[str, Any] = Field(default_factory=dict)
    steps: dict[str, Any] = Field(default_factory=dict)
    assign: dict[str, Any] = Field(default_factory=dict)
    assign_based_on: dict[str, Any] = Field(default_factory=dict)
    for_loop: Optional[ForLoop] = None
    backend: Optional[Any] = None
    dynamic_schema: Optional[str] = None
    preamble: Optional[Any] = None
    epilogue: Optional[Any] = None


def build(model: type[BaseModel], raw: Any, what: str, problems: Problems) -> Any:
    """Validate ``raw`` against ``model``; problems go to ``problems`` with file:line."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.add(where(raw), f"{what} must be a mapping, not {type(raw).__name__} ({raw!r:.60})")
        return None
    try:
        return model.model_validate(dict(raw))
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            problems.add(_error_loc(raw, err["loc"]), f"{what}: {_error_text(model, err)}")
        return None


def _error_loc(raw: Any, path: tuple) -> str:
    node, loc = raw, where(raw)
    for part in path:
        if isinstance(node, dict) and part in node:
            loc = where(node, part, loc)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            loc = getattr(node, "loc", loc)
        else:
            break
    return loc


def _error_text(model: type[BaseModel], err: ErrorDetails) -> str:
    path = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        sub = _submodel(model, err["loc"][:-1])
        allowed = ", ".join(sorted(sub.model_fields)) if sub else ""
        return f"unknown key '{err['loc'][-1]}'" + (f" (allowed: {allowed})" if allowed else "")
    if err["type"] == "missing":
        return f"'{path}' is required"
    value = err.get("input")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"'{path}' = {shown}: {err['msg']}"


def _submodel(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    current: Any = model
    for part in path:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        for arg in (getattr(ann, "__args__", None) or (ann,)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
                break
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def parse_schemas(raw: Any, label: str, problems: Problems, *, outputs: bool = False,
                  prefix: str = "") -> dict[str, Parameter]:
    """Flatten an ``inputs``/``outputs`` mapping into ``{name: Parameter}``.

    Values are a shorthand string, a parameter mapping, or a subsection (a mapping none of
    whose keys are parameter fields), whose entries become ``sub.name``.
    """
    out: dict[str, Parameter] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        problems.add(where(raw), f"{label} must be a mapping of parameter definitions")
        return out
    for name, value in raw.items():
        loc = where(raw, name)
        full = f"{prefix}{name}"
        if not isinstance(name, str) or not name:
            problems.add(loc, f"{label}: parameter names must be non-empty strings, not {name!r}")
            continue
        if isinstance(value, str):
            spec: Any = parse_shorthand(value)
        elif value is None:
            spec = {}
        elif isinstance(value, dict):
            if _is_subsection(value):
                out.update(parse_schemas(value, label, problems, outputs=outputs, prefix=f"{full}."))
                continue
            spec = value
        else:
            problems.add(loc, f"{label}.{full}: a parameter is defined by a mapping or a shorthand "
                              f"string like 'int = 0 \"help\"', not {type(value).__name__}")
            continue
        param = build(Parameter, spec, f"{label}.{full}", _Relocated(problems, loc, spec))
        if param is None:
            continue
        param._where = loc
        param._is_output = outputs
        try:
            param._type = DType.parse(param.dtype)
        except DTypeError as exc:
            problems.add(where(spec, "dtype", loc) if isinstance(spec, LocDict) else loc,
                         f"{label}.{full}: bad dtype '{param.dtype}': {exc}")
            continue
        out[full] = param
    return out


def _is_subsection(value: dict) -> bool:
    """Stimela's rule: a mapping with any key that is not a parameter field is a nested section.

    One refinement for clearer errors: if one of its values could not define a parameter
    (a number, a list, a string that is no dtype shorthand), it is taken as a parameter with a
    misspelt key, which is then reported by name.
    """
    if not set(value) - PARAMETER_FIELDS:
        return False
    for item in value.values():
        if isinstance(item, str):
            try:
                DType.parse(parse_shorthand(item)["dtype"])
            except DTypeError:
                return False
        elif item is not None and not isinstance(item, dict):
            return False
    return True


class _Relocated(Problems):
    """Forward problems, using ``loc`` for specs that carry no location (shorthand strings)."""

    def __init__(self, target: Problems, loc: str, spec: Any) -> None:
        super().__init__()
        self._target, self._loc, self._located = target, loc, isinstance(spec, LocDict)

    def add(self, loc: str, message: str) -> None:
        self._target.add(loc if self._located and loc != "<unknown>" else self._loc, message)


def build_cab(raw: Any, name: str, problems: Problems) -> Cab | None:
    """Build a :class:`Cab` with flattened, parsed parameter schemas."""
    cab = build(Cab, raw, f"cab '{name}'", problems)
    if cab is None:
        return None
    cab._where = where(raw)
    cab._raw = raw
    if not cab.name:
        cab.name = name
    cab._inputs = parse_schemas(raw.get("inputs"), f"cab '{name}' inputs", problems)
    cab._outputs = parse_schemas(raw.get("outputs"), f"cab '{name}' outputs", problems, outputs=True)
    for key in set(cab._inputs) & set(cab._outputs):
        problems.add(where(raw.get("outputs"), key), f"cab '{name}': parameter '{key}' is both an input and an output")
    if not cab.command:
        problems.add(cab.where, f"cab '{name}' has no 'command'")
    return cab
