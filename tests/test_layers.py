"""The package's layers, read from its import statements (ast): which layer may import which,
and no import cycle among module-level imports.

Every ``import``/``from ... import`` counts for the layer rules, also those inside functions
(deferred imports still tie the layers), and so does a string constant that is exactly a
``radioflow.x.y`` module name (``importlib.import_module("radioflow.run.x")``, a remote
entry point). A subprocess then imports modules of each layer alone in a fresh interpreter.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import radioflow

PKG = Path(radioflow.__file__).parent
_MODULE_NAME = re.compile(r"radioflow(\.[A-Za-z_]\w*)+")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a (possibly relative) import target."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(path: Path, *, top_level_only: bool = False, module: str | None = None) -> set[str]:
    """Absolute names of the radioflow modules (or names in them) ``path`` (module ``module``,
    by default its name in the package) imports."""
    module = module or _module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        elif (not top_level_only and isinstance(node, ast.Constant) and isinstance(node.value, str)
              and _MODULE_NAME.fullmatch(node.value)):
            out.add(node.value)
    return {name for name in out if name == "radioflow" or name.startswith("radioflow.")}


def _modules(layer: str) -> list[Path]:
    return sorted((PKG / layer).rglob("*.py"))


def _offences(layer: str, forbidden: list[str]) -> list[str]:
    bad = []
    for path in _modules(layer):
        for name in sorted(_imports(path)):
            hit = next((f for f in forbidden if name == f or name.startswith(f + ".")), None)
            if hit:
                bad.append(f"{path.relative_to(PKG.parent)} imports {name}")
    return bad


RULES = [
    ("invoke", ["radioflow.run", "radioflow.backends", "radioflow.cabs", "radioflow.commands"]),
    ("backends", ["radioflow.run"]),
    ("cabs", ["radioflow.run"]),
    ("commands", ["radioflow.cli"]),
    ("science", ["radioflow.recipe", "radioflow.run", "radioflow.backends", "radioflow.cabs"]),
    ("vis", ["radioflow.recipe", "radioflow.run", "radioflow.backends", "radioflow.cabs"]),
    # reports read run records through their own read-only store, never the runner
    ("report", ["radioflow.run", "radioflow.backends", "radioflow.cabs", "radioflow.commands"]),
]


@pytest.mark.parametrize("layer,forbidden", RULES, ids=[r[0] for r in RULES])
def test_layer_imports_nothing_above_it(layer: str, forbidden: list[str]) -> None:
    assert _modules(layer), f"no modules under radioflow/{layer}"
    assert _offences(layer, forbidden) == []


def test_the_scan_sees_relative_deferred_and_string_imports(tmp_path: Path) -> None:
    """The rules would fail on each form of import they are meant to catch."""
    names = _imports(PKG / "backends" / "__init__.py")     # relative, package-relative and deferred
    assert {"radioflow.errors", "radioflow.invoke", "radioflow.backends.base", "radioflow.backends.local"} <= names
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..run import runner\n    importlib.import_module('radioflow.run.api')\n",
                     encoding="utf-8")
    names = _imports(probe, module="radioflow.backends.probe")
    assert {"radioflow.run", "radioflow.run.runner", "radioflow.run.api"} <= names
    assert _imports(probe, module="radioflow.backends.probe", top_level_only=True) == set()


def _import_graph() -> dict[str, set[str]]:
    """Module -> the radioflow modules it imports at module level (a package's import implies
    its parents' ``__init__``)."""
    paths = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        deps: set[str] = set()
        for name in _imports(path, top_level_only=True):
            while name and name not in paths:      # 'pkg.mod.func' -> 'pkg.mod'
                name = name.rpartition(".")[0]
            parts = name.split(".")
            deps.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        deps.discard(module)
        graph[module] = {d for d in deps if d in paths and not module.startswith(d + ".")}
    return graph


def test_no_import_cycle_among_module_level_imports() -> None:
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:     # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert len(graph) > 50
    assert cycles == []


@pytest.mark.slow
def test_each_layer_imports_alone() -> None:
    """A module of each layer imports in a fresh interpreter (no cycle that only an import order hides)."""
    modules = ["radioflow.invoke.execute", "radioflow.backends.local", "radioflow.backends.dask",
               "radioflow.backends.kubernetes", "radioflow.backends.lithops", "radioflow.run.runner",
               "radioflow.run.api", "radioflow.cabs.imaging", "radioflow.cli", "radioflow.recipe.validate"]
    for name in modules:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"import {name} alone failed:\n{proc.stderr[-2000:]}"
