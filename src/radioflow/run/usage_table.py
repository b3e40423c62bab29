"""``radioflow runs RUN``: one run's steps with their accounting, as a table or as JSON.

Per step: wall, CPU, peak memory, bytes read and written, invocations and cost (see
:mod:`radioflow.invoke.usage` and :mod:`.costs`). A nested recipe's or loop's row shows the sums
over the cab steps below it; the totals add up the cab steps only (peak memory: the largest),
so nothing is counted twice. Runs recorded before accounting existed show ``-``.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

from ..resources import human
from .records import USAGE_COLUMNS

#: Columns of the JSON form of a step, in order.
STEP_KEYS = ("fqname", "cab", "status", "wall_seconds", *USAGE_COLUMNS, "error", "resumed_from")


def _wall(step: Mapping[str, Any]) -> float | None:
    a, b = step.get("started"), step.get("finished")
    return b - a if a and b else None


def is_group(step: Mapping[str, Any]) -> bool:
    """Whether a step row is a nested recipe (its values are sums of the rows below it)."""
    return str(step.get("cab") or "").startswith("recipe:")


def step_json(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step row as plain JSON data (NULL columns as null)."""
    return {k: (_wall(step) if k == "wall_seconds" else step.get(k)) for k in STEP_KEYS}


def totals(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sums over the cab steps (the largest peak memory); None where no step has a value."""
    cabs = [s for s in steps if not is_group(s)]
    out: dict[str, Any] = {}
    for key in ("wall_seconds", *USAGE_COLUMNS):
        values = [v for v in ((_wall(s) if key == "wall_seconds" else s.get(key)) for s in cabs) if v is not None]
        out[key] = (max(values) if key == "peak_memory" else sum(values)) if values else None
    return out


_INDEX = re.compile(r"(?<=\.)\d+(?=\.)")


def loop_steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cab steps of loops summed over their iterations (``loop.*.step``), each with its call count."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for s in steps:
        if not is_group(s) and _INDEX.search(str(s["fqname"])):
            groups.setdefault(_INDEX.sub("*", str(s["fqname"])), []).append(s)
    return [{"fqname": name, "iterations": len(rows), **totals(rows)} for name, rows in groups.items()]


def run_json(run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> str:
    """``radioflow runs RUN --json``."""
    prices = json.loads(run["prices"]) if run.get("prices") else None
    data = {"run": {k: run.get(k) for k in ("id", "recipe", "status", "started", "finished", "error")},
            "prices": prices, "steps": [step_json(s) for s in steps], "loops": loop_steps(steps), "totals": totals(steps)}
    return json.dumps(data, indent=2, sort_keys=False)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _bytes(value: float | None) -> str:
    return "-" if value is None else human(value)


def _count(value: float | None) -> str:
    return "-" if value is None else str(int(value))


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.7f}"


_HEADER = (f"  {'status':<10} {'step':<40} {'wall':>9} {'CPU':>9} {'peak mem':>10} {'read':>10} "
           f"{'written':>10} {'calls':>5} {'cost':>10}")


def _line(status: str, name: str, wall: float | None, rec: Mapping[str, Any], note: str = "") -> str:
    return (f"  {status:<10} {name:<40} {_secs(wall):>9} {_secs(rec.get('cpu_seconds')):>9} "
            f"{_bytes(rec.get('peak_memory')):>10} {_bytes(rec.get('bytes_read')):>10} "
            f"{_bytes(rec.get('bytes_written')):>10} {_count(rec.get('invocations')):>5} "
            f"{_money(rec.get('cost')):>10}{note}")


def run_table(steps: Sequence[Mapping[str, Any]], run: Mapping[str, Any]) -> list[str]:
    """The table lines of ``radioflow runs RUN``: header, one line per step, totals, price model."""
    lines = [_HEADER]
    for s in steps:
        note = f"  ({s['error']})" if s.get("error") else (
            f"  (from run {s['resumed_from']})" if s.get("resumed_from") else "")
        name = str(s["fqname"]) + (" (sum)" if is_group(s) else "")
        lines.append(_line(str(s["status"]), name, _wall(s), s, note))
    for loop in loop_steps(steps):
        lines.append(_line("", f"{loop['fqname']} (x{loop['iterations']})", loop["wall_seconds"], loop))
    total = totals(steps)
    lines.append(_line("", "total (cab steps)", total["wall_seconds"], total))
    if run.get("prices"):
        p = json.loads(run["prices"])
        lines.append(f"  cost in {p.get('currency', 'USD')}: GB-s (billed memory, else peak) x "
                     f"{p.get('per_gb_second')} + calls x {p.get('per_invocation')}; prices: {p.get('source')}")
    return lines


__all__ = ["STEP_KEYS", "is_group", "loop_steps", "run_json", "run_table", "step_json", "totals"]
