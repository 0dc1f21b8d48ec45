"""Independent numpy (NCHW, float64) forward passes of NVIDIA's StyleGAN2 networks.

The "official definition" the importer tests compare against, written from the paper and the
semantics of NVIDIA's implementations, without our TF code or layer mapping:

* ``tf1_*`` read TF1 variables by scope name with TF1's layouts (``[kh, kw, in, out]`` /
  ``[in, out]``) and run-time rules (equalized-lr gains applied to the weights, ``mod_bias + 1``,
  noise from ``synthesis/noise<i>``, NCHW flattening before ``Dense0``);
* ``ada_tf_*`` read stylegan2-ada's TF variables the same way, with its options: the label
  embedding (``LabelEmbed``) of G and D, D's label mapping (``Mapping<i>``) and projection,
  clamping after the activation's gain (every FromRGB included), ``fmap_const``, ``use_noise``,
  minibatch std over the whole batch, and the float16 layers' pre-normalisation of weights and
  styles before demodulation (``modulated_conv2d_layer``); ``tf1_*`` are these with StyleGAN2's
  options;
* ``ada_*`` read a stylegan2-ada-pytorch ``state_dict`` (``[out, in, kh, kw]`` / ``[out, in]``)
  and its constructor kwargs (conv clamping, conditional embedding and projection).

Resampling: with the 4-tap filter f, 2x up-sampling zero-stuffs, pads (2, 1) and convolves with
4 f f^T; 2x down-sampling pads (1, 1), convolves with f f^T and keeps even pixels. A k x k
up-sampling convolution is the up-sampling with (2 + k//2, 1 + k//2) padding followed by a valid
convolution: TF1 correlates with its kernel there (``upsample_conv_2d`` = upsample then
``tf.nn.conv2d``); ada's transposed convolution convolves, i.e. correlates with the flipped
kernel. A down-sampling convolution filters with ((p+1)//2, p//2) padding, p = 2 + k - 1, then
correlates with stride 2 (both implementations).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SQRT2 = np.sqrt(2.0)


def act(x: np.ndarray, name: str, gain: float = 1.0, clamp: Optional[float] = None) -> np.ndarray:
    """Activation with its default gain (sqrt 2 for (l)relu), extra gain, then clamping."""
    if name == "linear":
        y = x
    elif name == "lrelu":
        y = np.where(x >= 0, x, 0.2 * x) * SQRT2
    elif name == "relu":
        y = np.maximum(x, 0) * SQRT2
    else:
        raise ValueError(name)
    y = y * gain
    return y if clamp is None else np.clip(y, -clamp, clamp)


def fir(taps) -> np.ndarray:
    f = np.outer(taps, taps).astype(np.float64)
    return f / f.sum()


def correlate(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """Valid cross-correlation. x [N, I, H, W]; w [O, I, kh, kw] shared or [N, O, I, kh, kw] per sample."""
    kh, kw = w.shape[-2:]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    if w.ndim == 4:
        return np.einsum("nihwyx,oiyx->nohw", win, w)
    return np.einsum("nihwyx,noiyx->nohw", win, w)


def pad(x: np.ndarray, before: int, after: int) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0), (before, after), (before, after)])


def upfirdn(x: np.ndarray, f: np.ndarray, up: int = 1, down: int = 1, pads=(0, 0), gain: float = 1.0) -> np.ndarray:
    """Zero-stuff by ``up``, pad, convolve (not correlate) every channel with f, keep every ``down``-th pixel."""
    n, c, h, w = x.shape
    u = np.zeros([n, c, h * up, w * up])
    u[:, :, ::up, ::up] = x
    u = pad(u, *pads).reshape(n * c, 1, h * up + sum(pads), w * up + sum(pads))
    y = correlate(u, (f[::-1, ::-1] * gain)[np.newaxis, np.newaxis])
    return y.reshape(n, c, y.shape[2], y.shape[3])[:, :, ::down, ::down]


def upsample(x, f):
    return upfirdn(x, f, up=2, pads=(2, 1), gain=4)


def downsample(x, f):
    return upfirdn(x, f, down=2, pads=(1, 1))


def conv_up(x, w_corr, f):
    k = w_corr.shape[-1]
    return correlate(upfirdn(x, f, up=2, pads=(2 + k // 2, 1 + k // 2), gain=4), w_corr)


def conv_down(x, w_corr, f):
    p = 2 + w_corr.shape[-1] - 1
    return correlate(upfirdn(x, f, pads=((p + 1) // 2, p // 2)), w_corr, stride=2)


def conv_same(x, w_corr):
    k = w_corr.shape[-1]
    return correlate(pad(x, k // 2, k // 2), w_corr)


def normalize(x):
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)


def minibatch_std(x: np.ndarray, group_size: Optional[int], num_channels: int) -> np.ndarray:
    """Appends, per group of samples i, i + N/G, ..., the std over the group averaged over pixels and channels."""
    n, c, h, w = x.shape
    g = n if group_size is None else min(group_size, n)
    y = x.reshape(g, n // g, num_channels, c // num_channels, h, w)
    y = np.sqrt(np.mean((y - y.mean(axis=0)) ** 2, axis=0) + 1e-8).mean(axis=(2, 3, 4))  # [n/g, F]
    y = np.tile(y[:, :, np.newaxis, np.newaxis], (g, 1, h, w))
    return np.concatenate([x, y], axis=1)


def truncate(ws, w_avg, psi, cutoff):
    layers = np.arange(ws.shape[1])[np.newaxis, :, np.newaxis]
    mixed = w_avg + psi * (ws - w_avg)
    return mixed if cutoff is None else np.where(layers < cutoff, mixed, ws)


def modulated(x, weight_oihw, styles, demodulate, up_f=None, flip=False):
    """Scales the weight's input channels by ``styles [N, I]``, demodulates, convolves per sample."""
    w = weight_oihw[np.newaxis] * styles[:, np.newaxis, :, np.newaxis, np.newaxis]
    if demodulate:
        w = w / np.sqrt(np.sum(w**2, axis=(2, 3, 4), keepdims=True) + 1e-8)
    if up_f is None:
        return conv_same(x, w)
    return conv_up(x, w[..., ::-1, ::-1] if flip else w, up_f)


