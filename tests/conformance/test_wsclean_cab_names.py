"""radioflow's ``wsclean`` cab speaks cult-cargo's parameter names: every input is one of
cult-cargo's wsclean inputs, and the WSClean option it becomes is the one cult-cargo passes
(its ``nom_de_guerre`` renames, e.g. ``column`` -> ``-data-column``)."""
from __future__ import annotations

from pathlib import Path

import yaml
from conformance_sources import CULT_CARGO, extract, sdist

from radioflow.cabs.wsclean import command_line

CAB = Path(__file__).resolve().parents[2] / "src" / "radioflow" / "cabs" / "wsclean.yml"


def test_inputs_and_options_are_cult_cargos(tmp_path):
    top = extract(sdist(*CULT_CARGO), tmp_path)
    base = yaml.safe_load((top / "cultcargo" / "genesis" / "wsclean" / "wsclean-base.yml").read_text())
    params = base["lib"]["params"]["wsclean"]
    theirs = {**params["base-inputs"], **params["base-outputs"]}   # temp-dir is an output there (mkdir)
    ours = yaml.safe_load(CAB.read_text())["cabs"]["wsclean"]["inputs"]
    assert set(ours) - set(theirs) == set()
    for name in ours:
        if name in ("ms", "prefix", "size", "scale", "weight"):
            continue
        value = 3 if "int" in str(ours[name]) else (0.5 if "float" in str(ours[name]) else (
            True if "bool" in str(ours[name]) else "x"))
        argv = command_line(["a.ms"], "img", {name.replace("-", "_"): value})
        option = theirs[name].get("nom_de_guerre") or name
        assert argv[1] == f"-{option}", (name, argv)
    argv = command_line(["a.ms", "b.ms"], "out/img", {"size": 128, "scale": "60asec", "weight": "briggs 0",
                                                     "multiscale_scales": [0, 4, 8], "auto_mask": 5.0})
    assert argv == ["wsclean", "-size", "128", "128", "-scale", "60asec", "-weight", "briggs", "0",
                    "-multiscale-scales", "0,4,8", "-auto-mask", "5.0", "-name", "out/img", "a.ms", "b.ms"]
