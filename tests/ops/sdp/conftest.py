"""SDP fixtures: a real etcd server on 127.0.0.1 (Debian package ``etcd-server``) for the session,
and ``store_url``, parametrised so every store test runs on SQLite and on etcd."""
from __future__ import annotations

import uuid

import pytest
from sdp_etcd import start_etcd, stop_etcd


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory):
    """``http://127.0.0.1:PORT`` of an etcd started for the session (data in a temp dir), then stopped."""
    proc, url = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield url
    stop_etcd(proc)


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request, tmp_path) -> str:
    """A fresh configuration database: a SQLite file, or a new namespace on the test etcd."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sdp.db'}"
    server = request.getfixturevalue("etcd_server")
    return f"etcd://{server.split('://', 1)[1]}/t{uuid.uuid4().hex[:10]}"
