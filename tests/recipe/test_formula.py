"""Formula parser and evaluator: literals, operators, namespaces, functions, laziness, errors."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radioflow.errors import ValidationError
from radioflow.recipe.formula import (
    UNSET,
    CircularReferenceError,
    FormulaAbort,
    FormulaError,
    FormulaSyntaxError,
    LazyMapping,
    check,
    evaluate,
    is_formula,
    parse,
)
from radioflow.recipe.formula.parser import _parse_cached


@pytest.fixture
def ns() -> dict:
    return {
        "recipe": {"a": 1, "b": [10, 20, 30], "ms": "obs/data.ms", "d": {"k": "v", "n": 2},
                   "f": 2.5, "s": "abc", "flag": True, "zero": 0, "unset": UNSET},
        "root": {"prefix": "run1"},
        "parent": {"band": "L"},
        "current": {"niter": 1000},
        "previous": {"image": "img-1.fits"},
        "steps": {"s1": {"x": 1}, "s2": {"x": 2}, "s3": {"y": 3}, "make-image": {"out": "o.fits"},
                  "t1": {"x": 100}},
        "info": {"label": "step-a", "suffix": "a", "fqname": "main.step-a"},
        "config": {"run": {"env": {"HOME": "/home/u"}}, "opts": {"log": {"dir": "logs"}}},
    }


def test_is_formula() -> None:
    assert is_formula("=a.b")
    assert not is_formula("==a.b")
    assert not is_formula("a=b")
    assert not is_formula(3)


def test_error_hierarchy() -> None:
    assert issubclass(FormulaError, ValidationError)
    for cls in (FormulaSyntaxError, FormulaAbort, CircularReferenceError):
        assert issubclass(cls, FormulaError)


def test_unset_is_falsy_singleton() -> None:
    assert not UNSET
    assert repr(UNSET) == "UNSET"
    assert type(UNSET)() is UNSET


@pytest.mark.parametrize("expr, expected", [
    ("42", 42), ("2.5", 2.5), ("1e-3", 0.001), ("1.5E2", 150.0), (".5", 0.5), ("7.", 7.0),
    ("'single'", "single"), ('"double"', "double"), ("'it has \"quotes\"'", 'it has "quotes"'),
    ("True", True), ("true", True), ("False", False), ("false", False), ("EMPTY", ""),
    ("[1, 'a', 2.5]", [1, "a", 2.5]), ("[]", []), ("[[1], [2, 3]]", [[1], [2, 3]]),
    ("LIST()", []),
])
def test_literals(ns: dict, expr: str, expected: object) -> None:
    result = evaluate(expr, ns)
    assert result == expected
    assert type(result) is type(expected)


def test_unset_keyword(ns: dict) -> None:
    assert evaluate("UNSET", ns) is UNSET


@pytest.mark.parametrize("expr, expected", [
    ("7 + 2", 9), ("7 - 2", 5), ("7 * 2", 14), ("7 / 2", 3.5), ("7 // 2", 3), ("7 % 3", 1),
    ("2 ** 10", 1024), ("-7", -7), ("+7", 7), ("--7", 7), ("~5", -6),
    ("6 & 3", 2), ("6 | 3", 7), ("6 ^ 3", 5), ("1 << 4", 16), ("32 >> 2", 8),
    ("'ab' + 'cd'", "abcd"), ("'ab' * 3", "ababab"), ("[1] + [2]", [1, 2]),
    ("'%03d' % 7", "007"),
    ("1 == 1", True), ("1 != 1", False), ("1 < 2", True), ("2 <= 2", True), ("1 > 2", False),
    ("3 >= 4", False), ("'a' == 'a'", True),
    ("1 < 2 < 3", True), ("3 > 2 > 1", True), ("1 < 3 < 2", False),
    ("2 in [1, 2]", True), ("5 in [1, 2]", False), ("2 not in [1, 2]", False),
    ("'b' in 'abc'", True), ("2 IN [2]", True), ("3 NOT IN [2]", True),
    ("not True", False), ("not 0", True), ("NOT False", True),
    ("True and False", False), ("True or False", True), ("0 or 'x'", "x"), ("3 and 4", 4),
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("-2 ** 2", -4), ("2 ** -1", 0.5),
    ("2 ** 3 ** 2", 512), ("10 - 4 - 3", 3), ("100 / 10 / 5", 2.0),
    ("True or False and False", True), ("not 1 == 2", True), ("1 + 1 == 2 and 3 > 2", True),
    ("[10, 20, 30][1]", 20), ("[10, 20, 30][-1]", 30), ("[[1, 2], [3, 4]][1][0]", 3),
    ("'abc'[0]", "a"),
])
def test_operators(ns: dict, expr: str, expected: object) -> None:
    assert evaluate(expr, ns) == expected


@pytest.mark.parametrize("expr, expected", [
    ("recipe.a", 1), ("recipe.b[2]", 30), ("recipe.d.k", "v"), ("recipe.d['n']", 2),
    ("recipe.a + recipe.d.n * 10", 21), ("root.prefix", "run1"), ("parent.band", "L"),
    ("current.niter // 10", 100), ("previous.image", "img-1.fits"), ("steps.s1.x", 1),
    ("steps.make-image.out", "o.fits"), ("info.label", "step-a"), ("info.suffix", "a"),
    ("info.fqname", "main.step-a"), ("config.run.env.HOME", "/home/u"),
    ("config.opts.log.dir", "logs"), ("recipe.a in recipe.b", False),
    ("recipe.b[recipe.a]", 20),
])
def test_namespaces(ns: dict, expr: str, expected: object) -> None:
    assert evaluate(expr, ns) == expected


@pytest.mark.parametrize("expr, expected", [
    ("steps.s*.y", 3),          # Stimela: the last match in sorted order is taken
    ("steps.s[12].x", 2),
    ("steps.s[1].x", 1),
    ("steps.s?.y", 3),
    ("steps.[st]1.x", 100),
])
def test_wildcards(ns: dict, expr: str, expected: object) -> None:
    assert evaluate(expr, ns) == expected


def test_wildcard_takes_last_sorted_match_only(ns: dict) -> None:
    # 't1' sorts last among all steps and has no 'out': as in Stimela, the formula is unresolved
    with pytest.raises(FormulaError, match="unresolved: 'steps.\\*.out' is not set"):
        evaluate("steps.*.out", ns)
    assert evaluate("steps.m*.out", ns) == "o.fits"
    assert evaluate("IFSET(steps.s*.x)", ns) is UNSET     # s3 is the last match, and has no x


def test_wildcard_index_fallback(ns: dict) -> None:
    ns["recipe"]["items"] = [{"name": "first"}, {"name": "second"}]
    assert evaluate("recipe.items[1].name", ns) == "second"


def test_object_attributes(ns: dict) -> None:
    ns["obj"] = SimpleNamespace(value=3, _private=4, method=lambda: 5)
    assert evaluate("IFSET(obj.method)", ns) is UNSET  # methods are not data
    assert evaluate("obj.value * 2", ns) == 6
    assert evaluate("IFSET(obj._private)", ns) is UNSET   # private attributes are never reachable
    with pytest.raises(FormulaError, match="obj._private"):
        evaluate("obj._private + 1", ns)
    assert evaluate("IFSET(recipe.s.upper)", ns) is UNSET   # no method access on plain values


def test_bare_name_lookup() -> None:
    assert evaluate("x + 1", {"x": 4}) == 5


def test_missing_names(ns: dict) -> None:
    # a name that does not exist is an error (Stimela stops); one set to UNSET gives UNSET
    with pytest.raises(FormulaError, match=r"r\.yml:3: formula '=recipe\.missing': unresolved: 'recipe\.missing' is not set"):
        evaluate("recipe.missing", ns, where="r.yml:3")
    assert evaluate("recipe.unset", ns) is UNSET
    with pytest.raises(FormulaError, match="unresolved: 'nosuch.ns.key' is not set"):
        evaluate("nosuch.ns.key", ns)
    assert evaluate("IFSET(nosuch.ns.key)", ns) is UNSET
    with pytest.raises(FormulaError, match=r"r\.yml:4: .*'recipe\.missing' is not set"):
        evaluate("recipe.missing + 1", ns, where="r.yml:4")
    with pytest.raises(FormulaError, match=r"'recipe\.unset' is UNSET"):
        evaluate("[recipe.unset]", ns)
    with pytest.raises(FormulaError, match=r"'recipe\.nope' does not exist"):
        evaluate("LEN(recipe.nope.x)", ns)
    with pytest.raises(FormulaError, match="spaces around '-'"):
        evaluate("recipe.a-1 + 0", ns)


def test_self(ns: dict) -> None:
    assert evaluate("IFSET(recipe.a, SELF, 0)", ns) == 1
    assert evaluate("IFSET(recipe.missing, SELF, 7)", ns) == 7
    assert evaluate("SELF + 1", {**ns, "self": 41}) == 42
    with pytest.raises(FormulaError, match="SELF"):
        evaluate("SELF + 1", ns)


def test_string_constants_are_substituted(ns: dict) -> None:
    assert evaluate("'{root.prefix}-{recipe.a:02d}.fits'", ns) == "run1-01.fits"
    assert evaluate("NOSUBST('{root.prefix}')", ns) == "{root.prefix}"
    assert evaluate("'{{literal}}'", ns) == "{literal}"


# --- functions ------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ("IF(recipe.a == 1, 'one', 'other')", "one"),
    ("IF(recipe.a == 2, 'one', 'other')", "other"),
    ("IF(recipe.missing, 'yes', 'no', 'unset')", "unset"),
    ("IFSET(recipe.a)", 1),
    ("IFSET(recipe.a, 'set', 'unset')", "set"),
    ("IFSET(recipe.missing, 'set', 'unset')", "unset"),
    ("IFSET(recipe.unset, 'set', 'unset')", "unset"),
    ("CASES(recipe.a == 0, 'zero', recipe.a == 1, 'one', 'many')", "one"),
    ("CASES(recipe.a == 0, 'zero', recipe.a == 5, 'five', 'many')", "many"),
    ("CASES(recipe.a == 1, recipe.d.k)", "v"),
    ("TRY(recipe.missing + 1, recipe.a / 0, 'fallback')", "fallback"),
    ("TRY(recipe.a + 1, 'fallback')", 2),
    ("VALID(recipe.a)", 1),
    ("VALID(recipe.missing)", False),
    ("VALID(recipe.s + 1)", False),
    ("LIST(1, recipe.a, 'x')", [1, 1, "x"]),
    ("LEN(recipe.b)", 3), ("LEN('abcd')", 4),
    ("RANGE(3)", [0, 1, 2]), ("RANGE(1, 4)", [1, 2, 3]), ("RANGE(10, 0, -4)", [10, 6, 2]),
    ("MIN(3, 1, 2)", 1), ("MAX(3, 1, 2)", 3), ("MIN(recipe.b)", 10), ("MAX(recipe.b)", 30),
    ("GETITEM(recipe.b, 1)", 20), ("GETITEM(recipe.d, 'k')", "v"),
    ("SORT([3, 1, 2])", [1, 2, 3]), ("RSORT([3, 1, 2])", [3, 2, 1]),
    ("IS_STR('x')", True), ("IS_STR(1)", False), ("IS_NUM(1.5)", True), ("IS_NUM(True)", True),
    ("IS_NUM('1')", False),
    ("DIRNAME(recipe.ms)", "obs"), ("BASENAME(recipe.ms)", "data.ms"),
    ("EXTENSION(recipe.ms)", ".ms"), ("STRIPEXT(recipe.ms)", "obs/data"),
    ("STRIPEXT(BASENAME('/a/b/c.tar'))", "c"),
    ("NOSUBST('{x}')", "{x}"),
    ("LOG('hello', 5)", 5), ("LOGWARN('careful')", "careful"), ("LOGINFO()", ""),
])
def test_functions(ns: dict, expr: str, expected: object) -> None:
    result = evaluate(expr, ns)
    assert result == expected
    assert type(result) is type(expected)


def test_cases_without_default_is_unset(ns: dict) -> None:
    assert evaluate("CASES(recipe.a == 5, 'five')", ns) is UNSET


def test_if_unset_condition_without_fourth_argument(ns: dict) -> None:
    assert evaluate("IF(recipe.missing, 1, 2)", ns) is UNSET


def test_glob_and_exists(ns: dict, tmp_path, monkeypatch) -> None:
    for name in ("b.ms", "a.ms", "c.txt"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    ns["recipe"]["dir"] = str(tmp_path)
    assert evaluate("GLOB(*.ms)", ns) == ["a.ms", "b.ms"]           # unquoted, Stimela-style
    assert evaluate("GLOB('*.txt')", ns) == ["c.txt"]
    assert evaluate("GLOB({recipe.dir}/*.ms)", ns) == [str(tmp_path / "a.ms"),
                                                       str(tmp_path / "b.ms")]
    assert evaluate("GLOB(recipe.dir + '/c*')", ns) == [str(tmp_path / "c.txt")]
    assert evaluate("GLOB(*.none)", ns) == []
    assert evaluate("EXISTS(a.ms)", ns) is True                   # no namespace 'a': a path
    assert evaluate("EXISTS(recipe.dir)", ns) is True             # a namespace: a lookup
    with pytest.raises(FormulaError, match="'recipe.nodir' is not set"):
        evaluate("EXISTS(recipe.nodir)", ns)
    assert evaluate("EXISTS({recipe.dir}/nothing)", ns) is False
    assert evaluate("LEN(GLOB(*))", ns) == 3
    assert evaluate("EXISTS(STRIPEXT(recipe.dir + '/a.ms') + '.ms')", ns) is True
    assert evaluate("GLOB(IF(recipe.dir, '*.txt', '*'))", ns) == ["c.txt"]
    assert evaluate("EXISTS('a.ms)')", ns) is False


def test_error_and_abort(ns: dict) -> None:
    with pytest.raises(FormulaAbort, match=r"r\.yml:9: .*ERROR: bad value 23"):
        evaluate("ERROR('bad value {recipe.d.n}' + '3'[0])", ns, where="r.yml:9")
    with pytest.raises(FormulaAbort, match="ERROR: something went wrong"):
        evaluate("ERROR(something went wrong)", ns)             # unquoted, Stimela-style
    with pytest.raises(FormulaAbort, match="ERROR: don't use band L"):
        evaluate("IF(parent.band == 'L', ERROR(don't use band L), 1)", ns)
    with pytest.raises(FormulaAbort, match="ABORT: stop"):
        evaluate("ABORT('stop')", ns)
    # TRY/VALID never swallow a deliberate ERROR()
    with pytest.raises(FormulaAbort):
        evaluate("TRY(ERROR('no'), 1)", ns)
    with pytest.raises(FormulaAbort):
        evaluate("VALID(ERROR('no'))", ns)


@pytest.mark.parametrize("expr, expected", [
    ("IF(True, 1, ERROR('not taken'))", 1),
    ("IF(False, ERROR('not taken'), 2)", 2),
    ("IF(recipe.missing, ERROR('x'), ERROR('y'), 3)", 3),
    ("IFSET(recipe.a, 'set', ERROR('not taken'))", "set"),
    ("IFSET(recipe.missing, ERROR('not taken'), 'unset')", "unset"),
    ("CASES(True, 1, ERROR('not taken'), 2, ERROR('x'))", 1),
    ("CASES(False, ERROR('x'), True, 2, ERROR('x'))", 2),
    ("TRY(5, ERROR('not taken'))", 5),
    ("False and ERROR('not taken')", False),
    ("True or ERROR('not taken')", True),
    ("IF(True, 1, UNKNOWNFUNC(1))", 1),
])
def test_lazy_branches(ns: dict, expr: str, expected: object) -> None:
    assert evaluate(expr, ns) == expected


def test_lazy_branch_taken_fires(ns: dict) -> None:
    with pytest.raises(FormulaAbort, match="taken"):
        evaluate("IF(True, ERROR('taken'), 1)", ns)


def test_log_functions_use_logging(ns: dict, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="radioflow.recipe.formula"):
        evaluate("LOGWARN('ms is', recipe.ms)", ns)
        evaluate("LOGDEBUG('dbg')", ns)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "ms is obs/data.ms"), (logging.DEBUG, "dbg")]


# --- errors ---------------------------------------------------------------------------------

def test_unknown_function_names_function_and_location(ns: dict) -> None:
    with pytest.raises(FormulaError, match=r"^steps\.yml:17: .*unknown function FROB\(\)"):
        evaluate("FROB(recipe.a)", ns, where="steps.yml:17")
    with pytest.raises(FormulaError, match=r"unknown function IFSTE\(\) \(did you mean IFSET\(\)\?"):
        evaluate("IFSTE(recipe.a)", ns)
    with pytest.raises(FormulaError, match=r"unknown function glob\(\) \(did you mean GLOB\(\)\?"):
        check("glob('*')")


@pytest.mark.parametrize("expr, column, fragment", [
    ("recipe.a +* 2", 12, "expected a value, found '*'"),
    ("(1 + 2", 8, "expected ')'"),
    ("'abc", 2, "unterminated string"),
    ("1 2", 4, "unexpected '2'"),
    ("recipe.", 9, "expected a name after '.'"),
    ("a = 1", 4, "use '=='"),
    ("IF(1, 2", 9, "expected ')'"),
    ("[1, 2", 7, "expected ']'"),
    ("", 2, "expected a value"),
    ("1 and", 7, "expected a value"),
    ("and 1", 2, "unexpected 'and'"),
    ("$x", 2, "unexpected character '$'"),
])
def test_syntax_errors_report_column(expr: str, column: int, fragment: str) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse(expr, where="r.yml:3")
    message = str(info.value)
    assert message.startswith(f"r.yml:3: syntax error in formula at column {column}: ")
    assert fragment in message
    formula_line, caret_line = message.splitlines()[1:]
    assert formula_line == f"    ={expr}"
    assert caret_line.index("^") == column - 1 + 4


@pytest.mark.parametrize("expr, fragment", [
    ("1 / 0", "ZeroDivisionError"),
    ("'a' + 1", "operator '+' failed on str 'a' and int 1"),
    ("recipe.b[10]", "index 10 not found"),
    ("recipe.d['nokey']", "index 'nokey' not found"),
    ("LEN(5)", "LEN() failed"),
    ("RANGE(1, 2, 3, 4)", "RANGE() expects 1 to 3 arguments, got 4"),
    ("IF(1)", "IF() expects 2 to 4 arguments, got 1"),
    ("VALID()", "VALID() expects 1 argument, got 0"),
    ("SORT(5)", "SORT(): expects a list"),
    ("BASENAME(5)", "expects a string"),
    ("MIN([])", "non-empty list"),
    ("9 ** 9 ** 9", "too large"),
    ("'a' * 10 ** 9", "too long"),
    ("RANGE(10 ** 9)", "too long"),
    ("1 << 10 ** 9", "too large"),
    ("'%9999d' % 1", "above 999"),
    ("1" * 5000, "too long"),
    ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
])
def test_evaluation_errors(ns: dict, expr: str, fragment: str) -> None:
    with pytest.raises(FormulaError) as info:
        evaluate(expr, ns, where="x.yml:1")
    assert fragment in str(info.value)
    assert str(info.value).startswith("x.yml:1: ")


def test_long_flat_expression_is_fine_or_clean_error(ns: dict) -> None:
    assert evaluate(" + ".join(["1"] * 300), ns) == 300
    try:
        evaluate(" + ".join(["1"] * 5000), ns)
    except FormulaError as exc:
        assert "nested too deeply" in str(exc)


def test_check_prevalidates_untaken_branches() -> None:
    check("IF(recipe.a, LEN(recipe.b), MAX(1, 2))")
    with pytest.raises(FormulaError, match=r"^r\.yml:2: .*unknown function NOPE\(\)"):
        check("IF(True, 1, NOPE(2))", where="r.yml:2")
    with pytest.raises(FormulaError, match=r"GETITEM\(\) expects 2 arguments, got 1"):
        check("IF(True, 1, GETITEM(recipe.b))")
    with pytest.raises(FormulaSyntaxError):
        check("IF(True,, 1)")


def test_non_string_formula_is_an_error() -> None:
    with pytest.raises(FormulaError, match="must be a string"):
        evaluate(5, {})  # type: ignore[arg-type]


def test_parse_cache() -> None:
    text = "recipe.a + 12345 * 2"
    first = parse(text)
    hits = _parse_cached.cache_info().hits
    assert parse(text) is first
    assert _parse_cached.cache_info().hits == hits + 1


def test_evaluation_speed(ns: dict) -> None:
    expr = "IF(recipe.a > 0, STRIPEXT(recipe.ms) + '-' + info.suffix, 'x')"
    evaluate(expr, ns)
    start = time.perf_counter()
    for _ in range(5000):
        assert evaluate(expr, ns) == "obs/data-a"
    per_call = (time.perf_counter() - start) / 5000
    assert per_call < 200e-6, f"{per_call * 1e6:.1f} us per evaluation"


# --- LazyMapping ----------------------------------------------------------------------------

def _recipe(raw: dict, extra: dict | None = None) -> tuple[LazyMapping, dict, list]:
    ns: dict = dict(extra or {})
    calls: list[int] = []

    def factory() -> dict:
        calls.append(1)
        return ns

    lines = {key: f"recipe.yml:{10 + i}" for i, key in enumerate(raw)}
    mapping = LazyMapping(raw, factory, name="recipe", where=lines)
    ns["recipe"] = mapping
    return mapping, ns, calls


def test_lazy_mapping_resolves_and_caches() -> None:
    rec, _, calls = _recipe({"a": "=recipe.b * 2", "b": "=recipe.c + 1", "c": 3,
                             "name": "img-{recipe.a}.fits", "lst": ["=recipe.c", "{recipe.c}x"],
                             "lit": "==not a formula", "d": {"k": "=recipe.c * 10"}})
    assert rec["a"] == 8
    assert len(calls) == 2                  # a and b resolved once each
    assert rec["a"] == 8 and rec["b"] == 4
    assert len(calls) == 2                  # cached
    assert rec["name"] == "img-8.fits"
    assert rec["lst"] == [3, "3x"]
    assert rec["lit"] == "=not a formula"
    assert rec["d"] == {"k": 30}
    assert rec.resolved()["c"] == 3
    assert len(rec) == 7 and list(rec) == list(rec.raw)
    assert "a" in rec and "zz" not in rec
    with pytest.raises(KeyError):
        rec["zz"]


def test_lazy_mapping_unset_value() -> None:
    rec, ns, _ = _recipe({"a": "=IFSET(recipe.nothing)", "b": "=IFSET(recipe.a, 1, 2)"})
    assert rec["a"] is UNSET
    assert rec["b"] == 2
    assert evaluate("recipe.a", ns) is UNSET


def test_circular_reference_detected_with_chain() -> None:
    rec, _, _ = _recipe({"a": "=recipe.b", "b": "=recipe.c + 1", "c": "=recipe.a * 2"})
    with pytest.raises(CircularReferenceError) as info:
        rec["a"]
    assert str(info.value) == (
        "recipe.yml:10: circular reference: recipe.a -> recipe.b -> recipe.c -> recipe.a")
    # nothing half-resolved is left behind: a second access reports the same cycle
    with pytest.raises(CircularReferenceError, match="recipe.b -> recipe.c -> recipe.a"):
        rec["b"]


def test_self_reference_via_substitution() -> None:
    rec, _, _ = _recipe({"a": "x-{recipe.a}"})
    with pytest.raises(CircularReferenceError, match=r"recipe\.a -> recipe\.a"):
        rec["a"]


def test_circular_reference_across_mappings() -> None:
    ns: dict = {}
    rec = LazyMapping({"a": "=steps.s1.x + 1"}, lambda: ns, name="recipe", where="r.yml:1")
    step = LazyMapping({"x": "=recipe.a"}, lambda: ns, name="steps.s1", where="r.yml:5")
    ns.update(recipe=rec, steps={"s1": step})
    with pytest.raises(CircularReferenceError,
                       match=r"^r\.yml:1: circular reference: recipe\.a -> steps\.s1\.x -> "
                             r"recipe\.a$"):
        rec["a"]


def test_try_does_not_hide_circular_reference() -> None:
    rec, _, _ = _recipe({"a": "=TRY(recipe.b, 0)", "b": "=recipe.a"})
    with pytest.raises(CircularReferenceError):
        rec["a"]


def test_lazy_mapping_where_callable_and_errors() -> None:
    ns: dict = {}
    rec = LazyMapping({"a": "=recipe.b +", "b": 1}, lambda: ns, name="recipe",
                      where=lambda key: f"file.yml:{ord(key)}")
    ns["recipe"] = rec
    with pytest.raises(FormulaSyntaxError, match=r"^file\.yml:97: syntax error"):
        rec["a"]


# --- robustness: random input only ever raises FormulaError ----------------------------------

_TOKENS = ["recipe.a", "recipe.b", "recipe.s", "recipe.missing", "steps.*.x", "steps.s[12].x",
           "1", "0", "-", "+", "*", "**", "/", "//", "%", "(", ")", "[", "]", ",", "'x'",
           "'{recipe.a}'", '"{"', "'}'", "==", "!=", "<", ">=", "in", "not", "and", "or",
           "True", "UNSET", "EMPTY", "SELF", "IF", "IFSET", "CASES", "TRY", "VALID", "ERROR",
           "LIST", "LEN", "RANGE", "MIN", "MAX", "GETITEM", "SORT", "IS_NUM", "NOSUBST",
           "STRIPEXT", "FOO", "1e3", ".5", "9", "<<", "~", "&", "|", "^", "'", '"', "=", "{",
           "}", ".", "@", "info.label", "config.run.env.HOME"]

_formula_like = st.lists(st.sampled_from(_TOKENS), max_size=14).map(" ".join) | \
    st.lists(st.sampled_from(_TOKENS), max_size=14).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(_formula_like)
def test_random_formula_like_input_raises_only_formula_error(ns: dict, text: str) -> None:
    _assert_only_formula_error(text, ns)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_random_text_raises_only_formula_error(ns: dict, text: str) -> None:
    _assert_only_formula_error(text, ns)


def _assert_only_formula_error(text: str, ns: dict) -> None:
    ns = {**ns, "self": 1}
    try:
        evaluate(text, ns, where="fuzz.yml:1")
    except FormulaError as exc:
        assert str(exc).startswith("fuzz.yml:1: ")
    try:
        check(text)
    except FormulaError:
        pass


_KEYS = "abcdef"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), st.lists(st.sampled_from(_KEYS), max_size=3),
                       min_size=1))
def test_lazy_mapping_random_reference_graphs(graph: dict[str, list[str]]) -> None:
    """Each key is 1 + the sum of the keys it refers to; cycles must be reported, not hang."""
    raw = {key: ("=" + " + ".join(["1"] + [f"recipe.{r}" for r in refs])) if refs else 1
           for key, refs in graph.items()}

    def expected(key: str, path: tuple[str, ...]) -> int | None:
        if key not in graph:
            return None
        if key in path:
            raise RecursionError
        total = 1
        for ref in graph[key]:   # left to right, stopping at the first failure, like '+'
            value = expected(ref, path + (key,))
            if value is None:
                return None
            total += value
        return total

    for key in graph:
        rec, _, _ = _recipe(raw)
        try:
            want = expected(key, ())
        except RecursionError:
            with pytest.raises(CircularReferenceError) as info:
                rec[key]
            chain = str(info.value).split("circular reference: ", 1)[1].split(" -> ")
            assert chain[0] == chain[-1]
            assert len(set(chain)) == len(chain) - 1
            continue
        if want is None:   # refers to an unset key
            with pytest.raises(FormulaError, match="is not set"):
                rec[key]
        else:
            assert rec[key] == want
