"""Numeric kernels for StyleGAN2 (NHWC): FIR resampling, fused bias + activation, resampling conv.

Nothing here knows about GANs. Every op has a reference implementation in standard TensorFlow ops
(any device, XLA, TFLite, gradients of any order); upfirdn2d and bias_act also have compiled CPU
and CUDA kernels behind the same signature, with the gradients R1 and path-length regularization
need (second order). ``custom_ops.loader`` chooses per call.
"""

import importlib.util

# The TensorFlow-free tools (custom_ops.build, custom_ops.cuda_selftest) run on GPU machines that
# have no TensorFlow; everything else needs it.
if importlib.util.find_spec("tensorflow") is not None:
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
