"""Seeded generators of malformed recipes and bad command lines for tests/test_cli_fuzz.py.

Every generated case is invalid by construction (a syntax error, an unknown name, a value of the
wrong type, an absurd size, a damaged dataset, ...), so the CLI must end it with exit status 1 or
2 and one error message, never a traceback, never exit 0. Case ``i`` draws from
``random.Random(f"{seed}-{i}")``, so one failing case is reproduced by its index alone.
"""
from __future__ import annotations

import copy
import random
import string
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

#: Where a malformed recipe is first refused: 'load' (doc, run -n and run all refuse it),
#: 'validate' (run -n and run refuse it) or 'run' (only running it finds the problem).
LEVELS = ("load", "validate", "run")


@dataclass
class RecipeCase:
    """One malformed recipe: its text, the mutation that made it and extra command-line words."""
    index: int
    kind: str
    level: str
    text: str | bytes
    extra: list[str] = field(default_factory=list)

    def args(self, path: str, workdir: str, rng: random.Random) -> list[str]:
        """The command line that drives this case: doc, run -n or run, as its level allows."""
        commands = {"load": ["doc", "run -n", "run"], "validate": ["run -n", "run"], "run": ["run"]}[self.level]
        command = rng.choice(commands)
        if command == "doc":
            return ["doc", path]
        base = ["run", path, *self.extra, "-C", workdir, "--no-report", "-q"]
        return base + (["-n"] if command == "run -n" else [])


def base_tree() -> dict[str, Any]:
    """A valid recipe (two echo steps) the mutations start from."""
    return {
        "cabs": {
            "say": {
                "command": "echo",
                "policies": {"positional": True},
                "inputs": {
                    "msg": {"dtype": "str", "required": True},
                    "n": {"dtype": "int", "default": 1},
                    "xs": {"dtype": "List[int]", "default": [1]},
                },
            },
        },
        "r": {
            "info": "fuzz base recipe",
            "inputs": {
                "flag": {"dtype": "bool", "default": False},
                "k": {"dtype": "int", "default": 2},
                "word": {"dtype": "str", "default": "w"},
                "items": {"dtype": "List[int]", "default": [1, 2]},
            },
            "steps": {
                "s1": {"cab": "say", "params": {"msg": "hi"}},
                "s2": {"cab": "say", "params": {"msg": "=steps.s1.msg", "n": "=recipe.k"}},
            },
        },
    }


RAW = "@@RAW@@"   # placeholder replaced by raw YAML text after dumping


def dump(tree: dict[str, Any], raw: str | None = None) -> str:
    text = yaml.safe_dump(tree, sort_keys=False, default_flow_style=False)
    if raw is not None:
        text = text.replace(f"'{RAW}'", raw).replace(RAW, raw)
    return text


def _word(rng: random.Random, n: int = 6) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n)) + "zq"   # never a real name


def _step(tree: dict, rng: random.Random) -> dict:
    return tree["r"]["steps"][rng.choice(["s1", "s2"])]


_NOT_INT = ["many", "1.5.3", "0xzz", "", "[", "=", "ten", "1 2", "NaN-ish"]
_BAD_DTYPES = ["Lst[int]", "List[", "int[", "Dict[str]", "Union[]", "Optional[int, str]", "List[List[", "]",
               "Tuple[int", "File*?", "intt", "List[unknown]"]
_TOO_BIG = ["=10 ** 5000", "=2 ** 99999", "=9 ** 9 ** 9", "=(10 ** 3000) * (10 ** 3000)", "=1 << 100000",
            "='x' * 10 ** 9", "=RANGE(10 ** 12)", "=10 ** 4400", "=-(10 ** 5000)"]


def _m_wrong_int(tree, rng):
    bad: Any = rng.choice(_NOT_INT + [[1, 2], {"a": 1}, ["x"]])
    _step(tree, rng)["params"]["n"] = bad
    return "validate", dump(tree)


