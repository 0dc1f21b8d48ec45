"""Line charts drawn with Pillow (matplotlib is not a dependency): curves over kimg as pixels for
``images.save_png``, the one drawing module of runners/plot_training.py and runners/plot_metrics.py.

  chart([Panel("r_t", [Series("noaug", kimg, rt, RED)], guides=[(0.6, "target")])], cols=1)

A panel has its own y axis (linear, fixed, or logarithmic), its series (polylines with a dot per
point) and optional dashed horizontal guides with labels (a target, a reference score).
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Colour = Tuple[int, int, int]
RED, BLUE, GREEN, GREY = (214, 39, 40), (31, 119, 180), (44, 160, 44), (150, 150, 150)


@dataclasses.dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    colour: Colour


@dataclasses.dataclass
class Panel:
    title: str
    series: List[Series]
    guides: Sequence[Tuple[float, str]] = ()  # dashed horizontal lines (value, label), e.g. a target
    x_label: str = "kimg"
    log_y: bool = False  # a logarithmic y axis (positive values only)
    y_range: Optional[Tuple[float, float]] = None  # a fixed linear axis (e.g. 0..1 for accuracies)


def nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten, at most ``count``) covering [lo, hi]."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 10))
    return ticks


def log_ticks(lo: float, hi: float) -> List[float]:
    """Ticks of a logarithmic axis over [lo, hi] (both > 0): 1, 2 and 5 times powers of ten, fewer
    when the range spans many decades."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if math.log10(hi / lo) <= 2 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if lo <= t <= hi]
    below = [t for t in ticks if t < lo][-1:] or [ticks[0]]
    above = [t for t in ticks if t > hi][:1] or [ticks[-1]]
    return below + inside + above


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.1e}"


def _panel(panel: Panel, size: Tuple[int, int], font) -> Image.Image:
    w, h = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 44, 10, 22, 30
    shown = (lambda y: math.isfinite(y) and y > 0) if panel.log_y else math.isfinite
    scale = math.log10 if panel.log_y else (lambda y: y)
    xs = [x for s in panel.series for x in s.x]
    ys = [y for s in panel.series for y in s.y if shown(y)] + [g for g, _ in panel.guides if shown(g)]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    lo, hi = panel.y_range or (min(ys, default=1.0), max(ys, default=10.0))
    y_ticks = log_ticks(lo, max(hi, lo * 1.01)) if panel.log_y else nice_ticks(lo, hi)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], scale(y_ticks[0]), scale(y_ticks[-1])

    def at(x: float, y: float) -> Tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        return px, h - bottom - (scale(y) - y0) / (y1 - y0) * (h - top - bottom)

    draw.text((left, 4), panel.title, fill=(0, 0, 0), font=font)
    for t in y_ticks:
        _, py = at(x0, t)
        draw.line([(left, py), (w - right, py)], fill=(235, 235, 235))
        draw.text((2, py - 6), _label(t), fill=(80, 80, 80), font=font)
    for t in x_ticks:
        px, _ = at(t, y_ticks[0])
        draw.line([(px, top), (px, h - bottom)], fill=(235, 235, 235))
        draw.text((px - 8, h - bottom + 4), _label(t), fill=(80, 80, 80), font=font)
    draw.text((w - right - 30, h - 12), panel.x_label, fill=(80, 80, 80), font=font)
    draw.rectangle([left, top, w - right, h - bottom], outline=(120, 120, 120))
    for g, text in panel.guides:
        if not shown(g):
            continue
        _, py = at(x0, g)
        for px in range(left, w - right, 8):
            draw.line([(px, py), (min(px + 4, w - right), py)], fill=GREY)
        draw.text((left + 4, py - 12 if py - 12 > top else py + 2), f"{text} ({_label(g)})", fill=GREY, font=font)
    for k, s in enumerate(panel.series):
        points = [at(x, y) for x, y in zip(s.x, s.y) if shown(y)]
        if len(points) > 1:
            draw.line(points, fill=s.colour, width=2)
        for px, py in points:  # a dot per point: metrics are sparse (one value per snapshot)
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=s.colour)
        lx, ly = w - right - 70, top + 4 + 12 * k
        draw.line([(lx, ly + 6), (lx + 14, ly + 6)], fill=s.colour, width=2)
        draw.text((lx + 18, ly), s.label, fill=(0, 0, 0), font=font)
    return image


def chart(panels: Sequence[Panel], cols: int = 2, size: Tuple[int, int] = (360, 240)) -> np.ndarray:
    """uint8 ``[rows * H, cols * W, 3]``: the panels left to right, top to bottom."""
    font = ImageFont.load_default()
    rows = math.ceil(len(panels) / cols)
    canvas = Image.new("RGB", (cols * size[0], rows * size[1]), (255, 255, 255))
    for i, panel in enumerate(panels):
        canvas.paste(_panel(panel, size, font), ((i % cols) * size[0], (i // cols) * size[1]))
    return np.asarray(canvas)
