"""Run a compiled recipe: steps in order, nested recipes, for-loops and scatter, records, resume.

Each cab step becomes an :class:`~radioflow.backends.base.Invocation` run by the backend
(``backend.run`` for one, ``backend.map`` for the iterations of a scatter loop, which advance
step by step in lock-step batches). Formulas and ``{}`` substitutions are resolved with the
namespaces ``recipe``, ``root``, ``parent``, ``current``, ``previous``, ``steps``, ``info`` and
``config``. Every step is recorded in ``.radioflow/runs.db`` with its resolved parameters, a
hash of (cab, parameters, input fingerprints) and its log ``.radioflow/logs/<run>/<step>.log``.
"""
from __future__ import annotations

import copy
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..backends.base import Backend
from ..errors import RadioflowError, StepError, UsageError, ValidationError
from ..invoke import Invocation, Result
from ..invoke.markers import SUMMARY_MARK
from ..recipe.formula import UNSET, LazyMapping
from ..recipe.load import Document, to_plain, where
from ..recipe.substitute import resolve_value
from ..recipe.validate import RecipeDef, StepDef, is_dynamic, prepare_outputs, validate_values
from .progress import Progress
from .records import RunRecords, fingerprint, new_run_id, params_hash
from .selection import Decision, Selection, resolve


class RunInterrupted(RadioflowError):
    """The run was interrupted (Ctrl-C)."""

    exit_code = 130


@dataclass
class RunOptions:
    """How to run: where, which steps, resume, dry run."""

    workdir: str = "."
    selection: Selection = field(default_factory=Selection)
    resume: bool = False
    dry_run: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    record: bool = True


@dataclass
class StepReport:
    fqname: str
    status: str
    seconds: float = 0.0
    error: str | None = None


@dataclass
class RunOutcome:
    """What a run did."""

    run_id: str
    status: str
    outputs: dict[str, Any]
    steps: list[StepReport]


@dataclass
class _Frame:
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


@dataclass
class _Prepared:
    frame: _Frame
    fqname: str
    action: str                       # run | skipped | resumed
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    inv: Invocation | None = None
    phash: str = ""
    record_id: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    backend: dict[str, Any] = field(default_factory=dict)  # the step's own backend section, resolved