def _m_huge_int(tree, rng):
    digits = rng.choice("123456789abcdef") + "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(17, 5000)))
    literal = ("-" if rng.random() < 0.2 else "") + "0x" + digits
    where = rng.choice(["param", "default", "cab_default", "msg"])
    if where == "param":
        _step(tree, rng)["params"]["n"] = RAW
    elif where == "default":
        tree["r"]["inputs"]["k"]["default"] = RAW
    elif where == "cab_default":
        tree["cabs"]["say"]["inputs"]["n"]["default"] = RAW
    else:
        _step(tree, rng)["params"]["msg"] = RAW
    return "load", dump(tree, literal)


def _m_huge_decimal(tree, rng):
    literal = "9" * rng.randint(20, 6000)
    tree["r"]["inputs"]["k"]["default"] = RAW
    return "load", dump(tree, literal)


def _m_too_big_formula(tree, rng):
    formula = rng.choice(_TOO_BIG)
    target = rng.choice(["n", "msg", "default"])
    if target == "default":
        tree["r"]["inputs"]["k"]["default"] = formula
    else:
        _step(tree, rng)["params"][target] = formula
    return "run", dump(tree)


def _m_deep_nesting(tree, rng):
    depth = rng.choice([200, 1000, 5000, 20000])
    style = rng.choice(["list", "map", "mixed"])
    if style == "list":
        raw = "[" * depth + "]" * depth
    elif style == "map":
        raw = "{a: " * depth + "1" + "}" * depth
    else:
        raw = "[{a: " * (depth // 2) + "1" + "}]" * (depth // 2)
    _step(tree, rng)["params"][rng.choice(["msg", "n", "xs"])] = RAW
    return "load", dump(tree, raw)


def _m_deep_formula(tree, rng):
    depth = rng.choice([150, 1000, 5000])
    formula = rng.choice(["=" + "(" * depth + "1" + ")" * depth, "=" + "-" * depth + "1",
                          "=" + "IF(1, " * depth + "1" + ")" * depth, "=" + "[" * depth + "]" * depth,
                          "=" + "1" * (depth * 5)])
    _step(tree, rng)["params"]["msg"] = formula
    return "validate", dump(tree)


def _m_unknown_name(tree, rng):
    step = _step(tree, rng)
    w = _word(rng)
    choice = rng.randrange(7)
    if choice == 0:
        step["params"]["msg"] = f"=recipe.{w}"
    elif choice == 1:
        step["params"]["msg"] = f"=steps.s1.{w}"
    elif choice == 2:
        step["params"]["msg"] = f"=steps.{w}.msg"
    elif choice == 3:
        step["params"]["msg"] = f"={w}.x"
    elif choice == 4:
        step["params"]["msg"] = f"prefix-{{recipe.{w}}}"
    elif choice == 5:
        step["skip"] = f"=recipe.{w}"
    else:
        step["skip"] = f"=NOT(recipe.{w})"
    return "validate", dump(tree)


def _m_for_loop_not_list(tree, rng):
    over = rng.choice(["k", "word", _word(rng)])
    tree["r"]["for_loop"] = {"var": "loopv", "over": over}
    if over == "word":
        tree["r"]["inputs"]["word"]["default"] = rng.choice(["abc", "1,2,3", "x"])
    tree["r"]["inputs"]["loopv"] = {"dtype": "int", "default": 0} if rng.random() < 0.5 else "int"
    return "validate", dump(tree)


def _m_unknown_key(tree, rng):
    w = _word(rng)
    where = rng.choice(["step", "recipe", "cab", "schema", "top_recipe_like"])
    if where == "step":
        _step(tree, rng)[w] = 1
    elif where == "recipe":
        tree["r"][w] = {"x": 1}
    elif where == "cab":
        tree["cabs"]["say"][w] = "x"
    elif where == "schema":
        tree["r"]["inputs"]["k"][w] = 3
    else:
        tree["r"]["steps"]["s1"]["params"][w] = "v"
    return "validate", dump(tree)


def _m_unknown_cab(tree, rng):
    _step(tree, rng)["cab"] = rng.choice([_word(rng), "", "say ", "SAY", "say.x", "../say"])
    return "validate", dump(tree)


def _m_missing_required(tree, rng):
    del tree["r"]["steps"]["s1"]["params"]["msg"]
    return "validate", dump(tree)


def _m_bad_dtype(tree, rng):
    bad = rng.choice(_BAD_DTYPES)
    if rng.random() < 0.5:
        tree["r"]["inputs"]["k"]["dtype"] = bad
    else:
        tree["cabs"]["say"]["inputs"]["n"]["dtype"] = bad
    return "validate", dump(tree)


def _m_structure(tree, rng):
    junk: Any = rng.choice([5, "x", [1, 2], None, True, 1.5, [{"a": 1}], {"": None}])
    path = rng.choice([("r", "steps"), ("r", "steps", "s1"), ("r", "steps", "s1", "cab"), ("r", "steps", "s1", "params"),
                       ("r", "inputs"), ("r", "inputs", "k"), ("cabs",), ("cabs", "say"), ("cabs", "say", "inputs"),
                       ("cabs", "say", "command"), ("r", "steps", "s2", "skip")])
    node = tree
    for key in path[:-1]:
        node = node[key]
    if path[0] == "r" and path[-1] in ("inputs", "k") and junk is None:
        junk = 7
    if path == ("r", "steps", "s2", "skip") and not isinstance(junk, (list, dict)):
        junk = [junk]
    if path == ("cabs", "say", "command") and isinstance(junk, str):
        junk = 5
    if path[-1] in ("steps", "s1") and junk is None:
        junk = 0
    node[path[-1]] = junk
    return "validate", dump(tree)


def _m_bad_choice(tree, rng):
    tree["r"]["inputs"]["word"] = {"dtype": "str", "choices": ["a", "b"], "default": _word(rng)}
    return "validate", dump(tree)


def _m_circular(tree, rng):
    tree["r"]["inputs"]["k"] = {"dtype": "int", "default": "=recipe.k2"}
    tree["r"]["inputs"]["k2"] = {"dtype": "int", "default": "=recipe.k"}
    return "validate", dump(tree)


def _m_include(tree, rng):
    text = dump(tree)
    inc = rng.choice([f"{_word(rng)}.yml", "/nonexistent/dir/x.yml", "(nosuchpkg)/x.yml", "", "..", "/"])
    return "load", f"_include: {yaml.safe_dump(inc).splitlines()[0]}\n" + text


def _m_use(tree, rng):
    _step(tree, rng)["_use"] = rng.choice([f"lib.steps.{_word(rng)}", _word(rng), "", "cabs.nosuch.x"])
    return "load", dump(tree)


def _m_syntax(tree, rng):
    lines = dump(tree).splitlines()
    i = rng.randrange(1, len(lines))
    indent = " " * rng.choice([0, 1, 2, 3, 4, 6])
    noise = rng.choice([f"{indent}{_word(rng)}: [unclosed", f"{indent}x: {{a: 1", f"{indent}\"unterminated: x",
                        f"{indent}- [", f"{indent}? [", f"{indent}x: ]"])
    lines.insert(i, noise)
    return "load", "\n".join(lines) + "\n"


def _m_tab(tree, rng):
    lines = dump(tree).splitlines()
    indented = [i for i, line in enumerate(lines) if line.startswith("  ")]
    i = rng.choice(indented)
    lines[i] = "\t" + lines[i].lstrip(" ")
    return "load", "\n".join(lines) + "\n"


def _m_bytes(tree, rng):
    data = dump(tree).encode()
    pos = rng.randrange(len(data))
    junk = rng.choice([b"\xff\xfe\x00", b"\x00", b"\xc3\x28", b"\x80\x80", b"\xed\xa0\x80", bytes(rng.randrange(256) for _ in range(8)) + b"\xff"])
    return "load", data[:pos] + junk + data[pos:]


def _m_alias_bomb(tree, rng):
    width = rng.choice([9, 10, 12])
    levels = rng.choice([8, 9, 12])
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * width)}]")
    _step(tree, rng)["params"]["msg"] = RAW
    return "load", "\n".join(lines) + "\n" + dump(tree, f"*a{levels - 1}")


