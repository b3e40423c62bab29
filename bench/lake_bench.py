"""Benchmark: datalake ingestion throughput (products per second) into the local lake.

N real products (small FITS images with their ObsCore ``.meta``, made by radioflow's writers)
are dropped into ``staging/<namespace>/``; one ``Ingestor.run_once`` pass validates each
``.meta`` against the JSON Schema, checks completeness, registers the DID in the SQLite
catalogue (synchronous=FULL, one transaction per product) and moves product and ``.meta`` to
``processed/``. Throughput = N / wall time of the pass, median of 3. A cone search over the
catalogue is timed too. (Rucio is not measured: no Rucio server in this set-up.)

Writes ``bench/results/lake.md`` and prints it.
"""
from __future__ import annotations

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


def one_pass(n: int) -> tuple[float, float]:
    """(products/s of one ingest pass, ms per cone search) for ``n`` products."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lake"
        staging = root / "staging" / "bench"
        for i in range(n):
            make_product(staging, f"b{i:05d}.fits", ra=(i * 7.3) % 360, dec=-60 + (i * 3.1) % 120,
                         mjd=60000 + i / 24, namespace="bench")
        t0 = time.perf_counter()
        report = Ingestor(root, settle=0).run_once()
        took = time.perf_counter() - t0
        assert len(report.processed) == n, report.summary()
        with Catalogue(root / "catalogue.db") as cat:
            t1 = time.perf_counter()
            for k in range(20):
                cat.search(Query(ra=(k * 17.0) % 360, dec=0.0, radius=10.0))
            search_ms = (time.perf_counter() - t1) / 20 * 1000
        return n / took, search_ms


def main() -> int:
    rows = []
    for n in (50, 500):
        runs = [one_pass(n) for _ in range(3)]
        rows.append((n, statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)))
    lines = ["| products | ingest (products/s) | cone search over the catalogue (ms) |", "| ---: | ---: | ---: |"]
    lines += [f"| {n} | {rate:.0f} | {ms:.1f} |" for n, rate, ms in rows]
    text = "\n".join(lines) + "\n\nLocal lake only; one pass of `Ingestor.run_once`, median of 3.\n"
    out = HERE / "results" / "lake.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
