"""The shipped SRCNet AA* recipe: products, .meta against the JSON Schema, ObsCore values checked
independently against the FITS WCS and the MS tables, flags, environment, unique names."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from radioflow.cli import main

RECIPE = str(resources.files("radioflow.recipes") / "srcnet-aastar.yml")
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "src" / "radioflow" / "ops" / "lake"
                     / "product-meta.schema.json").read_text())
C = 299_792_458.0
SMALL = {"NUM_TIME_STAMPS": "4", "IMAGING_NPIXEL": "512", "START_FREQ_HZ": "1.304e9", "END_FREQ_HZ": "1.305e9",
         "FREQ_INC_HZ": "250e3", "OBS_LENGTH_HOURS": "1.0", "NSOURCES": "20", "CLEAN_NITER": "50"}
ENV_VARS = ["SKY_MODEL", "PHASE_CENTER_RA_DEG", "PHASE_CENTER_DEC_DEG", "START_FREQ_HZ", "END_FREQ_HZ", "FREQ_INC_HZ",
            "OBS_LENGTH_HOURS", "NUM_TIME_STAMPS", "START_DATE_AND_TIME", "IMAGING_NPIXEL", "IMAGING_CELLSIZE",
            "RUCIO_NAMESPACE", "RUCIO_LIFETIME", "OBS_COLLECTION", "OBS_ID", "FILE_PREFIX", "OUT_DIR"]


@pytest.fixture
def env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    for k, v in SMALL.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


def _run(tmp_path, capsys, *args):
    capsys.readouterr()
    code = main(["run", RECIPE, "-C", str(tmp_path), "-q", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_small_run_writes_three_products_with_valid_obscore(tmp_path, capsys, env):
    from astropy.io import fits
    from astropy.wcs import WCS
    from casacore.tables import table

    env.setenv("OBS_ID", "aastar-test-001")
    env.setenv("OUT_DIR", str(tmp_path / "staging" / "testing"))
    env.setenv("PHASE_CENTER_RA_DEG", "150.5")
    code, out, err = _run(tmp_path, capsys, "--dirty", "--cleaned", "--visibility", "rucio_lifetime=3600")
    assert code == 0, err
    out_dir = tmp_path / "staging" / "testing"
    names = {"ms": "aastar-test-001_measurements.ms", "dirty": "aastar-test-001_dirty.fits",
             "cleaned": "aastar-test-001_cleaned.fits"}
    metas = {}
    for kind, name in names.items():
        assert (out_dir / name).exists(), kind
        doc = json.loads((out_dir / (name + ".meta")).read_text())
        jsonschema.validate(doc, SCHEMA)
        assert doc["namespace"] == "testing" and doc["name"] == name and doc["lifetime"] == 3600
        assert doc["meta"]["obs_id"] == "aastar-test-001" and doc["meta"]["obs_collection"] == "SKAO/SKAMID"
        assert doc["meta"]["obs_publisher_did"].endswith(f"?testing:{name}")
        metas[kind] = doc["meta"]
    assert not list(out_dir.glob("*.csv")), "the sky model is discarded"

    # The MS, read independently with casacore.
    ms = str(out_dir / names["ms"])
    with table(ms, ack=False) as t:
        time, interval = t.getcol("TIME"), t.getcol("INTERVAL")
        assert t.nrows() == 4 * 144 * 143 // 2
    with table(ms + "::FIELD", ack=False) as f:
        ra, dec = np.degrees(f.getcell("PHASE_DIR", 0)[0])
    with table(ms + "::SPECTRAL_WINDOW", ack=False) as s:
        freq, width = s.getcell("CHAN_FREQ", 0), s.getcell("CHAN_WIDTH", 0)
    assert freq.size == 4 and np.allclose(width, 250e3)
    m = metas["ms"]
    assert m["dataproduct_type"] == "visibility" and m["calib_level"] == 1
    assert m["s_ra"] == pytest.approx(150.5, abs=1e-9) and m["s_ra"] == pytest.approx(ra % 360, abs=1e-9)
    assert m["s_dec"] == pytest.approx(dec, abs=1e-9) and m["s_dec"] == pytest.approx(2.21, abs=1e-9)
    assert m["t_min"] == pytest.approx((time - interval / 2).min() / 86400, abs=1e-9)
    assert m["t_max"] == pytest.approx((time + interval / 2).max() / 86400, abs=1e-9)
    assert (m["t_max"] - m["t_min"]) * 24 == pytest.approx(1.0, rel=1e-6)           # OBS_LENGTH_HOURS
    assert m["t_min"] == pytest.approx(58965 + (16 * 60 + 36) / 1440, abs=1e-6)      # 2020-04-26T16:36 UTC
    assert m["em_min"] == pytest.approx(C / (freq.max() + 125e3), rel=1e-12)
    assert m["em_max"] == pytest.approx(C / (freq.min() - 125e3), rel=1e-12)
    assert m["t_xel"] == 4 and m["em_xel"] == 4 and m["pol_states"] == "/XX/XY/YX/YY/" and m["pol_xel"] == 4
    assert m["instrument_name"] == "SKA-Mid" and m["facility_name"] == "SKAO"
    size = sum(p.stat().st_size for p in Path(ms).rglob("*") if p.is_file())
    assert m["access_estsize"] == pytest.approx(size / 1024, abs=1)

    # The images, read independently with astropy's WCS.
    for kind, level in (("dirty", 2), ("cleaned", 3)):
        meta = metas[kind]
        hdr = fits.getheader(out_dir / names[kind])
        w = WCS(hdr)
        assert meta["dataproduct_type"] == "image" and meta["calib_level"] == level
        assert meta["s_xel1"] == meta["s_xel2"] == 512
        sky = w.celestial.pixel_to_world(255.5, 255.5)
        assert meta["s_ra"] == pytest.approx(sky.ra.deg, abs=1e-9)
        assert meta["s_dec"] == pytest.approx(sky.dec.deg, abs=1e-9)
        assert abs(meta["s_ra"] - 150.5) < 2 * abs(hdr["CDELT1"])    # within a pixel or two of the phase centre
        f0, df = hdr["CRVAL3"], hdr["CDELT3"]
        assert meta["em_min"] == pytest.approx(C / (f0 + df / 2), rel=1e-12)
        assert meta["em_max"] == pytest.approx(C / (f0 - df / 2), rel=1e-12)
        assert meta["em_min"] == pytest.approx(m["em_min"], rel=1e-9) and meta["em_max"] == pytest.approx(m["em_max"], rel=1e-9)
        assert meta["t_min"] == pytest.approx(m["t_min"], abs=1e-9) and meta["t_max"] == pytest.approx(m["t_max"], abs=1e-9)
        assert meta["s_resolution"] == pytest.approx(hdr["BMAJ"] * 3600)
        assert meta["s_fov"] == pytest.approx(512 * abs(hdr["CDELT2"]))
        # Field of view / npixel: the image spans the primary beam (1.25 lambda / 15 m) at the band centre.
        fwhm = np.degrees(1.25 * C / freq.mean() / 15.0)
        assert meta["s_fov"] == pytest.approx(fwhm, rel=1e-6)
    assert metas["cleaned"]["s_resolution"] > 0


def test_no_product_selected_is_a_clear_error(tmp_path, capsys, env):
    code, out, err = _run(tmp_path, capsys)
    assert code == 1
    assert "No data product selected" in err and "--visibility" in err and "Traceback" not in err


def test_bad_environment_value_names_the_variable(tmp_path, capsys, env):
    env.setenv("NUM_TIME_STAMPS", "four")
    code, out, err = _run(tmp_path, capsys, "--dirty")
    assert code == 2 and "NUM_TIME_STAMPS='four'" in err


def test_survey_sky_names_explain_what_to_do(tmp_path, capsys, env):
    env.setenv("SKY_MODEL", "MIGHTEE_L1")
    code, out, err = _run(tmp_path, capsys, "--visibility", "telescope=meerkat")
    assert code == 1 and "MIGHTEE_L1" in err and "CSV catalogue" in err


@pytest.mark.slow
def test_default_names_are_unique_per_run_and_unselected_products_discarded(tmp_path, capsys, env):
    env.setenv("IMAGING_NPIXEL", "128")
    env.setenv("NUM_TIME_STAMPS", "2")
    for _ in range(2):
        code, out, err = _run(tmp_path, capsys, "--dirty", "telescope=meerkat")
        assert code == 0, err
    dirs = sorted(p for p in tmp_path.iterdir() if p.name.startswith("aastar-"))
    assert len(dirs) == 2 and dirs[0].name != dirs[1].name
    for d in dirs:
        files = sorted(p.name for p in d.iterdir())
        assert files == [f"{d.name}_dirty.fits", f"{d.name}_dirty.fits.meta"]   # MS and sky discarded
    # --no-discard keeps what was made.
    code, out, err = _run(tmp_path, capsys, "--dirty", "--no-discard", "telescope=meerkat", "obs_id=keep")
    assert code == 0, err
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    assert "keep_measurements.ms" in kept and "keep_dirty.fits.meta" in kept and "keep_measurements.ms.meta" not in kept


@pytest.mark.slow
def test_products_of_a_run_are_ingested_and_found(tmp_path, capsys, env):
    from radioflow.ops.lake.catalogue import Catalogue, Query
    from radioflow.ops.lake.ingest import Ingestor

    (tmp_path / "lake" / "staging").mkdir(parents=True)
    env.setenv("OUT_DIR", str(tmp_path / "lake" / "staging" / "srcnet"))
    env.setenv("RUCIO_NAMESPACE", "srcnet")
    env.setenv("IMAGING_NPIXEL", "128")
    code, out, err = _run(tmp_path, capsys, "--visibility", "--dirty")
    assert code == 0, err
    rep = Ingestor(tmp_path / "lake", settle=0).run_once()
    assert len(rep.processed) == 2 and rep.failed == []
    with Catalogue(tmp_path / "lake" / "catalogue.db") as cat:
        found = cat.search(Query(ra=150.12, dec=2.21, radius=0.1))
        assert sorted(r["dataproduct_type"] for r in found) == ["image", "visibility"]
        assert [r["dataproduct_type"] for r in cat.search(Query(freq_min=1.3045e9, freq_max=1.31e9))] != []
        assert cat.search(Query(freq_min=1.4e9)) == []
        assert cat.search(Query(t_start=58965.0, t_end=58966.0, dataproduct_type="visibility"))[0]["calib_level"] == 1
