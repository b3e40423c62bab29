"""The recipe runner on real recipes (python-function, echo and cat cabs): values, records, logs."""
from __future__ import annotations

import json

import pytest
from recipe_helpers import cli, recipe, run_rows, step_rows

FEATURES = recipe("features.yml")
BASIC = recipe("basic.yml")


def test_basic_run_values_records_and_logs(tmp_path, capsys):
    code, out, err = cli(capsys, "run", BASIC, "n=3", "name=abc", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "out" / "abc.txt").read_text() == "abc-" * 3
    assert (tmp_path / "out" / "abc-2.txt").read_text() == "24"          # previous.length * 2
    assert "result = 14.0" in out                                      # 12 + len("24")
    steps = step_rows(tmp_path)
    assert [s["fqname"] for s in steps] == ["basic.w1", "basic.w2", "basic.sum", "basic.show"]
    assert all(s["status"] == "ok" for s in steps)
    assert json.loads(steps[0]["params"]) == {"text": "abc-", "repeat": 3, "path": "out/abc.txt"}
    assert json.loads(steps[2]["outputs"])["total"] == 14.0
    assert len({s["params_hash"] for s in steps}) == 4
    runs = run_rows(tmp_path)
    assert len(runs) == 1 and runs[0]["status"] == "ok" and runs[0]["recipe"] == "basic"
    log = (tmp_path / steps[3]["log_path"]).read_text() if not steps[3]["log_path"].startswith("/") else \
        open(steps[3]["log_path"]).read()
    assert "# command: cat out/abc.txt out/abc-2.txt" in log
    assert "abc-abc-abc-24" in log
    assert "files = ['out/abc.txt', 'out/abc-2.txt']" in log
    assert "status: ok, exit status 0" in log
    assert steps[3]["log_path"].endswith(f".radioflow/logs/{runs[0]['id']}/basic.show.log")
    assert steps[3]["command"] == "command: cat out/abc.txt out/abc-2.txt"
    assert "abc-abc-abc-24" in steps[3]["output"] and steps[3]["returncode"] == 0
    assert steps[0]["command"].startswith("call: rf_funcs.write_text(")
    assert steps[3]["finished"] >= steps[3]["started"] >= runs[0]["started"]


def test_failed_step_is_recorded_and_exit_1(tmp_path, capsys):
    (tmp_path / "fail.yml").write_text(
        "cabs:\n  boom: {flavour: python, command: rf_funcs.fail, inputs: {message: str}}\n"
        "r:\n  steps:\n    ok1: {cab: boom, skip: true}\n    bad: {cab: boom, params: {message: kaputt}}\n"
        "    never: {cab: boom}\n")
    code, out, err = cli(capsys, "run", str(tmp_path / "fail.yml"), "-C", str(tmp_path))
    assert code == 1
    assert "kaputt" in err and "Traceback" not in err
    steps = step_rows(tmp_path)
    assert [(s["fqname"], s["status"]) for s in steps] == [("r.ok1", "skipped"), ("r.bad", "failed")]
    assert run_rows(tmp_path)[0]["status"] == "failed"
    assert "RuntimeError: kaputt" in open(steps[1]["log_path"]).read()


def test_for_loop_gathers_output_elements(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "loop", "values=[2, 5, 7]", "-C", str(tmp_path))
    assert code == 0, err
    assert "squares = [4, 25, 49]" in out
    assert (tmp_path / "loop-5-1.txt").read_text() == "25"      # info.index is the iteration
    # records name iterations as Stimela's tasknames: recipe.<iteration>.step
    assert [s["fqname"] for s in step_rows(tmp_path)] == ["loop.0.sq", "loop.1.sq", "loop.2.sq"]


def test_scatter_runs_in_worker_processes(tmp_path, capsys):
    import os

    code, out, err = cli(capsys, "run", FEATURES, "scatter", "values=[3, 4, 5, 6]", "-C", str(tmp_path))
    assert code == 0, err
    assert "squares = [9, 16, 25, 36]" in out
    pids = json.loads(out.split("pids = ")[1].splitlines()[0])
    assert os.getpid() not in pids                                 # map() went to the process pool
    for x in (3, 4, 5, 6):
        assert (tmp_path / f"scatter-{x}.txt").read_text() == str(x * x)
        assert (tmp_path / f"scatter-tag-{x}.txt").read_text() == str(x * x)   # previous.value per iteration
    names = [s["fqname"] for s in step_rows(tmp_path)]
    assert names[:4] == [f"scatter.{i}.sq" for i in range(4)]