# --- TF: StyleGAN2 (training/networks_stylegan2.py) and stylegan2-ada (training/networks.py) ----------
#
# stylegan2-ada's TF networks are StyleGAN2's with more options, so one definition serves both:
# StyleGAN2's is stylegan2-ada's with those options at their neutral values, StyleGAN2's defaults,
# and its own minibatch-std rule (the layer exists when the group size is > 1).

ADA_TF_G = dict(architecture="skip", resample_kernel=[1, 3, 3, 1], nonlinearity="lrelu", mapping_layers=8,
                mapping_lrmul=0.01, mapping_nonlinearity="lrelu", label_size=0, use_noise=True, conv_clamp=None,
                num_fp16_res=0)
ADA_TF_D = dict(architecture="resnet", resample_kernel=[1, 3, 3, 1], nonlinearity="lrelu", label_size=0,
                mapping_layers=0, mapping_lrmul=0.1, mbstd_group_size=None, mbstd_num_features=1, conv_clamp=None)


def _tf1_oihw(w_hwio):
    """TF1 applies the equalized-lr gain 1/sqrt(fan_in) to the weight at run time."""
    kh, kw, i, _ = w_hwio.shape
    return np.asarray(w_hwio, np.float64).transpose(3, 2, 0, 1) / np.sqrt(kh * kw * i)


def _tf1_dense(v, scope, x, lrmul=1.0, act_name="linear"):
    w, b = (np.asarray(v[f"{scope}/{n}"], np.float64) for n in ("weight", "bias"))
    return act(x @ w * (lrmul / np.sqrt(w.shape[0])) + b * lrmul, act_name)


def tf1_generator(v: Dict[str, np.ndarray], kw: Dict[str, Any], z, psi=1.0, cutoff=None) -> np.ndarray:
    """StyleGAN2's G_main with G_mapping + G_synthesis_stylegan2, randomize_noise=False, unconditional."""
    return ada_tf_generator(v, {**kw, "label_size": 0}, z, None, psi, cutoff)


