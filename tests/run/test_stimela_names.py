"""Names, labels and console output as Stimela's: info.fqname/taskname/label_parts/suffix and
{self.*}, loop iterations, step output under ---INVOKING---, recipe-output mkdir, nested recipes
with nothing selected, 'invalid inputs'."""
from __future__ import annotations

import io
import textwrap

from recipe_helpers import cli, step_rows

from radioflow.run.progress import Progress

RECIPE = """\
cabs:
  echo:
    command: echo
    policies: {positional: true}
    inputs:
      msg: {dtype: str, default: "{self.fqname} {info.taskname} {info.suffix} {info.label_parts}"}
sub:
  steps:
    t1-always: {cab: echo}
    t2: {cab: echo}
looped:
  inputs:
    xs: {dtype: "List[int]", default: [1, 2]}
  outputs:
    outdir: {dtype: Directory, mkdir: true, default: made/here}
  for_loop: {var: x, over: xs}
  steps:
    s1-a-b: {cab: echo}
    s2: {recipe: sub}
"""


def _log_lines(tmp_path) -> dict[str, str]:
    return {r["fqname"]: open(r["log_path"]).read() for r in step_rows(tmp_path) if r["log_path"]}


def test_fqname_taskname_and_labels_in_loops(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(RECIPE)
    code, out, err = cli(capsys, "run", str(path), "looped", "-C", str(tmp_path))
    assert code == 0, err
    names = [r["fqname"] for r in step_rows(tmp_path) if r["status"] == "ok"]
    assert names[:4] == ["looped.0.s1-a-b", "looped.0.s2.t1-always", "looped.0.s2.t2", "looped.0.s2"]
    # info.fqname is the same in every iteration; the taskname carries the index
    assert "looped.s1-a-b looped.0.s1-a-b b ['s1', 'a', 'b']" in out
    assert "looped.s1-a-b looped.1.s1-a-b b ['s1', 'a', 'b']" in out
    assert "looped.s2.t1-always looped.1.s2.t1-always always ['t1', 'always']" in out
    assert "for loop iteration 0: x = 1" in out and "for loop iteration 1: x = 2" in out
    assert (tmp_path / "made" / "here").is_dir()                 # recipe output with mkdir: true


def test_console_shows_command_and_output():
    buf = io.StringIO()
    p = Progress(stream=buf, live=False)
    p.step_log("r.s", "# step r.s: cab echo (binary) started\n# command: echo hi there\nhi there\n"
                      "[WARNING] careful\n[ERROR] # error: reported elsewhere\n# finished: ok\n")
    assert buf.getvalue().splitlines() == ["---INVOKING---", "echo hi there", "hi there", "WARNING: careful"]
    quiet = io.StringIO()
    Progress(stream=quiet, live=False, quiet=True).step_log("r.s", "# command: x\nout\n")
    assert quiet.getvalue() == ""


def test_nested_recipe_with_nothing_selected_is_skipped(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(RECIPE)
    code, out, err = cli(capsys, "run", str(path), "looped", "xs=[1]", "-k", "s2.t1-always:t2", "-C", str(tmp_path))
    assert code == 0, err
    rows = {r["fqname"]: r for r in step_rows(tmp_path)}
    assert rows["looped.0.s2"]["status"] == "skipped"
    assert "looped.0.s2.t1-always" not in rows or rows["looped.0.s2.t1-always"]["status"] == "skipped"


def test_unresolvable_recipe_input_is_invalid_inputs(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          echo: {command: echo, inputs: {msg: str}}
        circular:
          inputs: {circular: {default: 0}}
          steps: {s1: {cab: echo, params: {msg: x}}}
        """))
    code, _, err = cli(capsys, "run", str(path), "circular==recipe.circular", "-C", str(tmp_path))
    assert code == 1
    assert "recipe 'circular': invalid inputs" in err and "circular reference" in err


def test_unresolvable_step_formula_is_a_validation_error(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          echo: {command: echo, policies: {positional: true}, inputs: {msg: {dtype: str, default: d}}}
        recipe:
          steps:
            s1: {cab: echo}
            s2: {cab: echo, params: {msg: =steps.s1.nonexistent}}
        """))
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    assert code == 1        # a validation error (file:line) before anything runs; Stimela finds it at step s2
    assert "r.yml:6: recipe 'recipe' step 's2': parameter 'msg': 'steps.s1.nonexistent': step 's1' has no " \
           "parameter 'nonexistent'" in err
    assert not (tmp_path / ".radioflow" / "runs.db").exists()


def test_log_options_and_closing_summary(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          echo: {command: echo, inputs: {x: {dtype: int, default: 1}}}
        recipe:
          steps:
            s1:
              cab: echo
              epilogue:
                notes:
                  - =LOG("plain info {current.x}")
                  - =LOG_WARNING("warn once", "no-repeat")
                  - =LOG_WARNING("warn once", "no-repeat")
                  - =LOG("quiet", "only-summary")
                  - =IF(current.x == 2, LOG("never"))
            s2:
              cab: echo
              params: {x: 42}
              epilogue:
                stop: ['=IF(current.x == 42, ABORT("x is {current.x}"))']
        """))
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    text = out + err
    assert code == 1
    assert text.count("INFO: plain info 1") == 1
    assert text.count("WARNING: warn once") == 2          # once when logged, once in the summary
    assert text.count("INFO: quiet") == 1 and "never" not in text
    assert text.count("CRITICAL: ABORT: x is 42") == 1
    assert text.index("accumulated warnings and errors") < text.rindex("WARNING: warn once")


def test_false_epilogue_entry_fails_the_step_and_is_logged_critical(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          echo: {command: echo, inputs: {x: {dtype: int, default: 43}}}
        recipe:
          steps:
            s1: {cab: echo, epilogue: {assert: ["=current.x != 43"]}}
        """))
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    assert code == 1
    assert "CRITICAL: epilogue: assert: '=current.x != 43' evaluates to False" in out + err


def test_assign_and_assign_based_on_set_step_parameters(tmp_path, capsys):
    path = tmp_path / "r.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          echo: {command: echo, policies: {positional: true}, inputs: {msg: {dtype: str, default: none}}}
        recipe:
          inputs:
            band: {dtype: str, default: L}
          assign:
            s2.msg: assigned
          assign_based_on:
            band:
              L: {s1.msg: LBAND}
              UHF: {s1.msg: UHF}
          steps:
            s1: {cab: echo}
            s2: {cab: echo, params: {msg: own}}
        """))
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    assert code == 0, err
    assert "echo LBAND" in out and "echo assigned" in out
    code, out, err = cli(capsys, "run", str(path), "band=UHF", "-C", str(tmp_path))
    assert code == 0 and "echo UHF" in out


def test_verbose_shows_each_steps_validated_outputs():
    buf = io.StringIO()
    Progress(stream=buf, live=False, verbose=True).step_outputs("r.s5", {"x": 2, "y": "46barbar"})
    assert buf.getvalue().splitlines() == ["DEBUG: ### validated outputs", "DEBUG: step 'r.s5':",
                                           "DEBUG:   x = 2", "DEBUG:   y = 46barbar"]
    quiet = io.StringIO()
    Progress(stream=quiet, live=False).step_outputs("r.s5", {"x": 2})
    assert quiet.getvalue() == ""
