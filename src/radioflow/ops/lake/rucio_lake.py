"""The Rucio datalake backend (SRCNet's production lake) through ``rucio-clients``.

It has the local :class:`~radioflow.ops.lake.catalogue.Catalogue`'s interface, so the ingestor's
state machine (staging -> processed/failed_processing, recovery, idempotence) is the same code
for both. A product becomes the file DID ``namespace:name`` uploaded to the RSE (Rucio's
UploadClient: replica, adler32/md5, a replication rule whose lifetime is the ``.meta``'s), with
its ObsCore fields as DID metadata (Rucio's JSON metadata plugin, so ``list_dids`` filters on
them server-side) and, with ``dataset_name``, attached to that dataset. A directory product (a
Measurement Set) is uploaded as one uncompressed tar file (metadata ``rf_packing: tar``) and
unpacked by :meth:`RucioLake.download`. Crash safety: a DID is journalled ``pending`` in a
SQLite journal beside the staging area before anything reaches Rucio, and every step of
:meth:`store` checks what Rucio has already, so finishing a pending DID again is harmless.
Expiry is Rucio's own (rule lifetimes; its judge-cleaner and reaper daemons), never the
ingestor's. Server URL, account and credentials come from Rucio's standard ``rucio.cfg``
(``RUCIO_CONFIG``) and environment; they are never printed.
"""
from __future__ import annotations

import json
import logging
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ...errors import RadioflowError, UsageError
from .catalogue import OBSCORE_COLUMNS, SPEED_OF_LIGHT, Catalogue, Did, Query, angular_distance

JOURNAL_NAME = "rucio-journal.db"


