"""What the ``run``/``doc``/``runs`` commands do, as plain functions (usable from Python too)."""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..errors import UsageError
from ..recipe.load import Document, load_documents
from ..recipe.validate import RecipeDef, compile_recipe, root_params
from .progress import Progress
from .runner import Runner, RunOptions
from .selection import Selection, resolve

_YAML_SUFFIXES = (".yml", ".yaml")


def split_args(args: Sequence[str]) -> tuple[list[str], str | None, dict[str, Any]]:
    """``FILE.yml... [RECIPE] [param=value ...]`` -> (files, recipe, params), in any order as
    Stimela takes them: an argument with ``=`` is an assignment (``step.param=value`` sets a
    step's parameter), one ending in ``.yml``/``.yaml`` (or naming a file) is a recipe file, the
    one other word is the recipe or cab name. Values are read as YAML (``x=[a,b]`` is a list)."""
    files: list[str] = []
    recipe: str | None = None
    params: dict[str, Any] = {}
    for arg in args:
        if "=" in arg and not arg.startswith("="):
            key, raw = arg.split("=", 1)
            key = key.strip()
            if not key:
                raise UsageError(f"Parameter '{arg}' must look like name=value.")
            params[key] = parse_value(raw)
        elif arg.endswith(_YAML_SUFFIXES) or "/" in arg or Path(arg).is_file():
            files.append(arg)
        elif recipe is None:
            recipe = arg
        else:
            raise UsageError(f"Unexpected argument '{arg}': a recipe name ('{recipe}') was already given; "
                             "give FILE.yml... [RECIPE] [param=value ...].")
    if not files and recipe is not None and shipped_workflow(recipe) is not None:
        files, recipe = [str(shipped_workflow(recipe))], None
    if not files:
        raise UsageError("No recipe file given: radioflow run FILE.yml [RECIPE] [param=value ...], or the name "
                         f"of a shipped workflow ({', '.join(shipped_workflows())}).")
    return files, recipe, params


def shipped_workflows() -> list[str]:
    """Names of the workflows that ship with radioflow (``radioflow run NAME`` from any folder)."""
    from importlib.resources import files as package_files

    folder = package_files("radioflow") / "recipes"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".yml"))


def shipped_workflow(name: str) -> Path | None:
    """The YAML file of the shipped workflow ``name`` (``batch-imaging``), unless a local file of
    that name exists (a file the user named always wins)."""
    if Path(name).exists() or name not in shipped_workflows():
        return None
    from importlib.resources import files as package_files

    return Path(str(package_files("radioflow") / "recipes" / f"{name}.yml"))


