"""Reading and validating scheduling-block instances (SBIs) in both SDP shapes.

The JSON Schema lives beside this module (``sbi.schema.json``). The shape is chosen from the
top-level keys (``execution_block`` -> AssignResources, else the prototype), then the document
is checked against that definition and against rules a schema cannot state (unique PB ids,
dependencies naming PBs of the SBI, no dependency cycles). Every problem names its JSON path
(``$.processing_blocks[1].workflow.version``) and all of them are reported in one paragraph.
A valid SBI is normalised to one internal form: an SBI record and its PB records (dicts).
"""
from __future__ import annotations

import json
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ...errors import UsageError, ValidationError
from .states import STARTING

PROTOTYPE, ASSIGN_RESOURCES = "prototype", "assign_resources"


@lru_cache(maxsize=1)
def sbi_schema() -> dict[str, Any]:
    """The JSON Schema document shipped with radioflow (both SBI shapes, workflow parameters)."""
    text = resources.files(__package__).joinpath("sbi.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def json_path(parts: Iterable[Any]) -> str:
    """``['processing_blocks', 1, 'id']`` -> ``$.processing_blocks[1].id``."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def schema_errors(doc: Any, definition: str, base: Iterable[Any] = ()) -> list[str]:
    """Messages for ``doc`` against ``$defs/<definition>``, each starting with its JSON path."""
    from jsonschema import Draft202012Validator

    schema = {"$ref": f"#/$defs/{definition}", "$defs": sbi_schema()["$defs"]}
    validator = Draft202012Validator(schema)
    msgs = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        msgs.append(f"{json_path([*base, *err.absolute_path])}: {_short(err.message)}")
    return list(dict.fromkeys(msgs))


def _short(message: str) -> str:
    return message if len(message) <= 160 else message[:157] + "..."


def detect_shape(doc: Any) -> str:
    """Which SBI shape a parsed document is meant to be."""
    if isinstance(doc, dict) and ("execution_block" in doc or "interface" in doc):
        return ASSIGN_RESOURCES
    return PROTOTYPE


def parse_text(text: str, source: str = "SBI") -> Any:
    """JSON text -> Python, a parse error naming the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{source} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}).") from None
    except RecursionError:
        raise ValidationError(f"{source}: the JSON document is nested too deeply.") from None


def load_sbi_file(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read, validate and normalise an SBI file; raise a one-paragraph error on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"SBI file {p} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read SBI file {p}: {exc}.") from None
    return load_sbi(parse_text(text, str(p)), str(p))


def load_sbi(doc: Any, source: str = "SBI") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate a parsed SBI and return (SBI record, PB records) in radioflow's internal form."""
    from .workflows import parameter_schema

    shape = detect_shape(doc)
    problems = schema_errors(doc, shape)
    if not problems:
        sbi, pbs = _normalise(doc, shape)
        problems += _semantic_errors(pbs, shape)
        for i, pb in enumerate(pbs):
            definition = parameter_schema(pb["kind"], pb["workflow"], pb["version"])
            if definition is not None:
                problems += schema_errors(pb["parameters"], definition, ["processing_blocks", i, "parameters"])
    if problems:
        shown = problems[:12]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        what = "SDP prototype" if shape == PROTOTYPE else "AssignResources"
        raise ValidationError(f"{source} is not a valid {what} scheduling-block instance: "
                              + "; ".join(shown) + more + ".")
    return sbi, pbs


def _normalise(doc: dict[str, Any], shape: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    now = time.time()
    if shape == PROTOTYPE:
        sbi_id = doc["id"]
        max_length = doc.get("max_length")
        raw_pbs = [(pb["id"], pb["workflow"]["type"], pb["workflow"]["id"], pb["workflow"]["version"],
                    pb.get("parameters", {}), [(d["pb_id"], d["type"]) for d in pb.get("dependencies", [])])
                   for pb in doc["processing_blocks"]]
    else:
        eb = doc["execution_block"]
        sbi_id = eb["eb_id"]
        max_length = eb.get("max_length")
        raw_pbs = [(pb["pb_id"], pb["script"]["kind"], pb["script"]["name"], pb["script"]["version"],
                    pb.get("parameters", {}), [(d["pb_id"], d["kind"]) for d in pb.get("dependencies", [])])
                   for pb in doc["processing_blocks"]]
    pbs = []
    for index, (pb_id, kind, name, version, params, deps) in enumerate(raw_pbs):
        pbs.append({
            "id": pb_id, "sbi_id": sbi_id, "index": index, "kind": kind, "workflow": name, "version": version,
            "parameters": params, "dependencies": [{"pb_id": d, "kind": list(k)} for d, k in deps],
            "state": STARTING, "history": [{"state": STARTING, "at": now, "reason": "submitted"}],
            "reason": "", "owner": None, "lease_until": 0.0, "run_ids": [], "buffers": [],
            "cancel_requested": False,
        })
    sbi = {"id": sbi_id, "shape": shape, "max_length": max_length, "pb_ids": [p["id"] for p in pbs],
           "status": "ACTIVE", "created": now, "released": None, "document": doc}
    return sbi, pbs


def _semantic_errors(pbs: list[dict[str, Any]], shape: str) -> list[str]:
    """Unique PB ids, dependencies on PBs of this SBI, no self-dependency, no cycles."""
    id_key = "id" if shape == PROTOTYPE else "pb_id"
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, pb in enumerate(pbs):
        if pb["id"] in seen:
            problems.append(f"{json_path(['processing_blocks', i, id_key])}: '{pb['id']}' repeats "
                            f"{json_path(['processing_blocks', seen[pb['id']], id_key])}")
        seen.setdefault(pb["id"], i)
    for i, pb in enumerate(pbs):
        for j, dep in enumerate(pb["dependencies"]):
            path = json_path(["processing_blocks", i, "dependencies", j, "pb_id"])
            if dep["pb_id"] == pb["id"]:
                problems.append(f"{path}: a processing block cannot depend on itself")
            elif dep["pb_id"] not in seen:
                problems.append(f"{path}: '{dep['pb_id']}' is not a processing block of this SBI "
                                f"(known: {', '.join(seen)})")
    if not problems:
        cycle = _cycle({pb["id"]: [d["pb_id"] for d in pb["dependencies"]] for pb in pbs})
        if cycle:
            i = seen[cycle[0]]
            problems.append(f"{json_path(['processing_blocks', i, 'dependencies'])}: dependency cycle "
                            + " -> ".join(cycle))
    return problems


def _cycle(graph: dict[str, list[str]]) -> list[str]:
    """One dependency cycle in ``graph`` (node -> dependencies), or []."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        colour[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        colour[node] = 2
        stack.pop()
        return []

    for n in graph:
        if colour.get(n) is None:
            found = visit(n)
            if found:
                return found
    return []
