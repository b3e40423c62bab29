"""The backends a run uses: the run's own, and one per distinct ``backend`` section of its steps.

``backend`` sections (recipe, nested recipe, cab, step) are resolved with formulas and merged
over the run's configuration (step over cab over nested recipes over the recipe); ``-b NAME``
on the command line still picks the engine. A Backend object given to the Runner runs
everything. Backends are built once per distinct configuration and closed with the run.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Mapping, Sequence, cast

from ..backends.base import Backend
from ..errors import ValidationError
from ..invoke import Invocation, Result
from ..recipe.load import to_plain, where
from ..recipe.substitute import resolve_value
from ..recipe.validate import RecipeDef


def resolve_section(section: Any, ns: Mapping[str, Any], raw: Any, what: str, loc: str) -> dict[str, Any]:
    """A ``backend`` section of a recipe, step, cab or nested recipe, formulas resolved."""
    if not section:
        return {}
    if not isinstance(section, Mapping):
        raise ValidationError(f"{loc}: {what}: 'backend' must be a mapping (select: NAME, plus options "
                              "per backend).")
    return dict(resolve_value(to_plain(section), ns, where=where(raw, "backend", loc)))


class Engines:
    """Builds, picks and closes the backends of one run.

    ``config`` is the run's configuration (the Runner's ``options.config``, shared, so the
    recipe-level section merged in by :meth:`recipe_backend` is what later steps see).
    """

    def __init__(self, config: dict[str, Any], backend: Backend | None = None,
                 backend_name: str | None = None) -> None:
        self.config = config
        self.current = backend                 # the run's own backend, once built
        self.given = backend is not None
        self.name = backend_name
        self.step_backends: dict[str, Backend] = {}

    @property
    def backend(self) -> Backend:
        """The backend given, else the configured one (``backend.select``, default local), built on first use."""
        if self.current is None:
            from ..backends import get_backend

            name = self.name or (self.config.get("backend") or {}).get("select") or "local"
            self.current = get_backend(name, self.config)
        return self.current

    def recipe_backend(self, rdef: RecipeDef, ns: Mapping[str, Any]) -> None:
        """Merge the top-level recipe's ``backend`` section (formulas resolved) over the config's.

        A recipe may pick its engine and size it from its inputs (``n_workers: =recipe.n_workers``);
        ``-b NAME`` on the command line still chooses the engine.
        """
        if self.current is not None:
            return
        resolved = resolve_section(rdef.model.backend, ns, rdef.raw, f"recipe '{rdef.name}'", rdef.where)
        if resolved:
            from ..config import deep_merge

            self.config["backend"] = deep_merge(self.config.get("backend") or {}, resolved)

    def backend_for(self, section: Mapping[str, Any]) -> Backend:
        """The backend a step runs on: the run's, or one built for its merged ``backend`` options."""
        if not section or self.given:
            return self.backend
        from ..backends import get_backend
        from ..config import deep_merge

        base = self.config.get("backend") or {}
        cfg = copy.deepcopy(self.config)
        cfg["backend"] = deep_merge(base, dict(section))
        if cfg["backend"] == base:  # the section repeats the run's own settings
            return self.backend
        name = self.name or cfg["backend"].get("select") or "local"
        key = json.dumps([name, cfg["backend"]], sort_keys=True, default=str)
        if key not in self.step_backends:
            self.step_backends[key] = get_backend(name, cfg)
        return self.step_backends[key]

    def run_all(self, work: Sequence[tuple[Mapping[str, Any], Invocation]]) -> list[Result]:
        """Run (merged ``backend`` section, invocation) pairs: one ``map`` per backend (scatter
        iterations whose options differ go to different engines), results in ``work`` order."""
        groups: dict[int, tuple[Backend, list[int]]] = {}
        for i, (section, _) in enumerate(work):
            backend = self.backend_for(section)
            groups.setdefault(id(backend), (backend, []))[1].append(i)
        results: list[Result | None] = [None] * len(work)
        for backend, idx in groups.values():
            invs = [work[i][1] for i in idx]
            out = backend.map(invs) if len(invs) > 1 else [backend.run(invs[0])]
            for i, res in zip(idx, out):
                results[i] = res
        return cast(list[Result], results)

    def close(self) -> None:
        """Close every backend built or given for the run."""
        if self.current is not None:
            self.current.close()
        for extra in self.step_backends.values():
            extra.close()


__all__ = ["Engines", "resolve_section"]
