"""Seeds to latents to images: the inference entry points that runners and metrics share."""

from __future__ import annotations

import os
import re
import weakref
import zipfile
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_stylegan2.fileio import UserError
from tf_stylegan2.images import to_uint8
from tf_stylegan2.networks import Generator


_functions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def parse_seeds(text: str, what: str = "seed") -> List[int]:
    """Parses '0-3,7,10-11' into [0, 1, 2, 3, 7, 10, 11] (non-negative integers, ranges inclusive).

    The syntax of NVIDIA's ``num_range`` (seeds, style layers), generalised to mixed lists;
    ``what`` names the list in errors.
    """
    values: List[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad {what} list {text!r}: expected e.g. '0-7' or '1,5,9'")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo >= 100000:
            raise UserError(f"bad {what} range {part!r} in {text!r}")
        values.extend(range(lo, hi + 1))
    return values


def parse_truncation(text: str) -> List[float]:
    """Parses '0.7' or '1.0,0.7,0.5' (a truncation sweep) into psi values."""
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        raise UserError(f"bad truncation list {text!r}: expected e.g. '0.7' or '1.0,0.7,0.5'") from None
    if not all(np.isfinite(values)):
        raise UserError(f"bad truncation list {text!r}: psi must be finite")
    return values


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """``[len(seeds), z_dim]`` float32 latents: ``RandomState(seed).randn(z_dim)`` per seed.

    The same rule as NVIDIA's generate.py, so a seed names the same latent in both projects and
    imported networks reproduce the official images seed for seed.
    """
    return np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]).astype(np.float32)


def labels(G: Generator, class_idx: Optional[int], count: int) -> Optional[np.ndarray]:
    """One-hot labels ``[count, c_dim]`` for a conditional G; None for an unconditional one."""
    return class_labels(G, None if class_idx is None else [class_idx] * count)


def class_labels(G: Generator, classes: Optional[Sequence[int]]) -> Optional[np.ndarray]:
    """One-hot labels ``[len(classes), c_dim]`` for a conditional G; None for an unconditional one."""
    if G.c_dim == 0:
        if classes is not None:
            raise UserError("this generator is unconditional: drop --class_idx")
        return None
    if classes is None or not all(0 <= k < G.c_dim for k in classes):
        raise UserError(f"this generator is conditional: --class_idx must be in [0, {G.c_dim - 1}]")
    return np.eye(G.c_dim, dtype=np.float32)[list(classes)].reshape(len(classes), G.c_dim)


def generate_images(
    G: Generator,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: Optional[int] = None,
    batch_size: int = 16,
) -> np.ndarray:
    """``[len(seeds), R, R, C]`` uint8 images for the given seeds."""
    return render(G, z_from_seeds(seeds, G.z_dim), labels(G, class_idx, len(seeds)), truncation_psi, noise_mode,
                  batch_size)


def _traced(G: Generator, key: tuple, function):
    """``function(G, *args)`` as a tf.function traced once per generator and key, not per call."""
    functions = _functions.setdefault(G, {})
    if key not in functions:
        generator = weakref.ref(G)  # a strong reference here would keep G alive through the cache
        functions[key] = tf.function(lambda *args: function(generator(), *args), reduce_retracing=True)
    return functions[key]


def _batches(arrays: Sequence[Optional[np.ndarray]], batch_size: int):
    count = len(arrays[0])
    for i in range(0, count, batch_size):
        yield [None if a is None else tf.constant(a[i : i + batch_size]) for a in arrays]


def render(
    G: Generator,
    z: np.ndarray,
    c: Optional[np.ndarray] = None,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    batch_size: int = 16,
) -> np.ndarray:
    """``[N, R, R, C]`` uint8 images of latents ``z [N, z_dim]`` (and labels ``c [N, c_dim]``)."""
    run = _traced(G, ("G", float(truncation_psi), noise_mode),
                  lambda G, z, c: G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode))
    return np.concatenate([to_uint8(run(zb, cb).numpy()) for zb, cb in _batches([z, c], batch_size)])


def map_latents(
    G: Generator,
    z: np.ndarray,
    c: Optional[np.ndarray] = None,
    truncation_psi: float = 1.0,
    batch_size: int = 256,
) -> np.ndarray:
    """``ws [N, num_ws, w_dim]`` float32 of latents ``z [N, z_dim]`` (labels ``c``), truncated by psi."""
    run = _traced(G, ("mapping", float(truncation_psi)),
                  lambda G, z, c: G.mapping(z, c, truncation_psi=truncation_psi))
    return np.concatenate([run(zb, cb).numpy() for zb, cb in _batches([z, c], batch_size)])


def synthesize(G: Generator, ws: np.ndarray, noise_mode: str = "const", batch_size: int = 16) -> np.ndarray:
    """``[N, R, R, C]`` uint8 images of ``ws [N, num_ws, w_dim]`` (e.g. projected or style-mixed)."""
    ws = np.asarray(ws, dtype=np.float32)
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        raise UserError(f"ws must have shape [N, {G.num_ws}, {G.w_dim}] for this generator, got {list(ws.shape)}")
    run = _traced(G, ("synthesis", noise_mode), lambda G, ws: G.synthesis(ws, noise_mode=noise_mode))
    return np.concatenate([to_uint8(run(wb).numpy()) for (wb,) in _batches([ws], batch_size)])


def load_ws(path: str, G: Generator) -> np.ndarray:
    """``ws [N, num_ws, w_dim]`` float32 from an ``.npz`` with the array ``w`` (what
    runners.projector and NVIDIA's projector write), checked against G."""
    if not os.path.isfile(path):
        raise UserError(f"no such file: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not an .npz file of ws ({type(e).__name__}: {e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise UserError(f"{path} is a bare .npy array, not an .npz file with an array 'w'")
    with data:
        if "w" not in data.files:
            raise UserError(f"{path} has no array 'w' (it holds {sorted(data.files)})")
        try:
            ws = data["w"]
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise UserError(f"{path}: unreadable array 'w' ({type(e).__name__}: {e})") from None
    if not np.issubdtype(ws.dtype, np.floating) or ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim) or not len(ws):
        raise UserError(f"{path}: w of shape {list(ws.shape)} ({ws.dtype}) does not fit this generator, which takes "
                        f"[N, {G.num_ws}, {G.w_dim}] floats (num_ws {G.num_ws}, w_dim {G.w_dim})")
    if not np.all(np.isfinite(ws)):
        raise UserError(f"{path}: w holds NaN or Inf")
    return ws.astype(np.float32)
