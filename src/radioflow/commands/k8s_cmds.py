"""CLI: ``radioflow k8s render RECIPE_OR_STEP -o DIR`` and ``radioflow k8s render --sbi SBI.json -o DIR``
(Kubernetes manifests without a cluster)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence

import typer

RECIPE_DIR = "/etc/radioflow/recipe"
DEFAULT_STORE = "etcd://etcd:2379"


def _options(config: dict[str, Any], image: str | None, namespace: str | None) -> dict[str, Any]:
    from ..backends import backend_options

    opts = backend_options("kubernetes", config)
    opts.pop("select", None)
    if image:
        opts["image"] = image
    if namespace:
        opts["namespace"] = namespace
    opts.setdefault("pvc", {"name": "radioflow-data", "size": "10Gi", "access_modes": ["ReadWriteOnce"]})
    if not opts.get("volumes"):
        opts["volumes"] = [{"name": "data", "claim": opts["pvc"]["name"], "mount": "/data"}]
        opts.setdefault("workdir", "/data")
    return opts


def render(source: Path, config: dict[str, Any], *, image: str | None = None, namespace: str | None = None,
           schedule: str | None = None, backend: str = "local", dask: bool = False,
           run_args: Sequence[str] = (), ingest: bool = False, ingest_size: str | None = None) -> dict[str, Any]:
    """Manifests (file name -> manifest dict, or text for the Dockerfile) for a recipe or a step.

    ``source`` is a recipe (``.yml``/``.yaml``: ConfigMap with the recipe, PVC, Job running
    ``radioflow run``, optional CronJob and DaskCluster, whose in-cluster scheduler address the
    Job gets as ``RADIOFLOW_BACKEND__DASK__ADDRESS``) or an invocation JSON (``.json``: the
    exact ConfigMap + Job the kubernetes backend submits for that step). ``run_args``
    (``[RECIPE] NAME=VALUE ... --BOOL``) configure the run: inputs with an environment variable
    through the container's environment, the others on its command line (see
    :func:`radioflow.run.inputs.deployment_settings`). ``ingest`` adds the datalake pieces
    (:mod:`radioflow.ops.lake.deploy`: sized PVCs, memory from the estimate, the ingestor).
    """
    import json

    import yaml

    from ..errors import UsageError
    from ..invoke import Invocation
    from ..ops import deploy

    if not source.is_file():
        raise UsageError(f"{source}: no such recipe or step file.")
    opts = _options(config, image, namespace)
    out: dict[str, Any] = {"Dockerfile": deploy.dockerfile(opts)}
    if source.suffix == ".json":
        try:
            data = json.loads(source.read_text())
            inv = Invocation(**data)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{source} is not an invocation JSON (step, cab, params, ...): {exc}") from None
        from ..backends.kubernetes import KubernetesBackend

        cmap, job = KubernetesBackend(opts).manifests(inv, 0)
        out.update({"configmap.yaml": cmap, "job.yaml": job, "pvc.yaml": deploy.pvc(opts)})
        return out
    text = source.read_text()
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source} is not valid YAML: {exc}") from None
    name = deploy.k8s_name("rf", source.stem, limit=40)
    cmap = deploy.config_map(f"{name}-recipe", opts, {source.name: text})
    recipe_volume = [{"name": "recipe", "config_map": cmap["metadata"]["name"], "mount": RECIPE_DIR, "read_only": True}]
    from ..run.inputs import deployment_settings

    args: list[str] = []
    env: dict[str, str] = {}
    if run_args:
        args, env = deployment_settings(str(source), run_args, scheduled=bool(schedule))
    elif schedule:
        try:    # per-run names are checked; a recipe that does not load here fails when it runs, as before
            args, env = deployment_settings(str(source), [], scheduled=True)
        except UsageError:
            pass
    command = ["radioflow", "run", f"{RECIPE_DIR}/{source.name}", "-b", backend, *args]
    if ingest:
        from ..ops.lake.deploy import ingest_setup

        opts, extra_volumes, extra_files = ingest_setup(str(source), name, opts, args, env, ingest_size=ingest_size)
        recipe_volume += extra_volumes
        out.update(extra_files)
    if dask or backend == "dask":
        dask_opts = {**opts, **((config.get("backend") or {}).get("dask") or {}).get("kubernetes", {})}
        cluster = deploy.dask_cluster(dask_opts, name=f"{name}-dask")
        out["daskcluster.yaml"] = cluster
        env["RADIOFLOW_BACKEND__DASK__ADDRESS"] = deploy.scheduler_address(cluster)
    out["configmap.yaml"] = cmap
    out["pvc.yaml"] = deploy.pvc(opts)
    out["job.yaml"] = deploy.job(name, opts, command=command, env=env, volumes=recipe_volume)
    if schedule:
        out["cronjob.yaml"] = deploy.cron_job(name, opts, schedule=schedule, command=command, env=env,
                                              volumes=recipe_volume)
    return out


def render_sbi(sbi: Path, config: dict[str, Any], *, store: str | None, image: str | None = None,
               namespace: str | None = None) -> dict[str, Any]:
    """Manifests for an SDP scheduling-block instance (:mod:`radioflow.ops.sdp.k8s`)."""
    import os

    from ..backends import backend_options
    from ..ops.sdp.k8s import render_sbi as render

    opts = {k: v for k, v in backend_options("kubernetes", config).items() if k != "select"}
    opts.update({k: v for k, v in (("image", image), ("namespace", namespace)) if v})
    url = store or os.environ.get("RADIOFLOW_SDP_STORE") or (config.get("sdp") or {}).get("store") or DEFAULT_STORE
    return render(sbi, opts, store=str(url))


def render_cmd(
    source: Optional[Path] = typer.Argument(None, help="Recipe YAML, or a step's invocation JSON.",
                                            show_default=False),
    run_args: List[str] = typer.Argument(None, help="[RECIPE] NAME=VALUE ... --BOOL/--no-BOOL for the run.",
                                         show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Directory to write the manifests into."),
    image: Optional[str] = typer.Option(None, "--image", help="Container image (default: backend.kubernetes.image)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Kubernetes namespace."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="Also render a CronJob with this cron schedule."),
    backend: str = typer.Option("local", "-b", "--backend", help="Backend the in-cluster run uses."),
    dask: bool = typer.Option(False, "--dask", help="Also render a DaskCluster (dask-kubernetes operator)."),
    ingest: bool = typer.Option(False, "--ingest", help="Products to a shared ingest PVC watched by an ingestor "
                                                        "Deployment; memory and volume sizes from the estimate."),
    ingest_size: Optional[str] = typer.Option(None, help="Size of the ingest PVC (default: from the estimate)."),
    sbi: Optional[Path] = typer.Option(None, "--sbi", help="Render an SDP scheduling-block instance instead: "
                                       "controller Deployment, buffer PVCs, per-PB DaskCluster and Job."),
    store: Optional[str] = typer.Option(None, "--store", show_default=False, help="With --sbi: the etcd "
                                        "configuration database the pods use (default: env RADIOFLOW_SDP_STORE, "
                                        f"config sdp.store, else {DEFAULT_STORE})."),
) -> None:
    """Write Kubernetes manifests (Job, ConfigMap, PVC, CronJob, DaskCluster) and a Dockerfile."""
    from ..config import load_config
    from ..errors import UsageError
    from ..ops import deploy

    if (sbi is None) == (source is None):
        raise UsageError("k8s render needs either a recipe/step file or --sbi SBI.json (not both).")
    if sbi is not None:
        if run_args or schedule or dask or ingest:
            raise UsageError("k8s render --sbi takes no recipe arguments, --schedule, --dask or --ingest: the "
                             "SBI's processing blocks say what runs.")
        files = render_sbi(sbi, load_config(), store=store, image=image, namespace=namespace)
    else:
        assert source is not None
        files = render(source, load_config(), image=image, namespace=namespace, schedule=schedule,
                       backend=backend, dask=dask, run_args=run_args or [], ingest=ingest, ingest_size=ingest_size)
    output.mkdir(parents=True, exist_ok=True)
    for fname, item in files.items():
        target = output / fname
        if isinstance(item, str):
            deploy.write_text(target, item)
        else:
            deploy.write_manifests(target, [item])
        typer.echo(str(target))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    k8s_app = typer.Typer(help="Kubernetes: render manifests for recipes and steps.", no_args_is_help=True)
    app.add_typer(k8s_app, name="k8s")
    k8s_app.command("render", context_settings={"ignore_unknown_options": True})(render_cmd)
