"""Dense and Conv2D layers with equalized learning rate.

Weights are stored with unit variance (divided by the learning-rate multiplier) and scaled at run
time by ``lr_multiplier / sqrt(fan_in)``. Adam's updates are then the same size for every layer
whatever its fan-in, and ``lr_multiplier`` slows a whole layer down (the mapping network uses 0.01).
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from custom_ops import bias_act, conv2d_resample, get_activation, setup_filter
from layers.base import StyleGANLayer


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class EqualizedDense(StyleGANLayer):
    """Fully connected layer with equalized learning rate (NVIDIA's ``FullyConnectedLayer``).

    Shapes: ``[N, in_features] -> [N, out_features]``.

    Args:
      in_features: input width.
      out_features: output width.
      activation: name from ``custom_ops.ACTIVATIONS``; applied with its default gain.
      use_bias: add a bias before the activation.
      bias_init: initial stored bias; like NVIDIA's, the effective bias is ``bias * lr_multiplier``
        (style affines use 1 so that styles start around 1).
      lr_multiplier: learning-rate multiplier of this layer.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        use_bias: bool = True,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        get_activation(activation)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.bias_init = float(bias_init)
        self.lr_multiplier = float(lr_multiplier)
        self.weight_gain = self.lr_multiplier / np.sqrt(self.in_features)
        self.weight = self.add_weight(
            name="weight",
            shape=(self.in_features, self.out_features),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_multiplier),
        )
        self.bias = (
            self.add_weight(
                name="bias",
                shape=(self.out_features,),
                initializer=keras.initializers.Constant(self.bias_init),
            )
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        self.check_shape(x, [None, self.in_features], "input")
        x = self.to_compute(x)
        w = self.to_compute(self.weight) * self.weight_gain
        b = self.to_compute(self.bias) * self.lr_multiplier if self.bias is not None else None
        return bias_act(tf.matmul(x, w), b, act=self.activation)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_features": self.in_features,
            "out_features": self.out_features,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "bias_init": self.bias_init,
            "lr_multiplier": self.lr_multiplier,
        }


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class EqualizedConv2D(StyleGANLayer):
    """2-D convolution with equalized learning rate and FIR up/down-sampling (``Conv2dLayer``).

    Shapes: ``[N, H, W, in_channels] -> [N, H * up / down, W * up / down, out_channels]``.

    Args:
      in_channels, out_channels: channel counts.
      kernel_size: square kernel size; padding is ``kernel_size // 2``.
      activation: name from ``custom_ops.ACTIVATIONS``.
      use_bias: add a bias before the activation.
      up, down: integer resampling factors (through ``conv2d_resample``).
      resample_filter: FIR taps used for resampling.
      conv_clamp: clamp the output to ``[-conv_clamp, conv_clamp]`` (None = off); keeps float16 finite.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        activation: str = "linear",
        use_bias: bool = True,
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: Optional[float] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.act_gain = get_activation(activation).def_gain
        self.use_bias = bool(use_bias)
        self.up = int(up)
        self.down = int(down)
        self.resample_filter = [float(t) for t in resample_filter]
        self.conv_clamp = None if conv_clamp is None else float(conv_clamp)
        self.filter = setup_filter(self.resample_filter)
        self.padding = self.kernel_size // 2
        self.weight_gain = 1.0 / np.sqrt(self.in_channels * self.kernel_size**2)
        self.weight = self.add_weight(
            name="weight",
            shape=(self.kernel_size, self.kernel_size, self.in_channels, self.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.out_channels,), initializer="zeros") if self.use_bias else None
        )
        self.built = True

    def call(self, x: tf.Tensor, gain: float = 1.0) -> tf.Tensor:
        """``gain`` scales the output (and the clamp), e.g. sqrt(0.5) on the two branches of a resnet block."""
        self.check_shape(x, [None, None, None, self.in_channels], "input")
        x = self.to_compute(x)
        w = self.to_compute(self.weight) * self.weight_gain
        b = self.to_compute(self.bias) if self.bias is not None else None
        # NVIDIA flips the kernel only when upsampling; matching it keeps imported weights exact.
        x = conv2d_resample(
            x, w, self.filter, up=self.up, down=self.down, padding=self.padding, flip_weight=(self.up == 1)
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "up": self.up,
            "down": self.down,
            "resample_filter": self.resample_filter,
            "conv_clamp": self.conv_clamp,
        }
