"""Output wranglers on real binary output (sh/printf)."""
from __future__ import annotations

import logging

import pytest

from radioflow.errors import ValidationError
from radioflow.invoke import Invocation, wranglers
from radioflow.invoke.execute import execute


def sh(script: str, wrang: dict, outputs: dict | None = None, tmp=".") -> object:
    cab = {"name": "sh", "command": f"sh -c '{script}'", "wranglers": wrang, "outputs": outputs or {}}
    return execute(Invocation("w", cab, {}, workdir=str(tmp)))


def body(result) -> list[str]:
    return [ln for ln in result.log.splitlines() if not ln.startswith("#")]


def test_parse_output_named_group_and_types(tmp_path):
    res = sh("echo rms=0.125 Jy; echo peak 7; echo ok true", {
        r"rms=(?P<rms>[\d.]+)": "PARSE_OUTPUT:rms:float",
        r"peak (\d+)": "PARSE_OUTPUT:peak:int",
        r"ok (\w+)": ["PARSE_OUTPUT:good:bool"],
    }, tmp=tmp_path)
    assert res.ok
    assert res.outputs == {"rms": 0.125, "peak": 7, "good": True}
    assert isinstance(res.outputs["peak"], int)


def test_parse_json_outputs_named_groups_and_dict(tmp_path):
    res = sh('echo "stats: {\\"a\\": 1, \\"b\\": [2, 3]}"; echo "n=[1, 2]"', {
        r"stats: (.*)": "PARSE_JSON_OUTPUT_DICT",
        r"n=(?P<n>\[.*\])": "PARSE_JSON_OUTPUTS",
    }, tmp=tmp_path)
    assert res.ok, res.error
    assert res.outputs == {"a": 1, "b": [2, 3], "n": [1, 2]}


def test_parse_json_outputs_without_named_groups_reads_a_dict(tmp_path):
    res = sh('echo "{\\"x\\": 1.5}"', {r"^\{.*\}$": "PARSE_JSON_OUTPUTS"}, tmp=tmp_path)
    assert res.outputs == {"x": 1.5}


def test_error_wrangler_fails_a_zero_exit(tmp_path):
    res = sh("echo SEVERE: disk full at {x}; exit 0", {r"SEVERE: (?P<what>.*)": "ERROR:solver said {what}"}, tmp=tmp_path)
    assert not res.ok
    assert res.returncode == 0
    assert "solver said disk full at {x}" in res.error
    assert "[ERROR] SEVERE: disk full" in res.log


def test_error_without_message(tmp_path):
    res = sh("echo Traceback here", {"Traceback": "ERROR"}, tmp=tmp_path)
    assert not res.ok and "Traceback" in res.error


def test_declare_success_overrides_exit_code(tmp_path):
    res = sh("echo all done; exit 3", {"all done": "DECLARE_SUCCESS"}, tmp=tmp_path)
    assert res.ok and res.returncode == 3 and res.error is None
    plain = sh("echo all done; exit 3", {}, tmp=tmp_path)
    assert not plain.ok and "code 3" in plain.error and "all done" in plain.error


def test_suppress_severity_replace_warning(tmp_path):
    res = sh("echo noisy 1; echo keep; echo careful now; echo secret=abc; echo odd", {
        "noisy": "SUPPRESS",
        "careful": "SEVERITY:WARNING",
        r"secret=\w+": "REPLACE:secret=<hidden>",
        "odd": "WARNING:something odd",
    }, tmp=tmp_path)
    assert body(res) == ["keep", "[WARNING] careful now", "secret=<hidden>", "[WARNING] odd",
                         "[WARNING] cab 'sh': something odd"]   # Stimela's message once the cab has finished
    assert res.ok and res.warnings == ["something odd"]


def test_stimela_force_success_example(tmp_path):
    """stimela_tests/test_wranglers.yml test_force_success: a failing command declared a success."""
    res = sh("cat deliberately-missing-file", {"No such file": [
        "DECLARE_SUCCESS", "WARNING:We have deliberately declared this cab a success."]}, tmp=tmp_path)
    assert res.ok and res.returncode == 1 and res.error is None
    assert "[WARNING] cab 'sh': We have deliberately declared this cab a success." in res.log
    assert "# exit code 1 overridden: the cab's output declared success (DECLARE_SUCCESS)" in res.log
    assert res.warnings == ["We have deliberately declared this cab a success."]


def test_status_logic_directly():
    compiled = wranglers.compile_wranglers({"wranglers": {"(a)(?P<v>\\d)": ["PARSE_OUTPUT:v:int", "SEVERITY:ERROR"]}})
    status = wranglers.Status()
    line, level = wranglers.apply(compiled, "xa5", logging.INFO, status)
    assert (line, level, status.outputs) == ("xa5", logging.ERROR, {"v": 5})
    _, _ = wranglers.apply(compiled, "nothing", logging.INFO, status)
    assert status.success is None


def test_bad_parse_marks_failure(tmp_path):
    res = sh("echo n=abc", {r"n=(\w+)": "PARSE_OUTPUT:n:int"}, tmp=tmp_path)
    assert not res.ok and "could not parse output 'n'" in res.error


def test_compiled_once_per_spec():
    cab = {"name": "c", "wranglers": {"x(\\d)": "PARSE_OUTPUT:x:int"}}
    assert wranglers.compile_wranglers(cab) is wranglers.compile_wranglers(dict(cab))


@pytest.mark.parametrize("spec, match", [
    ({"(": "SUPPRESS"}, "not a valid regular expression"),
    ({"x": "EXPLODE"}, "not a wrangler action"),
    ({"x(\\d)": "PARSE_OUTPUT:x:decimal"}, "names type"),
    ({"x": "PARSE_OUTPUT:x:int"}, "needs a"),
    ({"x": "SEVERITY:LOUD"}, "unknown log level"),
])
def test_bad_specs_are_validation_errors(spec, match):
    with pytest.raises(ValidationError, match=match):
        wranglers.compile_wranglers({"name": "bad", "wranglers": spec})


def test_bad_spec_gives_failed_result(tmp_path):
    res = sh("echo hi", {"x": "EXPLODE"}, tmp=tmp_path)
    assert not res.ok and "EXPLODE" in res.error


def test_stimela_parse_output_with_group_yaml_and_highlight(tmp_path):
    """Stimela's ``PARSE_OUTPUT:name:group:type`` (group by number or name), yaml loader, HIGHLIGHT."""
    res = sh("echo size 3 of [1, 2]; echo look here", {
        r"size (\d+) of (.*)": ["PARSE_OUTPUT:n:1:int", "PARSE_OUTPUT:items:2:yaml"],
        r"(?P<word>here)": ["PARSE_OUTPUT:where:word:str", "HIGHLIGHT:bold red"],
    }, tmp=tmp_path)
    assert res.ok and res.outputs == {"n": 3, "items": [1, 2], "where": "here"}
    assert body(res) == ["size 3 of [1, 2]", "look here"]
    with pytest.raises(ValidationError, match=r"'3' is not a \(\)-group"):
        wranglers.compile_wranglers({"name": "c", "wranglers": {"(a)(b)": "PARSE_OUTPUT:x:3:int"}})
