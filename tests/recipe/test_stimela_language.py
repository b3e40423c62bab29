"""Stimela recipe-language forms: dynamic_schema, nested parameter sections, defaults reaching
into nested recipes, a nested recipe's own defaults, ``~`` in paths (Stimela 2.1.4's tests)."""
from __future__ import annotations

import os
import sys
import textwrap

import pytest

from radioflow.errors import ValidationError
from radioflow.recipe.dtypes import DType, coerce
from radioflow.recipe.load import load_documents
from radioflow.recipe.validate import compile_recipe

CAB = """\
cabs:
  echo:
    command: echo
    inputs:
      a: str
      jones: {dtype: "List[str]", default: [B]}
      h:
        h1: str
        h2: str
"""


def _compile(tmp_path, text: str, name: str = "recipe", params: dict | None = None):
    path = tmp_path / "r.yml"
    path.write_text(CAB + textwrap.dedent(text))
    return compile_recipe(load_documents([str(path)]), name, params or {})


@pytest.fixture
def schema_module(tmp_path, monkeypatch):
    """A module with a dynamic-schema function written as for Stimela (scabha.cargo.Parameter)."""
    (tmp_path / "dynschema_mod.py").write_text(textwrap.dedent("""\
        from scabha.cargo import Parameter

        def jones_schema(params, inputs, outputs):
            inputs = inputs.copy()
            for j in params["jones"]:
                inputs[f"{j}.f_int"] = Parameter(dtype="Union[str, int]", info="interval")
            return inputs, outputs
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "dynschema_mod"
    sys.modules.pop("dynschema_mod", None)


def test_dynamic_schema_adds_parameters_per_step(tmp_path, schema_module):
    text = """\
        recipe:
          steps:
            s1: {cab: dyn, params: {jones: [B, G], B.f_int: 1, G.f_int: 2}}
            s2: {cab: dyn, params: {G.f_int: 2}}
        """
    cab = f"  dyn:\n    command: echo\n    dynamic_schema: {schema_module}.jones_schema\n" \
          "    inputs:\n      jones: {dtype: 'List[str]', default: [B]}\n"
    path = tmp_path / "r.yml"
    path.write_text("cabs:\n" + cab + textwrap.dedent(text))
    with pytest.raises(ValidationError) as info:
        compile_recipe(load_documents([str(path)]), "recipe", {})
    msg = str(info.value)
    assert "step 's2': unknown parameter 'G.f_int'" in msg       # s2 has jones [B] only
    assert "step 's1'" not in msg
    path.write_text("cabs:\n" + cab + textwrap.dedent(text).replace("{G.f_int: 2}", "{B.f_int: x}"))
    rdef = compile_recipe(load_documents([str(path)]), "recipe", {})
    assert set(rdef.steps["s1"].schema) == {"jones", "B.f_int", "G.f_int"}
    assert str(rdef.steps["s1"].schema["G.f_int"].type) == "Union[str, int]"


def test_dynamic_schema_that_cannot_be_imported_is_an_error(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text("cabs:\n  dyn:\n    command: echo\n    dynamic_schema: no_such_module_xyz.func\n"
                    "recipe:\n  steps:\n    s1: {cab: dyn}\n")
    with pytest.raises(ValidationError, match=r"r\.yml:4: cab 'dyn': dynamic_schema 'no_such_module_xyz.func': "
                                              r"cannot import no_such_module_xyz"):
        compile_recipe(load_documents([str(path)]), "recipe", {})


def test_nested_parameter_sections_as_mappings(tmp_path):
    rdef = _compile(tmp_path, """\
        recipe:
          steps:
            s1: {cab: echo, params: {h: {h2: x}, h.h1: y}}
        """)
    assert rdef.steps["s1"].step.params == {"h.h2": "x", "h.h1": "y"}


def test_nested_alias_and_default_sections(tmp_path):
    rdef = _compile(tmp_path, """\
        recipe:
          aliases:
            foo:
              z: s1.h.h1
          defaults:
            foo: {z: zz}
          steps:
            s1: {cab: echo}
        """)
    assert rdef.aliases["foo.z"] == [("s1", "h.h1")]
    assert rdef.defaults == {"foo.z": "zz"}


def test_defaults_reach_into_nested_recipe_steps(tmp_path):
    rdef = _compile(tmp_path, """\
        sub:
          steps:
            image: {cab: echo}
        recipe:
          defaults:
            selfcal.image.a: 1024
          steps:
            selfcal: {recipe: sub}
        """)
    assert rdef.steps["selfcal"].recipe.step_defaults == {"image": {"a": 1024}}


def test_nested_recipe_own_defaults_satisfy_required_inputs(tmp_path):
    text = """\
        basic:
          inputs: {args: {dtype: "List[int]", required: true}}
          defaults: {args: [1, 2]}
          steps:
            s: {cab: echo, params: {a: "{recipe.args}"}}
        recipe:
          steps:
            sub: {recipe: basic}
        """
    rdef = _compile(tmp_path, text)
    assert rdef.steps["sub"].recipe.defaults == {"args": [1, 2]}
    with pytest.raises(ValidationError, match="required parameter 'args' is not set"):
        _compile(tmp_path, text.replace("defaults: {args: [1, 2]}", "info: x"))


def test_tilde_in_directory_values_is_home():
    assert coerce("~", DType.parse("Directory")) == os.path.expanduser("~")
    assert coerce(["~/x", "."], DType.parse("List[Directory]")) == [os.path.expanduser("~/x"), "."]
    assert coerce("~", DType.parse("str")) == "~"


def test_if_with_two_arguments_is_true_when_false():
    from radioflow.recipe.formula import evaluate

    assert evaluate("IF(1 == 1, 'yes')", {}) == "yes"
    assert evaluate("IF(1 == 2, 'yes')", {}) is True      # Stimela: a missing if_false is True


def test_unresolvable_formula_is_an_error_not_a_dropped_parameter():
    from radioflow.recipe.formula import UNSET, FormulaError, evaluate

    ns = {"steps": {"s1": {"out": "x"}}, "recipe": {"u": UNSET}}
    with pytest.raises(FormulaError, match=r"r\.yml:7: formula '=steps\.s1\.nonexistent': unresolved"):
        evaluate("steps.s1.nonexistent", ns, where="r.yml:7")
    assert evaluate("UNSET", ns) is UNSET and evaluate("recipe.u", ns) is UNSET
    assert evaluate("IFSET(steps.s1.nonexistent, 1, 2)", ns) == 2


def test_self_reference_named_as_stimela(tmp_path):
    from radioflow.recipe.formula import FormulaError, LazyMapping

    ns: dict = {}
    current = LazyMapping({"msg": "=current.msg"}, lambda: ns, name="current", where=lambda k: "r.yml:3")
    ns["current"] = current
    with pytest.raises(FormulaError, match="self-referencing formula or substitution, circular reference: "
                                           "current.msg -> current.msg"):
        current["msg"]


def test_log_takes_stimela_options(caplog):
    import logging

    from radioflow.recipe.formula import FormulaError, evaluate

    with caplog.at_level(logging.DEBUG, logger="radioflow.recipe.formula"):
        assert evaluate("LOG('m1', 'warning')", {}) == "m1"
        assert evaluate("LOG_CRITICAL('m2')", {}) == "m2"
        assert evaluate("LOG('a', 'b')", {}) == "b"          # not options: radioflow's LOG(a, b) form
    got = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert got == [("WARNING", "m1"), ("CRITICAL", "m2"), ("INFO", "a b")]
    with pytest.raises(FormulaError, match="several levels"):
        evaluate("LOG('m', 'warning, error')", {})