def _m_tags(tree, rng):
    tag = rng.choice(["!!python/object/apply:os.system ['echo pwned']", "!!python/name:os.system", "!custom x",
                      "!!binary 'not base64 !!'", "!!timestamp not-a-time", "!!int abc", "!!float xyz",
                      "!!set {a, b}", "!!python/tuple [1, 2]"])
    _step(tree, rng)["params"]["msg"] = RAW
    return "load", dump(tree, tag)


def _m_duplicate(tree, rng):
    text = dump(tree)
    return "load", text.replace("  steps:\n", "  steps:\n    s1:\n      cab: say\n", 1)


def _m_not_mapping(tree, rng):
    text = rng.choice(["", "# only a comment\n", "- a\n- b\n", "42\n", "r:\n", "null\n", "'text'\n",
                       "---\n...\n", "r: [1, 2]\n", "cabs: 5\nr: {steps: {}}\n", "~: 1\n",
                       "? [a, b]\n: c\n", "{1: 2}\n", "r:\n  steps:\n    1: 2\n", "r: !!str\n"])
    # a file with no document lists no recipes in 'doc' (fine); running it is an error
    return ("validate" if text in ("", "# only a comment\n", "---\n...\n", "null\n") else "load"), text


def _m_cli_params(tree, rng):
    w = _word(rng)
    extra = rng.choice([[f"k={v}"] for v in ("abc", "1.5x", "[1,", "{}", "0x" + "f" * 3000, "9" * 5000)]
                       + [[f"{w}=1"], [f"s1.{w}=1"], [f"{w}.msg=1"], ["k==10 ** 5000"], [f"k==recipe.{w}"],
                          ["flag=maybe"], ["items=[1, 'x']"], ["s1.n=many"], ["--no-flagg"], ["--" + w],
                          ["k=1", "k"], ["=1"], ["s1.=1"], [".=1"]])
    return ("run" if any("==" in e for e in extra) else "validate"), dump(tree), extra


