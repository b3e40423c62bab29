"""Packaged real layouts: counts, reference positions, `radioflow telescopes`, a simulation with ska-mid-aastar."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radioflow.cli import main
from radioflow.science import telescopes as T

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "layouts"
COUNTS = {"ska-mid-aastar": 144, "ska-mid-aa4": 197, "ska-low-aastar": 307, "ska-low-aa4": 512, "meerkat": 64}


@pytest.mark.parametrize("name,n", sorted(COUNTS.items()))
def test_packaged_layout_counts_and_sites(name, n):
    lay = T.load_layout(name, search_path=[])
    assert lay.n == n and len(set(lay.names)) == n
    assert lay.telescope == {"ska-mid": "SKA-Mid", "ska-low": "SKA-Low", "meerkat": "MeerKAT"}[name.rsplit("-", 1)[0]
                                                                                               if "ska" in name else name]
    assert "MIT" in lay.source
    assert lay.site[0] == pytest.approx(116.764448 if "low" in name else 21.444, abs=1e-3)


def test_mid_layouts_carry_meerkat_dishes_and_aastar_is_subset_of_aa4():
    mk, aa4, aas = (T.load_layout(n, search_path=[]) for n in ("meerkat", "ska-mid-aa4", "ska-mid-aastar"))
    assert np.sum(aa4.dish_diameter == 13.5) == 64 and np.sum(aa4.dish_diameter == 15.0) == 133
    assert np.sum(aas.dish_diameter == 13.5) == 64 and np.sum(aas.dish_diameter == 15.0) == 80
    # Same dish, same name, same place on Earth (ITRF) in AA* and AA4.
    pos4 = dict(zip(aa4.names, aa4.itrf()))
    for name, xyz in zip(aas.names, aas.itrf()):
        np.testing.assert_allclose(pos4[name], xyz, atol=1e-3)
    # M000..M063 of SKA-Mid are the MeerKAT dishes: baselines to M000 agree with the MeerKAT file.
    sel = [aa4.names.index(f"M{k:03d}") for k in range(64)]
    # (horizontal distances: the MeerKAT file has no heights)
    d_mid = np.hypot(*(aa4.enu[sel, :2] - aa4.enu[sel[0], :2]).T)
    d_mk = np.hypot(*(mk.enu[:, :2] - mk.enu[0, :2]).T)
    np.testing.assert_allclose(d_mid, d_mk, atol=0.05)
    assert d_mk.max() > 4000


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared reference layouts not present")
@pytest.mark.parametrize("name,tm", [("ska-low-aa4", "SKA-LOW-AA4.tm"), ("ska-mid-aastar", "SKA-MID-AAstar.tm")])
def test_packaged_offsets_equal_the_source(name, tm):
    lay = T.load_layout(name, search_path=[])
    src = np.loadtxt(SHARED / tm / "layout.txt")
    rows = [np.flatnonzero(np.all(np.abs(src - e) < 2e-6, axis=1)) for e in lay.enu]
    assert all(len(r) == 1 for r in rows)


def test_search_path_wins_over_packaged(tmp_path, monkeypatch):
    (tmp_path / "meerkat.csv").write_text("name,e,n\nA,0,0\nB,100,0\nC,0,100\n")
    monkeypatch.setenv("RADIOFLOW_LAYOUTS", str(tmp_path))
    assert T.load_layout("meerkat").n == 3


def test_unknown_layout_lists_packaged_names():
    with pytest.raises(Exception, match="ska-mid-aastar"):
        T.load_layout("ska-mid-aa9", search_path=[])


def test_telescopes_command_lists_all_layouts(capsys, monkeypatch):
    monkeypatch.delenv("RADIOFLOW_LAYOUTS", raising=False)
    assert main(["telescopes", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, n in COUNTS.items():
        assert rows[name]["stations"] == n and rows[name]["kind"] == "packaged"
    assert rows["ska-low-model"]["kind"] == "model"
    assert 100 < rows["ska-mid-aastar"]["max_baseline_km"] < 120
    assert main(["telescopes"]) == 0
    out = capsys.readouterr().out
    assert "ska-mid-aastar" in out and "144" in out


def test_simulate_with_ska_mid_aastar(tmp_path):
    from casacore.tables import table

    ms = tmp_path / "mid.ms"
    assert main(["simulate", "-o", str(ms), "--telescope", "ska-mid-aastar", "--ntimes", "2", "--nchan", "2",
                 "--freq-min", "1.0e9", "--freq-max", "1.1e9", "--nsources", "3", "--dec", "-40"]) == 0
    with table(str(ms / "ANTENNA"), ack=False) as ant:
        assert ant.nrows() == 144
        assert list(ant.getcol("NAME")[:2]) == ["M000", "M001"]
        assert sorted(set(np.round(ant.getcol("DISH_DIAMETER"), 1))) == [13.5, 15.0]
    with table(str(ms), ack=False) as t:
        assert t.nrows() == 2 * 144 * 143 // 2
        uvw = t.getcol("UVW")
    assert 50e3 < np.hypot(uvw[:, 0], uvw[:, 1]).max() < 110e3