def tf1_discriminator(v: Dict[str, np.ndarray], kw: Dict[str, Any], img) -> np.ndarray:
    """StyleGAN2's D_stylegan2, unconditional. img NCHW."""
    group = kw.get("mbstd_group_size", 4)
    return ada_tf_discriminator(v, {**kw, "label_size": 0, "mbstd_group_size": group,
                                    "mbstd_num_features": kw.get("mbstd_num_features", 1) if group > 1 else 0}, img)


def ada_tf_generator(v: Dict[str, np.ndarray], kw: Dict[str, Any], z, c=None, psi=1.0, cutoff=None) -> np.ndarray:
    """stylegan2-ada's TF G_main with G_mapping + G_synthesis, randomize_noise=False.
    v: 'dlatent_avg', 'mapping/..', 'synthesis/..'; c: labels [N, label_size] when conditional."""
    kw = {**ADA_TF_G, **kw}
    log2 = int(np.log2(kw["resolution"]))
    arch, f, a, clamp = kw["architecture"], fir(kw["resample_kernel"]), kw["nonlinearity"], kw["conv_clamp"]
    x = normalize(np.asarray(z, np.float64))
    if kw["label_size"]:  # LabelEmbed: biased, linear, normalised, after z
        x = np.concatenate([x, normalize(_tf1_dense(v, "mapping/LabelEmbed", np.asarray(c, np.float64)))], axis=1)
    for i in range(kw["mapping_layers"]):
        x = _tf1_dense(v, f"mapping/Dense{i}", x, kw["mapping_lrmul"], kw["mapping_nonlinearity"])
    ws = truncate(np.repeat(x[:, np.newaxis], 2 * log2 - 2, axis=1), v["dlatent_avg"], psi, cutoff)

    def style_conv(x, idx, scope, up=False, demodulate=True, fp16=False):
        mw, mb = v[f"synthesis/{scope}/mod_weight"], v[f"synthesis/{scope}/mod_bias"]
        s = ws[:, idx] @ mw / np.sqrt(mw.shape[0]) + mb + 1
        w = _tf1_oihw(v[f"synthesis/{scope}/weight"])
        if fp16 and demodulate:  # the float16 guard: weight and styles pre-normalised before demodulation
            w = w / np.sqrt(np.prod(w.shape[1:])) / np.max(np.abs(w), axis=(1, 2, 3), keepdims=True)
            s = s / np.max(np.abs(s))
        return modulated(x, w, s, demodulate, f if up else None)

    def layer(x, idx, scope, up=False, fp16=False):
        x = style_conv(x, idx, scope, up, fp16=fp16)
        if kw["use_noise"]:
            x = x + v[f"synthesis/noise{idx}"] * v[f"synthesis/{scope}/noise_strength"]
        return act(x + v[f"synthesis/{scope}/bias"][:, None, None], a, clamp=clamp)

    def torgb(x, k, scope):
        y = style_conv(x, 2 * k - 3, scope, demodulate=False) + v[f"synthesis/{scope}/bias"][:, None, None]
        return act(y, "linear", clamp=clamp)

    x = np.tile(v["synthesis/4x4/Const/const"], (len(z), 1, 1, 1))
    x = layer(x, 0, "4x4/Conv")  # 4x4 is never float16
    y = torgb(x, 2, "4x4/ToRGB") if arch == "skip" else None
    for k in range(3, log2 + 1):
        r, fp16 = f"{2**k}x{2**k}", k > log2 - kw["num_fp16_res"]
        t = x
        x = layer(x, 2 * k - 5, f"{r}/Conv0_up", up=True, fp16=fp16)
        x = layer(x, 2 * k - 4, f"{r}/Conv1", fp16=fp16)
        if arch == "resnet":
            x = (x + conv_up(t, _tf1_oihw(v[f"synthesis/{r}/Skip/weight"]), f)) / SQRT2
        if arch == "skip":
            y = upsample(y, f) + torgb(x, k, f"{r}/ToRGB")
        elif k == log2:
            y = torgb(x, k, f"{r}/ToRGB")
    return y


