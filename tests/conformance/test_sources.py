"""Fetching the conformance sources: cached, and offline a clear skip (a failure under CI)."""
from __future__ import annotations

import pytest
from conformance_sources import cache_dir, sdist

OFFLINE = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2",
           "PIP_FIND_LINKS": ""}


def _offline(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RADIOFLOW_CONFORMANCE_CACHE", str(tmp_path / "cache"))
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RADIOFLOW_CONFORMANCE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "radioflow-conformance"


def test_cached_tarball_is_used_without_network(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "stimela-9.9.9.tar.gz").write_bytes(b"x")
    assert sdist("stimela", "9.9.9") == tmp_path / "cache" / "stimela-9.9.9.tar.gz"


def test_offline_skips_with_reason(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no network\?.*pip download stimela==9\.9\.9"):
        sdist("stimela", "9.9.9")


def test_offline_fails_under_ci(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="unavailable under CI"):
        sdist("stimela", "9.9.9")
