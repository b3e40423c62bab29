"""Per-step accounting in the run records: CPU, peak memory, bytes, invocations and cost, measured
for real cabs (in-process and subprocess), loops, price configuration, `radioflow runs RUN`."""
from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
import time

import pytest
from recipe_helpers import cli, run_rows, step_rows

from radioflow.errors import UsageError
from radioflow.run.costs import DEFAULT_PER_GB_SECOND, DEFAULT_PER_INVOCATION, PriceModel

MiB = 2 ** 20
GiB = 2 ** 30

BINARY_WORK = """\
import time
start = time.process_time()
while time.process_time() - start < 0.4:
    pass
block = b"\\x01" * (150 * 2 ** 20)
with open("bin.out", "wb") as fh:
    fh.write(block[: 12 * 2 ** 20])
"""


def _recipe(tmp_path) -> str:
    (tmp_path / "binwork.py").write_text(BINARY_WORK)
    text = f"""
    cabs:
      work:
        flavour: python
        command: rf_funcs.work
        inputs:
          out: str *
          cpu: float = 0
          alloc_mb: int = 0
          write_mb: int = 0
      binwork:
        command: {sys.executable} {tmp_path / 'binwork.py'}

    looped:
      inputs:
        values: List[int] *
      for_loop: {{var: x, over: values, scatter: -1}}
      steps:
        it:
          cab: work
          params: {{out: "loop-{{recipe.x}}.bin", write_mb: 1}}

    acct:
      steps:
        burn: {{cab: work, params: {{cpu: 0.5, out: burn.bin}}}}
        big: {{cab: work, params: {{alloc_mb: 400, out: big.bin}}}}
        small: {{cab: work, params: {{alloc_mb: 20, out: small.bin}}}}
        write: {{cab: work, params: {{write_mb: 30, out: write.bin}}}}
        bin: {{cab: binwork}}
        loop: {{recipe: looped, params: {{values: [1, 2, 3]}}}}
    """
    path = tmp_path / "acct.yml"
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture(scope="module")
def acct_run(tmp_path_factory):
    """One recorded run of the accounting recipe (local backend) with configured prices."""
    import os

    from radioflow.cli import main

    tmp = tmp_path_factory.mktemp("acct")
    saved = {k: os.environ.get(k) for k in ("RADIOFLOW_COST__PER_GB_SECOND", "RADIOFLOW_COST__PER_INVOCATION")}
    os.environ.update({"RADIOFLOW_COST__PER_GB_SECOND": "0.5", "RADIOFLOW_COST__PER_INVOCATION": "0.25"})
    try:
        code = main(["run", "-q", "--no-report", _recipe(tmp), "acct", "-C", str(tmp)])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert code == 0
    return tmp, {r["fqname"]: r for r in step_rows(tmp)}


def test_cpu_seconds_follow_the_busy_time(acct_run):
    _, rows = acct_run
    assert 0.5 <= rows["acct.burn"]["cpu_seconds"] < 0.5 + 0.4          # in-process python cab
    assert rows["acct.small"]["cpu_seconds"] < 0.3                       # an idle step is not charged the burn
    assert 0.4 <= rows["acct.bin"]["cpu_seconds"] < 0.4 + 0.6            # the subprocess's own CPU


def test_peak_memory_is_the_steps_own_peak(acct_run):
    _, rows = acct_run
    assert rows["acct.big"]["peak_memory"] >= 400 * MiB
    assert rows["acct.bin"]["peak_memory"] >= 150 * MiB                  # the child's peak RSS
    # the high-water mark is reset per step: the small step after the big one is not charged 400 MiB
    assert 20 * MiB <= rows["acct.small"]["peak_memory"] < rows["acct.big"]["peak_memory"] - 300 * MiB


def test_bytes_written_and_read(acct_run):
    tmp, rows = acct_run
    assert rows["acct.write"]["bytes_written"] >= 30 * MiB
    assert rows["acct.bin"]["bytes_written"] >= 12 * MiB
    assert rows["acct.burn"]["bytes_written"] < MiB
    assert all(rows[k]["bytes_read"] is not None for k in ("acct.write", "acct.bin"))


def test_loop_invocations_are_counted_and_summed(acct_run):
    _, rows = acct_run
    iterations = [rows[f"acct.loop.{i}.it"] for i in range(3)]
    assert [r["invocations"] for r in iterations] == [1, 1, 1]
    group = rows["acct.loop"]
    assert group["invocations"] == 3
    assert group["bytes_written"] == sum(r["bytes_written"] for r in iterations) >= 3 * MiB
    assert group["cost"] == pytest.approx(sum(r["cost"] for r in iterations))
    assert group["peak_memory"] == max(r["peak_memory"] for r in iterations)


def test_cost_is_the_formula_with_the_configured_prices(acct_run):
    tmp, rows = acct_run
    for name in ("acct.burn", "acct.big", "acct.bin", "acct.loop.1.it"):
        r = rows[name]
        gbs = r["peak_memory"] / GiB * (r["finished"] - r["started"])
        assert r["gb_seconds"] == pytest.approx(gbs, rel=1e-9)
        assert r["cost"] == pytest.approx(gbs * 0.5 + r["invocations"] * 0.25, rel=1e-9)
    (run,) = run_rows(tmp)
    assert json.loads(run["prices"])["per_gb_second"] == 0.5


