"""--resume: a run killed with SIGKILL mid-recipe continues exactly where it stopped."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from recipe_helpers import RECIPES, cli, recipe, run_rows, step_rows

TEN = recipe("ten_steps.yml")


def _radioflow(*args: str, cwd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(RECIPES)}
    exe = os.path.join(os.path.dirname(sys.executable), "radioflow")
    return subprocess.Popen([exe, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_skips_exactly_the_finished_steps(tmp_path):
    proc = _radioflow("run", TEN, "slow=60", "-q", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "s5.marker").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "step 5 never started"
        time.sleep(0.02)
    proc.kill()                                    # SIGKILL: no cleanup, no chance to record anything
    proc.wait()
    assert proc.returncode == -9
    first = step_rows(tmp_path)
    assert [(s["fqname"], s["status"]) for s in first] == (
        [(f"ten.s{i}", "ok") for i in range(1, 5)] + [("ten.s5", "running")])
    assert not (tmp_path / "s5.txt").exists()

    runs = _radioflow("runs", cwd=tmp_path)
    out, _ = runs.communicate(timeout=60)
    assert " interrupted " in out                  # the killed run's process is gone

    proc = _radioflow("run", TEN, "--resume", "-q", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    second_id = run_rows(tmp_path)[-1]["id"]
    second = [s for s in step_rows(tmp_path) if s["run_id"] == second_id]
    assert [(s["fqname"], s["status"]) for s in second] == (
        [(f"ten.s{i}", "resumed") for i in range(1, 5)] + [(f"ten.s{i}", "ok") for i in range(5, 11)])
    first_id = run_rows(tmp_path)[0]["id"]
    assert {s["resumed_from"] for s in second[:4]} == {first_id}
    assert (tmp_path / "s10.txt").read_text() == "".join(f"{i}," for i in range(1, 11))
    assert run_rows(tmp_path)[-1]["status"] == "ok"


def test_resume_reruns_steps_whose_inputs_or_params_changed(tmp_path, capsys):
    wd = str(tmp_path)
    assert cli(capsys, "run", TEN, "-C", wd)[0] == 0
    code, out, err = cli(capsys, "run", TEN, "--resume", "-C", wd)
    assert code == 0, err
    assert "10 resumed" in out
    (tmp_path / "s3.txt").write_text("changed,")   # s3's output is not what s3 wrote: s3 reruns
    code, out, err = cli(capsys, "run", TEN, "--resume", "-C", wd)
    assert code == 0, err
    assert "s3.txt) changed since run" in out + err
    last = [s for s in step_rows(tmp_path) if s["run_id"] == run_rows(tmp_path)[-1]["id"]]
    assert [s["status"] for s in last] == ["resumed"] * 2 + ["ok"] + ["resumed"] * 7
    assert (tmp_path / "s3.txt").read_text() == "1,2,3,"
    (tmp_path / "s3.txt").write_text("changed,")           # s3's recorded output changed, and s4's input
    code, out, err = cli(capsys, "run", TEN, "-s", "s4:s10", "--resume", "-C", wd)
    assert code == 0, err
    assert "input prev (s3.txt) changed since run" in out + err
    last = [s for s in step_rows(tmp_path) if s["run_id"] == run_rows(tmp_path)[-1]["id"]]
    assert [s["status"] for s in last if s["status"] != "skipped"] == ["ok"] * 7
    assert (tmp_path / "s10.txt").read_text() == "changed," + "".join(f"{i}," for i in range(4, 11))
    os.remove(tmp_path / "s9.txt")                          # a missing output: that step reruns
    code, out, err = cli(capsys, "run", TEN, "--resume", "slow=0.01", "-C", wd)  # s5's params changed
    last = [s for s in step_rows(tmp_path) if s["run_id"] == run_rows(tmp_path)[-1]["id"]]
    # s3's output is still not what s3 wrote: from s3 on, every product is made again from the
    # original chain (each later output differs from what its matching record wrote)
    assert [s["status"] for s in last] == ["resumed"] * 2 + ["ok"] * 8
    assert (tmp_path / "s9.txt").read_text() == "".join(f"{i}," for i in range(1, 10))
    assert "s9: running again: output path (s9.txt) is missing" in " ".join(out.split() + err.split())


def test_ctrl_c_marks_run_and_step_interrupted(tmp_path):
    import signal

    proc = _radioflow("run", TEN, "slow=60", "-q", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "s5.marker").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    assert run_rows(tmp_path)[0]["status"] == "interrupted"
    assert [s["status"] for s in step_rows(tmp_path)] == ["ok"] * 4 + ["interrupted"]


def test_resume_step_without_file_outputs_and_secrets_not_recorded(tmp_path, capsys):
    (tmp_path / "s.yml").write_text(
        "cabs:\n  add: {flavour: python, command: rf_funcs.add, inputs: {a: float, b: float}, outputs: {total: float}}\n"
        "  say: {command: echo, inputs: {api_token: {dtype: str, policies: {positional: true}}}}\n"
        "r:\n  inputs: {tok: str = hunter22}\n  outputs: {t: float}\n  aliases: {t: s1.total}\n"
        "  steps:\n    s1: {cab: add, params: {a: 1, b: 2}}\n    s2: {cab: say, params: {api_token: =recipe.tok}}\n")
    wd = str(tmp_path)
    assert cli(capsys, "run", str(tmp_path / "s.yml"), "-C", wd)[0] == 0
    code, out, err = cli(capsys, "run", str(tmp_path / "s.yml"), "--resume", "-C", wd)
    assert code == 0 and "2 resumed" in out and "t = 3.0" in out       # outputs restored from the record
    rows = step_rows(tmp_path)
    assert all("hunter22" not in (r["params"] + (r["outputs"] or "")) for r in rows)
    assert '"api_token": "***"' in rows[1]["params"]
    assert "hunter22" not in open(rows[1]["log_path"]).read()
