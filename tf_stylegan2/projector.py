"""Projection of an image into W: find the w (and noise) whose synthesis looks most like a target.

The algorithm of stylegan2-ada-pytorch's ``projector.project`` (Karras et al., arXiv 1912.04958,
Section 5): start at the mean w of 10,000 mapped latents, optimise one w (broadcast to every
layer) and every constant noise map with Adam under a learning rate that ramps up over the first
5 % of the steps and down along a cosine over the last 25 %, jitter w with Gaussian noise that
fades out over the first 75 % (exploration early, none at the end), and minimise

    LPIPS distance (VGG16 features of target and synthesis)  +  1e5 x noise regulariser,

the regulariser penalising the noise maps' autocorrelation at one-pixel shifts on a pyramid down
to 8x8, so that the noise cannot smuggle the image in; after every step each noise map is
renormalised to zero mean and unit variance. ``w_plus`` optimises one w per layer instead (a
common extension, Abdal et al.'s Image2StyleGAN; not NVIDIA's default).

As NVIDIA's script, the result is w alone: the optimised noise maps are auxiliaries of the search
and are discarded, and the projected image is rendered with the generator's own constant noise,
so that ``runners.generate --projected_w`` reproduces it exactly.

The perceptual distance is injected: ``lpips_features(images) -> [N, D]`` maps float images in
[-1, 1] (NHWC, RGB) to vectors whose squared Euclidean distance is the LPIPS distance (NVIDIA's
``vgg16(img, resize_images=False, return_lpips=True)``); it runs inside the optimisation's
``tf.function``, so it must be TensorFlow ops and differentiable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from tf_stylegan2.fileio import UserError, atomic_path, write_text
from tf_stylegan2.images import animation_format, save_animation, save_png
from tf_stylegan2.networks import Generator
from tf_stylegan2.sampling import map_latents, synthesize

LpipsFeatures = Callable[[tf.Tensor], tf.Tensor]
StepCallback = Callable[[int, float, float], None]


@dataclasses.dataclass(frozen=True)
class ProjectorConfig:
    """The optimisation's settings; the defaults are those of stylegan2-ada-pytorch's
    ``projector.project``.

    Attributes:
      num_steps: optimisation steps.
      w_avg_samples: latents mapped for the starting point (their mean w) and the scale of the
        w jitter (the scalar standard deviation of those ws).
      w_avg_seed: ``np.random.RandomState`` seed of those latents.
      initial_learning_rate: Adam's peak learning rate.
      lr_rampup_length, lr_rampdown_length: fractions of the steps over which the learning rate
        ramps up linearly from 0 and down along a half cosine to 0.
      initial_noise_factor: w jitter at step 0, in units of the w standard deviation.
      noise_ramp_length: fraction of the steps over which the jitter fades (quadratically) to 0.
      regularize_noise_weight: weight of the noise autocorrelation penalty.
      w_plus: optimise one w per synthesis layer instead of one for all.
      lpips_resolution: larger images are area-downsampled to this size before VGG16 (built for
        224 px), as NVIDIA does.
    """

    num_steps: int = 1000
    w_avg_samples: int = 10000
    w_avg_seed: int = 123
    initial_learning_rate: float = 0.1
    lr_rampup_length: float = 0.05
    lr_rampdown_length: float = 0.25
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5
    w_plus: bool = False
    lpips_resolution: int = 256

    def __post_init__(self):
        if self.num_steps < 1:
            raise UserError(f"the projection needs at least one step, got {self.num_steps}")
        if self.w_avg_samples < 2:
            raise UserError(f"w statistics need at least two samples, got {self.w_avg_samples}")


def learning_rate(step: int, config: ProjectorConfig) -> float:
    """The learning rate of ``step`` (0-based): linear ramp-up, then flat, then cosine ramp-down."""
    t = step / config.num_steps
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / config.lr_rampup_length)
    return config.initial_learning_rate * ramp


def w_noise_scale(step: int, config: ProjectorConfig, w_std: float) -> float:
    """Standard deviation of the Gaussian jitter added to w at ``step``."""
    t = step / config.num_steps
    return w_std * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2


def noise_regularization(noise_maps: Sequence[tf.Tensor]) -> tf.Tensor:
    """Sum over noise maps ``[H, W]`` and over a 2x2 average-pooling pyramid of each (down to the
    first level of at most 8 px) of the squared mean products with the map rolled by one pixel,
    horizontally and vertically (circular shifts: spatial autocorrelation at lag 1)."""
    total = tf.constant(0.0)
    for noise in noise_maps:
        x = tf.convert_to_tensor(noise, tf.float32)
        while True:
            total += tf.square(tf.reduce_mean(x * tf.roll(x, shift=1, axis=1)))
            total += tf.square(tf.reduce_mean(x * tf.roll(x, shift=1, axis=0)))
            if x.shape[0] <= 8:
                break
            h, w = x.shape
            x = tf.reduce_mean(tf.reshape(x, [h // 2, 2, w // 2, 2]), axis=[1, 3])
    return total


def w_statistics(G: Generator, config: ProjectorConfig, c: Optional[np.ndarray] = None):
    """``(w_avg [1, 1, w_dim], w_std)``: the mean of ``config.w_avg_samples`` mapped latents and
    the root mean squared distance of those ws from it (one scalar over all dimensions)."""
    z = np.random.RandomState(config.w_avg_seed).randn(config.w_avg_samples, G.z_dim).astype(np.float32)
    labels = None if c is None else np.tile(np.asarray(c, np.float32).reshape(1, -1), [len(z), 1])
    w = map_latents(G, z, labels)[:, :1, :].astype(np.float64)  # [N, 1, w_dim]; every layer's w is the same
    w_avg = w.mean(axis=0, keepdims=True)
    w_std = float(np.sqrt(np.sum((w - w_avg) ** 2) / len(z)))
    return w_avg.astype(np.float32), w_std


def load_target(path: str, resolution: int, channels: int = 3) -> np.ndarray:
    """``[resolution, resolution, channels]`` uint8: the image at ``path``, centre-cropped to a
    square and resized with Lanczos filtering (Pillow), as NVIDIA's projector prepares targets."""
    if not os.path.isfile(path):
        raise UserError(f"no such target image: {path}")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"{path} is not a readable image ({type(e).__name__}: {e})") from None
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(resolution, resolution, channels)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when they are equal)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def lpips_input(images: tf.Tensor, max_resolution: int) -> tf.Tensor:
    """What the LPIPS network sees of ``[N, R, R, C]`` float images: three channels, area
    downsampling (box filter; R and the limit are powers of two) when R exceeds ``max_resolution``."""
    images = tf.cast(images, tf.float32)
    if images.shape[-1] == 1:
        images = tf.tile(images, [1, 1, 1, 3])
    factor = images.shape[1] // max_resolution
    if factor > 1:
        images = tf.nn.avg_pool2d(images, factor, factor, "VALID")
    return images


