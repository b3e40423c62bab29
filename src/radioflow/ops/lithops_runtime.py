"""Lithops runtimes for radioflow: build, deploy and list them through Lithops' own API.

What ``lithops runtime build|deploy|list`` does, configured from radioflow's ``backend.lithops``
section (else Lithops' own configuration file, as the lithops backend reads it), with the
shipped Dockerfile (:data:`DOCKERFILE`: radioflow + DP3 + WSClean on Lithops' k8s base image) and
a build context assembled from radioflow's source tree. Lithops' problems (no docker binary, no
kubeconfig, a cluster that does not answer, a localhost compute backend) become one-paragraph
:class:`~radioflow.errors.UsageError` s naming the setting to change.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import UsageError

#: the shipped runtime Dockerfile (Kubernetes: radioflow + dp3 + wsclean)
DOCKERFILE = Path(__file__).with_name("lithops") / "Dockerfile"
#: what of radioflow's source tree goes into the build context (as radioflow/)
SOURCE_ITEMS = ("pyproject.toml", "README.md", "src")


def runtime_config(config: Mapping[str, Any], *, compute: str | None = None, runtime: str | None = None,
                   storage: bool = False) -> dict[str, Any]:
    """Lithops' full configuration (its defaults applied) for radioflow's ``backend.lithops``.

    ``compute`` overrides the compute backend (``-b k8s``), ``runtime`` the runtime image name;
    ``storage`` also resolves the storage backend (deploy stores the runtime's metadata there).
    """
    from lithops.config import default_config

    from ..backends import backend_options
    from ..backends.lithops import lithops_config, lithops_file_config

    opts = backend_options("lithops", config)
    if compute:
        opts["compute"] = compute
    chosen = "compute" in opts or "backend" in opts
    file_config = None if chosen else lithops_file_config()
    source = f"the Lithops configuration file {file_config[0]}" if file_config else "backend.lithops"
    s3 = (config.get("storage") or {}).get("s3") if isinstance(config.get("storage"), Mapping) else None
    lc = lithops_config(opts, s3=s3, file_config=file_config)
    backend = lc["lithops"]["backend"]
    if backend == "localhost":
        raise UsageError(f"The Lithops compute backend is 'localhost' (from {source}): runtimes are images for a "
                         "serverless backend; set backend.lithops.compute: k8s in radioflow's configuration or "
                         "pass -b k8s.")
    if runtime:
        lc.setdefault(backend, {})["runtime"] = runtime
    try:
        return default_config(config_data=copy.deepcopy(lc), load_storage_config=storage)
    except Exception as exc:  # noqa: BLE001 - Lithops raises bare Exceptions for configuration problems
        raise UsageError(f"Lithops cannot use the configuration for compute backend '{backend}' (from {source}): "
                         f"{exc}") from None


def _handler(lc: dict[str, Any], storage: Any = None) -> Any:
    """Lithops' ServerlessHandler for ``lc`` (this connects to the backend: kubeconfig, cloud API)."""
    from lithops.config import extract_serverless_config
    from lithops.serverless import ServerlessHandler

    backend = lc["lithops"]["backend"]
    if lc["lithops"].get("mode") != "serverless":
        raise UsageError(f"Lithops compute backend '{backend}' is not a serverless backend; runtime commands "
                         "need one such as k8s (backend.lithops.compute).")
    try:
        with _quiet_lithops():
            return ServerlessHandler(extract_serverless_config(lc), storage)
    except Exception as exc:  # noqa: BLE001 - e.g. kubernetes.config.ConfigException
        raise UsageError(f"Lithops cannot reach its '{backend}' compute backend: {str(exc).rstrip('.')}. For k8s, point "
                         "backend.lithops.k8s.kubecfg_path (or $KUBECONFIG) at a kubeconfig of a running "
                         "cluster.") from None


@contextlib.contextmanager
def _quiet_lithops() -> Iterator[None]:
    """Lithops logs a traceback before re-raising a backend's failure; the caller's one-paragraph
    error says it, so Lithops' own log is held back to critical messages meanwhile."""
    logger = logging.getLogger("lithops")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def source_tree() -> Path:
    """radioflow's source checkout (the folder with its pyproject.toml), for the build context."""
    root = Path(__file__).resolve().parents[3]
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and 'name = "radioflow"' in pyproject.read_text()):
        raise UsageError(f"radioflow is not running from a source checkout ({root} has no radioflow "
                         "pyproject.toml); give the build context with --context DIR (a folder holding "
                         "radioflow/ and, by default, the Dockerfile).")
    return root


