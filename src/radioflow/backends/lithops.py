"""Run invocations as a Lithops map: localhost here, Kubernetes (``k8s``) in production.

The Lithops configuration is built from radioflow's own (``backend.lithops`` plus
``retries``). When that section does not choose the compute backend, Lithops' own configuration
file (``$LITHOPS_CONFIG_FILE``, ``./.lithops_config``, ``~/.lithops/config``,
``/etc/lithops/config``) is honoured: its compute and storage backends and their sections, with
radioflow's keys merged over them. A configuration that cannot be honoured (e.g. Kubernetes
without a cluster) is an error naming where it came from, never a silent fall-back to localhost::

    compute: localhost        # or k8s
    storage: localhost        # or minio / ceph / aws_s3 (S3-compatible, with an endpoint)
    workers: 2                # localhost worker processes / k8s max_workers
    endpoint: http://127.0.0.1:9000   # S3 endpoint (default: storage.s3.endpoint_url, $AWS_ENDPOINT_URL)
    storage_bucket: radioflow # bucket for Lithops' own payloads and results
    region: us-east-1
    access_key_env: AWS_ACCESS_KEY_ID       # credentials are read from these env vars,
    secret_key_env: AWS_SECRET_ACCESS_KEY   # never written in configuration files
    k8s: {runtime: ghcr.io/example/radioflow-lithops:0.1, namespace: radio}   # passed through
    lithops: {log_level: WARNING}          # raw Lithops keys, merged last
    retries: 1
    batch_size: auto          # items per activation (auto: ~4 activations per worker; 1: isolate)
    max_payload_bytes: 1048576  # larger parameter data is refused: pass URLs, not data

The localhost compute backend is pinned to ``version: 1`` (version 2 hangs on repeated maps)
and to this interpreter, so workers import radioflow from the same environment; no module is
pickled into the payload (``include_modules=None``): the runtime has radioflow installed.

Each item is the plain-data invocation; datasets travel by URL inside its parameters
(``s3://bucket/prefix/part-003.zarr``), never through function payloads. Lithops' object
partitioner (which splits objects at ``obj_newline``) is never engaged, and ``obj_newline=None``
is passed anyway so no binary object can ever be cut at a newline byte.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import sys
import threading
from typing import Any, Mapping, Sequence

from ..config import deep_merge
from ..errors import UsageError
from ..invoke import Invocation, Result
from ..invoke.usage import combine
from . import _remote

log = logging.getLogger(__name__)

S3_STORAGES = ("minio", "ceph", "aws_s3")


def lithops_file_config() -> tuple[str, dict[str, Any]] | None:
    """Lithops' own configuration file, found as Lithops finds it: ``(path, contents)`` or None."""
    from lithops.config import get_default_config_filename, load_yaml_config

    path = get_default_config_filename()
    if not path:
        return None
    if not os.path.isfile(path):
        raise UsageError(f"LITHOPS_CONFIG_FILE names {path}, which does not exist; fix or unset it.")
    try:
        data = load_yaml_config(path) or {}
    except Exception as exc:  # noqa: BLE001 - yaml and OS errors alike
        raise UsageError(f"Cannot read the Lithops configuration file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"The Lithops configuration file {path} is not a YAML mapping.")
    return path, data


def lithops_config(config: dict[str, Any], *, s3: dict[str, Any] | None = None,
                   environ: Mapping[str, str] | None = None,
                   file_config: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Lithops configuration dict for radioflow's ``backend.lithops`` options.

    ``s3`` is radioflow's ``storage.s3`` section (endpoint fallback); credentials come from
    ``environ`` (default ``os.environ``). ``file_config`` is Lithops' own file ``(path, data)``:
    used when ``config`` does not choose the compute backend.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    chosen = "compute" in config or "backend" in config
    from_file: dict[str, Any] = (file_config[1] if file_config and not chosen else {}) or {}
    raw = from_file.get("lithops")
    file_lithops: dict[str, Any] = raw if isinstance(raw, dict) else {}
    compute = str(config.get("compute", config.get("backend", file_lithops.get("backend", "localhost"))))
    storage = str(config.get("storage", file_lithops.get("storage", "localhost") if from_file else "localhost"))
    if from_file and compute != "localhost":
        file_only = {k: v for k, v in from_file.items() if k not in ("lithops", "localhost")}
        merged = deep_merge(file_only, {k: v for k, v in config.items() if k in (compute, storage)})
        config = {**config, **merged}
    workers = int(config.get("workers") or config.get("n_workers")
                  or (config.get(compute) or {}).get("max_workers") or min(os.cpu_count() or 1, 4))
    out: dict[str, Any] = {
        "lithops": {
            "backend": compute,
            "storage": storage,
            "log_level": config.get("log_level", "WARNING"),
        }
    }
    if compute == "localhost":
        out["localhost"] = {"version": 1, "runtime": sys.executable, "worker_processes": workers}
    elif compute == "k8s":
        out["k8s"] = {**copy.deepcopy(config.get("k8s") or {}), "max_workers": workers}
    else:
        out[compute] = copy.deepcopy(config.get(compute) or {})
    if storage in S3_STORAGES:
        section: dict[str, Any] = copy.deepcopy(config.get(storage) or {})
        endpoint = config.get("endpoint") or (s3 or {}).get("endpoint_url") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            section.setdefault("endpoint", str(endpoint))
        if config.get("region") or (s3 or {}).get("region"):
            section.setdefault("region", str(config.get("region") or (s3 or {}).get("region")))
        if storage != "aws_s3" and not section.get("endpoint"):
            raise UsageError(
                f"backend.lithops.storage is '{storage}' but no S3 endpoint is set; give "
                "backend.lithops.endpoint (e.g. http://minio:9000) or storage.s3.endpoint_url."
            )
        key_env = str(config.get("access_key_env", "AWS_ACCESS_KEY_ID"))
        secret_env = str(config.get("secret_key_env", "AWS_SECRET_ACCESS_KEY"))
        if section.get("access_key_id") and section.get("secret_access_key"):
            pass  # given by Lithops' own configuration file
        elif key_env in env and secret_env in env:
            section.setdefault("access_key_id", env[key_env])
            section.setdefault("secret_access_key", env[secret_env])
        elif storage != "aws_s3":
            raise UsageError(
                f"backend.lithops.storage '{storage}' needs credentials in the environment variables "
                f"{key_env} and {secret_env} (names set by backend.lithops.access_key_env / secret_key_env)."
            )
        if config.get("storage_bucket"):
            section["storage_bucket"] = str(config["storage_bucket"])
        out[storage] = section
    elif storage != "localhost":
        out[storage] = copy.deepcopy(config.get(storage) or {})
    if isinstance(config.get("lithops"), dict):
        out = deep_merge(out, {"lithops": config["lithops"]})
    return out


def _own_session() -> None:
    """Make this process its own Lithops session.

    Lithops exports its session id and executor counter to the environment, so a process spawned
    by one that used Lithops (a test runner, an SDP controller) joins the parent's session and
    counts from the same number as its siblings: two concurrent or successive ``radioflow run -b
    lithops`` then share executor ids and storage keys, and one's cleaner deletes the other's job
    files (its map waits forever). Lithops keeps its own session in the process, so dropping the
    inherited variables only ever starts a fresh session where one was inherited.
    """
    from lithops import constants

    for name in (constants.SESSION_ID_ENV, constants.TOTAL_EXECUTORS_ENV):
        os.environ.pop(name, None)


class LithopsBackend:
    """Invocations as Lithops function activations (batched, retried item by item)."""

    name = "lithops"

    def __init__(self, config: dict[str, Any] | None = None, *, s3: dict[str, Any] | None = None) -> None:
        import lithops

        self.config = dict(config or {})
        self.retries = int(self.config.get("retries", 0) or 0)
        self.batch_size = self.config.get("batch_size", "auto")
        self.max_payload = int(self.config.get("max_payload_bytes", 1 << 20))
        self._target = _remote.EXECUTE
        chosen = "compute" in self.config or "backend" in self.config
        file_config = None if chosen else lithops_file_config()
        self.lithops_config = lithops_config(self.config, s3=s3, file_config=file_config)
        lc = self.lithops_config
        self.workers = int(lc.get("localhost", {}).get("worker_processes") or lc.get("k8s", {}).get("max_workers") or 1)
        compute = lc["lithops"]["backend"]
        source = (f"the Lithops configuration file {file_config[0]}" if file_config and
                  (file_config[1].get("lithops") or {}).get("backend") else "backend.lithops")
        _own_session()
        try:
            self.executor = lithops.FunctionExecutor(config=copy.deepcopy(self.lithops_config))
        except Exception as exc:  # noqa: BLE001 - Lithops raises bare Exceptions for config problems
            raise UsageError(f"Cannot start the Lithops executor (compute backend '{compute}', storage "
                             f"'{lc['lithops']['storage']}', from {source}): {exc}") from None

    def _batches(self, indices: list[int]) -> list[list[int]]:
        if self.batch_size == "auto":
            size = max(1, math.ceil(len(indices) / (4 * max(1, self.workers))))
        else:
            size = max(1, int(self.batch_size))
        return [indices[i:i + size] for i in range(0, len(indices), size)]

    def map(self, invocations: Sequence[Invocation]) -> list[Result]:
        """Run all invocations; failed items are retried up to ``retries`` times, then returned failed.

        Items go to workers in batches (``batch_size``: ``auto`` = about four calls per worker,
        or a number; 1 isolates every item in its own activation), so that the per-call
        start-up of a Lithops worker is paid once per batch, not once per item.
        """
        invocations = list(invocations)
        for inv in invocations:
            _remote.check_payload(inv, self.max_payload, "lithops")
        results: list[Result | None] = [None] * len(invocations)
        pending = list(range(len(invocations)))
        for attempt in range(1, self.retries + 2):
            if not pending:
                break
            batches = self._batches(pending)
            data = [{"invs": [invocations[i] for i in batch], "target": self._target} for batch in batches]
            self._settle_localhost_manager()
            futures = self.executor.map(_remote.run_batch, data, include_modules=None, obj_newline=None)
            self.executor.wait(futures, throw_except=False, show_progressbar=False)
            pending = []
            for batch, fut in zip(batches, futures):
                if fut.error:  # the whole activation died (killed, out of memory, timeout)
                    exc = fut._exception[1] if isinstance(fut._exception, tuple) else fut._exception
                    got = [_remote.failed_result(invocations[i], exc, attempts=attempt) for i in batch]
                else:
                    got = fut.result()
                memory = getattr(fut, "runtime_memory", None)   # MB the function is billed for
                for i, res in zip(batch, got):
                    if memory:
                        res.usage["billed_memory"] = float(memory) * 2 ** 20
                    if results[i] is not None:   # a retry: the failed attempts' usage counts too
                        res.usage = combine(results[i].usage, res.usage)  # type: ignore[union-attr]
                    results[i] = res
                    if not res.ok:
                        pending.append(i)
            if pending:
                log.info("lithops: %d item(s) failed on attempt %d", len(pending), attempt)
        return results  # type: ignore[return-value]

    def _settle_localhost_manager(self) -> None:
        """Let the localhost v1 job-manager thread of the previous map exit before the next map.

        Lithops' manager thread decides to stop when its queue is empty and only then clears
        ``job_manager``; a job queued inside that window finds a "running" manager, starts no
        new one, and is never run (a hang seen under heavy load). Joining the finished manager
        first closes the window.
        """
        manager = getattr(self.executor.compute_handler, "job_manager", None)
        if isinstance(manager, threading.Thread) and manager is not threading.current_thread():
            manager.join(timeout=60)

    def run(self, invocation: Invocation) -> Result:
        """Run one invocation as a single activation and wait for it."""
        return self.map([invocation])[0]

    def close(self) -> None:
        """Remove Lithops' temporary job data and stop the executor."""
        try:
            self.executor.clean(clean_cloudobjects=True)
        finally:
            self.executor.__exit__(None, None, None)

    def __enter__(self) -> "LithopsBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
