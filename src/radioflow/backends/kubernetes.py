"""Run each invocation as one Kubernetes ``batch/v1`` Job.

For every step the backend creates a ConfigMap holding the invocation as JSON and a Job whose
single container runs ``radioflow step /etc/radioflow/invocation/invocation.json`` in the
configured image, with resources, env, volumes/PVCs and secrets *by reference*
(``secretKeyRef``; see :mod:`radioflow.ops.deploy` for the options). The Job is watched to
completion, its pod logs are streamed into the step log, and the step's outputs come back
through the container's termination message (``radioflow step --result`` written to
``/dev/termination-log``, at most 4 KiB: outputs are URLs, not data). Retries are the Job's ``backoffLimit``.

Every object carries the label ``radioflow.io/run-id=<run id>`` (one id per backend, i.e. per
session); Ctrl-C deletes only the Jobs this backend created, never other sessions' pods or Jobs.
Real submission needs a cluster (in-cluster service account or a kubeconfig); the manifest
building (:meth:`KubernetesBackend.manifests`) and the watch logic (:func:`job_state`,
:func:`follow_job`) are pure and work without one.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generator, Iterable, Sequence

from ..errors import UsageError
from ..invoke import Invocation, Result
from ..ops import deploy

log = logging.getLogger(__name__)

INVOCATION_DIR = "/etc/radioflow/invocation"
INVOCATION_FILE = "invocation.json"
RESULT_PATH = "/dev/termination-log"
SCRATCH_RESULT = "/tmp/radioflow-result.json"
MAX_RESULT_BYTES = 4096  # the kubelet keeps at most 4 KiB of termination message


def invocation_json(inv: Invocation) -> str:
    """The invocation as JSON, refusing inline values of secret-looking parameters."""
    from ..invoke.serialize import invocation_to_json
    from ..secrets import is_secret

    for name, value in inv.params.items():
        if is_secret(str(name)) and isinstance(value, str) and value:
            raise UsageError(
                f"Step '{inv.step}' passes parameter '{name}' by value; on Kubernetes it would be "
                "stored in a ConfigMap in clear text. Put it in a Kubernetes Secret and expose it with "
                f"backend.kubernetes.secret_env (env valueFrom secretKeyRef) instead."
            )
    return invocation_to_json(inv)


def job_state(job: Any) -> tuple[str, str]:
    """``("succeeded" | "failed" | "running", reason)`` of a ``V1Job`` (or its dict form)."""
    status = job.status if not isinstance(job, dict) else _Obj(job.get("status") or {})
    for cond in getattr(status, "conditions", None) or []:
        cond = _Obj(cond) if isinstance(cond, dict) else cond
        if str(cond.status) != "True":
            continue
        if cond.type in ("Complete", "SuccessCriteriaMet"):
            return "succeeded", ""
        if cond.type in ("Failed", "FailureTarget"):
            return "failed", f"{cond.reason or 'Failed'}: {cond.message or 'the Job failed'}"
    if (getattr(status, "succeeded", 0) or 0) >= 1:
        return "succeeded", ""
    return "running", ""


class _Obj:
    """Attribute access over a dict (jobs given as plain manifests)."""

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data.get(name)


def follow_job(events: Iterable[dict[str, Any]]) -> tuple[str, str, Any]:
    """Consume watch events for one Job until it finishes: ``(state, reason, last_job)``.

    Returns ``("running", "", job)`` when the stream ends first (a watch timeout: watch again).
    """
    last = None
    for event in events:
        kind, obj = event.get("type"), event.get("object")
        if kind == "DELETED":
            return "failed", "the Job was deleted before it finished", obj
        if kind == "ERROR" or obj is None:
            continue
        last = obj
        state, reason = job_state(obj)
        if state != "running":
            return state, reason, obj
    return "running", "", last


def termination_result(pod: Any) -> tuple[int | None, dict[str, Any] | None]:
    """Exit code and the JSON result written to the termination message of a finished pod."""
    for cs in (getattr(pod.status, "container_statuses", None) or []):
        term = getattr(cs.state, "terminated", None) if cs.state else None
        if term is None:
            continue
        try:
            data = json.loads(term.message) if term.message else None
        except ValueError:
            data = None
        return term.exit_code, data if isinstance(data, dict) else None
    return None, None


def _usage(data: Any) -> dict[str, float]:
    """The pod's measured usage from its termination message (numbers only)."""
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class KubernetesBackend:
    """One Job per invocation, watched to completion."""

    name = "kubernetes"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self.config.setdefault("backoff_limit", int(self.config.get("retries", 0) or 0))
        self.namespace = str(self.config.get("namespace") or "default")
        self.config["namespace"] = self.namespace
        self.run_id = str(self.config.get("run_id") or uuid.uuid4().hex[:10])
        self.poll = float(self.config.get("poll_seconds", 2.0))
        self._counter = 0
        self._lock = threading.Lock()
        self._created: list[str] = []
        self._api: Any = None

    # -- manifests (no cluster needed) -------------------------------------------------------
    def manifests(self, inv: Invocation, index: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ConfigMap (invocation JSON) and the Job for ``inv``."""
        if index is None:
            with self._lock:
                index, self._counter = self._counter, self._counter + 1
        name = deploy.k8s_name("rf", inv.step, limit=40) + f"-{self.run_id[:10]}-{index}"
        # In the pod the step log goes to stdout only; the backend streams it into inv.log_path.
        remote = dataclasses.replace(inv, log_path=None)
        cmap = deploy.config_map(name, self.config, {INVOCATION_FILE: invocation_json(remote)},
                                 run_id=self.run_id, step=inv.step)
        step = " ".join(shlex.quote(str(c)) for c in self.config.get("step_command", ["radioflow", "step"]))
        # The result goes to a scratch file first (written atomically), then into the
        # termination message, which the kubelet bind-mounts and which cannot be renamed over.
        script = (f'{step} "$0" --result {SCRATCH_RESULT} --max-bytes {MAX_RESULT_BYTES}; rc=$?; '
                  f"cat {SCRATCH_RESULT} > {RESULT_PATH} 2>/dev/null; exit $rc")
        command = ["sh", "-c", script, f"{INVOCATION_DIR}/{INVOCATION_FILE}"]
        job = deploy.job(name, self.config, command=command, run_id=self.run_id, step=inv.step,
                         env=inv.env, volumes=[{"name": "invocation", "config_map": cmap["metadata"]["name"],
                                                "mount": INVOCATION_DIR, "read_only": True}])
        return cmap, job

    # -- cluster side ------------------------------------------------------------------------
    def _apis(self) -> Any:
        if self._api is None:
            try:
                from kubernetes import client
                from kubernetes import config as kconfig
            except ImportError:  # pragma: no cover - depends on the install
                raise UsageError("The kubernetes backend needs the `kubernetes` package.") from None
            try:
                kconfig.load_incluster_config()
            except kconfig.ConfigException:
                try:
                    kconfig.load_kube_config(context=self.config.get("context"))
                except (kconfig.ConfigException, OSError) as exc:
                    raise UsageError(
                        f"No Kubernetes cluster configured for backend 'kubernetes' ({exc}); run inside "
                        "a cluster or set KUBECONFIG / backend.kubernetes.context."
                    ) from None
            self._api = (client.BatchV1Api(), client.CoreV1Api())
        return self._api

    def submit(self, inv: Invocation) -> str:
        """Create the ConfigMap and Job for ``inv``; return the Job name."""
        batch, core = self._apis()
        cmap, job = self.manifests(inv)
        name = job["metadata"]["name"]
        core.create_namespaced_config_map(self.namespace, cmap)
        created = batch.create_namespaced_job(self.namespace, job)
        with self._lock:
            self._created.append(name)
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": created.metadata.uid}
        core.patch_namespaced_config_map(name, self.namespace, {"metadata": {"ownerReferences": [owner]}})
        log.info("submitted Job %s/%s for step %s", self.namespace, name, inv.step)
        return name

    def _stream_logs(self, name: str, inv: Invocation, done: threading.Event, lines: list[str]) -> None:
        _, core = self._apis()
        seen: set[str] = set()
        if inv.log_path:
            Path(inv.log_path).parent.mkdir(parents=True, exist_ok=True)
        sink = open(inv.log_path, "w", encoding="utf-8") if inv.log_path else None
        try:
            while True:
                finished = done.is_set()
                pods = core.list_namespaced_pod(self.namespace, label_selector=f"job-name={name}").items
                for pod in sorted(pods, key=lambda p: p.metadata.creation_timestamp or 0):
                    if pod.metadata.name in seen or pod.status.phase == "Pending":
                        continue
                    seen.add(pod.metadata.name)
                    resp = core.read_namespaced_pod_log(pod.metadata.name, self.namespace, follow=True,
                                                        _preload_content=False)
                    for raw in resp.stream():
                        text = raw.decode("utf-8", "replace")
                        lines.append(text)
                        if sink:
                            sink.write(text)
                            sink.flush()
                    resp.release_conn()
                if finished:
                    return
                time.sleep(self.poll)
        finally:
            if sink:
                sink.close()

    def _job_events(self, name: str) -> Generator[dict[str, Any], None, None]:
        """Watch events of Job ``name`` (ends after a server-side timeout; then watch again)."""
        from kubernetes import watch

        batch, _ = self._apis()
        w = watch.Watch()
        try:
            yield from w.stream(batch.list_namespaced_job, self.namespace,
                                field_selector=f"metadata.name={name}", timeout_seconds=60)
        finally:
            w.stop()

    def wait(self, name: str, inv: Invocation) -> Result:
        """Watch Job ``name`` to completion, streaming its logs; build the step's Result."""
        _, core = self._apis()
        started = time.time()
        done, lines = threading.Event(), list[str]()
        streamer = threading.Thread(target=self._stream_logs, args=(name, inv, done, lines), daemon=True)
        streamer.start()
        state, reason = "running", ""
        while state == "running":
            events = self._job_events(name)
            try:
                state, reason, _ = follow_job(events)
            finally:
                events.close()
        done.set()
        streamer.join(timeout=60)
        pods = core.list_namespaced_pod(self.namespace, label_selector=f"job-name={name}").items
        code, data = (None, None)
        for pod in sorted(pods, key=lambda p: p.metadata.creation_timestamp or 0):
            code, data = termination_result(pod)
        data = data or {}
        ok = state == "succeeded" and data.get("ok", True) is not False
        return Result(
            step=inv.step, ok=ok, outputs=dict(data.get("outputs") or {}),
            returncode=int(code if code is not None else (0 if ok else 1)), log="".join(lines),
            started=started, finished=time.time(),
            error=None if ok else (data.get("error") or f"Job {self.namespace}/{name} failed: {reason}"),
            usage=_usage(data.get("usage")),
        )

    def run(self, invocation: Invocation) -> Result:
        """Run one invocation as a Job and wait for it."""
        return self.map([invocation])[0]

    def map(self, invocations: Sequence[Invocation]) -> list[Result]:
        """Submit one Job per invocation, then watch them all; Ctrl-C deletes this run's Jobs."""
        names: list[str] = []
        pool = ThreadPoolExecutor(max(1, min(len(invocations), int(self.config.get("parallel_watches", 16)))))
        try:
            for inv in invocations:
                names.append(self.submit(inv))
            return list(pool.map(self.wait, names, invocations))
        except KeyboardInterrupt:
            self.cancel(names)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def cancel(self, names: Sequence[str] | None = None) -> None:
        """Delete Jobs (and their pods) that *this* backend created; nothing else."""
        if self._api is None:
            return
        batch, _ = self._apis()
        own = set(self._created)
        for name in names if names is not None else list(own):
            if name not in own:
                continue
            from kubernetes.client.exceptions import ApiException

            try:
                job = batch.read_namespaced_job(name, self.namespace)
                if (job.metadata.labels or {}).get(deploy.RUN_ID_LABEL) != deploy.label_value(self.run_id):
                    continue
                batch.delete_namespaced_job(name, self.namespace, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:  # already gone (TTL) is fine
                    raise

    def close(self) -> None:
        """Nothing to release: finished Jobs are removed by ``ttlSecondsAfterFinished``."""
        self._api = None

