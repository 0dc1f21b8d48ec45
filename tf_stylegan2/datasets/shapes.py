"""The 'shapes' dataset: coloured geometric shapes on gradient backgrounds, rendered by code.

Four classes (circle, square, triangle, cross) with random position, size, rotation and colour on a
dark two-colour gradient. The modes are obvious to the eye, so a GAN's progress is visible after a
few minutes of CPU training, and the class labels make conditional training testable. Rendering is
analytic (signed distance -> pixel coverage), so every resolution shows the same scenes with
anti-aliased edges, and it is deterministic: numpy's legacy RandomState stream is frozen across
numpy versions.
"""

from __future__ import annotations

from typing import NamedTuple, Tuple

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle", "cross")


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) -> RGB ``[..., 3]`` in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _box_sdf(qx: np.ndarray, qy: np.ndarray, hx, hy) -> np.ndarray:
    """Exact signed distance to an axis-aligned box of half-sizes (hx, hy) centred at the origin."""
    dx, dy = np.abs(qx) - hx, np.abs(qy) - hy
    outside = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0))
    return outside + np.minimum(np.maximum(dx, dy), 0.0)


def _shape_sdf(label: np.ndarray, qx: np.ndarray, qy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) of each image's shape, in the shape's rotated frame.

    ``label``, ``r``: ``[n, 1, 1]``; ``qx``, ``qy``: ``[n, H, W]`` offsets from the shape's centre.
    """
    circle = np.hypot(qx, qy) - r
    square = _box_sdf(qx, qy, 0.8 * r, 0.8 * r)
    # Equilateral triangle of circumradius 1.2 r (its area is then close to the others'): the
    # intersection of three half-planes at the inradius.
    angles = np.pi / 2 + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    edges = [qx * np.cos(a) + qy * np.sin(a) - 0.6 * r for a in angles]
    triangle = np.maximum(np.maximum(edges[0], edges[1]), edges[2])
    cross = np.minimum(_box_sdf(qx, qy, r, 0.3 * r), _box_sdf(qx, qy, 0.3 * r, r))
    return np.select([label == 0, label == 1, label == 2], [circle, square, triangle], cross)


class Scenes(NamedTuple):
    """Per-image scene parameters, all ``[N]`` (colours ``[N, 3]`` RGB in [0, 1]); lengths are
    fractions of the image width."""

    labels: np.ndarray  # int64 class index into CLASS_NAMES
    radius: np.ndarray  # size r: circle radius, square half-side 0.8 r, triangle circumradius 1.2 r, cross arm r
    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray  # rotation, radians
    fg: np.ndarray  # shape colour
    bg0: np.ndarray  # background gradient, from ...
    bg1: np.ndarray  # ... to
    grad_dir: np.ndarray  # gradient direction, radians


def draw_scenes(num_images: int, seed: int = 0) -> Scenes:
    """Random scenes: balanced classes, bright saturated shapes on dark backgrounds."""
    rs = np.random.RandomState(seed)
    n = num_images
    labels = rs.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    radius = rs.uniform(0.16, 0.3, n)
    margin = 1.2 * radius + 0.02  # every shape lies within 1.2 r of its centre
    cx = rs.uniform(0.0, 1.0, n) * (1.0 - 2.0 * margin) + margin
    cy = rs.uniform(0.0, 1.0, n) * (1.0 - 2.0 * margin) + margin
    angle = rs.uniform(0.0, 2.0 * np.pi, n)
    fg = _hsv_to_rgb(rs.uniform(0, 1, n), rs.uniform(0.55, 1.0, n), rs.uniform(0.8, 1.0, n))
    bg0 = _hsv_to_rgb(rs.uniform(0, 1, n), rs.uniform(0.2, 0.7, n), rs.uniform(0.05, 0.45, n))
    bg1 = _hsv_to_rgb(rs.uniform(0, 1, n), rs.uniform(0.2, 0.7, n), rs.uniform(0.05, 0.45, n))
    return Scenes(labels, radius, cx, cy, angle, fg, bg0, bg1, rs.uniform(0.0, 2.0 * np.pi, n))


def render(scenes: Scenes, resolution: int) -> np.ndarray:
    """uint8 ``[N, R, R, 3]``: shape coverage from the signed distance at each pixel centre
    (anti-aliased edges), composited over a linear two-colour gradient."""
    n = len(scenes.labels)
    coords = (np.arange(resolution) + 0.5) / resolution  # pixel centres in [0, 1]
    images = np.empty([n, resolution, resolution, 3], dtype=np.uint8)
    chunk = max(1, (1 << 20) // (resolution * resolution))  # bounds the float temporaries
    for lo in range(0, n, chunk):
        p = Scenes(*(a[lo : lo + chunk] for a in scenes))
        col = lambda a: a[:, None, None]  # noqa: E731  [n] -> [n, 1, 1]
        px, py = coords[None, None, :] - col(p.cx), coords[None, :, None] - col(p.cy)
        cos, sin = np.cos(col(p.angle)), np.sin(col(p.angle))
        qx, qy = cos * px + sin * py, -sin * px + cos * py
        dist = _shape_sdf(col(p.labels), qx, qy, col(p.radius)) * resolution  # in pixels
        coverage = np.clip(0.5 - dist, 0.0, 1.0)[..., None]
        g = col(p.grad_dir)
        t = np.cos(g) * (px + col(p.cx) - 0.5) + np.sin(g) * (py + col(p.cy) - 0.5)
        t = np.clip(t * np.sqrt(2.0) + 0.5, 0.0, 1.0)[..., None]
        background = p.bg0[:, None, None] * (1.0 - t) + p.bg1[:, None, None] * t
        image = background * (1.0 - coverage) + p.fg[:, None, None] * coverage
        images[lo : lo + chunk] = np.rint(image * 255.0).astype(np.uint8)
    return images


def render_shapes(num_images: int, resolution: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, R, R, 3], labels int64 [N])``; the scenes depend on (num_images, seed)
    only, so every resolution shows the same scenes."""
    scenes = draw_scenes(num_images, seed)
    return render(scenes, resolution), scenes.labels
