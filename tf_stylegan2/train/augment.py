"""Adaptive discriminator augmentation (ADA): Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data" (arXiv 2006.06676), with the transforms, strengths and pipelines of
stylegan2-ada-pytorch (``training/augment.py``, ``AugmentPipe``; ``train.py``, ``augpipe_specs``)
and the p heuristic of its ``training/training_loop.py``.

Every image the discriminator sees, real or generated, goes through one pipeline whose transforms
each fire with probability ``multiplier * p``:

1. geometry: pixel blitting (x-flip, 90-degree rotations, integer translation) and general
   geometric transforms (isotropic scaling, rotation, anisotropic scaling, fractional translation)
   compose one inverse affine matrix per image (output pixel -> input pixel, in pixels from the
   image centre), applied by one resampling: reflect padding, 2x upsampling with the sym6 wavelet
   low-pass, bilinear sampling, 2x downsampling with the same filter. The wavelet is orthogonal, so
   an identity matrix returns the image unchanged, and the padding keeps edges from leaking in;
2. colour: brightness, contrast, luma flip, hue rotation and saturation compose one 4x4 matrix
   acting on homogeneous RGB (a grayscale image takes the mean of its RGB rows);
3. image-space filtering (random gains of four frequency bands), additive noise, cutout.

Random numbers and their use are split. :func:`draw` turns p and one stateless seed per image into
matrices, filters, noise and masks: it runs outside any XLA cluster, like the training step's other
draws (XLA's stateless random ops give other numbers than the CPU kernels). :func:`apply` is then a
pure function of the images and the draws, differentiable to any order (R1 differentiates D's
gradient with respect to the un-augmented image), float32, NHWC, with static shapes so that it
compiles with XLA. NVIDIA pads by the margin the batch's matrices need, at most the image size minus
one; here the padding is always that maximum, so that no shape depends on the draws, and the result
is NVIDIA's up to rounding wherever NVIDIA's margin covers what the output samples (what it is
computed for). As in NVIDIA's code, blits go through the same resampling: integer translations are
exact, x-flips and quarter turns exact up to the asymmetry of the sym6 filter (visible on white
noise only).

:class:`AdaptiveP` holds p and adjusts it from the sign of D's logits on real images.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from custom_ops import downsample2d, setup_filter, upsample2d

Draws = Dict[str, tf.Tensor]

# Low-pass decomposition filters of two orthogonal wavelets (PyWavelets' ``dec_lo``), the ones
# stylegan2-ada uses: sym6 for the geometric resampling, sym2 for the filter bank.
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)


# ---- configuration --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Probability multipliers of the transforms (0 = off, 1 = fires with probability p) and their
    strengths, named and defaulted as in stylegan2-ada-pytorch's ``AugmentPipe``."""

    # Pixel blitting.
    xflip: float = 0.0
    rotate90: float = 0.0
    xint: float = 0.0
    xint_max: float = 0.125  # range of integer translation, relative to the image size
    # General geometric transforms.
    scale: float = 0.0
    rotate: float = 0.0
    aniso: float = 0.0
    xfrac: float = 0.0
    scale_std: float = 0.2  # log2 standard deviation of isotropic scaling
    rotate_max: float = 1.0  # range of rotation, 1 = full circle
    aniso_std: float = 0.2  # log2 standard deviation of anisotropic scaling
    xfrac_std: float = 0.125  # standard deviation of fractional translation, relative to the image size
    # Colour.
    brightness: float = 0.0
    contrast: float = 0.0
    lumaflip: float = 0.0
    hue: float = 0.0
    saturation: float = 0.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5  # log2
    hue_max: float = 1.0  # 1 = full circle
    saturation_std: float = 1.0  # log2
    # Image-space filtering.
    imgfilter: float = 0.0
    imgfilter_bands: Tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # multipliers of the four bands
    imgfilter_std: float = 1.0  # log2 standard deviation of a band's gain
    # Image-space corruptions.
    noise: float = 0.0
    cutout: float = 0.0
    noise_std: float = 0.1
    cutout_size: float = 0.5  # side of the cutout square, relative to the image size

    @property
    def geometric(self) -> bool:
        return any(getattr(self, k) > 0 for k in GROUPS["blit"] + GROUPS["geom"])

    def colour(self, channels: int) -> bool:
        """Whether a colour matrix is drawn for images of ``channels`` (hue and saturation need RGB)."""
        names = GROUPS["color"] if channels > 1 else ("brightness", "contrast", "lumaflip")
        return any(getattr(self, k) > 0 for k in names)