def ada_tf_discriminator(v: Dict[str, np.ndarray], kw: Dict[str, Any], img, c=None) -> np.ndarray:
    """stylegan2-ada's TF D_main without its comparison methods. img NCHW; c: labels when conditional."""
    kw = {**ADA_TF_D, **kw}
    log2 = int(np.log2(kw["resolution"]))
    arch, f, a, clamp = kw["architecture"], fir(kw["resample_kernel"]), kw["nonlinearity"], kw["conv_clamp"]

    def conv(x, scope, op=None, bias=True):
        w = _tf1_oihw(v[f"{scope}/weight"])
        y = conv_same(x, w) if op is None else op(x, w, f)
        return act(y + v[f"{scope}/bias"][:, None, None], a, clamp=clamp) if bias else y

    cmap = None
    if kw["label_size"]:  # LabelEmbed (biased, linear), normalised, then the mapping layers
        cmap = normalize(_tf1_dense(v, "LabelEmbed", np.asarray(c, np.float64)))
        for i in range(kw["mapping_layers"]):
            cmap = _tf1_dense(v, f"Mapping{i}", cmap, kw["mapping_lrmul"], a)
    x, y = None, np.asarray(img, np.float64)
    for k in range(log2, 2, -1):
        r = f"{2**k}x{2**k}"
        if arch == "skip" or k == log2:
            t = conv(y, f"{r}/FromRGB")
            x = t if x is None else x + t
        t = x
        x = conv(conv(x, f"{r}/Conv0"), f"{r}/Conv1_down", conv_down)
        if arch == "resnet":
            x = (x + conv(t, f"{r}/Skip", conv_down, bias=False)) / SQRT2
        if arch == "skip":
            y = downsample(y, f)
    if arch == "skip":
        x = x + conv(y, "4x4/FromRGB")  # clamped like every FromRGB here
    if kw["mbstd_num_features"] > 0:
        x = minibatch_std(x, kw["mbstd_group_size"], kw["mbstd_num_features"])
    x = conv(x, "4x4/Conv")
    x = _tf1_dense(v, "4x4/Dense0", x.reshape(len(x), -1), act_name=a)  # NCHW flattening
    x = _tf1_dense(v, "Output", x)
    if cmap is not None:  # projection onto the mapped label, over sqrt(mapping_fmaps)
        x = np.sum(x * cmap, axis=1, keepdims=True) / np.sqrt(cmap.shape[1])
    return x


# --- stylegan2-ada-pytorch (training/networks.py) -------------------------------------------------


def _fc(s, name, x, lr=1.0, act_name="linear"):
    w = np.asarray(s[f"{name}.weight"], np.float64)
    y = x @ w.T * (lr / np.sqrt(w.shape[1]))
    if f"{name}.bias" in s:
        y = y + s[f"{name}.bias"] * lr
    return act(y, act_name)


def _ada_mapping(s, prefix, z, c, m: Dict[str, Any]) -> np.ndarray:
    parts = [] if z is None else [normalize(np.asarray(z, np.float64))]
    if c is not None:
        parts.append(normalize(_fc(s, f"{prefix}.embed", np.asarray(c, np.float64))))
    x = np.concatenate(parts, axis=1)
    for i in range(m.get("num_layers", 8)):
        x = _fc(s, f"{prefix}.fc{i}", x, m.get("lr_multiplier", 0.01), m.get("activation", "lrelu"))
    return x


def _conv_weight(s, name):
    w = np.asarray(s[name], np.float64)
    return w / np.sqrt(np.prod(w.shape[1:]))


