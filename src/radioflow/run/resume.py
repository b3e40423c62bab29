"""Deciding that a step's work is already done: input fingerprints, the step hash, outputs on disk.

``--resume`` reuses a recorded step whose hash of (cab definition, resolved parameters, input
fingerprints) matches and whose file outputs are still what that step wrote: a finished step
records the fingerprints of its inputs and outputs (hash of small files, size + mtime_ns of
large ones, the commit version of datasets), and a step whose output changed since (another
run rewrote it, someone edited it) is rerun; :func:`completed` says why a step is not resumed.
``skip_if_outputs`` skips a step whose outputs exist (and, with ``fresh``, are no older than
its inputs).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterable, Mapping

from ..recipe.validate import StepDef
from ..vis.location import local_path
from ..vis.storage import MARKER
from .records import RunRecords

_SMALL_FILE = 1 << 20


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def fingerprint(path: str, workdir: str = ".") -> list[Any]:
    """A cheap identity of a file or directory: hash of small files, else size + mtime."""
    full = local_path(path, workdir)
    if full is None:
        return [path, "version", _remote_version(path)]
    try:
        st = os.stat(full)
    except OSError:
        return [path, "missing"]
    if os.path.isdir(full) and os.path.isfile(os.path.join(full, MARKER)):
        try:
            with open(os.path.join(full, MARKER)) as fh:
                return [path, "version", str(json.load(fh)["version"])]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if os.path.isdir(full):
        entries = []
        for root, dirs, files in os.walk(full):
            dirs.sort()
            for name in sorted(files):
                sub = os.path.join(root, name)
                try:
                    s = os.stat(sub)
                except OSError:
                    continue
                entries.append((os.path.relpath(sub, full), s.st_size, s.st_mtime_ns))
        return [path, "dir", hashlib.sha1(_json(entries).encode()).hexdigest()]
    if st.st_size <= _SMALL_FILE:
        with open(full, "rb") as fh:
            return [path, "sha1", hashlib.sha1(fh.read()).hexdigest()]
    return [path, st.st_size, st.st_mtime_ns]


def _remote_version(url: str) -> str | None:
    """The commit version of a dataset in object storage (None if it has none or is unreachable)."""
    from ..vis.storage import read_marker

    try:
        marker = read_marker(url)
    except Exception:   # an unreachable store: the step itself reports it
        return None
    return None if marker is None else str(marker.get("version"))


def file_fingerprints(values: Mapping[str, Any], sdef: StepDef, workdir: str, *, inputs: bool) -> dict[str, Any]:
    """``"param (path)"`` -> fingerprint of each file input (or output) of a step."""
    return {f"{name} ({path})": fingerprint(path, workdir)
            for name, path in file_values(values, sdef, inputs=inputs)}


def params_hash(cab: Mapping[str, Any], params: Mapping[str, Any], fingerprints: Iterable[Any]) -> str:
    """Hash identifying a step's work: cab definition, resolved params, input fingerprints."""
    blob = _json({"cab": cab, "params": params, "inputs": list(fingerprints)})
    return hashlib.sha256(blob.encode()).hexdigest()


def file_values(values: Mapping[str, Any], sdef: StepDef, *, inputs: bool) -> list[tuple[str, str]]:
    """(parameter, path) of a step's file-type inputs (or outputs), lists flattened."""
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


def step_hash(cab: Mapping[str, Any], values: Mapping[str, Any], sdef: StepDef, workdir: str) -> str:
    """The resume hash of a cab step: its cab, its resolved values and its inputs' fingerprints."""
    fps = [fingerprint(path, workdir) for _, path in file_values(values, sdef, inputs=True)]
    return params_hash(cab, values, fps)


def _local_files(values: Mapping[str, Any], sdef: StepDef, workdir: str, *, inputs: bool) -> list[str]:
    """Local paths of a step's file inputs (or outputs); remote ones (``s3://`` ...) left out."""
    return [p for _, path in file_values(values, sdef, inputs=inputs) if (p := local_path(path, workdir)) is not None]


def outputs_exist(values: Mapping[str, Any], sdef: StepDef, workdir: str) -> bool:
    """All file-type outputs exist (true when the step has none)."""
    return all(os.path.exists(p) for p in _local_files(values, sdef, workdir, inputs=False))


def outputs_ready(values: Mapping[str, Any], sdef: StepDef, mode: str, workdir: str) -> bool:
    """``skip_if_outputs``: the step has file outputs, all exist, and (``fresh``) none is older than
    its newest input."""
    full = _local_files(values, sdef, workdir, inputs=False)
    if not full:
        return False
    if not all(os.path.exists(p) for p in full):
        return False
    if mode == "fresh":
        ins = _local_files(values, sdef, workdir, inputs=True)
        newest_in = max((os.path.getmtime(p) for p in ins if os.path.exists(p)), default=0.0)
        return min(os.path.getmtime(p) for p in full) >= newest_in
    return True


def completed(records: RunRecords, phash: str, values: Mapping[str, Any], sdef: StepDef,
              workdir: str, fqname: str = "") -> tuple[dict[str, Any] | None, str]:
    """The recorded step (any run) this one can resume from, and if there is none, why.

    A record qualifies when its hash matches and its file outputs are still what it wrote."""
    rec = records.completed(phash)
    if rec is None:
        return None, _why_not_same(records, fqname, values, sdef, workdir)
    if not outputs_exist(values, sdef, workdir):
        missing = [f"{n} ({p})" for n, p in file_values(values, sdef, inputs=False)
                   if (full := local_path(p, workdir)) is not None and not os.path.exists(full)]
        return None, f"output {', '.join(missing)} is missing"
    recorded = (rec.get("fingerprints") or {}).get("outputs") or {}
    now = file_fingerprints(values, sdef, workdir, inputs=False)
    changed = [label for label, fp in recorded.items() if label in now and now[label] != fp]
    if changed:
        return None, f"output {', '.join(changed)} changed since run {rec['run_id']} recorded it"
    return rec, ""


def _why_not_same(records: RunRecords, fqname: str, values: Mapping[str, Any], sdef: StepDef,
                  workdir: str) -> str:
    """Why no record matches: the inputs that changed since the step last succeeded, if known."""
    last = records.last_ok(fqname) if fqname else None
    if last is None:
        return "no earlier successful run of this step"
    before = (last.get("fingerprints") or {}).get("inputs") or {}
    now = file_fingerprints(values, sdef, workdir, inputs=True)
    changed = [label for label, fp in now.items() if label in before and before[label] != fp]
    if changed:
        return f"input {', '.join(changed)} changed since run {last['run_id']}"
    return f"its parameters or cab differ from run {last['run_id']}"


__all__ = ["completed", "file_fingerprints", "file_values", "fingerprint", "outputs_exist", "outputs_ready", "params_hash",
           "step_hash"]
