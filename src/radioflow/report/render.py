"""The run report as one self-contained HTML file: pictures embedded as base64 PNG, styles
inline, no scripts or network. Rendered with Jinja2 with autoescaping on, because nearly all
the text shown (logs, errors, parameters) comes from the run and must never become markup."""
from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from .gather import Product, RunData, Step
from .timeline import OTHER_COLOUR, STATE_COLOURS, timeline_svg

MAX_PICTURES = 300             # images, uv plots and gain plots in one report, in all


@dataclass
class Picture:
    """One rendered product: title, the PNG as a data URI (or the reason it could not be drawn)."""

    title: str
    step: str
    path: str
    uri: str = ""
    note: str = ""
    stats: dict[str, Any] | None = None


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("radioflow.report", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(when=when, duration=duration, nbytes=nbytes, pretty=pretty, colour=state_colour)
    return env


def when(ts: float | None) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def nbytes(value: Any) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "—"


def pretty(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, OTHER_COLOUR)


def _pictures(products: list[Product], kind: str, budget: list[int]) -> list[Picture]:
    from .science_plots import gains_png, image_png, uv_png

    out = []
    for p in products:
        if p.kind != kind:
            continue
        pic = Picture(title=p.full.name, step=p.step, path=p.path)
        if budget[0] <= 0:
            pic.note = "not drawn (picture limit of the report reached)"
            out.append(pic)
            continue
        try:
            if kind == "image":
                png, pic.stats = image_png(p.full, p.full.name)
            elif kind == "dataset":
                png = uv_png(p.full, p.full.name)
            else:
                png, pic.stats = gains_png(p.full, p.full.name, p.truth)
            pic.uri = _uri(png)
            budget[0] -= 1
        except Exception as exc:     # a damaged product must not cost the whole report
            pic.note = f"could not draw {p.path}: {type(exc).__name__}: {exc}"
        out.append(pic)
    return out


def _metrics(steps: list[Step]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ICAL image metrics (residual RMS, peak, dynamic range) and calibration metrics from step outputs."""
    imaging, calibration = [], []
    for s in steps:
        out = s.outputs
        if isinstance(out.get("residual_rms"), (int, float)) and isinstance(out.get("peak"), (int, float)):
            rms, peak = float(out["residual_rms"]), float(out["peak"])
            imaging.append({"step": s.name, "label": s.params.get("label") or "", "rms": rms, "peak": peak,
                            "dr": peak / rms if rms > 0 else float("inf")})
        if isinstance(out.get("chi2"), (int, float)):
            err = out.get("phase_error")
            calibration.append({"step": s.name, "label": s.params.get("label") or "", "chi2": float(out["chi2"]),
                                "converged": out.get("converged"),
                                "phase_error": err if isinstance(err, (int, float)) and err >= 0 else None})
    return imaging, calibration


def render(data: RunData) -> str:
    """The report of ``data`` as an HTML document."""
    run = data.run
    svg, lay = timeline_svg(data.steps, run.get("started"))
    budget = [MAX_PICTURES]
    imaging, calibration = _metrics(data.cab_steps)
    total = (run["finished"] - run["started"]) if run.get("finished") and run.get("started") else None
    counts: dict[str, int] = {}
    for s in data.cab_steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    page = _env().get_template("report.html").render(
        run=run, data=data, total=total, counts=counts, rows=lay.rows, timeline=Markup(svg),
        failed=[s for s in data.steps if s.status == "failed"],
        images=_pictures(data.products, "image", budget),
        uv=_pictures(data.products, "dataset", budget),
        gains=_pictures(data.products, "solutions", budget),
        imaging=imaging, calibration=calibration, colours=STATE_COLOURS,
        resource_columns=any(s.resources for s in data.steps),
        generated=time.time())
    return page
