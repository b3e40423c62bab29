"""Cab execution features with Stimela 2.1.4's semantics: ``{current.x}`` in a cab's command,
cab-level preamble/epilogue, python flavours' ``subst``, ``pre_commands``/``post_commands`` and
``yield_output``, ``policies.repeat: false``. Each runs a real recipe or a real command."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from recipe_helpers import cli

from radioflow.errors import RadioflowError
from radioflow.invoke import Invocation
from radioflow.invoke.execute import execute
from radioflow.invoke.policies import build_arguments
from radioflow.invoke.wranglers import CAB_OUTPUT_PREFIX
from radioflow.run.api import prepare_run


def run(tmp_path: Path, text: str, *args: str):
    (tmp_path / "r.yml").write_text(textwrap.dedent(text))
    return prepare_run([str(tmp_path / "r.yml"), *args], workdir=str(tmp_path)).runner().run()


def step_log(tmp_path: Path, outcome, step: str) -> str:
    return (tmp_path / ".radioflow" / "logs" / outcome.run_id / f"{step}.log").read_text()


def test_current_values_substituted_in_command_and_args(tmp_path):
    """stimela_tests/test_xrun.yml: command '{current.command} {current.args}' with skipped inputs."""
    out = run(tmp_path, """\
        cabs:
          shell:
            command: '{current.command} {current.args}'
            args: ['{current.extra}']
            policies: {skip: true}
            inputs:
              command: {dtype: str}     # Stimela too reports a required one as missing: skipped
              args: {dtype: str}
              extra: {dtype: str, default: tail}
        r:
          steps:
            s:
              cab: shell
              params: {command: echo, args: "head middle"}
        """)
    assert out.status == "ok"
    log = step_log(tmp_path, out, "r.s")
    assert "# command: echo head middle tail\n" in log and "\nhead middle tail\n" in log


def test_unresolvable_substitution_in_command_names_the_cab(tmp_path):
    with pytest.raises(RadioflowError, match=r"r.yml:3.*command.*current.nope"):
        run(tmp_path, """\
            cabs:
              c:
                command: echo {current.nope}
            r:
              steps:
                s: {cab: c}
            """)


CABS_WITH_SECTIONS = """\
    cabs:
      check:
        command: echo ran {current.n}
        inputs:
          n: {dtype: int, policies: {skip: true}}
        preamble:
          positive: ['=current.n > 0']
          small: ['=current.n < 10']
        epilogue:
          done: ['=current.n != 5']
    r:
      inputs:
        n: int
      steps:
        s:
          cab: check
          params: {n: =recipe.n}
          preamble:
            small: ['=current.n < 100']    # overrides the cab's 'small' (Stimela merges by label)
