"""Execution backends behind one interface (:class:`radioflow.backends.base.Backend`).

:func:`get_backend` builds one by name; the heavy engines (Dask, Lithops, Kubernetes) are
imported only when selected.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from ..errors import UsageError
from ..invoke import Invocation, Result
from .base import Backend

__all__ = ["Backend", "Invocation", "Result", "BACKENDS", "backend_options", "get_backend", "select_backend"]

#: name -> (module, class); every class takes its option mapping.
BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("radioflow.backends.local", "LocalBackend"),
    "dask": ("radioflow.backends.dask", "DaskBackend"),
    "lithops": ("radioflow.backends.lithops", "LithopsBackend"),
    "kubernetes": ("radioflow.backends.kubernetes", "KubernetesBackend"),
}


#: Stimela's backend names for the radioflow backend doing the same job.
ALIASES: dict[str, str] = {"native": "local", "kube": "kubernetes"}
#: Stimela container backends radioflow does not run (a ``select`` list falls through them).
_CONTAINER_BACKENDS = ("singularity", "apptainer", "podman", "docker")


def select_backend(select: Any) -> str:
    """The backend name for a ``backend.select`` value or ``-b`` option.

    ``select`` is a name or, as in Stimela, a list of names in order of preference (``[singularity,
    native]``): the first one radioflow runs is taken. Stimela's ``native`` is ``local`` and
    ``kube`` is ``kubernetes``.
    """
    names = [select] if isinstance(select, str) or select is None else list(select)
    skipped = []
    for raw in names:
        key = str(raw or "local").strip().lower()
        key = ALIASES.get(key, key)
        if key in BACKENDS:
            return key
        skipped.append(str(raw))
    known = ", ".join([*BACKENDS, *ALIASES])
    if all(s.strip().lower() in _CONTAINER_BACKENDS for s in skipped):
        raise UsageError(f"Backend selection {', '.join(skipped)}: radioflow does not run steps in containers "
                         f"({', '.join(_CONTAINER_BACKENDS)}); choose one of {known} (backend.select or -b).")
    raise UsageError(f"Unknown backend '{', '.join(skipped)}'; choose one of {known} (config key "
                     "backend.select or the -b option).")


def backend_options(name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options for backend ``name``.

    ``config`` may be the whole configuration (with a ``backend`` section), the ``backend``
    section (``select``, shared keys such as ``retries``, one sub-section per backend), or
    already the backend's own options.
    """
    cfg: Mapping[str, Any] = config or {}
    if isinstance(cfg.get("backend"), Mapping):
        cfg = cfg["backend"]
    if "select" in cfg or any(isinstance(cfg.get(n), Mapping) for n in BACKENDS):
        shared = {k: v for k, v in cfg.items() if k not in BACKENDS and k != "select"}
        return {**shared, **dict(cfg.get(name) or {})}
    return dict(cfg)


def get_backend(name: Any, config: Mapping[str, Any] | None = None) -> Backend:
    """Build the backend called ``name`` (local, dask, lithops, kubernetes, or a Stimela name or
    preference list, see :func:`select_backend`) from ``config``."""
    key = select_backend(name)
    options = backend_options(key, config)
    if key == "local":
        from .local import LocalBackend

        return LocalBackend(
            max_workers=int(options.get("max_workers") or 0),
            retries=int(options.get("retries") or 0),
        )
    module_name, class_name = BACKENDS[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"Backend '{key}' is not available: importing {module_name} failed ({exc}). Install "
            "its engine (see the installation notes) or choose another backend."
        ) from None
    return getattr(module, class_name)(options)
