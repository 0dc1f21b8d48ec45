"""upfirdn2d: upsample, pad, FIR-filter and downsample a batch of NHWC images.

For every channel independently:

1. upsample by inserting ``up - 1`` zeros after each pixel,
2. pad with zeros (a negative padding crops),
3. convolve with the 2-D FIR filter ``f``, keeping only outputs whose footprint lies inside
   the padded image,
4. downsample by keeping every ``down``-th pixel.

This is the 2-D, multi-channel analogue of ``scipy.signal.upfirdn`` and the resampling primitive
of StyleGAN2: every up/down-sampling step in the networks is one call of it. Filters are constants
(numpy arrays prepared by :func:`setup_filter`), never trainable, so their shapes are static.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from custom_ops import kernel_args, loader

FilterLike = Union[None, float, Sequence[float], Sequence[Sequence[float]], np.ndarray]
Scaling = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int]]


def parse_scaling(scaling: Scaling) -> Tuple[int, int]:
    """Returns ``(sx, sy)`` from an int or an ``[x, y]`` pair; both must be integers >= 1."""
    if isinstance(scaling, (int, np.integer)):
        scaling = [int(scaling), int(scaling)]
    sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise ValueError(f"resampling factors must be integers >= 1, got {list(scaling)}")
    return sx, sy


def parse_padding(padding: Padding) -> Tuple[int, int, int, int]:
    """Returns ``(x0, x1, y0, y1)`` from an int, ``[x, y]`` or ``[x0, x1, y0, y1]``."""
    if isinstance(padding, (int, np.integer)):
        padding = [int(padding), int(padding)]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def filter_size(f: Optional[np.ndarray]) -> Tuple[int, int]:
    """Returns ``(width, height)`` of a filter prepared by :func:`setup_filter` (None = 1x1)."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upsample_padding(f: Optional[np.ndarray], up: Scaling) -> Tuple[int, int, int, int]:
    """Padding ``(x0, x1, y0, y1)`` that centres the filter's footprint when upsampling by ``up``,
    so that the output is exactly ``up`` times the input."""
    upx, upy = parse_scaling(up)
    fw, fh = filter_size(f)
    return (fw + upx - 1) // 2, (fw - upx) // 2, (fh + upy - 1) // 2, (fh - upy) // 2


def downsample_padding(f: Optional[np.ndarray], down: Scaling) -> Tuple[int, int, int, int]:
    """Padding ``(x0, x1, y0, y1)`` that centres the filter's footprint when downsampling by ``down``."""
    downx, downy = parse_scaling(down)
    fw, fh = filter_size(f)
    return (fw - downx + 1) // 2, (fw - downx) // 2, (fh - downy + 1) // 2, (fh - downy) // 2


def add_padding(a: Sequence[int], b: Sequence[int]) -> List[int]:
    """Element-wise sum of two ``(x0, x1, y0, y1)`` paddings."""
    return [int(i) + int(j) for i, j in zip(a, b)]


def setup_filter(
    f: FilterLike = None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: Optional[bool] = None,
) -> np.ndarray:
    """Prepares a FIR filter for :func:`upfirdn2d`.

    Args:
      f: ``[taps]`` (separable), ``[height, width]``, a scalar, or None (identity).
      normalize: scale so that a constant signal keeps its magnitude (sum of taps = 1).
      flip_filter: flip the filter in every dimension.
      gain: overall gain of the 2-D filter (a separable filter carries ``sqrt(gain)`` per axis).
      separable: keep a 1-D filter separable; default: only for filters of 8 or more taps, where
        two 1-D passes are cheaper than one 2-D pass.

    Returns:
      float32 array of shape ``[taps]`` (separable) or ``[height, width]``.
    """
    f = np.asarray(1.0 if f is None else f, dtype=np.float32)
    if f.ndim > 2 or f.size == 0:
        raise ValueError(f"a FIR filter must be a non-empty scalar, 1-D or 2-D array, got shape {f.shape}")
    if f.ndim == 0:
        f = f[np.newaxis]
    if separable is None:
        separable = f.ndim == 1 and f.size >= 8
    if f.ndim == 1 and not separable:
        f = np.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be used as a separable filter")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = np.flip(f, axis=tuple(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return np.ascontiguousarray(f, dtype=np.float32)


def _check_nhwc(x: tf.Tensor) -> Tuple[int, int, int]:
    if x.shape.rank != 4 or None in x.shape[1:]:
        raise ValueError(f"expected an NHWC tensor with static height, width and channels, got shape {x.shape}")
    return int(x.shape[1]), int(x.shape[2]), int(x.shape[3])


