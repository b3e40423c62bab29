"""The key-value interface both configuration databases implement (SQLite and etcd).

Values are JSON objects. Every key carries a revision that changes on each write, so callers
update records with compare-and-swap (``replace``) and create groups of keys atomically
(``create_all``): that is all the SDP control plane needs for two controllers and any number of
CLIs to share state without losing an update.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ...errors import RadioflowError


class StoreError(RadioflowError):
    """The configuration database could not be reached or written (transient: a controller
    retries; a CLI reports it in one paragraph)."""


class KVStore(ABC):
    """A transactional key-value store with per-key revisions."""

    url: str

    @abstractmethod
    def get(self, key: str) -> tuple[dict[str, Any], int] | None:
        """(value, revision) of ``key``, or None."""

    @abstractmethod
    def scan(self, prefix: str) -> list[tuple[str, dict[str, Any], int]]:
        """(key, value, revision) of every key starting with ``prefix``, in key order."""

    @abstractmethod
    def create_all(self, items: dict[str, dict[str, Any]]) -> bool:
        """Write every item if none of the keys exists yet (all or nothing); False otherwise."""

    @abstractmethod
    def replace(self, key: str, value: dict[str, Any], revision: int) -> bool:
        """Write ``key`` if its revision is still ``revision``; False when someone else wrote it."""

    @abstractmethod
    def put(self, key: str, value: dict[str, Any]) -> None:
        """Write ``key`` unconditionally (append-only records such as log lines)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
