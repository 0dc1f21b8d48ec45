"""The integer side of the compiled kernels, without TensorFlow: argument records of the C API
(custom_ops/kernels/cuda/*.h, mirrored with ctypes), activation numbers, element types, and
upfirdn2d's adjoint rule.

The TF gradients (upfirdn2d.py, bias_act.py) and the CUDA self-test (cuda_selftest.py, which runs
where TensorFlow is not installed) both use this module, so they exercise the same rules.
"""

from __future__ import annotations

import ctypes
import dataclasses
from typing import Dict, Optional

import numpy as np

# Element types of the C API (SG2_FLOAT32 ... in common.h), by numpy name ('bfloat16' has none).
DTYPES: Dict[str, int] = {"float32": 0, "float16": 1, "bfloat16": 2, "float64": 3}

# Status codes of the C API (common.h); positive values are cudaError_t.
STATUS = {0: "no error", -1: "invalid argument", -2: "unsupported element type", -3: "tensor too large"}

# Activation numbers of the C API (SG2_ACT_* in bias_act.h), NVIDIA's numbering.
ACT_CODES: Dict[str, int] = {
    "linear": 1, "relu": 2, "lrelu": 3, "tanh": 4, "sigmoid": 5, "elu": 6, "selu": 7, "softplus": 8, "swish": 9,
}

# Activations whose first derivative depends on the input, so that a gradient of the gradient
# needs the kernel's second-order mode. The others are piecewise linear: their gradient is linear
# in dy with a piecewise-constant factor, and differentiates to itself.
SECOND_ORDER = frozenset({"tanh", "sigmoid", "elu", "selu", "softplus", "swish"})

# Activations whose derivative the kernel computes from the forward input (the rest read it from
# the forward output).
READS_INPUT = frozenset({"swish"})


class Upfirdn2dStruct(ctypes.Structure):
    """sg2_upfirdn2d_args."""

    _fields_ = [(name, ctypes.c_int32) for name in (
        "n", "in_h", "in_w", "c", "fh", "fw", "upx", "upy", "downx", "downy", "padx0", "padx1", "pady0", "pady1",
        "flip")] + [("gain", ctypes.c_float)]


class BiasActStruct(ctypes.Structure):
    """sg2_bias_act_args."""

    _fields_ = [(name, ctypes.c_int32) for name in ("size", "size_b", "step_b", "act", "grad")] + [
        (name, ctypes.c_float) for name in ("alpha", "gain", "clamp")]


def out_size(in_size: int, up: int, pad0: int, pad1: int, taps: int, down: int) -> int:
    """Output extent of upfirdn2d along one axis (< 1: nothing remains)."""
    return (in_size * up + pad0 + pad1 - taps) // down + 1


@dataclasses.dataclass(frozen=True)
class Upfirdn2dArgs:
    """One upfirdn2d call on ``[N, in_h, in_w, C]`` with a ``[fh, fw]`` filter."""

    in_h: int
    in_w: int
    fh: int
    fw: int
    upx: int = 1
    upy: int = 1
    downx: int = 1
    downy: int = 1
    padx0: int = 0
    padx1: int = 0
    pady0: int = 0
    pady1: int = 0
    flip: bool = False
    gain: float = 1.0

    @property
    def out_h(self) -> int:
        return out_size(self.in_h, self.upy, self.pady0, self.pady1, self.fh, self.downy)

    @property
    def out_w(self) -> int:
        return out_size(self.in_w, self.upx, self.padx0, self.padx1, self.fw, self.downx)

    def adjoint(self) -> "Upfirdn2dArgs":
        """The upfirdn2d that computes the gradient with respect to the input (NVIDIA's rule,
        stylegan2-ada-pytorch upfirdn2d.py): up and down swapped, the filter flipped, and padding
        that maps every output footprint back onto the input pixels it came from. Applied twice it
        gives back the original call, so derivatives of any order reuse the kernel."""
        return Upfirdn2dArgs(
            in_h=self.out_h, in_w=self.out_w, fh=self.fh, fw=self.fw,
            upx=self.downx, upy=self.downy, downx=self.upx, downy=self.upy,
            padx0=self.fw - self.padx0 - 1,
            padx1=self.in_w * self.upx - self.out_w * self.downx + self.padx0 - self.upx + 1,
            pady0=self.fh - self.pady0 - 1,
            pady1=self.in_h * self.upy - self.out_h * self.downy + self.pady0 - self.upy + 1,
            flip=not self.flip, gain=self.gain,
        )

    def exceeds_kernel(self, n: Optional[int], c: int) -> Optional[str]:
        """Why the kernels cannot index this call with int32, or None (upfirdn2d_check in
        upfirdn2d.h decides the same); ``n`` None: a batch not known yet, counted as 1."""
        limit, n = 2**31 - 1, n or 1
        if n * self.in_h * self.in_w * c > limit or n * self.out_h * self.out_w * c > limit:
            return "has tensors of 2^31 elements or more, over the kernels' int32 indexing"
        span_y = (self.out_h - 1) * self.downy + self.fh + self.in_h * self.upy + abs(self.pady0)
        span_x = (self.out_w - 1) * self.downx + self.fw + self.in_w * self.upx + abs(self.padx0)
        if self.fh * self.fw > limit or span_y > limit or span_x > limit:
            return "has a filter or padding too large for the kernels' int32 indexing"
        return None

    def struct(self, n: int, c: int) -> Upfirdn2dStruct:
        fields = dataclasses.asdict(self)
        return Upfirdn2dStruct(n=n, c=c, **{k: (int(v) if k != "gain" else float(v)) for k, v in fields.items()})


def bias_act_struct(shape, axis: int, size_b: int, act: str, grad: int, alpha: float, gain: float,
                    clamp: float) -> BiasActStruct:
    """sg2_bias_act_args for a tensor of ``shape`` with a bias of ``size_b`` along ``axis``."""
    size = int(np.prod(shape, dtype=np.int64))
    if size >= 2**31:
        raise ValueError(f"bias_act kernels index with int32: {size} elements is too many")
    step_b = int(np.prod(shape[axis + 1:], dtype=np.int64)) if size_b else 1
    return BiasActStruct(size=size, size_b=size_b, step_b=max(step_b, 1),
                         act=ACT_CODES[act], grad=grad, alpha=alpha, gain=gain, clamp=clamp)