def parse_value(raw: str) -> Any:
    """A command-line value read as YAML (``[x,y]`` is a list, ``3`` an int); text if it is not YAML."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, RecursionError):
        return raw
    _check_ints(value, raw)
    return value


def _check_ints(value: Any, raw: str) -> None:
    """Integers on the command line fit in 64 bits, as in recipe files."""
    from ..recipe.load import MAX_INT_BITS

    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > MAX_INT_BITS:
        raise UsageError(f"Command-line value {raw[:30]}... ({len(raw)} characters): the integer does not fit "
                         f"in {MAX_INT_BITS} bits.")
    if isinstance(value, list):
        for item in value:
            _check_ints(item, raw)
    elif isinstance(value, dict):
        for item in value.values():
            _check_ints(item, raw)


def read_params_file(path: str) -> dict[str, Any]:
    """Assignments from a parameter file (``-pf``): a YAML mapping whose nested mappings are
    flattened to dotted names (``step: {param: v}`` sets ``step.param``), as Stimela reads it."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"Parameter file {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise UsageError(f"Parameter file {where} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"Parameter file {path} must hold a mapping of parameter names to values, "
                         f"not a {type(data).__name__}.")
    out: dict[str, Any] = {}

    def flatten(prefix: str, d: dict) -> None:
        for key, value in d.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                flatten(name + ".", value)
            else:
                out[name] = value

    flatten("", data)
    return out


def choose_recipe(doc: Document, name: str | None, *, last: bool = False) -> str:
    """The recipe to run: the named one, ``DEFAULT``, the last one defined (``last``, Stimela's
    ``-l``), or the only one."""
    recipes = doc.recipes
    if name is not None and name not in recipes and name in doc.cabs:
        _wrap_cab(doc, name)
        return name
    if name is not None:
        if name not in recipes:
            known = ", ".join(recipes) or "none"
            raise UsageError(f"No recipe named '{name}' in {', '.join(doc.files)} (recipes: {known}).")
        return name
    if last:
        if not recipes:
            raise UsageError(f"-l/--last-recipe given, but {', '.join(doc.files)} define no recipe.")
        return list(recipes)[-1]
    if doc.default is not None:
        if doc.default not in recipes:
            raise UsageError(f"{doc.where('DEFAULT')}: DEFAULT names '{doc.default}', which is not a recipe.")
        return doc.default
    if len(recipes) == 1:
        return next(iter(recipes))
    if not recipes:
        raise UsageError(f"{', '.join(doc.files)} define no recipe (only cabs/lib/opts/vars).")
    raise UsageError(f"Several recipes are defined ({', '.join(recipes)}); name one or set DEFAULT: name.")


def _wrap_cab(doc: Document, name: str) -> None:
    """Run a cab on its own (as ``stimela run file.yml CAB x=1`` does): a one-step recipe
    whose parameters are aliases of all the cab's parameters."""
    from ..recipe.load import LocDict
    from ..recipe.model import Problems, build_cab

    cab_raw = doc.cabs[name]
    problems = Problems()
    cab = build_cab(cab_raw, name, problems)
    problems.raise_if_any(f"cab '{name}'")
    assert cab is not None

    def located(items: dict) -> LocDict:
        d = LocDict(items)
        d.loc = cab_raw.loc
        d.key_locs = {k: cab_raw.loc for k in items}
        return d

    step = located({"cab": name})
    aliases = located({p: f"{name}.{p}" for p in cab.schema})
    recipe = located({"info": f"cab {name} run on its own", "steps": located({name: step}), "aliases": aliases})
    doc.tree[name] = recipe
    doc.tree.key_locs[name] = cab_raw.loc


@dataclass
class PreparedRun:
    """A loaded, validated recipe ready to run."""

    doc: Document
    rdef: RecipeDef
    params: dict[str, Any]
    options: RunOptions = field(default_factory=RunOptions)

    def runner(self, *, backend_name: str | None = None, backend: Any = None,
               progress: Progress | None = None) -> Runner:
        """A :class:`Runner`; the backend is ``backend``, else ``backend_name``, else the configured one."""
        if backend is None and backend_name is not None:
            from ..backends import get_backend

            backend = get_backend(backend_name, self.options.config)   # fail early on a bad name
        return Runner(self.doc, self.rdef, self.params, backend=backend, options=self.options, progress=progress)


def prepare_run(args: Sequence[str], *, workdir: str = ".", steps: Sequence[str] = (), skip: Sequence[str] = (),
                tags: Sequence[str] = (), skip_tags: Sequence[str] = (), enable: Sequence[str] = (),
                config: dict[str, Any] | None = None, environ: Mapping[str, str] | None = None,
                params_files: Sequence[str] = (), last_recipe: bool = False) -> PreparedRun:
    """Load files, pick the recipe, prevalidate everything; raise on any problem.

    ``--NAME``/``--no-NAME`` in ``args`` set boolean inputs; inputs with an ``env`` variable
    not given on the command line are taken from the environment (``environ``, default the
    process's; see :mod:`.inputs`). ``params_files`` (``-pf``) give assignments with lower
    precedence than ``name=value`` in ``args``; ``last_recipe`` (``-l``) picks the last recipe.
    """
    from .inputs import environment_params, flag_params, split_flags

    rest, flags = split_flags(args)
    files, name, cli_params = split_args(rest)
    params: dict[str, Any] = {}
    for pf in params_files:
        params.update(read_params_file(pf))
    params.update(cli_params)
    doc = load_documents(files)
    _add_python_paths(doc.files)   # every loaded file, includes too
    recipe = choose_recipe(doc, name, last=last_recipe)
    schema_only = compile_recipe(doc, recipe, params, check_params=False)   # step.param=value applied too
    params = {**flag_params(schema_only, flags), **params}
    params = {**environment_params(schema_only, params, environ), **params}
    rdef = compile_recipe(doc, recipe, params)
    params = root_params(rdef, params)
    if config is None:
        from ..config import load_config

        config = load_config(cwd=Path(workdir))
    opts_backend = doc.opts.get("backend") if isinstance(doc.opts, dict) else None
    if isinstance(opts_backend, dict):      # Stimela's opts.backend in the recipe files (select: native ...)
        from ..config import deep_merge
        from ..recipe.load import to_plain

        config = deep_merge(config, {"backend": to_plain(opts_backend)})
    selection = Selection(steps=list(steps), skip=list(skip), tags=list(tags), skip_tags=list(skip_tags),
                          enable=list(enable))
    resolve(rdef, selection)   # checks that -s/-k/-t/-e name existing steps and tags
    return PreparedRun(doc, rdef, params, RunOptions(workdir=workdir, selection=selection, config=config))


def _add_python_paths(files: Sequence[str]) -> None:
    """Like Stimela, python cabs may live in modules next to the recipe files."""
    import sys

    for f in files:
        d = os.path.dirname(os.path.abspath(f))
        if d not in sys.path:
            sys.path.append(d)


def describe(args: Sequence[str]) -> str:
    """Text for ``radioflow doc``: a recipe's or cab's inputs, outputs and steps, or a listing."""
    files = [a for a in args if a.endswith(_YAML_SUFFIXES) or Path(a).is_file()]
    names = [a for a in args if a not in files]
    if not files and names and shipped_workflow(names[0]) is not None:
        files, names = [str(shipped_workflow(names[0]))], names[1:]
    if not files:
        raise UsageError("No recipe file given: radioflow doc FILE.yml [NAME], or the name of a shipped "
                         f"workflow ({', '.join(shipped_workflows())}).")
    doc = load_documents(files)
    if not names:
        lines = ["recipes:"] + [f"  {k}: {_first_line(v.get('info'))}" for k, v in doc.recipes.items()]
        lines += ["cabs:"] + [f"  {k}: {_first_line(v.get('info') if isinstance(v, dict) else '')}" for k, v in doc.cabs.items()]
        return "\n".join(lines)
    from ..recipe.model import Problems, build_cab

    name = names[0]
    lib_recipes = doc.lib.get("recipes") or {}
    short = name[len("lib.recipes."):] if name.startswith("lib.recipes.") else name
    if name not in doc.recipes and short in lib_recipes and name not in doc.cabs:
        doc.tree[name] = lib_recipes[short]          # describe a library recipe like a top-level one
    if name in doc.recipes:
        rdef = compile_recipe(doc, name, check_params=False)
        lines = [f"recipe {name}: {rdef.model.info or ''}".rstrip(": ")]
        lines += _params("inputs", rdef.inputs) + _params("outputs", rdef.outputs)
        lines.append("steps:")
        for label, sdef in rdef.steps.items():
            what = f"cab {sdef.cab_name}" if sdef.cab is not None else f"recipe {sdef.recipe.name if sdef.recipe else '?'}"
            tags = f" [tags: {', '.join(sdef.step.tags)}]" if sdef.step.tags else ""
            info = f" -- {sdef.step.info}" if sdef.step.info else ""
            lines.append(f"  {label}: {what}{tags}{info}")
        return "\n".join(lines)
    if name in doc.cabs:
        problems = Problems()
        cab = build_cab(doc.cabs[name], name, problems)
        problems.raise_if_any(f"cab '{name}'")
        assert cab is not None
        lines = [f"cab {name}: {cab.info or ''}".rstrip(": "), f"  command: {cab.command} ({cab.flavour_kind})"]
        return "\n".join(lines + _params("inputs", cab.schema_inputs) + _params("outputs", cab.schema_outputs))
    known = ", ".join([*doc.recipes, *doc.cabs]) or "none"
    raise UsageError(f"No recipe or cab named '{name}' (defined: {known}).")


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0] if str(text or "").strip() else ""


