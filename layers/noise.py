"""Per-pixel noise injection with a learned strength (StyleGAN's stochastic variation)."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from layers.base import StyleGANLayer

NOISE_MODES = ("random", "const", "none")


def check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"unknown noise_mode {noise_mode!r}; expected one of {list(NOISE_MODES)}")


@keras.saving.register_keras_serializable(package="tf_stylegan2")
class NoiseInjection(StyleGANLayer):
    """Adds ``noise_strength * noise`` with one noise value per pixel, shared by all channels.

    Shapes: ``[N, resolution, resolution, C] -> [N, resolution, resolution, C]``.

    ``noise_mode``: 'random' draws fresh noise (from ``seed`` when given: an int tensor of shape
    [2] for ``tf.random.stateless_normal``, so exported models are reproducible); 'const' uses the
    fixed ``noise_const`` buffer saved with the model; 'none' adds nothing. The strength starts at
    zero and is learned.

    Args:
      resolution: height and width of the feature maps (and of ``noise_const``).
    """

    def __init__(self, resolution: int, **kwargs):
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.noise_strength = self.add_weight(name="noise_strength", shape=(), initializer="zeros")
        self.noise_const = self.add_weight(
            name="noise_const",
            shape=(self.resolution, self.resolution),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
        )
        self.built = True

    def call(self, x: tf.Tensor, noise_mode: str = "random", seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        check_noise_mode(noise_mode)
        self.check_shape(x, [None, self.resolution, self.resolution, None], "x")
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = tf.reshape(self.noise_const, [1, self.resolution, self.resolution, 1])
        else:
            shape = tf.stack([tf.shape(x)[0], self.resolution, self.resolution, 1])
            noise = tf.random.normal(shape) if seed is None else tf.random.stateless_normal(shape, seed)
        return x + tf.cast(noise * self.noise_strength, x.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "resolution": self.resolution}
