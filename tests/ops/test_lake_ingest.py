"""Staging ingestion into the local lake: completeness, validation, failures with reasons, search,
idempotence, crash recovery (SIGKILL), expiry, VOTable output, get."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from lake_helpers import make_product

from radioflow.cli import main
from radioflow.errors import UsageError
from radioflow.ops.lake.catalogue import Catalogue, Query
from radioflow.ops.lake.ingest import Ingestor

MJD0 = 60000.0
SRC = Path(__file__).resolve().parents[2] / "src"


def _positions(n, seed=3):
    rng = np.random.default_rng(seed)
    return rng.uniform(140, 160, n), rng.uniform(-5, 10, n)


def _drop(src: Path, staging_ns: Path) -> None:
    """Move everything from ``src`` into staging at once (products first, .meta last)."""
    staging_ns.mkdir(parents=True, exist_ok=True)
    entries = sorted(src.iterdir(), key=lambda p: p.name.endswith(".meta"))
    for p in entries:
        os.rename(p, staging_ns / p.name)


def _corrupt(meta: Path, how: str) -> str:
    doc = json.loads(meta.read_text())
    if how == "not-json":
        meta.write_text(meta.read_text()[:40])
        return "not JSON"
    if how == "missing-field":
        del doc["meta"]["s_ra"]
        expect = "'s_ra' is a required property"
    elif how == "namespace":
        doc["namespace"] = "elsewhere"
        expect = "but the product is in staging/testing/"
    elif how == "name":
        doc["name"] = "other.fits"
        expect = "but the product file is"
    else:
        doc["lifetime"] = -5
        expect = "$.lifetime"
    meta.write_text(json.dumps(doc))
    return expect


@pytest.fixture
def lake(tmp_path):
    root = tmp_path / "lake"
    (root / "staging").mkdir(parents=True)
    return root


def test_fifty_products_at_once(tmp_path, lake):
    src = tmp_path / "src"
    ras, decs = _positions(50)
    for i in range(50):
        make_product(src, f"p{i:02d}.fits", ra=ras[i], dec=decs[i], mjd=MJD0 + i, freq=1.0e9 + 1e7 * i)
    bad = {"p03.fits": "not-json", "p11.fits": "missing-field", "p17.fits": "namespace", "p23.fits": "name",
           "p31.fits": "lifetime"}
    expect = {name: _corrupt(src / (name + ".meta"), how) for name, how in bad.items()}
    copying = src / "p40.fits"
    full = copying.read_bytes()
    copying.write_bytes(full[: len(full) // 3])          # still being copied
    _drop(src, lake / "staging" / "testing")

    report = Ingestor(lake, settle=0).run_once()
    good = {f"p{i:02d}.fits" for i in range(50)} - set(bad) - {"p40.fits"}
    assert sorted(report.processed) == sorted(f"testing:{n}" for n in good)
    assert sorted(d for d, _ in report.failed) == sorted(f"testing:{n}" for n in bad)
    assert [d for d, _ in report.waiting] == ["testing:p40.fits"] and "incomplete" in report.waiting[0][1]
    failed = lake / "failed_processing" / "testing"
    for name, fragment in expect.items():
        assert fragment in (failed / (name + ".reason")).read_text(), name
        assert (failed / name).is_file() and (failed / (name + ".meta")).is_file()
    processed = lake / "processed" / "testing"
    assert sorted(p.name for p in processed.glob("*.fits")) == sorted(good)
    assert sorted(p.name for p in (lake / "staging" / "testing").iterdir()) == ["p40.fits", "p40.fits.meta"]

    # The copy completes: the next pass takes it; a further pass changes nothing.
    (lake / "staging" / "testing" / "p40.fits").write_bytes(full)
    assert Ingestor(lake, settle=0).run_once().processed == ["testing:p40.fits"]
    again = Ingestor(lake, settle=0).run_once()
    assert again.processed == again.failed == again.waiting == []
    with Catalogue(lake / "catalogue.db") as cat:
        assert cat.count() == 45
        rows = cat.search(Query())
        assert len(rows) == 45 and len({r["did"] for r in rows}) == 45
        # Cone search agrees with astropy's separations.
        centre = SkyCoord(150 * u.deg, 2 * u.deg)
        names = sorted(good | {"p40.fits"})
        idx = [int(n[1:3]) for n in names]
        sep = centre.separation(SkyCoord(ras[idx] * u.deg, decs[idx] * u.deg)).deg
        want = sorted(n for n, s in zip(names, sep) if s <= 4.0)
        found = cat.search(Query(ra=150, dec=2, radius=4.0))
        assert 0 < len(found) < 45 and sorted(r["name"] for r in found) == want
        assert all(a["distance"] <= b["distance"] for a, b in zip(found, found[1:]))
        # Time and frequency ranges; type and calibration level.
        in_time = cat.search(Query(t_start=MJD0 + 10.5, t_end=MJD0 + 20.2))
        assert sorted(r["name"] for r in in_time) == sorted(n for n in names if 11 <= int(n[1:3]) <= 20)
        in_band = cat.search(Query(freq_min=1.2e9, freq_max=1.3e9))
        assert sorted(r["name"] for r in in_band) == sorted(n for n in names if 20 <= int(n[1:3]) <= 30)
        assert len(cat.search(Query(dataproduct_type="image", calib_level=3))) == 45
        assert cat.search(Query(dataproduct_type="visibility")) == []

    # The same name again is never ingested twice.
    make_product(tmp_path / "again", "p05.fits", ra=1, dec=1, mjd=MJD0)
    _drop(tmp_path / "again", lake / "staging" / "testing")
    rep = Ingestor(lake, settle=0).run_once()
    assert rep.failed and "already in the lake" in rep.failed[0][1]
    assert (lake / "failed_processing" / "testing" / "p05.fits.reason").is_file()


def test_settle_time_and_lock(lake):
    make_product(lake / "staging" / "testing", "fresh.fits", ra=10, dec=10, mjd=MJD0)
    rep = Ingestor(lake, settle=60).run_once()
    assert rep.processed == [] and "changed less than" in rep.waiting[0][1]
    import fcntl

    with (lake / ".ingest.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(UsageError, match="Another ingestor"):
            Ingestor(lake, settle=0).run_once()
    assert Ingestor(lake, settle=0).run_once().processed == ["testing:fresh.fits"]


def test_crash_between_product_and_meta_moves_is_finished(lake):
    staging = lake / "staging" / "testing"
    make_product(staging, "x.fits", ra=10, dec=10, mjd=MJD0)
    doc = json.loads((staging / "x.fits.meta").read_text())
    dest = lake / "processed" / "testing"
    dest.mkdir(parents=True)
    with Catalogue(lake / "catalogue.db") as cat:            # what _one does before it was killed
        cat.register_pending(doc, url=str(dest / "x.fits"), nbytes=(staging / "x.fits").stat().st_size)
        os.rename(staging / "x.fits", dest / "x.fits")
    rep = Ingestor(lake, settle=0).run_once()
    assert rep.recovered == ["testing:x.fits"] and rep.processed == [] and rep.failed == []
    assert (dest / "x.fits.meta").is_file() and not any(staging.iterdir())
    with Catalogue(lake / "catalogue.db") as cat:
        assert cat.state("testing", "x.fits") == "available" and cat.get("testing:x.fits").url == str(dest / "x.fits")


def test_expired_dids_are_removed(lake):
    make_product(lake / "staging" / "testing", "short.fits", ra=10, dec=10, mjd=MJD0, lifetime=100)
    make_product(lake / "staging" / "testing", "long.fits", ra=10, dec=10, mjd=MJD0, lifetime=10_000)
    assert len(Ingestor(lake, settle=0).run_once().processed) == 2
    later = time.time() + 1000
    rep = Ingestor(lake, settle=0, clock=lambda: later).run_once()
    assert rep.expired == ["testing:short.fits"]
    assert not (lake / "processed" / "testing" / "short.fits").exists()
    assert not (lake / "processed" / "testing" / "short.fits.meta").exists()
    with Catalogue(lake / "catalogue.db") as cat:
        assert [r["name"] for r in cat.search(Query())] == ["long.fits"]
        with pytest.raises(UsageError, match="No DID testing:short.fits"):
            cat.get("testing:short.fits")


@pytest.mark.slow
def test_sigkill_mid_ingest_and_restart_reach_the_same_state(tmp_path, lake):
    staging = lake / "staging" / "testing"
    ras, decs = _positions(50, seed=5)
    for i in range(50):
        make_product(staging, f"k{i:02d}.fits", ra=ras[i], dec=decs[i], mjd=MJD0 + i)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "radioflow", "lake", "ingest", str(lake), "--settle", "0",
                             "--throttle", "0.05"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    processed = lake / "processed" / "testing"
    deadline = time.time() + 60
    while time.time() < deadline and (len(list(processed.glob("*.meta"))) if processed.exists() else 0) < 10:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = len(list(staging.glob("*.meta")))
    assert 0 < left < 50, "killed mid-way"
    rep = Ingestor(lake, settle=0).run_once()
    assert rep.failed == [] and len(rep.processed) + len(rep.recovered) >= left
    assert not any(staging.iterdir())
    assert sorted(p.name for p in processed.glob("*.fits")) == [f"k{i:02d}.fits" for i in range(50)]
    assert len(list(processed.glob("*.meta"))) == 50
    with Catalogue(lake / "catalogue.db") as cat:
        assert cat.count() == 50 and cat.pending() == []
        assert len(cat.search(Query())) == 50


def test_cli_search_votable_json_and_get(tmp_path, lake, capsys):
    from astropy.io.votable import parse

    make_product(lake / "staging" / "testing", "a.fits", ra=150.0, dec=2.0, mjd=MJD0)
    make_product(lake / "staging" / "testing", "b.fits", ra=200.0, dec=-40.0, mjd=MJD0 + 5)
    assert main(["lake", "ingest", str(lake), "--settle", "0"]) == 0
    assert "2 processed" in capsys.readouterr().out
    vot = tmp_path / "res.vot"
    assert main(["lake", "search", "--root", str(lake), "--ra", "150.1", "--dec", "2", "--radius", "1",
                 "--format", "votable", "-o", str(vot)]) == 0
    table = parse(str(vot)).get_first_table()
    assert list(table.array["did"]) == ["testing:a.fits"]
    assert table.get_field_by_id("s_ra").ucd == "pos.eq.ra" and str(table.get_field_by_id("s_ra").unit) == "deg"
    assert main(["lake", "search", "--root", str(lake), "--start", "2023-03-01T00:00", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["b.fits"]                      # MJD 60005 = 2023-03-02
    assert main(["lake", "search", "--root", str(lake), "--type", "image"]) == 0
    assert "2 product(s)" in capsys.readouterr().out
    assert main(["lake", "get", "testing:b.fits", "--root", str(lake), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "b.fits").read_bytes() == (lake / "processed" / "testing" / "b.fits").read_bytes()
    assert main(["lake", "get", "testing:zz.fits", "--root", str(lake)]) == 2
    assert "No DID testing:zz.fits" in capsys.readouterr().err
    assert main(["lake", "search", "--root", str(lake), "--ra", "1"]) == 2
    assert "cone search needs" in capsys.readouterr().err


@pytest.mark.slow
def test_s3_replicas_upload_get_and_expire(tmp_path, lake, s3_prefix, capsys):
    from radioflow.vis.location import as_location

    staging = lake / "staging" / "testing"
    make_product(staging, "s.fits", ra=150.0, dec=2.0, mjd=MJD0, lifetime=100)
    ms = staging / "v.ms"                                  # a directory product, as a Measurement Set is
    (ms / "sub").mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"x" * 5000)
    (ms / "sub" / "table.f0").write_bytes(b"y" * 3000)
    doc = json.loads((staging / "s.fits.meta").read_text())
    doc["name"], doc["meta"]["access_estsize"], doc["lifetime"] = "v.ms", 8, 10_000
    (staging / "v.ms.meta").write_text(json.dumps(doc))
    rep = Ingestor(lake, settle=0, rse_url=s3_prefix).run_once()
    assert sorted(rep.processed) == ["testing:s.fits", "testing:v.ms"]
    loc = as_location(s3_prefix)
    fs, path = loc.fs, loc.path
    assert fs.cat(f"{path}/testing/s.fits") == (lake / "processed" / "testing" / "s.fits").read_bytes()
    assert fs.cat(f"{path}/testing/v.ms/sub/table.f0") == b"y" * 3000
    with Catalogue(lake / "catalogue.db") as cat:
        assert cat.get("testing:v.ms").url == f"{s3_prefix}/testing/v.ms"
    assert main(["lake", "get", "testing:v.ms", "--root", str(lake), "-o", str(tmp_path / "got")]) == 0
    assert (tmp_path / "got" / "v.ms" / "sub" / "table.f0").read_bytes() == b"y" * 3000
    assert (tmp_path / "got" / "v.ms.meta").is_file()
    later = time.time() + 1000
    assert Ingestor(lake, settle=0, rse_url=s3_prefix, clock=lambda: later).run_once().expired == ["testing:s.fits"]
    assert not fs.exists(f"{path}/testing/s.fits") and fs.exists(f"{path}/testing/v.ms/table.dat")
    with pytest.raises(UsageError, match="s3://bucket"):
        Ingestor(lake, rse_url="/some/dir")