@contextlib.contextmanager
def build_context(dockerfile: Path | None = None, context: Path | None = None) -> Iterator[tuple[Path, Path]]:
    """A build context folder and the Dockerfile in it: ``context`` as given, or a fresh folder with
    radioflow's source (as ``radioflow/``) and the Dockerfile (default the shipped one)."""
    if context is not None:
        if not context.is_dir():
            raise UsageError(f"Build context {context} (option --context) is not a folder.")
        file = dockerfile or context / "Dockerfile"
        if not file.is_file():
            raise UsageError(f"Dockerfile {file} (option --file) does not exist.")
        yield context, file
        return
    if dockerfile is not None and not dockerfile.is_file():
        raise UsageError(f"Dockerfile {dockerfile} (option --file) does not exist.")
    root = source_tree()
    with tempfile.TemporaryDirectory(prefix="radioflow-runtime-") as tmp:
        ctx = Path(tmp)
        for item in SOURCE_ITEMS:
            src = root / item
            if src.is_dir():
                shutil.copytree(src, ctx / "radioflow" / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif src.is_file():
                (ctx / "radioflow").mkdir(exist_ok=True)
                shutil.copy2(src, ctx / "radioflow" / item)
        shutil.copy2(dockerfile or DOCKERFILE, ctx / "Dockerfile")
        yield ctx, ctx / "Dockerfile"


@contextlib.contextmanager
def _in_context(ctx: Path) -> Iterator[None]:
    """Run Lithops' build inside ``ctx``: ``docker build .`` is run in the working directory, and
    Lithops writes its handler zip where its k8s module put it when imported (the working
    directory then), so it is pointed into ``ctx`` for the build."""
    from lithops.serverless.backends.k8s import config as k8s_config

    old_cwd, old_zip = os.getcwd(), k8s_config.FH_ZIP_LOCATION
    os.chdir(ctx)
    k8s_config.FH_ZIP_LOCATION = str(ctx / "lithops_k8s.zip")
    try:
        yield
    finally:
        k8s_config.FH_ZIP_LOCATION = old_zip
        os.chdir(old_cwd)


def _docker() -> str:
    found = shutil.which("docker") or shutil.which("podman")
    if found is None:
        raise UsageError("Building a Lithops runtime needs docker (or podman) on PATH, and neither was found: "
                         "install Docker, or build the image elsewhere from the shipped Dockerfile "
                         f"({DOCKERFILE}) and deploy it by name.")
    return found


def build(name: str, config: Mapping[str, Any], *, compute: str | None = None, dockerfile: Path | None = None,
          context: Path | None = None, extra_args: Sequence[str] = ()) -> str:
    """Build runtime image ``name`` and push it (Lithops' ``build_runtime``); returns the image name."""
    from lithops.utils import verify_runtime_name

    try:
        verify_runtime_name(name)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"Runtime name {name!r}: {exc}") from None
    _docker()
    lc = runtime_config(config, compute=compute, runtime=name)
    handler = _handler(lc)
    with build_context(dockerfile, context) as (ctx, file):
        with _in_context(ctx):
            try:
                handler.build_runtime(name, file.name if file.parent == ctx else str(file), list(extra_args))
            except Exception as exc:  # noqa: BLE001 - Lithops raises bare Exceptions (docker failures)
                raise UsageError(f"Lithops could not build or push runtime {name} ({lc['lithops']['backend']}): "
                                 f"{exc}") from None
    return name


def deploy(name: str, config: Mapping[str, Any], *, compute: str | None = None, memory: int | None = None,
           timeout: int | None = None) -> dict[str, Any]:
    """Deploy runtime ``name`` (Lithops' ``deploy_runtime``) and store its metadata in Lithops' storage."""
    from lithops import __version__
    from lithops.config import extract_storage_config
    from lithops.storage import InternalStorage

    lc = runtime_config(config, compute=compute, runtime=name, storage=True)
    try:
        storage = InternalStorage(extract_storage_config(lc))
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"Lithops cannot open its storage '{lc['lithops']['storage']}' for the runtime's "
                         f"metadata: {exc}") from None
    handler = _handler(lc, storage)
    info = handler.get_runtime_info()
    memory = memory or info["runtime_memory"]
    timeout = timeout or info["runtime_timeout"]
    try:
        meta = handler.deploy_runtime(info["runtime_name"], memory, timeout)
        meta["runtime_timeout"] = timeout
        storage.put_runtime_meta(handler.get_runtime_key(info["runtime_name"], memory, __version__), meta)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"Lithops could not deploy runtime {name} on '{lc['lithops']['backend']}': {exc}") from None
    return {"runtime": info["runtime_name"], "memory": memory, "timeout": timeout,
            "python": meta.get("python_version"), "lithops": __version__}


def list_runtimes(config: Mapping[str, Any], *, compute: str | None = None, name: str = "all") -> list[tuple]:
    """Lithops' ``list_runtimes`` rows (name, memory, Lithops version, worker name)."""
    lc = runtime_config(config, compute=compute)
    handler = _handler(lc)
    try:
        return [tuple(row) for row in handler.list_runtimes(runtime_name=name)]
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"Lithops could not list the runtimes of '{lc['lithops']['backend']}': {exc}") from None