def _private_copy(G: Generator) -> Generator:
    """A float32 copy of G whose noise maps the optimisation may overwrite (NVIDIA deep-copies)."""
    copy = Generator(G.config, name=G.name, dtype="float32")
    copy.set_weights(G.get_weights())
    return copy


def _noise_variables(G: Generator) -> List[tf.Variable]:
    """The constant noise maps of every synthesis layer (the underlying tf.Variables)."""
    return [v.value for v in G.synthesis.weights if v.name == "noise_const"]


class _Adam:
    """torch.optim.Adam's update, which NVIDIA's projector uses: epsilon is added to the
    bias-corrected root of the second moment (Keras' Adam adds it before the correction, which
    makes its effective epsilon ~30x larger in the first steps)."""

    def __init__(self, params: Sequence[tf.Variable], beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8):
        self.params = list(params)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.m = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.params]
        self.v = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.params]

    def apply(self, grads: Sequence[tf.Tensor], lr: tf.Tensor, t: tf.Tensor) -> None:
        """One update with learning rate ``lr``; ``t`` is the 1-based step count."""
        correction_1 = 1.0 - self.beta_1**t
        correction_2 = tf.sqrt(1.0 - self.beta_2**t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.assign(self.beta_1 * m + (1.0 - self.beta_1) * g)
            v.assign(self.beta_2 * v + (1.0 - self.beta_2) * tf.square(g))
            p.assign_sub(lr / correction_1 * m / (tf.sqrt(v) / correction_2 + self.epsilon))


@dataclasses.dataclass
class Projection:
    """What :func:`project` found.

    Attributes:
      w_steps: ``[num_steps, num_ws, w_dim]`` the optimised w after each step (broadcast over the
        layers unless w_plus); the last is the result.
      loss, dist: ``[num_steps]`` the loss and its LPIPS part at each step (with that step's w
        jitter and the optimised noise).
      seconds_per_step: wall time of the optimisation divided by the steps, the first step's
        tracing excluded.
    """

    w_steps: np.ndarray
    loss: np.ndarray
    dist: np.ndarray
    seconds_per_step: float

    @property
    def w(self) -> np.ndarray:
        """``[1, num_ws, w_dim]``: the projected w, as NVIDIA's ``projected_w.npz``."""
        return self.w_steps[-1:]


def project(
    G: Generator,
    target: np.ndarray,
    lpips_features: LpipsFeatures,
    config: ProjectorConfig = ProjectorConfig(),
    seed: int = 303,
    c: Optional[np.ndarray] = None,
    on_step: Optional[StepCallback] = None,
) -> Projection:
    """Projects ``target`` (``[R, R, C]`` uint8 at G's resolution) into G's W space.

    ``seed`` draws the initial noise maps and the w jitter (303 is NVIDIA's default). ``c`` is the
    one-hot label ``[c_dim]`` of a conditional G. ``on_step(step, loss, dist)`` is called after
    each step (1-based). G itself is not changed.
    """
    r, ch = G.img_resolution, G.img_channels
    if target.dtype != np.uint8 or target.shape != (r, r, ch):
        raise UserError(f"the target must be [{r}, {r}, {ch}] uint8 for this generator, got {target.dtype} "
                        f"{list(target.shape)}")
    if (c is None) != (G.c_dim == 0):
        raise UserError("a conditional generator needs a label c, an unconditional one none")
    w_avg, w_std = w_statistics(G, config, c)
    G = _private_copy(G)
    noise = _noise_variables(G)
    rng = np.random.RandomState(seed)
    for v in noise:
        v.assign(rng.standard_normal(v.shape).astype(np.float32))

    def features(images: tf.Tensor) -> tf.Tensor:
        return lpips_features(lpips_input(images, config.lpips_resolution))

    target_features = tf.constant(features(tf.constant(target[None], tf.float32) / 127.5 - 1.0))
    w_opt = tf.Variable(np.tile(w_avg, [1, G.num_ws if config.w_plus else 1, 1]), name="w_opt")
    params = [w_opt] + noise
    adam = _Adam(params)

    @tf.function
    def step(lr: tf.Tensor, jitter: tf.Tensor, t: tf.Tensor, jitter_seed: tf.Tensor):
        with tf.GradientTape() as tape:
            tape.watch(noise)  # non-trainable variables are not watched by default
            w = w_opt + tf.random.stateless_normal(tf.shape(w_opt), jitter_seed) * jitter
            ws = tf.broadcast_to(w, [1, G.num_ws, G.w_dim])
            synth = G.synthesis(ws, noise_mode="const")
            dist = tf.reduce_sum(tf.square(target_features - features(synth)))
            loss = dist + config.regularize_noise_weight * noise_regularization(noise)
        adam.apply(tape.gradient(loss, params), lr, t)
        for v in noise:
            centred = v - tf.reduce_mean(v)
            v.assign(centred * tf.math.rsqrt(tf.reduce_mean(tf.square(centred))))
        return loss, dist, tf.convert_to_tensor(w_opt)

    w_steps = np.zeros([config.num_steps, G.num_ws, G.w_dim], np.float32)
    losses, dists = np.zeros(config.num_steps), np.zeros(config.num_steps)
    start = None
    for i in range(config.num_steps):
        loss, dist, w = step(
            tf.constant(learning_rate(i, config), tf.float32), tf.constant(w_noise_scale(i, config, w_std), tf.float32),
            tf.constant(i + 1, tf.float32), tf.constant([seed, i], tf.int64),
        )
        w_steps[i], losses[i], dists[i] = w.numpy()[0], float(loss), float(dist)
        if i == 0:
            start = time.perf_counter()  # after tracing
        if on_step is not None:
            on_step(i + 1, losses[i], dists[i])
    seconds = (time.perf_counter() - start) / (config.num_steps - 1) if config.num_steps > 1 else float("nan")
    return Projection(w_steps, losses, dists, seconds)


def lpips_distance(a: np.ndarray, b: np.ndarray, lpips_features: LpipsFeatures,
                   max_resolution: int = ProjectorConfig.lpips_resolution) -> float:
    """LPIPS distance of two ``[R, R, C]`` uint8 images through ``lpips_features``."""
    x = tf.constant(np.stack([a, b]), tf.float32) / 127.5 - 1.0
    f = lpips_features(lpips_input(x, max_resolution)).numpy().astype(np.float64)
    return float(np.sum((f[0] - f[1]) ** 2))


def _comparison(target: np.ndarray, image: np.ndarray) -> np.ndarray:
    return np.concatenate([target, image], axis=1)


def save_projection(
    outdir: str,
    G: Generator,
    target: np.ndarray,
    projection: Projection,
    lpips_features: LpipsFeatures,
    info: Optional[Dict] = None,
    save_video: bool = False,
    fps: float = 10.0,
) -> Dict:
    """Writes the outputs of a projection into ``outdir`` (each file atomically) and returns the
    summary it writes to ``projection.json``:

      target.png        the target as the projector saw it (cropped, resized)
      proj.png          the projected w rendered with G's constant noise
      comparison.png    target | projection side by side
      projected_w.npz   ``w [1, num_ws, w_dim]`` float32, as NVIDIA's (runners.generate --projected_w)
      projection.json   final LPIPS and PSNR of proj.png against target.png, the run's settings
      proj.mp4 / .gif   with ``save_video``: target | projection after every step, ``fps`` frames/s
    """
    image = synthesize(G, projection.w)[0]
    summary = {
        **(info or {}),
        "lpips": lpips_distance(target, image, lpips_features),
        "psnr": psnr(target, image),
        "num_steps": len(projection.w_steps),
        "lpips_first_step": float(projection.dist[0]),
        "lpips_last_step": float(projection.dist[-1]),
        "seconds_per_step": projection.seconds_per_step,
    }
    save_png(os.path.join(outdir, "target.png"), target)
    save_png(os.path.join(outdir, "proj.png"), image)
    save_png(os.path.join(outdir, "comparison.png"), _comparison(target, image))
    with atomic_path(os.path.join(outdir, "projected_w.npz")) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, w=projection.w.astype(np.float32))
    if save_video:
        path = os.path.join(outdir, f"proj.{animation_format()}")
        save_animation(path, _progress_frames(G, target, projection.w_steps), fps)
        summary["video"] = os.path.basename(path)
    write_text(os.path.join(outdir, "projection.json"), _json(summary))
    return summary


def _progress_frames(G: Generator, target: np.ndarray, w_steps: np.ndarray, batch: int = 16) -> Iterator[np.ndarray]:
    for i in range(0, len(w_steps), batch):
        for image in synthesize(G, w_steps[i : i + batch]):
            yield _comparison(target, image)


def _json(summary: Dict) -> str:
    # PSNR of a perfect reconstruction is inf, which JSON has no number for.
    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                       for k, v in summary.items()}, indent=2, sort_keys=True) + "\n"

