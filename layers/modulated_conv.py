"""Weight modulation and demodulation (StyleGAN2, section 2.2), as a function and as a layer.

``modulate``: scale the convolution weight's input channels by a per-sample style ``s``.
Demodulation (``demodulation_coefficients``): rescale each output channel so that, for inputs of
unit variance, the output has unit variance again: ``w'' = w' / sqrt(sum w'^2 + eps)``. This replaces AdaIN's normalization of
the activations, whose statistics caused StyleGAN's droplet artifacts.

Two implementations compute the same thing:

* fused: per-sample weights, run as one grouped convolution (batch folded into channels);
* per-sample scaling: scale the activations by ``s`` before and by the demodulation coefficients
  after a shared-weight convolution (cheaper on CPUs, and what training uses).
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from custom_ops import conv2d_resample, setup_filter
from layers.base import StyleGANLayer
from layers.equalized import EqualizedDense


def modulate(weight: tf.Tensor, styles: tf.Tensor) -> tf.Tensor:
    """Per-sample weights ``[N, kh, kw, in, out]`` from ``weight [kh, kw, in, out]`` and ``styles [N, in]``."""
    return weight[tf.newaxis] * styles[:, tf.newaxis, tf.newaxis, :, tf.newaxis]


def demodulation_coefficients(weight: tf.Tensor, styles: tf.Tensor) -> tf.Tensor:
    """``[N, out]``: one over the L2 norm of each output channel's modulated weights ``modulate(weight, styles)``.

    The squared norm is summed as ``sum_in styles^2 * sum_kh,kw weight^2``, the same terms
    regrouped: it never forms the ``[N, kh, kw, in, out]`` per-sample weights, and the weight only
    enters through a ``[in, out]`` reduction, so exporters that fold constants (TFLite) store the
    convolution weight once instead of twice. (Elementwise rather than a matmul, which GPUs would
    run in TF32.)
    """
    weight_sq = tf.reduce_sum(tf.square(weight), axis=[0, 1])  # [in, out]
    norm_sq = tf.reduce_sum(tf.square(styles)[:, :, tf.newaxis] * weight_sq[tf.newaxis], axis=1)
    return tf.math.rsqrt(norm_sq + 1e-8)


def modulated_conv2d(
    x: tf.Tensor,
    weight: tf.Tensor,
    styles: tf.Tensor,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: Optional[np.ndarray] = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> tf.Tensor:
    """Modulated (and optionally demodulated) convolution.

    Args:
      x: ``[N, H, W, in]`` activations in the compute dtype.
      weight: ``[kh, kw, in, out]`` float32 weight.
      styles: ``[N, in]`` float32 styles.
      up, down, padding, resample_filter, flip_weight: as in ``conv2d_resample``.
      demodulate: normalize each output channel (False for ToRGB).
      fused_modconv: True = grouped convolution with per-sample weights; False = scale activations.

    Returns:
      ``[N, H * up / down, W * up / down, out]`` in x's dtype.
    """
    kh, kw, in_channels, out_channels = (int(s) for s in weight.shape)
    weight = tf.cast(weight, tf.float32)
    styles = tf.cast(styles, tf.float32)

    # float16 overflows on large styles; dividing by the maxima first changes nothing after
    # demodulation, which is scale invariant.
    if x.dtype == tf.float16 and demodulate:
        weight = weight * (1 / np.sqrt(in_channels * kh * kw)) / tf.reduce_max(
            tf.abs(weight), axis=[0, 1, 2], keepdims=True
        )
        styles = styles / tf.reduce_max(tf.abs(styles), axis=1, keepdims=True)

    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None

    if not fused_modconv:
        x = x * tf.cast(styles, x.dtype)[:, tf.newaxis, tf.newaxis, :]
        x = conv2d_resample(
            x, tf.cast(weight, x.dtype), resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight
        )
        if demodulate:
            x = x * tf.cast(dcoefs, x.dtype)[:, tf.newaxis, tf.newaxis, :]
        return x

    w = modulate(weight, styles)
    if demodulate:
        w = w * dcoefs[:, tf.newaxis, tf.newaxis, tf.newaxis, :]
    # Fold the batch into the channels: sample n owns input group n and output group n.
    n = tf.shape(x)[0]
    h, wd = int(x.shape[1]), int(x.shape[2])
    x = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, wd, -1])
    w = tf.reshape(tf.transpose(w, [1, 2, 3, 0, 4]), [kh, kw, in_channels, -1])
    x = conv2d_resample(
        x,
        tf.cast(w, x.dtype),
        resample_filter,
        up=up,
        down=down,
        padding=padding,
        groups=_static_batch(x, in_channels),
        flip_weight=flip_weight,
    )
    x = tf.reshape(x, [int(x.shape[1]), int(x.shape[2]), n, out_channels])
    return tf.transpose(x, [2, 0, 1, 3])


def _static_batch(folded: tf.Tensor, in_channels: int) -> int:
    channels = folded.shape[-1]
    if channels is None:
        raise ValueError("the fused modulated convolution needs a static batch size; use fused_modconv=False")
    return int(channels) // in_channels


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class ModulatedConv2D(StyleGANLayer):
    """Style affine + modulated convolution, without bias, noise or activation.

    Shapes: ``x [N, H, W, in_channels], w [N, w_dim] -> [N, H * up, W * up, out_channels]``.

    Args:
      in_channels, out_channels: channel counts.
      w_dim: width of the intermediate latent w.
      kernel_size: square kernel size; padding is ``kernel_size // 2``.
      demodulate: normalize output channels (True in synthesis layers, False in ToRGB).
      up: upsampling factor (1 or 2); upsampling filters with ``resample_filter``.
      resample_filter: FIR taps.

    The weight is stored with unit variance. With demodulation its scale cancels out; without it
    the styles carry the equalized-learning-rate gain ``1 / sqrt(fan_in)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 3,
        demodulate: bool = True,
        up: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.kernel_size = int(kernel_size)
        self.demodulate = bool(demodulate)
        if up not in (1, 2):
            raise ValueError(f"{self.name}: up must be 1 or 2 (the synthesis network's factors), got {up!r}")
        self.up = int(up)
        self.resample_filter = [float(t) for t in resample_filter]
        self.filter = setup_filter(self.resample_filter)
        self.style_gain = 1.0 if self.demodulate else 1.0 / np.sqrt(self.in_channels * self.kernel_size**2)
        # Styles stay float32 whatever the block computes in, as in NVIDIA's mixed precision.
        self.affine = EqualizedDense(self.w_dim, self.in_channels, bias_init=1.0, name="affine", dtype="float32")
        self.weight = self.add_weight(
            name="weight",
            shape=(self.kernel_size, self.kernel_size, self.in_channels, self.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.built = True

    def call(self, x: tf.Tensor, w: tf.Tensor, fused_modconv: bool = False) -> tf.Tensor:
        self.check_shape(x, [None, None, None, self.in_channels], "x")
        self.check_shape(w, [None, self.w_dim], "w")
        styles = self.affine(w) * self.style_gain
        return modulated_conv2d(
            self.to_compute(x),
            self.weight,
            styles,
            up=self.up,
            padding=self.kernel_size // 2,
            resample_filter=self.filter,
            demodulate=self.demodulate,
            flip_weight=(self.up == 1),  # as NVIDIA's: keeps imported weights exact
            fused_modconv=fused_modconv,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "w_dim": self.w_dim,
            "kernel_size": self.kernel_size,
            "demodulate": self.demodulate,
            "up": self.up,
            "resample_filter": self.resample_filter,
        }
