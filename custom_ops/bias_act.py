"""bias_act: add a bias, apply an activation, scale by a gain and clamp, in one call.

Every layer of StyleGAN2 ends with this sequence. The default gains keep the signal's second
moment roughly constant through the activation (sqrt(2) for the ReLU family), which equalized
learning rate relies on.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from custom_ops import kernel_args, loader


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation function with its default shape parameter and gain."""

    func: Callable[[tf.Tensor, float], tf.Tensor]
    def_alpha: float
    def_gain: float


def _leaky_relu(x: tf.Tensor, alpha: float) -> tf.Tensor:
    """tf.nn.leaky_relu whose gradient reads the slope from the sign of the output (alpha >= 0), as
    NVIDIA's bias_act kernel does. TF's own gradient reads the pre-activation instead, which
    stops grappler's remapper (an E-level 'remapper failed' line) when it fuses the bias add into the
    activation; a stopped output also keeps the double backward of R1 from differentiating a mask."""

    @tf.custom_gradient
    def forward(x):
        y = tf.nn.leaky_relu(x, alpha)
        return y, lambda dy: tf.raw_ops.LeakyReluGrad(gradients=dy, features=tf.stop_gradient(y), alpha=alpha)

    return forward(x) if alpha >= 0 else tf.nn.leaky_relu(x, alpha)


ACTIVATIONS: Dict[str, Activation] = {
    "linear": Activation(lambda x, alpha: x, 0.0, 1.0),
    "relu": Activation(lambda x, alpha: tf.nn.relu(x), 0.0, float(np.sqrt(2))),
    "lrelu": Activation(_leaky_relu, 0.2, float(np.sqrt(2))),
    "tanh": Activation(lambda x, alpha: tf.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, alpha: tf.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, alpha: tf.nn.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, alpha: tf.nn.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, alpha: tf.nn.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, alpha: tf.sigmoid(x) * x, 0.0, float(np.sqrt(2))),
}


def get_activation(name: str) -> Activation:
    """Looks up an activation by name, with an error that lists the valid names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def bias_act(
    x: tf.Tensor,
    b: Optional[tf.Tensor] = None,
    axis: int = -1,
    act: str = "linear",
    alpha: Optional[float] = None,
    gain: Optional[float] = None,
    clamp: Optional[float] = None,
    impl: Optional[str] = None,
) -> tf.Tensor:
    """Adds bias ``b``, evaluates ``act``, multiplies by ``gain`` and clamps to ``[-clamp, clamp]``.

    Args:
      x: activations of any shape.
      b: 1-D bias broadcast along ``axis`` of ``x`` (the channel axis; -1 for NHWC), or None.
      axis: the axis of ``x`` that ``b`` runs along.
      act: one of :data:`ACTIVATIONS`.
      alpha: shape parameter (the leaky slope of 'lrelu'); None = the activation's default.
      gain: output scale; None = the activation's default gain.
      clamp: clamp the output to ``[-clamp, clamp]``; None = no clamping.
      impl: 'ref', 'custom', 'cuda' or None (``custom_ops.loader`` decides).

    Returns:
      A tensor with the shape and dtype of ``x``.
    """
    x = tf.convert_to_tensor(x)
    spec = get_activation(act)
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if clamp is not None and clamp < 0:
        raise ValueError(f"clamp must be non-negative or None, got {clamp}")

    rank = x.shape.rank
    if b is not None:
        b = tf.cast(b, x.dtype)
        if b.shape.rank != 1 or b.shape[0] != x.shape[axis]:
            raise ValueError(f"bias of shape {b.shape} does not match axis {axis} of x with shape {x.shape}")
    # The kernels read lrelu's derivative from the sign of the output, which needs alpha >= 0.
    if (act != "lrelu" or alpha >= 0) and loader.use_custom(impl, x.dtype, "bias_act"):
        return _bias_act_custom(x, b, axis % rank, act, alpha, gain, clamp)
    return _bias_act_ref(x, b, axis % rank, spec, alpha, gain, clamp)


def _bias_act_ref(x, b, axis, spec, alpha, gain, clamp):
    """Reference implementation from standard TF ops."""
    if b is not None:
        x = x + tf.reshape(b, [-1 if i == axis else 1 for i in range(x.shape.rank)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * tf.cast(gain, x.dtype)
    if clamp is not None:
        x = tf.clip_by_value(x, tf.cast(-clamp, x.dtype), tf.cast(clamp, x.dtype))
    return x


def _bias_act_custom(x, b, axis, act, alpha, gain, clamp):
    """Compiled kernel (gradients registered below)."""
    b = b if b is not None else tf.zeros([0], x.dtype)
    clamp = -1.0 if clamp is None else float(clamp)
    return loader.library().style_gan2_bias_act(x, b, act=act, alpha=alpha, gain=gain, clamp=clamp, axis=axis)


def _attrs(op) -> dict:
    attrs = {k: op.get_attr(k) for k in ("act", "alpha", "gain", "clamp", "axis")}
    attrs["act"] = tf.compat.as_str(attrs["act"])
    return attrs


def _bias_gradient(d, b, axis: int):
    """The bias gradient: ``d`` summed over every axis but the bias axis (empty bias: empty)."""
    if not b.shape[0]:
        return tf.zeros_like(b)
    return tf.reduce_sum(d, axis=[i for i in range(d.shape.rank) if i != axis])


@tf.RegisterGradient("StyleGAN2BiasAct")
def _bias_act_grad(op, dy):
    x, b = op.inputs
    attrs = _attrs(op)
    # The gradient op gets x and b where it reads them (swish) or must pass a second-order gradient
    # back to them; the piecewise-linear activations need only the output.
    if attrs["act"] not in kernel_args.SECOND_ORDER:
        x = b = tf.zeros([0], x.dtype)
    dx = loader.library().style_gan2_bias_act_grad(dy, x, b, op.outputs[0], **attrs)
    return dx, _bias_gradient(dx, op.inputs[1], attrs["axis"])


@tf.RegisterGradient("StyleGAN2BiasActGrad")
def _bias_act_grad_grad(op, ddx):
    """dx = dy * D(x + b) with D = act' * gain * clamp mask: linear in dy; in x + b through act''
    (mode 2 of the kernel). The output y is an input only to read D from: no gradient flows to it."""
    dy, x, b, y = op.inputs
    attrs = _attrs(op)
    lib = loader.library()
    d_dy = lib.style_gan2_bias_act_grad(ddx, x, b, y, **attrs)
    if attrs["act"] not in kernel_args.SECOND_ORDER:
        return d_dy, None, None, None
    d_x = lib.style_gan2_bias_act_grad_grad(ddx, dy, x, b, y, **attrs)
    return d_dy, d_x, _bias_gradient(d_x, b, attrs["axis"]), None


@tf.RegisterGradient("StyleGAN2BiasActGradGrad")
def _bias_act_third_order(op, _):
    raise NotImplementedError(
        f"bias_act '{tf.compat.as_str(op.get_attr('act'))}': the compiled kernels stop at second-order gradients "
        "(as NVIDIA's do); use impl='ref' (or TF_STYLEGAN2_OPS=ref) for higher orders")
