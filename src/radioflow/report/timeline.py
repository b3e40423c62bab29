"""The step timeline (Gantt): one bar per cab step, coloured by state, nested recipes and scatter
iterations grouped in shaded bands so the iterations of one loop sit together."""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from .gather import Step

#: Bar colour of each step state; the HTML legend uses the same table.
STATE_COLOURS = {
    "ok": "#2ca02c", "failed": "#d62728", "running": "#1f77b4", "skipped": "#bcbd22",
    "resumed": "#9467bd", "interrupted": "#ff7f0e",
}
OTHER_COLOUR = "#8c564b"
_BANDS = ("#eef2f7", "#dde4ee")


@dataclass
class Layout:
    """Rows of the timeline (cab steps, grouped) and the row span of every group."""

    rows: list[Step]
    spans: list[tuple[Step, int, int, int]]   # group step, first row, last row, depth


def layout(steps: list[Step]) -> Layout:
    """Cab steps ordered so that each group's steps are contiguous, groups by first start."""
    groups = {s.fqname: s for s in steps if s.group}
    children: dict[str, list[Step]] = {}
    for s in steps:
        children.setdefault(s.parent, []).append(s)
    rows: list[Step] = []
    spans: list[tuple[Step, int, int, int]] = []

    order = {id(s): i for i, s in enumerate(steps)}

    def first_index(s: Step) -> int:
        if not s.group:
            return order[id(s)]
        return min((first_index(c) for c in children.get(s.fqname, [])), default=order[id(s)])

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=first_index):
            if s.group:
                start = len(rows)
                walk(s.fqname, depth + 1)
                if len(rows) > start:
                    spans.append((s, start, len(rows) - 1, depth))
            else:
                rows.append(s)

    walk("", 0)
    placed = {id(s) for s in rows}
    rows += [s for s in steps if not s.group and id(s) not in placed and s.parent not in groups]
    return Layout(rows, spans)


def _ticks(span: float, target: int = 8) -> list[float]:
    """Round tick positions (1, 2 or 5 × 10^k apart) from 0 to ``span``."""
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(span / step) + 1)]


def timeline_svg(steps: list[Step], t0: float | None) -> tuple[str, Layout]:
    """The Gantt chart as an inline SVG element, and the layout it drew (rows top to bottom).

    SVG rather than a matplotlib PNG: it costs well under a millisecond per step (no plotting
    library import, no rasterising), stays sharp at any zoom, and each bar carries a tooltip
    (step, state, wall time).
    """
    lay = layout(steps)
    rows = lay.rows
    starts = [s.started for s in rows if s.started is not None]
    t0 = t0 if t0 is not None else (min(starts) if starts else 0.0)
    ends = [s.finished or s.started or t0 for s in rows]
    span = max([e - t0 for e in ends] + [1e-3])
    n = max(len(rows), 1)
    pitch, bar, top, bottom, width = 20, 12, 8, 42, 1000
    label = max((len(s.name) for s in rows), default=4)
    x0 = min(480, 12 + 6.4 * label)
    plot = width - x0 - 24
    height = top + pitch * n + bottom
    scale = plot / (span * 1.12)

    def y(row: float) -> float:
        return top + pitch * (row + 0.5)

    out = [f'<svg id="timeline" class="wide" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="timeline of {len(rows)} steps" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    for group, first, last, depth in sorted(lay.spans, key=lambda g: g[3]):   # outer bands first
        pad = 0.48 - 0.04 * min(depth, 5)
        y1, y2 = y(first - pad), y(last + pad)
        out.append(f'<rect x="{x0:.1f}" y="{y1:.1f}" width="{plot:.1f}" height="{y2 - y1:.1f}" fill="{_BANDS[depth % 2]}"/>'
                   f'<text x="{x0 + plot - 110 * depth * plot / width:.1f}" y="{y1 + 10:.1f}" text-anchor="end" '
                   f'font-size="9" font-style="italic" fill="#555555">{escape(group.name.rsplit(".", 1)[-1])}</text>')
    for tick in _ticks(span * 1.12):
        x = x0 + tick * scale
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + pitch * n}" stroke="#cccccc" stroke-width="0.5"/>'
                   f'<text x="{x:.1f}" y="{top + pitch * n + 14}" text-anchor="middle" fill="#333333">{tick:g}</text>')
    out.append(f'<text x="{x0 + plot / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="#333333">'
               'seconds since the run started</text>')
    for row, s in enumerate(rows):
        left = ((s.started or t0) - t0) * scale
        w = max((s.seconds or 0.0) * scale, 4.0)
        colour = STATE_COLOURS.get(s.status, OTHER_COLOUR)
        name = escape(s.name)
        wall = f"{s.seconds:.2f} s" if s.seconds is not None else "not finished"
        out.append(f'<text x="{x0 - 6:.1f}" y="{y(row) + 4:.1f}" text-anchor="end" fill="#222222">{name}</text>'
                   f'<rect x="{x0 + left:.1f}" y="{y(row) - bar / 2:.1f}" width="{w:.1f}" height="{bar}" fill="{colour}">'
                   f'<title>{escape(s.fqname)}: {escape(s.status)}, {wall}</title></rect>')
        if s.seconds is not None and n <= 60:   # long runs have the durations in the step table
            out.append(f'<text x="{x0 + left + w + 4:.1f}" y="{y(row) + 4:.1f}" font-size="9" fill="#333333">{wall}</text>')
    out.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{top}" y2="{top + pitch * n}" stroke="#333333"/>'
               f'<line x1="{x0:.1f}" x2="{x0 + plot:.1f}" y1="{top + pitch * n}" y2="{top + pitch * n}" stroke="#333333"/>'
               '</svg>')
    return "".join(out), lay
