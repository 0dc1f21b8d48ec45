"""2-D convolution with optional FIR up/down-sampling, fused where the maths allows.

``conv2d_resample`` computes exactly
``downsample(conv(upsample(x, f, up, padding), w), f, down)``, with the padding applied once at the
beginning, but picks the cheapest equivalent order: a strided convolution after filtering when
downsampling, a transposed (fractionally strided) convolution before filtering when upsampling.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from custom_ops.upfirdn2d import (
    Padding,
    add_padding,
    downsample_padding,
    parse_padding,
    upfirdn2d,
    upsample_padding,
)


def _weight_shape(w: tf.Tensor):
    if w.shape.rank != 4 or None in w.shape:
        raise ValueError(f"conv weight must have static shape [kh, kw, in/groups, out], got {w.shape}")
    return tuple(int(s) for s in w.shape)


def _conv(
    x: tf.Tensor,
    w: tf.Tensor,
    stride: int = 1,
    padding: Padding = 0,
    flip_weight: bool = True,
) -> tf.Tensor:
    """Strided correlation (flip_weight=True) or convolution; groups follow from the channel counts."""
    if not flip_weight:
        w = tf.reverse(w, [0, 1])
    px, py = parse_padding(padding)[0::2]
    kh, kw = _weight_shape(w)[:2]
    # Never tf.nn.conv2d's explicit padding: oneDNN does not take it, and the Eigen fallback of its
    # gradients is 2x slower in float32 and 40x slower in bfloat16 (a whole bfloat16 training step
    # ran 8x slower than float32 with it).
    if stride == 1 and (kh, kw) == (2 * py + 1, 2 * px + 1):
        return tf.nn.conv2d(x, w, 1, "SAME")
    if px or py:
        x = tf.pad(x, [[0, 0], [py, py], [px, px], [0, 0]])
    return tf.nn.conv2d(x, w, [1, stride, stride, 1], "VALID")


def _conv_transpose(x: tf.Tensor, w: tf.Tensor, stride: int, groups: int, flip_weight: bool) -> tf.Tensor:
    """Transposed convolution with no padding: ``[N, H, W, in] -> [N, (H-1)*s + kh, (W-1)*s + kw, out]``.

    ``w`` has the forward layout ``[kh, kw, in/groups, out]``. With flip_weight=True it is scattered
    as it is (the transpose of a correlation with ``w``); with False it is flipped first.
    """
    kh, kw, _, out_channels = _weight_shape(w)
    if not flip_weight:
        w = tf.reverse(w, [0, 1])
    if groups == 1:
        n, h, wd = tf.shape(x)[0], int(x.shape[1]), int(x.shape[2])
        out_shape = tf.stack([n, (h - 1) * stride + kh, (wd - 1) * stride + kw, out_channels])
        return tf.nn.conv2d_transpose(x, tf.transpose(w, [0, 1, 3, 2]), out_shape, stride, "VALID")
    # oneDNN has no grouped transposed convolution: insert zeros and run a grouped correlation with
    # the flipped kernel, which computes the same sums.
    x = upfirdn2d(x, None, up=stride, padding=[kw - 1, kw - stride, kh - 1, kh - stride])
    return tf.nn.conv2d(x, tf.reverse(w, [0, 1]), 1, "VALID")


def conv2d_resample(
    x: tf.Tensor,
    w: tf.Tensor,
    f: Optional[np.ndarray] = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> tf.Tensor:
    """2-D convolution with optional up/down-sampling.

    Args:
      x: ``[N, H, W, in_channels]``.
      w: ``[kh, kw, in_channels / groups, out_channels]`` in x's dtype.
      f: low-pass filter from ``upfirdn2d.setup_filter`` (None = identity).
      up: integer upsampling factor.
      down: integer downsampling factor.
      padding: padding of the upsampled image, int, ``[x, y]`` or ``[x0, x1, y0, y1]``.
      groups: split the channels into this many independent groups.
      flip_weight: True = correlation (tf.nn.conv2d semantics), False = convolution.
      flip_filter: False = convolve with f, True = correlate.

    Returns:
      ``[N, H', W', out_channels]``; for a ``k x k`` kernel with padding ``k // 2`` that is
      ``H * up / down``.
    """
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f"up and down must be integers >= 1, got up={up}, down={down}")
    kh, kw, in_per_group, out_channels = _weight_shape(w)
    if x.shape[-1] != in_per_group * groups or out_channels % groups != 0:
        raise ValueError(
            f"conv2d_resample: input has {x.shape[-1]} channels, weight {w.shape} with groups={groups}"
        )
    # The filter's own footprint adds to the padding.
    pads = list(parse_padding(padding))
    if up > 1:
        pads = add_padding(pads, upsample_padding(f, up))
    if down > 1:
        pads = add_padding(pads, downsample_padding(f, down))
    px0, px1, py0, py1 = pads

    # 1x1 kernel and downsampling only: downsample first, then convolve fewer pixels.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pads, flip_filter=flip_filter)
        return _conv(x, w, flip_weight=flip_weight)

    # 1x1 kernel and upsampling only: convolve first, then upsample.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pads, gain=up**2, flip_filter=flip_filter)

    # Downsampling only: filter, then a strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pads, flip_filter=flip_filter)
        return _conv(x, w, stride=down, flip_weight=flip_weight)

    # Upsampling (and maybe downsampling): transposed convolution, then filter.
    if up > 1:
        x = _conv_transpose(x, w, stride=up, groups=groups, flip_weight=not flip_weight)
        pads = [px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)]
        x = upfirdn2d(x, f, padding=pads, gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # No resampling: let the convolution pad when the padding is symmetric and non-negative.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[px0, py0], flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pads)
    return _conv(x, w, flip_weight=flip_weight)
