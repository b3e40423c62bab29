"""``radioflow step INVOCATION.json``: run a serialised invocation, write its result JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from radioflow.cli import main
from radioflow.invoke import Invocation, Result
from radioflow.invoke.serialize import invocation_to_json, load_invocation, result_from_dict, result_to_dict

RADIOFLOW = str(Path(sys.executable).with_name("radioflow"))


def test_step_runs_invocation_and_writes_result(tmp_path, capsys):
    cab = {"name": "sh", "command": "sh -c 'echo total=$((3+4))'",
           "wranglers": {r"total=(?P<total>\d+)": "PARSE_OUTPUT:total:int"}}
    inv = Invocation("calc", cab, {}, workdir=str(tmp_path), log_path=str(tmp_path / "calc.log"))
    path = tmp_path / "inv.json"
    path.write_text(invocation_to_json(inv))
    assert load_invocation(path) == inv
    assert main(["step", str(path)]) == 0
    data = json.loads((tmp_path / "inv.result.json").read_text())
    assert data["ok"] is True and data["outputs"] == {"total": 7} and "log" not in data
    assert "total=7" in capsys.readouterr().out
    assert "total=7" in (tmp_path / "calc.log").read_text()


def test_step_failure_exit_code_and_trimmed_result(tmp_path):
    cab = {"name": "sh", "command": "sh -c 'echo " + "x" * 5000 + "; exit 4'"}
    path = tmp_path / "inv.json"
    path.write_text(invocation_to_json(Invocation("bad", cab, {}, workdir=str(tmp_path))))
    out = tmp_path / "res" / "r.json"
    proc = subprocess.run([RADIOFLOW, "step", str(path), "-r", str(out),
                           "--max-bytes", "4096", "-q"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == "" and "exited with code 4" in proc.stderr
    raw = out.read_bytes()
    assert len(raw) <= 4096
    res = result_from_dict(json.loads(raw))
    assert not res.ok and res.returncode == 4 and res.error.startswith("step 'bad': cab 'sh' exited with code 4")


def test_step_bad_json_is_usage_error(tmp_path):
    path = tmp_path / "inv.json"
    path.write_text('{"step": "a",\n "cab": [}')
    proc = subprocess.run([RADIOFLOW, "step", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:2 is not valid JSON" in proc.stderr.replace("\n", "")
    path.write_text('{"step": "a", "cab": {}, "params": {}, "colour": 1}')
    assert main(["step", str(path)]) == 2


def test_result_dict_roundtrip_with_log():
    res = Result("s", True, {"a": [1, 2]}, 0, "log\n", 1.0, 2.0, None)
    assert result_from_dict(result_to_dict(res)) == res


def test_step_result_carries_the_pods_usage(tmp_path):
    """What a Kubernetes pod runs: the result JSON (its termination message) holds the usage
    measured there, which the Kubernetes backend reads back into the step's Result."""
    from radioflow.backends.kubernetes import _usage

    cab = {"name": "dd", "command": "sh -c 'head -c 3145728 /dev/zero > blob.bin'"}
    path = tmp_path / "inv.json"
    path.write_text(invocation_to_json(Invocation("dd", cab, {}, workdir=str(tmp_path))))
    out = tmp_path / "r.json"
    proc = subprocess.run([RADIOFLOW, "step", str(path), "-r", str(out), "--max-bytes", "4096", "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    usage = _usage(json.loads(out.read_bytes())["usage"])
    assert usage["bytes_written"] >= 3 * 2 ** 20 and usage["invocations"] == 1.0
    assert usage["cpu_seconds"] >= 0 and usage["peak_memory"] > 0 and usage["wall_seconds"] > 0
    assert _usage({"cpu_seconds": "x", "ok": True, "peak_memory": 5}) == {"peak_memory": 5.0}
