"""Benchmark: scatter overhead per no-op item on the local, Dask and Lithops backends.

For each engine the same number of no-op items runs twice on the *same* workers: once through
the raw engine (``ProcessPoolExecutor.map``, Dask ``client.map`` + ``gather``, Lithops
``FunctionExecutor.map`` + ``get_result``) with a trivial function, and once through the
radioflow backend's ``map`` of invocations of a python cab (``os.getpid``), which adds the
invocation payload, :func:`radioflow.invoke.execute.execute` (log capture, parameter handling)
and the Result. Raw and radioflow runs alternate; times are medians of ``--reps`` runs after
one warm-up. ``lithops`` uses radioflow's default batching (about four activations per
worker); ``lithops-batch1`` gives every item its own activation, like the raw map.

Prints a markdown table and writes it to ``bench/results/backends.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from radioflow.invoke import Invocation  # noqa: E402

NOOP_CAB = {"name": "noop", "flavour": "python", "command": "os.getpid", "inputs": {}, "outputs": {}}


def noop(x: int) -> int:
    """The raw engines' no-op."""
    return x


def timed_pair(raw: Callable[[], Any], ours: Callable[[], Any], reps: int) -> tuple[float, float]:
    """Median wall times of ``raw`` and ``ours``, alternated so that machine load hits both alike."""
    raw()  # warm-up: worker imports, runtime deployment
    ours()
    t_raw, t_ours = [], []
    for _ in range(reps):
        for fn, acc in ((raw, t_raw), (ours, t_ours)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return statistics.median(t_raw), statistics.median(t_ours)


def invocations(n: int, workdir: str) -> list[Invocation]:
    return [Invocation(step=f"noop-{i}", cab=NOOP_CAB, params={}, workdir=workdir) for i in range(n)]


def check(results: list) -> None:
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"benchmark item failed: {bad[0].error}")


def bench_local(n: int, reps: int, workers: int, workdir: str) -> tuple[float, float]:
    from radioflow.backends.local import LocalBackend

    backend = LocalBackend(max_workers=workers)
    pool = ProcessPoolExecutor(workers)
    try:
        raw, ours = timed_pair(lambda: list(pool.map(noop, range(n))),
                               lambda: check(backend.map(invocations(n, workdir))), reps)
    finally:
        pool.shutdown()
        backend.close()
    return raw, ours


def bench_dask(n: int, reps: int, workers: int, workdir: str) -> tuple[float, float]:
    from radioflow.backends.dask import DaskBackend

    backend = DaskBackend({"n_workers": workers, "show_dashboard": False})
    client = backend.client
    try:
        raw, ours = timed_pair(lambda: client.gather(client.map(noop, range(n), pure=False)),
                               lambda: check(backend.map(invocations(n, workdir))), reps)
    finally:
        backend.close()
    return raw, ours


def bench_lithops(n: int, reps: int, workers: int, workdir: str, batch_size: Any = "auto") -> tuple[float, float]:
    from radioflow.backends.lithops import LithopsBackend

    backend = LithopsBackend({"workers": workers, "batch_size": batch_size, "lithops": {"log_level": "ERROR"}})
    fexec = backend.executor
    try:
        raw, ours = timed_pair(
            lambda: fexec.get_result(fexec.map(noop, range(n), include_modules=None), show_progressbar=False),
            lambda: check(backend.map(invocations(n, workdir))), reps)
    finally:
        backend.close()
    return raw, ours


def bench_lithops_unbatched(n: int, reps: int, workers: int, workdir: str) -> tuple[float, float]:
    return bench_lithops(n, reps, workers, workdir, batch_size=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200, help="items per map (local, Dask)")
    ap.add_argument("--lithops-items", type=int, default=50, help="items per map (Lithops localhost)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--engines", nargs="+", default=["local", "dask", "lithops", "lithops-batch1"])
    ap.add_argument("--out", default=str(HERE / "results" / "backends.md"))
    args = ap.parse_args(argv)
    benches = {"local": (bench_local, args.items, "ProcessPoolExecutor.map"),
               "dask": (bench_dask, args.items, "client.map + gather"),
               "lithops": (bench_lithops, args.lithops_items, "FunctionExecutor.map + get_result"),
               "lithops-batch1": (bench_lithops_unbatched, args.lithops_items, "FunctionExecutor.map + get_result")}
    rows = [
        f"Scatter overhead per no-op item ({args.workers} workers, median of {args.reps}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start).",
        "",
        "| backend | items | raw engine | raw ms/item | radioflow ms/item | overhead |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.engines:
            fn, n, raw_name = benches[name]
            raw, ours = fn(n, args.reps, args.workers, workdir)
            over = (ours - raw) / raw * 100
            rows.append(f"| {name} | {n} | {raw_name} | {raw / n * 1e3:.2f} | {ours / n * 1e3:.2f} | {over:+.0f} % |")
            print(rows[-1], file=sys.stderr)
    text = "\n".join(rows) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
