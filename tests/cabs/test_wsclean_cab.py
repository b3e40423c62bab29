"""The ``wsclean`` cab running Debian's WSClean on MSs written by ``radioflow simulate``: several
datasets imaged jointly, an S3 MS staged in and the FITS uploaded to S3, a Zarr dataset converted,
and a missing binary named."""
from __future__ import annotations

import pytest
from cab_sim import copy_ms

from radioflow.cabs import wsclean as cab
from radioflow.errors import UsageError
from radioflow.science.fits import read_fits_image
from radioflow.vis.convert import convert

pytestmark = pytest.mark.skipif(cab.shutil.which("wsclean") is None, reason="wsclean not installed")
OPTS = dict(size=64, scale="240asec", niter=200, weight="briggs 0", multiscale=True, auto_mask=5.0,
            auto_threshold=3.0, mgain=0.8, threads=1)


def test_two_local_mss_imaged_jointly(sim, tmp_path):
    a, b = copy_ms(sim, "clean.ms", tmp_path / "a"), copy_ms(sim, "clean.ms", tmp_path / "b")
    out = cab.wsclean([a, b], str(tmp_path / "img" / "joint"), **OPTS)
    image, header = read_fits_image(out["restored"])
    assert out["restored"] == str(tmp_path / "img" / "joint-image.fits")
    assert {"residual", "model", "dirty", "psf"} <= set(out)
    assert out["peak"] == pytest.approx(2.5, rel=0.02) == float(image.max())
    single = cab.wsclean([a], str(tmp_path / "img" / "one"), **OPTS)
    assert single["peak"] == pytest.approx(out["peak"], rel=1e-3)   # the same source, twice the data


def test_s3_ms_in_and_fits_out(sim, tmp_path, s3_prefix):
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.put(str(sim / "clean.ms") + "/", f"{s3_prefix}/clean.ms".removeprefix("s3://"), recursive=True)
    out = cab.wsclean([f"{s3_prefix}/clean.ms"], f"{s3_prefix}/images/img", **OPTS)
    assert out["restored"] == f"{s3_prefix}/images/img-image.fits"
    names = sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{s3_prefix}/images".removeprefix("s3://")))
    assert names == ["img-dirty.fits", "img-image.fits", "img-model.fits", "img-psf.fits", "img-residual.fits"]
    fs.get(out["restored"].removeprefix("s3://"), str(tmp_path / "r.fits"))
    assert float(read_fits_image(tmp_path / "r.fits")[0].max()) == pytest.approx(2.5, rel=0.02)
    assert not (tmp_path / "s3:").exists()


def test_zarr_dataset_is_converted(sim, tmp_path):
    zarr = convert(str(sim / "clean.ms"), str(tmp_path / "clean.zarr"))
    out = cab.wsclean([zarr], str(tmp_path / "z"), column="DATA", **OPTS)
    assert out["peak"] == pytest.approx(2.5, rel=0.02)
    assert not (tmp_path / "clean.ms").exists()      # the conversion was staged, not left behind


def test_missing_ms_and_missing_binary_are_named(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="parameter 'ms'"):
        cab.wsclean([str(tmp_path / "none.ms")], str(tmp_path / "x"), **OPTS)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="'wsclean' was not found"):
        cab.wsclean([str(tmp_path / "none.ms")], str(tmp_path / "x"), **OPTS)


def test_update_model_of_a_staged_copy_is_refused(tmp_path):
    """A Zarr dataset or remote MS is imaged as a local copy: its MODEL_DATA would be thrown away."""
    for ms in (str(tmp_path / "obs.zarr"), "s3://bucket/obs.ms"):
        with pytest.raises(UsageError, match="Parameter 'update-model-required'.*thrown"):
            cab.wsclean([ms], str(tmp_path / "x"), update_model_required=True, **OPTS)
