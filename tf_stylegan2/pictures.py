"""The pictures people judge a generator by: style mixing matrices and latent-space walks.

Style mixing follows stylegan2-ada-pytorch's ``style_mixing.py`` (the paper's Fig. 3 of StyleGAN:
rows and columns of source images, each cell the row's ws with the column's at ``styles``).
Interpolation walks between seeds: linearly in W, along great circles in Z (spherical
interpolation, so intermediate z keep the norm typical of a Gaussian sample), as the StyleGAN
papers' videos and perceptual path length do.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tf_stylegan2.fileio import UserError
from tf_stylegan2.networks import Generator
from tf_stylegan2.sampling import class_labels, map_latents, parse_seeds, synthesize, z_from_seeds

SPACES = ("w", "z")


# ---- style mixing -----------------------------------------------------------------------------


def parse_styles(text: str, num_ws: int) -> List[int]:
    """Parses a style layer list ('0-6', '0,1,8-11') and checks it against ``[0, num_ws)``."""
    styles = sorted(set(parse_seeds(text, what="style")))
    if styles[-1] >= num_ws:
        raise UserError(f"--styles {text!r} names layer {styles[-1]}, but this generator has "
                        f"{num_ws} ws (layers 0-{num_ws - 1})")
    return styles


def mix_styles(row_ws: np.ndarray, col_ws: np.ndarray, styles: Sequence[int]) -> np.ndarray:
    """``[rows, cols, num_ws, w_dim]``: cell (i, j) is ``row_ws[i]`` with the layers in ``styles``
    taken from ``col_ws[j]`` (``row_ws [rows, num_ws, w_dim]``, ``col_ws [cols, num_ws, w_dim]``)."""
    take = np.zeros(row_ws.shape[1], dtype=bool)
    take[list(styles)] = True
    return np.where(take[None, None, :, None], col_ws[None, :], row_ws[:, None])


@dataclasses.dataclass
class StyleMixing:
    """A style mixing matrix: ``images[(row_seed, col_seed)]`` for every cell and every source
    (``(s, s)``, NVIDIA's file naming), and ``grid``, the figure: sources along the top and the
    left, the mixed images inside, the corner black."""

    images: Dict[Tuple[int, int], np.ndarray]
    grid: np.ndarray


def style_mixing(
    G: Generator,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    styles: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: Optional[int] = None,
) -> StyleMixing:
    """Renders the style mixing matrix of ``row_seeds`` x ``col_seeds`` (ws truncated by psi on
    every layer, as NVIDIA's script)."""
    seeds = list(dict.fromkeys(list(row_seeds) + list(col_seeds)))
    c = class_labels(G, None if class_idx is None else [class_idx] * len(seeds))
    ws = map_latents(G, z_from_seeds(seeds, G.z_dim), c, truncation_psi)
    w_of = dict(zip(seeds, ws))
    images = {(s, s): img for s, img in zip(seeds, synthesize(G, ws, noise_mode))}
    mixed = mix_styles(np.stack([w_of[s] for s in row_seeds]), np.stack([w_of[s] for s in col_seeds]), styles)
    cells = synthesize(G, mixed.reshape(-1, G.num_ws, G.w_dim), noise_mode)
    for k, img in enumerate(cells):
        images[(row_seeds[k // len(col_seeds)], col_seeds[k % len(col_seeds)])] = img
    h, w, ch = cells.shape[1:]
    canvas = np.zeros([(len(row_seeds) + 1) * h, (len(col_seeds) + 1) * w, ch], dtype=np.uint8)
    for j, s in enumerate(col_seeds):
        canvas[:h, (j + 1) * w : (j + 2) * w] = images[(s, s)]
    for i, r in enumerate(row_seeds):
        canvas[(i + 1) * h : (i + 2) * h, :w] = images[(r, r)]
        for j, s in enumerate(col_seeds):
            canvas[(i + 1) * h : (i + 2) * h, (j + 1) * w : (j + 2) * w] = images[(r, s)]
    return StyleMixing(images, canvas)


# ---- interpolation ----------------------------------------------------------------------------


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``a + t (b - a)`` over the last axis; ``t`` broadcasts against the leading axes."""
    t = np.asarray(t, dtype=np.float64)[..., None]
    return (a + t * (b - a)).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation over the last axis (Shoemake's formula): the angle to ``a`` grows
    linearly with ``t``, and the norm stays put when ``|a| = |b|``. Nearly parallel vectors fall
    back to :func:`lerp`, where the two agree and the formula would divide by ~0."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    cos = np.sum(a64 * b64, -1, keepdims=True) / (np.linalg.norm(a64, axis=-1, keepdims=True)
                                                 * np.linalg.norm(b64, axis=-1, keepdims=True))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    sin = np.sin(omega)
    safe = sin > eps
    wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, sin, 1.0), 1 - t)
    wb = np.where(safe, np.sin(t * omega) / np.where(safe, sin, 1.0), t)
    return (wa * a64 + wb * b64).astype(np.float32)


def walk_positions(num_keys: int, frames: int, loop: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Where each frame of a walk through ``num_keys`` key points lies: the index of the key it
    leaves and the fraction ``t`` in ``[0, 1)`` of the way to the next. ``frames`` per transition;
    an open walk ends on the last key, a loop returns to the first (and leaves it out, so that
    the animation repeats seamlessly)."""
    if num_keys < 2:
        raise UserError(f"an interpolation needs at least two seeds, got {num_keys}")
    if frames < 1:
        raise UserError(f"--frames must be >= 1, got {frames}")
    transitions = num_keys if loop else num_keys - 1
    steps = np.arange(transitions * frames + (0 if loop else 1))
    index, t = np.divmod(steps, frames)
    if not loop:  # the last frame is the last key itself: t = 1 of the last transition
        index[-1], t[-1] = transitions - 1, frames
    return index, t / frames


def walk(keys: np.ndarray, frames: int, loop: bool, interpolate=lerp) -> np.ndarray:
    """``[num_frames, ...]`` points walking through ``keys [K, ...]`` (see :func:`walk_positions`)."""
    index, t = walk_positions(len(keys), frames, loop)
    shape = (len(t),) + (1,) * (keys.ndim - 2)
    return interpolate(keys[index], keys[(index + 1) % len(keys)], t.reshape(shape))


def interpolation(
    G: Generator,
    seeds: Sequence[int],
    frames: int,
    space: str = "w",
    loop: bool = False,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    classes: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """``[num_frames, R, R, C]`` uint8 frames walking between the seeds' images.

    ``space='w'`` maps the seeds (truncated) and interpolates their ws linearly; ``space='z'``
    interpolates the latents spherically and maps every frame. For a conditional G, ``classes``
    gives one class for all seeds or one per seed; between seeds of different classes the one-hot
    labels are interpolated linearly (in Z; in W the mapped ws carry the class), so the walk
    crosses classes.
    """
    if space not in SPACES:
        raise UserError(f"unknown --space {space!r}: expected one of {list(SPACES)}")
    if classes is not None and len(classes) not in (1, len(seeds)):
        raise UserError(f"give one class for all seeds or one per seed ({len(seeds)}), got {len(classes)}")
    if classes is not None and len(classes) == 1:
        classes = list(classes) * len(seeds)
    z = z_from_seeds(seeds, G.z_dim)
    c = class_labels(G, classes)
    if space == "w":
        ws = walk(map_latents(G, z, c, truncation_psi), frames, loop, lerp)
    else:
        zs = walk(z, frames, loop, slerp)
        ws = map_latents(G, zs, None if c is None else walk(c, frames, loop, lerp), truncation_psi)
    return synthesize(G, ws, noise_mode)
