"""Layouts: OSKAR/CASA/CSV readers, built-in models, selection, search path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radioflow.errors import UsageError
from radioflow.science import telescopes as T

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "layouts"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared reference layouts not present")


def test_builtin_models_have_documented_sizes():
    low = T.load_layout("ska-low-model")
    mid = T.load_layout("ska-mid-model")
    assert low.n == 512 and mid.n == 197
    assert np.all(low.dish_diameter == 38.0)
    assert np.sum(mid.dish_diameter == 13.5) == 64
    # Same seed, same layout.
    np.testing.assert_array_equal(low.enu, T.load_layout("ska-low-model").enu)


def test_enu_itrf_round_trip_and_geodesy():
    enu = np.array([[0.0, 0.0, 0.0], [1000.0, -500.0, 10.0]])
    xyz = T.enu_to_itrf(enu, 116.764448, -26.824722, 377.0)
    assert np.linalg.norm(xyz[0]) == pytest.approx(6.3746e6, rel=1e-3)
    np.testing.assert_allclose(T.itrf_to_enu(xyz, 116.764448, -26.824722, 377.0), enu, atol=1e-6)
    assert np.linalg.norm(xyz[1] - xyz[0]) == pytest.approx(np.linalg.norm(enu[1]), rel=1e-12)
    lon, lat, h = T.itrf_to_geodetic(xyz[:1])
    assert (lon, lat, h) == pytest.approx((116.764448, -26.824722, 377.0), abs=1e-6)


@needs_shared
@pytest.mark.parametrize("name,n", [("SKA-LOW-AA4", 512), ("SKA-LOW-AAstar", 307), ("SKA-MID-AA4", 197),
                                    ("SKA-MID-AAstar", 144), ("MeerKAT", 64)])
def test_real_layouts_from_search_path(monkeypatch, name, n):
    monkeypatch.setenv("RADIOFLOW_LAYOUTS", str(SHARED))
    lay = T.load_layout(name)
    assert lay.n == n
    assert lay.site[0] == pytest.approx(116.764448 if "LOW" in name else 21.4438, abs=1e-3)


@needs_shared
def test_rmax_and_name_selection():
    lay = T.read_oskar(SHARED / "SKA-LOW-AA4.tm")
    sel = lay.select(rmax=750)
    assert 100 < sel.n < lay.n
    assert sel.radius().max() <= 750 + np.abs(np.median(lay.enu[:, :2], axis=0)).max() * 2
    two = lay.select(names=[lay.names[3], lay.names[7]])
    np.testing.assert_array_equal(two.enu, lay.enu[[3, 7]])


def test_oskar_model_round_trip_from_packaged_positions(tmp_path, monkeypatch):
    """An OSKAR .tm folder (position.txt + layout.txt) written from the packaged SKA-Low AA4
    offsets reads back to the same stations and site, by path and by name on the search path:
    the reader is exercised even where the shared reference folders are absent."""
    packaged = T.load_layout("ska-low-aa4", search_path=[])
    tm = tmp_path / "SKA-LOW-AA4.tm"
    tm.mkdir()
    (tm / "position.txt").write_text("{:.6f} {:.6f} {:.1f}\n".format(*packaged.site))
    np.savetxt(tm / "layout.txt", packaged.enu, fmt="%.6f")
    lay = T.read_oskar(tm)
    assert lay.n == packaged.n == 512 and lay.site == pytest.approx(packaged.site)
    np.testing.assert_allclose(lay.enu, packaged.enu, atol=1e-6)
    assert np.all(lay.dish_diameter == 38.0)
    monkeypatch.setenv("RADIOFLOW_LAYOUTS", str(tmp_path))
    np.testing.assert_allclose(T.load_layout("SKA-LOW-AA4").enu, packaged.enu, atol=1e-6)
    core = lay.select(rmax=750)
    inside = lay.radius() <= 750
    assert 100 < core.n == inside.sum() < lay.n
    np.testing.assert_array_equal(core.enu, lay.enu[inside])


def test_casa_cfg_and_csv(tmp_path):
    site = T.SITES["meerkat"]
    enu = np.array([[0, 0, 0], [100, 0, 0], [0, 200, 5.0]])
    xyz = T.enu_to_itrf(enu, *site)
    cfg = tmp_path / "mini.cfg"
    cfg.write_text("# observatory=MeerKAT\n# coordsys=XYZ\n" +
                   "".join(f"{x:.4f} {y:.4f} {z:.4f} 13.5 m{i:03d}\n" for i, (x, y, z) in enumerate(xyz)))
    lay = T.load_layout(str(cfg))
    assert lay.names == ("m000", "m001", "m002")
    np.testing.assert_allclose(lay.itrf(), xyz, atol=1e-3)
    csvf = tmp_path / "mini.csv"
    csvf.write_text("name,e,n,u\na,0,0,0\nb,100,0,0\nc,0,200,5\n")
    lay2 = T.load_layout(str(csvf))
    np.testing.assert_allclose(lay2.enu, enu)
    geo = tmp_path / "geo.csv"
    geo.write_text("name,lon,lat,height\na,21.44,-30.71,1050\nb,21.45,-30.71,1050\n")
    lay3 = T.load_layout(str(geo))
    assert np.linalg.norm(lay3.enu[1] - lay3.enu[0]) == pytest.approx(957.0, rel=0.01)


def test_bad_layouts_give_clear_errors(tmp_path):
    with pytest.raises(UsageError, match="Unknown telescope layout 'nonesuch'"):
        T.load_layout("nonesuch", search_path=[tmp_path])
    with pytest.raises(UsageError, match="does not exist"):
        T.load_layout(str(tmp_path / "missing.tm"))
    bad = tmp_path / "bad.tm"
    bad.mkdir()
    (bad / "position.txt").write_text("116.7 -26.8\n")
    (bad / "layout.txt").write_text("1 2\nx y\n")
    with pytest.raises(UsageError, match=r"layout.txt:2"):
        T.load_layout(str(bad))
    with pytest.raises(UsageError, match="at least 2"):
        T.load_layout("ska-low-model").select(rmax=1.0)