def _depthwise(x: tf.Tensor, kernel: np.ndarray, stride: int = 1) -> tf.Tensor:
    """Correlates every channel of ``x`` with the 2-D ``kernel`` (valid positions only)."""
    channels = int(x.shape[3])
    k = np.tile(kernel[:, :, np.newaxis, np.newaxis], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(x, tf.constant(k, dtype=x.dtype), [1, stride, stride, 1], "VALID")


def _upfirdn2d_ref(
    x: tf.Tensor,
    f: np.ndarray,
    up: Tuple[int, int],
    down: Tuple[int, int],
    padding: Tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> tf.Tensor:
    """Reference implementation from standard TF ops (differentiable to any order)."""
    (upx, upy), (downx, downy) = up, down
    px0, px1, py0, py1 = padding
    in_h, in_w, channels = _check_nhwc(x)

    # Upsample by inserting zeros after every pixel, one axis at a time with 4-D tensors only:
    # TFLite's builtin PAD and RESHAPE stop at 4-D (5-D), so the exported models stay builtin-only.
    if upx > 1:
        x = tf.reshape(x, [-1, in_w, 1, channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, upx - 1], [0, 0]])
        x = tf.reshape(x, [-1, in_h, in_w * upx, channels])
    if upy > 1:
        x = tf.reshape(x, [-1, in_h, 1, in_w * upx * channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, upy - 1], [0, 0]])
        x = tf.reshape(x, [-1, in_h * upy, in_w * upx, channels])

    # Pad, then crop where the padding is negative.
    x = tf.pad(x, [[0, 0], [max(py0, 0), max(py1, 0)], [max(px0, 0), max(px1, 0)], [0, 0]])
    h, w = int(x.shape[1]), int(x.shape[2])
    x = x[:, max(-py0, 0) : h - max(-py1, 0), max(-px0, 0) : w - max(-px1, 0), :]

    # Convolution is correlation with the flipped filter.
    f = f * np.float32(gain ** (f.ndim / 2))
    if not flip_filter:
        f = np.flip(f, axis=tuple(range(f.ndim)))

    # Downsample inside the convolution when the strides allow it (equal factors, 2-D filter),
    # otherwise filter at full rate and drop pixels afterwards.
    if f.ndim == 2 and downx == downy:
        return _depthwise(x, f, stride=downx)
    if f.ndim == 2:
        x = _depthwise(x, f)
    else:
        x = _depthwise(x, f[:, np.newaxis])
        x = _depthwise(x, f[np.newaxis, :])
    return x[:, ::downy, ::downx, :]


def upfirdn2d(
    x: tf.Tensor,
    f: Optional[np.ndarray],
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    impl: Optional[str] = None,
) -> tf.Tensor:
    """Pads, upsamples, filters and downsamples a batch of images.

    Args:
      x: ``[N, H, W, C]`` float tensor (H, W, C static).
      f: filter from :func:`setup_filter` (``[fh, fw]`` or separable ``[taps]``), or None (identity).
      up: integer upsampling factor, int or ``[x, y]``.
      down: integer downsampling factor, int or ``[x, y]``.
      padding: padding of the upsampled image, int, ``[x, y]`` or ``[x0, x1, y0, y1]``; negative crops.
      flip_filter: False = convolution, True = correlation.
      gain: overall scaling of the signal magnitude.
      impl: 'ref', 'custom', 'cuda' or None (``custom_ops.loader`` decides).

    Returns:
      ``[N, (H*up_y + py0 + py1 - fh) // down_y + 1, (W*up_x + px0 + px1 - fw) // down_x + 1, C]``.
    """
    if f is None:
        f = np.ones([1, 1], dtype=np.float32)
    f = np.asarray(f, dtype=np.float32)
    if f.ndim not in (1, 2):
        raise ValueError(f"upfirdn2d filter must be 1-D (separable) or 2-D, got shape {f.shape}")
    up, down, padding = parse_scaling(up), parse_scaling(down), parse_padding(padding)
    in_h, in_w, _ = _check_nhwc(x)
    fw, fh = filter_size(f)
    out_h = in_h * up[1] + padding[2] + padding[3] - fh + 1
    out_w = in_w * up[0] + padding[0] + padding[1] - fw + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"upfirdn2d: input {in_h}x{in_w} with up={up}, padding={padding} and a {fh}x{fw} filter leaves no output"
        )
    if loader.use_custom(impl, x.dtype, "upfirdn2d") and _fits_kernel(x, f, up, down, padding):
        return _upfirdn2d_custom(x, f, up, down, padding, flip_filter, gain)
    return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def _kernel_args(x_shape, f_shape, up, down, padding, flip_filter, gain) -> kernel_args.Upfirdn2dArgs:
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    return kernel_args.Upfirdn2dArgs(int(x_shape[1]), int(x_shape[2]), int(f_shape[0]), int(f_shape[1]), upx, upy,
                                     downx, downy, px0, px1, py0, py1, bool(flip_filter), float(gain))


