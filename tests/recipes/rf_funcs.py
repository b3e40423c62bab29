"""Small python cab functions used by the recipe tests (importable: tests/recipes is on sys.path)."""
from __future__ import annotations

import os
import time


def write_text(path: str, text: str, repeat: int = 1) -> dict:
    """Write ``text`` ``repeat`` times into ``path``; return its length."""
    with open(path, "w") as fh:
        fh.write(text * repeat)
    return {"length": len(text) * repeat}


def concat(inputs: list, output: str) -> dict:
    """Concatenate files."""
    with open(output, "w") as fh:
        for path in inputs:
            with open(path) as src:
                fh.write(src.read())
    return {"nfiles": len(inputs)}


def add(a: float, b: float) -> dict:
    return {"total": a + b}


def square(x: int, out: str) -> dict:
    with open(out, "w") as fh:
        fh.write(str(x * x))
    return {"value": x * x, "pid": os.getpid()}


def sleepy(seconds: float, path: str, marker: str = "") -> dict:
    """Touch ``marker`` (if given), sleep, then write ``path``."""
    if marker:
        open(marker, "w").close()
    time.sleep(seconds)
    with open(path, "w") as fh:
        fh.write("done")
    return {}


def fail(message: str = "boom") -> dict:
    raise RuntimeError(message)


def chain(label: str, path: str, prev: str = "", seconds: float = 0.0, marker: str = "") -> dict:
    """Append ``label`` to the content of ``prev`` into ``path`` (touching ``marker``, sleeping first)."""
    if marker:
        open(marker, "w").close()
    if seconds:
        time.sleep(seconds)
    text = open(prev).read() if prev else ""
    with open(path, "w") as fh:
        fh.write(text + label)
    return {"size": len(text) + len(label)}


def write_column(dataset: str, column: str, value: float) -> dict:
    """Store column ``column`` (all ``value``) of the dataset at ``dataset`` (a delta for Zarr)."""
    import numpy as np

    from radioflow.vis.io import open_dataset, write_columns

    shape = open_dataset(dataset).VISIBILITY.shape
    return {"written": write_columns(dataset, {column: np.full(shape, value, complex)})}


def work(out: str, cpu: float = 0.0, alloc_mb: int = 0, write_mb: int = 0) -> dict:
    """Burn ``cpu`` seconds of CPU, hold ``alloc_mb`` MiB resident, write ``write_mb`` MiB to ``out``."""
    start = time.process_time()
    spins = 0
    while time.process_time() - start < cpu:
        spins += 1
    block = b"\x01" * (alloc_mb * 2 ** 20)      # written by memset: every page resident
    held = len(block)
    del block
    chunk = b"x" * 2 ** 20
    with open(out, "wb") as fh:
        for _ in range(write_mb):
            fh.write(chunk)
    return {"spins": spins, "held": held}
