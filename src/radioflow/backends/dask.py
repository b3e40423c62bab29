"""Run invocations as Dask futures: a LocalCluster, a remote scheduler, or Dask on Kubernetes.

Configuration (the ``backend.dask`` section plus ``retries``)::

    n_workers: 2              # LocalCluster size (default: cores, at most 4)
    threads_per_worker: 1
    memory_limit: auto        # per worker, e.g. "4GiB"
    dashboard_address: "127.0.0.1:0"   # free port; the link is logged and printed
    address: tcp://host:8786  # use an existing scheduler instead of a LocalCluster
    kubernetes: {...}         # Dask on Kubernetes (see radioflow.ops.deploy.dask_cluster)
    retries: 2                # extra attempts per failed item

Each scatter item becomes one future (``pure=False``, ``retries=``) calling
:func:`radioflow.invoke.execute.execute` by module path on a worker. A worker that dies
mid-task is survived: the scheduler reschedules its tasks elsewhere.

Data-level parallelism inside a step runs on the same cluster with no extra code: on a
worker, ``dask.compute``/``.compute()`` uses the worker's client as its scheduler, and
``Client.get`` secedes from the worker's thread pool while it waits and rejoins afterwards,
so a step that builds and computes a graph never deadlocks the cluster. Code that submits
futures itself should use ``with distributed.worker_client() as client:`` (secede/rejoin).
"""
from __future__ import annotations

import logging
import os
import sys
import time
import uuid
import weakref
from typing import Any, Sequence

from ..errors import StepError, UsageError
from ..invoke import Invocation, Result
from . import _remote

log = logging.getLogger(__name__)


class _AfterLoss(logging.Filter):
    """Drops distributed's client log records that carry a traceback once the client has lost its
    scheduler (its reconnection attempts log ConnectionRefused/CancelledError chains); radioflow
    reports the loss itself as one paragraph (:class:`SchedulerLost`). Kept with ``--debug``."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self._client = weakref.ref(client)

    def filter(self, record: logging.LogRecord) -> bool:
        client = self._client()
        if record.exc_info is None or client is None or log.isEnabledFor(logging.DEBUG):
            return True
        return client.status in ("running", "connecting", "newly-created")


def _hide_tracebacks_after_loss(client: Any) -> _AfterLoss:
    loss_filter = _AfterLoss(client)
    logging.getLogger("distributed.client").addFilter(loss_filter)
    return loss_filter


class SchedulerLost(StepError):
    """The Dask client lost its scheduler while steps ran."""


def _local_cluster(config: dict[str, Any]) -> Any:
    from distributed import LocalCluster

    n_workers = int(config.get("n_workers") or min(os.cpu_count() or 1, 4))
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=int(config.get("threads_per_worker", 1)),
        processes=bool(config.get("processes", True)),
        memory_limit=config.get("memory_limit", "auto"),
        dashboard_address=config.get("dashboard_address", "127.0.0.1:0"),
        host=config.get("host", "127.0.0.1"),
    )


def _kube_cluster(config: dict[str, Any]) -> Any:
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError:  # pragma: no cover - depends on the install
        raise UsageError(
            "backend.dask.kubernetes is set but dask-kubernetes is not installed; "
            "install it with `pip install dask-kubernetes`."
        ) from None
    from ..ops.deploy import dask_cluster

    spec = dask_cluster(config)
    return KubeCluster(
        custom_cluster_spec=spec,
        namespace=config.get("namespace") or spec["metadata"].get("namespace"),
        shutdown_on_close=True,
    )


class DaskBackend:
    """Invocations as futures on a Dask cluster."""

    name = "dask"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        from distributed import Client

        config = dict(config or {})
        self.config = config
        self.retries = int(config.get("retries", 0) or 0)
        self._target = _remote.EXECUTE
        self._cluster = None
        address = config.get("address") or config.get("scheduler")
        self._address = str(address) if address else ""
        if address:
            try:
                self.client = Client(address, timeout=config.get("connect_timeout", "10s"))
            except OSError as exc:
                raise UsageError(
                    f"Cannot reach the Dask scheduler at backend.dask.address = {address!r}: {exc}. "
                    "Check that `dask scheduler` is running there, or drop the address to use a "
                    "local cluster."
                ) from None
        else:
            kube = config.get("kubernetes")
            self._cluster = _kube_cluster(kube) if kube else _local_cluster(config)
            self.client = Client(self._cluster)
        self._loss_filter = _hide_tracebacks_after_loss(self.client)
        link = self.dashboard_link
        if link:
            log.info("Dask dashboard: %s", link)
            if config.get("show_dashboard", True):
                print(f"Dask dashboard: {link}", file=sys.stderr)

    @property
    def dashboard_link(self) -> str | None:
        """URL of the Dask dashboard (``None`` when the scheduler serves none)."""
        try:
            return self.client.dashboard_link
        except Exception:  # noqa: BLE001 - no dashboard (bokeh missing, remote without http)
            return None

    def _submit(self, invocations: Sequence[Invocation]) -> list[Any]:
        token = uuid.uuid4().hex[:8]
        return self.client.map(
            _remote.run_invocation,
            invocations,
            [self._target] * len(invocations),
            key=[f"radioflow-{inv.step}-{i}-{token}" for i, inv in enumerate(invocations)],
            pure=False,
            retries=self.retries,
        )

    def map(self, invocations: Sequence[Invocation]) -> list[Result]:
        """Run all invocations as futures; results in input order, failures as failed Results.

        Ctrl-C cancels every outstanding future and re-raises ``KeyboardInterrupt``.
        """
        from distributed import wait

        invocations = list(invocations)
        if not invocations:
            return []
        started = time.time()
        futures = self._submit(invocations)
        try:
            try:  # the common case, no failure: results stream back as items finish
                return list(self.client.gather(futures))
            except Exception as exc:  # noqa: BLE001 - some item failed: let the rest finish, collect one by one
                self._raise_if_scheduler_lost(exc)
                wait(futures)
                return [self._collect(inv, fut, started) for inv, fut in zip(invocations, futures)]
        except SchedulerLost:
            raise
        except BaseException:
            self.client.cancel(futures, force=True)
            raise
        finally:
            for fut in futures:
                fut.release()

    def _raise_if_scheduler_lost(self, exc: BaseException) -> None:
        """A cancellation because the client lost its scheduler stops the run with one paragraph
        (not distributed's FuturesCancelledError): the steps' results are unknown."""
        if "scheduler-connection-lost" in str(exc) or self.client.status not in ("running", "connecting"):
            address = self._address or getattr(getattr(self.client, "scheduler", None), "address", "?")
            raise SchedulerLost(
                f"The Dask scheduler at {address} went away while steps were running (the client lost its "
                "connection), so their results are unknown. Restart the scheduler (or drop "
                "backend.dask.address to use a LocalCluster) and run again with --resume.") from None

    def _collect(self, inv: Invocation, fut: Any, started: float) -> Result:
        try:
            return fut.result()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - incl. cancellation: the item's own Result
            self._raise_if_scheduler_lost(exc)
            return _remote.failed_result(inv, exc, started=started, attempts=self.retries + 1)

    def run(self, invocation: Invocation) -> Result:
        """Run one invocation on the cluster and wait for it."""
        return self.map([invocation])[0]

    def close(self) -> None:
        """Close the client and any cluster this backend started (never a remote scheduler)."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        logging.getLogger("distributed.client").removeFilter(self._loss_filter)

    def __enter__(self) -> "DaskBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