MUTATIONS: dict[str, Callable[..., Any]] = {
    name[3:]: fn for name, fn in sorted(globals().items()) if name.startswith("_m_") and callable(fn)
}


def recipe_cases(n: int, seed: int) -> list[RecipeCase]:
    """``n`` malformed recipes; every mutation kind in turn, the details drawn from the seed."""
    kinds = sorted(MUTATIONS)
    cases = []
    for i in range(n):
        rng = random.Random(f"{seed}-{i}")
        kind = kinds[i % len(kinds)]
        got = MUTATIONS[kind](copy.deepcopy(base_tree()), rng)
        level, text = got[0], got[1]
        extra = got[2] if len(got) > 2 else []
        cases.append(RecipeCase(i, kind, level, text, list(extra)))
    return cases


# -- bad command lines -------------------------------------------------------------------------
#: Command-line templates; {good_ms}, {bad_ms}, {empty}, ... are paths of the fixture datasets,
#: {num} an absurd or wrong-typed number, {opt} an unknown option.
CMDLINE_TEMPLATES: list[str] = [
    # vis info / verify / history / convert / partition / concat / squash on damaged or missing data
    "vis info {empty}", "vis info {bad_ms}", "vis info {noant_ms}", "vis info {missing}",
    "vis info {damaged_zarr_meta}", "vis info {notzarr}",
    "vis verify {empty}", "vis verify {bad_ms}", "vis verify {damaged_zarr}", "vis verify {trunc_ms}",
    "vis verify {missing}", "vis history {empty}", "vis history {missing}", "vis history {bad_ms}",
    "vis convert {empty} out.zarr", "vis convert {bad_ms} out.zarr", "vis convert {damaged_zarr} out.ms",
    "vis convert {trunc_ms} out.zarr", "vis convert {missing} out.zarr", "vis convert {good_ms} out.txt",
    "vis convert {good_ms} out.zarr --chunks {badchunks}", "vis convert {good_ms} out.zarr --field {num}",
    "vis convert {good_ms} out.zarr --spw {num}", "vis convert {good_zarr} {good_ms}",
    "vis convert {good_ms} {good_zarr}", "vis convert {good_ms} out.zarr {opt}",
    "vis partition {good_ms} part --n {num}", "vis partition {good_ms} part --by {word}",
    "vis partition {good_ms} part --interval {num}", "vis partition {good_ms} part --ranges {word}",
    "vis partition {good_ms} part --format {word}", "vis partition {empty} part --n 2",
    "vis partition {damaged_zarr} part --n 2",
    "vis concat {good_zarr}", "vis concat {missing} {missing} out.zarr", "vis concat {empty} {empty} out.zarr",
    "vis concat {good_zarr} {damaged_zarr} out.zarr",
    "vis squash {empty} out.zarr", "vis squash {missing} out.zarr", "vis squash {damaged_zarr} out.zarr",
    # image
    "image {good_ms} --size {bignum} --scale 1asec", "image {good_ms} --size 64 --scale {badscale}",
    "image {good_ms} --size {num} --scale 1amin", "image {good_ms} -size 64 -scale 1amin -niter {num}",
    "image {good_ms} -size 64 -scale 1amin -gain {num}", "image {good_ms} -size 64 -scale 1amin -mgain {num}",
    "image {good_ms} -size 64 -scale 1amin -weight {word}", "image {good_ms} -size 64 -scale 1amin -weight briggs {word}",
    "image {good_ms} -size 64 -scale 1amin -data-column {word}", "image {good_ms} -size 64 -scale 1amin -j {num}",
    "image {good_ms} -size 64 -scale 1amin {opt}", "image {empty} -size 64 -scale 1amin",
    "image {bad_ms} -size 64 -scale 1amin", "image {damaged_zarr} -size 64 -scale 1amin",
    "image {trunc_ms} -size 64 -scale 1amin", "image {missing} -size 64 -scale 1amin", "image",
    "image {good_ms} -size 64", "image {good_ms} -size 64 64 64 -scale 1amin",
    "image {good_ms} -size 64 -scale 1amin -name {unwritable}/img",
    # simulate
    "simulate -o out.ms --ntimes {bignum}", "simulate -o out.ms --ntimes {num}", "simulate -o out.ms --nchan {num}",
    "simulate -o out.ms --nchan {bignum}", "simulate -o out.ms --freq-min {num}", "simulate -o out.ms --rmax {num}",
    "simulate -o out.ms --telescope {word}", "simulate -o out.ms --sky {bad_csv}", "simulate -o out.ms --sky {empty}",
    "simulate -o out.ms --dec {num}", "simulate -o out.ms --ra {num}", "simulate -o out.ms --nsources {num}",
    "simulate -o out.ms --noise-sigma {num}", "simulate -o out.ms --start {word} --duration 10 --integration 1",
    "simulate -o out.ms --start 2026-01-01T00:00:00 --duration {num} --integration 1",
    "simulate -o out.ms --start 2026-01-01T00:00:00 --duration 10 --integration {num}",
    "simulate -o {good_ms}", "simulate -o out.txt --rmax 300 --nchan 1 --ntimes 1", "simulate -o {unwritable}/x.ms",
    "simulate -o out.ms --stations {word}", "simulate -o out.ms --ha-start 30 --ha-end -30 --ntimes {num}",
    "simulate -o out.ms --seed {num}", "simulate -o out.ms {opt}", "simulate",
    # sdp, lake, estimate, runs, report, step, k8s, serve, global
    "sdp submit {missing}", "sdp submit {bad_json}", "sdp submit {empty_json}", "sdp submit {list_json}",
    "sdp submit {deep_json}", "sdp submit {empty}", "sdp pb show {word} -C {empty}",
    "sdp pb cancel {word} -C {empty}", "sdp status {word} -C {empty}", "sdp submit {bad_json} {opt}",
    "lake search --root {empty} --calib-level {num}", "lake search --root {empty} --radius {num} --ra 1 --dec 1",
    "lake search --root {empty} --start {word}", "lake search --root {empty} --format {word}",
    "lake search --root {empty} --dec {num} --ra 0 --radius 1", "lake search --root {empty} --limit {num}",
    "lake search --root {empty} --freq-min {word}", "lake search --root {missing}", "lake search {opt}",
    "lake get {word} --root {empty}", "lake get {word}:{word} --root {empty}", "lake ingest {missing}",
    "lake ingest {empty} --settle {num}", "lake ingest {empty} --interval {num} --watch",
    "estimate {missing}", "estimate {bad_recipe}", "estimate {good_recipe} k={word}",
    "estimate {good_recipe} {word}=1", "estimate {empty}",
    "runs {word} -C {empty}", "runs -C {missing}", "runs -n {num} -C {empty}", "report {word} -C {empty}",
    "report -C {empty}", "step {missing}", "step {bad_json}", "step {empty_json}", "step {list_json}",
    "step {empty_json} --max-bytes {num}",
    "run {missing}", "run {empty}", "run {good_recipe} -C {empty} --params-file {missing}",
    "run {good_recipe} -C {empty} --params-file {bad_recipe}", "run {good_recipe} -C {empty} -s {word}",
    "run {good_recipe} -C {empty} -b {word}", "run {good_recipe} -C {empty} {opt}",
    "run {good_recipe} {word} -C {empty}", "doc {missing}", "doc {good_recipe} {word}", "doc {bad_recipe}",
    "-b {word} run {good_recipe} -C {empty}", "{word}", "vis {word}", "sdp {word}", "lake {word}",
    "k8s {word}", "telescopes {opt}", "demo {opt}", "serve --port {word}",
]

