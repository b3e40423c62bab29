"""Everything a report shows about one run, gathered from its records and the files it names.

Step rows come from the run records; products are found among the step parameters and outputs:
FITS images (``*.fits``), visibility datasets (``*.ms``, or ``*.zarr`` with ``UVW``) and gain
solutions (``*.zarr`` with ``GAIN``; the step's ``true_gains`` is the truth when given). Only
local paths that exist are used. All text and values pass through :class:`~.mask.Masker`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..invoke.markers import SUMMARY_MARK
from .mask import Masker
from .store import RESOURCE_COLUMNS, RunStore

LOG_TAIL = 40


@dataclass
class Step:
    """One step row: a cab invocation, or a nested recipe / loop (``group``)."""

    fqname: str
    name: str                  # fqname without the top recipe's name
    cab: str
    status: str
    started: float | None
    finished: float | None
    error: str
    params: dict[str, Any]
    outputs: dict[str, Any]
    log_tail: list[str]
    summary: list[str]
    resources: dict[str, Any]
    resumed_from: str | None = None
    group: bool = False        # a nested recipe / for-loop row spanning other steps
    parent: str = ""           # fqname of the innermost group row containing this step

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(0.0, self.finished - self.started)


@dataclass
class Product:
    """A file a step read or wrote: an image, a visibility dataset or gain solutions."""

    kind: str                  # image | dataset | solutions
    path: str                  # as recorded (relative to the workdir or absolute)
    full: Path
    step: str
    truth: Path | None = None  # true gains for solutions, when the step names them


@dataclass
class RunData:
    """One run, ready to render."""

    run: dict[str, Any]
    workdir: Path
    steps: list[Step]
    products: list[Product] = field(default_factory=list)
    recipe_text: str = ""
    recipe_file: str = ""
    command: str = ""
    run_params: dict[str, Any] = field(default_factory=dict)

    @property
    def cab_steps(self) -> list[Step]:
        return [s for s in self.steps if not s.group]

    def of_kind(self, kind: str) -> list[Product]:
        return [p for p in self.products if p.kind == kind]


def _iter_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _iter_strings(v)


def _local(path: str, workdir: Path) -> Path | None:
    if "://" in path and not path.startswith("file://"):
        return None
    p = Path(path.removeprefix("file://"))
    return p if p.is_absolute() else workdir / p


def _classify(full: Path) -> str | None:
    name = full.name.lower()
    if name.endswith((".fits", ".fit")) and full.is_file():
        return "image"
    if name.endswith(".ms") and (full / "table.dat").is_file():
        return "dataset"
    if name.endswith(".zarr") and full.is_dir():
        for var in ("GAIN", "UVW"):
            if (full / var).is_dir():
                return "solutions" if var == "GAIN" else "dataset"
    return None


def _log_lines(rec: dict[str, Any]) -> list[str]:
    text = rec.get("output") or ""
    log_path = rec.get("log_path")
    if log_path and os.path.isfile(log_path):
        try:
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()[-256 * 1024:]
        except OSError:
            pass
    return text.splitlines()


def _short(fqname: str, top: str) -> str:
    return fqname[len(top) + 1:] if fqname.startswith(top + ".") else fqname


_ARG_PARAM = re.compile(r"^([A-Za-z_][\w.-]*)=(.*)$")


def gather(store: RunStore, run_id: str | None = None, masker: Masker | None = None) -> RunData:
    """Collect one run (``None``: the latest) from ``store`` with every value masked."""
    import json

    masker = masker or Masker()
    run = store.resolve(run_id)
    rows = store.steps(run["id"])
    for rec in rows:
        masker.learn(rec["params"])
        masker.learn(rec["outputs"])
    top = str(run.get("recipe") or "")
    workdir = Path(run.get("workdir") or store.workdir)
    groups = {r["fqname"] for r in rows if str(r.get("cab") or "").startswith("recipe:")}
    steps: list[Step] = []
    for rec in rows:
        lines = _log_lines(rec)
        parent = max((g for g in groups if rec["fqname"].startswith(g + ".")), key=len, default="")
        steps.append(Step(
            fqname=rec["fqname"], name=_short(rec["fqname"], top), cab=str(rec.get("cab") or ""),
            status=str(rec.get("status") or "?"), started=rec.get("started"), finished=rec.get("finished"),
            error=masker.text(rec.get("error")), params=masker.value(rec["params"]),
            outputs=masker.value(rec["outputs"]),
            log_tail=[masker.text(ln) for ln in lines[-LOG_TAIL:]],
            summary=[masker.text(ln[len(SUMMARY_MARK):].strip()) for ln in lines if ln.startswith(SUMMARY_MARK)],
            resources={c: rec.get(c) for c in RESOURCE_COLUMNS if rec.get(c) is not None},
            resumed_from=rec.get("resumed_from"), group=rec["fqname"] in groups, parent=parent))
    run = dict(run)
    run["error"] = masker.text(run.get("error"))
    data = RunData(run=run, workdir=workdir, steps=steps)
    try:
        argv = json.loads(run.get("argv") or "[]")
        files = json.loads(run.get("files") or "[]")
    except ValueError:
        argv, files = [], []
    data.command = masker.text(" ".join(str(a) for a in argv))
    for arg in argv:
        m = _ARG_PARAM.match(str(arg))
        if m:
            data.run_params[m[1]] = masker.value(m[2], m[1])
    if files:
        data.recipe_file = str(files[0])
        data.recipe_text = _recipe_text(_local(str(files[0]), workdir), masker)
    data.products = _products(steps, rows, workdir)
    return data


_YAML_KEY = re.compile(r"^(?P<pre>\s*(?:-\s+)?)(?P<key>[\w.-]+)(?P<sep>\s*:\s*)(?P<rest>\S.*)$")


def _recipe_text(path: Path | None, masker: Masker) -> str:
    """The recipe file, with the values of secret-named keys masked."""
    from ..secrets import is_secret

    if path is None or not path.is_file():
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return ""
    out = []
    for line in text.splitlines():
        m = _YAML_KEY.match(line)
        if m and is_secret(m["key"]):
            line = f"{m['pre']}{m['key']}{m['sep']}***"
        out.append(masker.text(line))
    return "\n".join(out)


def _products(steps: list[Step], rows: list[dict[str, Any]], workdir: Path) -> list[Product]:
    """Images, datasets and solutions named by cab steps (outputs before inputs), each once."""
    seen: set[Path] = set()
    for rec in rows:   # injected gains are the truth of a solve, not products of their own
        truth_path = rec["params"].get("true_gains")
        local = _local(truth_path, workdir) if isinstance(truth_path, str) else None
        if local is not None:
            seen.add(Path(os.path.normpath(local)))
    found: list[Product] = []
    for step, rec in zip(steps, rows):
        if step.group:
            continue
        params = rec["params"]
        for value in [*_iter_strings(rec["outputs"]), *_iter_strings(params)]:
            full = _local(value, workdir)
            if full is None:
                continue
            full = Path(os.path.normpath(full))
            if full in seen:
                continue
            kind = _classify(full)
            if kind is None:
                continue
            seen.add(full)
            truth = None
            if kind == "solutions" and isinstance(params.get("true_gains"), str):
                t = _local(params["true_gains"], workdir)
                truth = t if t is not None and t.is_dir() else None
            found.append(Product(kind, value, full, step.name, truth))
    return found
