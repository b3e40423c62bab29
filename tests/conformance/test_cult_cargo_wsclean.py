"""A chain through cult-cargo's wsclean cab: the next step gets ``=steps.image.restored``.

cult-cargo's wsclean cab declares its images through a ``dynamic_schema`` (implicit outputs such
as ``restored: {current.prefix}-image.fits``). The chain runs for real: an MS made by
``radioflow simulate``, Debian's ``wsclean``, then a step listing the restored image.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conformance_sources import CULT_CARGO, extract, sdist

from radioflow.run.api import prepare_run

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("wsclean") is None, reason="wsclean not installed")]

# cult-cargo's schema function imports scabha.cargo; radioflow's scabha stand-ins make it importable
pytest.importorskip("radioflow.stimela_compat", reason="no scabha stand-ins (radioflow.stimela_compat) to "
                    "import cult-cargo's wsclean dynamic_schema")


@pytest.fixture(scope="module")
def cult_cargo_path(tmp_path_factory) -> Path:
    top = extract(sdist(*CULT_CARGO), tmp_path_factory.mktemp("cult-cargo"))
    sys.path.insert(0, str(top))
    yield top
    sys.path.remove(str(top))


@pytest.fixture(scope="module")
def small_ms(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ms") / "sim.ms"
    subprocess.run([sys.executable, "-m", "radioflow", "simulate", "-o", str(path), "--rmax", "300",
                    "--ntimes", "3", "--nchan", "2", "--nsources", "3", "--seed", "1"],
                   check=True, capture_output=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return path


RECIPE = """\
    _include: (cultcargo)wsclean.yml
    cabs:
      list-file:
        command: ls
        inputs:
          file: {dtype: File, required: true, policies: {positional: true}}
        outputs:
          listing: {dtype: str}
        wranglers:
          '^(?P<listing>.*-image[.]fits)$': PARSE_OUTPUT:listing:str
    chain:
      inputs:
        ms: MS
      steps:
        image:
          cab: wsclean
          params:
            ms: =recipe.ms
            prefix: out/img
            size: 64
            scale: 60asec
            niter: 10
            {extra}
        show:
          cab: list-file
          params:
            file: =steps.image.{output}
"""


@pytest.mark.parametrize("extra,output,restored", [
    ("", "restored", "out/img-image.fits"),
    ("nchan: 2", "restored.mfs", "out/img-MFS-image.fits"),      # multi-channel: per-band list + MFS
])
def test_restored_image_reaches_the_next_step(cult_cargo_path, small_ms, tmp_path, monkeypatch, extra, output,
                                              restored):
    monkeypatch.chdir(tmp_path)   # GLOB reads the process's working directory (as Stimela's)
    recipe = tmp_path / "chain.yml"
    recipe.write_text(textwrap.dedent(RECIPE).replace("{extra}", extra).replace("{output}", output))
    (tmp_path / "sim.ms").symlink_to(small_ms)
    outcome = prepare_run([str(recipe), "chain", "ms=sim.ms"], workdir=str(tmp_path)).runner().run()
    assert outcome.status == "ok", outcome
    assert [(s.fqname, s.status) for s in outcome.steps] == [("chain.image", "ok"), ("chain.show", "ok")]
    log = (tmp_path / ".radioflow" / "logs" / outcome.run_id / "chain.show.log").read_text()
    assert f"# command: ls {restored}\n" in log
    assert (tmp_path / restored).is_file()
    if "nchan" in extra:   # the per-band list is globbed after wsclean wrote the images
        image_log = (tmp_path / ".radioflow" / "logs" / outcome.run_id / "chain.image.log").read_text()
        per_band = "['out/img-0000-image.fits', 'out/img-0001-image.fits']"
        assert f"#   restored.per-band = {per_band}\n" in image_log.split("# outputs:")[1]
    assert f"#   listing = '{restored}'\n" in log.split("# outputs:")[1]   # ls printed the path it was given
