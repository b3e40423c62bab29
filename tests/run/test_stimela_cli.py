"""Stimela's command-line forms: options before the command, ``exec``, ``-b native``,
``step.param=value``, ``-pf``, ``-l``, ``-f``/``-F`` (cases of Stimela 2.1.4's own tests)."""
from __future__ import annotations

import os
import textwrap
import time

from recipe_helpers import cli

ECHO = textwrap.dedent("""\
    cabs:
      echo:
        command: echo
        policies: {positional: true}
        inputs:
          msg: {dtype: str, default: "none"}
    """)


def _write(tmp_path, text: str, name: str = "r.yml") -> str:
    path = tmp_path / name
    path.write_text(ECHO + textwrap.dedent(text))
    return str(path)


def _echoed(tmp_path) -> list[str]:
    """What the echo steps printed, from their step logs (oldest run first)."""
    lines = []
    for log in sorted((tmp_path / ".radioflow" / "logs").rglob("*.log"), key=os.path.getmtime):
        lines += [ln for ln in log.read_text().splitlines() if ln and not ln.startswith("#")]
    return lines


def test_global_backend_and_verbose_before_exec(tmp_path, capsys):
    path = _write(tmp_path, """\
        recipe:
          name: my recipe
          outputs: {out: {dtype: str, default: done}}
          steps:
            s1: {cab: echo, params: {msg: hi}}
        """)
    code, out, err = cli(capsys, "-v", "-b", "native", "exec", path, "-C", str(tmp_path))
    assert code == 0, err
    assert "recipe 'my recipe' executed successfully" in out
    assert "DEBUG: ### validated outputs" in out and "DEBUG:   out: done" in out


def test_unknown_container_backend_is_a_usage_error(tmp_path, capsys):
    path = _write(tmp_path, "recipe:\n  steps:\n    s1: {cab: echo}\n")
    code, _, err = cli(capsys, "-b", "singularity", "run", path, "-C", str(tmp_path))
    assert code == 2
    assert "does not run steps in containers" in err


def test_step_param_assignment_on_the_command_line(tmp_path, capsys):
    path = _write(tmp_path, """\
        sub:
          steps:
            t1: {cab: echo}
        recipe:
          steps:
            s1: {cab: echo}
            s2: {recipe: sub}
        """)
    code, _, err = cli(capsys, "run", path, "recipe", "s1.msg=hey", "s2.t1.msg=deep", "-C", str(tmp_path))
    assert code == 0, err
    assert _echoed(tmp_path) == ["hey", "deep"]


def test_step_param_assignment_to_unknown_parameter_names_it(tmp_path, capsys):
    path = _write(tmp_path, "recipe:\n  steps:\n    s1: {cab: echo}\n")
    code, _, err = cli(capsys, "run", path, "s1.nosuch=1", "-C", str(tmp_path))
    assert code == 1
    assert "invalid assignment s1.nosuch=1" in err and "step 's1'" in err


def test_params_file_below_command_line(tmp_path, capsys):
    path = _write(tmp_path, """\
        recipe:
          inputs: {a: str, b: str}
          steps:
            s1: {cab: echo, params: {msg: "{recipe.a}-{recipe.b}"}}
            s2: {cab: echo}
        """)
    pf = tmp_path / "p.yml"
    pf.write_text("a: from-file\nb: from-file\ns2:\n  msg: nested\n")
    code, _, err = cli(capsys, "run", path, "-pf", str(pf), "b=cli", "-C", str(tmp_path))
    assert code == 0, err
    assert _echoed(tmp_path) == ["from-file-cli", "nested"]


def test_params_file_missing_is_a_usage_error(tmp_path, capsys):
    path = _write(tmp_path, "recipe:\n  steps:\n    s1: {cab: echo}\n")
    code, _, err = cli(capsys, "run", path, "--params-file", str(tmp_path / "nope.yml"), "-C", str(tmp_path))
    assert code == 2 and "nope.yml cannot be read" in err


def test_last_recipe(tmp_path, capsys):
    path = _write(tmp_path, """\
        first:
          steps: {s1: {cab: echo, params: {msg: first}}}
        second:
          steps: {s1: {cab: echo, params: {msg: second}}}
        """)
    code, _, err = cli(capsys, "run", path, "-C", str(tmp_path))
    assert code == 2 and "Several recipes" in err
    code, _, err = cli(capsys, "run", "-l", path, "-C", str(tmp_path))
    assert code == 0, err
    assert _echoed(tmp_path) == ["second"]


def test_backend_select_list_prefers_first_runnable(tmp_path, capsys):
    from radioflow.backends import select_backend

    assert select_backend(["singularity", "native"]) == "local"
    assert select_backend("kube") == "kubernetes"
    assert select_backend(None) == "local"


def test_skip_if_outputs_overridden_by_f_and_F(tmp_path, capsys):
    path = tmp_path / "skips.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          touch:
            command: touch
            inputs:
              dep: {dtype: File, must_exist: false, policies: {skip: true}}
            outputs:
              file: {dtype: File, policies: {positional: true}}
        recipe:
          steps:
            t1: {cab: touch, params: {file: one.tmp}, skip_if_outputs: exist}
            t2: {cab: touch, params: {file: two.tmp, dep: dep.tmp}, skip_if_outputs: fresh}
        """))
    run = ("run", str(path), "-C", str(tmp_path))
    assert cli(capsys, *run)[0] == 0
    one, two = tmp_path / "one.tmp", tmp_path / "two.tmp"
    old = time.time() - 100
    os.utime(one, (old, old))
    os.utime(two, (old, old))
    (tmp_path / "dep.tmp").touch()        # newer than two.tmp: t2 is stale, runs; t1 exists, skipped
    assert cli(capsys, *run)[0] == 0
    assert os.path.getmtime(one) == old and os.path.getmtime(two) > old
    os.utime(two, (old + 200, old + 200))  # now fresh: both skipped, unless -f / -F
    assert cli(capsys, *run, "-f")[0] == 0
    assert os.path.getmtime(one) == old and os.path.getmtime(two) != old + 200
    assert cli(capsys, *run, "-F")[0] == 0
    assert os.path.getmtime(one) > old


def test_opts_backend_select_in_recipe_file(tmp_path, capsys):
    path = _write(tmp_path, """\
        opts:
          backend:
            select: [singularity, native]
        recipe:
          steps:
            s1: {cab: echo, params: {msg: on-host}}
        """)
    code, _, err = cli(capsys, "run", path, "-C", str(tmp_path))
    assert code == 0, err
    assert _echoed(tmp_path) == ["on-host"]
    bad = _write(tmp_path, "opts:\n  backend:\n    select: podman\nrecipe:\n  steps:\n    s1: {cab: echo}\n", "bad.yml")
    code, _, err = cli(capsys, "run", bad, "-C", str(tmp_path))
    assert code == 2 and "does not run steps in containers" in err


def test_step_param_assignment_satisfies_a_required_parameter(tmp_path, capsys):
    path = tmp_path / "req.yml"
    path.write_text(textwrap.dedent("""\
        cabs:
          need: {command: echo, policies: {positional: true}, inputs: {a: {dtype: str, required: true}}}
        recipe:
          steps:
            s1: {cab: need}
        """))
    code, _, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    assert code == 1 and "required parameter 'a' is not set" in err
    code, _, err = cli(capsys, "run", str(path), "s1.a=given", "-C", str(tmp_path))
    assert code == 0, err
    assert _echoed(tmp_path) == ["given"]
