"""Source distributions the conformance tests read: fetched from PyPI once, cached between runs.

``sdist("stimela", "2.1.4")`` returns the path of ``stimela-2.1.4.tar.gz`` in the cache
directory (``$RADIOFLOW_CONFORMANCE_CACHE``, else ``$XDG_CACHE_HOME/radioflow-conformance``, else
``~/.cache/radioflow-conformance``), downloading it with ``pip download --no-deps --no-binary
:all:`` when it is not there yet. Without a network the tests skip with the reason; under CI
(``CI=true``) they fail instead, since there they must run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

#: The versions the conformance table was written against.
STIMELA = ("stimela", "2.1.4")
CULT_CARGO = ("cult-cargo", "0.2.1")


def cache_dir() -> Path:
    """Where downloaded source distributions are kept between runs."""
    explicit = os.environ.get("RADIOFLOW_CONFORMANCE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "radioflow-conformance"


def _cached(name: str, version: str, where: Path) -> Path | None:
    stem = f"{name.replace('-', '_')}-{version}"
    for cand in (where / f"{stem}.tar.gz", where / f"{name}-{version}.tar.gz"):
        if cand.is_file():
            return cand
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"conformance sources unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"conformance sources unavailable (no network?): {reason}")


def sdist(name: str, version: str) -> Path:
    """The cached ``name==version`` source tarball, downloaded from PyPI on first use."""
    where = cache_dir()
    found = _cached(name, version, where)
    if found is not None:
        return found
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "--timeout", "30", "-d", tmp, f"{name}=={version}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"'pip download {name}=={version}' did not finish: {exc}")
        if proc.returncode != 0:
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
            _unavailable(f"'pip download {name}=={version}' failed: {tail}")
        got = _cached(name, version, Path(tmp))
        if got is None:
            _unavailable(f"'pip download {name}=={version}' saved no {name}-{version}.tar.gz")
        assert got is not None
        final = where / got.name
        os.replace(got, final)   # atomic: a half-downloaded file is never seen under the final name
    return final


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack ``tarball`` under ``dest``; returns the top directory (``name-version/``)."""
    with tarfile.open(tarball) as tf:
        tf.extractall(dest, filter="data")
        top = tf.getnames()[0].split("/", 1)[0]
    return dest / top


def copy_tree(src: Path, dest: Path) -> Path:
    """A fresh copy of ``src`` at ``dest`` (a working directory runs may write into)."""
    shutil.copytree(src, dest)
    return dest