# The transforms of each group, and the named pipelines as groups (stylegan2-ada's augpipe_specs).
GROUPS: Dict[str, Tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
}
PIPELINES: Dict[str, Tuple[str, ...]] = {
    "blit": ("blit",),
    "geom": ("geom",),
    "color": ("color",),
    "filter": ("filter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": ("blit", "geom"),
    "bgc": ("blit", "geom", "color"),
    "bgcf": ("blit", "geom", "color", "filter"),
    "bgcfn": ("blit", "geom", "color", "filter", "noise"),
    "bgcfnc": ("blit", "geom", "color", "filter", "noise", "cutout"),
}
DEFAULT_PIPELINE = "bgc"


def pipeline(name: str) -> AugmentConfig:
    """The named pipeline: multiplier 1 for each of its transforms, default strengths."""
    if name not in PIPELINES:
        raise ValueError(f"unknown augmentation pipeline {name!r}; expected one of {', '.join(PIPELINES)}")
    return AugmentConfig(**{t: 1.0 for group in PIPELINES[name] for t in GROUPS[group]})


# ---- matrices ---------------------------------------------------------------------------------


def _matrix(rows: Sequence[Sequence], n: int) -> tf.Tensor:
    """``[n, len(rows), len(rows[0])]`` from rows of python numbers and ``[n]`` tensors."""
    elems = [tf.broadcast_to(tf.cast(e, tf.float32), [n]) for row in rows for e in row]
    return tf.reshape(tf.stack(elems, axis=-1), [n, len(rows), len(rows[0])])


def translate2d(tx, ty, n: int) -> tf.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n)


def scale2d(sx, sy, n: int) -> tf.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n)


def rotate2d(theta, n: int) -> tf.Tensor:
    """Counter-clockwise in x-right, y-up terms; with y pointing down (image rows) it turns clockwise."""
    c, s = tf.cos(theta), tf.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], n)


def translate3d(tx, ty, tz, n: int) -> tf.Tensor:
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], n)


def scale3d(sx, sy, sz, n: int) -> tf.Tensor:
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], n)


def rotate3d(axis: np.ndarray, theta, n: int) -> tf.Tensor:
    """Rotation by ``theta`` about the unit ``axis`` (Rodrigues' formula), homogeneous 4x4."""
    x, y, z = (float(a) for a in axis[:3])
    s, c = tf.sin(theta), tf.cos(theta)
    cc = 1 - c
    return _matrix([
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
    ], n)


LUMA_AXIS = np.array([1, 1, 1, 0], np.float64) / math.sqrt(3)  # the grey axis of homogeneous RGB


# ---- the filter bank of image-space filtering --------------------------------------------------


def filter_bank() -> np.ndarray:
    """float32 ``[4, 43]``: the impulse responses of four octave bands (lowest first) that sum to a
    unit impulse, built from sym2 as in stylegan2-ada: each step doubles the spacing of the bands
    so far, smooths them with the half-band low-pass ``H(z) H(1/z) / 2`` and adds the next
    high-pass band ``H(-z) H(-1/z) / 2``."""
    lo = np.asarray(SYM2, np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2, hi2 = np.convolve(lo, lo[::-1]) / 2, np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(4, 1)
    for band in range(1, 4):
        spread = np.zeros([4, bank.shape[1] * 2 - 1])
        spread[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in spread])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start:start + hi2.size] += hi2
    return bank.astype(np.float32)


_BANK = filter_bank()
_BAND_POWER = np.array([10, 1, 1, 1], np.float32) / 13  # expected power spectrum (1/f) per band


# ---- random draws -----------------------------------------------------------------------------


def _exp2(x: tf.Tensor) -> tf.Tensor:
    return tf.pow(2.0, x)


def _layout(*fields: Tuple[str, int]) -> Dict[str, slice]:
    out, start = {}, 0
    for name, size in fields:
        out[name] = slice(start, start + size)
        start += size
    return out


# Fixed slots per image, so that what one transform draws does not depend on which others are on.
# Uniform slots: the gate first, then the transform's values.
_UNIFORM = _layout(
    ("xflip", 2), ("rotate90", 2), ("xint", 3), ("scale", 1), ("rotate_pre", 2), ("aniso", 1),
    ("rotate_post", 2), ("xfrac", 1), ("brightness", 1), ("contrast", 1), ("lumaflip", 2), ("hue", 2),
    ("saturation", 1), ("imgfilter", 4), ("noise", 1), ("cutout", 3),
)
_NORMAL = _layout(
    ("scale", 1), ("aniso", 1), ("xfrac", 2), ("brightness", 1), ("contrast", 1), ("saturation", 1),
    ("imgfilter", 4), ("noise", 1),
)


