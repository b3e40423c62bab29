"""Run a compiled recipe: steps in order, nested recipes, for-loops and scatter, records, resume.

Each cab step becomes an :class:`~radioflow.invoke.Invocation` run by the backend
(``backend.run`` for one, ``backend.map`` for the iterations of a scatter loop, which advance
step by step in lock-step batches). The :class:`Runner` orchestrates; its parts are
:mod:`.frames` (frames and the namespaces formulas see), :mod:`.loops` (for-loops and scatter),
:mod:`.engines` (which backend runs a step), :mod:`.resume` (step hashes, work already done)
and :mod:`.recording` (run records in ``.radioflow/runs.db``, step logs, reports).
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..backends.base import Backend
from ..errors import RadioflowError, StepError, ValidationError
from ..invoke import Invocation, Result
from ..recipe.formula import UNSET, FormulaError, LazyMapping
from ..recipe.load import Document, to_plain, where
from ..recipe.substitute import resolve_value
from ..recipe.validate import RecipeDef, StepDef, is_dynamic, prepare_outputs, validate_values
from ..secrets import formula_environment
from . import resume
from .costs import PriceModel
from .engines import Engines, resolve_section
from .frames import Frame, Overlay, Scopes, check_assertions, step_fqname, step_sections, substituted_cab
from .logfiles import LogLayout, run_time_info
from .loops import run_loops
from .progress import Progress
from .recording import Recorder, StepReport
from .records import new_run_id
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
    wait: bool = False                # wait for another run holding the work folder


@dataclass
class RunOutcome:
    """What a run did."""

    run_id: str
    status: str
    outputs: dict[str, Any]
    steps: list[StepReport]


@dataclass
class _Prepared:
    """One step of one frame, ready to run (or skipped, or resumed)."""

    frame: Frame
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
    inputs_fp: dict[str, Any] = field(default_factory=dict)  # file inputs' fingerprints when it started


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
        self.engines = Engines(self.options.config, backend, backend_name)
        self.run_id = new_run_id()
        self.recorder = Recorder(self.workdir, self.run_id, self.progress, enabled=self.options.record,
                                 prices=PriceModel.from_config(self.options.config))
        self.reports: list[StepReport] = self.recorder.reports
        self.config = {
            **copy.deepcopy(self.options.config),
            "opts": to_plain(doc.opts), "vars": to_plain(doc.vars),
            "run": {"env": formula_environment(), "dir": self.workdir, "id": self.run_id},
        }
        self.config["run"].update(run_time_info())
        log_opts = (self.config.get("opts") or {}).get("log")
        self.logs = LogLayout(self.workdir, self.run_id, log_opts if isinstance(log_opts, Mapping) else None)
        self.scopes = Scopes(self.config)
        self.decisions = resolve(rdef, self.options.selection)

    @property
    def backend(self) -> Backend:
        """The backend given, else the configured one (``backend.select``, default local), built on first use."""
        return self.engines.backend

    # -- top level -------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        """Run the recipe, owning the work folder (see :mod:`.lock`); raises StepError/ValidationError
        (run recorded as failed) on failure."""
        from .lock import workdir_lock

        with workdir_lock(self.workdir, self.run_id, wait=self.options.wait):
            return self._run_locked()

    def _run_locked(self) -> RunOutcome:
        self.recorder.start_run(self.rdef.name, self.files, self.options.argv)
        self.progress.start(f"radioflow run {self.rdef.name} ({self.run_id})")
        status, error = "failed", None
        try:
            outputs = self._run_recipe(self.rdef, self.params, self.rdef.name, None, self.rdef.name,
                                       "command line")
            status = "ok"
            return RunOutcome(self.run_id, status, outputs, self.reports)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user (Ctrl-C)"
            self.recorder.abandon_open("interrupted", error)
            raise RunInterrupted(f"Run {self.run_id} interrupted; rerun with --resume to continue.") from None
        except RadioflowError as exc:
            error = str(exc)
            self.recorder.abandon_open("failed", error)
            raise
        finally:
            self.progress.stop()
            self.recorder.finish_run(status, error)
            self.engines.close()

    # -- recipes ---------------------------------------------------------------------------
    def _run_recipe(self, rdef: RecipeDef, given: Mapping[str, Any], fqname: str, parent: Frame | None,
                    path: str, given_where: str, backend: Mapping[str, Any] | None = None) -> dict[str, Any]:
        fr = self._enter_recipe(rdef, given, fqname, parent, path, given_where, backend)
        self._run_body(rdef, [fr])
        return self._exit_recipe(fr)

    def _run_body(self, rdef: RecipeDef, frames: list[Frame]) -> None:
        """The steps of a recipe over frames advancing together (through its for-loop if any)."""
        if rdef.for_loop is None:
            self._run_steps(rdef, frames)
        else:
            run_loops(frames, rdef.for_loop, self.scopes, self.progress, self._run_steps)

    def _enter_recipe(self, rdef: RecipeDef, given: Mapping[str, Any], fqname: str, parent: Frame | None,
                      path: str, given_where: str, backend: Mapping[str, Any] | None = None) -> Frame:
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
            if p.implicit is not None:      # an implicit output may refer to what the steps produce
                (late if p.is_output and is_dynamic(p.implicit) else raw)[name] = p.implicit
        fr = Frame(rdef=rdef, fqname=fqname, recipe={}, root=None, parent=parent.recipe if parent else {},
                   path=path, info=_recipe_info(fqname, parent))
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
        assign_lazy = self.scopes.assign_lazy(fr, rdef.model.assign if loop is None else {},
                                              rdef.raw.get("assign"), ns)
        view = Overlay(assign_lazy, lazy)
        fr.root = parent.root if parent else view
        ns.update(self.scopes.ns(fr, recipe=view, current=view))
        try:
            resolved = lazy.resolved()
        except FormulaError as exc:
            raise ValidationError(f"recipe '{fqname}': invalid inputs: {exc}") from None
        values = validate_values(resolved, rdef.schema, what=f"recipe '{fqname}': invalid inputs", where_of=where_of,
                                 workdir=self.workdir)
        fr.recipe = values
        try:
            prepare_outputs({k: v for k, v in values.items() if k in rdef.outputs}, rdef.outputs, self.workdir)
        except OSError as exc:
            raise StepError(f"{rdef.where}: recipe '{fqname}': cannot create an output directory: {exc}.") from None
        if parent is None:
            fr.root = values
        if loop is None:
            self.scopes.store_assign(fr, assign_lazy)
            self.scopes.assign_based_on(fr, rdef.model.assign_based_on, rdef.raw.get("assign_based_on"))
        ns_pre = self.scopes.ns(fr, current=fr.recipe)
        if parent is None:
            self.engines.recipe_backend(rdef, ns_pre)
        else:
            from ..config import deep_merge

            own = resolve_section(rdef.model.backend, ns_pre, rdef.raw, f"recipe '{fqname}'", rdef.where)
            fr.backend = deep_merge(deep_merge(parent.backend, own), dict(backend or {}))
        check_assertions(rdef.model.preamble, ns_pre, rdef.raw, "preamble", f"recipe '{fqname}'")
        fr.late = [(name, value, where_of(name)) for name, value in late.items() if name not in given]
        return fr

    def _exit_recipe(self, fr: Frame) -> dict[str, Any]:
        """Late output defaults, epilogue and output validation after a recipe's steps ran."""
        rdef, fqname = fr.rdef, fr.fqname
        for name, value, loc in fr.late:
            if fr.recipe.get(name, UNSET) in (UNSET, None):
                fr.recipe[name] = resolve_value(to_plain(value), self.scopes.ns(fr, current=fr.recipe), where=loc)
        check_assertions(rdef.model.epilogue, self.scopes.ns(fr, current=fr.recipe), rdef.raw, "epilogue",
                         f"recipe '{fqname}'")
        outputs = {k: fr.recipe[k] for k in rdef.outputs if k in fr.recipe and fr.recipe[k] is not UNSET}
        validate_values(outputs, rdef.outputs, what=f"recipe '{fqname}' outputs", outputs=True,
                        where_of=lambda k: rdef.outputs[k].where if k in rdef.outputs else rdef.where,
                        workdir=self.workdir)
        return outputs

    # -- steps -----------------------------------------------------------------------------
    def _run_steps(self, rdef: RecipeDef, frames: list[Frame]) -> None:
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
                self._run_body(sdef.recipe, subs)
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
        """Run the invocations of a cab step, each on the backend of its merged ``backend`` options
        (frame, then cab, then step), results in ``todo`` order."""
        from ..config import deep_merge

        assert sdef.cab is not None
        work: list[tuple[Mapping[str, Any], Invocation]] = []
        for p in todo:
            assert p.inv is not None
            cab_section = resolve_section(sdef.cab.backend, self.scopes.ns(p.frame, current=p.params),
                                          sdef.cab._raw, f"cab '{sdef.cab_name}'", sdef.where)
            work.append((deep_merge(deep_merge(p.frame.backend, cab_section), p.backend), p.inv))
        return self.engines.run_all(work)

    def _prepare(self, fr: Frame, label: str, sdef: StepDef, decision: Decision) -> _Prepared:
        fq = step_fqname(fr, label)
        step = sdef.step
        if not decision.run or (sdef.recipe is not None and not self._runs_anything(sdef.recipe, f"{fr.path}.{label}")):
            params = self.scopes.try_params(fr, label, sdef)
            return _Prepared(fr, fq, "skipped", params=params, note=decision.reason or "no step of it selected")
        self.scopes.assign(fr, step.assign, sdef.raw.get("assign"))
        self.scopes.assign_based_on(fr, step.assign_based_on, sdef.raw.get("assign_based_on"))
        params, ns = self.scopes.resolve_params(fr, label, sdef)
        if step.skip is not None and not decision.enabled:
            skip = step.skip
            if isinstance(skip, str):
                skip = resolve_value(skip, ns, where=where(sdef.raw, "skip", sdef.where))
            if skip and skip is not UNSET:
                return _Prepared(fr, fq, "skipped", params=params, note="skip")
        values = validate_values(params, sdef.schema, what=f"step '{fq}'", where_of=sdef.param_where,
                                 workdir=self.workdir)
        for items, raw, what in step_sections(sdef, "preamble", fq):
            check_assertions(items, ns, raw, "preamble", what)
        disabled = bool((self.options.config.get("disable_skips") or {}).get(step.skip_if_outputs or ""))
        if (step.skip_if_outputs and not decision.enabled and not disabled
                and resume.outputs_ready(values, sdef, step.skip_if_outputs, self.workdir)):
            return _Prepared(fr, fq, "skipped", params=values, note=f"outputs {step.skip_if_outputs}")
        prep = _Prepared(fr, fq, "run", params=values)
        prep.backend = resolve_section(step.backend, ns, sdef.raw, f"step '{fq}'", sdef.where)
        if sdef.cab is None:
            return prep
        try:
            prepare_outputs(values, sdef.schema, self.workdir)
        except OSError as exc:
            raise StepError(f"{sdef.where}: step '{fq}': cannot create an output directory: {exc}.") from None
        cab_plain = substituted_cab(sdef.cab.plain(), {**ns, "current": values}, sdef.cab.where)
        prep.phash = resume.step_hash(cab_plain, values, sdef, self.workdir)
        log_path = self.logs.path(fq, {**ns, "config": self.config})
        prep.inv = Invocation(step=fq, cab=cab_plain, params=values, workdir=self.workdir, log_path=log_path)
        records = self.recorder.records
        if self.options.resume and records is not None:
            rec, why = resume.completed(records, prep.phash, values, sdef, self.workdir, fq)
            if rec is not None:
                prep.action, prep.note = "resumed", f"resumed from run {rec['run_id']}"
                prep.outputs, prep.resumed_from = rec["outputs"], rec["run_id"]
                return prep
            self.progress.message(f"  {fq}: running again: {why}")
        prep.inputs_fp = resume.file_fingerprints(values, sdef, self.workdir, inputs=True)
        prep.record_id = self.recorder.start_step(fq, sdef.cab_name, values, prep.phash, log_path)
        return prep

    def _runs_anything(self, rdef: RecipeDef, path: str) -> bool:
        """Whether any cab step under the nested recipe at ``path`` is selected (as Stimela, a
        nested recipe whose steps are all deselected or skipped is skipped itself)."""
        for label, sdef in rdef.steps.items():
            d = self.decisions[f"{path}.{label}"]
            if not d.run or (sdef.step.skip is True and not d.enabled):
                continue
            if sdef.recipe is None or self._runs_anything(sdef.recipe, f"{path}.{label}"):
                return True
        return False

    def _finish_cab(self, p: _Prepared, sdef: StepDef, res: Result) -> str | None:
        seconds = max(0.0, res.finished - res.started)
        outputs = dict(res.outputs)
        error = res.error
        if res.ok:
            try:
                outputs.update(self._implicit_outputs_after(p, sdef))
                outputs = validate_values(outputs, sdef.outputs, what=f"step '{p.fqname}' outputs", outputs=True,
                                          where_of=lambda k: sdef.where, workdir=self.workdir)
            except ValidationError as exc:
                error = str(exc)
        ok = res.ok and error is None
        log_path = p.inv.log_path if p.inv is not None else None
        self.progress.step_log(p.fqname, res.log)
        if ok:
            self.progress.step_outputs(p.fqname, outputs)
        fps = {"inputs": p.inputs_fp,
               "outputs": resume.file_fingerprints(p.params, sdef, self.workdir, inputs=False)} if ok else None
        self.recorder.cab_finished(p.record_id, log_path, p.params, outputs, res, ok, error, seconds, fps)
        p.outputs = outputs
        self._done(p, sdef, "ok" if ok else "failed", seconds, recorded=True, outputs=outputs, note=error or "")
        if ok:
            return None
        log = f" (log: {log_path})" if log_path else ""
        return f"step '{p.fqname}' failed: {error or 'unknown error'}{log}"

    def _implicit_outputs_after(self, p: _Prepared, sdef: StepDef) -> dict[str, Any]:
        """Implicit outputs given by a formula (``=GLOB(...)`` of the images a cab wrote) evaluated
        again once the cab has run, as Stimela's ``validate_outputs`` does."""
        late = {name: prm for name, prm in sdef.outputs.items() if is_dynamic(prm.implicit)}
        if not late:
            return {}
        ns = self.scopes.ns(p.frame, current=p.params)
        return {name: resolve_value(prm.implicit, ns, where=prm.where) for name, prm in late.items()}

    def _done(self, p: _Prepared, sdef: StepDef, status: str, seconds: float, *, note: str = "",
              outputs: Mapping[str, Any] | None = None, recorded: bool = False) -> None:
        self.scopes.publish(p.frame, sdef, p.fqname, status, p.params, outputs)
        self.recorder.step_done(p.fqname, sdef, status, seconds, p.params, phash=p.phash, outputs=outputs,
                                note=note, resumed_from=p.resumed_from, recorded=recorded)


def _recipe_info(taskname: str, parent: Frame | None) -> dict[str, Any]:
    """``info`` of a recipe frame: ``fqname`` as Stimela's (no loop indices), ``taskname`` unique."""
    label = taskname.rsplit(".", 1)[-1]
    fqname = f"{parent.info.get('fqname', parent.fqname)}.{label}" if parent is not None else taskname
    return {"label": label, "fqname": fqname, "taskname": taskname, "label_parts": label.split("-"), "suffix": ""}


__all__ = ["Runner", "RunOptions", "RunOutcome", "RunInterrupted", "StepReport"]
