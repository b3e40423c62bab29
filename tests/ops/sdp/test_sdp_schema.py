"""SBI validation: both shapes, JSON Schema errors naming JSON paths, semantic rules, CLI errors."""
from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from radioflow.errors import ValidationError
from radioflow.ops.sdp import EXAMPLES, example_path
from radioflow.ops.sdp.schema import ASSIGN_RESOURCES, PROTOTYPE, json_path, load_sbi, load_sbi_file, sbi_schema

SRC = str(Path(__file__).resolve().parents[3] / "src")


def _example(name: str) -> dict[str, Any]:
    return json.loads(example_path(name).read_text())


def _set(doc: Any, path: list[Any], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def _del(doc: Any, path: list[Any]) -> None:
    for p in path[:-1]:
        doc = doc[p]
    del doc[path[-1]]


def test_examples_are_valid_and_normalised():
    proto_sbi, proto_pbs = load_sbi_file(example_path("sbi-prototype.json"))
    ar_sbi, ar_pbs = load_sbi_file(example_path("sbi-assign-resources.json"))
    assert proto_sbi["shape"] == PROTOTYPE and ar_sbi["shape"] == ASSIGN_RESOURCES
    assert ar_sbi["id"] == "eb-rfdemo-20261204-00000"
    assert [p["kind"] for p in proto_pbs] == ["realtime", "batch"]
    assert proto_pbs[1]["dependencies"] == [{"pb_id": proto_pbs[0]["id"], "kind": ["none"]}]
    assert ar_pbs[0]["workflow"] == "batch_imaging" and ar_pbs[0]["version"] == "0.1.0"
    assert all(p["state"] == "STARTING" and p["history"][0]["state"] == "STARTING" for p in proto_pbs + ar_pbs)


def test_the_schema_file_accepts_both_examples_with_plain_jsonschema():
    from jsonschema import Draft202012Validator

    v = Draft202012Validator(sbi_schema())
    for name in EXAMPLES:
        assert not list(v.iter_errors(_example(name)))
    assert list(v.iter_errors({"id": "sbi-x-20200101-0"}))


@pytest.mark.parametrize("name, path, value, expect", [
    ("sbi-prototype.json", ["processing_blocks", 1, "workflow", "version"], "one", "does not match"),
    ("sbi-prototype.json", ["processing_blocks", 0, "workflow", "type"], "sometimes", "is not one of"),
    ("sbi-prototype.json", ["scan_types", 0, "channels", 0, "count"], 0, "less than the minimum"),
    ("sbi-prototype.json", ["processing_blocks", 1, "parameters", "nfreqwin"], "8", "is not of type 'integer'"),
    ("sbi-prototype.json", ["processing_blocks", 1, "parameters", "dec"], -95.0, "less than the minimum"),
    ("sbi-assign-resources.json", ["execution_block", "eb_id"], "sbi-rfdemo-20261204-00000", "does not match"),
    ("sbi-assign-resources.json", ["processing_blocks", 0, "script", "kind"], "batchy", "is not one of"),
    ("sbi-assign-resources.json", ["processing_blocks", 0, "parameters", "buffer_img"], "../etc", "does not match"),
])
def test_schema_errors_name_the_json_path(name, path, value, expect):
    doc = _example(name)
    _set(doc, path, value)
    with pytest.raises(ValidationError) as err:
        load_sbi(doc, "x.json")
    msg = str(err.value)
    assert f"{json_path(path)}: " in msg and expect in msg
    assert "\n" not in msg and msg.startswith("x.json is not a valid")


def test_missing_key_and_unknown_key_name_their_parent_path():
    doc = _example("sbi-prototype.json")
    _del(doc, ["processing_blocks", 1, "workflow", "id"])
    doc["processing_blocks"][0]["colour"] = "blue"
    with pytest.raises(ValidationError) as err:
        load_sbi(doc)
    msg = str(err.value)
    assert "$.processing_blocks[1].workflow: 'id' is a required property" in msg
    assert "$.processing_blocks[0]: Additional properties are not allowed ('colour' was unexpected)" in msg


@pytest.mark.parametrize("mutate, expect", [
    (lambda d: _set(d, ["processing_blocks", 1, "id"], d["processing_blocks"][0]["id"]),
     "$.processing_blocks[1].id: 'pb-rfdemo-20261204-00000' repeats $.processing_blocks[0].id"),
    (lambda d: _set(d, ["processing_blocks", 1, "dependencies", 0, "pb_id"], "pb-rfdemo-20261204-00009"),
     "$.processing_blocks[1].dependencies[0].pb_id: 'pb-rfdemo-20261204-00009' is not a processing block"),
    (lambda d: _set(d, ["processing_blocks", 1, "dependencies", 0, "pb_id"], "pb-rfdemo-20261204-00001"),
     "$.processing_blocks[1].dependencies[0].pb_id: a processing block cannot depend on itself"),
    (lambda d: _set(d, ["processing_blocks", 0, "dependencies"], [{"pb_id": "pb-rfdemo-20261204-00001",
                                                                   "type": []}]),
     "dependency cycle pb-rfdemo-20261204-00000 -> pb-rfdemo-20261204-00001 -> pb-rfdemo-20261204-00000"),
])
def test_semantic_rules(mutate, expect):
    doc = _example("sbi-prototype.json")
    mutate(doc)
    with pytest.raises(ValidationError, match="not a valid") as err:
        load_sbi(doc)
    assert expect in str(err.value)


def test_unknown_workflow_is_not_a_submit_error():
    doc = _example("sbi-assign-resources.json")
    doc["processing_blocks"][0]["script"]["version"] = "9.9.9"
    doc["processing_blocks"][0]["parameters"] = {"anything": 1}
    _, pbs = load_sbi(doc)
    assert pbs[0]["version"] == "9.9.9"   # the controller fails it with the reason


def test_bad_json_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "id": "sbi-a-20200101-0",\n  "processing_blocks": [,]\n}\n')
    with pytest.raises(ValidationError, match=r"bad.json line 3 column 25: not valid JSON"):
        load_sbi_file(bad)


