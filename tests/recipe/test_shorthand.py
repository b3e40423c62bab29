"""The parameter shorthand read as Stimela 2.1.4 reads it (scabha.cargo.Cargo.flatten_schemas),
by the one parser that both the recipe loader and the invoke layer use."""
from __future__ import annotations

import pytest

from radioflow.invoke.policies import cab_schemas, is_named_output
from radioflow.recipe.model import Problems, parse_schemas
from radioflow.recipe.shorthand import parse_shorthand


@pytest.mark.parametrize("text, expected", [
    # a trailing double-quoted string is help text, even right after '=' (then the default is "")
    ('str = "text"', {"info": "text", "default": "", "dtype": "str"}),
    ('int = 0 "count"', {"info": "count", "default": 0, "dtype": "int"}),
    ('str = "a b" "help"', {"info": "help", "default": "a b", "dtype": "str"}),
    # single quotes are not help text: they quote the default, and are stripped
    ("str = 'text'", {"default": "text", "dtype": "str"}),
    ("str = 'a b' \"help\"", {"info": "help", "default": "a b", "dtype": "str"}),
    # '*' marks required only when there is no '=' (Stimela: 'int* = 5' keeps 'int*' as dtype)
    ("File *", {"required": True, "dtype": "File"}),
    ('File* "input"', {"info": "input", "required": True, "dtype": "File"}),
    ("int* = 5", {"default": 5, "dtype": "int*"}),
    # the default is everything after the first '='
    ("str = a=b", {"default": "a=b", "dtype": "str"}),
    ("str =", {"default": "", "dtype": "str"}),
    # string dtypes keep the text; others get the value Stimela's validation converts it to
    ("str = yes", {"default": "yes", "dtype": "str"}),
    ("Optional[str] = null", {"default": "null", "dtype": "Optional[str]"}),
    ("MS = obs.ms", {"default": "obs.ms", "dtype": "MS"}),
    ("bool = yes", {"default": True, "dtype": "bool"}),
    ("float = 1e-3", {"default": 1e-3, "dtype": "float"}),
    ("List[int] = [1, 2]", {"default": [1, 2], "dtype": "List[int]"}),
    ("Dict[str, int] = {a: 1}", {"default": {"a": 1}, "dtype": "Dict[str, int]"}),
    # UNSET as a default is no default (Stimela's validation skips it)
    ("int = UNSET", {"dtype": "int"}),
    # a bare dtype, and help text alone (dtype str)
    ("MS", {"dtype": "MS"}),
    ("  List[File]  ", {"dtype": "List[File]"}),
    ('"just help"', {"info": "just help", "dtype": "str"}),
])
def test_shorthand_as_stimela(text, expected):
    assert parse_shorthand(text) == expected


def test_recipe_loader_and_invoke_layer_agree():
    """`str = "text"` was a default in the loader and help text in the invoke layer."""
    inputs = {"msg": 'str = "text"', "n": 'int = 3 "how many"', "ms": "MS *", "out": 'File "product"'}
    problems = Problems()
    params = parse_schemas(inputs, "cab 'c' inputs", problems)
    assert not problems
    flat_in, _ = cab_schemas({"inputs": inputs})
    for name, param in params.items():
        assert flat_in[name].get("info") == (param.info or None)
        assert flat_in[name].get("default") == param.default
        assert bool(flat_in[name].get("required")) == bool(param.required)
    assert params["msg"].info == "text" and params["msg"].default == ""
    assert params["n"].default == 3 and params["ms"].required
    _, flat_out = cab_schemas({"outputs": {"out": 'File "product"', "log": 'URL "where"', "n": "int"}})
    assert [is_named_output(flat_out[k]) for k in ("out", "log", "n")] == [True, True, False]
