"""The recipe loader: includes, _use, _scrub, merging, source locations, and fuzzing."""
from __future__ import annotations

import atexit
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radioflow.errors import RadioflowError, UsageError
from radioflow.recipe.load import LocDict, load_documents, parse_yaml

INC = Path(__file__).resolve().parent.parent / "recipes" / "inc"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_locations_of_keys_and_mappings(tmp_path):
    doc = load_documents([write(tmp_path / "a.yml", """\
        cabs:
          c:
            command: echo
        r:
          steps:
            s1:
              cab: c
        """)])
    steps = doc.recipes["r"]["steps"]
    assert isinstance(steps, LocDict)
    assert steps.where("s1") == "a.yml:6" or steps.where("s1").endswith("a.yml:6")
    assert steps["s1"].where("cab").endswith("a.yml:7")
    assert doc.cabs["c"].loc.endswith("a.yml:3")
    assert doc.files == [str((tmp_path / "a.yml").resolve())]


def test_multiple_files_merge_later_wins(tmp_path):
    a = write(tmp_path / "a.yml", "vars: {x: 1, y: 2}\nr: {info: first, steps: {}}\n")
    b = write(tmp_path / "b.yml", "vars: {y: 3}\nr: {info: second}\nDEFAULT: r\n")
    doc = load_documents([a, b])
    assert doc.vars == {"x": 1, "y": 3}
    assert doc.recipes["r"]["info"] == "second" and doc.default == "r"
    assert doc.vars.where("y").endswith("b.yml:1")


def test_include_relative_optional_nested_and_own_keys_win(tmp_path):
    doc = load_documents([write(tmp_path / "main.yml", f"""\
        _include:
          - {INC / 'part_b.yml'}
          - nothing-here.yml [optional]
        lib:
          params:
            shared:
              y: 5
        """)])
    assert doc.lib["params"]["shared"] == {"x": "from-b", "y": 5, "z_one": 1, "z_two": 2}
    assert doc.cabs["from_a"]["command"] == "echo"        # (.)part_a.yml, relative to part_b.yml
    assert doc.cabs["from_a"].loc.endswith("part_a.yml:3")


def test_include_at_nested_level_and_search_path(tmp_path, monkeypatch):
    monkeypatch.setenv("RADIOFLOW_INCLUDE", str(INC))
    doc = load_documents([write(tmp_path / "main.yml", """\
        r:
          inputs:
            _include: part_a.yml
        """)])
    assert doc.recipes["r"]["inputs"]["cabs"]["from_a"]["inputs"] == {"x": "str"}