def _params(title: str, schema: dict) -> list[str]:
    lines = [f"{title}:"]
    if not schema:
        lines.append("  (none)")
    for pname, p in schema.items():
        flags = []
        if p.required:
            flags.append("required")
        if p.has_default:
            flags.append(f"default={p.default!r}")
        if p.implicit is not None:
            flags.append(f"implicit={p.implicit!r}")
        if p.choices:
            flags.append(f"choices={list(p.choices)}")
        if p.env:
            flags.append(f"env={p.env}")
        extra = f" ({', '.join(flags)})" if flags else ""
        info = f" -- {p.info}" if p.info else ""
        lines.append(f"  {pname}: {p.dtype}{extra}{info}")
    return lines


def list_runs(workdir: str, *, run_id: str | None = None, limit: int = 20, as_json: bool = False) -> str:
    """Text (or JSON) for ``radioflow runs``: recent runs, or the steps of one run with their
    accounting (wall, CPU, peak memory, bytes read and written, calls, cost)."""
    db = Path(workdir, ".radioflow", "runs.db")
    if not Path(workdir).is_dir():
        raise UsageError(f"Work folder {workdir} does not exist (radioflow runs -C WORKDIR).")
    if not db.is_file():
        if as_json:
            raise UsageError(f"No runs recorded in {os.path.abspath(workdir)} (no .radioflow/runs.db).")
        return f"no runs recorded in {os.path.abspath(workdir)} (no .radioflow/runs.db)"
    from .records import RunRecords
    from .usage_table import run_json, run_table

    rec = RunRecords(db)
    try:
        if run_id is None:
            rows = rec.runs(limit)
            if as_json:
                keys = ("id", "recipe", "status", "started", "finished", "nok", "nsteps", "error")
                return json.dumps([{k: r.get(k) for k in keys} for r in rows], indent=2)
            lines = [f"{'run id':<24} {'recipe':<20} {'status':<12} {'started (UTC)':<20} {'time':>9}  steps ok/total"]
            for r in rows:
                lines.append(f"{r['id']:<24} {str(r['recipe'])[:20]:<20} {r['status']:<12} {_when(r['started']):<20} "
                             f"{_dur(r['started'], r['finished']):>9}  {r['nok']}/{r['nsteps']}")
            return "\n".join(lines)
        matches = [r for r in rec.runs(10_000) if r["id"].startswith(run_id)]
        if not matches:
            raise UsageError(f"No run '{run_id}' in {db}.")
        run = {**(rec.run(matches[0]["id"]) or {}), **matches[0]}
        steps = rec.steps(run["id"])
        if as_json:
            return run_json(run, steps)
        lines = [f"run {run['id']} ({run['recipe']}): {run['status']}, {_dur(run['started'], run['finished'])}"]
        if run.get("error"):
            lines.append(f"  error: {run['error']}")
        return "\n".join(lines + run_table(steps, run))
    finally:
        rec.close()