def _random_numbers(seeds: tf.Tensor, shape: Tuple[int, int, int], with_noise: bool):
    """Per image (one int64 ``[2]`` seed each): uniform ``[N, U]``, normal ``[N, Z]`` numbers and,
    ``with_noise``, a standard normal image ``[N, H, W, C]``."""
    num_u, num_z = _UNIFORM["cutout"].stop, _NORMAL["noise"].stop

    def one(seed: tf.Tensor):
        out = (
            tf.random.stateless_uniform([num_u], seed),
            tf.random.stateless_normal([num_z], tf.random.experimental.stateless_fold_in(seed, 1)),
        )
        if with_noise:
            out += (tf.random.stateless_normal(shape, tf.random.experimental.stateless_fold_in(seed, 2)),)
        return out

    signature = (tf.TensorSpec([num_u]), tf.TensorSpec([num_z])) + ((tf.TensorSpec(shape),) if with_noise else ())
    return tf.map_fn(one, tf.cast(seeds, tf.int64), fn_output_signature=signature)


def draw(cfg: AugmentConfig, p: tf.Tensor, seeds: tf.Tensor, shape: Tuple[int, int, int]) -> Draws:
    """The random parameters of the pipeline for a batch of images of ``shape`` (H, W, C).

    Args:
      cfg: the pipeline.
      p: float32 scalar, the augmentation probability (a tensor: a new p does not retrace).
      seeds: int64 ``[N, 2]``, one stateless seed per image.

    Returns:
      The enabled parts of: ``geom`` ``[N, 3, 3]`` (inverse 2-D matrix: output pixel -> input pixel),
      ``color`` ``[N, 4, 4]``, ``filter`` ``[N, 43]`` (each image's filter taps), ``noise``
      ``[N, H, W, C]``, ``cutout`` ``[N, H, W, 1]`` (0 inside the cut square).
    """
    h, w, c = (int(s) for s in shape)
    n = int(seeds.shape[0])
    p = tf.cast(p, tf.float32)
    numbers = _random_numbers(seeds, (h, w, c), cfg.noise > 0)
    uniform, normal = numbers[0], numbers[1]
    u = {k: uniform[:, s] for k, s in _UNIFORM.items()}
    z = {k: normal[:, s] for k, s in _NORMAL.items()}

    def gate(name: str, probability, value, off):
        """``value`` where the image's gate draw is below ``probability``, else ``off``."""
        fires = u[name][:, 0] < probability
        fires = tf.reshape(fires, [n] + [1] * (value.shape.rank - 1))
        return tf.where(fires, value, tf.cast(off, value.dtype))

    out: Draws = {}
    if cfg.geometric:
        g = tf.eye(3, batch_shape=[n])
        if cfg.xflip > 0:
            i = gate("xflip", cfg.xflip * p, tf.floor(u["xflip"][:, 1] * 2), 0)
            g = g @ scale2d(1 - 2 * i, 1, n)  # its own inverse
        if cfg.rotate90 > 0:
            i = gate("rotate90", cfg.rotate90 * p, tf.floor(u["rotate90"][:, 1] * 4), 0)
            g = g @ rotate2d(math.pi / 2 * i, n)  # inverse of a rotation by -90 i degrees
        if cfg.xint > 0:
            t = gate("xint", cfg.xint * p, (u["xint"][:, 1:] * 2 - 1) * cfg.xint_max, 0)
            g = g @ translate2d(-tf.round(t[:, 0] * w), -tf.round(t[:, 1] * h), n)
        if cfg.scale > 0:
            s = gate("scale", cfg.scale * p, _exp2(z["scale"][:, 0] * cfg.scale_std), 1)
            g = g @ scale2d(1 / s, 1 / s, n)
        # Rotation before and after the anisotropic scaling, each with p_rot: P(either) = rotate * p.
        p_rot = 1 - tf.sqrt(tf.clip_by_value(1 - cfg.rotate * p, 0, 1))
        if cfg.rotate > 0:
            theta = gate("rotate_pre", p_rot, (u["rotate_pre"][:, 1] * 2 - 1) * math.pi * cfg.rotate_max, 0)
            g = g @ rotate2d(theta, n)
        if cfg.aniso > 0:
            s = gate("aniso", cfg.aniso * p, _exp2(z["aniso"][:, 0] * cfg.aniso_std), 1)
            g = g @ scale2d(1 / s, s, n)
        if cfg.rotate > 0:
            theta = gate("rotate_post", p_rot, (u["rotate_post"][:, 1] * 2 - 1) * math.pi * cfg.rotate_max, 0)
            g = g @ rotate2d(theta, n)
        if cfg.xfrac > 0:
            t = gate("xfrac", cfg.xfrac * p, z["xfrac"] * cfg.xfrac_std, 0)
            g = g @ translate2d(-t[:, 0] * w, -t[:, 1] * h, n)
        out["geom"] = g

    if cfg.colour(c):
        m = tf.eye(4, batch_shape=[n])
        vv = tf.constant(np.outer(LUMA_AXIS, LUMA_AXIS), tf.float32)
        if cfg.brightness > 0:
            b = gate("brightness", cfg.brightness * p, z["brightness"][:, 0] * cfg.brightness_std, 0)
            m = translate3d(b, b, b, n) @ m
        if cfg.contrast > 0:
            k = gate("contrast", cfg.contrast * p, _exp2(z["contrast"][:, 0] * cfg.contrast_std), 1)
            m = scale3d(k, k, k, n) @ m
        if cfg.lumaflip > 0:
            i = gate("lumaflip", cfg.lumaflip * p, tf.floor(u["lumaflip"][:, 1] * 2), 0)
            m = (tf.eye(4) - 2 * vv * i[:, None, None]) @ m  # Householder reflection of the luma axis
        if cfg.hue > 0 and c > 1:
            theta = gate("hue", cfg.hue * p, (u["hue"][:, 1] * 2 - 1) * math.pi * cfg.hue_max, 0)
            m = rotate3d(LUMA_AXIS, theta, n) @ m
        if cfg.saturation > 0 and c > 1:
            s = gate("saturation", cfg.saturation * p, _exp2(z["saturation"][:, 0] * cfg.saturation_std), 1)
            m = (vv + (tf.eye(4) - vv) * s[:, None, None]) @ m
        out["color"] = m

    if cfg.imgfilter > 0:
        if len(cfg.imgfilter_bands) != len(_BANK):
            raise ValueError(f"imgfilter_bands needs {len(_BANK)} entries, got {len(cfg.imgfilter_bands)}")
        gains = tf.ones([n, len(_BANK)])
        for band, strength in enumerate(cfg.imgfilter_bands):
            fires = u["imgfilter"][:, band] < cfg.imgfilter * p * strength
            t_i = tf.where(fires, _exp2(z["imgfilter"][:, band] * cfg.imgfilter_std), 1.0)
            t = 1 + (t_i[:, None] - 1) * tf.one_hot(band, len(_BANK))  # [N, bands]: this band's gain, others 1
            gains *= t / tf.sqrt(tf.reduce_sum(_BAND_POWER * tf.square(t), axis=1, keepdims=True))  # same power
        out["filter"] = gains @ tf.constant(_BANK)

    if cfg.noise > 0:
        sigma = gate("noise", cfg.noise * p, tf.abs(z["noise"][:, 0]) * cfg.noise_std, 0)
        out["noise"] = numbers[2] * sigma[:, None, None, None]

    if cfg.cutout > 0:
        size = gate("cutout", cfg.cutout * p, tf.fill([n], float(cfg.cutout_size)), 0)[:, None, None]
        centre = u["cutout"][:, 1:]
        xs = (np.arange(w, dtype=np.float32) + 0.5) / w
        ys = (np.arange(h, dtype=np.float32) + 0.5) / h
        outside_x = tf.abs(xs[None, None, :] - centre[:, 0, None, None]) >= size / 2
        outside_y = tf.abs(ys[None, :, None] - centre[:, 1, None, None]) >= size / 2
        out["cutout"] = tf.cast(tf.logical_or(outside_x, outside_y), tf.float32)[..., None]
    return out


