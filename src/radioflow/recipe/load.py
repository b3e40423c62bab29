"""Load recipe YAML documents into one namespace, keeping source locations.

Several files merge into one tree (later files override earlier ones). Every mapping and
every key remembers ``file:line`` so that each error can point at the offending line.
Directives, valid at any nesting level:

* ``_include``: files merged *under* the current mapping (the mapping's own keys win);
  ``_include_post``: merged *over* it. The names and where they are found are Stimela's
  (:mod:`radioflow.recipe.includes`); a ``_scrub`` beside an ``_include`` deletes keys of the
  included content. A package's ``stimela.conf`` is read first when a recipe uses it.
* ``_use``: a dotted path (or list) of sections defined elsewhere in the tree, deep-copied
  under the current mapping.
* ``_scrub`` (without ``_include``): keys (dotted paths, shell wildcards) deleted after merging.
"""
from __future__ import annotations

import copy
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import yaml

from ..errors import UsageError
from .includes import include_search_path, include_specs, package_config, resolve_include

__all__ = ["Document", "LocDict", "LocList", "include_search_path", "load_documents", "merge",
           "parse_yaml", "to_plain", "where"]

TOP_LEVEL_SECTIONS = ("cabs", "opts", "lib", "vars", "images")
#: Bounds on one YAML document, checked on the node graph before anything is built from it:
#: nodes after expanding every alias (a 600-byte "billion laughs" expands to 10^9) and depth.
MAX_EXPANDED_NODES = 1_000_000
MAX_DEPTH = 100


class LocDict(dict):
    """A dict that knows where it (``loc``) and each of its keys (``key_locs``) came from."""

    loc: str = "<unknown>"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loc = "<unknown>"
        self.key_locs: dict[Any, str] = {}

    def where(self, key: Any = None) -> str:
        """``file:line`` of ``key`` (or of the mapping itself)."""
        if key is not None and key in self.key_locs:
            return self.key_locs[key]
        return self.loc


class LocList(list):
    """A list that knows where it came from."""

    loc: str = "<unknown>"


def where(node: Any, key: Any = None, default: str = "<unknown>") -> str:
    """Best known ``file:line`` for ``node`` (or ``node[key]``)."""
    if isinstance(node, LocDict):
        return node.where(key)
    return getattr(node, "loc", default)


def to_plain(value: Any) -> Any:
    """Strip location wrappers: plain dicts and lists all the way down."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


if TYPE_CHECKING:
    _BaseLoader = yaml.SafeLoader
else:   # the libyaml parser when available
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    source: str = "<string>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LocDict:
    seen: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                first = seen[key_node.value].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}' (first defined at line {first}; "
                    "a later value would silently replace it)", key_node.start_mark)
            seen[key_node.value] = key_node
    loader.flatten_mapping(node)
    out = LocDict()
    out.loc = f"{loader.source}:{node.start_mark.line + 1}"
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (dict, list)):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain scalar, not a list or mapping", key_node.start_mark
            )
        if not isinstance(key, str):
            key = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_locs[key] = f"{loader.source}:{key_node.start_mark.line + 1}"
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LocList:
    out = LocList(loader.construct_object(child, deep=True) for child in node.value)
    out.loc = f"{loader.source}:{node.start_mark.line + 1}"
    return out


#: Integers in recipes fit in 64 bits (a 5,000-digit literal is a mistake, and later breaks
#: ``str()``, numpy and command lines).
MAX_INT_BITS = 64


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if abs(value).bit_length() > MAX_INT_BITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer {node.value[:20]}... ({len(node.value)} characters) does not fit in "
            f"{MAX_INT_BITS} bits", node.start_mark)
    return value


def _construct_checked(kind: str, construct: Any) -> Any:
    """A scalar constructor whose failures on a malformed value are YAML errors with a line."""
    def checked(loader: _Loader, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            text = str(getattr(node, "value", ""))[:40]
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is not a valid {kind} ({type(exc).__name__})", node.start_mark) from None
    return checked


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
for _kind in ("timestamp", "float", "binary", "bool", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_kind}", _construct_checked(
        _kind, yaml.constructor.SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{_kind}"]))
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, source: str) -> Any:
    """Parse one YAML document, turning every syntax problem into one :class:`UsageError`."""
    loader = _Loader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_bounds(node, source)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{source}:{mark.line + 1}" if mark else source
        col = f", column {mark.column + 1}" if mark else ""
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        kind = "YAML value error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise UsageError(f"{line}: {kind}{col}: {what}.") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}:1: YAML error: {' '.join(str(exc).split())}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an impossible date such as 2020-13-45
        raise UsageError(f"{source}: YAML value error: {exc}") from None
    except RecursionError:
        raise UsageError(f"{source}: the YAML document is nested too deeply.") from None
    finally:
        loader.dispose()


def _check_bounds(root: yaml.Node, source: str) -> None:
    """Refuse a node graph whose alias expansion or nesting exceeds the bounds (no recursion:
    a post-order walk with the size and depth of each shared node computed once)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        size[id(node)] = 1 + sum(size[id(c)] for c in children)
        depth[id(node)] = 1 + max((depth[id(c)] for c in children), default=0)
        line = f"{source}:{node.start_mark.line + 1}"
        if depth[id(node)] > MAX_DEPTH:
            raise UsageError(f"{line}: the YAML document is nested more than {MAX_DEPTH} levels deep.")
        if size[id(node)] > MAX_EXPANDED_NODES:
            raise UsageError(
                f"{line}: the YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias "
                "of an alias of ... multiplies the document); write the values out or use _use."
            )