def test_nested_recipes_parent_root_and_outputs(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "nested", "tag=Z", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "sq-3.txt").read_text() == "9"
    assert (tmp_path / "nested-inline.txt").read_text() == "sq-3.txt|Z|Z"
    rows = {s["fqname"]: s for s in step_rows(tmp_path)}
    assert json.loads(rows["nested.first"]["outputs"]) == {"out": "sq-3.txt"}
    assert "9sq-3.txt|Z|Z" in open(rows["nested.third"]["log_path"]).read()


def test_aliases_wildcards_and_cab_names(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "aliased", "n=3", "a=2.5", "text=xy", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "al-1.txt").read_text() == "xyxyxy"          # w[12].text and (write).repeat
    assert (tmp_path / "al-2.txt").read_text() == "xyxyxy"
    assert "total = 4.0" in out                                     # *.a -> add.a, output alias


def test_assign_and_assign_based_on(tmp_path, capsys):
    for mode, reps in (("fast", 1), ("slow", 3), ("other", 7)):
        code, out, err = cli(capsys, "run", FEATURES, "assigning", f"mode={mode}", "-C", str(tmp_path))
        assert code == 0, err
        assert (tmp_path / f"{mode}-run.txt").read_text() == f"hi/{reps}/assigning.w"
        assert (tmp_path / f"{mode}-run-2.txt").read_text() == "xx"   # lib.steps via _use, lib.params


def test_skips_tags_and_previous(tmp_path, capsys):
    (tmp_path / "sk-a.txt").write_text("old")
    code, out, err = cli(capsys, "run", FEATURES, "skipping", "-C", str(tmp_path))
    assert code == 0, err
    status = {s["fqname"].split(".")[-1]: s["status"] for s in step_rows(tmp_path)}
    assert status == {"a": "ok", "b": "skipped", "c": "ok", "d": "ok", "e": "skipped", "f": "skipped",
                      "g": "ok", "h": "ok"}
    assert (tmp_path / "sk-c.txt").read_text() == "BC"             # skipped b still is 'previous'
    assert not (tmp_path / "sk-b.txt").exists() and not (tmp_path / "sk-f.txt").exists()


@pytest.mark.parametrize("args, ran", [
    (["-s", "c"], {"c", "g"}),                       # always-tagged g runs too
    (["-s", "b:d"], {"c", "d", "g"}),               # b is skip: true
    (["-s", "b:d", "-e", "b"], {"b", "c", "d", "g"}),
    (["-t", "extra"], {"g", "h"}),
    (["-t", "never"], {"f", "g"}),
    (["-s", ":c", "-k", "g"], {"a", "c"}),
    (["--skip-tags", "extra", "flag=true"], {"a", "c"}),    # e: its output exists
    (["-e", "f", "-k", "a"], {"c", "d", "e", "g", "h"}),  # -e unskips; it does not select 'never'
    (["-s", "f", "-k", "a"], {"f", "g"}),
    (["-s", "b"], {"b", "g"}),                       # one step named with -s is also unskipped
    (["-s", "a,c"], {"a", "c", "g"}),
    (["-k", "b:g"], {"a", "h"}),
])
def test_step_selection(tmp_path, capsys, args, ran):
    code, out, err = cli(capsys, "run", FEATURES, "skipping", *args, "-C", str(tmp_path))
    assert code == 0, err
    got = {s["fqname"].split(".")[-1] for s in step_rows(tmp_path) if s["status"] == "ok"}
    assert got == ran


def test_sub_recipe_selection(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "nested", "-s", "second.w", "-C", str(tmp_path))
    # first is not selected: steps.first.out does not exist, so second's formula is unresolved
    assert code == 1 and "features.yml:104: formula '=steps.first.out': unresolved" in err
    code, out, err = cli(capsys, "run", FEATURES, "nested", "-s", "first.sq:", "-s", "second", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "nested-inline.txt").read_text() == "sq-3.txt|T|T"
    ok = [s["fqname"] for s in step_rows(tmp_path) if s["status"] == "ok"]
    # as in Stimela, an open range 'first.sq:' runs to the end of the whole recipe
    assert ok == ["nested.first.sq", "nested.first", "nested.second.w", "nested.second", "nested.third"]


