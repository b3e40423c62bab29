"""Fixtures of the cab tests: small MSs written by ``radioflow simulate`` (session scope)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cab_sim import ATEAM, FIELD, NOISE


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    (tmp / "field.csv").write_text(FIELD)
    (tmp / "ateam.csv").write_text(ATEAM)
    (tmp / "all.csv").write_text(FIELD + ATEAM.splitlines()[1] + "\n")
    for name, sky, noise in (("obs.ms", "all.csv", NOISE), ("clean.ms", "field.csv", 0.0),
                             ("field.ms", "field.csv", NOISE)):
        args = ["simulate", "-o", name, "--rmax", "100", "--nchan", "32", "--ntimes", "40", "--sky", sky]
        if noise:
            args += ["--noise-sigma", str(noise)]
        r = subprocess.run([sys.executable, "-m", "radioflow", *args], cwd=tmp, capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "200"}, timeout=300)
        assert r.returncode == 0, r.stderr
    return tmp
