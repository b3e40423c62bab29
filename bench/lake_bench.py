"""Benchmark: datalake ingestion throughput (products per second), local lake and Rucio.

N real products (small FITS images with their ObsCore ``.meta``, made by radioflow's writers)
are dropped into ``staging/<namespace>/``; one ``Ingestor.run_once`` pass validates each
``.meta`` against the JSON Schema, checks completeness, registers the DID in the SQLite
catalogue (synchronous=FULL, one transaction per product) and moves product and ``.meta`` to
``processed/``. Throughput = N / wall time of the pass, median of 3. A cone search over the
catalogue is timed too. The same pass into a real Rucio server on 127.0.0.1 (PostgreSQL, JSON
metadata plugin, POSIX RSE; :mod:`radioflow.ops.lake.rucio_server`) measures the Rucio backend:
per product an upload with replica and lifetime rule, the metadata and a few lookups, each a
REST call to a single-process development server, so it is a floor, not production speed.
Both are measured in the same run; compare their ratio, not absolute numbers, on a loaded machine.

Writes ``bench/results/lake.md`` and prints it.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "ops"))

from lake_helpers import make_product  # noqa: E402

from radioflow.ops.lake.catalogue import Catalogue, Query  # noqa: E402
from radioflow.ops.lake.ingest import Ingestor  # noqa: E402
from radioflow.ops.lake.rucio_lake import RucioLake  # noqa: E402
from radioflow.ops.lake.rucio_server import LocalRucio  # noqa: E402


def one_pass(n: int, rse: str | None = None, run: int = 0) -> tuple[float, float]:
    """(products/s of one ingest pass, ms per cone search) for ``n`` products; Rucio when ``rse``."""
    ns = f"bench{run}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lake"
        staging = root / "staging" / ns
        for i in range(n):
            make_product(staging, f"b{i:05d}.fits", ra=(i * 7.3) % 360, dec=-60 + (i * 3.1) % 120,
                         mjd=60000 + i / 24, namespace=ns)
        t0 = time.perf_counter()
        ing = Ingestor(root, settle=0, backend="rucio" if rse else "local", rse=rse)
        report = ing.run_once()
        took = time.perf_counter() - t0
        assert len(report.processed) == n, report.summary()
        with (RucioLake(None, rse) if rse else Catalogue(root / "catalogue.db")) as cat:
            t1 = time.perf_counter()
            for k in range(20):
                cat.search(Query(ra=(k * 17.0) % 360, dec=0.0, radius=10.0))
            search_ms = (time.perf_counter() - t1) / 20 * 1000
        return n / took, search_ms


def main() -> int:
    rows = []
    for n in (50, 500):
        runs = [one_pass(n) for _ in range(3)]
        rows.append(("local", n, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))
    server = LocalRucio(rse="BENCH_POSIX").start()
    old = os.environ.get("RUCIO_CONFIG")
    os.environ["RUCIO_CONFIG"] = str(server.client_cfg)
    try:
        runs = [one_pass(50, rse="BENCH_POSIX", run=k) for k in range(3)]
        rows.append(("rucio", 50, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))
    finally:
        os.environ.pop("RUCIO_CONFIG", None) if old is None else os.environ.update(RUCIO_CONFIG=old)
        server.stop()
    lines = ["| lake | products | ingest (products/s) | cone search (ms) |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {lake} | {n} | {rate:.1f} | {ms:.1f} |" for lake, n, rate, ms in rows]
    ratio = rows[0][2] / rows[-1][2]
    text = "\n".join(lines) + (f"\n\nOne pass of `Ingestor.run_once`, median of 3, same run. Local / Rucio throughput at "
                               f"50 products: {ratio:.0f}x (Rucio: REST upload, replica, rule, metadata per product "
                               f"against a local development server on PostgreSQL; cone search = metadata filter "
                               f"on Rucio + exact distance client-side).\n")
    out = HERE / "results" / "lake.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