# ---- application ------------------------------------------------------------------------------


def apply(images: tf.Tensor, draws: Draws) -> tf.Tensor:
    """The pipeline with its parameters drawn: ``[N, H, W, C]`` -> ``[N, H, W, C]`` float32.

    Affine in the images (for fixed draws), differentiable to any order, XLA-compatible; the
    batch size must be static. Order as in stylegan2-ada: geometry, colour, filter, noise, cutout.
    """
    x = tf.cast(images, tf.float32)
    if "geom" in draws:
        x = warp(x, draws["geom"])
    if "color" in draws:
        x = recolour(x, draws["color"])
    if "filter" in draws:
        x = filter_images(x, draws["filter"])
    if "noise" in draws:
        x = x + draws["noise"]
    if "cutout" in draws:
        x = x * draws["cutout"]
    return x


def reflect_indices(size: int, before: int, after: int) -> np.ndarray:
    """Indices of reflect padding (the edge pixel not repeated), extended periodically when the
    padding exceeds the size: index ``k`` of the padded axis reads pixel ``result[k]``."""
    k = np.arange(-before, size + after)
    if size == 1:
        return np.zeros_like(k)
    k = np.mod(k, 2 * (size - 1))
    return np.where(k < size, k, 2 * (size - 1) - k)


def reflect_pad(x: tf.Tensor, pad_y: int, pad_x: int) -> tf.Tensor:
    """Reflect padding of an NHWC batch by ``pad_y`` rows and ``pad_x`` columns on each side."""
    x = tf.gather(x, reflect_indices(int(x.shape[1]), pad_y, pad_y), axis=1)
    return tf.gather(x, reflect_indices(int(x.shape[2]), pad_x, pad_x), axis=2)