def _leaves(doc: Any, path: list[Any], skip: frozenset[str]) -> list[tuple[list[Any], Any]]:
    out: list[tuple[list[Any], Any]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k not in skip:
                out += _leaves(v, [*path, k], skip)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _leaves(v, [*path, i], skip)
    else:
        out.append((path, doc))
    return out


def _closed_objects(doc: Any, path: list[Any]) -> list[list[Any]]:
    """Paths of objects whose schema allows no extra keys."""
    out: list[list[Any]] = []
    if isinstance(doc, dict):
        if not path or path[-1] not in ("context", "resources") and "scan_types" not in path[:2] \
                or path[0] == "scan_types":
            out.append(path)
        for k, v in doc.items():
            if k not in ("context", "resources"):
                out += _closed_objects(v, [*path, k])
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _closed_objects(v, [*path, i])
    return out


REQUIRED = {
    "sbi-prototype.json": [["id"], ["processing_blocks"], ["processing_blocks", 1, "workflow", "version"],
                           ["processing_blocks", 0, "parameters"], ["scan_types", 0, "channels"],
                           ["processing_blocks", 1, "dependencies", 0, "type"],
                           ["scan_types", 0, "channels", 0, "freq_max"],
                           ["processing_blocks", 1, "parameters", "buffer_vis"]],
    "sbi-assign-resources.json": [["execution_block"], ["execution_block", "eb_id"],
                                  ["processing_blocks", 0, "script", "name"], ["processing_blocks", 0, "pb_id"],
                                  ["execution_block", "channels", 0, "spectral_windows", 0, "count"],
                                  ["processing_blocks", 0, "parameters", "buffer_img"]],
}


def test_200_generated_malformed_sbis_give_one_paragraph_errors_with_paths():
    """Random single mutations (wrong type, missing required key, unknown key) of both examples:
    each is refused with a ValidationError naming exactly the mutated JSON path; nothing else escapes."""
    rng = random.Random(20261204)
    for n in range(200):
        name = EXAMPLES[n % 2]
        doc = _example(name)
        kind = rng.choice(["retype", "delete", "extra"])
        if kind == "retype":
            path, value = rng.choice(_leaves(doc, [], frozenset({"context", "resources", "interface"})))
            _set(doc, path, "x" if isinstance(value, (int, float)) else 17)
            expected = json_path(path) + ": "
        elif kind == "delete":
            path = rng.choice(REQUIRED[name])
            _del(doc, path)
            expected = f"{json_path(path[:-1])}: '{path[-1]}' is a required property"
        else:
            path = rng.choice(_closed_objects(doc, []))
            _set(doc, [*path, "zz_unexpected"], 1)
            expected = f"{json_path(path)}: Additional properties are not allowed ('zz_unexpected'"
        try:
            load_sbi(doc, f"gen-{n}.json")
        except ValidationError as exc:
            msg = str(exc)
            assert expected in msg, (kind, path, msg)
            assert "\n" not in msg and "Traceback" not in msg
        else:
            pytest.fail(f"mutation {kind} at {json_path(path)} of {name} was accepted")


def test_cli_submit_of_a_bad_sbi_is_one_paragraph_without_traceback(tmp_path):
    doc = _example("sbi-prototype.json")
    doc["processing_blocks"][1]["workflow"]["version"] = "latest"
    bad = tmp_path / "sbi.json"
    bad.write_text(json.dumps(doc))
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "radioflow", "sdp", "submit", str(bad), "-C", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "$.processing_blocks[1].workflow.version: 'latest' does not match" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_examples_untouched_by_tests():
    assert copy.deepcopy(_example("sbi-prototype.json")) == _example("sbi-prototype.json")