def test_dry_run_prints_plan_and_runs_nothing(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "skipping", "--dry-run", "-k", "a", "-C", str(tmp_path))
    assert code == 0, err
    assert "[skip] a: cab write  (deselected)" in out
    assert "[run ] c: cab write" in out
    assert "[skip] f: cab write  (tags: never; tagged 'never')" in out
    assert not (tmp_path / ".radioflow").exists() and not list(tmp_path.glob("*.txt"))


def test_doc_and_runs_commands(tmp_path, capsys):
    code, out, err = cli(capsys, "doc", FEATURES, "loop")
    assert code == 0 and "values: List[int] (required)" in out and "sq: cab square" in out
    code, out, err = cli(capsys, "doc", FEATURES, "write")
    assert code == 0 and "text: str (required) -- text to write" in out and "repeat: int (default=1)" in out
    code, out, err = cli(capsys, "doc", FEATURES)
    assert code == 0 and "scatter: parallel loop" in out and "square" in out
    cli(capsys, "run", FEATURES, "loop", "values=[1]", "-C", str(tmp_path))
    code, out, err = cli(capsys, "runs", "-C", str(tmp_path))
    assert code == 0 and "loop" in out and " ok " in out and "1/1" in out
    run_id = run_rows(tmp_path)[0]["id"]
    code, out, err = cli(capsys, "runs", run_id[:15], "-C", str(tmp_path))
    assert code == 0 and "loop.0.sq" in out


def test_python_api_outcome(tmp_path):
    from radioflow.backends.local import LocalBackend
    from radioflow.run.api import prepare_run

    prepared = prepare_run([FEATURES, "loop", "values=[4]"], workdir=str(tmp_path))
    outcome = prepared.runner(backend=LocalBackend(max_workers=1)).run()
    assert outcome.status == "ok" and outcome.outputs == {"squares": [16]}
    assert [r.status for r in outcome.steps] == ["ok"]


