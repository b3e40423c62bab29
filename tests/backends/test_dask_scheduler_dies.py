"""Issue 13 finding: the Dask scheduler dying mid-run printed FuturesCancelledError. Now the run
stops with one paragraph naming the scheduler, exit status 1, and --resume as the way on."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ExternalDask

RECIPE = textwrap.dedent("""\
    cabs:
      nap: {command: sleep, policies: {positional: true}, inputs: {seconds: {dtype: int, default: 30}}}
    r:
      steps:
        a: {cab: nap}
    """)


@pytest.mark.slow
def test_scheduler_killed_mid_step_is_one_paragraph(tmp_path):
    (tmp_path / "dask").mkdir()
    cluster = ExternalDask(tmp_path / "dask", n_workers=1)
    try:
        cluster.wait_for_workers(1)
        (tmp_path / "r.yml").write_text(RECIPE)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200",
               "RADIOFLOW_BACKEND__DASK__ADDRESS": cluster.address,
               "RADIOFLOW_BACKEND__DASK__SHOW_DASHBOARD": "false"}
        run = subprocess.Popen([sys.executable, "-m", "radioflow", "-b", "dask", "run", "r.yml", "-C", "work",
                                "--no-report"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        logs = tmp_path / "work" / ".radioflow"
        while time.monotonic() < deadline and not any(logs.rglob("*.log")) if logs.exists() else True:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(2)                                   # the step is running on the worker
        cluster.scheduler.send_signal(signal.SIGKILL)
        out, err = run.communicate(timeout=180)
    finally:
        cluster.close()
    text = out + err
    assert run.returncode == 1, text[-2000:]
    assert "CancelledError" not in text and "Traceback" not in text
    assert "scheduler" in err and cluster.address in err and "--resume" in err