def test_include_from_package(tmp_path, monkeypatch):
    pkg = tmp_path / "rfpkg_test"
    (pkg / "lib").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "lib" / "cabs.yml").write_text("cabs:\n  pc: {command: true}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = load_documents([write(tmp_path / "m.yml", "_include: (rfpkg_test)lib/cabs.yml\n")])
    assert doc.cabs["pc"]["command"] is True
    with pytest.raises(UsageError, match=r"m2.yml:1: _include names package 'no_such_pkg_xyz'"):
        load_documents([write(tmp_path / "m2.yml", "_include: (no_such_pkg_xyz)x.yml\n")])
    doc = load_documents([write(tmp_path / "m3.yml", "_include: (no_such_pkg_xyz)x.yml [optional]\nvars: {a: 1}\n")])
    assert doc.vars == {"a": 1}


def test_include_errors(tmp_path):
    with pytest.raises(UsageError, match=r"a.yml:2: included file 'missing.yml' not found"):
        load_documents([write(tmp_path / "a.yml", "vars:\n  _include: missing.yml\n")])
    write(tmp_path / "x.yml", "_include: y.yml\n")
    write(tmp_path / "y.yml", "_include: x.yml\n")
    with pytest.raises(UsageError, match="circular _include"):
        load_documents([tmp_path / "x.yml"])
    write(tmp_path / "lst.yml", "- 1\n")
    with pytest.raises(UsageError, match="must hold a mapping"):
        load_documents([write(tmp_path / "b.yml", "_include: lst.yml\n")])


def test_use_copies_sections_one_or_list_and_dotted(tmp_path):
    doc = load_documents([write(tmp_path / "a.yml", """\
        lib:
          params:
            p1: {a: 1, b: {c: 2}}
            p2: {d: 4}
          steps:
            base:
              cab: c
              params:
                _use: lib.params.p1
        r:
          steps:
            s1:
              _use: lib.steps.base
              params: {e: 5}
            s2:
              _use: [lib.params.p1, lib.params.p2]
              a: 9
        """)])
    steps = doc.recipes["r"]["steps"]
    assert steps["s1"] == {"cab": "c", "params": {"a": 1, "b": {"c": 2}, "e": 5}}
    assert steps["s2"] == {"a": 9, "b": {"c": 2}, "d": 4}
    assert doc.lib["params"]["p1"] == {"a": 1, "b": {"c": 2}}         # the source is untouched
    with pytest.raises(UsageError, match=r"b.yml:2: _use refers to 'lib.nope'"):
        load_documents([write(tmp_path / "b.yml", "x:\n  _use: lib.nope\n")])
    with pytest.raises(UsageError, match="circular _use"):
        load_documents([write(tmp_path / "c.yml", "a:\n  _use: b\nb:\n  _use: a\n")])


def test_scrub_with_wildcards_and_dotted_paths(tmp_path):
    doc = load_documents([write(tmp_path / "a.yml", f"""\
        _include: {INC / 'part_b.yml'}
        lib:
          _scrub: params.shared.y
          params:
            other:
              _use: lib.params.shared
              _scrub: [x, "z_*"]
        """)])
    assert doc.lib["params"]["other"] == {"y": 2}
    assert doc.lib["params"]["shared"] == {"x": "from-b", "z_one": 1, "z_two": 2}


def test_yaml_syntax_error_names_file_line_column(tmp_path):
    with pytest.raises(UsageError) as err:
        load_documents([write(tmp_path / "s.yml", "a:\n  b: [1, 2\n  c: 3\n")])
    msg = str(err.value)
    assert "s.yml:3" in msg and "YAML syntax error" in msg and "\n" not in msg


def test_non_string_keys_become_strings():
    data = parse_yaml("1: a\ntrue: b\nnull: c\n", "k.yml")
    assert data == {"1": "a", "true": "b", "null": "c"}
    with pytest.raises(UsageError, match="k.yml:1"):
        parse_yaml("? [a, b]\n: c\n", "k.yml")


# -- fuzzing: malformed documents never give a traceback ---------------------------------------
_keys = st.sampled_from(["cabs", "lib", "opts", "vars", "DEFAULT", "r", "steps", "inputs", "outputs", "cab",
                         "recipe", "params", "_include", "_use", "_scrub", "for_loop", "aliases", "dtype",
                         "command", "flavour", "skip", "tags", "assign", "assign_based_on", "defaults",
                         "x", "s1", "info", "required", "default", "policies", "var", "over", "scatter"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                     st.sampled_from(["=recipe.x", "=FOO(", "{recipe.x}", "int = 1 \"h\"", "List[", "*",
                                      "c", "lib.steps.a", "s1.x", "(c).x", "*.x", "x.yml", "[optional]",
                                      "==x", "=IF(1,2)", "Dict[str, int]", "File*", "exist", "fresh"]),
                     st.text(max_size=8))
_trees = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                        st.dictionaries(_keys, kids, max_size=5)), max_leaves=15)
_yaml_noise = st.text(alphabet="abc:-[]{}#&*!|>'\"%@`,? \n\t=.123", max_size=120)


def _load_or_user_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yml"
    path.write_text(text)
    try:
        doc = load_documents([path])
        from radioflow.recipe.validate import compile_recipe

        for name in list(doc.recipes)[:3]:
            compile_recipe(doc, name, {})
    except RadioflowError as exc:
        assert str(exc).strip()


@settings(max_examples=1100, deadline=None, suppress_health_check=list(HealthCheck))
@given(tree=st.dictionaries(_keys, _trees, max_size=6))
def test_fuzz_structured_documents(tree):
    import yaml

    _load_or_user_error(_FUZZ_DIR, yaml.safe_dump(tree))


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=_yaml_noise)
def test_fuzz_raw_text(text):
    _load_or_user_error(_FUZZ_DIR, text)


_FUZZ_DIR = Path(tempfile.mkdtemp(prefix="rf-fuzz-"))
atexit.register(shutil.rmtree, _FUZZ_DIR, True)


def test_duplicate_keys_are_an_error(tmp_path):
    with pytest.raises(UsageError, match=r"d.yml:4.*duplicate key 'b' \(first defined at line 2"):
        load_documents([write(tmp_path / "d.yml", "a:\n  b: 1\n  c: 2\n  b: 3\n")])
    doc = load_documents([write(tmp_path / "m.yml", "base: &B {x: 1, y: 2}\nr:\n  <<: *B\n  y: 5\n")])
    assert doc.tree["r"] == {"x": 1, "y": 5}             # merge keys may be overridden
