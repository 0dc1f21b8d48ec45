"""Seeds to latents to images: the inference entry points that runners and metrics share."""

from __future__ import annotations

import re
import weakref
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import to_uint8
from tf_stylegan2.networks import Generator


_traced: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def parse_seeds(text: str) -> List[int]:
    """Parses '0-3,7,10-11' into [0, 1, 2, 3, 7, 10, 11] (non-negative integers, ranges inclusive)."""
    seeds: List[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad seed list {text!r}: expected e.g. '0-7' or '1,5,9'")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo >= 100000:
            raise UserError(f"bad seed range {part!r} in {text!r}")
        seeds.extend(range(lo, hi + 1))
    return seeds


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """``[len(seeds), z_dim]`` float32 latents: ``RandomState(seed).randn(z_dim)`` per seed.

    The same rule as NVIDIA's generate.py, so a seed names the same latent in both projects and
    imported networks reproduce the official images seed for seed.
    """
    return np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]).astype(np.float32)


def labels(c_dim: int, class_idx: Optional[int], count: int) -> Optional[np.ndarray]:
    """One-hot labels ``[count, c_dim]`` for a conditional generator (``c_dim`` > 0); None for an
    unconditional one."""
    if c_dim == 0:
        if class_idx is not None:
            raise UserError("this generator is unconditional: drop --class_idx")
        return None
    if class_idx is None or not 0 <= class_idx < c_dim:
        raise UserError(f"this generator is conditional: --class_idx must be in [0, {c_dim - 1}]")
    return np.tile(np.eye(c_dim, dtype=np.float32)[class_idx], [count, 1])


def generate_images(
    G: Generator,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: Optional[int] = None,
    batch_size: int = 16,
) -> np.ndarray:
    """``[len(seeds), R, R, C]`` uint8 images for the given seeds."""
    return render(G, z_from_seeds(seeds, G.z_dim), labels(G.c_dim, class_idx, len(seeds)), truncation_psi,
                  noise_mode, batch_size)


def render(
    G: Generator,
    z: np.ndarray,
    c: Optional[np.ndarray] = None,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    batch_size: int = 16,
) -> np.ndarray:
    """``[N, R, R, C]`` uint8 images of latents ``z [N, z_dim]`` (and labels ``c [N, c_dim]``)."""
    functions = _traced.setdefault(G, {})  # traced once per generator and options, not per call
    key = (float(truncation_psi), noise_mode)
    if key not in functions:
        generator = weakref.ref(G)  # a strong reference here would keep G alive through the cache
        functions[key] = tf.function(
            lambda z, c: generator()(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode),
            reduce_retracing=True,
        )
    run = functions[key]
    out = []
    for i in range(0, len(z), batch_size):
        zb = tf.constant(z[i : i + batch_size])
        cb = None if c is None else tf.constant(c[i : i + batch_size])
        out.append(to_uint8(run(zb, cb).numpy()))
    return np.concatenate(out)
