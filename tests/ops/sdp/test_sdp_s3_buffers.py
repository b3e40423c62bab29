"""Buffer reservations as ``s3://`` prefixes on a real S3 server (SeaweedFS on 127.0.0.1): the
batch_imaging PB writes its products there, ``sdp buffers`` shows reserved and used bytes,
products stay after the PB ends, and the S3 secret appears in no output, record or log."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from radioflow.ops.sdp import buffers as bufmod
from radioflow.ops.sdp import example_path
from radioflow.ops.sdp.configdb import open_store
from radioflow.vis.location import Location

SRC = str(Path(__file__).resolve().parents[3] / "src")
SECRET = "radioflow-test-secret"     # tests/conftest.py's S3 server secret key


def _run(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "300", "RADIOFLOW_CACHE__DIR": str(cwd / "cache"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "radioflow", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_s3_reservation_plan_materialise_and_usage(s3_prefix):
    """A reservation on S3: a prefix with a marker object; used bytes count the products only."""
    root = bufmod.normalise_root(s3_prefix + "/")
    assert root == s3_prefix
    recs = bufmod.plan("pb-x", [("buf-a", 5 << 30), ("buf-b", 1 << 20)], root, others=[])
    assert [r["location"] for r in recs] == [f"{s3_prefix}/buf-a", f"{s3_prefix}/buf-b"]
    assert recs[0]["size"] == 5 << 30            # no free-space limit on an object store
    bufmod.materialise(recs)
    loc = Location.parse(recs[0]["location"])
    marker = json.loads(loc.fs.cat_file(loc.join(bufmod.MARKER).path))
    assert marker == {k: recs[0][k] for k in ("name", "pb_id", "size", "created")}
    assert bufmod.used_bytes(recs[0]["location"]) == 0
    loc.fs.pipe_file(loc.join("img/a.fits").path, b"x" * 1000)
    loc.fs.pipe_file(loc.join("b.png").path, b"y" * 234)
    assert bufmod.used_bytes(recs[0]["location"]) == 1234
    assert bufmod.used_bytes(f"{s3_prefix}/nothing-here") == 0
    assert not [p for p in Path.cwd().glob("s3:*")]


def test_s3_reservation_needs_room_for_its_local_staging_copy(s3_prefix, tmp_path):
    """batch_imaging writes S3 buffers through a local staging copy: that disk must hold them."""
    stage = bufmod.stage_dir(tmp_path, "pb-z")
    assert stage == tmp_path.absolute() / ".radioflow" / "sdp" / "stage" / "pb-z"
    with pytest.raises(bufmod.BufferSpaceError, match=rf"they need 1.0 PiB but {re.escape(str(stage))} has .* free"):
        bufmod.plan("pb-z", [("big", 1 << 50)], s3_prefix, others=[], stage=stage)
    assert len(bufmod.plan("pb-z", [("big", 1 << 50)], s3_prefix, others=[])) == 1   # no stage: no limit


def test_unwritable_s3_root_is_a_clear_error(s3_prefix, monkeypatch):
    """Wrong credentials: the reservation is refused with a message naming the root, not the keys."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz")
    with pytest.raises(bufmod.BufferSpaceError, match=rf"buffer root {s3_prefix}/p cannot be written "
                                                       r"\(.*check the bucket") as err:
        bufmod.plan("pb-y", [("b", 10)], f"{s3_prefix}/p", others=[])
    assert "not-the-secret-xyz" not in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(bufmod.BufferSpaceError, match="use a local directory or s3://"):
        bufmod.normalise_root("memory://x")


@pytest.mark.slow
def test_batch_imaging_pb_writes_its_products_to_s3_buffers(tmp_path, s3_prefix):
    """``submit --wait --buffer-root s3://…``: the PB finishes with its images under its image
    buffer's prefix; ``sdp buffers`` reports them; nothing lands in a local ``s3:`` folder."""
    sbi = example_path("sbi-assign-resources.json")
    params = json.loads(sbi.read_text())["processing_blocks"][0]["parameters"]
    res = _run("sdp", "submit", str(sbi), "--wait", "--buffer-root", s3_prefix, cwd=tmp_path, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    img = Location.parse(f"{s3_prefix}/{params['buffer_img']}")
    vis = Location.parse(f"{s3_prefix}/{params['buffer_vis']}")
    assert img.fs.exists(img.join("band-restored.fits").path)
    assert vis.fs.exists(vis.join("sky.csv").path)
    local = tmp_path / "band.fits"
    img.join("band-restored.fits").download(local)
    data = fits.getdata(local)
    assert data.shape[-2:] == (params["npix"], params["npix"]) and float(abs(data).max()) > 0
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith("s3:")]

    listing = _run("sdp", "buffers", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {b["name"]: b for b in json.loads(listing.stdout)}
    row = rows[params["buffer_img"]]
    assert row["location"] == img.url and row["active"] is False      # the PB ended; products kept
    expected = sum(i["size"] for k, i in img.fs.find(img.path, detail=True).items() if not k.endswith(bufmod.MARKER))
    assert row["used"] == expected > 0 and row["size"] > 0
    text = _run("sdp", "buffers", cwd=tmp_path).stdout
    assert f"ended  {img.url}" in text and "used" in text

    db = open_store(workdir=tmp_path)
    pb = db.pbs()[0]
    assert pb["state"] == "FINISHED" and pb["buffer_root"] == s3_prefix
    logs = "\n".join(ln["message"] for ln in db.logs(pb["id"]))
    db.close()
    assert f"at {img.url}" in logs
    everything = [res.stdout, res.stderr, listing.stdout, logs, *(p.read_bytes().decode(errors="replace")
                  for p in (tmp_path / ".radioflow").rglob("*") if p.is_file())]
    assert not [t for t in everything if SECRET in t]


@pytest.mark.slow
def test_unwritable_s3_buffer_root_fails_the_pb_with_the_reason(tmp_path, s3_prefix):
    """The buffer root from the configuration (env ``RADIOFLOW_SDP__BUFFER_ROOT``); wrong S3
    credentials: the PB FAILS with the reason and no key is printed."""
    sbi = example_path("sbi-assign-resources.json")
    res = _run("sdp", "submit", str(sbi), "--wait", cwd=tmp_path, timeout=120,
               env={"RADIOFLOW_SDP__BUFFER_ROOT": f"{s3_prefix}/buffers", "AWS_SECRET_ACCESS_KEY": "not-the-secret-xyz"})
    assert res.returncode == 1
    db = open_store(workdir=tmp_path)
    pb = db.pbs()[0]
    db.close()
    assert pb["state"] == "FAILED"
    assert f"buffer root {s3_prefix}/buffers cannot be written" in pb["reason"]
    assert "not-the-secret-xyz" not in res.stdout + res.stderr + pb["reason"]
