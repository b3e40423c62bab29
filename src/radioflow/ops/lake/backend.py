"""What the ingestor and ``lake search|get`` need from a lake, and how one is chosen.

Two backends share this interface: the local SQLite :class:`~radioflow.ops.lake.catalogue.Catalogue`
(default) and :class:`~radioflow.ops.lake.rucio_lake.RucioLake` (SRCNet's production lake), so the
ingest state machine is one piece of code. The backend comes from ``--lake`` or config
``lake.backend`` (``RADIOFLOW_LAKE__BACKEND``); Rucio's RSE from ``--rse`` or ``lake.rse``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ...errors import UsageError
from .catalogue import CATALOGUE_NAME, Catalogue, Did, Query

BACKENDS = ("local", "rucio")


class Lake(Protocol):
    """A datalake backend: pending/available DIDs, their replicas, search."""

    def state(self, namespace: str, name: str) -> str | None: ...
    def register_pending(self, doc: dict[str, Any], url: str, nbytes: int, rse: str = ...,
                         now: float | None = None) -> None: ...
    def replica(self, namespace: str, name: str) -> str: ...
    def store(self, namespace: str, name: str, local: Path) -> None: ...
    def mark_available(self, namespace: str, name: str) -> None: ...
    def forget(self, namespace: str, name: str) -> None: ...
    def pending(self) -> list[Did]: ...
    def expired(self, now: float | None = None) -> list[Did]: ...
    def search(self, q: Query, limit: int | None = None, now: float | None = None) -> list[dict[str, Any]]: ...
    def get(self, did: str) -> Did: ...
    def close(self) -> None: ...


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UsageError(f"--lake {backend}: the lake backends are {', '.join(BACKENDS)}.")
    return backend


def open_lake(root: Path | None, backend: str = "local", rse: str | None = None) -> Lake:
    """The lake at ``root``: its ``catalogue.db`` (local) or Rucio with its journal under ``root``."""
    if check_backend(backend) == "rucio":
        from .rucio_lake import RucioLake

        return RucioLake(root, rse)
    if root is None:
        raise UsageError("The local lake needs its root directory.")
    return Catalogue(root / CATALOGUE_NAME)
