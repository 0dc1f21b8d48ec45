"""ToRGB: a 1x1 modulated convolution without demodulation, from features to image channels."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from custom_ops import bias_act
from layers.base import StyleGANLayer
from layers.modulated_conv import ModulatedConv2D


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class ToRGB(StyleGANLayer):
    """Projects features to ``img_channels`` with a style-modulated 1x1 convolution plus bias.

    Shapes: ``x [N, H, W, in_channels], w [N, w_dim] -> [N, H, W, img_channels]`` (x's dtype).

    Args:
      in_channels: feature maps in.
      img_channels: image channels out.
      w_dim: width of w, the input of the style affine.
      conv_clamp: clamp the output to ``[-conv_clamp, conv_clamp]`` (None: no clamping).
    """

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: Optional[float] = None, **kwargs):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.img_channels = int(img_channels)
        self.w_dim = int(w_dim)
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.conv = ModulatedConv2D(
            self.in_channels, self.img_channels, self.w_dim, kernel_size=1, demodulate=False,
            name="conv", dtype=self.dtype_policy,
        )
        self.bias = self.add_weight(name="bias", shape=(self.img_channels,), initializer="zeros")
        self.built = True

    def call(self, x: tf.Tensor, w: tf.Tensor, fused_modconv: bool = False) -> tf.Tensor:
        x = self.conv(x, w, fused_modconv=fused_modconv)
        return bias_act(x, self.to_compute(self.bias), clamp=self.conv_clamp)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "img_channels": self.img_channels,
            "w_dim": self.w_dim,
            "conv_clamp": self.conv_clamp,
        }
