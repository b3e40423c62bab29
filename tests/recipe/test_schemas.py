"""Parameter schemas as Stimela reads them: nested sections, ``action``, dtype ``any``."""
from __future__ import annotations

import pytest

from radioflow.invoke.policies import build_arguments
from radioflow.recipe.load import parse_yaml
from radioflow.recipe.model import Problems, build_cab


def cab_of(text: str, name: str = "c"):
    raw = parse_yaml(text, "cab.yml")
    problems = Problems()
    cab = build_cab(raw, name, problems)
    return cab, problems


def test_any_key_that_is_no_field_makes_a_section_even_beside_a_parameter_called_dtype():
    cab, problems = cab_of("""\
command: tool
inputs:
  montblanc:
    dtype: {info: Precision, dtype: str}
    threads: {dtype: int}
    pa-rotate: {info: rotate}
  model:
    pa-rotate: {dtype: bool}
    list: "List[any] = [] \\"sources\\""
""")
    assert not problems, problems.items
    assert {k: str(p.type) for k, p in cab.schema.items()} == {
        "montblanc.dtype": "str", "montblanc.threads": "int", "montblanc.pa-rotate": "str",
        "model.pa-rotate": "bool", "model.list": "List[Any]"}


def test_misspelt_key_is_reported_not_read_as_a_section():
    _, problems = cab_of("command: tool\ninputs:\n  n: {dtype: int, defualt: 3, info: number of things}\n")
    assert any("cab.yml:3" in p and "unknown key 'defualt'" in p for p in problems.items), problems.items


def test_action_flags():
    cab, problems = cab_of("""\
command: tool
inputs:
  regrid: {dtype: bool, action: store_true}
  keep: {dtype: bool, action: store_false}
""")
    assert not problems
    plain = cab.plain()
    assert build_arguments(plain, {"regrid": True, "keep": True}) == ["--regrid"]
    assert build_arguments(plain, {"regrid": False, "keep": False}) == ["--keep"]
    _, problems = cab_of("command: tool\ninputs:\n  x: {dtype: int, action: store_true}\n")
    assert any("action 'store_true' needs dtype bool" in p for p in problems.items), problems.items
    _, problems = cab_of("command: tool\ninputs:\n  x: {dtype: bool, action: count}\n")
    assert any("cab.yml:3" in p and "argparse flag action" in p for p in problems.items), problems.items


@pytest.mark.parametrize("dtype", ["any", "Optional[List[any]]", "Dict[str, any]"])
def test_lowercase_any(dtype):
    cab, problems = cab_of(f"command: tool\ninputs:\n  x: {{dtype: '{dtype}'}}\n")
    assert not problems and "any" not in str(cab.schema["x"].type)