class _Overlay(Mapping):
    """Read-only view: keys of ``first`` (e.g. lazily assigned variables) over ``second``."""

    def __init__(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
        self._first, self._second = first, second

    def __getitem__(self, key: str) -> Any:
        return self._first[key] if key in self._first else self._second[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first or key in self._second

    def __iter__(self) -> Any:
        return iter({**dict.fromkeys(self._second), **dict.fromkeys(self._first)})

    def __len__(self) -> int:
        return len(set(self._first) | set(self._second))


_SAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")


class Runner:
    """Runs one recipe of a loaded document."""

    def __init__(self, doc: Document, rdef: RecipeDef, params: Mapping[str, Any] | None = None, *,
                 backend: Backend | None = None, options: RunOptions | None = None,
                 progress: Progress | None = None, files: list[str] | None = None,
                 backend_name: str | None = None) -> None:
        self.doc = doc
        self.rdef = rdef
        self.params = dict(params or {})
        self.options = options or RunOptions()
        self.progress = progress or Progress(quiet=True)
        self.workdir = os.path.abspath(self.options.workdir)
        self.files = files or list(doc.files)
        self._backend = backend
        self._backend_given = backend is not None
        self._backend_name = backend_name
        self._step_backends: dict[str, Backend] = {}
        self.run_id = new_run_id()
        self.reports: list[StepReport] = []
        self.records: RunRecords | None = None
        self.log_dir = Path(self.workdir, ".radioflow", "logs", self.run_id)
        self.config = {
            **copy.deepcopy(self.options.config),
            "opts": to_plain(doc.opts), "vars": to_plain(doc.vars),
            "run": {"env": dict(os.environ), "dir": self.workdir, "id": self.run_id},
        }
        self._open_records: set[int] = set()     # step rows started but not finished
        self.decisions = resolve(rdef, self.options.selection)

    @property
    def backend(self) -> Backend:
        """The backend given, else the configured one (``backend.select``, default local), built on first use."""
        if self._backend is None:
            from ..backends import get_backend

            cfg = self.options.config
            name = self._backend_name or (cfg.get("backend") or {}).get("select") or "local"
            self._backend = get_backend(name, cfg)
        return self._backend

    def _recipe_backend(self, rdef: RecipeDef, ns: Mapping[str, Any]) -> None:
        """Merge the top-level recipe's ``backend`` section (formulas resolved) over the config's.

        A recipe may pick its engine and size it from its inputs (``n_workers: =recipe.n_workers``);
        ``-b NAME`` on the command line still chooses the engine.
        """
        if self._backend is not None:
            return
        resolved = self._section(rdef.model.backend, ns, rdef.raw, f"recipe '{rdef.name}'", rdef.where)
        if resolved:
            from ..config import deep_merge

            cfg = self.options.config
            cfg["backend"] = deep_merge(cfg.get("backend") or {}, resolved)

    def _section(self, section: Any, ns: Mapping[str, Any], raw: Any, what: str, loc: str) -> dict[str, Any]:
        """A ``backend`` section of a step, cab or nested recipe, formulas resolved."""
        if not section:
            return {}
        if not isinstance(section, Mapping):
            raise ValidationError(f"{loc}: {what}: 'backend' must be a mapping (select: NAME, plus options "
                                  "per backend).")
        return dict(resolve_value(to_plain(section), ns, where=where(raw, "backend", loc)))

    def _backend_for(self, section: Mapping[str, Any]) -> Backend:
        """The backend a step runs on: the run's, or one built for its merged ``backend`` options.

        Options merge over the run's configuration (step over cab over nested recipes over the
        recipe); ``-b NAME`` still picks the engine. A Backend object given to the Runner runs
        everything. Backends are built once per distinct configuration and closed with the run.
        """
        if not section or self._backend_given:
            return self.backend
        import json

        from ..backends import get_backend
        from ..config import deep_merge

        base = self.options.config.get("backend") or {}
        cfg = copy.deepcopy(self.options.config)
        cfg["backend"] = deep_merge(base, dict(section))
        if cfg["backend"] == base:  # the section repeats the run's own settings
            return self.backend
        name = self._backend_name or cfg["backend"].get("select") or "local"
        key = json.dumps([name, cfg["backend"]], sort_keys=True, default=str)
        if key not in self._step_backends:
            self._step_backends[key] = get_backend(name, cfg)
        return self._step_backends[key]

    # -- top level -------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        """Run the recipe; raises StepError/ValidationError (run recorded as failed) on failure."""
        if self.options.record:
            db = Path(self.workdir, ".radioflow", "runs.db")
            try:
                self.records = RunRecords(db)
                self.records.start_run(self.run_id, self.rdef.name, self.files, self.options.argv, self.workdir)
            except (OSError, sqlite3.Error) as exc:
                raise UsageError(f"Cannot write run records to {db}: {exc}.") from None
        self.progress.start(f"radioflow run {self.rdef.name} ({self.run_id})")
        status, error = "failed", None
        try:
            outputs = self._run_recipe(self.rdef, self.params, self.rdef.name, None, self.rdef.name,
                                       "command line")
            status = "ok"
            return RunOutcome(self.run_id, status, outputs, self.reports)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user (Ctrl-C)"
            self._close_open_records("interrupted", error)
            raise RunInterrupted(f"Run {self.run_id} interrupted; rerun with --resume to continue.") from None
        except RadioflowError as exc:
            error = str(exc)
            self._close_open_records("failed", error)
            raise
        finally:
            self.progress.stop()
            if self.records is not None:
                self.records.finish_run(self.run_id, status, error)
                self.records.close()
            if self._backend is not None:
                self._backend.close()
            for extra in self._step_backends.values():
                extra.close()

    def _close_open_records(self, status: str, error: str | None) -> None:
        if self.records is not None:
            for record_id in sorted(self._open_records):
                self.records.finish_step(record_id, status, error=error)
        self._open_records.clear()

    # -- recipes ---------------------------------------------------------------------------
    def _ns(self, fr: _Frame, **extra: Any) -> dict[str, Any]:
        ns = {"recipe": fr.recipe, "root": fr.root, "parent": fr.parent, "previous": fr.previous,
              "steps": fr.steps, "info": fr.info, "config": self.config}
        ns.update(extra)
        return ns

    def _run_recipe(self, rdef: RecipeDef, given: Mapping[str, Any], fqname: str, parent: _Frame | None,
                    path: str, given_where: str, backend: Mapping[str, Any] | None = None) -> dict[str, Any]:
        fr = self._enter_recipe(rdef, given, fqname, parent, path, given_where, backend)
        if rdef.for_loop is None:
            self._run_steps(rdef, [fr])
        else:
            self._run_loops([fr], rdef.for_loop)
        return self._exit_recipe(fr)

    def _enter_recipe(self, rdef: RecipeDef, given: Mapping[str, Any], fqname: str, parent: _Frame | None,
                      path: str, given_where: str, backend: Mapping[str, Any] | None = None) -> _Frame:
        """Resolve and validate a recipe's inputs, assignments and preamble: a frame ready for its steps.

        ``backend`` is the calling step's resolved ``backend`` section: it wins over the nested
        recipe's own section, which wins over what the parent frame passes down.
        """
        raw: dict[str, Any] = {}
        late: dict[str, Any] = {}        # output defaults with formulas: resolved after the steps
        for name, p in rdef.schema.items():
            if p.has_default:
                (late if p.is_output and is_dynamic(p.default) else raw)[name] = p.default
        for name, value in rdef.defaults.items():
            (late if name in rdef.outputs and is_dynamic(value) else raw)[name] = value
        raw.update({k: v for k, v in given.items() if v is not UNSET})
        for name, p in rdef.schema.items():
            if p.implicit is not None:
                raw[name] = p.implicit
        fr = _Frame(rdef=rdef, fqname=fqname, recipe={}, root=None, parent=parent.recipe if parent else {},
                    path=path, info={"label": fqname.rsplit(".", 1)[-1], "fqname": fqname, "suffix": ""})
        ns: dict[str, Any] = {}
        defaults_raw = rdef.raw.get("defaults") or {}

        def where_of(key: str) -> str:
            if key in given:
                return given_where
            if key in rdef.defaults:
                return where(defaults_raw, key)
            p = rdef.schema.get(key)
            return p.where if p is not None else rdef.where

        loop = rdef.for_loop
        lazy = LazyMapping(raw, lambda: ns, name="recipe", where=where_of)
        # without a loop, assigned variables are visible to input defaults (and vice versa)
        assign_lazy = self._assign_lazy(fr, rdef.model.assign if loop is None else {}, rdef.raw.get("assign"), ns)
        view = _Overlay(assign_lazy, lazy)
        fr.root = parent.root if parent else view
        ns.update(self._ns(fr, recipe=view, current=view))
        resolved = lazy.resolved()
        values = validate_values(resolved, rdef.schema, what=f"recipe '{fqname}'", where_of=where_of,
                                 workdir=self.workdir)
        fr.recipe = values
        if parent is None:
            fr.root = values
        if loop is None:
            self._store_assign(fr, assign_lazy)
            self._assign_based_on(fr, rdef.model.assign_based_on, rdef.raw.get("assign_based_on"))
        ns_pre = self._ns(fr, current=fr.recipe)
        if parent is None:
            self._recipe_backend(rdef, ns_pre)
        else:
            from ..config import deep_merge

            own = self._section(rdef.model.backend, ns_pre, rdef.raw, f"recipe '{fqname}'", rdef.where)
            fr.backend = deep_merge(deep_merge(parent.backend, own), dict(backend or {}))
        self._assertions(rdef.model.preamble, ns_pre, rdef.raw, "preamble", f"recipe '{fqname}'")
        fr.late = [(name, value, where_of(name)) for name, value in late.items() if name not in given]
        return fr

    def _exit_recipe(self, fr: _Frame) -> dict[str, Any]:
        """Late output defaults, epilogue and output validation after a recipe's steps ran."""
        rdef, fqname = fr.rdef, fr.fqname
        for name, value, loc in fr.late:
            if fr.recipe.get(name, UNSET) in (UNSET, None):
                fr.recipe[name] = resolve_value(to_plain(value), self._ns(fr, current=fr.recipe), where=loc)
        self._assertions(rdef.model.epilogue, self._ns(fr, current=fr.recipe), rdef.raw, "epilogue",
                         f"recipe '{fqname}'")
        outputs = {k: fr.recipe[k] for k in rdef.outputs if k in fr.recipe and fr.recipe[k] is not UNSET}
        validate_values(outputs, rdef.outputs, what=f"recipe '{fqname}' outputs", outputs=True,
                        where_of=lambda k: rdef.outputs[k].where if k in rdef.outputs else rdef.where,
                        workdir=self.workdir)
        return outputs

    def _run_loops(self, frs: list[_Frame], loop: Any) -> None:
        """Run the for-loop of each frame; the frames' iterations advance together.

        Each frame's iterations go in batches of ``scatter`` (one at a time without scatter, as
        an ICAL cycle needs the previous one). Round r runs the r-th batch of *every* frame in
        one :meth:`_run_steps`, so a looping recipe called from a scatter still reaches the
        backend as one ``map`` per step across all callers.
        """
        rdef = frs[0].rdef
        rounds: list[list[_Frame]] = []
        per_frame: list[list[_Frame]] = []
        for fr in frs:
            batches = self._loop_batches(fr, loop)
            per_frame.append([it for batch in batches for it in batch])
            for r, batch in enumerate(batches):
                if r == len(rounds):
                    rounds.append([])
                rounds[r].extend(batch)
        for frames in rounds:
            for it in frames:
                self._recipe_assign(it)
                if loop.display_status:
                    note = resolve_value(loop.display_status, self._ns(it),
                                         where=where(rdef.raw.get("for_loop"), "display_status"))
                    self.progress.message(f"{it.fqname}: {note}")
            self._run_steps(rdef, frames)
        for fr, iterations in zip(frs, per_frame):
            self._gather_loop(fr, loop, iterations)

    def _loop_batches(self, fr: _Frame, loop: Any) -> list[list[_Frame]]:
        """A frame's loop iterations (not yet assigned), in batches of ``scatter``."""
        rdef = fr.rdef
        if isinstance(loop.over, str) and not is_dynamic(loop.over):
            over = fr.recipe.get(loop.over, UNSET)
        else:
            over = resolve_value(to_plain(loop.over), self._ns(fr), where=where(rdef.raw.get("for_loop"), "over"))
        if over is UNSET or over is None:
            over = []
        if not isinstance(over, (list, tuple)):
            over = [over]
        scatter = fr.recipe.get("for_loop.scatter", loop.scatter)   # Stimela: a 'for_loop.scatter' input
        if scatter is True or (isinstance(scatter, int) and scatter < 0):
            batch = max(1, len(over))
        elif scatter:
            batch = int(scatter)
        else:
            batch = 1
        batches = []
        for start in range(0, len(over), batch):
            frames = []
            for i in range(start, min(start + batch, len(over))):
                it = _Frame(rdef=rdef, fqname=fr.fqname, recipe=dict(fr.recipe), root=fr.root, parent=fr.parent,
                            backend=fr.backend,
                            path=fr.path, previous=fr.previous,
                            info={**fr.info, "suffix": f"-{i}", "index": i, "total": len(over)})
                it.recipe[loop.var] = over[i]
                if fr.root is fr.recipe:
                    it.root = it.recipe
                frames.append(it)
            batches.append(frames)
        return batches

    def _gather_loop(self, fr: _Frame, loop: Any, iterations: list[_Frame]) -> None:
        """Loop outputs into the frame: gathered lists (``output_elements``), else the last value."""
        rdef = fr.rdef
        gather = loop.output_elements or []
        elements_raw = (rdef.raw.get("for_loop") or {}).get("output_elements")
        for name in rdef.outputs:
            if name in gather:
                if isinstance(gather, Mapping):   # Stimela form: name -> formula, per iteration
                    loc = where(elements_raw, name, rdef.where)
                    fr.recipe[name] = [resolve_value(to_plain(gather[name]), self._ns(it), where=loc)
                                       for it in iterations]
                else:                             # short form: gather the per-iteration values
                    fr.recipe[name] = [it.recipe.get(name) for it in iterations]
            elif iterations and name in iterations[-1].recipe:
                fr.recipe[name] = iterations[-1].recipe[name]
        if iterations:
            fr.steps.update(iterations[-1].steps)
            fr.previous = iterations[-1].previous

    def _recipe_assign(self, fr: _Frame) -> None:
        rdef = fr.rdef
        self._assign(fr, rdef.model.assign, rdef.raw.get("assign"))
        self._assign_based_on(fr, rdef.model.assign_based_on, rdef.raw.get("assign_based_on"))

    def _assign_lazy(self, fr: _Frame, assign: Mapping[str, Any] | None, raw: Any,
                     ns: dict[str, Any]) -> LazyMapping:
        return LazyMapping(to_plain(assign or {}), lambda: ns, name="recipe",
                           where=lambda k: where(raw, k, fr.rdef.where))

    def _assign(self, fr: _Frame, assign: Mapping[str, Any], raw: Any) -> None:
        """Assign variables (order-independent: values may refer to each other), ``config.*`` too."""
        if not assign:
            return
        ns: dict[str, Any] = {}
        lazy = self._assign_lazy(fr, assign, raw, ns)
        ns.update(self._ns(fr, recipe=_Overlay(lazy, fr.recipe)))
        self._store_assign(fr, lazy)

    def _store_assign(self, fr: _Frame, lazy: LazyMapping) -> None:
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

    def _assign_based_on(self, fr: _Frame, table: Mapping[str, Any], raw: Any) -> None:
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
                raise ValidationError(f"{where(cases, match, loc)}: assign_based_on.{basevar}.{match} must be a mapping of assignments.")
            self._assign(fr, cases[match], cases[match])

    # -- steps -----------------------------------------------------------------------------
    def _run_steps(self, rdef: RecipeDef, frames: list[_Frame]) -> None:
        path = frames[0].path
        decisions = {label: self.decisions[f"{path}.{label}"] for label in rdef.steps}
        for label, sdef in rdef.steps.items():
            preps = [self._prepare(fr, label, sdef, decisions[label]) for fr in frames]
            todo = [p for p in preps if p.action == "run"]
            failures: list[str] = []
            if sdef.cab is not None and todo:
                for p in todo:
                    self.progress.step_started(p.fqname)
                results = self._run_cabs(sdef, todo)
                for p, res in zip(todo, results):
                    err = self._finish_cab(p, sdef, res)
                    if err:
                        failures.append(err)
            elif sdef.recipe is not None and len(todo) > 1:
                # scatter iterations of a nested recipe (and of its own loop) advance together,
                # so its cab steps still reach the backend as one map() per step
                t0 = time.time()
                for p in todo:
                    self.progress.step_started(p.fqname)
                subs = [self._enter_recipe(sdef.recipe, p.params, p.fqname, p.frame, f"{path}.{label}", sdef.where,
                                           p.backend) for p in todo]
                if sdef.recipe.for_loop is None:
                    self._run_steps(sdef.recipe, subs)
                else:
                    self._run_loops(subs, sdef.recipe.for_loop)
                for p, sub in zip(todo, subs):
                    p.outputs = self._exit_recipe(sub)
                    self._done(p, sdef, "ok", time.time() - t0, outputs=p.outputs)
            elif sdef.recipe is not None:
                for p in todo:
                    self.progress.step_started(p.fqname)
                    t0 = time.time()
                    outputs = self._run_recipe(sdef.recipe, p.params, p.fqname, p.frame,
                                               f"{path}.{label}", sdef.where, p.backend)
                    p.outputs = outputs
                    self._done(p, sdef, "ok", time.time() - t0, outputs=outputs)
            for p in preps:
                if p.action != "run":
                    self._done(p, sdef, p.action, 0.0, note=p.note, outputs=p.outputs)
            if failures:
                raise StepError(failures[0] if len(failures) == 1 else
                                f"{len(failures)} scatter iterations failed:\n" + "\n".join(f"  - {f}" for f in failures))

    def _run_cabs(self, sdef: StepDef, todo: list[_Prepared]) -> list[Result]:
        """Run the invocations of a cab step: one ``map`` per backend (scatter iterations whose
        ``backend`` options differ go to different engines), results in ``todo`` order."""
        from ..config import deep_merge

        assert sdef.cab is not None
        groups: dict[int, tuple[Backend, list[int]]] = {}
        for i, p in enumerate(todo):
            cab_section = self._section(sdef.cab.backend, self._ns(p.frame, current=p.params), sdef.cab._raw,
                                        f"cab '{sdef.cab_name}'", sdef.where)
            backend = self._backend_for(deep_merge(deep_merge(p.frame.backend, cab_section), p.backend))
            groups.setdefault(id(backend), (backend, []))[1].append(i)
        results: list[Result | None] = [None] * len(todo)
        for backend, idx in groups.values():
            invs = [todo[i].inv for i in idx]
            out = backend.map(invs) if len(invs) > 1 else [backend.run(invs[0])]
            for i, res in zip(idx, out):
                results[i] = res
        return results  # type: ignore[return-value]

    def _step_fqname(self, fr: _Frame, label: str) -> str:
        return f"{fr.fqname}.{label}{fr.info.get('suffix', '')}"

    def _resolve_params(self, fr: _Frame, label: str, sdef: StepDef) -> tuple[dict[str, Any], dict[str, Any]]:
        schema = sdef.schema
        raw: dict[str, Any] = {}
        for name, p in schema.items():
            if p.has_default:
                raw[name] = p.default
        raw.update(fr.rdef.step_defaults.get(label, {}))
        raw.update(to_plain(sdef.step.params))
        aliased = fr.rdef.alias_targets(label)
        for step_param, recipe_param in aliased.items():
            value = fr.recipe.get(recipe_param, UNSET)
            if value is not UNSET and value is not None:
                raw[step_param] = value
        for name, p in schema.items():
            if p.implicit is not None:
                raw[name] = p.implicit
        info = {**fr.info, "label": label, "fqname": self._step_fqname(fr, label)}
        ns: dict[str, Any] = {}
        lazy = LazyMapping(raw, lambda: ns, name="current", where=sdef.param_where)
        ns.update(self._ns(fr, current=lazy, info=info))
        params = {k: v for k, v in lazy.resolved().items() if v is not UNSET}
        for step_param, recipe_param in aliased.items():
            if fr.recipe.get(recipe_param, UNSET) in (UNSET, None) and step_param in params:
                fr.recipe[recipe_param] = params[step_param]
        return params, ns

    def _prepare(self, fr: _Frame, label: str, sdef: StepDef, decision: Decision) -> _Prepared:
        fq = self._step_fqname(fr, label)
        step = sdef.step
        if not decision.run:
            params = self._try_params(fr, label, sdef)
            return _Prepared(fr, fq, "skipped", params=params, note=decision.reason)
        self._assign(fr, step.assign, sdef.raw.get("assign"))
        self._assign_based_on(fr, step.assign_based_on, sdef.raw.get("assign_based_on"))
        params, ns = self._resolve_params(fr, label, sdef)
        if step.skip is not None and not decision.enabled:
            skip = step.skip
            if isinstance(skip, str):
                skip = resolve_value(skip, ns, where=where(sdef.raw, "skip", sdef.where))
            if skip and skip is not UNSET:
                return _Prepared(fr, fq, "skipped", params=params, note="skip")
        values = validate_values(params, sdef.schema, what=f"step '{fq}'", where_of=sdef.param_where,
                                 workdir=self.workdir)
        self._assertions(step.preamble, ns, sdef.raw, "preamble", f"step '{fq}'")
        if step.skip_if_outputs and not decision.enabled and self._outputs_ready(values, sdef, step.skip_if_outputs):
            return _Prepared(fr, fq, "skipped", params=values, note=f"outputs {step.skip_if_outputs}")
        prep = _Prepared(fr, fq, "run", params=values)
        prep.backend = self._section(step.backend, ns, sdef.raw, f"step '{fq}'", sdef.where)
        if sdef.cab is None:
            return prep
        try:
            prepare_outputs(values, sdef.schema, self.workdir)
        except OSError as exc:
            raise StepError(f"{sdef.where}: step '{fq}': cannot create an output directory: {exc}.") from None
        cab_plain = sdef.cab.plain()
        fps = [fingerprint(path, self.workdir) for name, path in self._file_values(values, sdef, inputs=True)]
        prep.phash = params_hash(cab_plain, values, fps)
        log_path = str(self.log_dir / f"{_SAFE.sub('_', fq)}.log")
        prep.inv = Invocation(step=fq, cab=cab_plain, params=values, workdir=self.workdir, log_path=log_path)
        if self.options.resume and self.records is not None:
            rec = self.records.completed(prep.phash)
            if rec is not None and self._outputs_exist(values, sdef):
                prep.action, prep.note = "resumed", f"resumed from run {rec['run_id']}"
                prep.outputs, prep.resumed_from = rec["outputs"], rec["run_id"]
                return prep
        if self.records is not None:
            prep.record_id = self.records.start_step(self.run_id, fq, sdef.cab_name, _redacted(values), prep.phash,
                                                     log_path)
            self._open_records.add(prep.record_id)
        return prep

    def _try_params(self, fr: _Frame, label: str, sdef: StepDef) -> dict[str, Any]:
        """Parameters of a deselected step (for ``previous``); unresolvable ones are left out."""
        try:
            return self._resolve_params(fr, label, sdef)[0]
        except RadioflowError:
            return {}

    def _assertions(self, items: Any, ns: Mapping[str, Any], raw: Any, kind: str, what: str) -> None:
        """Evaluate ``preamble``/``epilogue`` formulas (a list, or a mapping of named lists).

        A formula that yields ``False`` fails the step or recipe; other results (e.g. from
        ``LOG(...)``) are fine; ``ERROR()``/``ABORT()`` raise their own error.
        """
        if not items:
            return
        node = raw.get(kind) if isinstance(raw, Mapping) else None
        groups = items.items() if isinstance(items, Mapping) else [(None, items)]
        for name, group in groups:
            loc = where(node, name, where(raw, kind)) if name is not None else where(raw, kind)
            for expr in group if isinstance(group, list) else [group]:
                value = resolve_value(to_plain(expr), ns, where=loc)
                if value is False:
                    label = f" '{name}'" if name is not None else ""
                    raise ValidationError(f"{loc}: {what}: {kind}{label} assertion {expr!r} is false.")

    def _file_values(self, values: Mapping[str, Any], sdef: StepDef, *, inputs: bool) -> list[tuple[str, str]]:
        out = []
        for name, value in values.items():
            p = sdef.schema.get(name)
            if p is None or p.is_output == inputs:
                continue
            if p.type.is_file and isinstance(value, str):
                out.append((name, value))
            elif p.type.is_file_list and isinstance(value, list):
                out.extend((name, v) for v in value if isinstance(v, str))
        return out

    def _outputs_exist(self, values: Mapping[str, Any], sdef: StepDef) -> bool:
        """All file-type outputs exist (true when the step has none)."""
        outs = [p for _, p in self._file_values(values, sdef, inputs=False) if "://" not in p]
        return all(os.path.exists(p if os.path.isabs(p) else os.path.join(self.workdir, p)) for p in outs)

    def _outputs_ready(self, values: Mapping[str, Any], sdef: StepDef, mode: str) -> bool:
        outs = [path for _, path in self._file_values(values, sdef, inputs=False) if "://" not in path]
        if not outs:
            return False
        full = [p if os.path.isabs(p) else os.path.join(self.workdir, p) for p in outs]
        if not all(os.path.exists(p) for p in full):
            return False
        if mode == "fresh":
            ins = [p if os.path.isabs(p) else os.path.join(self.workdir, p)
                   for _, p in self._file_values(values, sdef, inputs=True) if "://" not in p]
            newest_in = max((os.path.getmtime(p) for p in ins if os.path.exists(p)), default=0.0)
            return min(os.path.getmtime(p) for p in full) >= newest_in
        return True

    def _finish_cab(self, p: _Prepared, sdef: StepDef, res: Result) -> str | None:
        seconds = max(0.0, res.finished - res.started)
        outputs = dict(res.outputs)
        error = res.error
        if res.ok:
            try:
                outputs = validate_values(outputs, sdef.outputs, what=f"step '{p.fqname}' outputs", outputs=True,
                                          where_of=lambda k: sdef.where, workdir=self.workdir)
            except ValidationError as exc:
                error = str(exc)
        ok = res.ok and error is None
        if p.inv is not None and p.inv.log_path:
            _append_footer(p.inv.log_path, p.params, outputs, ok, res.returncode, seconds)
        if self.records is not None and p.record_id is not None:
            command = next((ln[2:] for ln in res.log.splitlines() if ln.startswith(("# command: ", "# call: "))), None)
            self.records.finish_step(p.record_id, "ok" if ok else "failed", outputs=_redacted(outputs),
                                     returncode=res.returncode, error=error, started=res.started,
                                     finished=res.finished, command=command, output=res.log)
            self._open_records.discard(p.record_id)
        p.outputs = outputs
        for line in res.log.splitlines():  # a cab's progress summaries (radioflow.cabs say()) reach the console
            if line.startswith(SUMMARY_MARK):
                self.progress.message(f"  {line[len(SUMMARY_MARK):].strip()}")
        self._done(p, sdef, "ok" if ok else "failed", seconds, recorded=True, outputs=outputs, note=error or "")
        if ok:
            return None
        log = f" (log: {p.inv.log_path})" if p.inv is not None and p.inv.log_path else ""
        return f"step '{p.fqname}' failed: {error or 'unknown error'}{log}"

    def _done(self, p: _Prepared, sdef: StepDef, status: str, seconds: float, *, note: str = "",
              outputs: Mapping[str, Any] | None = None, recorded: bool = False) -> None:
        fr = p.frame
        merged = {**p.params, **(outputs or {})}
        fr.steps[sdef.label] = merged
        fr.previous = merged
        if status in ("ok", "resumed"):
            for step_param, recipe_param in fr.rdef.alias_targets(sdef.label).items():
                if step_param in (outputs or {}):
                    fr.recipe[recipe_param] = outputs[step_param]
                elif step_param in sdef.outputs and step_param in p.params:
                    fr.recipe[recipe_param] = p.params[step_param]
            if status == "ok" and sdef.step.epilogue:
                self._assertions(sdef.step.epilogue, self._ns(fr, current=merged), sdef.raw, "epilogue",
                                 f"step '{p.fqname}'")
        if self.records is not None and not recorded:
            cab = sdef.cab_name if sdef.cab is not None else f"recipe:{sdef.recipe.name if sdef.recipe else ''}"
            self.records.record_step(self.run_id, p.fqname, cab, status, _redacted(p.params), p.phash,
                                     outputs=_redacted(outputs or {}),
                                     error=note if status == "failed" else None, resumed_from=p.resumed_from,
                                     started=time.time() - seconds, finished=time.time())
        self.reports.append(StepReport(p.fqname, status, seconds, note if status == "failed" else None))
        self.progress.step_finished(p.fqname, status, seconds, note if status != "failed" else "")


def _redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values with secret-looking names (key, token, password, ...) replaced by '***'."""
    from ..secrets import is_secret

    return {k: "***" if is_secret(k) else v for k, v in values.items()}


def _append_footer(path: str, params: Mapping[str, Any], outputs: Mapping[str, Any], ok: bool,
                   returncode: int, seconds: float) -> None:
    from ..secrets import is_secret

    def show(d: Mapping[str, Any]) -> str:
        return "\n".join(f"#   {k} = {'***' if is_secret(k) else repr(v)}" for k, v in d.items()) or "#   (none)"

    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"# resolved parameters:\n{show(params)}\n# outputs:\n{show(outputs)}\n"
                     f"# status: {'ok' if ok else 'failed'}, exit status {returncode}, {seconds:.3f} s\n")
    except OSError:
        pass


__all__ = ["Runner", "RunOptions", "RunOutcome", "RunInterrupted", "StepReport"]