ABSURD_NUMS = ["-1", "0", "abc", "nan", "inf", "-inf", "1e999", "1e308", "-1e308", "9" * 5000, "0x" + "f" * 40,
               "", "--", "1.5e", "1,2", "-0"]
BIG_NUMS = ["100000", "1000000000", "9" * 30, "100000000", "65537"]
BAD_SCALES = ["1e308asec", "0asec", "-1asec", "nanasec", "infasec", "1e-308asec", "1furlong", "abc", "", "1e308",
              "5deg" * 3]
BAD_CHUNKS = ["time=abc", "time=0", "time=-1", "nosuch=3", "time", "=", "time=1e999", "time=" + "9" * 5000]
UNKNOWN_OPTS = ["--nosuch", "--size", "-zz", "--overwrite=maybe", "--" + "x" * 300, "-", "--help=1"]

#: Per template, values of {num} that are valid there (so not drawn).
_VALID_IN = {
    "{num}": {
        "simulate -o out.ms --ra {num}": {"0", "-0", "-1", "1e308", "-1e308"},
        "simulate -o out.ms --dec {num}": {"0", "-0", "-1"},
        "simulate -o out.ms --noise-sigma {num}": {"0", "-0", "1e308"},
        "simulate -o out.ms --seed {num}": {"0", "-0", "0x" + "f" * 40},
        "simulate -o out.ms --nsources {num}": {"0", "-0"},
        "lake ingest {empty} --settle {num}": {"0", "-0", "1e308"},
        "lake ingest {empty} --interval {num} --watch": {"1e308"},
        "lake search --root {empty} --limit {num}": {"0x" + "f" * 40},
        "vis convert {good_ms} out.zarr --field {num}": {"0", "-0"},
        "vis convert {good_ms} out.zarr --spw {num}": {"0", "-0"},
    },
}


