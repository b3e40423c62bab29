"""``{ns.key:format}`` substitution and raw-value resolution."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radioflow.recipe.formula import UNSET, CircularReferenceError, FormulaError, LazyMapping
from radioflow.recipe.substitute import check_substitution, resolve_value, substitute

NS = {
    "recipe": {"ms": "obs/data.ms", "n": 7, "f": 3.14159, "lst": [1, 2, 3], "d": {"k": "v"},
               "unset": UNSET, "name-with-dash": "dash",
               "items": [{"name": "first"}, {"name": "second"}]},
    "steps": {"s1": {"out": "a.fits"}, "s2": {"out": "b.fits"}},
    "info": {"suffix": "x", "label": "img"},
    "config": {"run": {"env": {"HOME": "/home/u"}}},
    "obj": SimpleNamespace(attr="A", _hidden="H"),
    "width": 6,
}


@pytest.mark.parametrize("text, expected", [
    ("plain text", "plain text"),
    ("{recipe.ms}", "obs/data.ms"),
    ("{recipe.n}", "7"),
    ("{recipe.ms}-{info.suffix}.fits", "obs/data.ms-x.fits"),
    ("{recipe.n:03d}", "007"),
    ("{recipe.f:.2f}", "3.14"),
    ("{recipe.n:>5}|", "    7|"),
    ("{recipe.n:{width}d}", "     7"),
    ("{recipe.ms!r}", "'obs/data.ms'"),
    ("{recipe.n!s:>3}", "  7"),
    ("{recipe.lst}", "[1, 2, 3]"),
    ("{recipe.lst[1]}", "2"),
    ("{recipe.lst[-1]}", "3"),
    ("{recipe.d[k]}", "v"),
    ("{recipe.d.k}", "v"),
    ("{recipe.name-with-dash}", "dash"),
    ("{config.run.env.HOME}/x", "/home/u/x"),
    ("{steps.s1.out}", "a.fits"),
    ("{steps.s*.out}", "b.fits"),
    ("{steps.s[1].out}", "a.fits"),
    ("{recipe.items[1].name}", "second"),
    ("{recipe.items[0][name]}", "first"),
    ("{recipe.d[k]}", "v"),
    ("{obj.attr}", "A"),
    ("{{literal}}", "{literal}"),
    ("{{{recipe.n}}}", "{7}"),
    ("a}}b{{c", "a}b{c"),
    ("{ recipe.n }", "7"),
    ("", ""),
])
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, NS) == expected


def test_result_is_always_a_string() -> None:
    assert substitute("{recipe.n}", NS) == "7"
    assert substitute(5, NS) == 5   # type: ignore[arg-type]


@pytest.mark.parametrize("text, fragment", [
    ("{recipe.missing}", "unresolved substitution {recipe.missing}: 'recipe.missing' is not set"),
    ("{nosuch.key}", "unresolved substitution {nosuch.key}"),
    ("{recipe.unset}", "'recipe.unset' is UNSET"),
    ("{recipe.lst[7]}", "cannot index with [7]"),
    ("{obj._hidden}", "unresolved substitution"),
    ("{recipe.n", "unmatched '{' at column 1"),
    ("x}", "single '}' at column 2"),
    ("{}", "empty field"),
    ("{:>3}", "empty field"),
    ("{recipe.n!x}", "unknown conversion '!x'"),
    ("{recipe.ms:d}", "cannot format {recipe.ms}"),
    ("{recipe.n:99999}", "above 999"),
    ("{recipe.n:{width:{width}}}", "nested too deeply"),
    ("{recipe..n}", "malformed field"),
    ("{recipe.n[}", "malformed field"),
    ("{recipe.n]}", "malformed field"),
    ("{recipe.lst[]}", "malformed field"),
    ("{recipe.lst[0]x}", "malformed field"),
])
def test_substitution_errors(text: str, fragment: str) -> None:
    with pytest.raises(FormulaError) as info:
        substitute(text, NS, where="recipe.yml:5")
    message = str(info.value)
    assert message.startswith("recipe.yml:5: substitution in ")
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("value, expected", [
    ("=recipe.n * 2", 14),
    ("==recipe.n", "=recipe.n"),
    ("=={recipe.n}", "=7"),
    ("{recipe.n}", "7"),
    ("no braces", "no braces"),
    (5, 5),
    (None, None),
    (True, True),
    (["=recipe.n", "{recipe.n}", 3, ["=1+1"]], [7, "7", 3, [2]]),
    (("=recipe.n",), [7]),
    ({"a": "=recipe.n + 1", "b": {"c": "{info.label}"}}, {"a": 8, "b": {"c": "img"}}),
    ("=IFSET(recipe.missing)", UNSET),
])
def test_resolve_value(value: object, expected: object) -> None:
    assert resolve_value(value, NS) == expected


def test_check_substitution() -> None:
    check_substitution("{anything.at.all:>4} {{x}} {a[0]!r}")
    check_substitution(5)   # type: ignore[arg-type]
    for bad, fragment in [("{a", "unmatched"), ("a}", "single '}'"), ("{a!q}", "'!q'"),
                          ("{}", "empty field")]:
        with pytest.raises(FormulaError, match=fragment):
            check_substitution(bad, where="r.yml:1")


def test_string_subclasses_are_resolved() -> None:
    class Located(str):
        pass

    assert resolve_value(Located("=recipe.n + 1"), NS) == 8
    assert substitute(Located("{recipe.n}"), NS) == "7"
    assert type(substitute(Located("{recipe.n}"), NS)) is str


def test_resolve_value_errors_carry_location() -> None:
    with pytest.raises(FormulaError, match=r"^r\.yml:8: syntax error in formula at column 13"):
        resolve_value("=recipe.n + ", NS, where="r.yml:8")


def test_substitution_through_lazy_mapping() -> None:
    ns: dict = {"info": {"suffix": "s"}}
    raw = {"prefix": "out-{info.suffix}", "image": "{recipe.prefix}.fits", "n": "=2 + 3",
           "label": "{recipe.n:02d}", "loop": "{recipe.loop2}", "loop2": "=recipe.loop"}
    rec = LazyMapping(raw, lambda: ns, name="recipe", where="r.yml:1")
    ns["recipe"] = rec
    assert substitute("{recipe.image}/{recipe.label}", ns) == "out-s.fits/05"
    with pytest.raises(CircularReferenceError, match=r"recipe\.loop -> recipe\.loop2 -> "):
        substitute("{recipe.loop}", ns)


_PIECES = ["{", "}", "{{", "}}", "recipe", ".", "n", "ms", "lst", "[", "]", "0", "-1", ":",
           "!", "r", "x", "03d", ">5", "{width}", "steps", "*", "s1", "out", "unset", " ",
           "obj", "_hidden", "attr", "d", "k", ",", "'", "="]

_subst_like = st.lists(st.sampled_from(_PIECES), max_size=16).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_subst_like | st.text(max_size=30))
def test_random_substitution_raises_only_formula_error(text: str) -> None:
    for call in (substitute, resolve_value):
        try:
            result = call(text, NS, where="fuzz.yml:2")
        except FormulaError as exc:
            assert str(exc).startswith("fuzz.yml:2: ")
        else:
            if call is substitute:
                assert isinstance(result, str)
