"""Line charts of a run's metrics over training, drawn with Pillow (no plotting library needed).

  curves = metric_curves("runs/00000-shapes32-...")      # {"fd2k_clf": [(kimg, value), ...], ...}
  image = chart([Panel("fd2k_clf", [Series("G_ema", *zip(*curves["fd2k_clf"]))], log_y=True)], "kimg")
  save_png("curves.png", image)

A chart is panels stacked over one shared x axis; each panel has its own y axis (linear or log),
its series (polylines with a dot per point) and optional horizontal reference lines.
runners/plot_metrics.py is the shell.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))
_GRID, _AXIS, _TEXT, _REFERENCE = (225, 225, 225), (60, 60, 60), (20, 20, 20), (130, 130, 130)


@dataclasses.dataclass(frozen=True)
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]


@dataclasses.dataclass(frozen=True)
class Panel:
    """One y axis. ``references``: (value, label) horizontal dashed lines, e.g. a target."""

    title: str
    series: Sequence[Series]
    log_y: bool = False
    y_range: Optional[Tuple[float, float]] = None
    references: Sequence[Tuple[float, str]] = ()


def nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> List[float]:
    """1, 2 and 5 times powers of ten from the last at or below lo to the first at or above hi (both > 0)."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        ticks += [m * 10.0**exponent for m in (1, 2, 5)]
    below = [t for t in ticks if t <= lo][-1:]
    above = [t for t in ticks if t >= hi][:1]
    return below + [t for t in ticks if lo < t < hi] + above


def _label(value: float) -> str:
    return f"{value:.4g}"


def chart(panels: Sequence[Panel], x_label: str, width: int = 640, panel_height: int = 200) -> np.ndarray:
    """The panels as one RGB uint8 image ``[H, width, 3]``, sharing the x axis of all series."""
    font = ImageFont.load_default(size=12)
    margin_left, margin_right, top, gap, bottom = 64, 150, 24, 34, 40
    height = top + len(panels) * panel_height + (len(panels) - 1) * gap + bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    xs = [x for p in panels for s in p.series for x in s.x]
    if not xs:
        raise ValueError("nothing to plot: every series is empty")
    x_ticks = nice_ticks(min(0.0, min(xs)), max(xs))
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    plot_w = width - margin_left - margin_right

    def px(x: float) -> float:
        return margin_left + (x - x_lo) / (x_hi - x_lo) * plot_w

    for index, panel in enumerate(panels):
        y0 = top + index * (panel_height + gap)
        values = [v for s in panel.series for v in s.y] + [v for v, _ in panel.references]
        if panel.y_range:
            lo, hi = panel.y_range
        else:
            lo, hi = min(values), max(values)
        if panel.log_y:
            ticks = log_ticks(max(lo, 1e-12), max(hi, 1e-12))
            transform = math.log10
        else:
            ticks = nice_ticks(lo, hi) if not panel.y_range else nice_ticks(*panel.y_range)
            transform = float
        t_lo, t_hi = transform(ticks[0]), transform(ticks[-1])

        def py(y: float) -> float:
            return y0 + panel_height - (transform(y) - t_lo) / (t_hi - t_lo) * panel_height

        for t in ticks:
            draw.line([(margin_left, py(t)), (margin_left + plot_w, py(t))], fill=_GRID)
            draw.text((margin_left - 6, py(t)), _label(t), fill=_TEXT, font=font, anchor="rm")
        for t in x_ticks:
            draw.line([(px(t), y0), (px(t), y0 + panel_height)], fill=_GRID)
        draw.rectangle([margin_left, y0, margin_left + plot_w, y0 + panel_height], outline=_AXIS)
        draw.text((margin_left, y0 - 4), panel.title, fill=_TEXT, font=font, anchor="ld")
        legend_y = y0 + 4
        for value, text in panel.references:
            y = py(value)
            for x in range(margin_left, margin_left + plot_w, 8):
                draw.line([(x, y), (min(x + 4, margin_left + plot_w), y)], fill=_REFERENCE)
            draw.text((margin_left + plot_w + 8, y), f"{text} ({_label(value)})", fill=_REFERENCE, font=font, anchor="lm")
        for k, series in enumerate(panel.series):
            color = COLORS[k % len(COLORS)]
            points = [(px(x), py(y)) for x, y in zip(series.x, series.y)]
            if len(points) > 1:
                draw.line(points, fill=color, width=2)
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
            if len(panel.series) > 1:
                draw.text((margin_left + plot_w + 8, legend_y), series.label, fill=color, font=font, anchor="lt")
                legend_y += 16
        if index == len(panels) - 1:
            for t in x_ticks:
                draw.text((px(t), y0 + panel_height + 4), _label(t), fill=_TEXT, font=font, anchor="mt")
            draw.text((margin_left + plot_w / 2, y0 + panel_height + 22), x_label, fill=_TEXT, font=font, anchor="mt")
    return np.asarray(image)


def metric_curves(run_dir: str) -> Dict[str, List[Tuple[float, float]]]:
    """``{result: [(kimg, value), ...]}`` in kimg order from a run's ``metric-<name>.jsonl`` files
    (one result per name, or several, e.g. pr50k3's precision and recall). The images shown come
    from the record's ``cur_nimg``, else from its snapshot's name; a snapshot evaluated twice keeps
    its last value."""
    curves: Dict[str, Dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "metric-*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                record = json.loads(line)
                nimg = record.get("cur_nimg")
                if nimg is None:
                    digits = re.findall(r"(\d+)\.\w+$", str(record.get("snapshot_pkl") or ""))
                    if not digits:
                        continue
                    nimg = int(digits[0])
                for name, value in record.get("results", {}).items():
                    curves.setdefault(name, {})[int(nimg)] = float(value)
    return {name: [(nimg / 1000, v) for nimg, v in sorted(points.items())] for name, points in sorted(curves.items())}


def _is_fraction(name: str) -> bool:
    """Results in [0, 1] (accuracies, precision, recall) get a linear 0..1 axis; distances a log axis."""
    return any(word in name for word in ("acc", "precision", "recall"))


def curves_chart(curves: Dict[str, List[Tuple[float, float]]],
                 references: Optional[Dict[str, Sequence[Tuple[float, str]]]] = None) -> np.ndarray:
    """One panel per result over kimg: fractions on 0..1, positive distances on a log axis, with
    ``references[name]`` as dashed (value, label) lines."""
    references = references or {}
    panels = []
    for name, points in curves.items():
        kimg, values = [p[0] for p in points], [p[1] for p in points]
        fraction = _is_fraction(name)
        panels.append(Panel(name + (" (higher is better)" if fraction else " (lower is better)"), [Series(name, kimg, values)],
                            log_y=not fraction and min(values) > 0, y_range=(0.0, 1.0) if fraction else None,
                            references=tuple(references.get(name, ()))))
    return chart(panels, x_label="kimg (thousands of images shown)")


def curves_table(curves: Dict[str, List[Tuple[float, float]]]) -> str:
    """A markdown table: a row per result, a column per evaluated kimg."""
    kimgs = sorted({k for points in curves.values() for k, _ in points})
    lines = ["| kimg | " + " | ".join(f"{k:.1f}" for k in kimgs) + " |", "|---" * (len(kimgs) + 1) + "|"]
    for name, points in curves.items():
        values = dict(points)
        lines.append(f"| {name} | " + " | ".join(f"{values[k]:.3g}" if k in values else "" for k in kimgs) + " |")
    return "\n".join(lines)
