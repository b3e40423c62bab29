"""Ingest data products from ``ROOT/staging/<namespace>/`` into the local lake at ``ROOT``.

A product ``X`` (file or directory) is taken when ``X.meta`` is there too, both have been
unchanged for ``settle`` seconds, the ``.meta`` is valid (JSON Schema, its namespace is the
directory's, its name the file's) and the product has the size the ``.meta`` announces
(``access_estsize``): a product still being copied waits. Then it is registered (DID
``pending``), moved with its ``.meta`` to ``processed/<namespace>/`` (its replica) and marked
``available``. With ``rse_url`` (``s3://bucket/prefix``) the replica is an upload to
``<rse_url>/<namespace>/<name>`` made before the DID becomes available (the local copy still
goes to ``processed/``). A product that cannot be taken goes to ``failed_processing/<namespace>/`` with
``<name>.reason``. One ingestor at a time (a lock file); after a crash the next pass finishes
the pending DIDs first, so a SIGKILL at any point loses or duplicates nothing. With
``backend="rucio"`` the same state machine registers into Rucio instead of ``catalogue.db``
(:mod:`radioflow.ops.lake.rucio_lake`: upload to ``rse``, metadata, lifetime rule).
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ...errors import UsageError
from .backend import Lake, check_backend, open_lake
from .meta import META_SUFFIX, meta_problems

STAGING, PROCESSED, FAILED = "staging", "processed", "failed_processing"
REASON_SUFFIX = ".reason"


@dataclass
class IngestReport:
    """What one pass did."""

    processed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.processed)} processed, {len(self.failed)} failed, {len(self.waiting)} waiting, "
                f"{len(self.recovered)} recovered, {len(self.expired)} expired")


def _tree_stats(path: Path) -> tuple[int, float]:
    """Bytes and newest modification time of a file or of every file and directory under a directory."""
    if path.is_dir():
        entries = [path, *path.rglob("*")]
        return (sum(p.stat().st_size for p in entries if p.is_file()), max(p.stat().st_mtime for p in entries))
    st = path.stat()
    return st.st_size, st.st_mtime


class Ingestor:
    """One lake root: ``staging/``, ``processed/``, ``failed_processing/`` and ``catalogue.db``."""

    def __init__(self, root: str | os.PathLike[str], *, settle: float = 2.0, incomplete_timeout: float = 3600.0,
                 throttle: float = 0.0, clock: Callable[[], float] = time.time, rse_url: str | None = None,
                 backend: str = "local", rse: str | None = None) -> None:
        self.root = Path(root)
        if not (self.root / STAGING).is_dir():
            raise UsageError(f"{self.root} has no {STAGING}/ directory: products are dropped into "
                             f"{self.root}/{STAGING}/<namespace>/.")
        self.settle, self.incomplete_timeout, self.throttle, self.clock = settle, incomplete_timeout, throttle, clock
        self.rse_url = rse_url.rstrip("/") if rse_url else None
        if self.rse_url and not self.rse_url.startswith("s3://"):
            raise UsageError(f"--rse-url {rse_url}: give an s3://bucket/prefix URL (local replicas need none).")
        self.backend, self.rse = check_backend(backend), rse
        if self.backend == "rucio" and self.rse_url:
            raise UsageError("--rse-url is for the local lake; Rucio writes replicas to its RSE (--rse).")
        if self.backend == "rucio" and not rse:
            raise UsageError("The Rucio lake needs an RSE: --rse NAME or config lake.rse (RADIOFLOW_LAKE__RSE).")

    def open(self) -> Lake:
        """The lake this ingestor registers into."""
        return open_lake(self.root, self.backend, self.rse)

    def replica_url(self, ns: str, name: str) -> str:
        """Where a product's replica lives: the S3 RSE, else its file in processed/."""
        if self.rse_url:
            return f"{self.rse_url}/{ns}/{name}"
        return str((self.root / PROCESSED / ns / name).resolve())

    # -- passes ---------------------------------------------------------------------------
    def run_once(self) -> IngestReport:
        """Recover, expire, then take every ready product in staging once."""
        with self._lock():
            cat = self.open()
            try:
                return self._pass(cat)
            finally:
                cat.close()

    def watch(self, interval: float = 5.0, passes: int | None = None,
              on_pass: Callable[[IngestReport], None] | None = None) -> None:
        """Repeat passes every ``interval`` seconds (``passes`` of them, or until interrupted)."""
        done = 0
        with self._lock():
            cat = self.open()
            try:
                while passes is None or done < passes:
                    report = self._pass(cat)
                    if on_pass is not None:
                        on_pass(report)
                    done += 1
                    if passes is None or done < passes:
                        time.sleep(interval)
            finally:
                cat.close()

    def _pass(self, cat: Lake) -> IngestReport:
        report = IngestReport()
        self._recover(cat, report)
        self._expire(cat, report)
        for ns_dir in sorted(p for p in (self.root / STAGING).iterdir() if p.is_dir() and not p.name.startswith(".")):
            for meta in sorted(ns_dir.glob(f"*{META_SUFFIX}")):
                if meta.name.startswith("."):
                    continue
                self._one(cat, ns_dir.name, meta, report)
        return report

    # -- one product ----------------------------------------------------------------------
    def _one(self, cat: Lake, ns: str, meta: Path, report: IngestReport) -> None:
        product = meta.with_name(meta.name[: -len(META_SUFFIX)])
        name, did = product.name, f"{ns}:{product.name}"
        now = self.clock()
        if not product.exists():
            if (self.root / FAILED / ns / (name + REASON_SUFFIX)).exists():   # a failure cut short
                self._move(meta, self.root / FAILED / ns)
                return
            if now - meta.stat().st_mtime > self.incomplete_timeout:
                self._fail(ns, product, meta, "the product named by this .meta never arrived", report)
            else:
                report.waiting.append((did, "product not there yet"))
            return
        nbytes, newest = _tree_stats(product)
        newest = max(newest, meta.stat().st_mtime)
        if now - newest < self.settle:
            report.waiting.append((did, f"changed less than {self.settle:g} s ago"))
            return
        try:
            doc: Any = json.loads(meta.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._fail(ns, product, meta, f"{meta.name}: not JSON ({exc})", report)
            return
        problems = meta_problems(doc)
        if not problems:
            if doc["namespace"] != ns:
                problems.append(f"$.namespace: '{doc['namespace']}' but the product is in staging/{ns}/")
            if doc["name"] != name:
                problems.append(f"$.name: '{doc['name']}' but the product file is '{name}'")
        if problems:
            self._fail(ns, product, meta, f"{meta.name}: invalid metadata: " + "; ".join(problems), report)
            return
        expected_kb, actual_kb = int(doc["meta"]["access_estsize"]), -(-nbytes // 1024)
        if actual_kb < expected_kb:
            if now - newest <= self.incomplete_timeout:
                report.waiting.append((did, f"incomplete: {actual_kb} of {expected_kb} kB"))
            else:
                self._fail(ns, product, meta, f"incomplete: {actual_kb} of {expected_kb} kB after "
                                              f"{self.incomplete_timeout:g} s", report)
            return
        if actual_kb > expected_kb:
            self._fail(ns, product, meta, f"{actual_kb} kB on disk but access_estsize says {expected_kb} kB", report)
            return
        if cat.state(ns, name) is not None:
            self._fail(ns, product, meta, f"DID {did} is already in the lake (names are never reused)", report)
            return
        dest = self.root / PROCESSED / ns / name
        if dest.exists() or dest.with_name(dest.name + META_SUFFIX).exists():
            self._fail(ns, product, meta, f"{dest} exists already", report)
            return
        cat.register_pending(doc, url=self.replica_url(ns, name), nbytes=nbytes, now=now,
                             rse="S3" if self.rse_url else "LOCAL")
        self._finish(cat, ns, name)
        report.processed.append(did)
        if self.throttle:
            time.sleep(self.throttle)

    def _finish(self, cat: Lake, ns: str, name: str) -> None:
        """Upload a pending DID's replica (S3 RSE, or Rucio: the backend's ``store``), move its product,
        then its .meta, to processed/ and mark it available; repeating this after a crash is harmless."""
        src, dest = self.root / STAGING / ns, self.root / PROCESSED / ns
        dest.mkdir(parents=True, exist_ok=True)
        url = cat.replica(ns, name)
        local = src / name if (src / name).exists() else dest / name
        if local.exists():
            if url.startswith("s3://"):
                self._upload(local, url)
            cat.store(ns, name, local)
        if (src / name).exists():
            os.rename(src / name, dest / name)
        if (src / (name + META_SUFFIX)).exists():
            os.rename(src / (name + META_SUFFIX), dest / (name + META_SUFFIX))
        if (dest / name).exists():
            cat.mark_available(ns, name)
        else:
            cat.forget(ns, name)

    def _fail(self, ns: str, product: Path, meta: Path, reason: str, report: IngestReport) -> None:
        """Reason file first (atomically), then the product, then the .meta to failed_processing/<ns>/."""
        dest = self.root / FAILED / ns
        dest.mkdir(parents=True, exist_ok=True)
        reason_file = dest / (product.name + REASON_SUFFIX)
        tmp = reason_file.with_name(f".{reason_file.name}.tmp-{os.getpid()}")
        tmp.write_text(reason + "\n")
        os.replace(tmp, reason_file)
        if product.exists():
            self._move(product, dest)
        self._move(meta, dest)
        report.failed.append((f"{ns}:{product.name}", reason))

    @staticmethod
    def _upload(local: Path, url: str) -> None:
        """Copy a product (file or directory tree) to its S3 replica URL, replacing a partial one."""
        from ...vis.location import as_location

        loc = as_location(url)
        fs, path = loc.fs, loc.path
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.put(str(local), path, recursive=local.is_dir())

    @staticmethod
    def _move(path: Path, dest_dir: Path) -> None:
        """Rename into ``dest_dir``; an existing entry of the same name is kept and the new one numbered."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        target, n = dest_dir / path.name, 1
        while target.exists():
            target, n = dest_dir / f"{path.name}.{n}", n + 1
        os.rename(path, target)

    # -- recovery and expiry --------------------------------------------------------------
    def _recover(self, cat: Lake, report: IngestReport) -> None:
        for did in cat.pending():
            self._finish(cat, did.namespace, did.name)
            report.recovered.append(did.did)

    def _expire(self, cat: Lake, report: IngestReport) -> None:
        """Delete the replicas (S3 object or processed/ file), the local copy and .meta of expired DIDs,
        then the DIDs."""
        import shutil

        from ...vis.location import as_location

        for did in cat.expired(self.clock()):
            if did.url.startswith("s3://"):
                loc = as_location(did.url)
                fs, path = loc.fs, loc.path
                if fs.exists(path):
                    fs.rm(path, recursive=True)
            local = self.root / PROCESSED / did.namespace / did.name
            if local.is_dir():
                shutil.rmtree(local)
            else:
                local.unlink(missing_ok=True)
            local.with_name(local.name + META_SUFFIX).unlink(missing_ok=True)
            cat.forget(did.namespace, did.name)
            report.expired.append(did.did)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        path = self.root / ".ingest.lock"
        with path.open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"Another ingestor is running on {self.root} (lock {path}).") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