_HZ_GEOM = setup_filter(SYM6)  # separable, normalised: the upsampling and downsampling low-pass
_HZ_PAD = len(SYM6) // 4  # output margin (pixels) that the downsampling filter consumes


def warp(images: tf.Tensor, g_inv: tf.Tensor) -> tf.Tensor:
    """Resamples each image by its inverse affine matrix ``g_inv`` ``[N, 3, 3]``, which maps output
    pixel coordinates to input ones, both in pixels from the image centre (x right, y down).

    The image is reflect-padded by its size minus one (the most NVIDIA pads) and upsampled 2x with
    sym6; an output grid of ``2 (H + 6) x 2 (W + 6)`` is sampled bilinearly (zero outside), and
    the filtered 2x downsampling consumes the 6-pixel margin again. Coordinates follow NVIDIA's
    composition of the padding, upsampling and normalisation matrices with ``affine_grid`` /
    ``grid_sample(align_corners=False)``: output grid pixel ``o`` sits at ``(o + 1 - W_out / 2) / 2``
    image pixels, image coordinate ``r`` at upsampled input pixel ``2 r + W_in / 2 - 1``.
    """
    n, h, w, c = (int(images.shape[0]), int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
    x = reflect_pad(images, h - 1, w - 1)
    x = upsample2d(x, _HZ_GEOM, up=2)
    h_in, w_in = int(x.shape[1]), int(x.shape[2])
    h_out, w_out = 2 * (h + 2 * _HZ_PAD), 2 * (w + 2 * _HZ_PAD)
    qx = ((np.arange(w_out) + 1 - w_out / 2) / 2).astype(np.float32)[None, None, :]
    qy = ((np.arange(h_out) + 1 - h_out / 2) / 2).astype(np.float32)[None, :, None]
    g = tf.stop_gradient(tf.cast(g_inv, tf.float32))[:, :2, :, None, None]  # [N, 2, 3, 1, 1]
    rx = g[:, 0, 0] * qx + g[:, 0, 1] * qy + g[:, 0, 2]
    ry = g[:, 1, 0] * qx + g[:, 1, 1] * qy + g[:, 1, 2]
    x = bilinear_sample(x, 2 * rx + w_in / 2 - 1, 2 * ry + h_in / 2 - 1)
    return downsample2d(x, _HZ_GEOM, down=2, padding=-2 * _HZ_PAD, flip_filter=True)


def bilinear_sample(images: tf.Tensor, ix: tf.Tensor, iy: tf.Tensor) -> tf.Tensor:
    """``images`` ``[N, H, W, C]`` sampled at pixel coordinates ``ix``, ``iy`` ``[N, Ho, Wo]``
    (pixel centres at integers), bilinear, zero outside the image. Linear in ``images``; the
    coordinates get no gradient."""
    n, h, w, c = (int(images.shape[0]), int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
    flat = tf.reshape(images, [n, h * w, c])
    ix, iy = tf.stop_gradient(ix), tf.stop_gradient(iy)
    x0, y0 = tf.floor(ix), tf.floor(iy)
    fx, fy = ix - x0, iy - y0
    out = 0.0
    for dy, wy in ((0.0, 1 - fy), (1.0, fy)):
        for dx, wx in ((0.0, 1 - fx), (1.0, fx)):
            xs, ys = x0 + dx, y0 + dy
            inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
            index = tf.cast(tf.clip_by_value(ys, 0, h - 1) * w + tf.clip_by_value(xs, 0, w - 1), tf.int32)
            values = tf.gather(flat, tf.reshape(index, [n, -1]), batch_dims=1)
            weight = tf.reshape(wx * wy * tf.cast(inside, tf.float32), [n, -1, 1])
            out = out + values * weight
    return tf.reshape(out, [n, *ix.shape[1:], c])


def recolour(images: tf.Tensor, matrices: tf.Tensor) -> tf.Tensor:
    """Applies each image's 4x4 colour matrix to its homogeneous RGB pixels; a grayscale image
    (1 channel) takes the mean of the matrix's RGB rows, so grey maps to grey."""
    c = int(images.shape[3])
    m = tf.cast(matrices, tf.float32)
    if c == 3:
        return tf.einsum("nhwc,ndc->nhwd", images, m[:, :3, :3]) + m[:, None, None, :3, 3]
    if c == 1:
        row = tf.reduce_mean(m[:, :3, :], axis=1)  # [N, 4]
        return images * tf.reduce_sum(row[:, :3], axis=1)[:, None, None, None] + row[:, None, None, 3:]
    raise ValueError(f"colour augmentation needs RGB or grayscale images, got {c} channels")


def filter_images(images: tf.Tensor, taps: tf.Tensor) -> tf.Tensor:
    """Filters each image separably (rows, then columns) with its own symmetric taps ``[N, T]``,
    reflect-padded so that the output keeps the input's size."""
    n, h, w, c = (int(images.shape[0]), int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
    t = int(taps.shape[1])
    x = reflect_pad(images, t // 2, t // 2)
    # One depthwise channel per (image, channel): [1, H', W', N * C].
    x = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h + 2 * (t // 2), w + 2 * (t // 2), n * c])
    k = tf.reshape(tf.tile(tf.transpose(tf.cast(taps, tf.float32))[:, :, None], [1, 1, c]), [t, n * c])
    x = tf.nn.depthwise_conv2d(x, k[None, :, :, None], [1, 1, 1, 1], "VALID")
    x = tf.nn.depthwise_conv2d(x, k[:, None, :, None], [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(x, [h, w, n, c]), [2, 0, 1, 3])


# ---- the adaptive probability -----------------------------------------------------------------


class AdaptiveP:
    """The augmentation probability p and stylegan2-ada's heuristic that tunes it.

    Every ``interval`` minibatches, ``r_t = E[sign(D(real))]`` over the real images D judged since
    the last adjustment, and ``p += sign(r_t - target) * batch_size * interval / (kimg * 1000)``,
    clamped to [0, 1]: p can move from 0 to 1 in ``kimg`` thousand images. Without a target p stays
    where it is (``--aug=fixed``). Create it inside the strategy's scope; its variables belong in
    the checkpoint, so that a resumed run continues with its p and its partial interval.
    """

    def __init__(self, p: float, target: Optional[float], batch_size: int, interval: int = 4, kimg: float = 500):
        if not 0 <= p <= 1:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.target, self.interval = target, int(interval)
        self.step = batch_size * interval / (kimg * 1000)
        self.p = tf.Variable(float(p), trainable=False, dtype=tf.float32, name="augment_p")
        # [sum of sign(D(real)), count] since the last adjustment, and the last r_t (for the logs).
        self.signs = tf.Variable([0.0, 0.0], trainable=False, dtype=tf.float32, name="augment_signs")
        self.rt = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="augment_rt")

    def variables(self) -> list:
        return [self.p, self.signs, self.rt]

    def accumulate(self, sign_sum: tf.Tensor, count) -> None:
        """Adds the signs of D's logits on ``count`` real images (their sum)."""
        self.signs.assign_add(tf.stack([tf.cast(sign_sum, tf.float32), tf.cast(count, tf.float32)]))

    def adjust(self, batch_idx: tf.Tensor) -> None:
        """Call after each minibatch with the advanced ``batch_idx``: adjusts p at interval ends."""
        if self.target is None:
            return

        def update():
            rt = self.signs[0] / tf.maximum(self.signs[1], 1.0)
            self.rt.assign(rt)
            self.p.assign(tf.clip_by_value(self.p + tf.sign(rt - self.target) * self.step, 0.0, 1.0))
            self.signs.assign([0.0, 0.0])
            return tf.constant(True)

        tf.cond(tf.equal(batch_idx % self.interval, 0), update, lambda: tf.constant(False))
