"""Numeric kernels for StyleGAN2 (NHWC): FIR resampling, fused bias + activation, resampling conv.

Nothing here knows about GANs. Every op has a reference implementation in standard TensorFlow ops,
which runs on any device, under XLA and in TFLite, and supports gradients of any order (R1 and
path-length regularization differentiate twice). Compiled kernels behind the same signatures take
over where ``custom_ops.loader`` finds and selects them.
"""

from custom_ops.bias_act import ACTIVATIONS, Activation, bias_act, get_activation
from custom_ops.conv2d_resample import conv2d_resample
from custom_ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "bias_act",
    "conv2d_resample",
    "downsample2d",
    "filter2d",
    "get_activation",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
