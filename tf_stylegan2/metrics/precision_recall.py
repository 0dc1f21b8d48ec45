"""Improved precision and recall (Kynkäänniemi et al. 2019) as stylegan2-ada's precision_recall.

Each set of features spans a manifold: the union of balls around its points, each with the
distance to the point's ``nhood_size``-th nearest neighbour in the set as radius. Precision is
the fraction of generated points inside the real manifold, recall the fraction of real points
inside the generated one.

NVIDIA's numerics: features in float16, pairwise Euclidean distances as float16 values, the
radius the ``(nhood_size + 1)``-th smallest distance of a point to every point of its set
(itself included, at distance 0), and a probe inside when some distance is ``<=`` that radius.
NVIDIA holds ``[row_batch_size, num_points]`` distances at once (10000 x 200000 for
``pr50k3_full``); here rows and columns are both blocked, the radii are kept as a running
top-(k + 1) over column blocks, so memory is bounded by one ``[row_batch_size, col_batch_size]``
block and the results do not depend on the block sizes.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import tensorflow as tf


def _distances(rows: tf.Tensor, cols: tf.Tensor, float16: bool) -> tf.Tensor:
    """``[R, C]`` Euclidean distances by the Gram expansion (as torch.cdist for large inputs),
    computed in float32 and, for NVIDIA's numerics, rounded to float16 values."""
    sq = tf.reduce_sum(tf.square(rows), axis=1)[:, None] + tf.reduce_sum(tf.square(cols), axis=1)[None, :]
    d = tf.sqrt(tf.maximum(sq - 2.0 * tf.matmul(rows, cols, transpose_b=True), 0.0))
    return tf.cast(tf.cast(d, tf.float16), tf.float32) if float16 else d


def _blocks(x: np.ndarray, size: int):
    for start in range(0, len(x), size):
        yield tf.cast(tf.constant(x[start : start + size]), tf.float32)


@tf.function(reduce_retracing=True)
def _merge_smallest(running: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, k: int, float16: bool) -> tf.Tensor:
    d = _distances(rows, cols, float16)
    both = tf.concat([running, d], axis=1)
    return -tf.math.top_k(-both, k=k, sorted=True).values


@tf.function(reduce_retracing=True)
def _any_within(rows: tf.Tensor, cols: tf.Tensor, radii: tf.Tensor, float16: bool) -> tf.Tensor:
    return tf.reduce_any(_distances(rows, cols, float16) <= radii[None, :], axis=1)


def _as_float16_values(x: np.ndarray, float16: bool) -> np.ndarray:
    """The features as float16 (NVIDIA's numerics; half the memory) or float32; blocks are
    computed in float32 either way."""
    return np.asarray(x, np.float16 if float16 else np.float32)


def manifold_radii(
    manifold: np.ndarray, nhood_size: int = 3, row_batch_size: int = 10000, col_batch_size: int = 10000,
    float16: bool = True,
) -> np.ndarray:
    """float32 ``[N]``: each point's distance to its ``nhood_size``-th nearest other point
    (the ``(nhood_size + 1)``-th smallest distance, counting the point itself)."""
    manifold = _as_float16_values(manifold, float16)
    k = nhood_size + 1
    if len(manifold) < k:
        raise ValueError(f"a {nhood_size}-neighbourhood needs at least {k} points, got {len(manifold)}")
    radii = []
    for rows in _blocks(manifold, row_batch_size):
        running = tf.fill([rows.shape[0], k], np.float32(np.inf))
        for cols in _blocks(manifold, col_batch_size):
            running = _merge_smallest(running, rows, cols, k, float16)
        radii.append(running[:, -1].numpy())
    return np.concatenate(radii)


def within_manifold(
    probes: np.ndarray, manifold: np.ndarray, radii: np.ndarray, row_batch_size: int = 10000,
    col_batch_size: int = 10000, float16: bool = True,
) -> np.ndarray:
    """bool ``[M]``: whether each probe lies within some manifold point's radius."""
    probes, manifold = _as_float16_values(probes, float16), _as_float16_values(manifold, float16)
    radii = np.asarray(radii, np.float32)
    out = []
    for rows in _blocks(probes, row_batch_size):
        inside = tf.zeros([rows.shape[0]], tf.bool)
        for start, cols in zip(range(0, len(manifold), col_batch_size), _blocks(manifold, col_batch_size)):
            r = tf.constant(radii[start : start + cols.shape[0]])
            inside = tf.logical_or(inside, _any_within(rows, cols, r, float16))
        out.append(inside.numpy())
    return np.concatenate(out)


def precision_recall(
    real: np.ndarray, fake: np.ndarray, nhood_size: int = 3, row_batch_size: int = 10000,
    col_batch_size: int = 10000, float16: bool = True,
) -> Tuple[float, float]:
    """(precision, recall) of generated features ``fake [M, D]`` against real ``real [N, D]``.

    ``float16=True`` reproduces NVIDIA's float16 features and distances; ``False`` computes in
    float32 throughout.
    """
    real, fake = np.asarray(real), np.asarray(fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need [N, D] features with the same D, got {real.shape} and {fake.shape}")
    real, fake = _as_float16_values(real, float16), _as_float16_values(fake, float16)  # converted once
    kw = dict(row_batch_size=row_batch_size, col_batch_size=col_batch_size, float16=float16)
    results = []
    for manifold, probes in ((real, fake), (fake, real)):
        radii = manifold_radii(manifold, nhood_size, **kw)
        results.append(float(np.mean(within_manifold(probes, manifold, radii, **kw))))
    return results[0], results[1]
