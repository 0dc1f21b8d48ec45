"""Perceptual path length (Karras et al. 2019, 2020) as stylegan2-ada's perceptual_path_length.

For each sample: two latents z0, z1 and t (0 for 'end' sampling, uniform in [0, 1) for 'full');
the points at t and t + epsilon on the path between them, spherical in Z (slerp), linear in W
(lerp of the mapped ws); both images synthesised with the same synthesis noise; optionally the
centre crop of the legacy metrics (rows 3/8..7/8, columns 2/8..6/8 of the image); box-downsampled
by ``resolution // 256`` when larger than 256 (NVIDIA computes the factor from the full resolution
even after the crop); the LPIPS distance between the two float images (never quantised to uint8)
divided by epsilon^2. The metric is the mean of the samples between the 1st percentile (numpy's
'lower' interpolation) and the 99th ('higher').

The random numbers of each group of ``batch_size`` pairs come from ``(seed, group)`` alone
(:func:`.stats.group_rng`), so the result does not depend on batching or replica count.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tf_stylegan2.metrics.replicas import ReplicaMap, rounds
from tf_stylegan2.metrics.preprocess import to_rgb
from tf_stylegan2.metrics.stats import Log, check_labels, group_rng
from tf_stylegan2.progress import Progress

SPACES = ("z", "w")
SAMPLINGS = ("full", "end")


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of the directions of ``a`` and ``b`` ``[N, D]`` at ``t [N, 1]``:
    a unit vector at angle ``t * angle(a, b)`` from ``a`` towards ``b`` (NVIDIA's formula)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    d = np.sum(a * b, axis=-1, keepdims=True)
    p = t * np.arccos(np.clip(d, -1.0, 1.0))
    c = b - d * a
    c = c / np.linalg.norm(c, axis=-1, keepdims=True)
    out = a * np.cos(p) + c * np.sin(p)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def filtered_mean(dist: np.ndarray) -> float:
    """Mean of the values between the 1st percentile ('lower') and the 99th ('higher')."""
    dist = np.asarray(dist, np.float64)
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def _pair_inputs(G, labels, seed: int, groups: range, batch_size: int, space: str, sampling: str, epsilon: float):
    """Per group: latents at both ends of each sample's step (slerped already in Z), t, labels,
    noise seeds."""
    za, zb, ts, cs, seeds = [], [], [], [], []
    for g in groups:
        rng = group_rng(seed, g)
        t = rng.random(batch_size) if sampling == "full" else np.zeros(batch_size)
        z0, z1 = rng.standard_normal([2, batch_size, G.z_dim])
        if space == "z":
            z0, z1 = slerp(z0, z1, t[:, None]), slerp(z0, z1, t[:, None] + epsilon)
        za.append(z0)
        zb.append(z1)
        ts.append(t)
        cs.append(labels[rng.integers(0, len(labels), batch_size)] if G.c_dim else np.zeros([batch_size, 0]))
        seeds.append(rng.integers(0, 2**31 - 1, 2))
    f32 = lambda x: np.stack(x).astype(np.float32)  # noqa: E731
    return f32(za), f32(zb), f32(ts), f32(cs), np.stack(seeds).astype(np.int32)


def path_lengths(
    G,
    lpips: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    *,
    num_samples: int,
    epsilon: float = 1e-4,
    space: str = "w",
    sampling: str = "end",
    crop: bool = False,
    labels: Optional[np.ndarray] = None,
    seed: int = 0,
    truncation_psi: float = 1.0,
    batch_size: int = 2,
    groups_per_call: int = 8,
    strategy: Optional[tf.distribute.Strategy] = None,
    log: Optional[Log] = None,
) -> np.ndarray:
    """float64 ``[num_samples]``: LPIPS(step) / epsilon^2 per sample (before the filter).

    ``lpips(a, b) -> [N]``: the distance between float images in [-1, 1], NHWC RGB.
    ``batch_size``: pairs per group of random numbers (NVIDIA's batch_size 2).
    """
    if space not in SPACES or sampling not in SAMPLINGS:
        raise ValueError(f"space must be one of {SPACES} and sampling one of {SAMPLINGS}, got {space!r}, {sampling!r}")
    check_labels(G, labels)
    resolution = G.img_resolution
    factor = resolution // 256

    def images(ws, noise_seed):
        img = tf.cast(G.synthesis(ws, noise_mode="random", noise_seed=noise_seed), tf.float32)
        if crop:
            c = resolution // 8
            img = img[:, c * 3 : c * 7, c * 2 : c * 6, :]
        if factor > 1:
            n, h, w, ch = tf.shape(img)[0], img.shape[1], img.shape[2], img.shape[3]
            img = tf.reduce_mean(tf.reshape(img, [n, h // factor, factor, w // factor, factor, ch]), axis=[2, 4])
        return to_rgb(img)

    def one_group(args):
        za, zb, t, c, noise_seed = args
        cc = tf.concat([c, c], axis=0) if G.c_dim else None
        ends = G.mapping(tf.concat([za, zb], axis=0), cc, truncation_psi=truncation_psi)
        w0, w1 = tf.split(ends, 2)
        if space == "w":
            t = t[:, None, None]
            w0, w1 = w0 + (w1 - w0) * t, w0 + (w1 - w0) * (t + epsilon)
        return tf.cast(lpips(images(w0, noise_seed), images(w1, noise_seed)), tf.float32) / (epsilon**2)

    def step(za, zb, t, c, noise_seeds):
        spec = tf.TensorSpec([batch_size], tf.float32)
        return tf.reshape(tf.map_fn(one_group, (za, zb, t, c, noise_seeds), fn_output_signature=spec), [-1])

    replicas = ReplicaMap(step, strategy)
    per_call = batch_size * groups_per_call
    progress = Progress(f"ppl_{space}{sampling}", num_samples, unit="pairs", log=log)
    dist = []
    for calls in rounds(-(-num_samples // per_call), replicas.num_replicas):
        inputs = [_pair_inputs(G, labels, seed, range(b * groups_per_call, (b + 1) * groups_per_call), batch_size,
                               space, sampling, epsilon) for b in calls]
        dist.extend(replicas(inputs))
        progress.update(sum(map(len, dist)))
    return np.concatenate(dist)[:num_samples].astype(np.float64)


def perceptual_path_length(G, lpips, **kwargs) -> float:
    """The metric: :func:`filtered_mean` of :func:`path_lengths` (same arguments)."""
    return filtered_mean(path_lengths(G, lpips, **kwargs))