def _fits_kernel(x: tf.Tensor, f: np.ndarray, up, down, padding) -> bool:
    """Whether the kernels can index this call (int32); if not, one warning and the reference op."""
    f2d = f.shape if f.ndim == 2 else (f.shape[0], f.shape[0])
    problem = _kernel_args(x.shape, f2d, up, down, padding, False, 1.0).exceeds_kernel(x.shape[0], x.shape[3])
    if problem:
        loader.warn_once(f"upfirdn2d-size:{problem}", f"tf-stylegan2: upfirdn2d {problem}; using the reference op")
    return not problem


def _upfirdn2d_kernel(x: tf.Tensor, f: tf.Tensor, a: kernel_args.Upfirdn2dArgs) -> tf.Tensor:
    return loader.library().style_gan2_upfirdn2d(
        x, f, upx=a.upx, upy=a.upy, downx=a.downx, downy=a.downy, padx0=a.padx0, padx1=a.padx1,
        pady0=a.pady0, pady1=a.pady1, flip_filter=a.flip, gain=a.gain)


def _upfirdn2d_custom(
    x: tf.Tensor,
    f: np.ndarray,
    up: Tuple[int, int],
    down: Tuple[int, int],
    padding: Tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> tf.Tensor:
    """Compiled kernel (gradient registered below). A separable filter runs as two passes, one per
    axis with the square root of the gain each, as in NVIDIA's CUDA path."""
    if f.ndim == 2:
        a = _kernel_args(x.shape, f.shape, up, down, padding, flip_filter, gain)
        return _upfirdn2d_kernel(x, tf.constant(f), a)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    row, column = f[np.newaxis, :], f[:, np.newaxis]
    g = float(np.sqrt(gain))
    x = _upfirdn2d_kernel(x, tf.constant(row), _kernel_args(x.shape, row.shape, (upx, 1), (downx, 1),
                                                             (px0, px1, 0, 0), flip_filter, g))
    return _upfirdn2d_kernel(x, tf.constant(column), _kernel_args(x.shape, column.shape, (1, upy), (1, downy),
                                                                   (0, 0, py0, py1), flip_filter, g))


@tf.RegisterGradient("StyleGAN2Upfirdn2d")
def _upfirdn2d_grad(op, dy):
    """upfirdn2d is linear and its adjoint is again an upfirdn2d (``Upfirdn2dArgs.adjoint``), so
    gradients of any order reuse the kernel, on the device the op runs on."""
    x, f = op.inputs
    up = (op.get_attr("upx"), op.get_attr("upy"))
    down = (op.get_attr("downx"), op.get_attr("downy"))
    padding = tuple(op.get_attr(k) for k in ("padx0", "padx1", "pady0", "pady1"))
    a = _kernel_args(x.shape, f.shape, up, down, padding, op.get_attr("flip_filter"), op.get_attr("gain"))
    return _upfirdn2d_kernel(dy, f, a.adjoint()), None


def filter2d(
    x: tf.Tensor,
    f: Optional[np.ndarray],
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> tf.Tensor:
    """Filters ``x`` with ``f``; the output has the input's size plus ``padding`` (of the output)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: tf.Tensor,
    f: Optional[np.ndarray],
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> tf.Tensor:
    """Upsamples ``x`` by ``up`` with filter ``f``: ``[N, H, W, C] -> [N, H*up, W*up, C]`` (+ padding)."""
    upx, upy = parse_scaling(up)
    p = add_padding(parse_padding(padding), upsample_padding(f, up))
    # Zero insertion divides the mean by up_x * up_y; the gain restores it.
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(
    x: tf.Tensor,
    f: Optional[np.ndarray],
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> tf.Tensor:
    """Downsamples ``x`` by ``down`` with filter ``f``: ``[N, H, W, C] -> [N, H/down, W/down, C]``."""
    p = add_padding(parse_padding(padding), downsample_padding(f, down))
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)
