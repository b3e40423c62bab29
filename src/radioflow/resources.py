"""Memory checks before work: refuse a job that cannot fit instead of swapping or being killed."""
from __future__ import annotations

import os

from .errors import UsageError


def available_memory() -> int:
    """Bytes the machine can give now (``MemAvailable``; total physical memory where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human(nbytes: float) -> str:
    """``1.5 GiB`` style sizes for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"


def check_memory(needed: float, what: str, hint: str) -> None:
    """Raise a one-paragraph :class:`UsageError` when ``needed`` bytes exceed what is available."""
    have = available_memory()
    if needed > have:
        raise UsageError(f"{what} needs about {human(needed)} of memory but this machine has {human(have)} "
                         f"available. {hint}")
