"""Where an ``_include`` entry points: Stimela 2's include syntax, resolved to files.

A directive is a name, a list of directives, or a mapping whose keys prefix their values
(``- (cultcargo): [genesis/a.yml, b.yml]`` names ``(cultcargo)/genesis/a.yml`` and
``(cultcargo)/b.yml``), nested freely. A name may be

* ``(package)file`` or ``(package)/file``: inside an installed package, found without running
  the package's code (so a package whose ``__init__`` imports something missing still works);
* ``(.)file``, ``(..)file``: relative to the including file's directory;
* an absolute path, or a relative one searched for next to the including file, in the working
  directory, on ``RADIOFLOW_INCLUDE`` and in radioflow's shipped recipes;

and may end in ``[optional]`` (a missing file is skipped) or ``[optional, warn]`` (skipped with
a warning). Without an extension ``.yml`` and ``.yaml`` are tried too, as Stimela does.

A package that ships a ``stimela.conf`` beside its top ``__init__.py`` (cult-cargo does) has that
file read first when a recipe uses the package (:func:`package_config`), as Stimela reads it
at start-up: cult-cargo's cab files use the ``vars`` and ``images`` defined there.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

log = logging.getLogger(__name__)

IMPLICIT_EXTENSIONS = (".yml", ".yaml")
PACKAGE_CONFIG = "stimela.conf"
_FLAGS = re.compile(r"^(?P<name>.*?)\s*\[(?P<flags>[^\[\]]*)\]\s*$")
_PACKAGE = re.compile(r"^\((?P<pkg>[^()]+)\)/?(?P<rel>.+)$")
_KNOWN_FLAGS = {"optional", "warn"}


@dataclass(frozen=True)
class IncludeSpec:
    """One file named by an ``_include`` directive."""

    name: str
    optional: bool = False
    warn: bool = False


def include_specs(directive: Any, loc: str, keyword: str = "_include") -> list[IncludeSpec]:
    """Flatten a directive (name, list, or mapping of prefixes) into the files it names, in order."""
    names: list[str] = []

    def walk(node: Any, prefix: str | None) -> None:
        if isinstance(node, str):
            names.append(node if prefix is None else f"{prefix}/{node}")
        elif isinstance(node, list):
            for item in node:
                walk(item, prefix)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, str(key) if prefix is None else f"{prefix}/{key}")
        else:
            raise UsageError(f"{loc}: {keyword} entries must be file names, lists or mappings of "
                             f"them, not {type(node).__name__} ({node!r:.60}).")

    walk(directive, None)
    specs = []
    for raw in names:
        name, flags = raw.strip(), set()
        match = _FLAGS.match(name)
        if match:
            name = match["name"].strip()
            flags = {f.strip().lower() for f in match["flags"].split(",") if f.strip()}
            unknown = flags - _KNOWN_FLAGS
            if unknown:
                raise UsageError(f"{loc}: {keyword} '{raw}' has unknown flag(s) {', '.join(sorted(unknown))} "
                                 "(known: optional, warn).")
        if not name:
            raise UsageError(f"{loc}: empty {keyword} entry.")
        specs.append(IncludeSpec(name, optional="optional" in flags, warn="warn" in flags))
    return specs


def include_search_path(base_dir: Path | None = None) -> list[Path]:
    """Directories searched for a plain relative ``_include`` name, in order."""
    dirs: list[Path] = []
    if base_dir is not None:
        dirs.append(base_dir)
    dirs.append(Path.cwd())
    dirs.extend(Path(p) for p in os.environ.get("RADIOFLOW_INCLUDE", "").split(os.pathsep) if p)
    shipped = Path(__file__).resolve().parent.parent / "recipes"
    dirs += [shipped / "lib", shipped]
    return dirs


def _with_extensions(path: Path) -> list[Path]:
    return [path] if path.suffix else [path, *(Path(f"{path}{ext}") for ext in IMPLICIT_EXTENSIONS)]


def resolve_include(spec: IncludeSpec, base_dir: Path, loc: str, keyword: str = "_include") -> Path | None:
    """The file ``spec`` names (``None`` if it is optional and missing); else a UsageError."""
    match = _PACKAGE.match(spec.name)
    if match:
        package, rel = match["pkg"].strip(), match["rel"].strip()
        if package.startswith("."):
            candidates = [base_dir / package / rel]
        else:
            pkg_dir = package_dir(package)
            if pkg_dir is None:
                return _missing(spec, loc, f"{keyword} names package '{package}', which is not installed")
            candidates = [pkg_dir / rel]
    elif os.path.isabs(spec.name):
        candidates = [Path(spec.name)]
    else:
        candidates = [d / spec.name for d in include_search_path(base_dir)]
    for cand in candidates:
        for path in _with_extensions(cand):
            if path.is_file():
                return path
    searched = ", ".join(dict.fromkeys(str(c.parent) for c in candidates)) or "nowhere"
    return _missing(spec, loc, f"included file '{spec.name}' not found (searched {searched})")


def _missing(spec: IncludeSpec, loc: str, why: str) -> Path | None:
    """``None`` for an optional include (skipped, perhaps with a warning); else a UsageError."""
    if spec.optional:
        if spec.warn:
            log.warning("%s: optional include skipped: %s", loc, why)
        return None
    raise UsageError(f"{loc}: {why}.")


def package_dir(package: str) -> Path | None:
    """Directory of an installed (sub)package, found without importing (running) it."""
    top, *subs = package.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin and not subs:
        base = Path(spec.origin).parent
    else:
        return None
    path = base.joinpath(*subs)
    return path if path.is_dir() else None


def package_config(path: Path) -> Path | None:
    """The ``stimela.conf`` of the top package holding ``path`` (a file), if it ships one."""
    top: Path | None = None
    current = path.resolve().parent
    while (current / "__init__.py").is_file():
        top = current
        if current.parent == current:
            break
        current = current.parent
    if top is None:
        return None
    conf = top / PACKAGE_CONFIG
    return conf if conf.is_file() else None