"""


@pytest.mark.parametrize("n,fails", [(3, None), (50, None), (0, "preamble 'positive'"), (5, "epilogue 'done'")])
def test_cab_preamble_and_epilogue_merged_with_the_steps(tmp_path, capsys, n, fails):
    (tmp_path / "r.yml").write_text(textwrap.dedent(CABS_WITH_SECTIONS))
    code, out, err = cli(capsys, "run", "-C", str(tmp_path), str(tmp_path / "r.yml"), f"n={n}")
    if fails is None:
        assert code == 0, err
    else:
        assert code != 0 and fails in err and "cab 'check'" in err and "Traceback" not in err
        logs = list((tmp_path / ".radioflow" / "logs").glob("*/r.s.log"))
        ran = bool(logs) and f"\nran {n}\n" in logs[0].read_text()
        assert ran == (n == 5)          # the preamble stops the step before it runs; the epilogue after


def test_python_code_subst_pre_post_commands_and_yield_output(tmp_path):
    """stimela_tests/test_callables.yml test_callable4, plus pre/post commands."""
    out = run(tmp_path, f"""\
        cabs:
          code:
            flavour:
              kind: python-code
              subst: true
              output_vars: false
              pre_commands:
                a: _params["b"] = _params["b"] * 2
              post_commands:
                z: print("post sees", y)
            command: |
              import json
              print("a is {{current.a}} and b is", b)
              print("{CAB_OUTPUT_PREFIX}" + json.dumps(dict(x={{current.a}} - 2)))
              y = str({{current.a}}) + b
              print("{CAB_OUTPUT_PREFIX}" + json.dumps(dict(y=y)))
            inputs:
              a: int
              b: str
            outputs:
              x: int
              y: str
        r:
          steps:
            s:
              cab: code
              params: {{a: 48, b: bar}}
            t:
              cab: code
              params: {{a: =steps.s.x, b: =steps.s.y}}
        """)
    assert out.status == "ok"
    log_s, log_t = step_log(tmp_path, out, "r.s"), step_log(tmp_path, out, "r.t")
    assert "a is 48 and b is barbar\n" in log_s and "post sees 48barbar\n" in log_s
    assert CAB_OUTPUT_PREFIX not in log_s                     # yielded lines are consumed, not shown
    assert "a is 46 and b is 48barbar48barbar\n" in log_t      # outputs x=46, y='48barbar' reached step t


def test_python_code_without_subst_keeps_braces(tmp_path):
    out = run(tmp_path, """\
        cabs:
          code:
            flavour: python-code
            command: print("{current.a}", a)
            inputs: {a: int}
        r:
          steps:
            s: {cab: code, params: {a: 1}}
        """)
    assert out.status == "ok" and "{current.a} 1\n" in step_log(tmp_path, out, "r.s")


def test_python_callable_pre_post_commands_and_yield_output(tmp_path, monkeypatch):
    (tmp_path / "rfyield_mod.py").write_text(textwrap.dedent(f"""\
        import json
        def double(v):
            print("{CAB_OUTPUT_PREFIX}" + json.dumps({{"twice": 2 * v}}))
            return v
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cab = {"name": "double", "command": "rfyield_mod.double",
           "flavour": {"kind": "python", "pre_commands": {"p": "print('before', _inputs)"},
                       "post_commands": {"q": "print('after', _result)"}},
           "inputs": {"v": {"dtype": "int"}}, "outputs": {"twice": {"dtype": "int"}}}
    res = execute(Invocation("s", cab, {"v": 21}, workdir=str(tmp_path)))
    assert res.ok and res.outputs["twice"] == 42
    assert "before {'v': 21}" in res.log and "after 21" in res.log and CAB_OUTPUT_PREFIX not in res.log
    bad = dict(cab, flavour={"kind": "python", "pre_commands": {"p": "print('x'"}})
    res = execute(Invocation("s", bad, {"v": 1}, workdir=str(tmp_path)))
    assert not res.ok and "flavour.pre_commands has a syntax error" in res.error


def test_repeat_false_joins_as_stimela(tmp_path):
    """stimela_tests/test_len_loop.yml: `repeat: false` (OmegaConf makes it the separator 'False')."""
    out = run(tmp_path, """\
        cabs:
          echo:
            command: echo
            inputs:
              args:
                dtype: List[str]
                required: true
                policies: {positional: true, repeat: false}
        r:
          steps:
            s: {cab: echo, params: {args: [test, x]}}
        """)
    assert out.status == "ok" and "# command: echo testFalsex\n" in step_log(tmp_path, out, "r.s")
    cab = {"command": "t", "inputs": {"v": {"dtype": "List[int]"}}}
    for repeat, expect in [("list", ["--v", "1", "2"]), ("repeat", ["--v", "1", "--v", "2"]),
                           ("[]", ["--v", "[1,2]"]), (",", ["--v", "1,2"]), (True, ["--v", "1True2"])]:
        cab["inputs"]["v"]["policies"] = {"repeat": repeat}
        assert build_arguments(cab, {"v": [1, 2]}) == expect, repeat
