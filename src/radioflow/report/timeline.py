"""The step timeline (Gantt): one bar per cab step, coloured by state, nested recipes and scatter
iterations grouped in shaded bands so the iterations of one loop sit together."""
from __future__ import annotations

from dataclasses import dataclass

from .figures import new_figure, png_bytes
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


def timeline_png(steps: list[Step], t0: float | None) -> tuple[bytes, Layout]:
    """The Gantt chart as PNG, and the layout it drew (rows top to bottom)."""
    lay = layout(steps)
    rows = lay.rows
    starts = [s.started for s in rows if s.started is not None]
    t0 = t0 if t0 is not None else (min(starts) if starts else 0.0)
    ends = [s.finished or s.started or t0 for s in rows]
    span = max([e - t0 for e in ends] + [1e-3])
    n = max(len(rows), 1)
    height = 1.1 + 0.28 * n
    fig = new_figure(10.0, height, layout=None)   # margins by hand: constrained layout costs ms per label
    label = max((len(s.name) for s in rows), default=4)
    left = min(0.5, 0.03 + 0.0052 * label)
    fig.subplots_adjust(left=left, right=0.97, top=1 - 0.25 / height, bottom=0.6 / height)
    ax = fig.add_subplot()
    for group, first, last, depth in sorted(lay.spans, key=lambda g: g[3]):   # outer bands first
        pad = 0.48 - 0.04 * min(depth, 5)
        ax.axhspan(first - pad, last + pad, color=_BANDS[depth % 2], zorder=0, lw=0)
        ax.text(1.0 - 0.11 * depth, first - pad, f" {group.name.rsplit('.', 1)[-1]} ", transform=ax.get_yaxis_transform(),
                ha="right", va="top", fontsize=7, color="#555555", style="italic", zorder=1)
    lefts = [((s.started or t0) - t0) for s in rows]
    widths = [max((s.seconds or 0.0), span * 0.004) for s in rows]
    colours = [STATE_COLOURS.get(s.status, OTHER_COLOUR) for s in rows]
    ax.barh(range(len(rows)), widths, left=lefts, height=0.6, color=colours, zorder=2)
    # durations beside the bars while they stay legible; long runs have them in the step table
    for y, (x, w, s) in enumerate(zip(lefts, widths, rows) if n <= 60 else ()):
        if s.seconds is not None:
            ax.text(x + w + span * 0.005, y, f"{s.seconds:.2f} s", va="center", fontsize=7, color="#333333", zorder=3)
    ax.set_yticks(range(len(rows)), [s.name for s in rows], fontsize=7)
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    ax.set_xlim(0, span * 1.12)
    ax.set_xlabel("seconds since the run started")
    ax.grid(axis="x", color="#cccccc", lw=0.5, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return png_bytes(fig), lay
