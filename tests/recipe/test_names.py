"""Issue 13 findings: unknown names in skip formulas and parameters, a for_loop over a non-list
and circular input defaults are validation errors with file:line, before anything runs."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "run"))
from recipe_helpers import cli  # noqa: E402

HEAD = textwrap.dedent("""\
    cabs:
      echo: {command: echo, policies: {positional: true}, inputs: {msg: {dtype: str, default: d}}}
    """)


def run(tmp_path, capsys, body: str, *extra: str):
    path = tmp_path / "r.yml"
    path.write_text(HEAD + textwrap.dedent(body))
    return cli(capsys, "run", str(path), "-C", str(tmp_path / "w"), "--no-report", *extra)


@pytest.mark.parametrize("dry", [True, False])
def test_skip_formula_with_unknown_name(tmp_path, capsys, dry):
    code, out, err = run(tmp_path, capsys, """\
        r:
          inputs: {flag: {dtype: bool, default: false}}
          steps:
            s1: {cab: echo, skip: =recipe.flga}
        """, *(["-n"] if dry else []))
    assert code == 1
    assert "r.yml:6: recipe 'r' step 's1': skip: 'recipe.flga' is not an input" in err
    assert not (tmp_path / "w" / ".radioflow").exists()          # nothing ran


def test_unknown_step_and_current_names(tmp_path, capsys):
    code, out, err = run(tmp_path, capsys, """\
        r:
          steps:
            s1: {cab: echo}
            s2: {cab: echo, params: {msg: "=steps.s0.msg"}}
            s3: {cab: echo, params: {msg: "x-{current.mgs}"}}
            s4: {cab: echo, params: {msg: "=IFSET(steps.s1.nonexistent, 'a', 'b')"}}
        """, "-n")
    assert code == 1
    assert "r.yml:6: recipe 'r' step 's2': parameter 'msg': 'steps.s0': recipe 'r' has no step 's0'" in err
    assert "r.yml:7: recipe 'r' step 's3': parameter 'msg': 'current.mgs': step 's3' has no parameter 'mgs'" in err
    assert "step 's4'" not in err                                  # IFSET may name what does not exist
    assert "2 problems" in err


@pytest.mark.parametrize("dtype,default", [("int", "3"), ("str", "abc")])
def test_for_loop_over_a_non_list(tmp_path, capsys, dtype, default):
    code, out, err = run(tmp_path, capsys, f"""\
        r:
          inputs:
            xs: {{dtype: {dtype}, default: {default}}}
          for_loop: {{var: x, over: xs}}
          steps:
            s1: {{cab: echo, params: {{msg: =recipe.x}}}}
        """, "-n")
    assert code == 1
    assert f"r.yml:6: recipe 'r': for_loop.over names input 'xs' of dtype {dtype}; a for_loop needs a list" in err


def test_for_loop_over_a_formula_that_is_not_a_list_fails_at_run_time(tmp_path, capsys):
    code, out, err = run(tmp_path, capsys, """\
        r:
          inputs:
            n: {dtype: int, default: 3}
          for_loop: {var: x, over: =recipe.n}
          steps:
            s1: {cab: echo, params: {msg: =recipe.x}}
        """)
    assert code == 1
    assert "for_loop.over is 3, not a list" in err and "r.yml:6" in err


def test_for_loop_over_a_list_still_runs(tmp_path, capsys):
    code, out, err = run(tmp_path, capsys, """\
        r:
          inputs:
            xs: {dtype: "List[int]", default: [1, 2]}
          for_loop: {var: x, over: xs}
          steps:
            s1: {cab: echo, params: {msg: "=recipe.x"}}
        """)
    assert code == 0, err


def test_circular_input_defaults_found_by_a_dry_run(tmp_path, capsys):
    code, out, err = run(tmp_path, capsys, """\
        r:
          inputs:
            a: {dtype: str, default: =recipe.b}
            b: {dtype: str, default: "{recipe.a}-x"}
          steps:
            s1: {cab: echo, params: {msg: =recipe.a}}
        """, "-n")
    assert code == 1 and "circular reference: recipe.a -> recipe.b -> recipe.a" in err and "r.yml:6" in err