def test_runs_command_shows_the_table_and_json(acct_run, capsys):
    tmp, rows = acct_run
    run_id = run_rows(tmp)[0]["id"]
    code, out, err = cli(capsys, "runs", run_id[:12], "-C", str(tmp))
    assert code == 0, err
    lines = out.splitlines()
    assert "CPU" in lines[1] and "peak mem" in lines[1] and "written" in lines[1] and "cost" in lines[1]
    write_line = next(ln for ln in lines if " acct.write " in ln)
    assert "MiB" in write_line
    assert any("acct.loop.*.it (x3)" in ln for ln in lines)
    total = next(ln for ln in lines if "total (cab steps)" in ln)
    cab_rows = [r for r in rows.values() if not r["cab"].startswith("recipe:")]
    assert f"{sum(r['cost'] for r in cab_rows):.7f}" in total
    assert "x 0.5 + calls x 0.25" in out
    code, out, err = cli(capsys, "runs", run_id, "-C", str(tmp), "--json")
    assert code == 0, err
    data = json.loads(out)
    steps = {s["fqname"]: s for s in data["steps"]}
    assert steps["acct.write"]["bytes_written"] == rows["acct.write"]["bytes_written"]
    assert data["totals"]["invocations"] == len(cab_rows) == 8
    assert data["totals"]["cost"] == pytest.approx(sum(r["cost"] for r in cab_rows))
    assert data["loops"] == [pytest.approx({**data["loops"][0], "fqname": "acct.loop.*.it", "iterations": 3})]
    assert data["prices"]["per_invocation"] == 0.25


def test_price_model_defaults_and_bad_config():
    model = PriceModel.from_config({})
    assert (model.per_gb_second, model.per_invocation) == (DEFAULT_PER_GB_SECOND, DEFAULT_PER_INVOCATION)
    assert "aws" in model.source.lower()
    usage = {"peak_memory": 512 * MiB, "wall_seconds": 3.0, "invocations": 2.0}
    assert model.cost(usage) == pytest.approx(0.5 * 3.0 * DEFAULT_PER_GB_SECOND + 2 * DEFAULT_PER_INVOCATION)
    assert model.cost({**usage, "billed_memory": 2 * GiB}) == pytest.approx(
        2 * 3.0 * DEFAULT_PER_GB_SECOND + 2 * DEFAULT_PER_INVOCATION)
    assert model.cost({"invocations": 1.0}) is None
    with pytest.raises(UsageError, match=r"cost\.per_gb_second must be a price"):
        PriceModel.from_config({"cost": {"per_gb_second": "cheap"}})
    with pytest.raises(UsageError, match=r"unknown key\(s\) per_gbs"):
        PriceModel.from_config({"cost": {"per_gbs": 1}})


OLD_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, recipe TEXT, files TEXT, argv TEXT, workdir TEXT, pid INTEGER,
    status TEXT, started REAL, finished REAL, error TEXT);
CREATE TABLE steps (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, fqname TEXT, cab TEXT, status TEXT,
    params TEXT, params_hash TEXT, outputs TEXT, returncode INTEGER, error TEXT,
    started REAL, finished REAL, log_path TEXT, resumed_from TEXT, command TEXT, output TEXT);
"""


def test_old_runs_db_still_opens(tmp_path, capsys):
    """A runs.db written before accounting: listed, shown with '-', and new runs are added to it."""
    db_path = tmp_path / ".radioflow" / "runs.db"
    db_path.parent.mkdir()
    db = sqlite3.connect(db_path)
    db.executescript(OLD_SCHEMA)
    now = time.time()
    db.execute("INSERT INTO runs VALUES ('20200101-000000-abcdef', 'old', '[]', '[]', ?, 1, 'ok', ?, ?, NULL)",
               (str(tmp_path), now - 5, now))
    db.execute("INSERT INTO steps (run_id, fqname, cab, status, params, params_hash, outputs, started, finished)"
               " VALUES ('20200101-000000-abcdef', 'old.a', 'c', 'ok', '{}', 'h', '{}', ?, ?)", (now - 4, now - 1))
    db.commit()
    db.close()
    from radioflow.report.gather import gather
    from radioflow.report.store import RunStore

    with RunStore(tmp_path) as store:                      # the read-only report view, before migration
        assert gather(store, "20200101-000000-abcdef").steps[0].resources == {}
    code, out, err = cli(capsys, "runs", "20200101", "-C", str(tmp_path))
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "old.a" in ln)
    assert "3.00 s" in line and line.split()[-1] == "-"
    code, out, err = cli(capsys, "runs", "20200101", "-C", str(tmp_path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["steps"][0]["cost"] is None and data["prices"] is None and data["totals"]["cost"] is None
    code, out, err = cli(capsys, "run", "-q", "--no-report", _recipe(tmp_path), "looped", "values=[1]",
                         "-C", str(tmp_path))
    assert code == 0, err
    assert step_rows(tmp_path)[-1]["invocations"] == 1


def test_html_report_shows_the_accounting(acct_run):
    import re

    from radioflow.report import write_report

    tmp, rows = acct_run
    html = write_report(str(tmp), run_rows(tmp)[0]["id"]).read_text()
    row = re.search(r'<tr class="step-row"[^>]*><td>write</td>.*?</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(0))
    assert cells[4] == "30.0 MB" and cells[5] == "1"                       # written, calls
    assert cells[6] == f"{rows['acct.write']['cost']:.7f}"
    assert "are not in these run records" not in html
