"""Common base of the StyleGAN2 layers: explicit mixed-precision casting and shape checks."""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import tensorflow as tf


# Gain of each branch of a resnet block, so that the sum keeps unit variance. A Python float on
# purpose: Keras turns numpy scalars passed to a layer call into tensors.
SQRT_HALF = 0.5**0.5


class StyleGANLayer(keras.layers.Layer):
    """A Keras layer that casts explicitly instead of relying on Keras autocasting.

    Keras would cast every floating input to the compute dtype, styles and latents included;
    StyleGAN2 keeps those in float32 and lowers only the activations, as NVIDIA's code does.
    So these layers turn autocasting off and call :meth:`to_compute` where they mean it. The
    layer's dtype policy still decides the compute dtype: ``mixed_bfloat16`` computes in bfloat16
    with float32 variables, and so on.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)

    def to_compute(self, x: tf.Tensor) -> tf.Tensor:
        """Casts a tensor or variable to this layer's compute dtype."""
        x = tf.convert_to_tensor(x)
        return x if x.dtype == self.compute_dtype else tf.cast(x, self.compute_dtype)

    def check_shape(self, x: Optional[tf.Tensor], expected: Sequence[Optional[int]], what: str) -> None:
        """Raises a one-line ValueError when the static shape of ``x`` contradicts ``expected``."""
        if x is None:
            raise ValueError(f"{self.name}: {what} is required, expected shape {_fmt(expected)}")
        shape = x.shape
        ok = shape.rank == len(expected) and all(
            e is None or s is None or s == e for s, e in zip(shape.as_list(), expected)
        )
        if not ok:
            raise ValueError(f"{self.name}: {what} must have shape {_fmt(expected)}, got {_fmt(shape.as_list())}")


def _fmt(shape) -> str:
    return "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