def test_extras_env_python_code_escape_assertions(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RF_TEST_VALUE", "from-env")
    code, out, err = cli(capsys, "run", FEATURES, "extras", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "extras-alpha.txt").read_text() == "=from-env:env"          # == escape
    assert "words = ['ALPHA!', 'BETA!']" in out
    assert "extras: word alpha" in out and "extras: word beta" in out      # display_status
    code, out, err = cli(capsys, "run", FEATURES, "failing_assertion", "-C", str(tmp_path))
    assert code == 1 and "preamble assertion '=1 > 2' is false" in err and "features.yml:" in err


def test_skip_if_outputs_fresh(tmp_path, capsys):
    import os
    import time

    code, out, err = cli(capsys, "run", FEATURES, "freshness", "-C", str(tmp_path))
    assert code == 0 and "2 ok" in out
    code, out, err = cli(capsys, "run", FEATURES, "freshness", "-C", str(tmp_path))
    assert code == 0 and "2 skipped" in out                     # outputs exist and are newer
    (tmp_path / "fresh-out.txt").write_text("changed")
    future = time.time() + 100
    os.utime(tmp_path / "fresh-out.txt", (future, future))      # input newer than h's output
    code, out, err = cli(capsys, "run", FEATURES, "freshness", "-C", str(tmp_path))
    assert code == 0 and "1 skipped, 1 ok" in out
    assert (tmp_path / "fresh-cat.txt").read_text() == "changed"


def test_progress_live_display_renders_steps():
    import io

    from radioflow.run.progress import Progress

    buf = io.StringIO()
    p = Progress(buf, live=True)
    p.start("demo")
    p.step_started("r.a")
    p.step_finished("r.a", "ok", 0.25)
    p.step_finished("r.b", "skipped", 0.0, "tagged 'never'")
    p.stop()
    text = buf.getvalue()
    assert "r.a" in text and "0.25 s" in text and "skipped" in text and "tagged 'never'" in text
    buf2 = io.StringIO()
    q = Progress(buf2)                                          # StringIO is not a TTY: plain lines
    q.step_finished("r.a", "ok", 0.5)
    assert buf2.getvalue() == "ok       r.a  0.500 s\n"


def test_recipe_defaults_nested_and_dotted_and_implicit(tmp_path, capsys):
    from recipe_helpers import recipe as rpath

    (tmp_path / "d.yml").write_text(f"""\
_include: {rpath('rf_cabs.yml')}
cabs:
  fixed:
    flavour: python
    command: rf_funcs.write_text
    inputs:
      text: {{dtype: str, implicit: IMPL}}
    outputs:
      path: File *
r:
  inputs:
    t: str = tt
  defaults:
    t: from-defaults
    w1:
      repeat: 2
    w2.repeat: 3
  steps:
    w1: {{cab: write, params: {{text: =recipe.t, path: d1.txt}}}}
    w2: {{cab: write, params: {{text: b, path: d2.txt}}}}
    w3: {{cab: fixed, params: {{path: d3.txt}}}}
""")
    code, out, err = cli(capsys, "run", str(tmp_path / "d.yml"), "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "d1.txt").read_text() == "from-defaults" * 2
    assert (tmp_path / "d2.txt").read_text() == "bbb"
    assert (tmp_path / "d3.txt").read_text() == "IMPL"


STIMELA = recipe("stimela_style.yml")


def _commands(rows: list[dict]) -> list[str]:
    return [open(r["log_path"]).read().splitlines()[1] for r in rows if r["log_path"]]


def test_stimela_output_elements_and_per_iteration_assign(tmp_path, capsys):
    code, out, err = cli(capsys, "run", STIMELA, "gather", "-C", str(tmp_path))
    assert code == 0, err
    assert "sums = [3, 6, 9]" in out and "products = [2, 8, 18]" in out
    assert "message = 'sums=[3, 6, 9] products=[2, 8, 18]'" in out
    assert _commands(step_rows(tmp_path)) == [
        "# command: echo 1 2 n01:/one", "# command: echo 2 4 n02:/many", "# command: echo 3 6 n03:/many"]


def test_stimela_input_default_sees_assigned_variables(tmp_path, capsys):
    code, out, err = cli(capsys, "run", STIMELA, "labelled", "kind=Q", "-C", str(tmp_path))
    assert code == 0, err
    assert _commands(step_rows(tmp_path)) == ["# command: echo 1 2 xxx-Q"]


def test_stimela_for_loop_scatter_input(tmp_path, capsys):
    import os

    code, out, err = cli(capsys, "run", STIMELA, "scattered", "-C", str(tmp_path))
    assert code == 0, err
    assert f"pids = [{os.getpid()}, {os.getpid()}, {os.getpid()}]" in out      # sequential: in-process
    code, out, err = cli(capsys, "run", STIMELA, "scattered", "for_loop.scatter=-1", "-C", str(tmp_path))
    assert code == 0, err
    pids = json.loads(out.split("pids = ")[1].splitlines()[0])
    assert os.getpid() not in pids and (tmp_path / "sc-7.txt").read_text() == "49"


def test_recipe_epilogue_assertion_failure(tmp_path, capsys):
    code, out, err = cli(capsys, "run", STIMELA, "gather", "values=[1, 2]", "-C", str(tmp_path))
    assert code == 1
    assert "stimela_style.yml:56: recipe 'gather': epilogue 'checks' assertion '=LEN(current.sums) == 3' is false" in err


def test_run_a_cab_on_its_own(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "square", "x=7", "out=sev.txt", "-C", str(tmp_path))
    assert code == 0, err
    assert "value = 49" in out and (tmp_path / "sev.txt").read_text() == "49"
    code, out, err = cli(capsys, "run", FEATURES, "square", "out=sev.txt", "-C", str(tmp_path))
    assert code == 1 and "required input 'x' is not set" in err


def test_for_loop_over_a_formula(tmp_path, capsys):
    code, out, err = cli(capsys, "run", STIMELA, "ranged", "-C", str(tmp_path))
    assert code == 0, err
    assert "squares = [4, 9, 16]" in out and (tmp_path / "rg-4.txt").read_text() == "16"


def test_doc_library_recipe(capsys):
    code, out, err = cli(capsys, "doc", FEATURES, "lib.recipes.square_one")
    assert code == 0, err
    assert "x: int (required)" in out and "out: File" in out and "sq: cab square" in out


@pytest.mark.parametrize("args, ran", [
    ([], ["s1", "s2.t1", "s2.t3", "s2.t4", "s4.t1", "s4.t3", "s4.t4"]),
    (["-t", "foo"], ["s1", "s2.t1", "s3.t1", "s3.t3", "s3.t4", "s4.t1", "s4.t3", "s4.t4"]),
    (["-t", "s4.bar"], ["s1", "s2.t1", "s4.t1", "s4.t4"]),
    (["-s", "s3.t2"], ["s1", "s2.t1", "s3.t1", "s3.t2", "s4.t1"]),   # always-tagged steps come along
    (["--skip-tags", "s2.foo", "-k", "s4"], ["s1", "s2.t1", "s2.t3"]),
])
def test_selection_across_nested_recipes(tmp_path, capsys, args, ran):
    code, out, err = cli(capsys, "run", FEATURES, "tagged", *args, "-C", str(tmp_path))
    assert code == 0, err
    rows = [r for r in step_rows(tmp_path) if r["status"] == "ok" and r["cab"] == "echo"]
    assert [r["fqname"].split(".", 1)[1] for r in rows] == ran


def test_selection_errors(tmp_path, capsys):
    code, out, err = cli(capsys, "run", FEATURES, "tagged", "-t", "nosuchtag", "-C", str(tmp_path))
    assert code == 2 and "'nosuchtag' (in -t) is not a tag of any step of 'tagged'" in err
    code, out, err = cli(capsys, "run", FEATURES, "tagged", "-s", "s2.zz", "-C", str(tmp_path))
    assert code == 2 and "Step 's2.zz' (in -s s2.zz) does not exist" in err


def test_enable_overrides_skip_if_outputs(tmp_path, capsys):
    (tmp_path / "sk-a.txt").write_text("old")
    code, out, err = cli(capsys, "run", FEATURES, "skipping", "-s", "e", "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "sk-a.txt").read_text() == "E"                 # e ran although its output existed


def test_default_recipe_and_multiple_files(tmp_path, capsys):
    from recipe_helpers import recipe as rpath

    (tmp_path / "two.yml").write_text(
        "one:\n  steps:\n    w: {cab: write, params: {text: one, path: which.txt}}\n"
        "two:\n  steps:\n    w: {cab: write, params: {text: two, path: which.txt}}\nDEFAULT: two\n")
    code, out, err = cli(capsys, "run", rpath("rf_cabs.yml"), str(tmp_path / "two.yml"), "-C", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "which.txt").read_text() == "two"
    code, out, err = cli(capsys, "run", rpath("rf_cabs.yml"), str(tmp_path / "two.yml"), "one", "-C", str(tmp_path))
    assert code == 0 and (tmp_path / "which.txt").read_text() == "one"


def test_scatter_through_nested_recipe_uses_map(tmp_path, capsys):
    import os

    code, out, err = cli(capsys, "run", STIMELA, "scatter_nested", "-C", str(tmp_path))
    assert code == 0, err
    assert "fourth = [16, 81, 256]" in out
    pids = json.loads(out.split("pids = ")[1].splitlines()[0])
    assert os.getpid() not in pids
    assert (tmp_path / "nest-3-b.txt").read_text() == "81"
    names = [r["fqname"] for r in step_rows(tmp_path)]
    # the iterations advance together: all 'first' steps, then all 'second' steps
    assert names[:6] == [f"scatter_nested.{i}.sub.first" for i in range(3)] + \
        [f"scatter_nested.{i}.sub.second" for i in range(3)]


def test_looping_recipe_inside_a_scatter_advances_with_the_other_iterations(tmp_path, capsys):
    """Each caller's cycles stay in order; the callers' cycles run together (one map per round)."""
    code, out, err = cli(capsys, "run", STIMELA, "scatter_cycles", "-C", str(tmp_path))
    assert code == 0, err
    assert "all = [[4, 9], [9, 16]]" in out
    assert (tmp_path / "cyc-3-1.txt").read_text() == "16"
    names = [r["fqname"] for r in step_rows(tmp_path) if r["fqname"].endswith(".sq")]
    assert names == ["scatter_cycles.0.sub.0.sq", "scatter_cycles.1.sub.0.sq",
                     "scatter_cycles.0.sub.1.sq", "scatter_cycles.1.sub.1.sq"]