class _RucioLogger:
    """A logger for Rucio's upload/download clients: with tracing off they both call it and use its
    ``.log`` (rucio-clients 41), so it must be a callable with a ``log`` method."""

    def __init__(self) -> None:
        self._log = logging.getLogger("radioflow.lake.rucio")

    def __call__(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        self._log.log(level, msg, *args, **kw)

    log = __call__


_LOG = _RucioLogger()
#: radioflow's own DID metadata keys (Rucio's DID-column keys such as ``lifetime`` are avoided).
LIFETIME_KEY, DATASET_KEY, PACKING_KEY = "rf_lifetime", "rf_dataset_name", "rf_packing"


def _client() -> Any:
    """A Rucio client from the standard configuration; a clear error when it is missing or refused."""
    try:
        from rucio.client import Client
    except ImportError:
        raise UsageError("The Rucio lake needs rucio-clients: pip install 'radioflow[rucio]'.") from None
    try:
        return Client()
    except Exception as exc:    # Rucio raises many types for a missing/bad config or refused credentials
        raise UsageError(f"Cannot connect to Rucio ({type(exc).__name__}): check rucio.cfg (RUCIO_CONFIG) "
                         f"and the RUCIO_* environment variables.") from None


@contextmanager
def rucio_errors() -> Iterator[None]:
    """Rucio's refusals and an unreachable server as one-paragraph errors (no traceback, no token)."""
    try:
        yield
    except (RadioflowError, KeyboardInterrupt):
        raise
    except Exception as exc:
        module = type(exc).__module__
        if not module.startswith(("rucio", "requests", "urllib3")):
            raise
        text = " ".join(str(exc).split())[:400]
        raise RadioflowError(f"Rucio: {type(exc).__name__}: {text} (server and account from rucio.cfg / "
                             f"RUCIO_CONFIG).") from None


class RucioLake:
    """DIDs in Rucio on one RSE; pending DIDs journalled in ``<root>/rucio-journal.db``."""

    def __init__(self, root: str | Path | None, rse: str | None, client: Any = None) -> None:
        self._rse = rse
        self.client = client if client is not None else _client()
        self.journal = Catalogue(Path(root) / JOURNAL_NAME) if root is not None else None
        self._scopes: set[str] | None = None

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    def __enter__(self) -> "RucioLake":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rse(self) -> str:
        """The RSE replicas are written to (ingest) and read from (get); searches need none."""
        if not self._rse:
            raise UsageError("The Rucio lake needs an RSE: --rse NAME or config lake.rse (RADIOFLOW_LAKE__RSE).")
        return self._rse

    # -- the ingestor's interface ---------------------------------------------------------
    def state(self, namespace: str, name: str) -> str | None:
        """``pending`` (journalled), ``available`` (a DID in Rucio) or None."""
        if self.journal is not None and self.journal.state(namespace, name) is not None:
            return "pending"
        return "available" if self._exists(namespace, name) else None

    def register_pending(self, doc: dict[str, Any], url: str, nbytes: int, rse: str = "",
                         now: float | None = None) -> None:
        self._journal().register_pending(doc, url=url, nbytes=nbytes, rse=self.rse, now=now)

    def replica(self, namespace: str, name: str) -> str:
        return f"rucio://{self.rse}/{namespace}:{name}"

    def mark_available(self, namespace: str, name: str) -> None:
        self._journal().forget(namespace, name)

    def forget(self, namespace: str, name: str) -> None:
        self._journal().forget(namespace, name)

    def pending(self) -> list[Did]:
        return self._journal().pending()

    def expired(self, now: float | None = None) -> list[Did]:
        """Always empty: Rucio expires rules and deletes replicas itself."""
        return []

    def store(self, namespace: str, name: str, local: Path) -> None:
        """Upload a pending DID's product with its replica, rule (lifetime) and metadata; idempotent."""
        pending = [d for d in self._journal().pending() if (d.namespace, d.name) == (namespace, name)]
        if not pending:
            return
        doc = pending[0]
        lifetime = max(1, int(round(doc.expires - doc.created)))
        self._ensure_scope(namespace)
        if not self._has_replica(namespace, name):
            self._upload(namespace, name, local, lifetime)
        meta = {k: v for k, v in doc.meta.items() if v is not None}
        meta[LIFETIME_KEY] = lifetime
        if doc.dataset_name:
            meta[DATASET_KEY] = doc.dataset_name
        if local.is_dir():
            meta[PACKING_KEY] = "tar"
        self.client.set_metadata_bulk(scope=namespace, name=name, meta=meta)
        if not any(r["rse_expression"] == self.rse for r in self.client.list_did_rules(namespace, name)):
            self.client.add_replication_rule([{"scope": namespace, "name": name}], 1, self.rse, lifetime=lifetime)
        if doc.dataset_name:
            self._attach(namespace, doc.dataset_name, name)

    # -- search and get -------------------------------------------------------------------
    def search(self, q: Query, limit: int | None = None, now: float | None = None) -> list[dict[str, Any]]:
        """ObsCore rows of the DIDs matching ``q``: the ranges and equalities are Rucio metadata filters
        (server-side); a cone is a declination band there, then the exact distance here."""
        filters: dict[str, Any] = {}
        for key, value in (("dataproduct_type", q.dataproduct_type), ("calib_level", q.calib_level),
                           ("obs_id", q.obs_id)):
            if value is not None:
                filters[key] = value
        if q.t_start is not None:
            filters["t_max.gte"] = q.t_start
        if q.t_end is not None:
            filters["t_min.lte"] = q.t_end
        if q.freq_min is not None:
            filters["em_min.lte"] = SPEED_OF_LIGHT / q.freq_min
        if q.freq_max is not None:
            filters["em_max.gte"] = SPEED_OF_LIGHT / q.freq_max
        cone = q.ra is not None or q.dec is not None or q.radius is not None
        if cone:
            if q.ra is None or q.dec is None or q.radius is None or q.radius <= 0:
                raise UsageError("A cone search needs --ra, --dec and a positive --radius (degrees).")
            filters["s_dec.gte"], filters["s_dec.lte"] = q.dec - q.radius, q.dec + q.radius
        if not filters:
            filters["dataproduct_type"] = "*"     # every product with ObsCore metadata
        scopes = [q.namespace] if q.namespace else sorted(self.client.list_scopes())
        dids = [{"scope": s, "name": d} for s in scopes if s in self._scope_set()
                for d in self.client.list_dids(s, [filters], did_type="file")]
        rows = []
        for meta in self._metadata(dids):
            row: dict[str, Any] = {"namespace": meta["scope"], "name": meta["name"],
                                   **{c: meta.get(c) for c in OBSCORE_COLUMNS}}
            row["did"] = f"{row['namespace']}:{row['name']}"
            row["url"] = f"rucio://{row['did']}"
            rows.append(row)
        rows.sort(key=lambda r: (r["t_min"] if r["t_min"] is not None else 0.0, r["namespace"], r["name"]))
        if cone:
            assert q.ra is not None and q.dec is not None and q.radius is not None
            for r in rows:
                r["distance"] = angular_distance(q.ra, q.dec, r["s_ra"], r["s_dec"])
            rows = sorted((r for r in rows if r["distance"] <= q.radius), key=lambda r: r["distance"])
        return rows[:limit] if limit else rows

    def get(self, did: str) -> Did:
        """The DID ``namespace:name`` with its metadata; a clear error if Rucio does not know it."""
        ns, sep, name = did.partition(":")
        if not sep or not ns or not name:
            raise UsageError(f"'{did}' is not a DID: write NAMESPACE:NAME.")
        if not self._exists(ns, name):
            raise UsageError(f"No DID {did} in Rucio (unknown, expired or not yet ingested).")
        info = self.client.get_did(ns, name)
        meta = next(iter(self._metadata([{"scope": ns, "name": name}])))
        lifetime = int(meta.get(LIFETIME_KEY) or 0)
        created = info.get("created_at")
        created_ts = created.timestamp() if hasattr(created, "timestamp") else 0.0
        obscore = {c: meta[c] for c in OBSCORE_COLUMNS if meta.get(c) is not None}
        return Did(namespace=ns, name=name, state="available", bytes=info.get("bytes"), created=created_ts,
                   expires=created_ts + lifetime, dataset_name=meta.get(DATASET_KEY),
                   url=f"rucio://{did}", meta={**obscore, PACKING_KEY: meta.get(PACKING_KEY)})

    def download(self, did: str, dest: Path) -> Path:
        """Download a DID through Rucio into ``dest`` (unpacking a tarred directory product), with its
        ``.meta`` rebuilt from the DID metadata; returns the product's path."""
        from rucio.client.downloadclient import DownloadClient

        from .meta import META_SUFFIX

        item = self.get(did)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".rucio-get-") as tmp:
            DownloadClient(client=self.client, logger=_LOG, tracing=False).download_dids(
                [{"did": did, "base_dir": tmp, "no_subdir": True, **({"rse": self._rse} if self._rse else {})}])
            got, target = Path(tmp) / item.name, dest / item.name
            staged = Path(tmp) / f".{item.name}.unpacked"
            if item.meta.get(PACKING_KEY) == "tar":
                with tarfile.open(got) as tar:
                    tar.extractall(staged, filter="data")
                got = staged / item.name
            if target.is_dir():
                shutil.rmtree(target)
            got.replace(target)
        doc = {"namespace": item.namespace, "name": item.name, "lifetime": int(item.expires - item.created),
               "meta": {k: v for k, v in item.meta.items() if k != PACKING_KEY}}
        if item.dataset_name:
            doc["dataset_name"] = item.dataset_name
        meta_file = dest / (item.name + META_SUFFIX)
        tmp_meta = meta_file.with_name(f".{meta_file.name}.tmp")
        tmp_meta.write_text(json.dumps(doc, indent=2) + "\n")
        tmp_meta.replace(meta_file)
        return target

    # -- internals ------------------------------------------------------------------------
    def _journal(self) -> Catalogue:
        if self.journal is None:
            raise UsageError("Ingesting into Rucio needs the lake root (its pending-DID journal lives there).")
        return self.journal

    def _scope_set(self) -> set[str]:
        if self._scopes is None:
            self._scopes = set(self.client.list_scopes())
        return self._scopes

    def _ensure_scope(self, namespace: str) -> None:
        """Create the scope (namespace) for the client's account when it does not exist yet."""
        if namespace in self._scope_set():
            return
        from rucio.common.exception import Duplicate

        try:
            self.client.add_scope(self.client.account, namespace)
        except Duplicate:
            pass
        self._scope_set().add(namespace)

    def _exists(self, namespace: str, name: str) -> bool:
        from rucio.common.exception import DataIdentifierNotFound, ScopeNotFound

        if namespace not in self._scope_set():
            return False
        try:
            self.client.get_did(namespace, name)
        except (DataIdentifierNotFound, ScopeNotFound):
            return False
        return True

    def _has_replica(self, namespace: str, name: str) -> bool:
        if not self._exists(namespace, name):
            return False
        for rep in self.client.list_replicas([{"scope": namespace, "name": name}], all_states=True):
            if rep.get("states", {}).get(self.rse) == "AVAILABLE":
                return True
        return False

    def _upload(self, namespace: str, name: str, local: Path, lifetime: int) -> None:
        """UploadClient: the file (a directory tarred first) to the RSE, its replica and a lifetime rule."""
        from rucio.client.uploadclient import UploadClient

        with tempfile.TemporaryDirectory(prefix=".rucio-up-", dir=local.parent) as tmp:
            path = local
            if local.is_dir():
                path = Path(tmp) / name
                with tarfile.open(path, "w") as tar:
                    tar.add(local, arcname=name)
            UploadClient(self.client, logger=_LOG, tracing=False).upload([{
                "path": str(path), "rse": self.rse, "did_scope": namespace, "did_name": name,
                "lifetime": lifetime, "register_after_upload": True}])

    def _attach(self, namespace: str, dataset: str, name: str) -> None:
        from rucio.common.exception import DataIdentifierAlreadyExists, Duplicate, FileAlreadyExists

        try:
            self.client.add_dataset(namespace, dataset)
        except DataIdentifierAlreadyExists:
            pass
        try:
            self.client.attach_dids(namespace, dataset, [{"scope": namespace, "name": name}])
        except (Duplicate, FileAlreadyExists):
            pass

    def _metadata(self, dids: list[dict[str, str]]) -> Iterable[dict[str, Any]]:
        """JSON-plugin metadata of many DIDs (one request per 500), with ``scope`` and ``name``."""
        for i in range(0, len(dids), 500):
            chunk = dids[i:i + 500]
            got = {(m["scope"], m["name"]): m for m in self.client.get_metadata_bulk(chunk, plugin="JSON")}
            for d in chunk:
                yield {**got.get((d["scope"], d["name"]), {}), "scope": d["scope"], "name": d["name"]}
