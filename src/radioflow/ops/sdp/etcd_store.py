"""etcd configuration database (the production option), through etcd's v3 JSON gateway.

The client is ``etcd3gw`` (OpenStack, maintained, pure HTTP over ``requests``): the gRPC
client ``etcd3`` is unmaintained since 2020 and its generated protobuf modules fail to import
with protobuf >= 4, while the v3 gateway is part of every etcd >= 3.3 server. Revisions are
etcd's ``mod_revision``; ``create_all`` and ``replace`` are single etcd transactions.
Keys live under ``/radioflow/sdp/<namespace>/``.
"""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

from ...errors import UsageError
from .kv import KVStore, StoreError


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


class EtcdStore(KVStore):
    """:class:`KVStore` on an etcd v3 server, e.g. ``etcd://127.0.0.1:2379/namespace``."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        import etcd3gw

        parts = urlsplit(url)
        if parts.scheme not in ("etcd", "etcds") or not parts.hostname:
            raise UsageError(f"SDP store '{url}': an etcd store is etcd://HOST:PORT[/NAMESPACE].")
        self.url = url
        ns = parts.path.strip("/")
        self.root = "/radioflow/sdp/" + (ns + "/" if ns else "")
        protocol = "https" if parts.scheme == "etcds" else "http"
        self._client = etcd3gw.Etcd3Client(host=parts.hostname, port=parts.port or 2379, protocol=protocol,
                                           timeout=timeout)
        try:
            self._client.status()
        except Exception as exc:  # connection refused, timeouts, HTTP errors
            raise UsageError(f"Cannot reach the etcd SDP store at {parts.hostname}:{parts.port or 2379}: "
                             f"{exc.__class__.__name__} (is etcd running there? Or use --store sqlite:///PATH).") from None

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        from etcd3gw.exceptions import Etcd3Exception

        try:
            return fn(*args, **kw)
        except Etcd3Exception as exc:
            raise StoreError(f"etcd SDP store {self.url}: {exc.__class__.__name__} "
                             f"{(exc.detail_text or '')[:200]}".rstrip()) from None

    def _txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> bool:
        result = self._call(self._client.transaction, {"compare": compare, "success": success, "failure": []})
        return bool(result.get("succeeded", False))

    def get(self, key: str) -> tuple[dict[str, Any], int] | None:
        rows = self._call(self._client.get, self.root + key, metadata=True)
        if not rows:
            return None
        value, meta = rows[0]
        return json.loads(value), int(meta["mod_revision"])

    def scan(self, prefix: str) -> list[tuple[str, dict[str, Any], int]]:
        rows = self._call(self._client.get_prefix, self.root + prefix, sort_order="ascend", sort_target="key")
        n = len(self.root)
        out = []
        for value, meta in rows:
            key = meta["key"]
            key_s = key.decode("utf-8") if isinstance(key, (bytes, bytearray)) else str(key)
            out.append((key_s[n:], json.loads(value), int(meta["mod_revision"])))
        return out

    def create_all(self, items: dict[str, dict[str, Any]]) -> bool:
        compare = [{"key": _b64(self.root + k), "result": "EQUAL", "target": "CREATE", "create_revision": 0}
                   for k in items]
        success = [{"request_put": {"key": _b64(self.root + k), "value": _b64(json.dumps(v))}}
                   for k, v in items.items()]
        return self._txn(compare, success)

    def replace(self, key: str, value: dict[str, Any], revision: int) -> bool:
        k = _b64(self.root + key)
        return self._txn([{"key": k, "result": "EQUAL", "target": "MOD", "mod_revision": revision}],
                         [{"request_put": {"key": k, "value": _b64(json.dumps(value))}}])

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._txn([], [{"request_put": {"key": _b64(self.root + key), "value": _b64(json.dumps(value))}}])

    def delete(self, key: str) -> None:
        self._txn([], [{"request_delete_range": {"key": _b64(self.root + key)}}])

    def close(self) -> None:
        self._client.session.close()