def ada_generator(s: Dict[str, np.ndarray], kw: Dict[str, Any], z, c=None, psi=1.0, cutoff=None) -> np.ndarray:
    """Generator(**kw) with noise_mode='const'. s: its state_dict as numpy."""
    syn = kw.get("synthesis_kwargs", {})
    log2 = int(np.log2(kw["img_resolution"]))
    arch, f = syn.get("architecture", "skip"), fir(syn.get("resample_filter", [1, 3, 3, 1]))
    clamp, a = syn.get("conv_clamp"), syn.get("activation", "lrelu")
    x = _ada_mapping(s, "mapping", z, c if kw["c_dim"] else None, kw.get("mapping_kwargs", {}))
    ws = np.repeat(x[:, np.newaxis], 2 * log2 - 2, axis=1)  # one w per conv layer + the last ToRGB
    if psi != 1:
        ws = truncate(ws, s["mapping.w_avg"], psi, cutoff)

    def layer(x, w, p, up=False, gain=1.0):
        styles = _fc(s, f"{p}.affine", w)
        x = modulated(x, s[f"{p}.weight"], styles, True, f if up else None, flip=True)
        x = x + s[f"{p}.noise_const"] * s[f"{p}.noise_strength"]
        return act(x + s[f"{p}.bias"][:, None, None], a, gain, None if clamp is None else clamp * gain)

    def torgb(x, w, p):
        w_ = np.asarray(s[f"{p}.weight"], np.float64)
        styles = _fc(s, f"{p}.affine", w) / np.sqrt(np.prod(w_.shape[1:]))
        return act(modulated(x, w_, styles, False) + s[f"{p}.bias"][:, None, None], "linear", clamp=clamp)

    img = None
    for k in range(2, log2 + 1):
        p, i = f"synthesis.b{2**k}", max(2 * k - 5, 0)
        if k == 2:
            x = layer(np.tile(s[f"{p}.const"], (len(z), 1, 1, 1)), ws[:, 0], f"{p}.conv1")
        elif arch == "resnet":
            y = conv_up(x, _conv_weight(s, f"{p}.skip.weight")[..., ::-1, ::-1], f) * np.sqrt(0.5)
            x = layer(x, ws[:, i], f"{p}.conv0", up=True)
            x = y + layer(x, ws[:, i + 1], f"{p}.conv1", gain=np.sqrt(0.5))
        else:
            x = layer(layer(x, ws[:, i], f"{p}.conv0", up=True), ws[:, i + 1], f"{p}.conv1")
        if img is not None:
            img = upsample(img, f)
        if arch == "skip" or k == log2:
            y = torgb(x, ws[:, 2 * k - 3], f"{p}.torgb")
            img = y if img is None else img + y
    return img


def ada_discriminator(s: Dict[str, np.ndarray], kw: Dict[str, Any], img, c=None) -> np.ndarray:
    """Discriminator(**kw). img NCHW."""
    log2 = int(np.log2(kw["img_resolution"]))
    arch = kw.get("architecture", "resnet")
    b, e = kw.get("block_kwargs", {}), kw.get("epilogue_kwargs", {})
    f, a, clamp = fir(b.get("resample_filter", [1, 3, 3, 1])), b.get("activation", "lrelu"), kw.get("conv_clamp")

    def conv(x, name, op=None, gain=1.0, clamp_=clamp, activation=a):
        w = _conv_weight(s, f"{name}.weight")
        y = conv_same(x, w) if op is None else op(x, w, f)
        if f"{name}.bias" in s:
            y = y + s[f"{name}.bias"][:, None, None]
        return act(y, activation, gain, None if clamp_ is None else clamp_ * gain)

    x, img = None, np.asarray(img, np.float64)
    for k in range(log2, 2, -1):
        p = f"b{2**k}"
        if k == log2 or arch == "skip":
            t = conv(img, f"{p}.fromrgb")
            x = t if x is None else x + t
            img = downsample(img, f) if arch == "skip" else None
        if arch == "resnet":
            y = conv(x, f"{p}.skip", conv_down, np.sqrt(0.5), None, "linear")
            x = y + conv(conv(x, f"{p}.conv0"), f"{p}.conv1", conv_down, np.sqrt(0.5))
        else:
            x = conv(conv(x, f"{p}.conv0"), f"{p}.conv1", conv_down)
    if arch == "skip":
        x = x + conv(img, "b4.fromrgb", clamp_=None)
    if e.get("mbstd_num_channels", 1) > 0:
        x = minibatch_std(x, e.get("mbstd_group_size", 4), e.get("mbstd_num_channels", 1))
    x = conv(x, "b4.conv")
    x = _fc(s, "b4.out", _fc(s, "b4.fc", x.reshape(len(x), -1), act_name=a))
    if kw["c_dim"]:
        cmap = _ada_mapping(s, "mapping", None, c, kw.get("mapping_kwargs", {}))
        x = np.sum(x * cmap, axis=1, keepdims=True) / np.sqrt(cmap.shape[1])
    return x
