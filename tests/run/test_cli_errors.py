"""Every class of malformed recipe gives one clear error with file:line and exit code 1 or 2."""
from __future__ import annotations

import textwrap

import pytest
from recipe_helpers import cli, recipe

CABS = f"_include: {recipe('rf_cabs.yml')}\n"

CASES = {
    # name: (recipe text (line 1 is the _include), expected exit code, expected fragments)
    "yaml_syntax": ("r:\n  steps:\n    a: {cab: write\n    b: 1\n", 2,
                    ["bad.yml:4", "YAML syntax error"]),
    "yaml_tab": ("r:\n\tsteps: 1\n", 2, ["bad.yml:2", "YAML syntax error"]),
    "unknown_step_key": ("r:\n  steps:\n    a:\n      cab: write\n      parms: {text: x}\n", 1,
                         ["bad.yml:5", "unknown key 'parms'", "allowed:"]),
    "unknown_recipe_key": ("r:\n  stepz: {}\n  steps:\n    a: {cab: write, params: {text: x, path: p}}\n", 1,
                           ["bad.yml:2", "unknown key 'stepz'"]),
    "unknown_param": ("r:\n  steps:\n    a:\n      cab: write\n      params:\n        text: x\n        path: p\n"
                      "        colour: red\n", 1, ["bad.yml:8", "unknown parameter 'colour'"]),
    "bad_dtype": ("r:\n  inputs:\n    x: Lst[int]\n  steps:\n    a: {cab: write, params: {text: x, path: p}}\n", 1,
                  ["bad.yml:3", "bad dtype 'Lst[int]'", "unknown type 'Lst'"]),
    "wrong_type": ("r:\n  steps:\n    a:\n      cab: write\n      params:\n        text: x\n        path: p\n"
                   "        repeat: many\n", 1, ["bad.yml:8", "expected an int, got 'many'"]),
    "missing_required": ("r:\n  steps:\n    a:\n      cab: write\n      params: {path: p}\n", 1,
                         ["bad.yml:3", "required parameter 'text' is not set"]),
    "missing_required_input": ("r:\n  inputs:\n    x: int *\n  steps:\n    a: {cab: write, params: {text: =recipe.x, path: p}}\n",
                               1, ["required input 'x' is not set", "bad.yml:3"]),
    "unknown_cab": ("r:\n  steps:\n    a:\n      cab: wrtie\n", 1, ["bad.yml:4", "unknown cab 'wrtie'"]),
    "bad_formula": ("r:\n  steps:\n    a:\n      cab: write\n      params:\n        text: =recipe.x +* 2\n        path: p\n",
                    1, ["bad.yml:6", "syntax error in formula"]),
    "unknown_function": ("r:\n  steps:\n    a:\n      cab: write\n      params:\n        text: =FROB(1)\n        path: p\n",
                         1, ["bad.yml:6", "unknown function FROB()"]),
    "circular_formula": ("r:\n  inputs:\n    a: {dtype: str, default: =recipe.b}\n    b: {dtype: str, default: =recipe.a}\n"
                         "  steps:\n    s: {cab: write, params: {text: =recipe.a, path: p}}\n", 1,
                         ["bad.yml:", "circular reference", "recipe.a -> recipe.b -> recipe.a"]),
    "circular_step_params": ("r:\n  steps:\n    s:\n      cab: write\n      params:\n        text: =current.path\n"
                             "        path: =current.text\n", 1, ["bad.yml:", "circular reference"]),
    "missing_include": ("_include: nothere.yml\nr:\n  steps:\n    a: {cab: write}\n", 2,
                        ["bad.yml:1", "included file 'nothere.yml' not found"]),
    "bad_alias_target": ("r:\n  aliases:\n    t: nostep.text\n  steps:\n    a: {cab: write, params: {text: x, path: p}}\n", 1,
                         ["bad.yml:3", "alias target 'nostep.text'", "no step"]),
    "bad_alias_param": ("r:\n  inputs:\n    t:\n      dtype: str\n      aliases: [a.txt]\n"
                        "  steps:\n    a: {cab: write, params: {text: x, path: p}}\n", 1,
                        ["bad.yml:3", "step 'a' has no parameter 'txt'"]),
    "bad_choice": ("r:\n  inputs:\n    m: {dtype: str, choices: [a, b], default: c}\n"
                   "  steps:\n    a: {cab: write, params: {text: x, path: p}}\n", 1,
                   ["bad.yml:3", "not one of the choices"]),
    "not_a_mapping": ("- just\n- a list\n", 2, ["bad.yml:1", "must hold a mapping"]),
    "recipe_not_mapping": ("r: 5\n", 2, ["bad.yml:1", "must be a mapping"]),
    "cab_and_recipe": ("r:\n  steps:\n    a: {cab: write, recipe: r}\n", 1, ["bad.yml:3", "exactly one of 'cab' or 'recipe'"]),
    "bad_use": ("r:\n  steps:\n    a:\n      _use: lib.steps.none\n", 2, ["bad.yml:4", "_use refers to 'lib.steps.none'"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_recipe_one_paragraph_with_location(tmp_path, capsys, name):
    text, code, fragments = CASES[name]
    path = tmp_path / "bad.yml"
    raw = name in ("not_a_mapping", "missing_include")
    path.write_text(text if raw else CABS + text)
    got, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    assert got == code, err
    assert "Traceback" not in err
    assert err.startswith("error: ")
    for frag in fragments:
        if frag.startswith("bad.yml:") and not raw and frag[8:].isdigit():
            frag = f"bad.yml:{int(frag[8:]) + 1}"        # the _include line shifts everything by one
        assert frag in err, f"{frag!r} not in {err!r}"


def test_all_problems_reported_together(tmp_path, capsys):
    path = tmp_path / "many.yml"
    path.write_text(CABS + textwrap.dedent("""\
        r:
          inputs:
            x: Lst[int]
          steps:
            a:
              cab: write
              params: {colour: red}
            b:
              cab: nosuch
            c:
              cab: write
              params: {text: =FROB(), path: p, repeat: many}
          aliases:
            y: zz.text
        """))
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))
    assert code == 1
    for frag in ["many.yml:4: ", "bad dtype", "many.yml:8: ", "unknown parameter 'colour'", "many.yml:6: ",
                 "required parameter 'text' is not set", "many.yml:10: ", "unknown cab 'nosuch'",
                 "unknown function FROB()", "expected an int", "many.yml:15: ", "alias target 'zz.text'"]:
        assert frag in err, frag
    assert "7 problems" in err


def test_usage_errors_exit_2(tmp_path, capsys):
    code, out, err = cli(capsys, "run", str(tmp_path / "missing.yml"))
    assert code == 2 and "does not exist" in err
    code, out, err = cli(capsys, "run", recipe("features.yml"), "-C", str(tmp_path))
    assert code == 2 and "Several recipes are defined" in err
    code, out, err = cli(capsys, "run", recipe("features.yml"), "nosuch", "-C", str(tmp_path))
    assert code == 2 and "No recipe named 'nosuch'" in err
    code, out, err = cli(capsys, "run", recipe("features.yml"), "skipping", "-s", "zz", "-C", str(tmp_path))
    assert code == 2 and "Step 'zz'" in err
    code, out, err = cli(capsys, "run", recipe("features.yml"), "skipping", "flag=1", "extra", "-C", str(tmp_path))
    assert code == 2 and "Unexpected argument 'extra'" in err


def test_runtime_formula_error_names_location_and_marks_run_failed(tmp_path, capsys):
    from recipe_helpers import run_rows

    path = tmp_path / "rt.yml"
    path.write_text(CABS + "r:\n  inputs:\n    nope2: str\n  steps:\n    a:\n      cab: write\n      params:\n"
                    "        text: =IFSET(recipe.nope, 'x')\n        path: '{recipe.nope2}'\n")
    code, out, err = cli(capsys, "run", str(path), "-C", str(tmp_path))   # a declared input left unset
    assert code == 1 and "rt.yml:10" in err and "recipe.nope2" in err and "Traceback" not in err
    assert run_rows(tmp_path)[0]["status"] == "failed"
