"""Independent numpy/scipy implementations that the TF code is checked against.

Written from the definitions (zero insertion, padding, scipy convolution, pixel dropping), not from
the TF code, so that a shared mistake is unlikely.
"""

from __future__ import annotations

import numpy as np
import scipy.signal


def upfirdn2d(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """x: [N, H, W, C]; f: [fh, fw] or separable [taps] (applied along both axes); float64 result."""
    x = np.asarray(x, np.float64)
    f = np.ones([1, 1]) if f is None else np.asarray(f, np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)  # a separable filter is applied along both axes
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = pad
    n, h, w, c = x.shape
    u = np.zeros([n, h * upy, w * upx, c])
    u[:, ::upy, ::upx, :] = x
    u = np.pad(u, [(0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0)), (0, 0)])
    u = u[:, max(-py0, 0) : u.shape[1] - max(-py1, 0), max(-px0, 0) : u.shape[2] - max(-px1, 0), :]
    op = scipy.signal.correlate2d if flip_filter else scipy.signal.convolve2d
    out = np.stack(
        [np.stack([op(u[i, :, :, j], f, mode="valid") for j in range(c)], axis=-1) for i in range(n)]
    )
    return out[:, ::downy, ::downx, :] * gain


def correlate_grouped(x, w, groups=1, stride=1):
    """Valid correlation. x: [N, H, W, Cin]; w: [kh, kw, Cin/groups, Cout]."""
    kh, kw, cin_g, cout = w.shape
    cout_g = cout // groups
    n = x.shape[0]
    outs = []
    for i in range(n):
        chans = []
        for o in range(cout):
            g = o // cout_g
            acc = sum(
                scipy.signal.correlate2d(x[i, :, :, g * cin_g + k], w[:, :, k, o], mode="valid")
                for k in range(cin_g)
            )
            chans.append(acc[::stride, ::stride])
        outs.append(np.stack(chans, axis=-1))
    return np.stack(outs)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=(0, 0, 0, 0), groups=1, flip_weight=True, flip_filter=False):
    """The definition: upsample (with filter) + pad, convolve, downsample (with filter)."""
    w = np.asarray(w, np.float64)
    if not flip_weight:
        w = w[::-1, ::-1]
    fh, fw = (1, 1) if f is None else np.asarray(f).shape
    px0, px1, py0, py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    x = upfirdn2d(x, f if up > 1 else None, up=(up, up), pad=(px0, px1, py0, py1), flip_filter=flip_filter, gain=up**2)
    x = correlate_grouped(x, w, groups)
    if down > 1:
        x = upfirdn2d(x, f, down=(down, down), flip_filter=flip_filter)
    return x


def resize_bilinear_tf1(x, size):
    """TF1's bilinear resize (align_corners=False, half_pixel_centers=False), from its definition:
    output pixel i samples input position p = i * (in / out) (no half-pixel offset), between the
    pixels floor(p) and floor(p) + 1, the latter clamped to the last pixel. TF computes p in float32
    (resize_bilinear_op.cc, image_resizer_state.h), which moves far pixels by up to ~1e-4 px, so p
    is float32 here too; the interpolation is float64. x: [N, H, W, C]."""
    x = np.asarray(x, np.float64)

    def taps(n_in, n_out):
        pos = (np.arange(n_out, dtype=np.float32) * np.float32(n_in / n_out)).astype(np.float64)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo

    y0, y1, fy = taps(x.shape[1], size[0])
    x0, x1, fx = taps(x.shape[2], size[1])
    rows = x[:, y0] + (x[:, y1] - x[:, y0]) * fy[None, :, None, None]
    return rows[:, :, x0] + (rows[:, :, x1] - rows[:, :, x0]) * fx[None, None, :, None]


ACTIVATIONS = {
    # name: (f, f', default alpha, default gain)
    "linear": (lambda x, a: x, lambda x, a: np.ones_like(x), 0.0, 1.0),
    "relu": (lambda x, a: np.maximum(x, 0), lambda x, a: (x > 0).astype(x.dtype), 0.0, np.sqrt(2)),
    "lrelu": (lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a), 0.2, np.sqrt(2)),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1 - np.tanh(x) ** 2, 0.0, 1.0),
    "sigmoid": (lambda x, a: 1 / (1 + np.exp(-x)), lambda x, a: np.exp(-x) / (1 + np.exp(-x)) ** 2, 0.0, 1.0),
    "elu": (lambda x, a: np.where(x > 0, x, np.expm1(x)), lambda x, a: np.where(x > 0, 1.0, np.exp(x)), 0.0, 1.0),
    "selu": (
        lambda x, a: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
        lambda x, a: 1.0507009873554805 * np.where(x > 0, 1.0, 1.6732632423543772 * np.exp(x)),
        0.0,
        1.0,
    ),
    "softplus": (lambda x, a: np.log1p(np.exp(x)), lambda x, a: 1 / (1 + np.exp(-x)), 0.0, 1.0),
    "swish": (
        lambda x, a: x / (1 + np.exp(-x)),
        lambda x, a: (1 / (1 + np.exp(-x))) * (1 + x * (1 - 1 / (1 + np.exp(-x)))),
        0.0,
        np.sqrt(2),
    ),
}