def merge(base: Any, over: Any) -> Any:
    """Deep-merge ``over`` into a copy of ``base`` (mappings merge, anything else replaces)."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return copy.deepcopy(over)
    out = copy.deepcopy(base)
    if not isinstance(out, LocDict):
        out = _as_locdict(out)
    if isinstance(over, LocDict):
        out.loc = over.loc
    for key, value in over.items():
        out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        if isinstance(over, LocDict) and key in over.key_locs:
            out.key_locs[key] = over.key_locs[key]
    return out


def _as_locdict(d: dict) -> LocDict:
    out = LocDict(d)
    out.loc = getattr(d, "loc", "<unknown>")
    out.key_locs = dict(getattr(d, "key_locs", {}))
    return out


@dataclass
class _Ctx:
    stack: list[Path] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    package_configs: list[Path] = field(default_factory=list)


def _read_file(path: Path, ctx: _Ctx, loc: str | None = None) -> Any:
    path = path.resolve() if path.exists() else path
    if path in ctx.stack:
        chain = " -> ".join(str(p) for p in [*ctx.stack, path])
        raise UsageError(f"{loc or path}: circular _include: {chain}.")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        where_ = f"{loc}: " if loc else ""
        raise UsageError(f"{where_}cannot read recipe file {path}: {exc.strerror if isinstance(exc, OSError) else exc}.") from None
    ctx.files.append(str(path))
    conf = package_config(path)
    if conf is not None and conf not in ctx.package_configs:
        ctx.package_configs.append(conf)
    data = parse_yaml(text, _display(path))
    if data is None:
        data = LocDict()
        data.loc = f"{_display(path)}:1"
    ctx.stack.append(path)
    try:
        return _expand_includes(data, path.parent, ctx)
    finally:
        ctx.stack.pop()


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _expand_includes(node: Any, base_dir: Path, ctx: _Ctx) -> Any:
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = _expand_includes(item, base_dir, ctx)
        return node
    if not isinstance(node, LocDict):
        return node
    for key in list(node):
        if key not in ("_include", "_include_post"):
            node[key] = _expand_includes(node[key], base_dir, ctx)
    if "_include" not in node and "_include_post" not in node:
        return node
    pre = _included(node, "_include", base_dir, ctx)
    post = _included(node, "_include_post", base_dir, ctx)
    merged = merge(pre, node) if pre is not None else node
    return merge(merged, post) if post is not None else merged


def _included(node: LocDict, keyword: str, base_dir: Path, ctx: _Ctx) -> LocDict | None:
    """Pop ``keyword`` (and its ``_scrub``) from ``node``: the files it names, merged in order."""
    if keyword not in node:
        return None
    loc = node.where(keyword)
    directive = node.pop(keyword)
    node.key_locs.pop(keyword, None)
    scrub_key = keyword.replace("include", "scrub")
    scrub = node.pop(scrub_key, None) if scrub_key in node else None
    node.key_locs.pop(scrub_key, None)
    base: Any = LocDict()
    base.loc = node.loc
    for spec in include_specs(directive, loc, keyword):
        path = resolve_include(spec, base_dir, loc, keyword)
        if path is None:
            continue
        included = _read_file(path, ctx, loc)
        if not isinstance(included, dict):
            raise UsageError(f"{loc}: included file {path} must hold a mapping, not a {type(included).__name__}.")
        base = merge(base, included)
    if scrub is not None:
        _scrub_specs(base, scrub, loc, scrub_key)
    return base


def _pop_names(node: LocDict, key: str, expected: str) -> tuple[str, list[str]]:
    """Remove directive ``key`` (a name or a list of names) from ``node``: (its location, the names)."""
    loc = node.where(key)
    specs = node.pop(key)
    node.key_locs.pop(key, None)
    if isinstance(specs, str):
        specs = [specs]
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise UsageError(f"{loc}: {key} must be {expected}.")
    return loc, specs


def _lookup(root: LocDict, dotted: str) -> Any:
    node: Any = root
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _expand_use(node: Any, root: LocDict, active: list[int]) -> Any:
    if isinstance(node, list):
        for i, item in enumerate(node):
            node[i] = _expand_use(item, root, active)
        return node
    if not isinstance(node, LocDict):
        return node
    if id(node) in active:
        raise UsageError(f"{node.loc}: circular _use.")
    active.append(id(node))
    try:
        if "_use" in node:
            loc, specs = _pop_names(node, "_use", "a dotted section name or a list of them")
            base: Any = LocDict()
            base.loc = node.loc
            for spec in specs:
                target = _lookup(root, spec.strip())
                if target is _MISSING:
                    raise UsageError(f"{loc}: _use refers to '{spec}', which is not defined.")
                if not isinstance(target, dict):
                    raise UsageError(f"{loc}: _use target '{spec}' is not a mapping.")
                target = _expand_use(target, root, active)
                base = merge(base, target)
            merged = merge(base, node)
            node.clear()
            node.update(merged)
            node.key_locs = merged.key_locs
        for key in list(node):
            node[key] = _expand_use(node[key], root, active)
        if "_scrub" in node:
            _scrub(node)
        return node
    finally:
        active.pop()


def _scrub(node: LocDict) -> None:
    loc = node.where("_scrub")
    node.key_locs.pop("_scrub", None)
    _scrub_specs(node, node.pop("_scrub"), loc, "_scrub")


def _scrub_specs(node: LocDict, specs: Any, loc: str, keyword: str) -> None:
    specs = [specs] if isinstance(specs, str) else specs
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise UsageError(f"{loc}: {keyword} must be a key pattern or a list of key patterns.")
    for spec in specs:
        _scrub_path(node, spec.split("."))


def _scrub_path(node: Any, parts: list[str]) -> None:
    if not isinstance(node, dict):
        return
    matches = [k for k in node if fnmatch.fnmatchcase(str(k), parts[0])]
    for key in matches:
        if len(parts) == 1:
            del node[key]
            if isinstance(node, LocDict):
                node.key_locs.pop(key, None)
        else:
            _scrub_path(node[key], parts[1:])


@dataclass
class Document:
    """All loaded files merged into one namespace."""

    tree: LocDict
    files: list[str]

    def section(self, name: str) -> LocDict:
        """A top-level section (``cabs``, ``lib``, ...) or an empty mapping."""
        value = self.tree.get(name)
        if value is None:
            empty = LocDict()
            empty.loc = self.tree.loc
            return empty
        return value

    @property
    def cabs(self) -> LocDict:
        return self.section("cabs")

    @property
    def lib(self) -> LocDict:
        return self.section("lib")

    @property
    def opts(self) -> LocDict:
        return self.section("opts")

    @property
    def vars(self) -> LocDict:
        return self.section("vars")

    @property
    def recipes(self) -> dict[str, LocDict]:
        """Every top-level key that is not a known section: a recipe."""
        return {k: v for k, v in self.tree.items() if k not in TOP_LEVEL_SECTIONS and k != "DEFAULT"}

    @property
    def default(self) -> str | None:
        value = self.tree.get("DEFAULT")
        return value if isinstance(value, str) else None

    def where(self, *keys: str) -> str:
        """``file:line`` of a (nested) key of the tree."""
        node: Any = self.tree
        loc = self.tree.loc
        for key in keys:
            if isinstance(node, LocDict) and key in node:
                loc = node.where(key)
                node = node[key]
            else:
                break
        return loc


def load_documents(paths: Iterable[str | os.PathLike[str]]) -> Document:
    """Load and merge recipe files, expanding ``_include``, ``_use`` and ``_scrub``.

    Raises :class:`UsageError` (one paragraph with ``file:line``) for unreadable files, YAML
    syntax errors, missing includes and malformed top-level sections.
    """
    ctx = _Ctx()
    tree: Any = LocDict()
    paths = list(paths)
    if not paths:
        raise UsageError("No recipe file given.")
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise UsageError(f"Recipe file {path} does not exist.")
        data = _read_file(path, ctx)
        if not isinstance(data, dict):
            raise UsageError(
                f"{_display(path)}:1: a recipe file must hold a mapping of sections "
                f"(cabs, lib, opts, vars, recipes), not a {type(data).__name__}."
            )
        tree = merge(tree, data)
        if not tree.loc or tree.loc == "<unknown>":
            tree.loc = where(data)
    tree = _under_package_configs(tree, ctx)
    tree = _expand_use(tree, tree, [])
    _check_sections(tree)
    return Document(tree=tree, files=ctx.files)


def _under_package_configs(tree: LocDict, ctx: _Ctx) -> LocDict:
    """Merge ``tree`` over the ``stimela.conf`` of every package it used (read as Stimela does at start-up)."""
    if not ctx.package_configs:
        return tree
    base: Any = LocDict()
    base.loc = tree.loc
    done: set[Path] = set()
    while len(done) < len(ctx.package_configs):   # a config may use further packages
        conf = next(c for c in ctx.package_configs if c not in done)
        done.add(conf)
        data = _read_file(conf, ctx)
        if not isinstance(data, dict):
            raise UsageError(f"{_display(conf)}:1: a package configuration must hold a mapping of sections.")
        base = merge(base, data)
    out = merge(base, tree)
    out.loc = tree.loc
    return out


def _check_sections(tree: LocDict) -> None:
    for name in TOP_LEVEL_SECTIONS:
        if name in tree and tree[name] is not None and not isinstance(tree[name], dict):
            raise UsageError(f"{tree.where(name)}: top-level section '{name}' must be a mapping.")
    lib = tree.get("lib")
    if isinstance(lib, dict):
        for sub in ("steps", "params", "recipes"):
            if sub in lib and lib[sub] is not None and not isinstance(lib[sub], dict):
                raise UsageError(f"{where(lib, sub)}: 'lib.{sub}' must be a mapping.")
    if "DEFAULT" in tree and not isinstance(tree["DEFAULT"], str):
        raise UsageError(f"{tree.where('DEFAULT')}: DEFAULT must name a recipe.")
    for key, value in tree.items():
        if key in TOP_LEVEL_SECTIONS or key == "DEFAULT":
            continue
        if not isinstance(value, dict):
            raise UsageError(
                f"{tree.where(key)}: top-level key '{key}' is taken as a recipe, so it must be a "
                f"mapping (with steps, inputs, ...), not a {type(value).__name__}."
            )