def cmdline_cases(n: int, seed: int, paths: dict[str, str]) -> list[tuple[int, str, list[str]]]:
    """``n`` distinct bad command lines (index, template, argv) drawn from the templates."""
    out: list[tuple[int, str, list[str]]] = []
    seen: set[tuple[str, ...]] = set()
    i = 0
    while len(out) < n and i < n * 50:
        rng = random.Random(f"{seed}-cmd-{i}")
        template = CMDLINE_TEMPLATES[i % len(CMDLINE_TEMPLATES)] if i < len(CMDLINE_TEMPLATES) else rng.choice(CMDLINE_TEMPLATES)
        i += 1
        words = []
        for word in template.split():
            for key, choices in (("{num}", ABSURD_NUMS), ("{bignum}", BIG_NUMS), ("{badscale}", BAD_SCALES),
                                 ("{badchunks}", BAD_CHUNKS), ("{opt}", UNKNOWN_OPTS)):
                if key in word:
                    skip = _VALID_IN.get(key, {}).get(template, set())
                    word = word.replace(key, rng.choice([c for c in choices if c not in skip]))
            if "{word}" in word:
                word = word.replace("{word}", rng.choice([_word(rng), "", "-", "%s", "../../x", "é", "a b"]))
            words.append(word.format(**paths))
        key = tuple(words)
        if key in seen:
            continue
        seen.add(key)
        out.append((len(out), template, words))
    return out