def _when(ts: float | None) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _dur(a: float | None, b: float | None) -> str:
    return f"{b - a:.2f} s" if a and b else "-"


def plan(rdef: RecipeDef, selection: Selection | None = None) -> list[str]:
    """Human-readable plan of a recipe: its steps, what each runs and whether it is selected."""
    decisions = resolve(rdef, selection)
    lines = [f"recipe {rdef.name}: {rdef.model.info or ''}".rstrip(": ")]

    def walk(r: RecipeDef, path: str, indent: str) -> None:
        if r.for_loop is not None:
            fl = r.for_loop
            lines.append(f"{indent}  for {fl.var} in {fl.over}" + (f" (scatter {fl.scatter})" if fl.scatter else ""))
        for label, sdef in r.steps.items():
            d = decisions[f"{path}.{label}"]
            what = f"cab {sdef.cab_name}" if sdef.cab is not None else f"recipe {sdef.recipe.name if sdef.recipe else '?'}"
            extra = []
            if sdef.step.skip is not None and not d.enabled:
                extra.append(f"skip: {sdef.step.skip}")
            if sdef.step.tags:
                extra.append("tags: " + ",".join(sdef.step.tags))
            if not d.run:
                extra.append(d.reason)
            flag = "run " if d.run else "skip"
            lines.append(f"{indent}  [{flag}] {label}: {what}" + (f"  ({'; '.join(extra)})" if extra else ""))
            if sdef.recipe is not None and d.run:
                walk(sdef.recipe, f"{path}.{label}", indent + "    ")

    walk(rdef, rdef.name, "")
    return lines
