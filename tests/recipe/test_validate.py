"""Dtype parsing/coercion, parameter schemas (shorthand, subsections), and prevalidation."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from radioflow.errors import ValidationError
from radioflow.recipe.dtypes import CoercionError, DType, DTypeError, coerce
from radioflow.recipe.load import load_documents
from radioflow.recipe.model import Problems, parse_schemas
from radioflow.recipe.shorthand import parse_shorthand
from radioflow.recipe.validate import compile_recipe, prepare_outputs, validate_values


@pytest.mark.parametrize("text, expected", [
    ("int", "int"), ("List[File]", "List[File]"), ("Optional[Union[int, str]]", "Optional[Union[int, str]]"),
    ("Dict[str, List[float]]", "Dict[str, List[float]]"), ("Tuple[int, ...]", "Tuple[int, ...]"),
    ("typing.List[MS]", "List[MS]"), ("  bool ", "bool"), ("List", "List[Any]"),
])
def test_dtype_parse(text, expected):
    assert str(DType.parse(text)) == expected


@pytest.mark.parametrize("text, reason", [
    ("Lisst[int]", "unknown type 'Lisst'"), ("List[int", "missing ']'"), ("int[str]", "takes no type arguments"),
    ("Dict[str]", "takes 2 type argument"), ("__import__('os')", "unexpected character"), ("", "non-empty"),
    ("List[int]]", "unexpected ']'"), ("Optional[int, str]", "takes 1 type argument"),
])
def test_dtype_parse_errors(text, reason):
    with pytest.raises(DTypeError, match=reason.replace("[", r"\[").replace("(", r"\(")):
        DType.parse(text)


@pytest.mark.parametrize("dtype, value, expected", [
    ("int", "3", 3), ("int", 4.0, 4), ("float", 2, 2.0), ("float", "1e3", 1000.0), ("bool", "yes", True),
    ("bool", 0, False), ("str", 5, "5"), ("File", "a.txt", "a.txt"), ("List[int]", ["1", 2], [1, 2]),
    ("List[str]", "one", ["one"]), ("Optional[int]", None, None), ("Union[int, str]", "x", "x"),
    ("Union[int, str]", "3", "3"), ("Union[str, int]", 3, 3), ("Dict[str, float]", {"a": 1}, {"a": 1.0}),
    ("Tuple[int, str]", [1, 2], [1, "2"]), ("Any", {"x": [1]}, {"x": [1]}), ("complex", "1+2j", 1 + 2j),
])
def test_coerce(dtype, value, expected):
    got = coerce(value, DType.parse(dtype))
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("dtype, value", [
    ("int", "x"), ("int", True), ("int", 1.5), ("float", "abc"), ("bool", "maybe"), ("File", 3),
    ("List[int]", ["a"]), ("Dict[str, int]", [1]), ("Optional[int]", "z"), ("Tuple[int, int]", [1, 2, 3]),
    ("None", 0),
])
def test_coerce_rejects(dtype, value):
    with pytest.raises(CoercionError):
        coerce(value, DType.parse(dtype))


def test_shorthand():
    assert parse_shorthand('int = 0 "count"') == {"info": "count", "default": 0, "dtype": "int"}
    assert parse_shorthand("File* \"input\"") == {"info": "input", "required": True, "dtype": "File"}
    assert parse_shorthand("List[int] = [1, 2]") == {"default": [1, 2], "dtype": "List[int]"}
    assert parse_shorthand("str = 'a b' \"help\"") == {"info": "help", "default": "a b", "dtype": "str"}
    assert parse_shorthand("MS") == {"dtype": "MS"}


def test_schemas_subsections_and_errors(tmp_path):
    doc = load_documents([_write(tmp_path, "s.yml", """\
        cabs:
          c:
            command: x
            inputs:
              a: int = 1
              grp:
                b: {dtype: float, required: true}
                c: str
              bad: {dtype: int, foo: 2}
              worse: 17
        """)])
    problems = Problems()
    schema = parse_schemas(doc.cabs["c"]["inputs"], "inputs", problems)
    assert list(schema) == ["a", "grp.b", "grp.c"]
    assert schema["grp.b"].required and schema["a"].default == 1 and schema["a"].has_default
    assert not schema["grp.c"].has_default
    assert len(problems.items) == 2
    assert problems.items[0].endswith("unknown key 'foo' (allowed: " + problems.items[0].split("(allowed: ")[1])
    assert "s.yml:9" in problems.items[0] and "s.yml:10" in problems.items[1]


def test_validate_values_choices_paths_and_mkdir(tmp_path):
    doc = load_documents([_write(tmp_path, "v.yml", """\
        cabs:
          c:
            command: x
            inputs:
              mode: {dtype: str, choices: [a, b]}
              pols: {dtype: "List[str]", element_choices: [XX, YY]}
              src: {dtype: File, required: true}
              opt: {dtype: File, must_exist: false}
            outputs:
              out: {dtype: File}
              dir: {dtype: Directory, mkdir: true}
        """)])
    problems = Problems()
    schema = parse_schemas(doc.cabs["c"]["inputs"], "inputs", problems)
    schema.update(parse_schemas(doc.cabs["c"]["outputs"], "outputs", problems, outputs=True))
    (tmp_path / "in.txt").write_text("x")
    ok = validate_values({"mode": "a", "pols": ["XX"], "src": "in.txt", "opt": "nope.txt", "out": "o/p/x.txt",
                          "dir": "d/e"}, schema, what="step", workdir=str(tmp_path))
    assert ok["pols"] == ["XX"]
    prepare_outputs(ok, schema, str(tmp_path))
    assert (tmp_path / "o" / "p").is_dir() and not (tmp_path / "o" / "p" / "x.txt").exists()
    assert (tmp_path / "d" / "e").is_dir()
    with pytest.raises(ValidationError) as err:
        validate_values({"mode": "c", "pols": ["XY"], "src": "missing.txt"}, schema,
                        what="step 's'", where_of=lambda k: f"v.yml:{k}", workdir=str(tmp_path))
    msg = str(err.value)
    assert "3 problems" in msg and "v.yml:mode" in msg and "not one of the choices" in msg
    assert "element(s) ['XY']" in msg and "'missing.txt' does not exist" in msg
    with pytest.raises(ValidationError, match="required parameter 'src' is not set"):
        validate_values({}, schema, what="step", workdir=str(tmp_path))


def test_prevalidation_recursive_recipe_and_implicit(tmp_path):
    doc = load_documents([_write(tmp_path, "r.yml", """\
        cabs:
          c:
            command: x
            inputs:
              a: {dtype: str, implicit: fixed}
        loopy:
          steps:
            me: {recipe: loopy}
        r2:
          steps:
            s: {cab: c, params: {a: mine}}
        """)])
    with pytest.raises(ValidationError, match="includes itself"):
        compile_recipe(doc, "loopy")
    with pytest.raises(ValidationError, match=r"r.yml:11: .*'a' is implicit"):
        compile_recipe(doc, "r2")


def test_alias_schema_copied_and_requiredness(tmp_path):
    doc = load_documents([_write(tmp_path, "a.yml", """\
        cabs:
          c:
            command: x
            inputs: {x: int *, y: str *}
            outputs: {o: File}
        r:
          aliases:
            x: s.x
            y: s.y
            o: s.o
          steps:
            s: {cab: c, params: {y: given}}
        """)])
    rdef = compile_recipe(doc, "r", {"x": 1})
    assert rdef.inputs["x"].dtype == "int" and rdef.inputs["x"].required
    assert not rdef.inputs["y"].required                      # supplied by the step
    assert rdef.outputs["o"].dtype == "File" and rdef.aliases["o"] == [("s", "o")]
    with pytest.raises(ValidationError, match="required input 'x' is not set"):
        compile_recipe(doc, "r", {})


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_dtype_text = st.text(alphabet="ListDicOponaUFMSRyfbt[], .", max_size=30) | st.sampled_from(
    ["List[", "Dict[str,]", "Union[]", "Optional[List[int]]", "Tuple[int, ...]", "int]"])
_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                       lambda k: st.lists(k, max_size=3) | st.dictionaries(st.text(max_size=3), k, max_size=3),
                       max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(text=_dtype_text, value=_values)
def test_dtype_parse_and_coerce_never_crash(text, value):
    try:
        dtype = DType.parse(text)
    except DTypeError:
        return
    try:
        coerce(value, dtype)
    except CoercionError:
        pass
