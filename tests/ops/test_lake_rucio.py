"""The same staging ingest into a real Rucio server (PostgreSQL, JSON metadata plugin, a POSIX RSE) on
127.0.0.1: DIDs, ObsCore metadata, replicas on the RSE, rules with lifetimes, idempotence, failures,
metadata searches, ``lake get`` through Rucio's download client."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from lake_helpers import make_product

from radioflow.cli import main
from radioflow.ops.lake.catalogue import Query
from radioflow.ops.lake.ingest import Ingestor

pytest.importorskip("rucio.client")

MJD0 = 60000.0
RSE = "LOCAL_POSIX"


@pytest.fixture(scope="module")
def rucio_server():
    """One real Rucio server for this module (its venv is built once and cached)."""
    from radioflow.ops.lake.rucio_server import LocalRucio

    server = LocalRucio(rse=RSE).start()
    old = os.environ.get("RUCIO_CONFIG")
    _use_config(str(server.client_cfg))
    try:
        yield server
    finally:
        _use_config(old)
        server.stop()


def _use_config(path: str | None) -> None:
    """Point rucio-clients at a rucio.cfg (it caches the parsed file per process)."""
    from rucio.common.config import clean_cached_config

    if path is None:
        os.environ.pop("RUCIO_CONFIG", None)
    else:
        os.environ["RUCIO_CONFIG"] = path
    clean_cached_config()


@pytest.fixture(scope="module")
def client(rucio_server):
    from rucio.client import Client

    return Client()


def _drop(src: Path, staging_ns: Path) -> None:
    staging_ns.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.iterdir(), key=lambda p: p.name.endswith(".meta")):
        os.rename(p, staging_ns / p.name)


@pytest.mark.slow
def test_fifty_products_into_rucio(tmp_path, rucio_server, client):
    lake, src, ns = tmp_path / "lake", tmp_path / "src", "srcnet"
    (lake / "staging").mkdir(parents=True)
    for i in range(50):
        make_product(src, f"r{i:02d}.fits", ra=140 + 0.4 * i, dec=-5 + 0.3 * i, mjd=MJD0 + i, freq=1.0e9 + 1e7 * i,
                     namespace=ns, lifetime=3600 + i)
    metas = {i: json.loads((src / f"r{i:02d}.fits.meta").read_text()) for i in range(50)}
    broken = src / "r07.fits.meta"
    broken.write_text(broken.read_text().replace('"s_ra"', '"s_rax"'))
    broken2 = src / "r13.fits.meta"
    broken2.write_text(broken2.read_text()[:30])
    _drop(src, lake / "staging" / ns)

    report = Ingestor(lake, settle=0, backend="rucio", rse=RSE).run_once()
    good = [i for i in range(50) if i not in (7, 13)]
    assert sorted(report.processed) == [f"{ns}:r{i:02d}.fits" for i in good]
    assert sorted(d for d, _ in report.failed) == [f"{ns}:r07.fits", f"{ns}:r13.fits"]
    failed = lake / "failed_processing" / ns
    assert "'s_ra' is a required property" in (failed / "r07.fits.reason").read_text()
    assert "not JSON" in (failed / "r13.fits.reason").read_text()
    assert sorted(p.name for p in (lake / "processed" / ns).glob("*.fits")) == [f"r{i:02d}.fits" for i in good]

    # DIDs exist (files, the right size), nothing for the failures.
    dids = set(client.list_dids(ns, [{"name": "*"}], did_type="file"))
    assert dids == {f"r{i:02d}.fits" for i in good}
    for i in good:
        name = f"r{i:02d}.fits"
        info = client.get_did(ns, name)
        assert info["type"] == "FILE" and info["bytes"] == (lake / "processed" / ns / name).stat().st_size
        # Metadata: the .meta's ObsCore fields, exactly.
        got = client.get_metadata(ns, name, plugin="JSON")
        assert {k: got[k] for k in metas[i]["meta"]} == metas[i]["meta"]
        # A replica on the RSE, a real file with the product's bytes.
        reps = list(client.list_replicas([{"scope": ns, "name": name}], schemes=["file"]))
        assert len(reps) == 1 and reps[0]["states"] == {RSE: "AVAILABLE"}
        pfn = next(iter(reps[0]["rses"][RSE]))
        assert Path(urlparse(pfn).path).read_bytes() == (lake / "processed" / ns / name).read_bytes()
        # One rule on the RSE whose lifetime is the .meta's.
        rules = list(client.list_did_rules(ns, name))
        assert len(rules) == 1 and rules[0]["rse_expression"] == RSE
        life = (rules[0]["expires_at"] - rules[0]["created_at"]).total_seconds()
        assert abs(life - metas[i]["lifetime"]) <= 2
    assert len(list(Path(rucio_server.rse_dir).rglob("*.fits"))) == len(good)

    # Idempotent: a second pass changes nothing; the same name again is refused.
    again = Ingestor(lake, settle=0, backend="rucio", rse=RSE).run_once()
    assert again.processed == again.failed == again.waiting == again.recovered == []
    make_product(tmp_path / "again", "r05.fits", ra=1, dec=1, mjd=MJD0, namespace=ns)
    _drop(tmp_path / "again", lake / "staging" / ns)
    rep = Ingestor(lake, settle=0, backend="rucio", rse=RSE).run_once()
    assert rep.failed and "already in the lake" in rep.failed[0][1]
    assert len(list(client.list_did_rules(ns, "r05.fits"))) == 1

    # Searches: server-side metadata filters, cone refined client-side.
    from radioflow.ops.lake.rucio_lake import RucioLake

    with RucioLake(None, None) as rl:     # searching needs no RSE
        assert len(rl.search(Query())) == len(good)
        in_time = rl.search(Query(t_start=MJD0 + 10.5, t_end=MJD0 + 20.2))
        assert sorted(r["name"] for r in in_time) == [f"r{i:02d}.fits" for i in good if 11 <= i <= 20]
        in_band = rl.search(Query(freq_min=1.2e9, freq_max=1.3e9))
        assert sorted(r["name"] for r in in_band) == [f"r{i:02d}.fits" for i in good if 20 <= i <= 30]
        cone = rl.search(Query(ra=150, dec=2.5, radius=1.0))
        assert [r["name"] for r in cone][:1] == ["r25.fits"] and all(r["distance"] <= 1.0 for r in cone)
        assert rl.search(Query(dataproduct_type="visibility")) == []


@pytest.mark.slow
def test_crash_after_upload_is_finished_and_directory_products(tmp_path, rucio_server, client, capsys):
    """A pending DID whose upload reached Rucio (the ingestor was killed before moving the files) is
    finished by the next pass without a second replica or rule; a directory product round-trips."""
    lake, ns = tmp_path / "lake", "crash"
    staging = lake / "staging" / ns
    make_product(staging, "c1.fits", ra=10, dec=10, mjd=MJD0, namespace=ns)
    ms = staging / "c2.ms"
    (ms / "sub").mkdir(parents=True)
    (ms / "table.dat").write_bytes(os.urandom(5000))
    (ms / "sub" / "x").write_bytes(b"x" * 100)
    doc = json.loads((staging / "c1.fits.meta").read_text())
    doc["name"], doc["meta"]["dataproduct_type"], doc["meta"]["access_estsize"] = "c2.ms", "visibility", 5
    (staging / "c2.ms.meta").write_text(json.dumps(doc))

    ing = Ingestor(lake, settle=0, backend="rucio", rse=RSE)
    cat = ing.open()
    try:   # what a SIGKILL after the upload leaves: journalled pending, uploaded, files still in staging
        cat.register_pending(json.loads((staging / "c1.fits.meta").read_text()), url="", nbytes=0)
        cat.store(ns, "c1.fits", staging / "c1.fits")
    finally:
        cat.close()
    report = ing.run_once()
    assert report.recovered == [f"{ns}:c1.fits"] and report.processed == [f"{ns}:c2.ms"]
    assert len(list(client.list_did_rules(ns, "c1.fits"))) == 1
    assert len(list(client.list_replicas([{"scope": ns, "name": "c1.fits"}]))) == 1
    assert (lake / "processed" / ns / "c1.fits").is_file() and not (staging / "c1.fits.meta").exists()

    out = tmp_path / "out"
    assert main(["lake", "get", f"{ns}:c2.ms", "--lake", "rucio", "--rse", RSE, "-o", str(out)]) in (0, None)
    assert (out / "c2.ms" / "table.dat").read_bytes() == (lake / "processed" / ns / "c2.ms" / "table.dat").read_bytes()
    got_meta = json.loads((out / "c2.ms.meta").read_text())
    assert got_meta["meta"] == doc["meta"] and got_meta["lifetime"] == doc["lifetime"]
    capsys.readouterr()
    assert main(["lake", "search", "--lake", "rucio", "--namespace", ns, "--type", "visibility",
                 "--format", "json"]) in (0, None)
    rows = json.loads(capsys.readouterr().out)
    assert [r["did"] for r in rows] == [f"{ns}:c2.ms"]
    assert rucio_server.password not in json.dumps(rows)
    shutil.rmtree(out)


def test_unreachable_rucio_and_missing_rse_are_clear_errors(tmp_path, capsys):
    cfg = tmp_path / "rucio.cfg"
    cfg.write_text("[client]\nrucio_host = http://127.0.0.1:1\nauth_host = http://127.0.0.1:1\n"
                   "auth_type = userpass\nusername = u\npassword = s3cret-pw\naccount = root\n"
                   f"auth_token_file_path = {tmp_path / 'token'}\nrequest_retries = 1\n")
    old = os.environ.get("RUCIO_CONFIG")
    _use_config(str(cfg))
    try:
        _check_clear_errors(tmp_path, capsys)
    finally:
        _use_config(old)


def _check_clear_errors(tmp_path, capsys):
    (tmp_path / "lake" / "staging").mkdir(parents=True)
    assert main(["lake", "ingest", str(tmp_path / "lake"), "--lake", "rucio"]) != 0
    err = capsys.readouterr().err
    assert "needs an RSE" in err and "Traceback" not in err
    assert main(["lake", "search", "--lake", "rucio", "--rse", "X"]) != 0
    err = capsys.readouterr().err
    assert "Rucio" in err and "rucio.cfg" in err and "Traceback" not in err and "s3cret-pw" not in err
    assert main(["lake", "ingest", str(tmp_path / "lake"), "--lake", "nosuch"]) != 0
    assert "the lake backends are local, rucio" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_mid_ingest_into_rucio_and_restart(tmp_path, rucio_server, client):
    """SIGKILL of a real `radioflow lake ingest --lake rucio` mid-way; the next pass reaches the state of
    an uninterrupted run: every DID once, one replica and one lifetime rule each, staging empty."""
    lake, ns = tmp_path / "lake", "killed"
    staging = lake / "staging" / ns
    for i in range(20):
        make_product(staging, f"k{i:02d}.fits", ra=20 + i, dec=-30, mjd=MJD0 + i, namespace=ns)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "radioflow", "lake", "ingest", str(lake), "--settle", "0",
                             "--lake", "rucio", "--rse", RSE], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    processed = lake / "processed" / ns
    deadline = time.time() + 120
    while time.time() < deadline and (len(list(processed.glob("*.meta"))) if processed.exists() else 0) < 5:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = len(list(staging.glob("*.meta")))
    assert 0 < left < 20, "killed mid-way"
    rep = Ingestor(lake, settle=0, backend="rucio", rse=RSE).run_once()
    assert rep.failed == [] and not any(staging.iterdir())
    assert sorted(p.name for p in processed.glob("*.fits")) == [f"k{i:02d}.fits" for i in range(20)]
    assert set(client.list_dids(ns, [{"name": "*"}], did_type="file")) == {f"k{i:02d}.fits" for i in range(20)}
    for i in range(20):
        name = f"k{i:02d}.fits"
        assert len(list(client.list_did_rules(ns, name))) == 1, name
        reps = list(client.list_replicas([{"scope": ns, "name": name}]))
        assert len(reps) == 1 and reps[0]["states"] == {RSE: "AVAILABLE"}, name
        assert client.get_metadata(ns, name, plugin="JSON")["obs_id"] == f"obs-{name}"
